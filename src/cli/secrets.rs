//! Pull secrets on the command line, as `oc` has them: `create secret
//! docker-registry|generic`, how `get secrets` prints them, and `secrets
//! link`, which berth accepts and needs nothing more of (imports find a
//! project's secrets by their server, as `oc import-image` does).

use anyhow::{Context, bail};
use base64::Engine as _;
use time::OffsetDateTime;

use super::client::{NameMeta, Secret, SecretRequest};
use super::login::read_secret_from_stdin;
use super::output::{Printable, age, joined, object_identity, print_created, timestamp_cell};
use super::session::{Globals, InProject, Session};
use crate::domain::secrets::{DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE, docker_config_for};

/// The service accounts every OpenShift project has.
const OPENSHIFT_SERVICE_ACCOUNTS: [&str; 3] = ["default", "builder", "deployer"];

/// Docker Hub, as `oc create secret docker-registry` defaults to it.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Debug, clap::Args)]
pub struct CreateSecretArgs {
    #[command(subcommand)]
    pub kind: CreateSecretCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CreateSecretCommand {
    /// A secret for one registry server, from a user name and password.
    #[command(name = "docker-registry")]
    DockerRegistry(DockerRegistryArgs),
    /// A secret from an auth.json (podman's or docker's):
    /// --from-file .dockerconfigjson=PATH --type kubernetes.io/dockerconfigjson.
    Generic(GenericSecretArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The password is stored encrypted and never shown again; imports into the \
project use it for the server it names (host[:port], and a path prefix \
such as registry.example.com/team). --docker-password-stdin keeps it out of \
the process list.")]
pub struct DockerRegistryArgs {
    pub name: String,
    /// The registry: host[:port][/path].
    #[arg(long, default_value = DOCKER_HUB_SERVER)]
    pub docker_server: String,
    #[arg(long)]
    pub docker_username: String,
    #[arg(long, conflicts_with = "docker_password_stdin")]
    pub docker_password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub docker_password_stdin: bool,
    #[arg(long)]
    pub docker_email: Option<String>,
    #[command(flatten)]
    pub project: InProject,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
berth keeps pull secrets only: the file is an auth.json as `podman login` \
(${XDG_RUNTIME_DIR}/containers/auth.json) or `docker login` \
(~/.docker/config.json) writes it, with one or more servers. Credentials \
kept by a credential helper are not in the file: log in with --authfile.")]
pub struct GenericSecretArgs {
    pub name: String,
    /// `.dockerconfigjson=PATH` (or PATH).
    #[arg(long, value_name = "[KEY=]PATH")]
    pub from_file: String,
    /// kubernetes.io/dockerconfigjson, the one type berth keeps.
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    #[command(flatten)]
    pub project: InProject,
}

pub async fn create(args: CreateSecretArgs, session: &Session) -> anyhow::Result<()> {
    let client = session.client()?;
    let (name, project, secret_type, config) = match args.kind {
        CreateSecretCommand::DockerRegistry(args) => {
            let password = match (args.docker_password, args.docker_password_stdin) {
                (Some(password), _) => password,
                (None, true) => read_secret_from_stdin()?,
                (None, false) => bail!("give --docker-password, or --docker-password-stdin"),
            };
            if password.is_empty() {
                bail!("the password is empty");
            }
            let config = docker_config_for(
                &args.docker_server,
                &args.docker_username,
                &password,
                args.docker_email.as_deref(),
            );
            let kind = Some(DOCKER_CONFIG_JSON_TYPE.to_owned());
            (args.name, args.project, kind, config)
        }
        CreateSecretCommand::Generic(args) => {
            let (key, path) = match args.from_file.split_once('=') {
                Some((key, path)) => (key, path),
                None => (DOCKER_CONFIG_JSON_KEY, args.from_file.as_str()),
            };
            if key != DOCKER_CONFIG_JSON_KEY {
                bail!(
                    "--from-file {key}=…: berth keeps pull secrets only, whose one key is \
                     {DOCKER_CONFIG_JSON_KEY} (--from-file {DOCKER_CONFIG_JSON_KEY}={path})"
                );
            }
            let config = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            (args.name, args.project, args.secret_type, config)
        }
    };
    let namespace = session.namespace(project.namespace.as_deref())?;
    let request = SecretRequest {
        metadata: NameMeta::named(&name),
        secret_type,
        data: Some(serde_json::Value::Object(serde_json::Map::from_iter([(
            DOCKER_CONFIG_JSON_KEY.to_owned(),
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(config)),
        )]))),
        string_data: None,
    };
    let secret = client.create_secret(&namespace, &request).await?;
    print_created(&secret, project.output.as_ref())
}

#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Accepted for `oc` scripts: berth's imports find a project's pull
    /// secrets by server, so linking them to a service account adds
    /// nothing. Checks that the secrets exist, and the service account
    /// unless it is one OpenShift makes in every project (default,
    /// builder, deployer).
    Link(LinkArgs),
}

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// The service account.
    pub service_account: String,
    /// The secrets.
    #[arg(required = true)]
    pub secrets: Vec<String>,
    /// pull, mount, or both (pull,mount).
    #[arg(long = "for", value_name = "USE", default_value = "mount")]
    pub for_use: String,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

pub async fn secrets(args: SecretsArgs, globals: &Globals) -> anyhow::Result<()> {
    let SecretsCommand::Link(args) = args.command;
    for use_ in args.for_use.split(',') {
        if !matches!(use_.trim(), "pull" | "mount") {
            bail!("--for {:?}: use pull, mount, or pull,mount", args.for_use);
        }
    }
    let session = Session::load(globals)?;
    let client = session.client()?;
    let namespace = session.namespace(args.namespace.as_deref())?;
    let account = args
        .service_account
        .strip_prefix("serviceaccount/")
        .or_else(|| args.service_account.strip_prefix("sa/"))
        .unwrap_or(&args.service_account);
    // OpenShift makes these in every project; scripts written for it link
    // to them without creating them.
    if !OPENSHIFT_SERVICE_ACCOUNTS.contains(&account) {
        client.get_service_account(&namespace, account).await?;
    }
    for secret in &args.secrets {
        let secret = secret.strip_prefix("secret/").unwrap_or(secret);
        client.get_secret(&namespace, secret).await?;
    }
    Ok(())
}

impl Printable for Secret {
    object_identity!("secret");
    fn headers() -> &'static [&'static str] {
        &["NAME", "TYPE", "DATA", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.secret_type.clone(),
            "1".to_owned(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["SERVERS", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        let servers = match &self.registries {
            Some(registries) => joined(registries.iter().map(|r| {
                if r.username.is_empty() {
                    r.server.clone()
                } else {
                    format!("{} ({})", r.server, r.username)
                }
            })),
            None => "<hidden>".to_owned(),
        };
        vec![
            servers,
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

/// `describe secret NAME`, as `oc describe secret` prints it, with the
/// servers and user names in place of the data's size. (The `describe`
/// verb itself belongs with image streams' `describe is`, which defines
/// it; this is what it prints for a secret.)
pub fn describe_secret(secret: &Secret) -> String {
    let mut text = format!(
        "Name:         {}\nNamespace:    {}\nLabels:       <none>\nAnnotations:  <none>\n\n\
         Type:  {}\n\nData\n====\n{DOCKER_CONFIG_JSON_KEY}:  ",
        secret.metadata.name,
        secret.metadata.namespace.as_deref().unwrap_or(""),
        secret.secret_type,
    );
    match &secret.registries {
        None => text.push_str("<hidden>\n"),
        Some(registries) => {
            text.push_str(&format!("{} server(s)\n", registries.len()));
            for r in registries {
                text.push_str(&format!("  {}", r.server));
                if !r.username.is_empty() {
                    text.push_str(&format!("  user {}", r.username));
                }
                if let Some(email) = &r.email {
                    text.push_str(&format!("  <{email}>"));
                }
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::{ObjectMeta, SecretRegistry};

    fn secret(registries: Option<Vec<SecretRegistry>>) -> Secret {
        Secret {
            api_version: "v1".into(),
            kind: "Secret".into(),
            metadata: ObjectMeta {
                namespace: Some("team".into()),
                ..ObjectMeta::named("regcreds")
            },
            secret_type: DOCKER_CONFIG_JSON_TYPE.into(),
            registries,
            extra: Default::default(),
        }
    }

    #[test]
    fn rows_and_descriptions_show_servers_to_admins_only() {
        let admin_view = secret(Some(vec![
            SecretRegistry {
                server: "quay.io".into(),
                username: "u".into(),
                email: Some("u@example.org".into()),
                extra: Default::default(),
            },
            SecretRegistry {
                server: "ghcr.io".into(),
                ..SecretRegistry::default()
            },
        ]));
        assert_eq!(admin_view.wide_cells()[0], "quay.io (u), ghcr.io");
        assert_eq!(
            admin_view.row(OffsetDateTime::now_utc())[..3],
            ["regcreds", DOCKER_CONFIG_JSON_TYPE, "1"]
        );
        let described = describe_secret(&admin_view);
        assert!(described.contains("Namespace:    team"), "{described}");
        assert!(
            described.contains(
                ".dockerconfigjson:  2 server(s)\n  quay.io  user u  <u@example.org>\n  ghcr.io\n"
            ),
            "{described}"
        );
        let viewer_view = secret(None);
        assert_eq!(viewer_view.wide_cells()[0], "<hidden>");
        assert!(describe_secret(&viewer_view).contains(".dockerconfigjson:  <hidden>"));
        assert_eq!(viewer_view.kind(), "secret");
    }
}
