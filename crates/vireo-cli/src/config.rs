//! `vireo config`: a new version of a function with other settings and the latest version's
//! component, without uploading it again.

use clap::Args;
use vireo_core::Name;

use crate::args;
use crate::client::Client;
use crate::deploy::submit_version;
use crate::output::Format;
use crate::settings_args::{SettingsArgs, settings_form};

#[derive(Args)]
pub struct ConfigArgs {
    /// The function; it must have a version whose component the new one keeps.
    #[arg(value_parser = args::function_name)]
    name: Name,

    #[command(flatten)]
    settings: SettingsArgs,
}

pub async fn run(client: &Client, format: Format, args: ConfigArgs) -> anyhow::Result<()> {
    let form = settings_form(&args.settings)?;
    submit_version(client, format, &args.name, form, "changing the settings").await
}
