//! [`ImageStreamStore`] over SQL (both engines, like `sql.rs`), and the
//! step every tag move shares, [`point_tags`], which pushes run inside
//! their own transaction.
//!
//! Revisions of one stream are ordered by its row in `image_streams`: a
//! write that records revisions first takes that row (`UPDATE … SET
//! generation = generation … RETURNING`), which on PostgreSQL holds its row
//! lock until commit, so concurrent pushes and tag moves of one stream take
//! their generations one after the other and never deadlock on each other's
//! tag rows. On SQLite the single writer serializes them anyway.

use std::collections::{BTreeMap, HashSet, VecDeque};

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::image_streams::{
    DueImport, ImageStreamStore, Revision, RevisionCause, RevisionOrigin, SpecTag, StoredStream,
    TagCondition, TagMove, TagSource, TagTarget,
};
use super::sql::{Engine, SqlMetadataStore, ensure_repository, from_row, parse, repository_id};
use super::sql_access::escape_like;
use super::sql_garbage;
use super::sql_tag_policies::{self, live};
use super::tag_policies::{ApplicablePolicies, TagChange};
use super::{MetadataError, Result, Timestamp, now};

/// No policy: what a repository without any is checked against.
static EMPTY: ApplicablePolicies = ApplicablePolicies(Vec::new());
use crate::oci::digest::Digest;
use crate::oci::names::{RepositoryName, Tag};

/// The source kind whose spec tags the scheduler imports.
const DOCKER_IMAGE: &str = "DockerImage";

/// How many tags one move may carry along through `--alias` chains: the
/// chains are short in practice, and this bounds a loop of aliases.
const MAX_FOLLOWING_TAGS: usize = 64;

/// The stream's name within its namespace (`team/app` of `ns/team/app`);
/// `None` for a repository of one component.
pub(super) fn stream_name(repo: &RepositoryName) -> Option<&str> {
    repo.as_str().split_once('/').map(|(_, rest)| rest)
}

/// The stream row of a repository made now: generation 0 when a push makes
/// it (its first revision is generation 1).
pub(super) async fn insert_stream_row(
    conn: &mut AnyConnection,
    repo_id: i64,
    generation: i64,
    lookup_local: bool,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO image_streams (repository_id, uid, generation, lookup_local, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository_id) DO NOTHING",
    )
    .bind(repo_id)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(generation)
    .bind(i64::from(lookup_local))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes the stream's row for the rest of the transaction and returns its
/// generation (making the row if a repository older than it lacks one).
async fn lock_stream(conn: &mut AnyConnection, repo_id: i64, at: Timestamp) -> Result<i64> {
    for _ in 0..2 {
        let row = sqlx::query(
            "UPDATE image_streams SET generation = generation WHERE repository_id = $1 \
             RETURNING generation",
        )
        .bind(repo_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            return Ok(row.try_get("generation")?);
        }
        insert_stream_row(conn, repo_id, 0, false, at).await?;
    }
    Err(MetadataError::Corrupt(format!(
        "the image stream row of repository {repo_id} cannot be made"
    )))
}

async fn set_generation(conn: &mut AnyConnection, repo_id: i64, generation: i64) -> Result<()> {
    sqlx::query("UPDATE image_streams SET generation = $2 WHERE repository_id = $1")
        .bind(repo_id)
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The image tags are pointed at, and the revisions that records.
pub(super) struct NewRevision<'a> {
    pub digest: &'a Digest,
    pub docker_image_reference: Option<&'a str>,
    pub origin: &'a RevisionOrigin,
    pub at: Timestamp,
    /// When the tags pointed expire (`None`: never); set on every tag
    /// written, moved or not, so that a push resets it.
    pub expires_at: Option<Timestamp>,
}

