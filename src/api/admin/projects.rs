//! `/api/v1/projects`

use super::objects::{Answer, Call, created, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::wire::{NamedBody, Project};

pub(super) async fn list(call: Call) -> Answer {
    listed::<Project, _>("Project", call.admin().projects().await?)
}

pub(super) async fn create(call: Call, JsonBody(body): JsonBody<NamedBody>) -> Answer {
    let name = body.metadata.name.as_deref();
    created::<Project>(call.admin().create_project(name).await?)
}

pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    ok::<Project>(call.admin().project(&name).await?)
}

pub(super) async fn delete(call: Call, Params(name): Params<String>) -> Answer {
    call.admin().delete_project(&name).await?;
    // Its repositories went with it.
    call.app.registry.forget_namespace(&name);
    deleted("projects", &name)
}
