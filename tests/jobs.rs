//! Jobs that run once across replicas: two `berth serve` processes on one
//! PostgreSQL database, with short job timings (lease 3 s, renewed every
//! second; a look every 200 ms; `stale-uploads` due every half second and each
//! run held 1.5 s by the test setting `BERTH_TEST_JOB_PAUSE`, so that runs
//! are long enough to overlap if both replicas ran the job, and to kill
//! the replica running one).
//!
//! What is checked from outside berth: the runs each process logs (start
//! and end by the database's clock) never overlap, and match the runs the
//! database counts; after SIGKILL of the replica running the job, the
//! other claims it once the dead one's lease has expired (never before)
//! and within the lease plus one look, runs it and records it.
//!
//! Run alone: `cargo test --test jobs -- --nocapture` (needs the machine's
//! PostgreSQL; skipped loudly without it unless `BERTH_REQUIRE_POSTGRES=1`).

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, Row};

use common::*;

const JOB: &str = "stale-uploads";
const LEASE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(200);
const HELD: Duration = Duration::from_millis(1500);
const PASSWORD: &str = "jobs-test-admin-password";

/// One replica on the shared database.
fn replica(dir: &std::path::Path, database_url: &str) -> ServeCommand {
    BerthProcess::serve(dir)
        .admin_password(PASSWORD)
        .env("BERTH_DATABASE_URL", database_url)
        .env("BERTH_DATABASE_MAX_CONNECTIONS", "4")
        .env("BERTH_UPLOADS_CLEANUP_INTERVAL", "500ms")
        .env(
            "BERTH_JOBS_LEASE",
            humantime::format_duration(LEASE).to_string(),
        )
        .env(
            "BERTH_JOBS_POLL_INTERVAL",
            humantime::format_duration(POLL).to_string(),
        )
        .env(
            berth::jobs::TEST_PAUSE_VARIABLE,
            format!("{JOB}={}", humantime::format_duration(HELD)),
        )
        .env("RUST_LOG", "info,berth::jobs=debug")
        .env("NO_COLOR", "1")
}

/// The job's row, and the database's clock, read by the test itself.
#[derive(Debug, Clone)]
struct JobRow {
    holder: Option<String>,
    lease_until: Option<i64>,
    last_started_at: Option<i64>,
    last_replica: Option<String>,
    last_outcome: Option<String>,
    runs: i64,
    now: i64,
}

impl JobRow {
    fn running(&self) -> bool {
        self.holder.is_some() && self.lease_until.is_some_and(|until| until > self.now)
    }
}

async fn job_row(db: &mut sqlx::PgConnection) -> JobRow {
    let row = sqlx::query(
        "SELECT lease_holder, lease_until, last_started_at, last_replica, last_outcome, runs, \
         (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS now \
         FROM jobs WHERE name = $1",
    )
    .bind(JOB)
    .fetch_one(db)
    .await
    .expect("the job's row");
    JobRow {
        holder: row.get("lease_holder"),
        lease_until: row.get("lease_until"),
        last_started_at: row.get("last_started_at"),
        last_replica: row.get("last_replica"),
        last_outcome: row.get("last_outcome"),
        runs: row.get("runs"),
        now: row.get("now"),
    }
}

/// `(started_ms, finished_ms)` of every run of the job a log records.
fn runs_in_log(log: &str) -> Vec<(i64, i64)> {
    let number = |line: &str, field: &str| -> i64 {
        let at = line
            .find(&format!("{field}="))
            .unwrap_or_else(|| panic!("{field} in {line}"));
        line[at + field.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|e| panic!("{field} in {line}: {e}"))
    };
    log.lines()
        .filter(|l| l.contains("job run finished") && l.contains(JOB))
        .map(|l| (number(l, "started_ms"), number(l, "finished_ms")))
        .collect()
}

