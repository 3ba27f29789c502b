//! Reading a docker config (`.dockerconfigjson`): the `auth.json` that
//! `podman login` and `docker login` write, `{"auths": {SERVER: ENTRY}}`,
//! where an entry holds `auth` (the base64 of `user:password`), or
//! `username` and `password`, or an `identitytoken`, and maybe an `email`.
//!
//! The text is read as JSON values and walked by hand, so that no error
//! message can quote a value back: a message names the server and the field
//! at fault, never what the field holds.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Map, Value, json};

use super::matching::ServerPattern;

/// Most servers one secret may hold.
pub const MAX_REGISTRIES: usize = 100;

/// One server's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// As the file names it.
    pub server: String,
    /// Empty when the entry holds an identity token only.
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    /// An OAuth2 refresh token (`docker login` to some registries).
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"…")
            .field("email", &self.email)
            .field("identity_token", &self.identity_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Why a docker config cannot be used. The message never holds a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DockerConfigError(pub String);

fn invalid(message: impl Into<String>) -> DockerConfigError {
    DockerConfigError(message.into())
}

/// The credentials of every server of `bytes`, by server name.
pub fn parse_docker_config(bytes: &[u8]) -> Result<Vec<RegistryAuth>, DockerConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the docker config is empty"));
    }
    // serde_json's syntax errors say where, never what.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the docker config is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(top) = value else {
        return Err(invalid("the docker config is not a JSON object"));
    };
    let auths = match top.get("auths") {
        Some(Value::Object(auths)) => auths,
        Some(_) => return Err(invalid("auths: must be an object of servers")),
        None => {
            return Err(invalid(
                "the docker config has no \"auths\": it must be {\"auths\": {\"SERVER\": \
                 {\"auth\": …}}}, as podman login and docker login write it",
            ));
        }
    };
    if auths.is_empty() {
        let helpers = top.contains_key("credHelpers") || top.contains_key("credsStore");
        return Err(invalid(if helpers {
            "the docker config holds no credentials: they are kept by a credential helper \
             (credsStore, credHelpers); log in with `podman login --authfile FILE` to have \
             them written to a file"
        } else {
            "the docker config holds no credentials: \"auths\" is empty"
        }));
    }
    if auths.len() > MAX_REGISTRIES {
        return Err(invalid(format!(
            "the docker config has {} servers; at most {MAX_REGISTRIES} are accepted",
            auths.len()
        )));
    }
    auths
        .iter()
        .map(|(server, entry)| registry_auth(server, entry))
        .collect()
}

fn registry_auth(server: &str, entry: &Value) -> Result<RegistryAuth, DockerConfigError> {
    let at = |field: &str| format!("auths[{server:?}].{field}");
    if ServerPattern::parse(server).is_none() {
        return Err(invalid(format!(
            "auths: {server:?} is not a registry server (host[:port][/path])"
        )));
    }
    let Value::Object(entry) = entry else {
        return Err(invalid(format!("auths[{server:?}]: must be an object")));
    };
    let text = |field: &str| -> Result<Option<String>, DockerConfigError> {
        match entry.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{}: must be a string", at(field)))),
        }
    };
    let email = text("email")?;
    let identity_token = text("identitytoken")?;
    let (username, password) = match text("auth")? {
        Some(auth) => split_auth(&auth).map_err(|why| invalid(format!("{}: {why}", at("auth"))))?,
        None => match (text("username")?, text("password")?) {
            (Some(user), Some(password)) => (user, password),
            (Some(_), None) if identity_token.is_none() => {
                return Err(invalid(format!(
                    "{}: a user name without a password",
                    at("password")
                )));
            }
            (None, Some(_)) => {
                return Err(invalid(format!(
                    "{}: a password without a user name",
                    at("username")
                )));
            }
            (user, _) if identity_token.is_some() => (user.unwrap_or_default(), String::new()),
            _ => {
                return Err(invalid(format!(
                    "auths[{server:?}]: no credentials (auth, username and password, or \
                     identitytoken)"
                )));
            }
        },
    };
    Ok(RegistryAuth {
        server: server.to_owned(),
        username,
        password,
        email,
        identity_token,
    })
}

/// `auth` is the base64 of `user:password`.
fn split_auth(auth: &str) -> Result<(String, String), &'static str> {
    let bytes = STANDARD
        .decode(auth.trim())
        .or_else(|_| STANDARD_NO_PAD.decode(auth.trim()))
        .map_err(|_| "not base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "not the base64 of UTF-8 text")?;
    let (user, password) = text
        .split_once(':')
        .ok_or("not the base64 of user:password")?;
    if user.is_empty() {
        return Err("the user name in it is empty");
    }
    Ok((user.to_owned(), password.to_owned()))
}

/// The docker config of `registries` (`username` and `password` per
/// server, no `auth`), for sealing.
pub fn to_docker_config(registries: &[RegistryAuth]) -> Vec<u8> {
    let mut auths = Map::new();
    for r in registries {
        let mut entry = Map::new();
        entry.insert("username".into(), json!(r.username));
        entry.insert("password".into(), json!(r.password));
        if let Some(email) = &r.email {
            entry.insert("email".into(), json!(email));
        }
        if let Some(token) = &r.identity_token {
            entry.insert("identitytoken".into(), json!(token));
        }
        auths.insert(r.server.clone(), Value::Object(entry));
    }
    serde_json::to_vec(&json!({ "auths": auths })).unwrap_or_default()
}

