//! Changes to what pulls read, as PostgreSQL tells every replica.
//!
//! Migration 0012's triggers notify the channel [`CHANNEL`] with a
//! repository's name whenever its tags, its manifest links or the
//! repository itself change, whoever changes them; PostgreSQL delivers the
//! notification to every listening session once the transaction commits.
//! [`follow`] listens on a connection of its own and hands each name to a
//! [`ChangeSink`] (the pull cache, which forgets the repository).
//!
//! A listener alone cannot tell "nothing changed" from "the notifications
//! stopped arriving", so it also says how far it has caught up. Every
//! [`HEARTBEAT`] it notifies a channel of its own, on the same connection,
//! noting the time just before; PostgreSQL delivers notifications in the
//! order their transactions committed, so when heartbeat *n* comes back,
//! every change committed before *n* was sent has been handed over. The sink
//! learns that time ([`ChangeSink::caught_up`]) and serves what it holds
//! only while it is recent. When the connection is lost, or a heartbeat does
//! not come back within [`HEARTBEAT_TIMEOUT`], the sink is told
//! ([`ChangeSink::lost`]: anything may have changed) and a new connection is
//! made; once it listens, the sink is told again (what changed in between
//! was never delivered) and heartbeats resume.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;

/// The channel migration 0012's triggers notify.
pub const CHANNEL: &str = "berth_pulls";

/// How often the listener checks how far it has caught up.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// A heartbeat not back after this long means the connection no longer
/// delivers: it is dropped and made again.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// The first wait before connecting again, doubled per failure in a row.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What [`follow`] tells.
pub trait ChangeSink: Send + Sync {
    /// Something `repository` resolves references to changed (committed).
    fn changed(&self, repository: &str);
    /// Changes may have gone untold: anything may have changed.
    fn lost(&self);
    /// Every change committed before `as_of` has been passed to
    /// [`changed`](Self::changed).
    fn caught_up(&self, as_of: Instant);
}

/// Why a listening session ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("stopping")]
    Stopped,
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("the connection was lost")]
    ConnectionLost,
    #[error("a heartbeat did not come back within {HEARTBEAT_TIMEOUT:?}")]
    HeartbeatLate,
}

/// Listens for changes on the database at `url` until `stop` turns true,
/// connecting again whenever the connection is lost. `name` identifies this
/// process in `pg_stat_activity` (its `application_name`).
pub async fn follow(
    url: String,
    name: String,
    sink: Arc<dyn ChangeSink>,
    mut stop: watch::Receiver<bool>,
) {
    // A channel of this process's own, so that heartbeats reach no other
    // replica.
    let heartbeats = format!(
        "{CHANNEL}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let mut wait = RECONNECT_FIRST;
    loop {
        let started = Instant::now();
        let end = session(&url, &name, &heartbeats, sink.as_ref(), &mut stop).await;
        sink.lost();
        match end {
            SessionEnd::Stopped => return,
            end => {
                tracing::warn!(error = %end, "not listening for other replicas' changes; pulls read the database until this replica listens again")
            }
        }
        // A session that lasted a while starts the backoff afresh.
        if started.elapsed() > RECONNECT_MAX * 2 {
            wait = RECONNECT_FIRST;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => return,
        }
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn session(
    url: &str,
    name: &str,
    heartbeats: &str,
    sink: &dyn ChangeSink,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let connected = async {
        let options = PgConnectOptions::from_str(url)?.application_name(name);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(HEARTBEAT_TIMEOUT)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(options)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        // A lost connection is reported at once, never mended behind the
        // sink's back: what was notified meanwhile is gone.
        listener.eager_reconnect(false);
        listener.ignore_pool_close_event(true);
        listener.listen_all([CHANNEL, heartbeats]).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    let mut listener = tokio::select! {
        connected = tokio::time::timeout(HEARTBEAT_TIMEOUT * 5, connected) => match connected {
            Ok(Ok(listener)) => listener,
            Ok(Err(e)) => return SessionEnd::Database(e),
            Err(_) => return SessionEnd::HeartbeatLate,
        },
        _ = stopped(stop) => return SessionEnd::Stopped,
    };
    // Whatever changed before LISTEN took effect was not delivered here.
    sink.lost();
    tracing::info!(
        channel = CHANNEL,
        "now listening for other replicas' changes"
    );

    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut next = 0u64;
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(stop) => return SessionEnd::Stopped,
            _ = ticker.tick() => {
                if sent.front().is_some_and(|(_, at)| at.elapsed() > HEARTBEAT_TIMEOUT) {
                    return SessionEnd::HeartbeatLate;
                }
                next += 1;
                let at = Instant::now();
                // Notifications that arrive while this runs are kept by the
                // listener for the next `try_recv`.
                let notified = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(heartbeats)
                    .bind(next.to_string())
                    .execute(&mut listener);
                match tokio::time::timeout(HEARTBEAT_TIMEOUT, notified).await {
                    Ok(Ok(_)) => sent.push_back((next, at)),
                    Ok(Err(e)) => return SessionEnd::Database(e),
                    Err(_) => return SessionEnd::HeartbeatLate,
                }
            }
            // Cancelling `try_recv` while it waits for a message loses
            // nothing (sqlx reads a message whole or not at all).
            received = listener.try_recv() => match received {
                Err(e) => return SessionEnd::Database(e),
                Ok(None) => return SessionEnd::ConnectionLost,
                Ok(Some(notification)) if notification.channel() == CHANNEL => {
                    sink.changed(notification.payload());
                }
                Ok(Some(notification)) => {
                    let Ok(number) = notification.payload().parse::<u64>() else {
                        continue;
                    };
                    while let Some(&(n, at)) = sent.front() && n <= number {
                        sent.pop_front();
                        if n == number {
                            sink.caught_up(at);
                        }
                    }
                }
            },
        }
    }
}
