//! Checks of responses: status codes, headers and OCI error bodies. Failures
//! say which request it was and what the server answered.

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// `response` if its status is `expected`; otherwise fails showing the body.
pub async fn expect_status(response: Response, expected: StatusCode) -> Response {
    if response.status() != expected {
        let status = response.status();
        let url = response.url().clone();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap_or_default();
        panic!("{url}: expected {expected}, got {status}\nheaders: {headers}\nbody: {body}");
    }
    response
}

/// The response is `status` with an OCI error body listing `code`.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) {
    let codes = error_codes(response, status).await;
    assert!(
        codes.iter().any(|c| c == code),
        "expected error code {code}, got {codes:?}"
    );
}

/// The response is `status` with an OCI error body; returns its codes.
pub async fn error_codes(response: Response, status: StatusCode) -> Vec<String> {
    let url = response.url().clone();
    let response = expect_status(response, status).await;
    let content_type = header(&response, "content-type");
    assert!(
        content_type.starts_with("application/json"),
        "{url}: error body has Content-Type {content_type}"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{url}: no \"errors\" array in {body}"));
    assert!(!errors.is_empty(), "{url}: empty \"errors\" in {body}");
    errors
        .iter()
        .map(|e| {
            let code = e["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{url}: error without a code: {e}"));
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{url}: malformed error code {code:?}"
            );
            code.to_owned()
        })
        .collect()
}

/// The value of header `name`; fails if it is absent.
#[track_caller]
pub fn header(response: &Response, name: &str) -> String {
    let value = response.headers().get(name).unwrap_or_else(|| {
        panic!(
            "{}: no {name} header in {:?}",
            response.url(),
            response.headers()
        )
    });
    value
        .to_str()
        .unwrap_or_else(|_| panic!("{name} header is not text: {value:?}"))
        .to_owned()
}

/// Every value of header `name`, in order (a header may be repeated).
pub fn header_values(response: &Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("header is text").to_owned())
        .collect()
}

#[track_caller]
pub fn assert_header(response: &Response, name: &str, expected: &str) {
    assert_eq!(
        header(response, name),
        expected,
        "{} header of {}",
        name,
        response.url()
    );
}

#[track_caller]
pub fn assert_no_header(response: &Response, name: &str) {
    assert!(
        response.headers().get(name).is_none(),
        "{}: unexpected {name} header {:?}",
        response.url(),
        response.headers().get(name)
    );
}

/// The response challenges the client to authenticate: `WWW-Authenticate`
/// names the `Basic` or `Bearer` scheme and a realm.
#[track_caller]
pub fn assert_challenge(response: &Response) {
    let challenge = header(response, "www-authenticate");
    let (scheme, parameters) = challenge.split_once(' ').unwrap_or((&challenge, ""));
    assert!(
        matches!(scheme, "Basic" | "Bearer"),
        "unknown scheme in challenge {challenge:?}"
    );
    let realm = parameters
        .split(',')
        .find_map(|p| p.trim().strip_prefix("realm=\""))
        .and_then(|r| r.strip_suffix('"'));
    assert!(
        realm.is_some_and(|r| !r.is_empty()),
        "no realm in challenge {challenge:?}"
    );
}

/// The `Range: 0-<last byte>` header of an upload says it holds `size`
/// bytes. An empty upload says `0-0`, as registries always have.
#[track_caller]
pub fn assert_upload_range(response: &Response, size: u64) {
    assert_header(response, "range", &format!("0-{}", size.saturating_sub(1)));
}

/// Bytes an upload holds, read from its `Range: 0-<last byte>` header. An
/// empty upload also says `0-0`, so use this only on uploads holding bytes.
#[track_caller]
pub fn upload_size_from_range(response: &Response) -> u64 {
    let range = header(response, "range");
    let last = range
        .strip_prefix("0-")
        .and_then(|last| last.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("Range {range:?} is not of the form 0-<last byte>"));
    last + 1
}
