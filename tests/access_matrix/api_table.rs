//! Every `/api/v1` route × every caller, and every route the OpenAPI
//! document lists has a row.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::*;
use crate::harness::*;

/// Who may use an `/api/v1` route (docs/rest-api.md, "Who may do what").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// No credentials read: everyone gets the row's answer.
    Open,
    /// Any authenticated user or service account.
    Authenticated,
    /// Users; service accounts are forbidden (403).
    UsersOnly,
    /// Cluster admins; others are forbidden (403).
    ClusterAdmin,
    /// A role in the namespace with this verb (`None`: any role). A role
    /// without it: 403; no role, or no such namespace: 404.
    Namespace(Option<Verb>),
    /// Cluster admins; for anyone else the object does not exist (404).
    HiddenUnlessClusterAdmin,
    /// A role in the namespace with all these verbs (image streams:
    /// tagging takes view and push, deleting view and delete). A role
    /// lacking one: 403; no role, or no such namespace: 404.
    NamespaceAll(&'static [Verb]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    ListProjects,
    CreateProject,
    GetProject,
    DeleteProject,
    ListProxies,
    CreateProxy,
    GetProxy,
    DeleteProxy,
    ListServiceAccounts,
    CreateServiceAccount,
    GetServiceAccount,
    DeleteServiceAccount,
    CreateOwnToken,
    ListOwnTokens,
    DeleteOwnToken,
    CreateServiceAccountToken,
    ListNamespaceTokens,
    DeleteNamespaceToken,
    ListRoleBindings,
    GetRoleBinding,
    DeleteRoleBinding,
    AddSubjects,
    RemoveSubjects,
    ListClusterRoleBindings,
    GetClusterRoleBinding,
    DeleteClusterRoleBinding,
    AddClusterSubjects,
    RemoveClusterSubjects,
    WhoCan,
    ListUsers,
    CreateUser,
    Me,
    Version,
    GetUser,
    DeleteUser,
    SetPassword,
    UnlockUser,
    CreateUserToken,
    ListGroups,
    CreateGroup,
    GetGroup,
    ReplaceGroup,
    DeleteGroup,
    ListImmutableTagPolicies,
    SetImmutableTagPolicy,
    ClearImmutableTagPolicy,
    ListNamespaceUsages,
    GetNamespaceUsage,
    ListAllRepositoryUsages,
    ListRepositoryUsages,
    GetQuota,
    SetQuota,
    ClearQuota,
    ListSecrets,
    CreateSecret,
    GetSecret,
    DeleteSecret,
    ListJobs,
    GetJob,
    RunJob,
    ListGarbageCollections,
    CreateGarbageCollection,
    GetGarbageCollection,
    GetImagePruner,
    PatchImagePruner,
    CreateImagePrune,
    GetImagePrune,
    Initialize,
    Discovery,
    ListAllImageStreams,
    ListImageStreams,
    CreateImageStream,
    GetImageStream,
    DeleteImageStream,
    SetImageLookup,
    GetImageStreamTag,
    SetImageStreamTag,
    DeleteImageStreamTag,
    RollbackImageStreamTag,
    GetImageStreamImage,
    ImportImageStream,
}

