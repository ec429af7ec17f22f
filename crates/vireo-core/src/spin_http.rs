//! Spin's view of an HTTP request, for versions deployed with `spin_http` (those imported from a
//! Spin application): the guest sees the whole path its route matched, as under Spin, and the
//! headers Spin's HTTP trigger adds (`spin-full-url`, `spin-path-info`, `spin-matched-route`,
//! `spin-base-path`, `spin-raw-component-route`, `spin-component-route`, `spin-client-addr`),
//! which Spin applications read to route and to build links.

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue, Uri, header};

use crate::http_route::PathPattern;

pub const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
pub const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
pub const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
pub const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
pub const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
pub const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
pub const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// How an HTTP request reached the gateway: what only the gateway knows, kept for a version that
/// wants to see the request as Spin shows it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The request target as the client sent it (cloning a `Uri` copies no bytes).
    pub target: Uri,
    /// The path pattern of the route the request took; `None` for the function's own URL
    /// (`/fn/{namespace}/{function}/…`), which is mounted like Spin's catch-all `/...`.
    pub route: Option<PathPattern>,
    /// The client's address, when the listener knows it.
    pub client: Option<SocketAddr>,
    /// Whether the request came over TLS.
    pub tls: bool,
}

/// Where a function is mounted, in Spin's words.
struct Mount {
    /// The route as a Spin manifest writes it: `/hello` or `/hello/...`.
    raw: String,
    /// The path of the route without its wildcard: `/hello` (empty for `/...`).
    prefix: String,
    wildcard: bool,
}

impl Mount {
    fn of(route: Option<&PathPattern>) -> Self {
        match route {
            Some(PathPattern::Exact(path)) => Self {
                raw: path.clone(),
                prefix: path.clone(),
                wildcard: false,
            },
            Some(PathPattern::Prefix(prefix)) => Self {
                raw: format!("{prefix}/..."),
                prefix: prefix.clone(),
                wildcard: true,
            },
            None => Self {
                raw: "/...".to_string(),
                prefix: String::new(),
                wildcard: true,
            },
        }
    }

    /// What follows the route in `path`: Spin's path info, empty for an exact route.
    fn path_info<'a>(&self, path: &'a str) -> &'a str {
        if self.wildcard {
            path.strip_prefix(self.prefix.as_str()).unwrap_or(path)
        } else {
            ""
        }
    }
}

