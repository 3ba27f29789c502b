//! `/api/v1/namespaces/{ns}/serviceaccounts`

use super::objects::{Answer, Call, created, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::wire::{NamedBody, ServiceAccount};

pub(super) async fn list(call: Call, Params(ns): Params<String>) -> Answer {
    let accounts = call.admin().service_accounts(&ns).await?;
    listed::<ServiceAccount, _>("ServiceAccount", accounts)
}

pub(super) async fn create(
    call: Call,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<NamedBody>,
) -> Answer {
    let name = body.metadata.name.as_deref();
    created::<ServiceAccount>(call.admin().create_service_account(&ns, name).await?)
}

pub(super) async fn get(call: Call, Params((ns, name)): Params<(String, String)>) -> Answer {
    ok::<ServiceAccount>(call.admin().service_account(&ns, &name).await?)
}

pub(super) async fn delete(call: Call, Params((ns, name)): Params<(String, String)>) -> Answer {
    call.admin().delete_service_account(&ns, &name).await?;
    deleted("serviceaccounts", &name)
}
