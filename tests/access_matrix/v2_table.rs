//! Every `/v2/` route × every caller, and the catalog each caller is shown.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::*;
use crate::harness::*;

/// What a `/v2/` route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Any authenticated caller.
    Authenticated,
    /// Credentials of any kind, even an anonymous bearer token.
    Catalog,
    Verb(Verb),
    /// Making a namespace by pushing into it: cluster admins (the fixture
    /// keeps `autoCreateNamespaces: superusers`), whatever else they may do.
    CreateNamespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V2 {
    Base,
    BaseHead,
    Catalog,
    Tags,
    GetManifestByTag,
    HeadManifestByTag,
    GetManifestByDigest,
    HeadManifestByDigest,
    PutManifestByTag,
    PutManifestByDigest,
    DeleteManifestByTag,
    DeleteManifestByDigest,
    GetBlob,
    HeadBlob,
    DeleteBlob,
    StartUpload,
    StartUploadInNewNamespace,
    MonolithicUpload,
    Mount,
    MountFromUnreadable,
    UploadStatus,
    UploadChunk,
    FinishUpload,
    CancelUpload,
    Referrers,
}

/// Every `/v2/` route. Absent targets: [`GHOST`] for reads, deletes and
/// uploads (an upload id nobody made), a new repository for pushes that
/// create one.
fn v2_table() -> Vec<Row<V2, Need>> {
    use V2::*;
    use Verb::{Delete, Pull, Push};
    let v = Need::Verb;
    // The answers about the absent targets, by name, so that each row reads
    // as one line.
    let no_manifest = Some(err(404, "MANIFEST_UNKNOWN"));
    let no_blob = Some(err(404, "BLOB_UNKNOWN"));
    let no_upload = Some(err(404, "BLOB_UPLOAD_UNKNOWN"));
    let blobs_missing = Some(err(400, "MANIFEST_BLOB_UNKNOWN"));
    vec![
        row(Base, Need::Authenticated, ok(200), None),
        row(BaseHead, Need::Authenticated, ok(200), None),
        row(Catalog, Need::Catalog, ok(200), None),
        row(Tags, v(Pull), ok(200), Some(err(404, "NAME_UNKNOWN"))),
        row(GetManifestByTag, v(Pull), ok(200), no_manifest),
        row(HeadManifestByTag, v(Pull), ok(200), no_manifest),
        row(GetManifestByDigest, v(Pull), ok(200), no_manifest),
        row(HeadManifestByDigest, v(Pull), ok(200), no_manifest),
        // Into the absent repository: its blobs are not there.
        row(PutManifestByTag, v(Push), ok(201), blobs_missing),
        row(PutManifestByDigest, v(Push), ok(201), blobs_missing),
        row(DeleteManifestByTag, v(Delete), ok(202), no_manifest),
        row(DeleteManifestByDigest, v(Delete), ok(202), no_manifest),
        row(GetBlob, v(Pull), ok(200), no_blob),
        row(HeadBlob, v(Pull), ok(200), no_blob),
        row(DeleteBlob, v(Delete), ok(202), no_blob),
        // Pushes into a new repository make it.
        row(StartUpload, v(Push), ok(202), Some(ok(202))),
        // Into a namespace nobody made: only those who may make it.
        row(
            StartUploadInNewNamespace,
            Need::CreateNamespace,
            ok(202),
            None,
        ),
        row(MonolithicUpload, v(Push), ok(201), Some(ok(201))),
        row(Mount, v(Push), ok(201), Some(ok(201))),
        // Refused (a plain upload, 202) unless the caller may pull the
        // source: cluster admins get 201 (see `v2_expect`).
        row(MountFromUnreadable, v(Push), ok(202), Some(ok(202))),
        row(UploadStatus, v(Push), ok(204), no_upload),
        row(UploadChunk, v(Push), ok(202), no_upload),
        row(FinishUpload, v(Push), ok(201), no_upload),
        row(CancelUpload, v(Push), ok(204), no_upload),
        // Referrers of a digest nobody pushed are an empty list.
        row(Referrers, v(Pull), ok(200), Some(ok(200))),
    ]
}