/// Every `/api/v1` route. Targets: for namespaced routes [`NS`] and
/// [`ABSENT_NS`]; for users, groups and bindings an existing object and a
/// missing one; for creations a taken name (409) and a free one (201).
fn api_table() -> Vec<Row<Api, Rule>> {
    use Api::*;
    use Rule::*;
    use Verb::{Admin, View};
    let missing = Some(err(404, "NotFound"));
    let taken = err(409, "AlreadyExists");
    // The namespace rules by name, so that each row reads as one line.
    let (view, admin) = (Namespace(Some(View)), Namespace(Some(Admin)));
    let read_streams = NamespaceAll(READ_STREAMS);
    let tag = NamespaceAll(TAG);
    let delete_streams = NamespaceAll(DELETE_STREAMS);
    vec![
        row(ListProjects, Authenticated, ok(200), None),
        row(CreateProject, ClusterAdmin, taken, Some(ok(201))),
        row(GetProject, Namespace(None), ok(200), missing),
        row(DeleteProject, admin, ok(200), missing),
        // Proxy namespaces: made as projects are; seen with a role in
        // them, removed by their admins.
        row(ListProxies, Authenticated, ok(200), None),
        row(CreateProxy, ClusterAdmin, taken, Some(ok(201))),
        row(GetProxy, Namespace(None), ok(200), missing),
        row(DeleteProxy, admin, ok(200), missing),
        row(ListServiceAccounts, view, ok(200), missing),
        row(CreateServiceAccount, admin, ok(201), missing),
        row(GetServiceAccount, view, ok(200), missing),
        row(DeleteServiceAccount, admin, ok(200), missing),
        row(CreateOwnToken, UsersOnly, ok(201), None),
        row(ListOwnTokens, Authenticated, ok(200), None),
        row(DeleteOwnToken, HiddenUnlessClusterAdmin, ok(200), missing),
        row(CreateServiceAccountToken, admin, ok(201), missing),
        row(ListNamespaceTokens, view, ok(200), missing),
        row(DeleteNamespaceToken, admin, ok(200), missing),
        row(ListRoleBindings, view, ok(200), missing),
        row(GetRoleBinding, view, ok(200), missing),
        row(DeleteRoleBinding, admin, ok(200), missing),
        row(AddSubjects, admin, ok(200), missing),
        row(RemoveSubjects, admin, ok(200), missing),
        row(ListClusterRoleBindings, ClusterAdmin, ok(200), None),
        row(GetClusterRoleBinding, ClusterAdmin, ok(200), missing),
        row(DeleteClusterRoleBinding, ClusterAdmin, ok(200), missing),
        row(AddClusterSubjects, ClusterAdmin, ok(200), None),
        row(RemoveClusterSubjects, ClusterAdmin, ok(200), missing),
        row(WhoCan, view, ok(200), missing),
        row(ListUsers, ClusterAdmin, ok(200), None),
        row(CreateUser, ClusterAdmin, taken, Some(ok(201))),
        row(Me, Authenticated, ok(200), None),
        row(Version, Authenticated, ok(200), None),
        row(GetUser, ClusterAdmin, ok(200), missing),
        row(DeleteUser, ClusterAdmin, ok(200), missing),
        row(SetPassword, ClusterAdmin, ok(200), missing),
        row(UnlockUser, ClusterAdmin, ok(200), missing),
        row(CreateUserToken, ClusterAdmin, ok(201), missing),
        row(ListGroups, ClusterAdmin, ok(200), None),
        row(CreateGroup, ClusterAdmin, taken, Some(ok(201))),
        row(GetGroup, ClusterAdmin, ok(200), missing),
        row(ReplaceGroup, ClusterAdmin, ok(200), missing),
        row(DeleteGroup, ClusterAdmin, ok(200), missing),
        // Immutable-tags policies: any role sees them, admins set and
        // clear them.
        row(ListImmutableTagPolicies, Namespace(None), ok(200), missing),
        row(SetImmutableTagPolicy, admin, ok(200), missing),
        row(ClearImmutableTagPolicy, admin, ok(200), missing),
        // Storage usage: a namespace's for any role in it, every one's for
        // cluster admins; quotas seen with a role, set by cluster admins.
        row(ListNamespaceUsages, ClusterAdmin, ok(200), None),
        row(GetNamespaceUsage, Namespace(None), ok(200), missing),
        row(ListAllRepositoryUsages, ClusterAdmin, ok(200), None),
        row(ListRepositoryUsages, Namespace(None), ok(200), missing),
        row(GetQuota, Namespace(None), ok(200), missing),
        row(SetQuota, ClusterAdmin, ok(200), missing),
        row(ClearQuota, ClusterAdmin, ok(200), missing),
        // Pull secrets: viewers list and read names, admins manage them.
        row(ListSecrets, view, ok(200), missing),
        row(CreateSecret, admin, ok(201), missing),
        row(GetSecret, view, ok(200), missing),
        row(DeleteSecret, admin, ok(200), missing),
        row(ListJobs, ClusterAdmin, ok(200), None),
        row(GetJob, ClusterAdmin, ok(200), missing),
        row(RunJob, ClusterAdmin, ok(200), missing),
        // Garbage collection: a dry run, and the runs recorded.
        row(ListGarbageCollections, ClusterAdmin, ok(200), None),
        row(CreateGarbageCollection, ClusterAdmin, ok(200), None),
        row(GetGarbageCollection, ClusterAdmin, ok(200), missing),
        // The image pruner: one, named cluster; a dry run; a run recorded.
        row(GetImagePruner, ClusterAdmin, ok(200), missing),
        row(PatchImagePruner, ClusterAdmin, ok(200), missing),
        row(CreateImagePrune, ClusterAdmin, ok(200), missing),
        row(GetImagePrune, ClusterAdmin, ok(200), missing),
        // Open, and refused: this registry made its admin at start.
        row(Initialize, Open, err(400, "BadRequest"), None),
        row(Discovery, Open, ok(200), None),
        // Image streams: registry-viewer reads, registry-editor tags and
        // deletes, system:image-puller and -pusher do neither.
        row(ListAllImageStreams, Authenticated, ok(200), None),
        row(ListImageStreams, read_streams, ok(200), missing),
        row(CreateImageStream, tag, ok(201), missing),
        row(GetImageStream, read_streams, ok(200), missing),
        row(DeleteImageStream, delete_streams, ok(200), missing),
        row(SetImageLookup, tag, ok(200), missing),
        row(GetImageStreamTag, read_streams, ok(200), missing),
        row(SetImageStreamTag, tag, ok(201), missing),
        row(DeleteImageStreamTag, delete_streams, ok(200), missing),
        row(RollbackImageStreamTag, tag, ok(200), missing),
        row(GetImageStreamImage, read_streams, ok(200), missing),
        row(ImportImageStream, tag, ok(201), missing),
    ]
}

