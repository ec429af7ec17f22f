//! The SQLite [`Catalog`]: functions, versions and aliases.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;
use sqlx::sqlite::SqliteConnection;
use vireo_core::{
    AliasName, Catalog, FunctionInfo, Name, NewVersion, StoreError, VersionInfo, VersionSelector,
};

use super::{SqliteStore, backend, check_function, check_namespace};
use crate::changes::routes;
use crate::rows;
use crate::{codec, plan};

/// The columns [`rows::version_info`] reads.
macro_rules! version_columns {
    () => {
        "namespace, function, version, component_sha256, component_size, settings, created_at_us"
    };
}

pub(super) const NAMESPACE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?1)";
/// Whether the function exists, how many its namespace holds, and its `max_functions` quota.
const FUNCTION_QUOTA: &str =
    "SELECT EXISTS (SELECT 1 FROM functions WHERE namespace = ?1 AND name = ?2),
        (SELECT COUNT(*) FROM functions WHERE namespace = ?1),
        (SELECT json_extract(quotas, '$.max_functions') FROM namespaces WHERE name = ?1)";
const INSERT_FUNCTION: &str =
    "INSERT INTO functions (namespace, name, created_at_us) VALUES (?1, ?2, ?3)";
/// Followed by the namespace, and optionally ` AND name = ` and the function.
const SELECT_FUNCTIONS: &str = "SELECT namespace, name, created_at_us,
        (SELECT MAX(version) FROM versions v WHERE v.namespace = f.namespace AND v.function = f.name)
            AS latest_version
    FROM functions f WHERE namespace = ";
/// Followed by the namespace, and optionally ` AND function = ` and the function.
const SELECT_ALIASES: &str = "SELECT function, alias, version FROM aliases WHERE namespace = ";
/// Versions and aliases go by cascade; records and logs have no foreign key.
const DELETE_FUNCTION: [&str; 3] = [
    "DELETE FROM logs WHERE namespace = ?1 AND function = ?2",
    "DELETE FROM invocations WHERE namespace = ?1 AND function = ?2",
    "DELETE FROM functions WHERE namespace = ?1 AND name = ?2",
];
const NEXT_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE namespace = ?1 AND function = ?2";
const INSERT_VERSION: &str = concat!(
    "INSERT INTO versions (",
    version_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
);
const LIST_VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE namespace = ?1 AND function = ?2 ORDER BY version"
);
const LATEST_VERSION: &str =
    "SELECT MAX(version) FROM versions WHERE namespace = ?1 AND function = ?2";
const ALIAS_VERSION: &str =
    "SELECT version FROM aliases WHERE namespace = ?1 AND function = ?2 AND alias = ?3";
const GET_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE namespace = ?1 AND function = ?2 AND version = ?3"
);
const COMPONENT_HASHES: &str =
    "SELECT DISTINCT component_sha256 FROM versions ORDER BY component_sha256";
const VERSION_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM versions WHERE namespace = ?1 AND function = ?2 AND version = ?3)";
const SET_ALIAS: &str =
    "INSERT INTO aliases (namespace, function, alias, version) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (namespace, function, alias) DO UPDATE SET version = excluded.version";
const DELETE_ALIAS: &str =
    "DELETE FROM aliases WHERE namespace = ?1 AND function = ?2 AND alias = ?3";

