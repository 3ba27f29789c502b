//! Authentication: every `/v2/` request needs the admin's credentials.

mod common;

use common::*;

/// A 401 with an authentication challenge and, unless it is a HEAD, an
/// `UNAUTHORIZED` error body.
async fn assert_challenged(response: reqwest::Response, method: &Method) {
    assert_challenge(&response);
    assert_header(&response, "docker-distribution-api-version", "registry/2.0");
    if *method == Method::HEAD {
        expect_status(response, StatusCode::UNAUTHORIZED).await;
    } else {
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
}

/// `GET /v2/` as `user` with `password` is refused with a challenge.
async fn assert_base_challenges(registry: &RegistryClient, user: &str, password: &str) {
    let response = registry.with_credentials(user, password).get("/v2/").await;
    assert_challenged(response, &Method::GET).await;
}

/// Each of `requests`, sent by `caller` (`who`, for the messages), is
/// refused with a challenge.
async fn assert_each_challenged(
    caller: &RegistryClient,
    requests: Vec<(Method, String)>,
    who: &str,
) {
    for (method, path) in requests {
        let response = caller.send(method.clone(), &path).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} {who}"
        );
        assert_challenged(response, &method).await;
    }
}

/// A registry holding the image `app:latest`, with an upload open in `app`.
async fn registry_with_content() -> (TestRegistry, PushedImage, Upload) {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "latest").await;
    let upload = registry.start_upload("app").await;
    (registry, image, upload)
}

/// One request of every kind the API has, on content that exists.
fn every_endpoint(repo: &str, image: &PushedImage, upload: &Upload) -> Vec<(Method, String)> {
    let layer = &image.layers[0].digest;
    let manifest = &image.digest;
    let location = &upload.location;
    vec![
        (Method::GET, "/v2/".into()),
        (Method::HEAD, "/v2/".into()),
        (Method::GET, "/v2/_catalog".into()),
        (Method::GET, format!("/v2/{repo}/tags/list")),
        (Method::GET, format!("/v2/{repo}/manifests/latest")),
        (Method::HEAD, format!("/v2/{repo}/manifests/latest")),
        (Method::GET, format!("/v2/{repo}/manifests/{manifest}")),
        (Method::PUT, format!("/v2/{repo}/manifests/other")),
        (Method::DELETE, format!("/v2/{repo}/manifests/latest")),
        (Method::DELETE, format!("/v2/{repo}/manifests/{manifest}")),
        (Method::GET, format!("/v2/{repo}/blobs/{layer}")),
        (Method::HEAD, format!("/v2/{repo}/blobs/{layer}")),
        (Method::DELETE, format!("/v2/{repo}/blobs/{layer}")),
        (Method::POST, format!("/v2/{repo}/blobs/uploads/")),
        (
            Method::POST,
            format!("/v2/other/blobs/uploads/?mount={layer}&from={repo}"),
        ),
        (Method::GET, location.clone()),
        (Method::PATCH, location.clone()),
        (
            Method::PUT,
            with_query(location, &format!("digest={layer}")),
        ),
        (Method::DELETE, location.clone()),
        (Method::GET, format!("/v2/{repo}/referrers/{manifest}")),
        // Nothing is revealed about requests that would fail anyway.
        (Method::GET, format!("/v2/{repo}/manifests/no-such-tag")),
        (Method::GET, "/v2/Invalid_Name/manifests/latest".into()),
        (Method::GET, "/v2/no/such/endpoint".into()),
    ]
}

#[tokio::test]
async fn base_endpoint_challenges_a_client_without_credentials() {
    let registry = TestRegistry::start().await;

    let response = registry.anonymous().get("/v2/").await;

    assert_challenged(response, &Method::GET).await;
}

#[tokio::test]
async fn base_endpoint_rejects_a_wrong_password() {
    let registry = TestRegistry::start().await;
    let wrong = format!("{}-but-wrong", registry.password().unwrap());
    assert_base_challenges(&registry, ADMIN_USER, &wrong).await;
}

#[tokio::test]
async fn base_endpoint_rejects_an_unknown_user() {
    let registry = TestRegistry::start().await;
    let password = registry.password().unwrap().to_owned();
    assert_base_challenges(&registry, "nobody", &password).await;
}

