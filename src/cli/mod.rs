//! The `berth` command line: `berth serve`, and admin verbs modelled on
//! `oc` that talk to a berth server's REST API (`/api/v1`) only.
//!
//! - [`client`]: the API client; [`config`]: the CLI's configuration file;
//!   [`auth_file`]: the containers `auth.json`; [`output`]: tables, JSON, YAML.
//! - one module per verb group: [`login`], [`project`], [`get`], [`create`],
//!   [`delete`], [`policy`] (and `adm`), [`jobs`] (`adm jobs`), [`quotas`]
//!   (`adm top`, `set quota`), [`version`];
//!   [`image_streams`]: `describe is`, `tag`, `rollback`, `set image-lookup`
//!   and the image stream kinds of `get`, `create` and `delete`;
//!   `completion` is here.
//! - [`jsonpath`]: the templates of `-o jsonpath=…`.

pub mod auth_file;
pub mod client;
pub mod config;
pub mod create;
pub mod delete;
pub mod garbage;
pub mod get;
pub mod image_streams;
pub mod imports;
pub mod jobs;
pub mod jsonpath;
pub mod login;
pub mod output;
pub mod policy;
pub mod project;
pub mod proxies;
pub mod pruner;
pub mod quotas;
mod runs;
pub mod secrets;
pub mod session;
pub mod version;

/// An environment of `vars` only, for the tests of what reads variables.
#[cfg(test)]
pub(crate) fn fake_env<'a>(
    vars: &'a [(&'a str, &'a str)],
) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| std::ffi::OsString::from(v))
    }
}

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "An OCI container image registry")]
pub struct Cli {
    /// The CLI configuration file (login, current server and project)
    /// [default: ${XDG_CONFIG_HOME:-~/.config}/berth/config.yaml]
    #[arg(long, global = true, env = config::CONFIG_ENV, value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry.
    Serve(ServeArgs),
    /// Log in to a berth server, and podman and skopeo with it.
    Login(login::LoginArgs),
    /// Revoke the current login's token and forget it.
    Logout(login::LogoutArgs),
    /// Show the logged-in user (-t: its token).
    Whoami(login::WhoamiArgs),
    /// Create a project and make it the current one.
    NewProject(project::NewProjectArgs),
    /// Show or switch the current project.
    Project(project::ProjectArgs),
    /// List objects: projects, serviceaccounts, tokens, rolebindings, users,
    /// groups, imagestreams (is), imagestreamtags (istag), imagestreamimages (isimage).
    Get(get::GetArgs),
    /// Create a user, group, service account, token, pull secret, image
    /// stream or proxy namespace.
    Create(create::CreateArgs),
    /// Delete tokens, service accounts, users, groups, projects, role
    /// bindings, image streams and image stream tags.
    Delete(delete::DeleteArgs),
    /// Show an image stream in detail: every tag, its history and conditions.
    Describe(image_streams::DescribeArgs),
    /// Tag an image into image streams: SOURCE DEST...
    Tag(image_streams::TagArgs),
    /// Roll an image stream tag back to an earlier revision.
    Rollback(image_streams::RollbackArgs),
    /// Import images of another registry into an image stream.
    ImportImage(imports::ImportImageArgs),
    /// Change objects: set image-lookup, immutable-tags, quota.
    Set(image_streams::SetArgs),
    /// Manage a project's role bindings; who-can.
    Policy(policy::PolicyArgs),
    /// Link pull secrets to a service account (accepted; nothing more is
    /// needed).
    Secrets(secrets::SecretsArgs),
    /// Cluster administration: cluster-wide role bindings, unlocking
    /// users, background jobs, garbage collection, storage usage (top).
    Adm(policy::AdmArgs),
    /// Show the client's version and, when logged in, the server's.
    Version(version::VersionArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish, powershell.
    #[command(after_help = "\
Load it in the current shell, or install it for good:

    source <(berth completion bash)
    berth completion bash > /etc/bash_completion.d/berth
    berth completion zsh > \"${fpath[1]}/_berth\"
    berth completion fish > ~/.config/fish/completions/berth.fish")]
    Completion(CompletionArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// An error already printed (for instance one of several failed deletes):
/// the command only has to fail.
#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct AlreadyReported;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (YAML). Without one, built-in defaults apply.
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database, blobs and the admin password [default: ./berth-data]
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000]
    #[arg(long, env = "BERTH_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Allow plain HTTP on a non-loopback address.
    #[arg(long)]
    pub insecure_http: bool,
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(addr) = self.addr {
            config.http.addr = addr;
        }
        if self.insecure_http {
            config.http.insecure_http = true;
        }
        Ok(config)
    }
}

fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: escape codes in a log file
    // or a journal get in the way of searching it, and cost on every line.
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let cli_config = cli.cli_config;
    let globals = || -> anyhow::Result<session::Globals> {
        Ok(session::Globals {
            config_path: config::config_path(cli_config.as_deref(), |name| std::env::var_os(name))?,
        })
    };
    match cli.command {
        Command::Serve(args) => {
            let config = args.config().context("loading configuration")?;
            init_logging(&config);
            let server = crate::server::start(config).await?;
            server.run_until_signal().await
        }
        Command::Login(args) => login::login(args, &globals()?).await,
        Command::Logout(args) => login::logout(args, &globals()?).await,
        Command::Whoami(args) => login::whoami(args, &globals()?).await,
        Command::NewProject(args) => project::new_project(args, &globals()?).await,
        Command::Project(args) => project::project(args, &globals()?).await,
        Command::Get(args) => get::run(args, &globals()?).await,
        Command::Create(args) => create::run(args, &globals()?).await,
        Command::Delete(args) => delete::run(args, &globals()?).await,
        Command::Describe(args) => image_streams::describe(args, &globals()?).await,
        Command::Tag(args) => image_streams::tag(args, &globals()?).await,
        Command::Rollback(args) => image_streams::rollback(args, &globals()?).await,
        Command::ImportImage(args) => imports::import_image(args, &globals()?).await,
        Command::Set(args) => image_streams::set(args, &globals()?).await,
        Command::Policy(args) => policy::policy(args, &globals()?).await,
        Command::Secrets(args) => secrets::secrets(args, &globals()?).await,
        Command::Adm(args) => policy::adm(args, &globals()?).await,
        Command::Version(args) => version::version(args, &globals()?).await,
        Command::Completion(args) => {
            // Into memory first: clap_complete panics when its writer
            // fails (`berth completion bash | head`).
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "berth", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(())
        }
    }
}

/// How `main` reports an error: the server's own words for API errors
/// (`Error from server (Forbidden): …`, as `oc` prints them), nothing for
/// errors already printed, `error: …` with its causes for the rest.
pub fn error_message(error: &anyhow::Error) -> Option<String> {
    if error.downcast_ref::<AlreadyReported>().is_some() {
        return None;
    }
    if let Some(api @ client::ClientError::Api { .. }) = error.downcast_ref::<client::ClientError>()
    {
        return Some(api.to_string());
    }
    Some(format!("error: {error:#}"))
}