#[async_trait::async_trait]
impl Catalog for SqliteStore {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError> {
        sqlx::query_scalar(NAMESPACE_EXISTS)
            .bind(namespace.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(backend("checking namespace"))
    }

    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
        at_us: i64,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        if !insert_function(&mut tx, namespace, function, at_us).await? {
            return Err(StoreError::FunctionExists {
                namespace: namespace.clone(),
                function: function.clone(),
            });
        }
        self.commit_change(tx, routes(namespace, function)).await?;
        Ok(FunctionInfo {
            namespace: namespace.clone(),
            name: function.clone(),
            created_at_us: at_us,
            latest_version: None,
            aliases: BTreeMap::new(),
        })
    }

    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let info = function_infos(&mut tx, namespace, Some(function))
            .await?
            .pop();
        info.ok_or_else(|| StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        })
    }

    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut tx, namespace).await?;
        function_infos(&mut tx, namespace, None).await
    }

    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        for sql in DELETE_FUNCTION {
            sqlx::query(sql)
                .bind(namespace.as_str())
                .bind(function.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend("deleting function"))?;
        }
        self.commit_change(tx, routes(namespace, function)).await
    }

    async fn add_version(
        &self,
        namespace: &Name,
        function: &Name,
        version: NewVersion,
        at_us: i64,
    ) -> Result<VersionInfo, StoreError> {
        let settings = codec::to_json("version settings", &version.settings)?;
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        insert_function(&mut tx, namespace, function, at_us).await?;
        let next: i64 = sqlx::query_scalar(NEXT_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("numbering version"))?;
        let number = u32::try_from(next).map_err(|_| {
            StoreError::permanent(
                "numbering version",
                format!("function {namespace}/{function} has run out of version numbers"),
            )
        })?;
        sqlx::query(INSERT_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(number)
            .bind(&version.component_sha256)
            .bind(codec::saturating_i64(version.component_size))
            .bind(settings)
            .bind(at_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("adding version"))?;
        self.commit_change(tx, routes(namespace, function)).await?;
        Ok(VersionInfo {
            namespace: namespace.clone(),
            function: function.clone(),
            version: number,
            component_sha256: version.component_sha256,
            component_size: version.component_size,
            settings: version.settings,
            created_at_us: at_us,
        })
    }

    async fn list_versions(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Vec<VersionInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let rows = sqlx::query(LIST_VERSIONS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing versions"))?;
        rows.iter().map(rows::version_info).collect()
    }

    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let number = match selector {
            VersionSelector::Number(number) => *number,
            VersionSelector::Alias(alias) => {
                let found: Option<u32> = if alias.is_latest() {
                    sqlx::query_scalar(LATEST_VERSION)
                        .bind(namespace.as_str())
                        .bind(function.as_str())
                        .fetch_one(&mut *tx)
                        .await
                } else {
                    sqlx::query_scalar(ALIAS_VERSION)
                        .bind(namespace.as_str())
                        .bind(function.as_str())
                        .bind(alias.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                }
                .map_err(backend("resolving alias"))?;
                // `latest` too is missing until the first version is added.
                found.ok_or_else(|| StoreError::AliasNotFound {
                    namespace: namespace.clone(),
                    function: function.clone(),
                    alias: alias.clone(),
                })?
            }
        };
        let row = sqlx::query(GET_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(number)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("reading version"))?;
        match row {
            Some(row) => rows::version_info(&row),
            None => Err(StoreError::VersionNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                version: number,
            }),
        }
    }

    async fn component_hashes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(COMPONENT_HASHES)
            .fetch_all(&self.reader)
            .await
            .map_err(backend("listing component hashes"))
    }

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        version: u32,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        let exists: bool = sqlx::query_scalar(VERSION_EXISTS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("checking version"))?;
        if !exists {
            return Err(StoreError::VersionNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                version,
            });
        }
        sqlx::query(SET_ALIAS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(alias.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend("setting alias"))?;
        self.commit_change(tx, routes(namespace, function)).await
    }

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        let deleted = sqlx::query(DELETE_ALIAS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(alias.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend("deleting alias"))?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::AliasNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                alias: alias.clone(),
            });
        }
        self.commit_change(tx, routes(namespace, function)).await
    }
}

/// Functions of a namespace (or just `only`) with `latest` and their stored aliases, by name.
async fn function_infos(
    conn: &mut SqliteConnection,
    namespace: &Name,
    only: Option<&Name>,
) -> Result<Vec<FunctionInfo>, StoreError> {
    let mut functions = QueryBuilder::new(SELECT_FUNCTIONS);
    functions.push_bind(namespace.as_str());
    let mut aliases = QueryBuilder::new(SELECT_ALIASES);
    aliases.push_bind(namespace.as_str());
    if let Some(function) = only {
        functions.push(" AND name = ").push_bind(function.as_str());
        aliases
            .push(" AND function = ")
            .push_bind(function.as_str());
    }
    let function_rows = functions
        .build()
        .fetch_all(&mut *conn)
        .await
        .map_err(backend("listing functions"))?;
    let alias_rows = aliases
        .build()
        .fetch_all(&mut *conn)
        .await
        .map_err(backend("listing aliases"))?;
    rows::function_infos(&function_rows, &alias_rows)
}

/// Adds the function at `at_us` unless it exists, within the namespace's `max_functions`
/// quota; true when it was added.
async fn insert_function(
    conn: &mut SqliteConnection,
    namespace: &Name,
    function: &Name,
    at_us: i64,
) -> Result<bool, StoreError> {
    let (exists, count, quota): (bool, i64, Option<i64>) = sqlx::query_as(FUNCTION_QUOTA)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(backend("checking the function quota"))?;
    if exists {
        return Ok(false);
    }
    plan::admit_function(
        namespace,
        codec::unsigned(count),
        quota.map(codec::unsigned),
    )?;
    sqlx::query(INSERT_FUNCTION)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(at_us)
        .execute(&mut *conn)
        .await
        .map_err(backend("creating function"))?;
    Ok(true)
}
