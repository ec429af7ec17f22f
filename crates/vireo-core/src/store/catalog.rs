//! The catalog: functions, their immutable versions and the aliases that point at them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::names::{AliasName, Name, VersionSelector};
use crate::settings::VersionSettings;
use crate::split::AliasTarget;

/// A function and where its aliases point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub namespace: Name,
    pub name: Name,
    pub created_at_us: i64,
    /// Newest version number; `None` before the first deploy.
    pub latest_version: Option<u32>,
    /// Alias → version, `latest` included when a version exists; a split alias names its
    /// primary version here.
    pub aliases: BTreeMap<String, u32>,
    /// Aliases that split their traffic over several versions (or stick by a key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub splits: BTreeMap<String, AliasTarget>,
}

/// One immutable version of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub namespace: Name,
    pub function: Name,
    pub version: u32,
    /// Content address of the component bytes (hex sha256).
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: VersionSettings,
    pub created_at_us: i64,
}

/// What a deploy adds.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: VersionSettings,
}

#[async_trait::async_trait]
pub trait Catalog: Send + Sync + 'static {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError>;

    /// Creates an empty function at `at_us`; `FunctionExists` if it is already there.
    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
        at_us: i64,
    ) -> Result<FunctionInfo, StoreError>;
    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError>;
    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError>;
    /// Deletes the function with its versions, aliases, invocation records and logs.
    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError>;

    /// Adds the next version at `at_us` (creating the function if needed) and points `latest`
    /// at it.
    async fn add_version(
        &self,
        namespace: &Name,
        function: &Name,
        version: NewVersion,
        at_us: i64,
    ) -> Result<VersionInfo, StoreError>;
    async fn list_versions(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Vec<VersionInfo>, StoreError>;
    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError>;
    /// Every distinct component hash some version uses (to keep their artifacts).
    async fn component_hashes(&self) -> Result<Vec<String>, StoreError>;

    /// Points an alias at one version or splits it over several; every version must exist.
    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        target: &AliasTarget,
    ) -> Result<(), StoreError>;
    /// What an alias points at (`latest`: its one version).
    async fn get_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<AliasTarget, StoreError>;
    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError>;
}