/// A docker config for one server, as `create secret docker-registry`
/// makes it.
pub fn docker_config_for(
    server: &str,
    username: &str,
    password: &str,
    email: Option<&str>,
) -> Vec<u8> {
    let mut entry = Map::new();
    entry.insert("username".into(), json!(username));
    entry.insert("password".into(), json!(password));
    entry.insert(
        "auth".into(),
        json!(STANDARD.encode(format!("{username}:{password}"))),
    );
    if let Some(email) = email {
        entry.insert("email".into(), json!(email));
    }
    let mut auths = Map::new();
    auths.insert(server.to_owned(), Value::Object(entry));
    serde_json::to_vec(&json!({ "auths": auths })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "Pa55:w0rd-XYZZY";

    fn parse(text: &str) -> Result<Vec<RegistryAuth>, DockerConfigError> {
        parse_docker_config(text.as_bytes())
    }

    #[test]
    fn auth_and_username_password_forms_and_several_servers() {
        let auth = STANDARD.encode(format!("alice:{PASSWORD}"));
        let text = format!(
            r#"{{"auths": {{
                "registry.example.com": {{"auth": "{auth}"}},
                "quay.io/team": {{"username": "bob", "password": "{PASSWORD}", "email": "b@x.org"}},
                "https://index.docker.io/v1/": {{"auth": "{}", "email": ""}},
                "ghcr.io": {{"identitytoken": "refresh-XYZZY"}}
            }}, "credHelpers": {{"gcr.io": "gcloud"}}}}"#,
            STANDARD_NO_PAD.encode("carol:c:with:colons")
        );
        let parsed = parse(&text).unwrap();
        let summary: Vec<_> = parsed
            .iter()
            .map(|r| {
                (
                    r.server.as_str(),
                    r.username.as_str(),
                    r.password.as_str(),
                    r.email.as_deref(),
                    r.identity_token.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ghcr.io", "", "", None, Some("refresh-XYZZY")),
                (
                    "https://index.docker.io/v1/",
                    "carol",
                    "c:with:colons",
                    None,
                    None
                ),
                ("quay.io/team", "bob", PASSWORD, Some("b@x.org"), None),
                ("registry.example.com", "alice", PASSWORD, None, None),
            ]
        );
        // Debug shows no credential.
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("XYZZY"), "{debug}");
        // Sealed form round-trips.
        assert_eq!(
            parse_docker_config(&to_docker_config(&parsed)).unwrap(),
            parsed
        );
        let one = docker_config_for("r.example.com:5000", "u", PASSWORD, Some("u@x.org"));
        let back = parse_docker_config(&one).unwrap();
        assert_eq!(
            (
                back[0].server.as_str(),
                back[0].username.as_str(),
                back[0].password.as_str()
            ),
            ("r.example.com:5000", "u", PASSWORD)
        );
    }

    #[test]
    fn bad_configs_are_refused_without_quoting_credentials() {
        let secret = "XYZZY";
        let not_base64 = format!(r#"{{"auths":{{"r.io":{{"auth":"{secret}!!"}}}}}}"#);
        let no_colon = format!(
            r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode(format!("{secret}nocolon"))
        );
        let no_user = format!(
            r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode(format!(":{secret}"))
        );
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("   \n".into(), "empty"),
            (
                format!("{{\"auths\": {{\"r.io\": {{\"auth\": \"{secret}"),
                "not JSON",
            ),
            (format!("[\"{secret}\"]"), "not a JSON object"),
            (format!("\"{secret}\""), "not a JSON object"),
            ("{}".into(), "no \"auths\""),
            (
                format!("{{\"auths\": \"{secret}\"}}"),
                "auths: must be an object",
            ),
            ("{\"auths\": {}}".into(), "\"auths\" is empty"),
            (
                "{\"auths\": {}, \"credsStore\": \"desktop\"}".into(),
                "credential helper",
            ),
            (
                format!("{{\"auths\": {{\"r.io\": \"{secret}\"}}}}"),
                "must be an object",
            ),
            (
                format!("{{\"auths\": {{\"not a host\": {{\"auth\": \"{secret}\"}}}}}}"),
                "not a registry server",
            ),
            (
                format!("{{\"auths\": {{\"\": {{\"auth\": \"{secret}\"}}}}}}"),
                "not a registry server",
            ),
            (not_base64, "not base64"),
            (no_colon, "user:password"),
            (no_user, "user name in it is empty"),
            (
                format!("{{\"auths\": {{\"r.io\": {{\"auth\": 5, \"password\": \"{secret}\"}}}}}}"),
                "auth: must be a string",
            ),
            (
                format!("{{\"auths\": {{\"r.io\": {{\"password\": \"{secret}\"}}}}}}"),
                "without a user name",
            ),
            (
                "{\"auths\": {\"r.io\": {\"username\": \"u\"}}}".into(),
                "without a password",
            ),
            ("{\"auths\": {\"r.io\": {}}}".into(), "no credentials"),
            (
                "{\"auths\": {\"r.io\": {\"email\": \"e@x.org\"}}}".into(),
                "no credentials",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&text).expect_err(&text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains(secret), "{text:?} quoted: {error}");
        }
        let many: Map<String, Value> = (0..=MAX_REGISTRIES)
            .map(|i| {
                (
                    format!("r{i}.io"),
                    json!({"username": "u", "password": "p"}),
                )
            })
            .collect();
        let error =
            parse_docker_config(&serde_json::to_vec(&json!({"auths": many})).unwrap()).unwrap_err();
        assert!(error.0.contains("at most"), "{error}");
        // Not UTF-8 at all.
        assert!(parse_docker_config(&[0xff, 0xfe, 0x00]).is_err());
    }
}
