//! The dashboard's sessions and guards in process: the headers every page carries, what a
//! session cookie is worth once tampered with or once its key is revoked, the CSRF check in
//! front of every state change, and namespaces a key does not cover. The browser test in
//! vireo-cli's e2e suite drives the same pages in Chromium.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vireo_core::Role;
use vireo_core::time::now_micros;

use super::Gateway;

/// A page's status, `Location`, `Set-Cookie` pairs and body.
struct Page {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn fetch(gateway: &Gateway, method: Method, path: &str, cookie: &str, form: &str) -> Page {
    let mut request = Request::builder().method(method).uri(path);
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    if !form.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = request.body(Body::from(form.to_string())).unwrap();
    let response = gateway.router.clone().oneshot(request).await.unwrap();
    let headers = response.headers().clone();
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    Page {
        status: response.status(),
        location: headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string()),
        cookies,
        body: String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap(),
        headers,
    }
}

fn csrf_token(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_string()
}

/// Logs in with `key`: the session's cookies and its CSRF token.
async fn log_in(gateway: &Gateway, key: &str) -> (String, String) {
    let form = fetch(gateway, Method::GET, "/ui/login", "", "").await;
    let cookie = form.cookies.join("; ");
    let token = csrf_token(&form.body);
    let answer = fetch(
        gateway,
        Method::POST,
        "/ui/login",
        &cookie,
        &format!("key={key}&csrf={token}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let session = answer.cookies.join("; ");
    let page = fetch(gateway, Method::GET, "/ui", &session, "").await;
    assert_eq!(page.status, StatusCode::OK);
    (session, csrf_token(&page.body))
}

#[tokio::test]
async fn every_page_forbids_inline_scripts_and_framing() {
    let gateway = Gateway::new().await;
    let page = fetch(&gateway, Method::GET, "/ui/login", "", "").await;
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(!page.body.contains("<script>"), "an inline script");
    assert!(!page.body.contains("style="), "an inline style");
}

#[tokio::test]
async fn without_a_valid_session_pages_send_the_browser_to_log_in() {
    let gateway = Gateway::new().await;
    let (session, _) = log_in(&gateway, &gateway.admin).await;
    let tampered = session.replacen("vireo_session=", "vireo_session=x", 1);
    for cookie in ["", "vireo_session=forged", tampered.as_str()] {
        let page = fetch(&gateway, Method::GET, "/ui/ns/mine", cookie, "").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{cookie}");
        assert_eq!(page.location.as_deref(), Some("/ui/login"));
    }
}

#[tokio::test]
async fn revoking_a_key_ends_its_sessions() {
    let gateway = Gateway::new().await;
    let key = gateway.key(Role::Developer, &["mine"]).await;
    let (session, _) = log_in(&gateway, &key).await;
    let id = vireo_core::auth::split_key(&key).unwrap().0.to_string();
    gateway
        .directory
        .revoke_key(&id, now_micros())
        .await
        .unwrap();
    let page = fetch(&gateway, Method::GET, "/ui", &session, "").await;
    assert_eq!(page.location.as_deref(), Some("/ui/login"));
}

#[tokio::test]
async fn a_wrong_key_opens_no_session() {
    let gateway = Gateway::new().await;
    let form = fetch(&gateway, Method::GET, "/ui/login", "", "").await;
    let cookie = form.cookies.join("; ");
    let body = format!(
        "key=vireo_0123456789abcdef01_nope&csrf={}",
        csrf_token(&form.body)
    );
    let answer = fetch(&gateway, Method::POST, "/ui/login", &cookie, &body).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer
            .cookies
            .iter()
            .all(|c| !c.starts_with("vireo_session="))
    );
}

#[tokio::test]
async fn state_changes_need_the_sessions_csrf_token() {
    let gateway = Gateway::new().await;
    let (session, token) = log_in(&gateway, &gateway.admin).await;
    let move_alias = "/ui/ns/mine/fn/f/aliases/prod";
    for form in ["version=1".to_string(), "version=1&csrf=forged".to_string()] {
        let answer = fetch(&gateway, Method::POST, move_alias, &session, &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form}");
        assert!(answer.body.contains("CSRF"), "{}", answer.body);
    }
    // Logging in needs the token too, so no other site can log a browser in.
    let answer = fetch(&gateway, Method::POST, "/ui/login", "", "key=x").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // With the token the request reaches its handler: logging out.
    let answer = fetch(
        &gateway,
        Method::POST,
        "/ui/logout",
        &session,
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/ui/login"));
}

#[tokio::test]
async fn a_key_sees_only_its_namespaces_and_a_viewer_may_not_change_them() {
    let gateway = Gateway::new().await;
    let key = gateway.key(Role::Viewer, &["mine"]).await;
    let (session, token) = log_in(&gateway, &key).await;
    let listing = fetch(&gateway, Method::GET, "/ui", &session, "").await;
    assert!(listing.body.contains("/ui/ns/mine"));
    assert!(!listing.body.contains("theirs"));
    let hidden = fetch(&gateway, Method::GET, "/ui/ns/theirs", &session, "").await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let form = format!("version=1&csrf={token}");
    let refused = fetch(
        &gateway,
        Method::POST,
        "/ui/ns/mine/fn/f/aliases/prod",
        &session,
        &form,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let keys = fetch(&gateway, Method::GET, "/ui/keys", &session, "").await;
    assert_eq!(keys.status, StatusCode::FORBIDDEN);
}
