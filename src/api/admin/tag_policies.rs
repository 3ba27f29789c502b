//! `/api/v1/namespaces/{ns}/immutabletagpolicies`: the immutable-tags
//! policies of a namespace and of its repositories.

use axum::http::Uri;

use super::objects::{Answer, Call, deleted, listed, ok, query_param};
use super::{JsonBody, Params};
use crate::admin::rfc3339;
use crate::metadata::tag_policies::ImmutableTagPolicy;
use crate::wire::{self, API_VERSION, Extra, ImmutableTagPolicyRequest, ObjectMeta};

impl From<ImmutableTagPolicy> for wire::ImmutableTagPolicy {
    fn from(policy: ImmutableTagPolicy) -> wire::ImmutableTagPolicy {
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(by) = &policy.updated_by {
            annotations.insert("berth.dev/updated-by".to_owned(), by.clone());
        }
        wire::ImmutableTagPolicy {
            api_version: API_VERSION.into(),
            kind: "ImmutableTagPolicy".into(),
            metadata: ObjectMeta {
                name: policy.scope(),
                namespace: Some(policy.namespace.clone()),
                uid: None,
                creation_timestamp: Some(rfc3339(policy.updated_at)),
                annotations,
                extra: Extra::new(),
            },
            spec: wire::ImmutableTagPolicySpec {
                repository: policy.repository,
                patterns: policy.patterns.iter().map(|p| p.to_string()).collect(),
            },
            extra: Extra::new(),
        }
    }
}

pub(super) async fn list(call: Call, Params(ns): Params<String>) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    listed::<wire::ImmutableTagPolicy, _>(
        "ImmutableTagPolicy",
        call.admin()
            .immutable_tag_policies(metadata.as_ref(), &ns)
            .await?,
    )
}

pub(super) async fn put(
    call: Call,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<ImmutableTagPolicyRequest>,
) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    let policy = call
        .admin()
        .set_immutable_tag_policy(
            metadata.as_ref(),
            &ns,
            body.repository.as_deref(),
            &body.patterns,
        )
        .await?;
    // Tags it covers lost their expiry: what is cached of them is read again.
    call.app.registry.forget_namespace(&ns);
    ok::<wire::ImmutableTagPolicy>(policy)
}

/// `DELETE …/immutabletagpolicies[?repository=REPO]`
pub(super) async fn delete(call: Call, Params(ns): Params<String>, uri: Uri) -> Answer {
    let repository = query_param(&uri, "repository");
    let metadata = call.app.registry.metadata().clone();
    let scope = call
        .admin()
        .clear_immutable_tag_policy(metadata.as_ref(), &ns, repository.as_deref())
        .await?;
    deleted("immutabletagpolicies", &scope)
}