/// Points each of `tags` at the revision's image and records a revision
/// for each tag that moved, then for each tag following a moved one
/// (`--alias`), inside the caller's transaction. A tag already at the
/// image records nothing. Returns the tags that moved with their
/// revisions' generations.
pub(super) async fn point_tags(
    conn: &mut AnyConnection,
    repo_id: i64,
    repo: &RepositoryName,
    tags: &[Tag],
    revision: &NewRevision<'_>,
) -> Result<Vec<(String, i64)>> {
    let NewRevision {
        digest,
        docker_image_reference,
        origin,
        at,
        expires_at,
    } = *revision;
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let start = lock_stream(conn, repo_id, at).await?;
    // Read only when a tag that exists would move, or would get an
    // expiry: a push making new tags without one costs nothing more.
    let mut policies: Option<ApplicablePolicies> = None;
    let mut generation = start;
    let mut moved = Vec::new();
    let mut seen = HashSet::new();
    let mut pending: VecDeque<(String, RevisionOrigin)> = tags
        .iter()
        .map(|t| (t.as_str().to_owned(), origin.clone()))
        .collect();
    while let Some((tag, origin)) = pending.pop_front() {
        if !seen.insert(tag.clone()) || seen.len() > MAX_FOLLOWING_TAGS {
            continue;
        }
        let current = sqlx::query(
            "SELECT digest, expires_at FROM tags WHERE repository_id = $1 AND name = $2",
        )
        .bind(repo_id)
        .bind(tag.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        // An expired tag is as if deleted: pointing it anew is no move.
        let (current, current_expiry) = match current {
            Some(row) if live(row.try_get("expires_at")?, at) => (
                Some(row.try_get::<String, _>("digest")?),
                row.try_get::<Option<Timestamp>, _>("expires_at")?,
            ),
            _ => (None, None),
        };
        let moves = current.as_deref().is_some_and(|d| d != digest.as_str());
        let mut tag_expires_at = expires_at;
        if moves || tag_expires_at.is_some() {
            if policies.is_none() {
                policies = Some(sql_tag_policies::applicable(conn, repo).await?);
            }
            let applicable = policies.as_ref().map_or(&EMPTY, |p| p);
            if moves && let Some(refusal) = applicable.refusal(repo, &tag, TagChange::Move) {
                return Err(MetadataError::TagImmutable(Box::new(refusal)));
            }
            // An immutable tag never expires: it could not be deleted.
            if applicable.matches(&tag) {
                tag_expires_at = None;
            }
        }
        if current.as_deref() == Some(digest.as_str()) {
            if current_expiry != tag_expires_at {
                sqlx::query(
                    "UPDATE tags SET expires_at = $3 WHERE repository_id = $1 AND name = $2",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .bind(tag_expires_at)
                .execute(&mut *conn)
                .await?;
            }
            continue;
        }
        sqlx::query(
            "INSERT INTO tags (repository_id, name, digest, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, \
             updated_at = excluded.updated_at, expires_at = excluded.expires_at",
        )
        .bind(repo_id)
        .bind(tag.as_str())
        .bind(digest.as_str())
        .bind(at)
        .bind(tag_expires_at)
        .execute(&mut *conn)
        .await?;
        generation += 1;
        sqlx::query(
            "INSERT INTO tag_revisions (repository_id, tag, generation, digest, docker_image_reference, \
             created_at, created_by, client_address, cause, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(repo_id)
        .bind(tag.as_str())
        .bind(generation)
        .bind(digest.as_str())
        .bind(docker_image_reference)
        .bind(at)
        .bind(origin.by.as_deref())
        .bind(origin.address.as_deref())
        .bind(origin.cause.as_str())
        .bind(origin.source.as_deref())
        .execute(&mut *conn)
        .await?;
        moved.push((tag.clone(), generation));
        let Some(stream) = stream_name(repo) else {
            continue;
        };
        let followers = sqlx::query(
            "SELECT name FROM image_stream_spec_tags WHERE repository_id = $1 \
             AND from_kind = 'ImageStreamTag' AND from_name = $2 \
             AND (from_namespace IS NULL OR from_namespace = $3) ORDER BY name",
        )
        .bind(repo_id)
        .bind(format!("{stream}:{tag}"))
        .bind(repo.namespace())
        .fetch_all(&mut *conn)
        .await?;
        for row in followers {
            let follower: String = row.try_get("name")?;
            pending.push_back((
                follower,
                RevisionOrigin {
                    cause: RevisionCause::Tag,
                    by: origin.by.clone(),
                    address: origin.address.clone(),
                    source: Some(format!("{}/{stream}:{tag}", repo.namespace())),
                },
            ));
        }
    }
    if generation != start {
        set_generation(conn, repo_id, generation).await?;
    }
    Ok(moved)
}

/// Deletes, inside the caller's transaction, the history, conditions and
/// spec tags of the tags of `repo_id` pointing at `digest` (before those
/// tags' rows go with the manifest).
pub(super) async fn forget_tags_pointing_at(
    conn: &mut AnyConnection,
    repo_id: i64,
    digest: &Digest,
) -> Result<()> {
    for table in ["tag_revisions", "tag_conditions"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE repository_id = $1 AND tag IN \
             (SELECT name FROM tags WHERE repository_id = $1 AND digest = $2)"
        )))
        .bind(repo_id)
        .bind(digest.as_str())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "DELETE FROM image_stream_spec_tags WHERE repository_id = $1 AND name IN \
         (SELECT name FROM tags WHERE repository_id = $1 AND digest = $2)",
    )
    .bind(repo_id)
    .bind(digest.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a tag's row, history, conditions and spec tag inside the
/// caller's transaction. Whether the tag's row existed, and whether
/// anything did.
/// Whether the tag's row existed is said of a live row only: an expired
/// tag is as if already deleted (its row goes all the same). A live tag an
/// immutable-tags policy covers is refused, nothing deleted.
pub(super) async fn forget_tag(
    conn: &mut AnyConnection,
    repo_id: i64,
    repo: &RepositoryName,
    tag: &str,
) -> Result<(bool, bool)> {
    let at = now();
    let row =
        sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2 RETURNING expires_at")
            .bind(repo_id)
            .bind(tag)
            .fetch_optional(&mut *conn)
            .await?;
    let row_deleted = match row {
        Some(row) => live(row.try_get("expires_at")?, at),
        None => false,
    };
    if row_deleted
        && let Some(refusal) =
            sql_tag_policies::applicable(conn, repo)
                .await?
                .refusal(repo, tag, TagChange::Delete)
    {
        // The caller's transaction is dropped with this error: rolled back.
        return Err(MetadataError::TagImmutable(Box::new(refusal)));
    }
    let mut any = row_deleted;
    for statement in [
        "DELETE FROM tag_revisions WHERE repository_id = $1 AND tag = $2",
        "DELETE FROM tag_conditions WHERE repository_id = $1 AND tag = $2",
        "DELETE FROM image_stream_spec_tags WHERE repository_id = $1 AND name = $2",
    ] {
        any |= sqlx::query(statement)
            .bind(repo_id)
            .bind(tag)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0;
    }
    Ok((row_deleted, any))
}

/// Links `digest` of `source`, its child manifests and their blobs into
/// `repo_id`, inside the caller's transaction. False (nothing linked) if
/// `source` does not hold the manifest. What is linked is held against
/// garbage collection as a manifest put holds it (`sql_garbage`): a source
/// row the collector is removing is waited for and then found gone; a blob
/// being deleted is not linked.
async fn link_image(
    conn: &mut AnyConnection,
    engine: Engine,
    source: &RepositoryName,
    repo_id: i64,
    digest: &Digest,
    at: Timestamp,
) -> Result<bool> {
    let Some(source_id) = repository_id(conn, source).await? else {
        return Ok(false);
    };
    if source_id == repo_id {
        return sql_garbage::hold_manifest_link(conn, engine, repo_id, digest).await;
    }
    if !sql_garbage::copy_manifest_link(conn, engine, source_id, repo_id, digest, at).await? {
        return Ok(false);
    }
    let mut pending = vec![digest.clone()];
    let mut seen: HashSet<Digest> = pending.iter().cloned().collect();
    while let Some(manifest) = pending.pop() {
        let children = sqlx::query(
            "SELECT child_digest, kind FROM manifest_references WHERE manifest_digest = $1",
        )
        .bind(manifest.as_str())
        .fetch_all(&mut *conn)
        .await?;
        for child in children {
            let Ok(child_digest) = parse::<Digest>(&child, "child_digest") else {
                continue;
            };
            let kind: String = child.try_get("kind")?;
            match kind.as_str() {
                "manifest" if seen.insert(child_digest.clone()) => {
                    sql_garbage::copy_manifest_link(
                        conn,
                        engine,
                        source_id,
                        repo_id,
                        &child_digest,
                        at,
                    )
                    .await?;
                    pending.push(child_digest);
                }
                "config" | "layer" => {
                    sql_garbage::copy_blob_link(conn, engine, source_id, repo_id, &child_digest)
                        .await?;
                }
                _ => {}
            }
        }
    }
    Ok(true)
}

fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn spec_tag_from_row(row: &AnyRow) -> Result<SpecTag> {
    let kind: Option<String> = row.try_get("from_kind")?;
    let from = match kind {
        Some(kind) => Some(TagSource {
            kind,
            namespace: row.try_get("from_namespace")?,
            name: row
                .try_get::<Option<String>, _>("from_name")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(SpecTag {
        name: row.try_get("name")?,
        from,
        reference: flag(row, "reference")?,
        reference_policy: row.try_get("reference_policy")?,
        import_scheduled: flag(row, "import_scheduled")?,
        import_insecure: flag(row, "import_insecure")?,
        import_mode: row.try_get("import_mode")?,
        generation: row.try_get("generation")?,
    })
}

fn revision_from_row(row: &AnyRow) -> Result<Revision> {
    let cause: String = row.try_get("cause")?;
    Ok(Revision {
        tag: row.try_get("tag")?,
        generation: row.try_get("generation")?,
        digest: parse(row, "digest")?,
        docker_image_reference: row.try_get("docker_image_reference")?,
        created_at: row.try_get("created_at")?,
        origin: RevisionOrigin {
            cause: RevisionCause::parse(&cause)
                .ok_or_else(|| MetadataError::Corrupt(format!("revision cause {cause:?}")))?,
            by: row.try_get("created_by")?,
            address: row.try_get("client_address")?,
            source: row.try_get("source")?,
        },
    })
}

const STREAM_COLUMNS: &str =
    "r.name AS repository, s.uid, s.generation, s.lookup_local, s.created_at";
const SPEC_COLUMNS: &str = "r.name AS repository, t.name, t.from_kind, t.from_namespace, t.from_name, \
     t.reference, t.reference_policy, t.import_scheduled, t.import_insecure, t.import_mode, t.generation";
const REVISION_COLUMNS: &str = "r.name AS repository, t.tag, t.generation, t.digest, \
     t.docker_image_reference, t.created_at, t.created_by, t.client_address, t.cause, t.source";
const CONDITION_COLUMNS: &str = "r.name AS repository, t.tag, t.condition_type, t.status, \
     t.reason, t.message, t.last_transition_at, t.generation";

impl SqlMetadataStore {
    /// The streams whose repository names match `pattern` (`LIKE`, `\`
    /// escapes), with their tags, history, conditions and current tags: five queries
    /// whatever their number.
    async fn load_streams(&self, pattern: &str) -> Result<Vec<StoredStream>> {
        let mut streams: BTreeMap<String, StoredStream> = BTreeMap::new();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {STREAM_COLUMNS} FROM image_streams s \
             JOIN repositories r ON r.id = s.repository_id \
             WHERE r.name LIKE $1 ESCAPE '\\' ORDER BY r.name"
        )))
        .bind(pattern)
        .fetch_all(self.reader())
        .await?;
        for row in rows {
            let name: String = row.try_get("repository")?;
            streams.insert(
                name,
                StoredStream {
                    repository: parse(&row, "repository")?,
                    uid: row.try_get("uid")?,
                    generation: row.try_get("generation")?,
                    lookup_local: flag(&row, "lookup_local")?,
                    created_at: row.try_get("created_at")?,
                    spec_tags: Vec::new(),
                    history: Vec::new(),
                    conditions: Vec::new(),
                    current_tags: Vec::new(),
                },
            );
        }
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let children = |table: &str, columns: &str, order: &str| {
            format!(
                "SELECT {columns} FROM {table} t JOIN repositories r ON r.id = t.repository_id \
                 WHERE r.name LIKE $1 ESCAPE '\\' ORDER BY r.name, {order}"
            )
        };
        let spec = sqlx::query(AssertSqlSafe(children(
            "image_stream_spec_tags",
            SPEC_COLUMNS,
            "t.name",
        )))
        .bind(pattern)
        .fetch_all(self.reader())
        .await?;
        for row in spec {
            let name: String = row.try_get("repository")?;
            if let Some(stream) = streams.get_mut(&name) {
                stream.spec_tags.push(spec_tag_from_row(&row)?);
            }
        }
        let history = sqlx::query(AssertSqlSafe(children(
            "tag_revisions",
            REVISION_COLUMNS,
            "t.tag, t.generation DESC",
        )))
        .bind(pattern)
        .fetch_all(self.reader())
        .await?;
        for row in history {
            let name: String = row.try_get("repository")?;
            if let Some(stream) = streams.get_mut(&name) {
                stream.history.push(revision_from_row(&row)?);
            }
        }
        let conditions = sqlx::query(AssertSqlSafe(children(
            "tag_conditions",
            CONDITION_COLUMNS,
            "t.tag, t.condition_type",
        )))
        .bind(pattern)
        .fetch_all(self.reader())
        .await?;
        for row in conditions {
            let name: String = row.try_get("repository")?;
            if let Some(stream) = streams.get_mut(&name) {
                stream.conditions.push(from_row(&row)?);
            }
        }
        // Which tags are current: an expired one keeps its history but is
        // shown gone.
        let tags = sqlx::query(AssertSqlSafe(children(
            "tags",
            "r.name AS repository, t.name, t.expires_at",
            "t.name",
        )))
        .bind(pattern)
        .fetch_all(self.reader())
        .await?;
        let at = now();
        for row in tags {
            let name: String = row.try_get("repository")?;
            let expires_at: Option<Timestamp> = row.try_get("expires_at")?;
            if let Some(stream) = streams.get_mut(&name)
                && live(expires_at, at)
            {
                stream.current_tags.push((row.try_get("name")?, expires_at));
            }
        }
        Ok(streams.into_values().collect())
    }
}

#[async_trait]
impl ImageStreamStore for SqlMetadataStore {
    async fn create_stream(&self, repo: &RepositoryName, lookup_local: bool) -> Result<bool> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(repo.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !inserted {
            tx.rollback().await?;
            return Ok(false);
        }
        let repo_id = repository_id(&mut tx, repo)
            .await?
            .ok_or_else(|| MetadataError::Corrupt(format!("repository {repo} vanished")))?;
        insert_stream_row(&mut tx, repo_id, 1, lookup_local, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn stream(&self, repo: &RepositoryName) -> Result<Option<StoredStream>> {
        let pattern = escape_like(repo.as_str());
        Ok(self.load_streams(&pattern).await?.into_iter().next())
    }

    async fn streams(&self, namespace: Option<&str>) -> Result<Vec<StoredStream>> {
        let pattern = match namespace {
            Some(ns) => format!("{}/%", escape_like(ns)),
            None => "%/%".to_owned(),
        };
        self.load_streams(&pattern).await
    }

    async fn delete_stream(&self, repo: &RepositoryName) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        // The foreign keys cascade; said here too, so that nothing depends
        // on the engine enforcing them.
        for table in [
            "tag_conditions",
            "tag_revisions",
            "image_stream_spec_tags",
            "image_streams",
            "tags",
            "repository_manifests",
            "repository_blobs",
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE repository_id = $1"
            )))
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_lookup_policy(&self, repo: &RepositoryName, local: bool) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        let generation = lock_stream(&mut tx, repo_id, now()).await?;
        sqlx::query(
            "UPDATE image_streams SET lookup_local = $2, generation = $3 WHERE repository_id = $1",
        )
        .bind(repo_id)
        .bind(i64::from(local))
        .bind(generation + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn move_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        target: &TagTarget,
        origin: &RevisionOrigin,
    ) -> Result<TagMove> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        let repo_id = ensure_repository(&mut tx, repo, at).await?;
        let source = target.from_repository.as_ref().unwrap_or(repo);
        if !link_image(&mut tx, self.engine(), source, repo_id, &target.digest, at).await? {
            tx.rollback().await?;
            return Ok(TagMove::ImageUnknown);
        }
        let revision = NewRevision {
            digest: &target.digest,
            docker_image_reference: target.docker_image_reference.as_deref(),
            origin,
            at,
            expires_at: target.expires_at,
        };
        let moved =
            point_tags(&mut tx, repo_id, repo, std::slice::from_ref(tag), &revision).await?;
        tx.commit().await?;
        let mut moved = moved.into_iter();
        Ok(match moved.next() {
            Some((_, generation)) => TagMove::Moved {
                generation,
                followers: moved.collect(),
            },
            None => TagMove::Unchanged,
        })
    }

    async fn set_spec_tag(&self, repo: &RepositoryName, spec: &SpecTag) -> Result<i64> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        let repo_id = ensure_repository(&mut tx, repo, at).await?;
        let generation = lock_stream(&mut tx, repo_id, at).await? + 1;
        let from = spec.from.as_ref();
        // A source recorded anew is checked at once, whatever the schedule
        // of the one it replaces.
        let import_due_at = from.is_some_and(|f| f.kind == DOCKER_IMAGE).then_some(at);
        sqlx::query(
            "INSERT INTO image_stream_spec_tags (repository_id, name, from_kind, from_namespace, \
             from_name, reference, reference_policy, import_scheduled, import_insecure, import_mode, generation, \
             import_due_at, import_failures) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0) \
             ON CONFLICT (repository_id, name) DO UPDATE SET from_kind = excluded.from_kind, \
             from_namespace = excluded.from_namespace, from_name = excluded.from_name, \
             reference = excluded.reference, reference_policy = excluded.reference_policy, \
             import_scheduled = excluded.import_scheduled, import_insecure = excluded.import_insecure, \
             import_mode = excluded.import_mode, generation = excluded.generation, \
             import_due_at = excluded.import_due_at, import_failures = 0",
        )
        .bind(repo_id)
        .bind(spec.name.as_str())
        .bind(from.map(|f| f.kind.as_str()))
        .bind(from.and_then(|f| f.namespace.as_deref()))
        .bind(from.map(|f| f.name.as_str()))
        .bind(i64::from(spec.reference))
        .bind(spec.reference_policy.as_str())
        .bind(i64::from(spec.import_scheduled))
        .bind(i64::from(spec.import_insecure))
        .bind(spec.import_mode.as_str())
        .bind(generation)
        .bind(import_due_at)
        .execute(&mut *tx)
        .await?;
        set_generation(&mut tx, repo_id, generation).await?;
        tx.commit().await?;
        Ok(generation)
    }

    async fn delete_stream_tag(&self, repo: &RepositoryName, tag: &str) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        let generation = lock_stream(&mut tx, repo_id, now()).await?;
        let (_, any) = forget_tag(&mut tx, repo_id, repo, tag).await?;
        if !any {
            tx.rollback().await?;
            return Ok(false);
        }
        set_generation(&mut tx, repo_id, generation + 1).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_tag_condition(
        &self,
        repo: &RepositoryName,
        condition: &TagCondition,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO tag_conditions (repository_id, tag, condition_type, status, reason, message, \
             last_transition_at, generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (repository_id, tag, condition_type) DO UPDATE SET \
             last_transition_at = CASE WHEN tag_conditions.status = excluded.status \
               THEN tag_conditions.last_transition_at ELSE excluded.last_transition_at END, \
             status = excluded.status, reason = excluded.reason, message = excluded.message, \
             generation = excluded.generation",
        )
        .bind(repo_id)
        .bind(condition.tag.as_str())
        .bind(condition.condition_type.as_str())
        .bind(condition.status.as_str())
        .bind(condition.reason.as_deref())
        .bind(condition.message.as_deref())
        .bind(condition.last_transition_at)
        .bind(condition.generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn clear_tag_condition(
        &self,
        repo: &RepositoryName,
        tag: &str,
        condition_type: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "DELETE FROM tag_conditions WHERE repository_id = \
             (SELECT id FROM repositories WHERE name = $1) AND tag = $2 AND condition_type = $3",
        )
        .bind(repo.as_str())
        .bind(tag)
        .bind(condition_type)
        .execute(self.writer())
        .await?
        .rows_affected()
            > 0)
    }

    async fn due_imports(&self, now: Timestamp, limit: u32) -> Result<Vec<DueImport>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SPEC_COLUMNS}, t.import_due_at, t.import_failures \
             FROM image_stream_spec_tags t JOIN repositories r ON r.id = t.repository_id \
             WHERE t.from_kind = $1 AND t.import_due_at <= $2 \
             ORDER BY t.import_due_at, r.name, t.name LIMIT $3"
        )))
        .bind(DOCKER_IMAGE)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let failures: i64 = row.try_get("import_failures")?;
                Ok(DueImport {
                    repository: parse(row, "repository")?,
                    spec: spec_tag_from_row(row)?,
                    due_at: row.try_get("import_due_at")?,
                    failures: u32::try_from(failures).map_err(|_| {
                        MetadataError::Corrupt(format!("import_failures {failures}"))
                    })?,
                })
            })
            .collect()
    }

    async fn set_import_schedule(
        &self,
        repo: &RepositoryName,
        tag: &str,
        due_at: Option<Timestamp>,
        failures: u32,
    ) -> Result<bool> {
        // Neither the spec tag's generation nor the stream's moves: the
        // schedule is not part of what was asked of the tag.
        Ok(sqlx::query(
            "UPDATE image_stream_spec_tags SET import_due_at = $3, import_failures = $4 \
             WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2",
        )
        .bind(repo.as_str())
        .bind(tag)
        .bind(due_at)
        .bind(i64::from(failures))
        .execute(self.writer())
        .await?
        .rows_affected()
            > 0)
    }
}
