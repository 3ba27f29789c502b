//! `/api/v1/tokens` (the caller's own) and
//! `/api/v1/namespaces/{ns}/…/tokens` (service accounts').

use axum::http::Uri;

use super::objects::{self, Answer, Call, deleted, listed, no_store, query_param};
use super::{JsonBody, Params};
use crate::admin::CreatedToken;
use crate::wire::{Token, TokenRequest};

/// `201` with the secret, which no cache may keep.
fn created(token: CreatedToken) -> Answer {
    objects::created::<Token>(token).map(no_store)
}

/// The name and the lifetime that a request asks of its token.
fn asked(body: &TokenRequest) -> (Option<&str>, Option<&str>) {
    (
        body.metadata.name.as_deref(),
        body.spec.expires_in.as_deref(),
    )
}

pub(super) async fn create_own(call: Call, JsonBody(body): JsonBody<TokenRequest>) -> Answer {
    let (name, expires_in) = asked(&body);
    created(call.admin().create_own_token(name, expires_in).await?)
}

pub(super) async fn list_own(call: Call) -> Answer {
    listed::<Token, _>("Token", call.admin().own_tokens().await?)
}

/// `DELETE /api/v1/tokens/{name}[?user=NAME]`: `user` says whose token a
/// cluster admin revokes (token names are unique per user only).
pub(super) async fn delete_own(call: Call, Params(name): Params<String>, uri: Uri) -> Answer {
    let owner = query_param(&uri, "user");
    call.admin()
        .delete_own_token(&name, owner.as_deref())
        .await?;
    deleted("tokens", &name)
}

pub(super) async fn create_for_user(
    call: Call,
    Params(user): Params<String>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Answer {
    let (name, expires_in) = asked(&body);
    created(
        call.admin()
            .create_user_token(&user, name, expires_in)
            .await?,
    )
}

pub(super) async fn create_for_service_account(
    call: Call,
    Params((ns, sa)): Params<(String, String)>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Answer {
    let (name, expires_in) = asked(&body);
    created(
        call.admin()
            .create_service_account_token(&ns, &sa, name, expires_in)
            .await?,
    )
}

pub(super) async fn list_namespace(call: Call, Params(ns): Params<String>) -> Answer {
    listed::<Token, _>("Token", call.admin().namespace_tokens(&ns).await?)
}

pub(super) async fn delete_namespace(
    call: Call,
    Params((ns, name)): Params<(String, String)>,
) -> Answer {
    call.admin().delete_namespace_token(&ns, &name).await?;
    deleted("tokens", &name)
}