/// Whether `replica` (`hostname-pid-random`) is the process `process`.
fn is(replica: &str, process: &BerthProcess) -> bool {
    replica.contains(&format!("-{}-", process.pid()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_one_replica_at_a_time_and_is_taken_over_when_it_dies() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Started together: both migrate the fresh database and bootstrap.
    let (mut a, mut b) = tokio::join!(
        replica(&tmp.path().join("a"), &database.url).start(),
        replica(&tmp.path().join("b"), &database.url).start(),
    );
    let mut db = sqlx::PgConnection::connect(&database.url).await.unwrap();

    // --- One replica at a time.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let recorded = job_row(&mut db).await.runs;
    let (runs_a, runs_b) = (runs_in_log(&a.log()), runs_in_log(&b.log()));
    let mut runs: Vec<(i64, i64)> = runs_a.iter().chain(&runs_b).copied().collect();
    runs.sort();
    eprintln!(
        "runs in 9 s: {} by A, {} by B, {recorded} recorded by the database",
        runs_a.len(),
        runs_b.len()
    );
    assert!(runs.len() >= 3, "too few runs: {runs:?}");
    for (started, finished) in &runs {
        assert!(
            finished - started >= i64::try_from(HELD.as_millis()).unwrap(),
            "a run shorter than it is held: {runs:?}"
        );
    }
    for pair in runs.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two runs overlap: {:?} and {:?} (A: {runs_a:?}, B: {runs_b:?})",
            pair[0],
            pair[1]
        );
    }
    // Every run recorded was logged once (one more may have ended between
    // the two reads).
    let logged = i64::try_from(runs.len()).unwrap();
    assert!(
        (recorded..=recorded + 1).contains(&logged),
        "{logged} runs logged, {recorded} recorded"
    );

    // --- Taken over when the replica running it dies.
    let deadline = Instant::now() + Duration::from_secs(10);
    // A run just started, so that it is still running when killed.
    let held = loop {
        let row = job_row(&mut db).await;
        if row.running() && row.last_started_at.is_some_and(|at| row.now - at < 300) {
            break row;
        }
        assert!(Instant::now() < deadline, "the job never ran: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let holder_id = held.holder.clone().unwrap();
    let (victim, survivor) = if is(&holder_id, &a) {
        (&mut a, &mut b)
    } else {
        assert!(is(&holder_id, &b), "held by neither: {holder_id}");
        (&mut b, &mut a)
    };
    // Asked to run while it runs: not queued again, and the answer (from
    // the other replica) says who runs it.
    let asked = survivor
        .api_post(&format!("/api/v1/jobs/{JOB}/run"), json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(asked["status"]["holder"], holder_id.as_str(), "{asked}");

    victim.kill();
    let killed_at = Instant::now();
    // The dead replica's last renewal.
    let dead = job_row(&mut db).await;
    assert_eq!(dead.holder.as_deref(), Some(holder_id.as_str()), "{dead:?}");
    let expiry = dead.lease_until.unwrap();
    let (taken_over, taken_after) = loop {
        let row = job_row(&mut db).await;
        if row.last_started_at != dead.last_started_at {
            break (row, killed_at.elapsed());
        }
        assert!(
            killed_at.elapsed() < LEASE + POLL + Duration::from_secs(5),
            "not taken over: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let started = taken_over.last_started_at.unwrap();
    eprintln!(
        "taken over {taken_after:?} after SIGKILL, {} ms after the dead replica's lease expired \
         (lease {LEASE:?}, look every {POLL:?})",
        started - expiry
    );
    let survivor_id = taken_over.last_replica.clone().unwrap();
    assert!(is(&survivor_id, survivor), "{taken_over:?}");
    assert!(
        started >= expiry,
        "taken over {} ms before the lease expired",
        expiry - started
    );
    assert!(
        taken_after <= LEASE + POLL + Duration::from_secs(1),
        "taken over only after {taken_after:?}"
    );
    assert!(
        started - expiry <= i64::try_from((POLL + Duration::from_secs(1)).as_millis()).unwrap(),
        "taken over {} ms after the lease expired",
        started - expiry
    );

    // The survivor's run is recorded, and shown.
    let deadline = Instant::now() + HELD + Duration::from_secs(5);
    loop {
        let row = job_row(&mut db).await;
        if row.last_started_at == Some(started) && row.holder.is_none() {
            assert_eq!(row.last_outcome.as_deref(), Some("succeeded"), "{row:?}");
            break;
        }
        assert!(Instant::now() < deadline, "run not recorded: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown = survivor
        .api_get(&format!("/api/v1/jobs/{JOB}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(
        shown["status"]["lastReplica"],
        survivor_id.as_str(),
        "{shown}"
    );
    assert_eq!(shown["status"]["lastOutcome"], "Succeeded", "{shown}");
    let log = survivor.log();
    assert!(
        log.contains("took the job over") && log.contains(&holder_id),
        "the survivor's log does not tell of the takeover:\n{}",
        survivor.log_tail()
    );
}
