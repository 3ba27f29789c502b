//! `/api/v1/users`

use super::objects::{Answer, Call, created, deleted, done, listed, ok};
use super::{JsonBody, Params};
use crate::admin::NewUser;
use crate::wire::{PasswordRequest, User, UserRequest};

pub(super) async fn list(call: Call) -> Answer {
    listed::<User, _>("User", call.admin().users().await?)
}

pub(super) async fn create(call: Call, JsonBody(body): JsonBody<UserRequest>) -> Answer {
    let user = NewUser {
        name: body.metadata.name,
        password: body.password,
        email: body.email,
        super_user: body.super_user,
    };
    created::<User>(call.admin().create_user(&user).await?)
}

/// `GET /api/v1/users/~`: the caller.
pub(super) async fn me(call: Call) -> Answer {
    ok::<User>(call.admin().me().await?)
}

pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    ok::<User>(call.admin().user(&name).await?)
}

pub(super) async fn delete(call: Call, Params(name): Params<String>) -> Answer {
    call.admin().delete_user(&name).await?;
    deleted("users", &name)
}

/// `POST /api/v1/users/{name}/unlock`
pub(super) async fn unlock(call: Call, Params(name): Params<String>) -> Answer {
    let message = if call.admin().unlock_user(&name).await? {
        format!("user \"{name}\" unlocked")
    } else {
        format!("user \"{name}\" was not locked out")
    };
    done("users", &name, message)
}

pub(super) async fn set_password(
    call: Call,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<PasswordRequest>,
) -> Answer {
    call.admin()
        .set_password(&name, body.password.as_deref())
        .await?;
    done(
        "users",
        &name,
        format!("password of user \"{name}\" changed"),
    )
}