/// Shapes `request` (whose path is the function-relative `/{rest}`) as Spin's HTTP trigger would
/// hand it over. A request that took a route gets its whole path back; one without an arrival
/// (an async invocation run later, a schedule, an event) is taken as mounted at `/...`. Headers
/// of these names sent by the client are replaced, never trusted.
pub fn shape<B>(request: &mut http::Request<B>, arrival: Option<&Arrival>) {
    let headers = request.headers_mut();
    for name in [
        FULL_URL,
        PATH_INFO,
        MATCHED_ROUTE,
        BASE_PATH,
        RAW_COMPONENT_ROUTE,
        COMPONENT_ROUTE,
        CLIENT_ADDR,
    ] {
        headers.remove(name);
    }
    let routed = arrival.and_then(|arrival| arrival.route.as_ref());
    if let (Some(_), Some(whole)) = (
        routed,
        arrival.and_then(|arrival| arrival.target.path_and_query()),
    ) {
        *request.uri_mut() = Uri::from(whole.clone());
    }
    let mount = Mount::of(routed);
    let path = request.uri().path().to_string();
    let target = arrival.map_or_else(|| request.uri().clone(), |arrival| arrival.target.clone());
    let target = target
        .path_and_query()
        .map_or_else(|| path.clone(), |target| target.as_str().to_string());
    let headers = request.headers_mut();
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if arrival.is_some_and(|arrival| arrival.tls) {
        "https"
    } else {
        "http"
    };
    let full_url = format!("{scheme}://{host}{target}");
    let client = arrival
        .and_then(|arrival| arrival.client)
        .map(|client| client.to_string());
    let values = [
        (FULL_URL, Some(full_url)),
        (PATH_INFO, Some(mount.path_info(&path).to_string())),
        (MATCHED_ROUTE, Some(mount.raw.clone())),
        (BASE_PATH, Some("/".to_string())),
        (RAW_COMPONENT_ROUTE, Some(mount.raw.clone())),
        (COMPONENT_ROUTE, Some(mount.prefix.clone())),
        (CLIENT_ADDR, client),
    ];
    for (name, value) in values {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(uri: &str, arrival: Option<Arrival>) -> http::Request<()> {
        let mut request = http::Request::builder()
            .uri(uri)
            .header(header::HOST, "app.example.com:3000")
            .header("spin-client-addr", "6.6.6.6:666")
            .body(())
            .unwrap();
        shape(&mut request, arrival.as_ref());
        request
    }

    fn header<'a>(request: &'a http::Request<()>, name: &HeaderName) -> Option<&'a str> {
        request.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn arrival(target: &str, route: Option<&str>) -> Arrival {
        let route = route.map(|route| PathPattern::parse(route).unwrap());
        Arrival {
            target: target.parse().unwrap(),
            route,
            client: Some("127.0.0.1:8777".parse().unwrap()),
            tls: false,
        }
    }

    #[test]
    fn a_wildcard_route_gives_the_whole_path_and_what_follows_the_route() {
        let request = shaped(
            "/bar?key=value",
            Some(arrival("/foo/bar?key=value", Some("/foo/*"))),
        );
        assert_eq!(request.uri(), "/foo/bar?key=value");
        assert_eq!(
            header(&request, &FULL_URL),
            Some("http://app.example.com:3000/foo/bar?key=value")
        );
        assert_eq!(header(&request, &PATH_INFO), Some("/bar"));
        assert_eq!(header(&request, &MATCHED_ROUTE), Some("/foo/..."));
        assert_eq!(header(&request, &RAW_COMPONENT_ROUTE), Some("/foo/..."));
        assert_eq!(header(&request, &COMPONENT_ROUTE), Some("/foo"));
        assert_eq!(header(&request, &BASE_PATH), Some("/"));
        assert_eq!(header(&request, &CLIENT_ADDR), Some("127.0.0.1:8777"));
    }

    #[test]
    fn an_exact_route_has_no_path_info() {
        let request = shaped("/", Some(arrival("/hello", Some("/hello"))));
        assert_eq!(request.uri(), "/hello");
        assert_eq!(header(&request, &PATH_INFO), Some(""));
        assert_eq!(header(&request, &MATCHED_ROUTE), Some("/hello"));
        assert_eq!(header(&request, &COMPONENT_ROUTE), Some("/hello"));
    }

    #[test]
    fn the_catch_all_route_passes_the_whole_path_as_path_info() {
        let request = shaped("/a/b", Some(arrival("/a/b", Some("/*"))));
        assert_eq!(header(&request, &PATH_INFO), Some("/a/b"));
        assert_eq!(header(&request, &MATCHED_ROUTE), Some("/..."));
        assert_eq!(header(&request, &COMPONENT_ROUTE), Some(""));
    }

    #[test]
    fn the_functions_own_url_is_mounted_at_the_catch_all() {
        let request = shaped("/rest?x=1", Some(arrival("/fn/default/app/rest?x=1", None)));
        assert_eq!(request.uri(), "/rest?x=1");
        assert_eq!(header(&request, &PATH_INFO), Some("/rest"));
        assert_eq!(header(&request, &MATCHED_ROUTE), Some("/..."));
        assert_eq!(
            header(&request, &FULL_URL),
            Some("http://app.example.com:3000/fn/default/app/rest?x=1")
        );
    }

    #[test]
    fn without_an_arrival_the_request_is_its_own_url_and_the_client_unknown() {
        let request = shaped("/job?n=2", None);
        assert_eq!(
            header(&request, &FULL_URL),
            Some("http://app.example.com:3000/job?n=2")
        );
        assert_eq!(header(&request, &PATH_INFO), Some("/job"));
        // The client's own header is never passed on as the client's address.
        assert_eq!(header(&request, &CLIENT_ADDR), None);
    }

    #[test]
    fn tls_makes_the_full_url_https() {
        let mut over_tls = arrival("/x", Some("/x"));
        over_tls.tls = true;
        let request = shaped("/", Some(over_tls));
        assert_eq!(
            header(&request, &FULL_URL),
            Some("https://app.example.com:3000/x")
        );
    }
}
