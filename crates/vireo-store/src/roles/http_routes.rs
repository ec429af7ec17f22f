//! The [`RouteStore`]: routes to functions and the hosts namespaces may route. One route per
//! pattern across namespaces (the primary key); a route's host must be claimed by its
//! namespace, checked in the transaction that adds it.

use vireo_core::{
    Change, HostClaim, HostPattern, HttpRoute, Name, RoutePattern, RouteStore, StoreError,
};

use super::{Dialect, SqlStore, check_function, check_namespace};
use crate::codec;
use crate::rows::{self, Columns, column, name_column};
use crate::sql::{Sql, query};

const ROUTE_COLUMNS: &str = "SELECT host, path, namespace, function, selector, invoke_auth,
    created_at_us FROM http_routes";
const INSERT_ROUTE: &str =
    "INSERT INTO http_routes (host, path, namespace, function, selector, invoke_auth, created_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
const DELETE_ROUTE: &str =
    "DELETE FROM http_routes WHERE namespace = $1 AND host = $2 AND path = $3";
const CLAIMS: &str = "SELECT host, namespace, created_at_us FROM host_claims ORDER BY host";
const INSERT_CLAIM: &str =
    "INSERT INTO host_claims (host, namespace, created_at_us) VALUES ($1, $2, $3)";
const DELETE_CLAIM: &str = "DELETE FROM host_claims WHERE host = $1";