const READ_STREAMS: &[Verb] = &[Verb::View];
const TAG: &[Verb] = &[Verb::View, Verb::Push];
const DELETE_STREAMS: &[Verb] = &[Verb::View, Verb::Delete];

fn api_expect(row: &Row<Api, Rule>, caller: &Caller, target: Target) -> Exp {
    let allowed_answer = row.answer(target);
    if row.need == Rule::Open {
        return allowed_answer;
    }
    if !caller.admin_api() {
        return err(401, "Unauthorized");
    }
    let forbidden = err(403, "Forbidden");
    let not_found = err(404, "NotFound");
    match row.need {
        Rule::Open | Rule::Authenticated => allowed_answer,
        Rule::UsersOnly if caller.who == Who::User => allowed_answer,
        Rule::UsersOnly => forbidden,
        Rule::ClusterAdmin if caller.cluster_admin => allowed_answer,
        Rule::ClusterAdmin => forbidden,
        Rule::HiddenUnlessClusterAdmin if caller.cluster_admin => allowed_answer,
        Rule::HiddenUnlessClusterAdmin => not_found,
        Rule::Namespace(_) if target == Target::Absent || caller.verbs.is_empty() => not_found,
        Rule::Namespace(Some(verb)) if !caller.verbs.contains(&verb) => forbidden,
        Rule::Namespace(_) => allowed_answer,
        Rule::NamespaceAll(_) if target == Target::Absent || caller.verbs.is_empty() => not_found,
        Rule::NamespaceAll(verbs) if !verbs.iter().all(|v| caller.verbs.contains(v)) => forbidden,
        Rule::NamespaceAll(_) => allowed_answer,
    }
}