#[tokio::test]
async fn base_endpoint_rejects_malformed_authorization() {
    let registry = TestRegistry::start().await;

    for authorization in ["Bearer abc.def.ghi", "Basic !!!not-base64!!!", "Basic"] {
        let response = registry
            .anonymous()
            .request(Method::GET, "/v2/")
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();

        assert_challenged(response, &Method::GET).await;
    }
}

#[tokio::test]
async fn base_endpoint_accepts_the_admin_password() {
    let registry = TestRegistry::start().await;

    let response = registry.get("/v2/").await;

    let response = expect_status(response, StatusCode::OK).await;
    assert_header(&response, "docker-distribution-api-version", "registry/2.0");
    assert_no_header(&response, "www-authenticate");
}

#[tokio::test]
async fn every_endpoint_challenges_anonymous_clients_and_changes_nothing() {
    let (registry, image, upload) = registry_with_content().await;
    let requests = every_endpoint("app", &image, &upload);
    assert_each_challenged(&registry.anonymous(), requests, "without credentials").await;

    // None of the refused writes and deletes happened.
    expect_status(registry.get_manifest("app", "latest").await, StatusCode::OK).await;
    expect_status(
        registry.get_blob("app", &image.layers[0].digest).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        registry.upload_status(&upload.location).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(registry.tags("app").await, vec!["latest"]);
}

#[tokio::test]
async fn endpoints_reject_a_wrong_password() {
    let (registry, image, upload) = registry_with_content().await;
    let impostor = registry.with_credentials(ADMIN_USER, "not-the-password");
    // One request per kind of endpoint: few enough failed logins that no
    // lockout policy kicks in.
    let layer = &image.layers[0].digest;
    let sample = [
        (Method::GET, "/v2/_catalog".to_owned()),
        (Method::GET, "/v2/app/tags/list".to_owned()),
        (Method::GET, "/v2/app/manifests/latest".to_owned()),
        (
            Method::DELETE,
            format!("/v2/app/manifests/{}", image.digest),
        ),
        (Method::HEAD, format!("/v2/app/blobs/{layer}")),
        (Method::POST, "/v2/app/blobs/uploads/".to_owned()),
        (Method::PATCH, upload.location.clone()),
        (Method::GET, format!("/v2/app/referrers/{}", image.digest)),
    ];

    assert_each_challenged(&impostor, sample.into(), "with a wrong password").await;
    expect_status(registry.get_manifest("app", "latest").await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_bearer_token_lacking_a_scope_its_holder_may_have_is_told_to_fetch_one() {
    let registry = TestRegistry::start().await;
    registry.push_image("ns/app", "v1").await;
    let base = registry.base_url().to_owned();
    // The challenge for a push to ns/app, with `more` at its end.
    let push_challenge = |more: &str| {
        format!(
            "Bearer realm=\"{base}/auth/token\",service=\"berth\",\
             scope=\"repository:ns/app:pull,push\"{more}"
        )
    };
    let pull_only = registry
        .bearer_token(&["repository:ns/app:pull".to_owned()])
        .await
        .expect("a pull token");
    let holder = registry.with_bearer(&pull_only);
    expect_status(holder.get_manifest("ns/app", "v1").await, StatusCode::OK).await;

    // A push with it: 403, and a challenge naming the scope needed.
    let response = holder.post_upload("ns/app", "").await;
    assert_header(
        &response,
        "www-authenticate",
        &push_challenge(",error=\"insufficient_scope\""),
    );
    assert_error(response, StatusCode::FORBIDDEN, "DENIED").await;
    // The token that scope gets works.
    let pusher = registry
        .bearer_token(&["repository:ns/app:pull,push".to_owned()])
        .await
        .expect("a push token");
    expect_status(
        registry
            .with_bearer(&pusher)
            .post_upload("ns/app", "")
            .await,
        StatusCode::ACCEPTED,
    )
    .await;

    // Without a token: the plain challenge.
    let response = registry.anonymous().post_upload("ns/app", "").await;
    assert_header(&response, "www-authenticate", &push_challenge(""));
    assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}
