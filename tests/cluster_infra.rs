//! The scale-out test harness (`tests/common/cluster.rs`) proves each engine
//! it starts works, over that engine's real protocol: SeaweedFS's S3 with
//! signed requests (single node, and a replicated cluster that loses a
//! volume server), Azurite's blob API with Shared Key, nginx balancing and
//! streaming in front of two small HTTP servers, and a fresh PostgreSQL
//! database. A missing tool skips a test loudly, or fails it with
//! `BERTH_REQUIRE_CLIENTS=1` (`BERTH_REQUIRE_POSTGRES=1`).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, put};
use bytes::Bytes;
use common::*;
use futures::{SinkExt as _, StreamExt as _};

// ---------------------------------------------------------------------------
// SeaweedFS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweed_mini_serves_signed_s3_requests() {
    let Some(mut mini) = SeaweedMini::start().await else {
        return;
    };
    let s3 = mini.s3.clone();
    let bucket = mini.bucket.clone();
    let content = Bytes::from(blob_content("mini", 3 * MIB + 17));
    // A key with the characters berth's keys have (slashes, colons).
    let key = "blobs/sha256/ab/abcdef:0123 x";

    s3.put_object(&bucket, key, content.clone())
        .await
        .expect_status(200, "PutObject");
    let got = s3.get_object(&bucket, key).await;
    got.expect_status(200, "GetObject");
    assert!(got.body == content, "GetObject returned other bytes");

    // Signatures are checked: a wrong secret and no signature are refused.
    let forged = s3
        .with_secret("not-the-secret")
        .get_object(&bucket, key)
        .await;
    forged.expect_status(403, "GetObject signed with a wrong secret");
    let anonymous = reqwest::get(format!(
        "{}/{bucket}/blobs/sha256/ab/abcdef:0123%20x",
        mini.endpoint
    ))
    .await
    .expect("an answer");
    assert_eq!(anonymous.status().as_u16(), 403, "an unsigned GetObject");

    // More buckets for more tests on one server.
    let other = mini.new_bucket().await;
    assert_ne!(other, bucket);
    s3.get_object(&other, key)
        .await
        .expect_status(404, "the key in a new bucket");

    s3.delete_object(&bucket, key)
        .await
        .expect_status(204, "DeleteObject");
    s3.get_object(&bucket, key)
        .await
        .expect_status(404, "GetObject after DeleteObject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweed_cluster_replicates_across_gateways_and_loses_no_object_with_a_volume_server() {
    let started = Instant::now();
    let Some(mut cluster) = SeaweedCluster::start().await else {
        return;
    };
    let ready = started.elapsed();
    let bucket = cluster.bucket.clone();
    let (first, second) = (cluster.s3[0].clone(), cluster.s3[1].clone());
    assert_eq!(
        cluster
            .live_volume_servers()
            .await
            .expect("master status")
            .len(),
        3
    );

    // Objects spread over several volumes, each volume on two of the three
    // volume servers (replication 001). Written through one gateway, each is
    // read at once through the other's filer.
    let mut objects = Vec::new();
    for i in 0..12 {
        let size = if i == 0 { 9 * MIB + 5 } else { 64 * 1024 + i };
        let key = format!("objects/{i}");
        let content = Bytes::from(blob_content(&key, size));
        first
            .put_object(&bucket, &key, content.clone())
            .await
            .expect_status(200, &format!("PutObject {key} through gateway 0"));
        let got = second.get_object(&bucket, &key).await;
        got.expect_status(
            200,
            &format!("GetObject {key} through gateway 1, just after"),
        );
        assert!(got.body == content, "{key} read through gateway 1 differs");
        objects.push((key, content));
    }

    // Each volume server in turn is killed: every object lives on two of the
    // three, so each one has lost a copy at some point, and all stay
    // readable through both gateways. Writes go on meanwhile.
    for victim in 0..3 {
        cluster.kill_volume(victim);
        for (key, content) in &objects {
            for (g, gateway) in [&first, &second].into_iter().enumerate() {
                let got = gateway.get_object(&bucket, key).await;
                got.expect_status(
                    200,
                    &format!("GetObject {key} through gateway {g}, volume server {victim} killed"),
                );
                assert!(
                    got.body == *content,
                    "{key} differs with volume server {victim} killed"
                );
            }
        }
        let key = format!("written-without-{victim}");
        let content = Bytes::from(blob_content(&key, 300 * 1024));
        second
            .put_object(&bucket, &key, content.clone())
            .await
            .expect_status(
                200,
                &format!("PutObject with volume server {victim} killed"),
            );
        // The filers share their metadata asynchronously: the other
        // gateway knows the key within moments, not at once.
        let deadline = Instant::now() + Duration::from_secs(15);
        while first.get_object(&bucket, &key).await.status != StatusCode::OK {
            assert!(
                Instant::now() < deadline,
                "{key} written through gateway 1 is unknown to gateway 0 after 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        objects.push((key, content));
        cluster.restart_volume(victim).await;
    }
    for (key, content) in &objects {
        let got = first.get_object(&bucket, key).await;
        got.expect_status(
            200,
            &format!("GetObject {key} with all volume servers back"),
        );
        assert!(got.body == *content, "{key} differs after the restarts");
    }

    let forged = first
        .with_secret("wrong")
        .get_object(&bucket, "objects/0")
        .await;
    forged.expect_status(403, "a gateway checks signatures");
    eprintln!(
        "SeaweedFS cluster ready in {ready:?}; whole test {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Azurite

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_serves_shared_key_requests() {
    let Some(azurite) = Azurite::start().await else {
        return;
    };
    let client = azurite.client.clone();
    let container = azurite.container.clone();
    let content = Bytes::from(blob_content("azurite", 2 * MIB + 3));
    let blob = "blobs/sha256/cd/cdef:0123";

    client
        .put_blob(&container, blob, content.clone())
        .await
        .expect_status(201, "Put Blob");
    let got = client.get_blob(&container, blob).await;
    got.expect_status(200, "Get Blob");
    assert!(got.body == content, "Get Blob returned other bytes");

    let forged = client
        .with_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .get_blob(&container, blob)
        .await;
    forged.expect_status(403, "Get Blob signed with a wrong key");

    let other = azurite.new_container().await;
    client
        .get_blob(&other, blob)
        .await
        .expect_status(404, "the blob in a new container");
}

// ---------------------------------------------------------------------------
// nginx

/// What a small upstream saw.
#[derive(Clone)]
struct Upstream {
    name: &'static str,
    /// Request body bytes received so far, across requests.
    received: Arc<AtomicU64>,
}

/// `GET /whoami`: its name and the forwarded headers, as JSON.
async fn whoami(
    State(upstream): State<Upstream>,
    headers: HeaderMap,
) -> axum::Json<serde_json::Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    axum::Json(serde_json::json!({
        "name": upstream.name,
        "host": header("host"),
        "x-forwarded-for": header("x-forwarded-for"),
        "x-forwarded-proto": header("x-forwarded-proto"),
    }))
}

/// `PUT /upload`: reads the body as it comes, counting and hashing it.
async fn upload(State(upstream): State<Upstream>, body: Body) -> axum::Json<serde_json::Value> {
    let mut stream = body.into_data_stream();
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut total = 0u64;
    while let Some(frame) = stream.next().await {
        let Ok(data) = frame else {
            break;
        };
        context.update(&data);
        total += data.len() as u64;
        upstream
            .received
            .fetch_add(data.len() as u64, Ordering::SeqCst);
    }
    axum::Json(serde_json::json!({
        "name": upstream.name,
        "bytes": total,
        "sha256": format!("sha256:{}", hex::encode(context.finish())),
    }))
}

/// A small HTTP server on a free loopback port.
async fn start_upstream(name: &'static str) -> (SocketAddr, Upstream) {
    let upstream = Upstream {
        name,
        received: Arc::new(AtomicU64::new(0)),
    };
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/upload", put(upload))
        .with_state(upstream.clone());
    (serve_on_loopback(app).await, upstream)
}

async fn whoami_through(client: &reqwest::Client, nginx: &Nginx) -> reqwest::Response {
    client
        .get(format!("{}/whoami", nginx.url))
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .expect("an answer from nginx")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_balances_round_robin_and_streams_bodies_through() {
    let (a, upstream_a) = start_upstream("a").await;
    let (b, upstream_b) = start_upstream("b").await;
    let Some(nginx) = Nginx::round_robin(&[a, b]).await else {
        return;
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    // Requests alternate between the two upstreams, with the client's Host
    // and the forwarding headers passed on.
    let mut names = Vec::new();
    for _ in 0..6 {
        let response = whoami_through(&client, &nginx).await;
        assert_eq!(response.status().as_u16(), 200, "{}", nginx.error_log());
        let seen: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(seen["host"], nginx.addr.to_string(), "{seen}");
        assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
        assert_eq!(seen["x-forwarded-for"], "192.0.2.7, 127.0.0.1", "{seen}");
        names.push(seen["name"].as_str().expect("a name").to_owned());
    }
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin alternates: {names:?}");
    }

    // A 64 MiB PUT with its length announced, as a registry client pushes a
    // layer. The client sends 1 MiB and waits until an upstream has it:
    // nginx passes the body on as it arrives instead of collecting it
    // first (which would hold that first MiB until the last one came).
    let size = 64 * MIB;
    let content = Bytes::from(blob_content("through-nginx", size));
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let request = client
        .put(format!("{}/upload", nginx.url))
        .header("content-length", size.to_string())
        .body(reqwest::Body::wrap_stream(rx))
        .send();
    let request = tokio::spawn(request);
    let received =
        || upstream_a.received.load(Ordering::SeqCst) + upstream_b.received.load(Ordering::SeqCst);
    tx.send(Ok(content.slice(..MIB)))
        .await
        .expect("first MiB queued");
    let waiting = Instant::now();
    while received() < MIB as u64 {
        assert!(
            waiting.elapsed() < Duration::from_secs(15),
            "the upstream got {} bytes of the first MiB: nginx is buffering the request body\n{}",
            received(),
            nginx.error_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for piece in content[MIB..].chunks(MIB) {
        tx.send(Ok(content.slice_ref(piece))).await.expect("queued");
    }
    drop(tx);
    let response = request.await.expect("request task").expect("an answer");
    assert_eq!(response.status().as_u16(), 200, "{}", nginx.error_log());
    let seen: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(seen["bytes"], size as u64, "{seen}");
    assert_eq!(seen["sha256"], sha256(&content), "{seen}");
    assert_eq!(
        nginx.spooled_request_bodies(),
        0,
        "nginx spooled a request body to disk"
    );
    assert_eq!(
        nginx.spooled_responses(),
        0,
        "nginx spooled a response to disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_failover_passes_requests_from_a_dead_upstream_to_a_live_one() {
    let (live, _) = start_upstream("live").await;
    // A port nobody listens on: a replica that was killed.
    let dead = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let Some(failover) = Nginx::round_robin_with_failover(&[dead, live]).await else {
        return;
    };
    for _ in 0..4 {
        let response = whoami_through(&client, &failover).await;
        assert_eq!(response.status().as_u16(), 200, "{}", failover.error_log());
    }
    drop(failover);

    // Without failover the client sees the dead replica's failure.
    let Some(plain) = Nginx::round_robin(&[dead, live]).await else {
        return;
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(whoami_through(&client, &plain).await.status().as_u16());
    }
    assert!(statuses.contains(&502), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
}

// ---------------------------------------------------------------------------
// PostgreSQL

#[tokio::test]
async fn postgres_database_is_fresh_and_dropped_afterwards() {
    use sqlx::{Connection as _, Executor as _, Row as _};
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let mut connection = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("the new database accepts connections");
    let tables: i64 = sqlx::query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut connection)
        .await
        .expect("a count")
        .get(0);
    assert_eq!(tables, 0, "a fresh database has no tables");
    connection
        .execute("CREATE TABLE t (x integer)")
        .await
        .expect("a table");
    // A connection left open (as a killed replica leaves it) does not keep
    // the database from being dropped.
    let name = database.name.clone();
    let url = database.url.clone();
    drop(database);
    let gone = sqlx::PgConnection::connect(&url).await;
    assert!(gone.is_err(), "database {name} still accepts connections");
    drop(connection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_of_our_own_keeps_committed_rows_through_a_kill_and_a_restart() {
    use sqlx::{Connection as _, Executor as _, Row as _};
    let Some(mut server) = PgServer::start().await else {
        return;
    };
    let database = server.database().await;
    let mut connection = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("a connection");
    connection
        .execute("CREATE TABLE t (x integer); INSERT INTO t VALUES (1)")
        .await
        .expect("a committed row");

    // A crash: the connection breaks, and the committed row is there after
    // recovery.
    server.kill();
    assert!(
        connection.execute("SELECT 1").await.is_err(),
        "a query on a killed server"
    );
    server.restart().await;
    let mut connection = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("a connection after the restart");
    let count: i64 = sqlx::query("SELECT count(*) FROM t")
        .fetch_one(&mut connection)
        .await
        .expect("the table")
        .get(0);
    assert_eq!(count, 1);
    connection
        .execute("INSERT INTO t VALUES (2)")
        .await
        .expect("a second row");

    // A clean stop: no connections while it is down, everything after.
    server.stop();
    assert!(sqlx::PgConnection::connect(&database.url).await.is_err());
    server.restart().await;
    let mut connection = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("a connection after the second restart");
    let count: i64 = sqlx::query("SELECT count(*) FROM t")
        .fetch_one(&mut connection)
        .await
        .expect("the table")
        .get(0);
    assert_eq!(count, 2);
    drop(connection);
    drop(database);
}