const BYSTANDER: &str = "bystander";

/// Builds the cell's request, first making (as the admin) what it consumes.
async fn api_request(fx: &Fixture, route: Api, caller: &Caller, target: Target) -> Req {
    use Api::*;
    let admin = fx.admin();
    let k = fx.next();
    let existing = target == Target::Existing;
    let ns = if existing { NS } else { ABSENT_NS };
    let user = if existing { "victim" } else { "nobody" };
    let group = if existing { "crew" } else { "nogroup" };
    // A cluster role binding with subjects, and one without: every role has
    // a user bound cluster-wide, so the absent one is emptied for the cell
    // and given back by `restore`.
    let cluster_role = if existing {
        "registry-viewer"
    } else {
        "registry-editor"
    };
    if !existing
        && matches!(
            route,
            GetClusterRoleBinding | DeleteClusterRoleBinding | RemoveClusterSubjects
        )
    {
        admin
            .unbind(
                None,
                cluster_role,
                &user_subject(&cluster_role_user(cluster_role)),
            )
            .await;
    }
    let bystander = json!({"subjects": [user_subject(BYSTANDER)]});
    let api = |path: String| format!("/api/v1{path}");
    match route {
        ListProjects => Req::new(Method::GET, api("/projects".into())),
        CreateProject => {
            let name = if existing {
                NS.to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/projects".into()))
                .json(json!({"metadata": {"name": name}}))
        }
        GetProject => Req::new(Method::GET, api(format!("/projects/{ns}"))),
        DeleteProject => {
            // A project of its own, where the caller has its role in NS.
            let name = if existing {
                let name = format!("gone-{k}");
                admin.create_project(&name).await;
                if let Some((role, subject)) = &caller.binding {
                    admin.bind(Some(&name), role, subject).await;
                }
                name
            } else {
                ABSENT_NS.to_owned()
            };
            Req::new(Method::DELETE, api(format!("/projects/{name}")))
        }
        ListProxies => Req::new(Method::GET, api("/proxies".into())),
        CreateProxy => {
            let name = if existing {
                NS.to_owned()
            } else {
                format!("proxy-made-{k}")
            };
            Req::new(Method::POST, api("/proxies".into())).json(
                json!({"metadata": {"name": name}, "spec": {"upstream": "https://registry.example.com"}}),
            )
        }
        GetProxy | DeleteProxy => {
            // A proxy of its own, where the caller has its role in NS.
            let name = if existing {
                let name = format!("proxy-{k}");
                admin
                    .api_expect(
                        Method::POST,
                        "/api/v1/proxies",
                        Some(&json!({"metadata": {"name": name},
                                     "spec": {"upstream": "https://registry.example.com"}})),
                        StatusCode::CREATED,
                    )
                    .await;
                if let Some((role, subject)) = &caller.binding {
                    admin.bind(Some(&name), role, subject).await;
                }
                name
            } else {
                ABSENT_NS.to_owned()
            };
            let method = if route == GetProxy {
                Method::GET
            } else {
                Method::DELETE
            };
            Req::new(method, api(format!("/proxies/{name}")))
        }
        ListServiceAccounts => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/serviceaccounts")),
        ),
        CreateServiceAccount => Req::new(
            Method::POST,
            api(format!("/namespaces/{ns}/serviceaccounts")),
        )
        .json(json!({"metadata": {"name": format!("sa-{k}")}})),
        GetServiceAccount => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/serviceaccounts/robot")),
        ),
        DeleteServiceAccount => {
            let name = format!("sa-doomed-{k}");
            if existing {
                admin.create_service_account(NS, &name).await;
            }
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/serviceaccounts/{name}")),
            )
        }
        CreateOwnToken => Req::new(Method::POST, api("/tokens".into())).json(json!({})),
        ListOwnTokens => Req::new(Method::GET, api("/tokens".into())),
        DeleteOwnToken => {
            // Another user's token: only cluster admins may see it.
            let name = if existing {
                admin
                    .create_token("/api/v1/users/victim/tokens", None)
                    .await
                    .name
            } else {
                "no-such-token".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/tokens/{name}")))
        }
        CreateServiceAccountToken => Req::new(
            Method::POST,
            api(format!("/namespaces/{ns}/serviceaccounts/spare/tokens")),
        )
        .json(json!({})),
        ListNamespaceTokens => Req::new(Method::GET, api(format!("/namespaces/{ns}/tokens"))),
        DeleteNamespaceToken => {
            let name = if existing {
                admin
                    .create_token(
                        &format!("/api/v1/namespaces/{NS}/serviceaccounts/spare/tokens"),
                        None,
                    )
                    .await
                    .name
            } else {
                "no-such-token".to_owned()
            };
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/tokens/{name}")),
            )
        }
        ListRoleBindings => Req::new(Method::GET, api(format!("/namespaces/{ns}/rolebindings"))),
        GetRoleBinding => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/rolebindings/{PULLER}")),
        ),
        // Restored after the cell (see `restore`).
        DeleteRoleBinding => Req::new(
            Method::DELETE,
            api(format!("/namespaces/{ns}/rolebindings/registry-viewer")),
        ),
        AddSubjects | RemoveSubjects => {
            let verb = if route == AddSubjects {
                "add-subjects"
            } else {
                "remove-subjects"
            };
            Req::new(
                Method::POST,
                api(format!("/namespaces/{ns}/rolebindings/{PULLER}/{verb}")),
            )
            .json(bystander)
        }
        ListClusterRoleBindings => Req::new(Method::GET, api("/clusterrolebindings".into())),
        GetClusterRoleBinding => {
            let role = if existing {
                "cluster-admin"
            } else {
                cluster_role
            };
            Req::new(Method::GET, api(format!("/clusterrolebindings/{role}")))
        }
        DeleteClusterRoleBinding | RemoveClusterSubjects => {
            if existing {
                admin
                    .bind(None, cluster_role, &user_subject(BYSTANDER))
                    .await;
            }
            if route == DeleteClusterRoleBinding {
                Req::new(
                    Method::DELETE,
                    api(format!("/clusterrolebindings/{cluster_role}")),
                )
            } else {
                Req::new(
                    Method::POST,
                    api(format!(
                        "/clusterrolebindings/{cluster_role}/remove-subjects"
                    )),
                )
                .json(bystander)
            }
        }
        AddClusterSubjects => Req::new(
            Method::POST,
            api(format!("/clusterrolebindings/{PULLER}/add-subjects")),
        )
        .json(bystander),
        WhoCan => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/whocan?verb=pull")),
        ),
        ListUsers => Req::new(Method::GET, api("/users".into())),
        CreateUser => {
            let name = if existing {
                "victim".to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/users".into()))
                .json(json!({"metadata": {"name": name}, "password": "pw-of-a-new-user"}))
        }
        Me => Req::new(Method::GET, api("/users/~".into())),
        Version => Req::new(Method::GET, api("/version".into())),
        GetUser => Req::new(Method::GET, api(format!("/users/{user}"))),
        DeleteUser => {
            let name = if existing {
                let name = format!("doomed-{k}");
                admin.create_user(&name, None, false).await;
                name
            } else {
                "nobody".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/users/{name}")))
        }
        SetPassword => Req::new(Method::PUT, api(format!("/users/{user}/password")))
            .json(json!({"password": format!("changed-{k}")})),
        UnlockUser => Req::new(Method::POST, api(format!("/users/{user}/unlock"))),
        CreateUserToken => {
            Req::new(Method::POST, api(format!("/users/{user}/tokens"))).json(json!({}))
        }
        ListGroups => Req::new(Method::GET, api("/groups".into())),
        CreateGroup => {
            let name = if existing {
                "crew".to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/groups".into()))
                .json(json!({"metadata": {"name": name}, "users": []}))
        }
        GetGroup => Req::new(Method::GET, api(format!("/groups/{group}"))),
        ReplaceGroup => Req::new(Method::PUT, api(format!("/groups/{group}")))
            .json(json!({"users": ["victim"]})),
        DeleteGroup => {
            let name = if existing {
                let name = format!("doomed-{k}");
                admin
                    .api_expect(
                        Method::POST,
                        "/api/v1/groups",
                        Some(&json!({"metadata": {"name": name}, "users": []})),
                        StatusCode::CREATED,
                    )
                    .await;
                name
            } else {
                "nogroup".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/groups/{name}")))
        }
        ListImmutableTagPolicies => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/immutabletagpolicies")),
        ),
        // A repository's own policy, so that no other cell's tags are
        // covered.
        SetImmutableTagPolicy => Req::new(
            Method::PUT,
            api(format!("/namespaces/{ns}/immutabletagpolicies")),
        )
        .json(json!({"repository": format!("pinned-{k}"), "patterns": ["v*"]})),
        ClearImmutableTagPolicy => {
            let repository = format!("cleared-{k}");
            if existing {
                admin
                    .api_expect(
                        Method::PUT,
                        &format!("/api/v1/namespaces/{NS}/immutabletagpolicies"),
                        Some(&json!({"repository": repository, "patterns": ["v*"]})),
                        StatusCode::OK,
                    )
                    .await;
            }
            Req::new(
                Method::DELETE,
                api(format!(
                    "/namespaces/{ns}/immutabletagpolicies?repository={repository}"
                )),
            )
        }
        ListNamespaceUsages => Req::new(Method::GET, api("/namespaceusages".into())),
        GetNamespaceUsage => Req::new(Method::GET, api(format!("/namespaces/{ns}/usage"))),
        ListAllRepositoryUsages => Req::new(Method::GET, api("/repositoryusages".into())),
        ListRepositoryUsages => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/repositoryusages")),
        ),
        // Limits no cell's push comes near.
        GetQuota | SetQuota | ClearQuota => {
            let body = json!({"spec": {"hard": {"tags": 1_000_000}}});
            if existing && route != SetQuota {
                admin
                    .api_expect(
                        Method::PUT,
                        &format!("/api/v1/namespaces/{NS}/quota"),
                        Some(&body),
                        StatusCode::OK,
                    )
                    .await;
            }
            let method = match route {
                GetQuota => Method::GET,
                SetQuota => Method::PUT,
                _ => Method::DELETE,
            };
            let req = Req::new(method, api(format!("/namespaces/{ns}/quota")));
            if route == SetQuota {
                req.json(body)
            } else {
                req
            }
        }
        ListSecrets => Req::new(Method::GET, api(format!("/namespaces/{ns}/secrets"))),
        CreateSecret => Req::new(Method::POST, api(format!("/namespaces/{ns}/secrets")))
            .json(secret_body(&format!("secret-{k}"))),
        GetSecret | DeleteSecret => {
            let name = format!("secret-cell-{k}");
            if existing {
                admin
                    .api_expect(
                        Method::POST,
                        &format!("/api/v1/namespaces/{NS}/secrets"),
                        Some(&secret_body(&name)),
                        StatusCode::CREATED,
                    )
                    .await;
            }
            let method = if route == GetSecret {
                Method::GET
            } else {
                Method::DELETE
            };
            Req::new(method, api(format!("/namespaces/{ns}/secrets/{name}")))
        }
        ListJobs => Req::new(Method::GET, api("/jobs".into())),
        GetJob | RunJob => {
            let job = if existing {
                "signing-key-rotation"
            } else {
                "no-such-job"
            };
            if route == GetJob {
                Req::new(Method::GET, api(format!("/jobs/{job}")))
            } else {
                Req::new(Method::POST, api(format!("/jobs/{job}/run")))
            }
        }
        ListGarbageCollections => Req::new(Method::GET, api("/garbagecollections".into())),
        CreateGarbageCollection => {
            Req::new(Method::POST, api("/garbagecollections".into())).json(json!({"dryRun": true}))
        }
        GetGarbageCollection => {
            let name = if existing {
                let run = admin
                    .api_expect(
                        Method::POST,
                        "/api/v1/garbagecollections",
                        Some(&json!({"dryRun": false})),
                        StatusCode::OK,
                    )
                    .await;
                run["metadata"]["name"].as_str().unwrap().to_owned()
            } else {
                "no-such-run".to_owned()
            };
            Req::new(Method::GET, api(format!("/garbagecollections/{name}")))
        }
        GetImagePruner | PatchImagePruner | CreateImagePrune => {
            let pruner = if existing {
                "cluster"
            } else {
                "no-such-pruner"
            };
            match route {
                GetImagePruner => Req::new(Method::GET, api(format!("/imagepruners/{pruner}"))),
                PatchImagePruner => Req::new(Method::PATCH, api(format!("/imagepruners/{pruner}")))
                    .json(json!({"spec": {"keepTagRevisions": 3}})),
                _ => Req::new(Method::POST, api(format!("/imagepruners/{pruner}/prunes")))
                    .json(json!({"spec": {"dryRun": true}})),
            }
        }
        GetImagePrune => {
            let name = if existing {
                let run = admin
                    .api_expect(
                        Method::POST,
                        "/api/v1/imagepruners/cluster/prunes",
                        Some(&json!({"spec": {"dryRun": false}})),
                        StatusCode::OK,
                    )
                    .await;
                run["metadata"]["name"].as_str().unwrap().to_owned()
            } else {
                "no-such-run".to_owned()
            };
            Req::new(
                Method::GET,
                api(format!("/imagepruners/cluster/prunes/{name}")),
            )
        }
        Initialize => Req::new(Method::POST, api("/user/initialize".into()))
            .json(json!({"username": "intruder", "password": "intruder-pw"})),
        Discovery => Req::new(Method::GET, api("/discovery".into())),
        ListAllImageStreams => Req::new(Method::GET, api("/imagestreams".into())),
        ListImageStreams => Req::new(Method::GET, api(format!("/namespaces/{ns}/imagestreams"))),
        CreateImageStream => Req::new(Method::POST, api(format!("/namespaces/{ns}/imagestreams")))
            .json(json!({"metadata": {"name": format!("made-{k}")}})),
        GetImageStream => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/imagestreams/app")),
        ),
        DeleteImageStream => {
            let name = format!("doomed-{k}");
            if existing {
                admin
                    .api_expect(
                        Method::POST,
                        &format!("/api/v1/namespaces/{NS}/imagestreams"),
                        Some(&json!({"metadata": {"name": name}})),
                        StatusCode::CREATED,
                    )
                    .await;
            }
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/imagestreams/{name}")),
            )
        }
        SetImageLookup => Req::new(
            Method::PUT,
            api(format!("/namespaces/{ns}/imagestreams/app/lookup-policy")),
        )
        .json(json!({"local": true})),
        GetImageStreamTag => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/imagestreamtags/app:latest")),
        ),
        SetImageStreamTag => Req::new(
            Method::PUT,
            api(format!("/namespaces/{ns}/imagestreamtags/app:cell-{k}")),
        )
        .json(json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}}})),
        DeleteImageStreamTag => {
            let tag = format!("doomed-{k}");
            if existing {
                admin
                    .api_expect(
                        Method::PUT,
                        &format!("/api/v1/namespaces/{NS}/imagestreamtags/app:{tag}"),
                        Some(&json!({"tag": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}}})),
                        StatusCode::CREATED,
                    )
                    .await;
            }
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/imagestreamtags/app:{tag}")),
            )
        }
        // Generation 1 is the image `latest` points at: allowed, it
        // records nothing (as a push of the same image would not).
        RollbackImageStreamTag => Req::new(
            Method::POST,
            api(format!(
                "/namespaces/{ns}/imagestreamtags/app:latest/rollback"
            )),
        )
        .json(json!({"generation": 1})),
        // Only looks (records nothing), at an upstream that refuses the
        // connection at once: allowed, the answer says the tag failed.
        ImportImageStream => Req::new(
            Method::POST,
            api(format!("/namespaces/{ns}/imagestreamimports")),
        )
        .json(
            json!({"metadata": {"name": "app"}, "spec": {"import": false, "images": [{
            "from": {"kind": "DockerImage", "name": "127.0.0.1:9/lib/none:1"},
            "importPolicy": {"insecure": true}}]}}),
        ),
        GetImageStreamImage => Req::new(
            Method::GET,
            api(format!(
                "/namespaces/{ns}/imagestreamimages/app@{}",
                fx.image.digest
            )),
        ),
    }
}

