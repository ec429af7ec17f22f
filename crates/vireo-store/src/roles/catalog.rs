//! The [`Catalog`]: functions, versions and aliases.

use std::collections::BTreeMap;

use vireo_core::{
    AliasName, AliasTarget, Catalog, FunctionInfo, Name, NewVersion, StoreError, VersionInfo,
    VersionSelector,
};

use super::{Conn, Dialect, NAMESPACE_EXISTS, SqlStore, check_function, check_namespace};
use crate::changes::routes;
use crate::sql::{Sql, query};
use crate::{codec, plan, rows};

/// Where the dialects differ for the catalog.
pub(crate) trait CatalogDialect: Dialect {
    /// How many functions the namespace (`$1`) holds and its `max_functions` quota; read after
    /// [`Dialect::lock_namespace`], so another node's function is counted once it committed.
    const FUNCTION_QUOTA: &'static str;
    /// The function's (`$1`, `$2`) next version number, none if the function is gone; locks
    /// the function's row where writers run side by side, so two deploys of one function
    /// number their versions in turn.
    const NEXT_VERSION: &'static str;
}

/// The columns [`rows::version_info`] reads.
macro_rules! version_columns {
    () => {
        "namespace, function, version, component_sha256, component_size, settings, created_at_us"
    };
}

const FUNCTION_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM functions WHERE namespace = $1 AND name = $2)";
const INSERT_FUNCTION: &str = "INSERT INTO functions (namespace, name, created_at_us)
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// Followed by the namespace, and optionally ` AND name = ` and the function.
const SELECT_FUNCTIONS: &str = "SELECT namespace, name, created_at_us,
        (SELECT MAX(version) FROM versions v WHERE v.namespace = f.namespace AND v.function = f.name)
            AS latest_version
    FROM functions f WHERE namespace = ";
/// Followed by the namespace, and optionally ` AND function = ` and the function.
const SELECT_ALIASES: &str =
    "SELECT function, alias, version, split FROM aliases WHERE namespace = ";
/// Versions, aliases, schedules and the queue go by cascade; records and logs have no foreign
/// key.
const DELETE_FUNCTION: [&str; 3] = [
    "DELETE FROM logs WHERE namespace = $1 AND function = $2",
    "DELETE FROM invocations WHERE namespace = $1 AND function = $2",
    "DELETE FROM functions WHERE namespace = $1 AND name = $2",
];
const INSERT_VERSION: &str = concat!(
    "INSERT INTO versions (",
    version_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const LIST_VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE namespace = $1 AND function = $2 ORDER BY version"
);
const LATEST_VERSION: &str =
    "SELECT MAX(version) FROM versions WHERE namespace = $1 AND function = $2";
const ALIAS_VERSION: &str =
    "SELECT version FROM aliases WHERE namespace = $1 AND function = $2 AND alias = $3";
const ALIAS_TARGET: &str =
    "SELECT version, split FROM aliases WHERE namespace = $1 AND function = $2 AND alias = $3";
const GET_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM versions WHERE namespace = $1 AND function = $2 AND version = $3"
);
const COMPONENT_HASHES: &str =
    "SELECT DISTINCT component_sha256 FROM versions ORDER BY component_sha256";
const VERSION_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM versions WHERE namespace = $1 AND function = $2 AND version = $3)";
const SET_ALIAS: &str =
    "INSERT INTO aliases (namespace, function, alias, version, split) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (namespace, function, alias)
    DO UPDATE SET version = excluded.version, split = excluded.split";
const DELETE_ALIAS: &str =
    "DELETE FROM aliases WHERE namespace = $1 AND function = $2 AND alias = $3";

