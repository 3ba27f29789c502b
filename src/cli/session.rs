//! What every admin verb starts from: the CLI configuration, the current
//! server, its login, and a client for its API.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::client::{ApiClient, Credentials, TlsOptions};
use super::config::{CliConfig, ServerEntry};
use super::output::OutputFormat;

/// `-n` and `-o`: the project a command acts in, and how it prints what it
/// made or found.
#[derive(Debug, clap::Args)]
pub struct InProject {
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// Global options and the environment, as the verbs see them.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The CLI configuration file.
    pub config_path: PathBuf,
}

#[derive(Debug)]
pub struct Session {
    pub config_path: PathBuf,
    pub config: CliConfig,
    /// The current server, normalised.
    pub server: String,
}

impl Session {
    pub fn load(globals: &Globals) -> anyhow::Result<Session> {
        let config = CliConfig::load(&globals.config_path)?;
        let server = config.server().to_owned();
        Ok(Session {
            config_path: globals.config_path.clone(),
            config,
            server,
        })
    }

    pub fn save(&self) -> anyhow::Result<()> {
        Ok(self.config.save(&self.config_path)?)
    }

    pub fn entry(&self) -> Option<&ServerEntry> {
        self.config.entry(&self.server)
    }

    pub fn entry_mut(&mut self) -> &mut ServerEntry {
        self.config.entry_mut(&self.server)
    }

    pub fn tls(&self) -> TlsOptions {
        tls_of(self.entry())
    }

    /// The token of the current login.
    pub fn token(&self) -> anyhow::Result<&str> {
        match self.entry().and_then(|e| e.token.as_deref()) {
            Some(token) => Ok(token),
            None => bail!(
                "you are not logged in to {}: run \"berth login {} -u USER\"",
                self.server,
                self.server
            ),
        }
    }

    /// A client authenticated with the current login's token.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let token = self.token()?.to_owned();
        Ok(ApiClient::new(
            &self.server,
            &self.tls(),
            Credentials::Token(token),
        )?)
    }

    /// `-n` if given, else the current namespace.
    pub fn namespace(&self, given: Option<&str>) -> anyhow::Result<String> {
        if let Some(namespace) = given {
            return Ok(namespace.to_owned());
        }
        self.entry()
            .and_then(|e| e.current_namespace.clone())
            .context(
                "no namespace given and no current project: pass -n NAMESPACE, \
                 or choose one with \"berth project NAME\"",
            )
    }
}

pub fn tls_of(entry: Option<&ServerEntry>) -> TlsOptions {
    TlsOptions {
        insecure_skip_verify: entry.is_some_and(|e| e.insecure_skip_tls_verify),
        certificate_authority: entry.and_then(|e| e.certificate_authority.clone()),
    }
}
