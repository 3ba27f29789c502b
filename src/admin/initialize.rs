//! The first super user, made by `POST /api/v1/user/initialize`.

use super::names::*;
use super::tokens::issue_token;
use super::*;
use crate::auth::AccessControl;
use crate::metadata::access::{TokenSubject, User};
use crate::metadata::now;

/// Serializes first-user creation within this process.
pub(super) static INITIALIZING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /api/v1/user/initialize`: creates the first super user while no
/// user exists (`open` is whether the configuration allows it at all).
///
/// Within one process, calls are serialized and the user count is checked
/// under the lock. Across replicas sharing a database, each caller counts
/// users again after creating its own: whoever sees more than one backs
/// out (deletes the user it made). Of two concurrent first users at most one
/// can see itself alone, so there are never two; at worst both back out and
/// the client retries.
pub async fn initialize(
    access: &AccessControl,
    open: bool,
    username: Option<&str>,
    secret: Option<&str>,
    email: Option<&str>,
    with_token: bool,
) -> AdminResult<Initialized> {
    let refused = || AdminError::BadRequest("the registry is already initialized".into());
    let store = access.store();
    if !open || store.count_users().await? > 0 {
        return Err(refused());
    }
    let name = require_object_name("user", username)?;
    let secret = secret.ok_or_else(|| AdminError::Invalid("password: required".into()))?;
    require_password(secret)?;
    let email = require_email(email)?;
    let hash = hash_password(secret).await?;

    let _initializing = INITIALIZING.lock().await;
    if store.count_users().await? > 0 {
        return Err(refused());
    }
    let user = User {
        name: name.clone(),
        uid: uuid::Uuid::new_v4().to_string(),
        password_hash: Some(hash),
        email,
        super_user: true,
        created_at: now(),
        credential_epoch: 0,
    };
    if !store.create_user(&user).await? {
        return Err(refused());
    }
    if store.count_users().await? != 1 {
        store.delete_user(&name).await?;
        access.policy_changed();
        return Err(refused());
    }
    access.policy_changed();
    tracing::info!(user = %name, "registry initialized: first super user created");
    let token = if with_token {
        Some(issue_token(access, TokenSubject::User(name), None, None).await?)
    } else {
        None
    };
    Ok(Initialized { user, token })
}
