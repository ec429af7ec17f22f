//! Configuration: the version's `variables`, read through `wasi:config/store` (draft
//! 2024-09-27) and Spin's `fermyon:spin/variables@2.0.0`, over the same values. They are
//! resolved when the version loads (secret-bound ones opened then), so a read is a map lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{Capability, Grants, Package};
use crate::bindings::fermyon::spin::variables;
use crate::bindings::wasi::config::store;
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

pub(crate) struct Config;

/// A version's variables by name, shared by its instances.
pub(crate) type Variables = Arc<BTreeMap<String, String>>;

impl Capability for Config {
    const NAME: &str = "config";
    const PACKAGES: &[Package] = &[
        Package::new("wasi:config", "0.2"),
        Package::interfaces("fermyon:spin", "2.0", &["variables"]),
    ];
    type Version = Variables;
    type Instance = Variables;

    fn new(_: &EngineSettings, _: &HostServices) -> Self {
        Self
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        store::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
        variables::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(grants.variables.iter().cloned().collect())
    }

    fn instance(variables: &Self::Version, _: &LogCapture) -> Self::Instance {
        variables.clone()
    }
}

impl store::Host for Host {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        Ok(self.capabilities.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        Ok(self
            .capabilities
            .config
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect())
    }
}

impl variables::Host for Host {
    /// Spin's behaviour: a name outside its rule is `invalid-name`, an unset one `undefined`.
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        if !vireo_core::variables::is_variable_name(&name) {
            return Err(variables::Error::InvalidName(name));
        }
        match self.capabilities.config.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(variables::Error::Undefined(format!(
                "no variable named {name}"
            ))),
        }
    }
}
