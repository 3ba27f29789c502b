//! `/api/v1/groups`

use super::objects::{Answer, Call, created, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::admin::AdminError;
use crate::wire::{Group, GroupRequest};

pub(super) async fn list(call: Call) -> Answer {
    listed::<Group, _>("Group", call.admin().groups().await?)
}

pub(super) async fn create(call: Call, JsonBody(body): JsonBody<GroupRequest>) -> Answer {
    let users = body.users.unwrap_or_default();
    let name = body.metadata.name.as_deref();
    created::<Group>(call.admin().create_group(name, &users).await?)
}

pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    ok::<Group>(call.admin().group(&name).await?)
}

/// `PUT`: replaces the members. A `metadata.name` in the body, if any, must
/// be the group's.
pub(super) async fn replace(
    call: Call,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<GroupRequest>,
) -> Answer {
    if body.metadata.name.as_deref().is_some_and(|n| n != name) {
        return Err(AdminError::BadRequest(format!(
            "metadata.name {:?} does not match the group in the path, {name:?}",
            body.metadata.name.unwrap_or_default()
        )));
    }
    let users = body.users.ok_or_else(|| {
        AdminError::Invalid("users: required (an empty list removes every member)".into())
    })?;
    ok::<Group>(call.admin().replace_group(&name, &users).await?)
}

pub(super) async fn delete(call: Call, Params(name): Params<String>) -> Answer {
    call.admin().delete_group(&name).await?;
    deleted("groups", &name)
}
