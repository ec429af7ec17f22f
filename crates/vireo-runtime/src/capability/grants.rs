//! What a version is granted, derived once when it loads from its settings and the environment
//! opened for it: the only input capabilities build a version's state from.

use vireo_core::egress::AllowList;
use vireo_core::{Name, VersionInfo};

use super::network::{self, InvalidOutbound};

pub(crate) struct Grants {
    /// Whose grants these are, for what capabilities log.
    pub namespace: Name,
    pub function: Name,
    /// Environment variables: the settings' `env` and the granted secrets, opened.
    pub environment: Vec<(String, String)>,
    /// Where the version may connect: its `allowed_outbound_hosts`.
    pub outbound: AllowList,
}

impl Grants {
    /// The grants of `version`. Its settings were accepted at deploy, so a refusal here means
    /// they no longer are, and the version must not load with less (or more) than it was given.
    pub fn new(
        version: &VersionInfo,
        environment: Vec<(String, String)>,
    ) -> Result<Self, InvalidOutbound> {
        Ok(Self {
            namespace: version.namespace.clone(),
            function: version.function.clone(),
            environment,
            outbound: network::allowed(&version.settings)?,
        })
    }
}