/// The cell's expectation, from the row and the caller's class.
fn v2_expect(row: &Row<V2, Need>, caller: &Caller, target: Target) -> Exp {
    let unauthorized = err(401, "UNAUTHORIZED");
    if caller.who == Who::Refused {
        return unauthorized;
    }
    let allowed = match row.need {
        Need::Authenticated => caller.authenticated(),
        Need::Catalog => caller.who != Who::Anonymous,
        Need::Verb(verb) => caller.verbs.contains(&verb),
        Need::CreateNamespace => caller.cluster_admin,
    };
    if !allowed {
        return if caller.authenticated() {
            err(403, "DENIED")
        } else {
            unauthorized
        };
    }
    // The source is readable to whoever may pull everywhere.
    if row.route == V2::MountFromUnreadable && caller.may_everywhere(Verb::Pull) {
        return ok(201);
    }
    row.answer(target)
}

/// Builds the cell's request, first making (as the admin) what the cell
/// consumes, so that no cell depends on another's leftovers.
async fn v2_request(fx: &Fixture, route: V2, target: Target) -> Req {
    use V2::*;
    let admin = fx.admin();
    let k = fx.next();
    let existing = target == Target::Existing;
    let read_repo = if existing { REPO } else { GHOST };
    let new_repo = format!("{NS}/new-{k}");
    let push_repo = if existing { REPO } else { new_repo.as_str() };
    let image = &fx.image;
    let layer = &image.layers[0].digest;
    match route {
        Base => Req::new(Method::GET, "/v2/"),
        BaseHead => Req::new(Method::HEAD, "/v2/"),
        Catalog => Req::new(Method::GET, "/v2/_catalog"),
        Tags => Req::new(Method::GET, format!("/v2/{read_repo}/tags/list")).repos(&[read_repo]),
        GetManifestByTag | HeadManifestByTag => {
            let method = if route == GetManifestByTag {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(method, format!("/v2/{read_repo}/manifests/latest")).repos(&[read_repo])
        }
        GetManifestByDigest | HeadManifestByDigest => {
            let method = if route == GetManifestByDigest {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(
                method,
                format!("/v2/{read_repo}/manifests/{}", image.digest),
            )
            .repos(&[read_repo])
        }
        PutManifestByTag => Req::new(Method::PUT, format!("/v2/{read_repo}/manifests/put-{k}"))
            .body(OCI_MANIFEST, image.manifest.bytes.clone())
            .repos(&[read_repo]),
        PutManifestByDigest => {
            let manifest = fx.unique_manifest(k);
            Req::new(
                Method::PUT,
                format!("/v2/{read_repo}/manifests/{}", manifest.digest()),
            )
            .body(OCI_MANIFEST, manifest.bytes)
            .repos(&[read_repo])
        }
        DeleteManifestByTag => {
            if existing {
                admin
                    .push_manifest(REPO, &format!("del-{k}"), &image.manifest)
                    .await;
            }
            Req::new(Method::DELETE, format!("/v2/{read_repo}/manifests/del-{k}"))
                .repos(&[read_repo])
        }
        DeleteManifestByDigest => {
            let digest = if existing {
                let manifest = fx.unique_manifest(k);
                admin
                    .push_manifest(REPO, &manifest.digest(), &manifest)
                    .await
            } else {
                image.digest.clone()
            };
            Req::new(
                Method::DELETE,
                format!("/v2/{read_repo}/manifests/{digest}"),
            )
            .repos(&[read_repo])
        }
        GetBlob | HeadBlob => {
            let method = if route == GetBlob {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(method, format!("/v2/{read_repo}/blobs/{layer}")).repos(&[read_repo])
        }
        DeleteBlob => {
            let digest = if existing {
                admin
                    .push_blob(REPO, &blob_content(&format!("doomed-{k}"), 64))
                    .await
            } else {
                layer.clone()
            };
            Req::new(Method::DELETE, format!("/v2/{read_repo}/blobs/{digest}")).repos(&[read_repo])
        }
        StartUpload => {
            Req::new(Method::POST, format!("/v2/{push_repo}/blobs/uploads/")).repos(&[push_repo])
        }
        StartUploadInNewNamespace => {
            let repo = format!("fresh-{k}/app");
            Req::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")).repos(&[&repo])
        }
        MonolithicUpload => {
            let content = blob_content(&format!("monolithic-{k}"), 64);
            Req::new(
                Method::POST,
                format!("/v2/{push_repo}/blobs/uploads/?digest={}", sha256(&content)),
            )
            .body("application/octet-stream", content)
            .repos(&[push_repo])
        }
        Mount => Req::new(
            Method::POST,
            format!("/v2/{push_repo}/blobs/uploads/?mount={layer}&from={REPO}"),
        )
        .repos(&[push_repo, REPO]),
        MountFromUnreadable => Req::new(
            Method::POST,
            format!(
                "/v2/{push_repo}/blobs/uploads/?mount={}&from={FOREIGN}",
                fx.foreign_layer
            ),
        )
        .repos(&[push_repo, FOREIGN]),
        UploadStatus | UploadChunk | FinishUpload | CancelUpload => {
            let location = if existing {
                admin.start_upload(REPO).await.location
            } else {
                format!("/v2/{GHOST}/blobs/uploads/00000000-0000-4000-8000-{k:012}")
            };
            let content = blob_content(&format!("uploaded-{k}"), 64);
            let req = match route {
                UploadStatus => Req::new(Method::GET, location),
                UploadChunk => Req::new(Method::PATCH, location)
                    .header("content-range", format!("0-{}", content.len() - 1))
                    .body("application/octet-stream", content),
                FinishUpload => Req::new(
                    Method::PUT,
                    with_query(&location, &format!("digest={}", sha256(&content))),
                )
                .body("application/octet-stream", content),
                _ => Req::new(Method::DELETE, location),
            };
            req.repos(&[read_repo])
        }
        Referrers => Req::new(
            Method::GET,
            format!("/v2/{read_repo}/referrers/{}", image.digest),
        )
        .repos(&[read_repo]),
    }
}

/// After a refused delete, what it named must still be there.
async fn still_there(fx: &Fixture, route: V2, req: &Req, expected: Exp) -> Option<String> {
    let refused = expected.code.is_some() && !req.path.contains(GHOST);
    match route {
        V2::DeleteManifestByTag | V2::DeleteManifestByDigest | V2::DeleteBlob
            if refused
                && fx.admin().send(Method::HEAD, &req.path).await.status() != StatusCode::OK =>
        {
            Some("refused, yet it was deleted".into())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v2_route_answers_every_caller_as_the_role_table_says() {
    let fx = Fixture::new().await;
    run_matrix(
        &fx,
        "/v2/ access matrix",
        v2_table(),
        v2_expect,
        async |route, _, target| v2_request(&fx, route, target).await,
        async |route, req, expected| still_there(&fx, route, req, expected).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_only_what_each_caller_may_pull() {
    let fx = Fixture::new().await;
    let mut wrong = Mismatches::default();
    for caller in fx
        .callers
        .iter()
        .filter(|c| c.authenticated() || c.who == Who::AnonymousToken)
    {
        let client = fx
            .client_for(caller, &[])
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", caller.label));
        let response = expect_status(client.catalog("").await, StatusCode::OK).await;
        let body: Value = response.json().await.expect("catalog is JSON");
        let listed: BTreeSet<String> = string_list(&body["repositories"]).into_iter().collect();
        let mut expected = BTreeSet::new();
        if caller.verbs.contains(&Verb::Pull) {
            expected.insert(REPO.to_owned());
        }
        if caller.may_everywhere(Verb::Pull) {
            expected.insert(FOREIGN.to_owned());
        }
        if listed != expected {
            wrong.push(format!(
                "catalog as {}: expected {expected:?}, got {listed:?}",
                caller.label
            ));
        }
    }
    wrong.assert_none("catalog listings", fx.callers.len());
}