#[async_trait::async_trait]
impl<D: CatalogDialect> Catalog for SqlStore<D> {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError> {
        query(NAMESPACE_EXISTS)
            .bind(namespace.as_str())
            .scalar(&mut *self.reader().await?, "checking namespace")
            .await
    }

    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
        at_us: i64,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        if !insert_function::<D>(&mut tx, namespace, function, at_us).await? {
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
            splits: BTreeMap::new(),
        })
    }

    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let info = function_infos(&mut *tx, namespace, Some(function))
            .await?
            .pop();
        info.ok_or_else(|| StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        })
    }

    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut *tx, namespace).await?;
        function_infos(&mut *tx, namespace, None).await
    }

    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, namespace, function).await?;
        for sql in DELETE_FUNCTION {
            query(sql)
                .bind(namespace.as_str())
                .bind(function.as_str())
                .execute(&mut *tx, "deleting function")
                .await?;
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
        check_namespace(&mut *tx, namespace).await?;
        insert_function::<D>(&mut tx, namespace, function, at_us).await?;
        let next: Option<i64> = query(D::NEXT_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .optional_scalar(&mut *tx, "numbering version")
            .await?;
        // Deleted by another node between the insert and the lock.
        let next = next.ok_or_else(|| StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        })?;
        let number = u32::try_from(next).map_err(|_| {
            StoreError::permanent(
                "numbering version",
                format!("function {namespace}/{function} has run out of version numbers"),
            )
        })?;
        query(INSERT_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(number)
            .bind(version.component_sha256.as_str())
            .bind(codec::saturating_i64(version.component_size))
            .bind(settings)
            .bind(at_us)
            .execute(&mut *tx, "adding version")
            .await?;
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
        check_function(&mut *tx, namespace, function).await?;
        let rows = query(LIST_VERSIONS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_all(&mut *tx, "listing versions")
            .await?;
        rows.iter().map(rows::version_info).collect()
    }

    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let number = match selector {
            VersionSelector::Number(number) => *number,
            VersionSelector::Alias(alias) => {
                let found: Option<u32> = if alias.is_latest() {
                    query(LATEST_VERSION)
                        .bind(namespace.as_str())
                        .bind(function.as_str())
                        .scalar(&mut *tx, "resolving alias")
                        .await?
                } else {
                    query(ALIAS_VERSION)
                        .bind(namespace.as_str())
                        .bind(function.as_str())
                        .bind(alias.as_str())
                        .optional_scalar(&mut *tx, "resolving alias")
                        .await?
                };
                // `latest` too is missing until the first version is added.
                found.ok_or_else(|| StoreError::AliasNotFound {
                    namespace: namespace.clone(),
                    function: function.clone(),
                    alias: alias.clone(),
                })?
            }
        };
        let row = query(GET_VERSION)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(number)
            .fetch_optional(&mut *tx, "reading version")
            .await?;
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
        let rows = query(COMPONENT_HASHES)
            .fetch_all(&mut *self.reader().await?, "listing component hashes")
            .await?;
        rows.iter().map(|row| rows::column(row, 0)).collect()
    }

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        target: &AliasTarget,
    ) -> Result<(), StoreError> {
        let split = codec::encode_split(target)?;
        let mut tx = self.write().await?;
        check_function(&mut *tx, namespace, function).await?;
        for arm in &target.versions {
            let exists: bool = query(VERSION_EXISTS)
                .bind(namespace.as_str())
                .bind(function.as_str())
                .bind(arm.version)
                .scalar(&mut *tx, "checking version")
                .await?;
            if !exists {
                return Err(StoreError::VersionNotFound {
                    namespace: namespace.clone(),
                    function: function.clone(),
                    version: arm.version,
                });
            }
        }
        query(SET_ALIAS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(alias.as_str())
            .bind(target.primary())
            .bind(split)
            .execute(&mut *tx, "setting alias")
            .await?;
        self.commit_change(tx, routes(namespace, function)).await
    }

    async fn get_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<AliasTarget, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let not_found = || StoreError::AliasNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
            alias: alias.clone(),
        };
        if alias.is_latest() {
            let latest: Option<u32> = query(LATEST_VERSION)
                .bind(namespace.as_str())
                .bind(function.as_str())
                .scalar(&mut *tx, "resolving alias")
                .await?;
            return latest.map(AliasTarget::single).ok_or_else(not_found);
        }
        let row = query(ALIAS_TARGET)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(alias.as_str())
            .fetch_optional(&mut *tx, "reading alias")
            .await?
            .ok_or_else(not_found)?;
        rows::alias_target(&row)
    }

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, namespace, function).await?;
        let deleted = query(DELETE_ALIAS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(alias.as_str())
            .execute(&mut *tx, "deleting alias")
            .await?;
        if deleted == 0 {
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
    conn: &mut impl Sql,
    namespace: &Name,
    only: Option<&Name>,
) -> Result<Vec<FunctionInfo>, StoreError> {
    let mut functions = query(SELECT_FUNCTIONS);
    functions.push_bind(namespace.as_str());
    let mut aliases = query(SELECT_ALIASES);
    aliases.push_bind(namespace.as_str());
    if let Some(function) = only {
        functions.push(" AND name = ").push_bind(function.as_str());
        aliases
            .push(" AND function = ")
            .push_bind(function.as_str());
    }
    let function_rows = functions.fetch_all(conn, "listing functions").await?;
    let alias_rows = aliases.fetch_all(conn, "listing aliases").await?;
    rows::function_infos(&function_rows, &alias_rows)
}

/// Adds the function at `at_us` unless it exists, within the namespace's `max_functions`
/// quota; true when it was added. Counting waits for other nodes adding to the namespace.
async fn insert_function<D: CatalogDialect>(
    conn: &mut Conn<D>,
    namespace: &Name,
    function: &Name,
    at_us: i64,
) -> Result<bool, StoreError> {
    let exists: bool = query(FUNCTION_EXISTS)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .scalar(conn, "checking function")
        .await?;
    if exists {
        return Ok(false);
    }
    D::lock_namespace(conn, namespace).await?;
    let quota = query(D::FUNCTION_QUOTA)
        .bind(namespace.as_str())
        .fetch_one(conn, "checking the function quota")
        .await?;
    let count: i64 = rows::column(&quota, 0)?;
    let max_functions: Option<i64> = rows::column(&quota, 1)?;
    plan::admit_function(
        namespace,
        codec::unsigned(count),
        max_functions.map(codec::unsigned),
    )?;
    let inserted = query(INSERT_FUNCTION)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(at_us)
        .execute(conn, "creating function")
        .await?;
    Ok(inserted == 1)
}
