//! Bearer tokens of the token service over HTTP: their lifetime
//! (`auth.tokenLifetime`) and the rotation of the key that signs them
//! (`auth.signingKeyRotation`), with short settings so that expiry and
//! rotation happen while the test watches.
//!
//! berth accepts a token up to [`CLOCK_SKEW`] past its `exp` (replicas'
//! clocks differ a little); after that it is expired.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::Value;

/// How long past its `exp` berth still accepts a token.
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// One part (`0`: header, `1`: claims) of a JWT, decoded.
fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("JWT {jwt:?} has no part {index}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("JWT part {index} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part {index} is not JSON: {e}"))
}

/// The id of the key that signed `jwt` (`kid` of its header).
fn key_id(jwt: &str) -> String {
    let header = jwt_part(jwt, 0);
    assert_eq!(header["alg"], "ES256", "JWT header {header}");
    header["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no kid in JWT header {header}"))
        .to_owned()
}

/// When `jwt` expires (its `exp` claim), as a time.
fn expiry(jwt: &str) -> SystemTime {
    let claims = jwt_part(jwt, 1);
    let exp = claims["exp"]
        .as_u64()
        .unwrap_or_else(|| panic!("no exp in claims {claims}"));
    UNIX_EPOCH + Duration::from_secs(exp)
}

/// Sleeps until `at` (at once if it is past).
async fn sleep_until(at: SystemTime) {
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

fn pull_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}

/// A pull of `app:v1` with `token`.
async fn pull_with(registry: &TestRegistry, token: &str) -> reqwest::Response {
    registry.with_bearer(token).get_manifest("app", "v1").await
}

/// Makes berth verify presented credentials afresh: it remembers verified
/// ones until the access policy changes, and creating a project changes it.
async fn forget_verified_credentials(registry: &TestRegistry, project: &str) {
    registry.create_project(project).await;
}

/// The refusal of an expired token: `401`, a `Bearer` challenge naming the
/// token service (so that the client fetches a new token), and
/// `UNAUTHORIZED`.
async fn assert_expired(response: reqwest::Response) {
    assert_challenge(&response);
    let challenge = header(&response, "www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=") && challenge.contains("/auth/token\""),
        "challenge {challenge:?}"
    );
    assert!(challenge.contains("service=\"berth\""), "{challenge:?}");
    assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn an_expired_bearer_token_is_refused_with_a_challenge() {
    let lifetime = Duration::from_secs(10);
    let registry = TestRegistry::start_with(|config| config.auth.token_lifetime = lifetime).await;
    registry.push_image("app", "v1").await;

    let token = registry.bearer_token(&pull_scope("app")).await.unwrap();
    let expires = expiry(&token);
    let issued = SystemTime::now();
    assert!(
        expires <= issued + lifetime && expires + Duration::from_secs(2) > issued + lifetime,
        "a token lives auth.tokenLifetime ({lifetime:?}): exp {expires:?}, issued {issued:?}"
    );
    expect_status(pull_with(&registry, &token).await, StatusCode::OK).await;

    // Used again shortly before it expires, and verified afresh (berth
    // may remember it from here on), it still works…
    sleep_until(expires - Duration::from_secs(2)).await;
    forget_verified_credentials(&registry, "before-expiry").await;
    expect_status(pull_with(&registry, &token).await, StatusCode::OK).await;

    // …and once expired it is refused, however recently it was used.
    sleep_until(expires + CLOCK_SKEW + Duration::from_secs(1)).await;
    assert_expired(pull_with(&registry, &token).await).await;

    // A fresh token from the same credentials works.
    let fresh = registry.bearer_token(&pull_scope("app")).await.unwrap();
    expect_status(pull_with(&registry, &fresh).await, StatusCode::OK).await;
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_work_until_they_expire() {
    let rotation = Duration::from_secs(2);
    let lifetime = Duration::from_secs(10);
    let registry = TestRegistry::start_with(|config| {
        config.auth.token_lifetime = lifetime;
        config.auth.signing_key_rotation = rotation;
    })
    .await;
    registry.push_image("app", "v1").await;

    let old = registry.bearer_token(&pull_scope("app")).await.unwrap();
    let old_key = key_id(&old);
    expect_status(pull_with(&registry, &old).await, StatusCode::OK).await;

    // The rotation job replaces the key within about one rotation interval
    // (plus its check interval, plus slack for a loaded machine).
    let deadline = SystemTime::now() + rotation * 5;
    let new = loop {
        let token = registry.bearer_token(&pull_scope("app")).await.unwrap();
        if key_id(&token) != old_key {
            break token;
        }
        assert!(
            SystemTime::now() < deadline,
            "tokens are still signed by key {old_key} after {:?}",
            rotation * 5
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Both keys verify: the rotation invalidated nothing.
    forget_verified_credentials(&registry, "after-first-rotation").await;
    expect_status(pull_with(&registry, &new).await, StatusCode::OK).await;
    expect_status(pull_with(&registry, &old).await, StatusCode::OK).await;

    // Several rotations later, the old token still works until it expires…
    let expires = expiry(&old);
    sleep_until(expires - Duration::from_secs(1)).await;
    let newest = registry.bearer_token(&pull_scope("app")).await.unwrap();
    assert_ne!(key_id(&newest), key_id(&new), "the key rotated again");
    forget_verified_credentials(&registry, "before-expiry").await;
    expect_status(pull_with(&registry, &old).await, StatusCode::OK).await;

    // …and not after.
    sleep_until(expires + CLOCK_SKEW + Duration::from_secs(1)).await;
    assert_expired(pull_with(&registry, &old).await).await;
    expect_status(pull_with(&registry, &newest).await, StatusCode::OK).await;
}
