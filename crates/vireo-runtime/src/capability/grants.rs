//! What a version is granted, derived once when it loads from its settings and the environment
//! opened for it: the only input capabilities build a version's state from.

use std::collections::BTreeSet;

use vireo_core::egress::AllowList;
use vireo_core::{Name, VersionInfo};

use super::network::{self, Approver, InvalidOutbound};

/// What a version's settings give its function once secrets are opened, by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// Environment variables: the settings' `env` and the granted secrets.
    pub environment: Vec<(String, String)>,
    /// Configuration variables: the settings' `variables`, secret-bound ones opened.
    pub variables: Vec<(String, String)>,
}

pub(crate) struct Grants {
    /// Whose grants these are, for what capabilities log.
    pub namespace: Name,
    pub function: Name,
    /// Environment variables: the settings' `env` and the granted secrets, opened.
    pub environment: Vec<(String, String)>,
    /// Configuration variables, secret-bound ones opened.
    pub variables: Vec<(String, String)>,
    /// The key-value stores of its namespace it may open.
    pub key_value_stores: BTreeSet<Name>,
    /// The buckets of its namespace it may open.
    pub buckets: BTreeSet<Name>,
    /// The SQLite databases of its namespace it may open.
    pub sqlite_databases: BTreeSet<Name>,
    /// Where the version may connect: its `allowed_outbound_hosts`.
    pub outbound: AllowList,
}

impl Grants {
    /// The grants of `version`. Its settings were accepted at deploy, so a refusal here means
    /// they no longer are, and the version must not load with less (or more) than it was given.
    pub fn new(version: &VersionInfo, opened: Opened) -> Result<Self, InvalidOutbound> {
        Ok(Self {
            namespace: version.namespace.clone(),
            function: version.function.clone(),
            environment: opened.environment,
            variables: opened.variables,
            key_value_stores: version.settings.key_value_stores.clone(),
            buckets: version.settings.buckets.clone(),
            sqlite_databases: version.settings.sqlite_databases.clone(),
            outbound: network::allowed(&version.settings)?,
        })
    }

    /// What checks the version's outgoing connections, for any capability that makes them.
    pub fn approver(&self) -> Approver {
        Approver::new(
            (self.namespace.clone(), self.function.clone()),
            self.outbound.clone(),
        )
    }
}
