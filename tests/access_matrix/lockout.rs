//! Brute force: failed logins lock out the address they came from, never
//! the user elsewhere; tokens are never refused for the name that comes
//! with them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::Response;

use crate::common::*;
use crate::harness::*;

/// `Retry-After` in whole seconds, within the lockout.
#[track_caller]
fn assert_retry_after(response: &Response, lockout: Duration) {
    let text = header(response, "retry-after");
    let seconds: u64 = text
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {text:?} is not a number of seconds"));
    assert!(
        (1..=lockout.as_secs()).contains(&seconds),
        "Retry-After {seconds} for a {lockout:?} lockout"
    );
}

/// Every login path of a locked-out client: `/v2/` Basic, `/auth/token`
/// (GET and the OAuth2 POST) and the administration API all say 429 with
/// `Retry-After`.
async fn assert_locked_out(client: &RegistryClient, user: &str, password: &str, lockout: Duration) {
    let v2 = client.get("/v2/").await;
    assert_retry_after(&v2, lockout);
    assert_error(v2, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let token = client
        .get(&format!(
            "/auth/token?service=berth&scope=repository:{REPO}:pull"
        ))
        .await;
    assert_retry_after(&token, lockout);
    assert_error(token, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let oauth = client
        .anonymous()
        .request(Method::POST, "/auth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "password")
                .append_pair("username", user)
                .append_pair("password", password)
                .append_pair("service", "berth")
                .finish(),
        )
        .send()
        .await
        .expect("OAuth2 token request is sent");
    assert_retry_after(&oauth, lockout);
    assert_error(oauth, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let api = client.get("/api/v1/users/~").await;
    assert_retry_after(&api, lockout);
    let status = seen(api).await;
    assert_eq!(
        (status.status, status.code.as_deref()),
        (429, Some("TooManyRequests"))
    );
}

/// A `GET /v2/` from `client`, saying `X-Forwarded-For: forwarded`.
async fn v2_forwarded(client: &RegistryClient, forwarded: &str) -> Response {
    client
        .request(Method::GET, "/v2/")
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .expect("GET /v2/ is sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_lock_out_their_address_never_the_user_elsewhere() {
    const PER_USER: usize = 3;
    const PER_ADDRESS: usize = 6;
    let lockout = Duration::from_secs(3);
    let slowdown = Duration::from_secs(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let proxy_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let berth = BerthProcess::serve(&data)
        .envs(&[
            ("BERTH_AUTH_LOCKOUT_MAX_FAILURES_PER_USER", "3"),
            ("BERTH_AUTH_LOCKOUT_MAX_FAILURES_PER_ADDRESS", "6"),
            ("BERTH_AUTH_LOCKOUT_WINDOW", "10m"),
            ("BERTH_AUTH_LOCKOUT_DURATION", "3s"),
            ("BERTH_AUTH_LOCKOUT_SLOWDOWN", "1s"),
            ("BERTH_HTTP_TRUSTED_PROXIES", "127.0.0.5/32"),
        ])
        .start()
        .await;
    let admin = berth.client();
    for user in ["carol", "dave", "erin"] {
        admin
            .create_user(user, Some(&password_of(user)), false)
            .await;
    }
    let from = |octet: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet));
    let carol = admin.with_credentials("carol", &password_of("carol"));
    let dave = admin.with_credentials("dave", &password_of("dave"));
    // carol logs in: berth now remembers her credentials.
    expect_status(carol.get("/v2/").await, StatusCode::OK).await;

    // Someone at carol's address guesses her password.
    let guesser = admin.with_credentials("carol", "guess-1-wrong");
    for _ in 0..PER_USER {
        let response = guesser.get("/v2/").await;
        assert_challenge(&response);
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    // From that address carol is refused, even with her password,
    // everywhere, and even with the credentials berth remembers.
    assert_locked_out(&carol, "carol", &password_of("carol"), lockout).await;
    // From another address she is let in, not even slowed down (berth knows
    // these credentials to be right).
    let elsewhere = carol.connecting_from(from(3));
    expect_status(elsewhere.get("/v2/").await, StatusCode::OK).await;
    let token = elsewhere
        .bearer_token(&[format!("repository:{REPO}:pull")])
        .await;
    assert!(token.is_ok(), "token from elsewhere: {token:?}");
    // dave, at the guesser's address, is not refused either.
    expect_status(dave.get("/v2/").await, StatusCode::OK).await;

    // A user guessed at from many addresses is slowed down, not refused:
    // the right password from an address that has not been failing gets in
    // after the delay.
    for octet in [6, 7] {
        for _ in 0..PER_USER - 1 {
            let response = admin
                .with_credentials("erin", "guess-3-wrong")
                .connecting_from(from(octet))
                .get("/v2/")
                .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let started = Instant::now();
    let erin = admin
        .with_credentials("erin", &password_of("erin"))
        .connecting_from(from(3));
    expect_status(erin.get("/v2/").await, StatusCode::OK).await;
    assert!(
        started.elapsed() >= slowdown,
        "a login of a user under attack is slowed down: {:?}",
        started.elapsed()
    );

    // Guessing at a name stops no token that logs in with that name
    // (`podman login -u bot -p TOKEN`), remembered or not.
    admin.create_project("ci").await;
    admin.create_service_account("ci", "bot").await;
    let bot_token = admin
        .create_token("/api/v1/namespaces/ci/serviceaccounts/bot/tokens", None)
        .await;
    let bot_address = from(4);
    let bot = admin
        .with_credentials("bot", &bot_token.secret)
        .connecting_from(bot_address);
    expect_status(bot.get("/v2/").await, StatusCode::OK).await;
    let guesser = admin
        .with_credentials("bot", "guess-4-wrong")
        .connecting_from(bot_address);
    for _ in 0..PER_USER {
        let response = guesser.get("/v2/").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let guessed_bot = guesser.get("/v2/").await;
    assert_eq!(guessed_bot.status(), StatusCode::TOO_MANY_REQUESTS);
    for client in [
        bot.clone(),
        bot.with_bearer(&bot_token.secret),
        bot.with_credentials("someone-else", &bot_token.secret),
    ] {
        expect_status(client.get("/v2/").await, StatusCode::OK).await;
    }
    let token = bot
        .bearer_token(&["repository:ci/app:pull".to_owned()])
        .await;
    assert!(token.is_ok(), "the token's bearer token: {token:?}");

    // An address spraying guesses at many users is locked out as a whole,
    // token logins included; other addresses are not.
    let sprayer_ip = from(2);
    for i in 0..PER_ADDRESS {
        let response = admin
            .with_credentials(&format!("spray-{i}"), "guess-2-wrong")
            .connecting_from(sprayer_ip)
            .get("/v2/")
            .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let address_locked_at = Instant::now();
    let dave_from_sprayer = dave.connecting_from(sprayer_ip);
    assert_locked_out(&dave_from_sprayer, "dave", &password_of("dave"), lockout).await;
    let bot_from_sprayer = bot.connecting_from(sprayer_ip);
    assert_eq!(
        bot_from_sprayer.get("/v2/").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    expect_status(dave.get("/v2/").await, StatusCode::OK).await;

    // X-Forwarded-For is believed from the trusted proxy only. Through it,
    // guesses count against the client it names...
    let proxy = admin.connecting_from(proxy_ip);
    for _ in 0..PER_USER {
        let response =
            v2_forwarded(&proxy.with_credentials("dave", "guess-5-wrong"), "10.1.1.1").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let dave_via_proxy = dave.connecting_from(proxy_ip);
    assert_eq!(
        v2_forwarded(&dave_via_proxy, "10.1.1.1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...not against the proxy, nor anyone else behind it.
    assert_eq!(
        v2_forwarded(&dave_via_proxy, "10.2.2.2").await.status(),
        StatusCode::OK
    );
    // From anyone else it is ignored: a sprayer cannot hide behind it.
    let liar = from(8);
    for i in 0..PER_ADDRESS {
        let response = v2_forwarded(
            &admin
                .with_credentials(&format!("liar-{i}"), "guess-6-wrong")
                .connecting_from(liar),
            &format!("10.9.9.{i}"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        v2_forwarded(&dave.connecting_from(liar), "10.9.9.99")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // An admin unlocks carol: her address may try again at once.
    let unlocked = admin
        .api_expect(
            Method::POST,
            "/api/v1/users/carol/unlock",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(unlocked["message"], "user \"carol\" unlocked");
    expect_status(carol.get("/v2/").await, StatusCode::OK).await;

    // Once the lockouts have passed (the sprayer's began last but one),
    // everything works again.
    tokio::time::sleep(
        (lockout + Duration::from_millis(300)).saturating_sub(address_locked_at.elapsed()),
    )
    .await;
    expect_status(dave_from_sprayer.get("/v2/").await, StatusCode::OK).await;
    expect_status(bot_from_sprayer.get("/v2/").await, StatusCode::OK).await;
    expect_status(carol.get("/api/v1/users/~").await, StatusCode::OK).await;

    // The log tells who tried, from where, and how it went, never the
    // secrets tried.
    let log = berth.log();
    let lines = |words: &[&str]| {
        log.lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    };
    for (words, at_least) in [
        (&["login", "carol", "127.0.0.1", "failure"][..], PER_USER),
        (&["login", "spray-0", "127.0.0.2", "failure"], 1),
        (&["login", "carol", "127.0.0.1", "locked"], 1),
        (&["login", "erin", "127.0.0.3", "slowed"], 1),
        (&["login", "dave", "10.1.1.1", "failure"], PER_USER),
        (&["login", "dave", "10.1.1.1", "locked"], 1),
        (&["login", "liar-0", "127.0.0.8", "failure"], 1),
        (&["user unlocked", "carol"], 1),
        (&["token request", "carol", "127.0.0.3", "issued"], 1),
        (&["token request", "127.0.0.1", "refused"], 1),
    ] {
        assert!(lines(words) >= at_least, "{words:?} in\n{log}");
    }
    for secret in [
        password_of("carol"),
        password_of("dave"),
        password_of("erin"),
        bot_token.secret.clone(),
        "guess-1-wrong".into(),
        "guess-2-wrong".into(),
    ] {
        assert!(!log.contains(&secret), "the log shows a secret: {secret}");
    }
}
