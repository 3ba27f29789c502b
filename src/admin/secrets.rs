//! Pull secrets of a project. Who may do what follows the roles: those who
//! manage the project (`registry-admin`, cluster admins) create, read and
//! delete them, and see which servers and users they are for; those who
//! may view the project (`registry-viewer`, `registry-editor`) list their
//! names; `system:image-puller` and the pushers, nothing. No answer ever
//! holds a password, `auth` string or token.

use base64::Engine as _;
use serde_json::Value;

use super::names::*;
use super::*;
use crate::auth::roles::Verb;
use crate::domain::secrets::{
    DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE, PullSecrets, SecretError, SecretInfo,
};

/// A secret as the caller may see it: the servers and users only for who
/// may manage the project's secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretView {
    pub info: SecretInfo,
    pub show_registries: bool,
}

/// A secret to create, as the request gave it (checked here).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewSecret<'a> {
    pub name: Option<&'a str>,
    pub secret_type: Option<&'a str>,
    /// `data`: the docker config's base64, under `.dockerconfigjson`.
    pub data: Option<&'a Value>,
    /// `stringData`: the docker config's text, under `.dockerconfigjson`.
    pub string_data: Option<&'a Value>,
}

impl From<SecretError> for AdminError {
    fn from(error: SecretError) -> AdminError {
        match error {
            SecretError::Invalid(e) => AdminError::Invalid(e.to_string()),
            SecretError::Reference(e) => AdminError::Invalid(e.to_string()),
            // The secret is there and cannot be read: the client can do
            // nothing about it, the operator can (the key), so the message
            // is the whole answer.
            e @ SecretError::Undecryptable { .. } => AdminError::Conflict(e.to_string()),
            SecretError::Seal => AdminError::Internal("encrypting a secret failed".into()),
            SecretError::Store(e) => AdminError::Store(e),
        }
    }
}

impl Admin<'_> {
    pub async fn secrets(
        &self,
        secrets: &PullSecrets,
        namespace: &str,
    ) -> AdminResult<Vec<SecretView>> {
        let (_, verbs) = self.visible_namespace(namespace).await?;
        if !verbs.contains(Verb::View) && !verbs.contains(Verb::Admin) {
            return Err(self.forbidden(&format!("list secrets in project \"{namespace}\"")));
        }
        let show_registries = verbs.contains(Verb::Admin);
        Ok(secrets
            .list(namespace)
            .await?
            .into_iter()
            .map(|info| SecretView {
                info,
                show_registries,
            })
            .collect())
    }

    /// One secret. For who manages the project's secrets it is opened, so
    /// that a secret that cannot be decrypted (its key is missing) says so
    /// here rather than at the next import.
    pub async fn secret(
        &self,
        secrets: &PullSecrets,
        namespace: &str,
        name: &str,
    ) -> AdminResult<SecretView> {
        let (_, verbs) = self.visible_namespace(namespace).await?;
        if !verbs.contains(Verb::View) && !verbs.contains(Verb::Admin) {
            return Err(self.forbidden(&format!("get secrets in project \"{namespace}\"")));
        }
        let show_registries = verbs.contains(Verb::Admin);
        let info = if show_registries {
            secrets.open(namespace, name).await?.map(|(info, _)| info)
        } else {
            secrets.get(namespace, name).await?
        };
        let info = info.ok_or_else(|| not_found("secrets", name))?;
        Ok(SecretView {
            info,
            show_registries,
        })
    }

    pub async fn create_secret(
        &self,
        secrets: &PullSecrets,
        namespace: &str,
        request: NewSecret<'_>,
    ) -> AdminResult<SecretView> {
        self.namespace_for(namespace, Verb::Admin, "create secrets")
            .await?;
        let name = require_object_name("secret", request.name)?;
        match request.secret_type {
            None | Some(DOCKER_CONFIG_JSON_TYPE) => {}
            Some(other) => {
                return Err(AdminError::Invalid(format!(
                    "type: {other:?} is not kept: berth keeps pull secrets only, of type \
                     {DOCKER_CONFIG_JSON_TYPE} (`berth create secret generic NAME --from-file \
                     .dockerconfigjson=auth.json --type {DOCKER_CONFIG_JSON_TYPE}`)"
                )));
            }
        }
        let config = docker_config_of(&request)?;
        let info = secrets
            .create(namespace, &name, &config)
            .await?
            .ok_or_else(|| already_exists("secrets", &name))?;
        tracing::info!(
            namespace,
            secret = %name,
            servers = info.registries.len(),
            by = %self.caller.principal.name(),
            "pull secret created"
        );
        Ok(SecretView {
            info,
            show_registries: true,
        })
    }

    pub async fn delete_secret(
        &self,
        secrets: &PullSecrets,
        namespace: &str,
        name: &str,
    ) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Admin, "delete secrets")
            .await?;
        if !secrets.delete(namespace, name).await? {
            return Err(not_found("secrets", name));
        }
        tracing::info!(namespace, secret = name, by = %self.caller.principal.name(), "pull secret deleted");
        Ok(())
    }
}

