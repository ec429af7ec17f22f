//! Routes and host claims: one route per pattern across namespaces, hosts only for the
//! namespace that claims them, and every write announced to the route tables of every node.

use vireo_core::{
    Change, HostPattern, HttpRoute, InvokeAuth, Name, RoutePattern, StoreError, VersionSelector,
};

use super::support::{AT, assert_err, deployed, name, receive};
use crate::Stores;

fn route(namespace: &Name, pattern: &str, function: &Name) -> HttpRoute {
    HttpRoute {
        namespace: namespace.clone(),
        pattern: RoutePattern::parse(pattern).unwrap(),
        function: function.clone(),
        selector: VersionSelector::Number(1),
        invoke_auth: None,
        created_at_us: AT,
    }
}

fn host(value: &str) -> HostPattern {
    HostPattern::parse(value).unwrap()
}

pub(super) async fn routes_are_added_listed_refused_on_conflict_and_removed(stores: &Stores) {
    let function = deployed(stores, "orders").await;
    let default = name("default");
    let mut subscriber = stores.changes.subscribe();
    let hello = route(&default, "/hello", &function);
    stores.http_routes.add_route(&hello).await.unwrap();
    receive(&mut subscriber, &Change::HttpRoutes).await;
    // A route's own invoke_auth is kept as given.
    let prefix = HttpRoute {
        invoke_auth: Some(InvokeAuth::Key),
        ..route(&default, "/orders/*", &function)
    };
    stores.http_routes.add_route(&prefix).await.unwrap();

    // The same pattern again is refused with the route it conflicts with.
    let again = route(&default, "/orders/*", &function);
    assert_err!(
        stores.http_routes.add_route(&again).await,
        StoreError::RouteExists { pattern, function: f, .. } if pattern == "/orders/*" && f == function
    );
    assert_err!(
        stores
            .http_routes
            .add_route(&route(&default, "/x", &name("missing")))
            .await,
        StoreError::FunctionNotFound { .. }
    );
    assert_eq!(
        stores
            .http_routes
            .list_routes(Some(&default))
            .await
            .unwrap(),
        [hello.clone(), prefix.clone()]
    );
    stores
        .http_routes
        .delete_route(&default, &prefix.pattern)
        .await
        .unwrap();
    receive(&mut subscriber, &Change::HttpRoutes).await;
    assert_err!(
        stores
            .http_routes
            .delete_route(&default, &prefix.pattern)
            .await,
        StoreError::RouteNotFound { .. }
    );
    assert_eq!(stores.http_routes.list_routes(None).await.unwrap(), [hello]);

    // A function's routes go with it.
    stores
        .catalog
        .delete_function(&default, &function)
        .await
        .unwrap();
    assert!(
        stores
            .http_routes
            .list_routes(None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn hosts_are_routed_only_by_the_namespace_that_claims_them(stores: &Stores) {
    let function = deployed(stores, "orders").await;
    let default = name("default");
    stores
        .tenants
        .create_namespace(&name("team"), &Default::default(), AT)
        .await
        .unwrap();
    let team = name("team");
    let on_host = route(&default, "api.example.com/orders/*", &function);
    assert_err!(
        stores.http_routes.add_route(&on_host).await,
        StoreError::HostNotClaimed { .. }
    );
    stores
        .http_routes
        .claim_host(&host("*.example.com"), &default, AT)
        .await
        .unwrap();
    // Claiming again is harmless; an overlapping claim of another namespace is refused.
    stores
        .http_routes
        .claim_host(&host("*.example.com"), &default, AT)
        .await
        .unwrap();
    for taken in ["api.example.com", "*.example.com", "*.a.example.com"] {
        assert_err!(
            stores.http_routes.claim_host(&host(taken), &team, AT).await,
            StoreError::HostTaken { .. }
        );
    }
    stores
        .http_routes
        .claim_host(&host("team.org"), &team, AT)
        .await
        .unwrap();
    stores.http_routes.add_route(&on_host).await.unwrap();
    let claims = stores.http_routes.list_host_claims().await.unwrap();
    let owners: Vec<(&str, &str)> = claims
        .iter()
        .map(|claim| (claim.host.as_str(), claim.namespace.as_str()))
        .collect();
    assert_eq!(owners, [("*.example.com", "default"), ("team.org", "team")]);

    assert_err!(
        stores
            .http_routes
            .release_host(&host("*.example.com"))
            .await,
        StoreError::HostInUse { .. }
    );
    stores
        .http_routes
        .delete_route(&default, &on_host.pattern)
        .await
        .unwrap();
    stores
        .http_routes
        .release_host(&host("*.example.com"))
        .await
        .unwrap();
    assert_err!(
        stores
            .http_routes
            .release_host(&host("*.example.com"))
            .await,
        StoreError::HostNotFound { .. }
    );
}
