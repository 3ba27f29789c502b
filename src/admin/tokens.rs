//! Tokens of users and service accounts: issued, listed, revoked.

use super::names::*;
use super::*;
use crate::auth::AccessControl;
use crate::auth::policy::Principal;
use crate::auth::roles::Verb;
use crate::auth::tokens as token_secrets;
use crate::metadata::access::{Token, TokenSubject};
use crate::metadata::now;
use crate::wire::SERVICE_ACCOUNT_PREFIX;

/// Makes a token for `subject`, named `name` or `<owner>-token-xxxxx`.
pub(super) async fn issue_token(
    access: &AccessControl,
    subject: TokenSubject,
    name: Option<&str>,
    expires_in: Option<&str>,
) -> AdminResult<CreatedToken> {
    if let Some(name) = name {
        require_object_name("token", Some(name))?;
    }
    let lifetime = expires_in.map(parse_expires_in).transpose()?;
    let owner = match &subject {
        TokenSubject::User(name) => name.clone(),
        TokenSubject::ServiceAccount { name, .. } => name.clone(),
    };
    // A generated name may collide with an existing one; try a few.
    for _ in 0..5 {
        let created_at = now();
        let expires_at = match lifetime {
            Some(d) => Some(
                i64::try_from(d.as_millis())
                    .ok()
                    .and_then(|ms| created_at.checked_add(ms))
                    .ok_or_else(|| AdminError::Invalid("spec.expiresIn is too long".into()))?,
            ),
            None => None,
        };
        let token = Token {
            uid: uuid::Uuid::new_v4().to_string(),
            name: name
                .map(str::to_owned)
                .unwrap_or_else(|| token_secrets::generated_name(&format!("{owner}-token"))),
            subject: subject.clone(),
            created_at,
            expires_at,
        };
        let secret = token_secrets::new_secret();
        if access
            .store()
            .create_token(&token, &token_secrets::secret_hash(&secret))
            .await?
        {
            access.policy_changed();
            tracing::info!(token = %token.name, subject = ?token.subject, "token created");
            return Ok(CreatedToken { token, secret });
        }
        if name.is_some() {
            return Err(already_exists("tokens", &token.name));
        }
    }
    Err(AdminError::Internal(
        "could not find a free token name".into(),
    ))
}

impl Admin<'_> {
    /// A token for the caller, who must be a user (what `berth login` does).
    pub async fn create_own_token(
        &self,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        let Principal::User(user) = self.principal()? else {
            return Err(self.forbidden(
                "create tokens for itself; a service account's tokens are made by its project's admins",
            ));
        };
        let subject = TokenSubject::User(user.clone());
        issue_token(self.access, subject, name, expires_in).await
    }

    /// A token for another user (cluster admins): how a user without a
    /// password gets in.
    pub async fn create_user_token(
        &self,
        user: &str,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        self.require_cluster_admin("create tokens for other users")
            .await?;
        if self.store().user(user).await?.is_none() {
            return Err(not_found("users", user));
        }
        let subject = TokenSubject::User(user.to_owned());
        issue_token(self.access, subject, name, expires_in).await
    }

    /// The caller's tokens; cluster admins see every user's.
    pub async fn own_tokens(&self) -> AdminResult<Vec<Token>> {
        let policy = self.policy().await?;
        Ok(match self.principal()? {
            Principal::User(_) if policy.is_cluster_admin(&self.caller.principal) => {
                self.store().tokens(None, None).await?
            }
            Principal::User(user) => {
                self.store()
                    .tokens(None, Some(&TokenSubject::User(user.clone())))
                    .await?
            }
            Principal::ServiceAccount { namespace, name } => {
                let subject = TokenSubject::ServiceAccount {
                    namespace: namespace.clone(),
                    name: name.clone(),
                };
                self.store()
                    .tokens(Some(namespace.as_str()), Some(&subject))
                    .await?
            }
            Principal::Anonymous => Vec::new(),
        })
    }

    /// Revokes one of the caller's tokens. Cluster admins may name any user
    /// token: their own of that name first, else `owner`'s (`None`: the one
    /// user's who has a token of that name; when several have, `409`).
    pub async fn delete_own_token(&self, name: &str, owner: Option<&str>) -> AdminResult<()> {
        let principal = self.principal()?;
        // Every token the caller may see (its own; a cluster admin's: every
        // user's), so nothing is said about tokens it may not.
        let named: Vec<Token> = self
            .own_tokens()
            .await?
            .into_iter()
            .filter(|t| t.name == name)
            .collect();
        let owned_by = |user: &str| {
            named
                .iter()
                .find(|t| t.subject == TokenSubject::User(user.to_owned()))
        };
        let token = match (owner, principal) {
            (Some(user), _) => owned_by(user),
            (None, Principal::User(me)) if owned_by(me).is_some() => owned_by(me),
            (None, _) if named.len() > 1 => {
                let mut owners: Vec<String> = named
                    .iter()
                    .map(|t| match &t.subject {
                        TokenSubject::User(user) => user.clone(),
                        TokenSubject::ServiceAccount { namespace, name } => {
                            format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
                        }
                    })
                    .collect();
                owners.sort();
                return Err(AdminError::Conflict(format!(
                    "users {} each have a token named \"{name}\"; say whose with ?user=NAME",
                    owners.join(", ")
                )));
            }
            (None, _) => named.first(),
        }
        .ok_or_else(|| not_found("tokens", name))?;
        if !self.store().delete_token(&token.uid).await? {
            return Err(not_found("tokens", name));
        }
        self.access.policy_changed();
        tracing::info!(token = name, by = %self.caller.principal.name(), "token revoked");
        Ok(())
    }

    pub async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        self.namespace_for(namespace, Verb::Admin, "create tokens")
            .await?;
        if self
            .store()
            .service_account(namespace, account)
            .await?
            .is_none()
        {
            return Err(not_found("serviceaccounts", account));
        }
        let subject = TokenSubject::ServiceAccount {
            namespace: namespace.to_owned(),
            name: account.to_owned(),
        };
        issue_token(self.access, subject, name, expires_in).await
    }

    /// The project's service-account tokens.
    pub async fn namespace_tokens(&self, namespace: &str) -> AdminResult<Vec<Token>> {
        self.namespace_for(namespace, Verb::View, "list tokens")
            .await?;
        Ok(self.store().tokens(Some(namespace), None).await?)
    }

    pub async fn delete_namespace_token(&self, namespace: &str, name: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Admin, "delete tokens")
            .await?;
        let token = self
            .store()
            .tokens(Some(namespace), None)
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| not_found("tokens", name))?;
        if !self.store().delete_token(&token.uid).await? {
            return Err(not_found("tokens", name));
        }
        self.access.policy_changed();
        tracing::info!(namespace, token = name, by = %self.caller.principal.name(), "token revoked");
        Ok(())
    }
}
