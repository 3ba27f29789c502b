//! `/api/v1/namespaces/{ns}/secrets`: pull secrets. Answers never hold a
//! credential; requests that do are read here and handed to the service,
//! never logged.

use std::collections::BTreeMap;

use super::objects::{Answer, Call, created, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::admin::{NewSecret, SecretView, rfc3339};
use crate::wire::{self, API_VERSION, Extra, ObjectMeta, Secret, SecretRequest};

impl From<SecretView> for wire::Secret {
    fn from(view: SecretView) -> wire::Secret {
        let info = view.info;
        let registries = view.show_registries.then(|| {
            info.registries
                .into_iter()
                .map(|r| wire::SecretRegistry {
                    server: r.server,
                    username: r.username,
                    email: r.email,
                    extra: Extra::new(),
                })
                .collect()
        });
        wire::Secret {
            api_version: API_VERSION.into(),
            kind: "Secret".into(),
            metadata: ObjectMeta {
                name: info.name,
                namespace: Some(info.namespace),
                uid: Some(info.uid),
                creation_timestamp: Some(rfc3339(info.created_at)),
                annotations: BTreeMap::new(),
                extra: Extra::new(),
            },
            secret_type: info.secret_type,
            registries,
            extra: Extra::new(),
        }
    }
}

pub(super) async fn list(call: Call, Params(ns): Params<String>) -> Answer {
    listed::<Secret, _>(
        "Secret",
        call.admin().secrets(&call.app.secrets, &ns).await?,
    )
}

pub(super) async fn create(
    call: Call,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<SecretRequest>,
) -> Answer {
    let request = NewSecret {
        name: body.metadata.name.as_deref(),
        secret_type: body.secret_type.as_deref(),
        data: body.data.as_ref(),
        string_data: body.string_data.as_ref(),
    };
    created::<Secret>(
        call.admin()
            .create_secret(&call.app.secrets, &ns, request)
            .await?,
    )
}

pub(super) async fn get(call: Call, Params((ns, name)): Params<(String, String)>) -> Answer {
    ok::<Secret>(call.admin().secret(&call.app.secrets, &ns, &name).await?)
}

pub(super) async fn delete(call: Call, Params((ns, name)): Params<(String, String)>) -> Answer {
    call.admin()
        .delete_secret(&call.app.secrets, &ns, &name)
        .await?;
    deleted("secrets", &name)
}