/// The docker config of a request: `data[".dockerconfigjson"]` (base64) or
/// `stringData[".dockerconfigjson"]` (text), one of them. No message
/// quotes a value.
fn docker_config_of(request: &NewSecret<'_>) -> AdminResult<Vec<u8>> {
    let entry = |field: &str, value: &Value| -> AdminResult<String> {
        let Value::Object(map) = value else {
            return Err(AdminError::Invalid(format!(
                "{field}: must be an object holding {DOCKER_CONFIG_JSON_KEY:?}"
            )));
        };
        if let Some(other) = map.keys().find(|k| *k != DOCKER_CONFIG_JSON_KEY) {
            return Err(AdminError::Invalid(format!(
                "{field}: {other:?} is not kept: a pull secret holds {DOCKER_CONFIG_JSON_KEY:?} only"
            )));
        }
        match map.get(DOCKER_CONFIG_JSON_KEY) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(AdminError::Invalid(format!(
                "{field}[{DOCKER_CONFIG_JSON_KEY:?}]: must be a string"
            ))),
            None => Err(AdminError::Invalid(format!(
                "{field}[{DOCKER_CONFIG_JSON_KEY:?}]: required"
            ))),
        }
    };
    match (request.data, request.string_data) {
        (Some(_), Some(_)) => Err(AdminError::Invalid(
            "data and stringData: give one of them".into(),
        )),
        (Some(data), None) => {
            let text = entry("data", data)?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| {
                    AdminError::Invalid(format!(
                        "data[{DOCKER_CONFIG_JSON_KEY:?}]: not base64 (stringData takes the text)"
                    ))
                })
        }
        (None, Some(string_data)) => Ok(entry("stringData", string_data)?.into_bytes()),
        (None, None) => Err(AdminError::Invalid(format!(
            "data[{DOCKER_CONFIG_JSON_KEY:?}]: required (the docker config, base64)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    use super::*;

    const SECRET: &str = "XYZZY-s3cr3t";

    fn config_of(data: Option<Value>, string_data: Option<Value>) -> AdminResult<Vec<u8>> {
        docker_config_of(&NewSecret {
            name: Some("x"),
            secret_type: None,
            data: data.as_ref(),
            string_data: string_data.as_ref(),
        })
    }

    #[test]
    fn the_docker_config_comes_from_data_or_string_data() {
        let text = format!(r#"{{"auths":{{"quay.io":{{"auth":"{SECRET}"}}}}}}"#);
        let encoded = STANDARD.encode(&text);
        assert_eq!(
            config_of(Some(json!({DOCKER_CONFIG_JSON_KEY: encoded})), None).unwrap(),
            text.as_bytes()
        );
        assert_eq!(
            config_of(None, Some(json!({DOCKER_CONFIG_JSON_KEY: text}))).unwrap(),
            text.as_bytes()
        );
        let refused = [
            (None, None, "required"),
            (
                Some(json!({DOCKER_CONFIG_JSON_KEY: encoded})),
                Some(json!({DOCKER_CONFIG_JSON_KEY: text})),
                "one of them",
            ),
            (Some(json!(SECRET)), None, "must be an object"),
            (Some(Value::Null), None, "must be an object"),
            (None, Some(json!([SECRET])), "must be an object"),
            (
                Some(json!({"other": SECRET})),
                None,
                "\"other\" is not kept",
            ),
            (
                Some(json!({DOCKER_CONFIG_JSON_KEY: 5})),
                None,
                "must be a string",
            ),
            (
                Some(json!({DOCKER_CONFIG_JSON_KEY: SECRET})),
                None,
                "not base64",
            ),
            (Some(json!({})), None, "required"),
        ];
        for (data, string_data, expected) in refused {
            let message = match config_of(data, string_data) {
                Err(AdminError::Invalid(message)) => message,
                other => panic!("{other:?}"),
            };
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(SECRET), "{message}");
        }
    }
}