#[async_trait::async_trait]
impl<D: Dialect> RouteStore for SqlStore<D> {
    async fn add_route(&self, route: &HttpRoute) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, &route.namespace, &route.function).await?;
        if let Some(host) = &route.pattern.host {
            D::lock_host_claims(&mut tx).await?;
            let claims = claims(&mut *tx).await?;
            let claimed = claims
                .iter()
                .filter(|claim| claim.namespace == route.namespace)
                .filter_map(|claim| HostPattern::parse(&claim.host).ok())
                .any(|claim| claim.covers(host));
            if !claimed {
                return Err(StoreError::HostNotClaimed {
                    namespace: route.namespace.clone(),
                    host: host.to_string(),
                });
            }
        }
        let (host, path) = keys(&route.pattern);
        let invoke_auth = route
            .invoke_auth
            .as_ref()
            .map(|auth| codec::to_json("a route's invoke_auth", auth))
            .transpose()?;
        let inserted = query(INSERT_ROUTE)
            .bind(host.as_str())
            .bind(path.as_str())
            .bind(route.namespace.as_str())
            .bind(route.function.as_str())
            .bind(route.selector.to_string())
            .bind(invoke_auth)
            .bind(route.created_at_us)
            .execute(&mut *tx, "adding a route")
            .await?;
        if inserted == 0 {
            let mut existing = query(ROUTE_COLUMNS);
            existing
                .push(" WHERE host = ")
                .push_bind(host.as_str())
                .push(" AND path = ")
                .push_bind(path.as_str());
            let row = existing
                .fetch_one(&mut *tx, "reading the conflicting route")
                .await?;
            let existing = http_route(&row)?;
            return Err(StoreError::RouteExists {
                pattern: existing.pattern.to_string(),
                namespace: existing.namespace,
                function: existing.function,
            });
        }
        self.commit_change(tx, Change::HttpRoutes).await
    }

    async fn list_routes(&self, namespace: Option<&Name>) -> Result<Vec<HttpRoute>, StoreError> {
        let mut tx = self.read().await?;
        let mut select = query(ROUTE_COLUMNS);
        if let Some(namespace) = namespace {
            check_namespace(&mut *tx, namespace).await?;
            select
                .push(" WHERE namespace = ")
                .push_bind(namespace.as_str());
        }
        select.push(" ORDER BY host, path");
        let rows = select.fetch_all(&mut *tx, "listing routes").await?;
        rows.iter().map(http_route).collect()
    }

    async fn delete_route(
        &self,
        namespace: &Name,
        pattern: &RoutePattern,
    ) -> Result<(), StoreError> {
        let (host, path) = keys(pattern);
        let mut tx = self.write().await?;
        let deleted = query(DELETE_ROUTE)
            .bind(namespace.as_str())
            .bind(host.as_str())
            .bind(path.as_str())
            .execute(&mut *tx, "deleting a route")
            .await?;
        if deleted == 0 {
            return Err(StoreError::RouteNotFound {
                namespace: namespace.clone(),
                pattern: pattern.to_string(),
            });
        }
        self.commit_change(tx, Change::HttpRoutes).await
    }

    async fn claim_host(
        &self,
        host: &HostPattern,
        namespace: &Name,
        at_us: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        D::lock_host_claims(&mut tx).await?;
        check_namespace(&mut *tx, namespace).await?;
        for claim in claims(&mut *tx).await? {
            let Ok(claimed) = HostPattern::parse(&claim.host) else {
                continue;
            };
            if claimed == *host && claim.namespace == *namespace {
                // Claiming again is harmless.
                return super::commit::<D>(tx).await;
            }
            if claim.namespace != *namespace && claimed.overlaps(host) {
                return Err(StoreError::HostTaken {
                    host: host.to_string(),
                    claimed: claim.host,
                });
            }
        }
        query(INSERT_CLAIM)
            .bind(host.to_string())
            .bind(namespace.as_str())
            .bind(at_us)
            .execute(&mut *tx, "claiming a host")
            .await?;
        self.commit_change(tx, Change::HttpRoutes).await
    }

    async fn list_host_claims(&self) -> Result<Vec<HostClaim>, StoreError> {
        claims(&mut *self.reader().await?).await
    }

    async fn release_host(&self, host: &HostPattern) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        D::lock_host_claims(&mut tx).await?;
        let claims = claims(&mut *tx).await?;
        let Some(claim) = claims.iter().find(|claim| claim.host == host.to_string()) else {
            return Err(StoreError::HostNotFound {
                host: host.to_string(),
            });
        };
        let mut routes = query(ROUTE_COLUMNS);
        routes
            .push(" WHERE namespace = ")
            .push_bind(claim.namespace.as_str())
            .push(" AND host <> ''");
        let rows = routes.fetch_all(&mut *tx, "listing routes").await?;
        for row in &rows {
            let route = http_route(row)?;
            if route
                .pattern
                .host
                .as_ref()
                .is_some_and(|routed| host.covers(routed))
            {
                return Err(StoreError::HostInUse {
                    namespace: claim.namespace.clone(),
                    host: host.to_string(),
                });
            }
        }
        query(DELETE_CLAIM)
            .bind(host.to_string())
            .execute(&mut *tx, "releasing a host")
            .await?;
        self.commit_change(tx, Change::HttpRoutes).await
    }
}

/// The primary key of a route: its host ('' for any) and its path pattern.
fn keys(pattern: &RoutePattern) -> (String, String) {
    let host = pattern
        .host
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    (host, pattern.path.to_string())
}

async fn claims(conn: &mut impl Sql) -> Result<Vec<HostClaim>, StoreError> {
    let rows = query(CLAIMS).fetch_all(conn, "listing host claims").await?;
    rows.iter()
        .map(|row| {
            Ok(HostClaim {
                host: column(row, "host")?,
                namespace: name_column(row, "namespace")?,
                created_at_us: column(row, "created_at_us")?,
            })
        })
        .collect()
}

fn http_route(row: &impl Columns) -> Result<HttpRoute, StoreError> {
    let host: String = column(row, "host")?;
    let path: String = column(row, "path")?;
    let written = format!("{host}{path}");
    Ok(HttpRoute {
        namespace: name_column(row, "namespace")?,
        pattern: rows::parsed_column(row, "path", |_| RoutePattern::parse(&written).ok())?,
        function: name_column(row, "function")?,
        selector: rows::parsed_column(row, "selector", |s| s.parse().ok())?,
        invoke_auth: column::<Option<String>>(row, "invoke_auth")?
            .map(|json| codec::from_json("a route's invoke_auth", &json))
            .transpose()?,
        created_at_us: column(row, "created_at_us")?,
    })
}