/// A pull secret for `registry.example.com`, as `create secret
/// docker-registry` sends it.
fn secret_body(name: &str) -> serde_json::Value {
    use base64::Engine;
    let config = json!({"auths": {"registry.example.com": {
        "username": "puller", "password": "pw-of-the-upstream"}}});
    json!({
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config.to_string())},
    })
}

/// Puts back what a cell may have removed from the shared fixture.
async fn restore(fx: &Fixture, route: Api) {
    use Api::*;
    if route == DeleteRoleBinding {
        let viewer = role_user("registry-viewer");
        fx.admin()
            .bind(Some(NS), "registry-viewer", &user_subject(&viewer))
            .await;
    }
    if matches!(
        route,
        GetClusterRoleBinding | DeleteClusterRoleBinding | RemoveClusterSubjects
    ) {
        for role in ["registry-viewer", "registry-editor"] {
            fx.admin()
                .bind(None, role, &user_subject(&cluster_role_user(role)))
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_every_caller_as_the_rules_say() {
    let fx = Fixture::new().await;
    let documented = documented_api_routes(fx.admin()).await;
    let mut covered = BTreeSet::new();
    run_matrix(
        &fx,
        "/api/v1 access matrix",
        api_table(),
        api_expect,
        async |route, caller, target| api_request(&fx, route, caller, target).await,
        async |route, req, _| {
            restore(&fx, route).await;
            match route_of(&documented, req) {
                Some(documented_route) => {
                    covered.insert(documented_route);
                    None
                }
                None => Some("not a documented route".into()),
            }
        },
    )
    .await;
    let untested: Vec<_> = documented.difference(&covered).collect();
    assert!(
        untested.is_empty(),
        "documented routes without a row: {untested:?}"
    );
}

/// `(METHOD, template)` of every route the OpenAPI document served at
/// `/api/v1/discovery` lists (berth checks its router against it).
async fn documented_api_routes(client: &RegistryClient) -> BTreeSet<(String, String)> {
    let doc = client
        .api_expect(Method::GET, "/api/v1/discovery", None, StatusCode::OK)
        .await;
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// The documented route a request is for: the template of its method whose
/// segments match, literal segments preferred to parameters.
fn route_of(documented: &BTreeSet<(String, String)>, req: &Req) -> Option<(String, String)> {
    let path = req.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    documented
        .iter()
        .filter(|(method, _)| *method == req.method.as_str())
        .filter_map(|route| {
            let template: Vec<&str> = route.1.split('/').collect();
            let literal = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{'));
            literal.then(|| {
                let literals = template.iter().filter(|t| !t.starts_with('{')).count();
                (literals, route.clone())
            })
        })
        .max()
        .map(|(_, route)| route)
}
