//! `berth version`: the CLI's version and, when logged in, the server's
//! (`GET /api/v1/version`), as `oc version` shows both.

use std::io::Write;

use serde::Serialize;

use super::output::{OutputFormat, write_structured};
use super::session::{Globals, Session};

/// This binary's version.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The server's version is asked of the current server, with the current login; \
without a login only the client's version is shown.")]
pub struct VersionArgs {
    /// Only the client's version; no request to the server.
    #[arg(long)]
    pub client: bool,
    /// json, yaml or jsonpath=TEMPLATE instead of text.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// What `-o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Versions {
    client_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<String>,
}

pub async fn version(args: VersionArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut versions = Versions {
        client_version: CLIENT_VERSION,
        server: None,
        server_version: None,
    };
    // Like `oc version`: the client's version even when the server cannot
    // be reached, then the error.
    let mut failure = None;
    if !args.client {
        let session = Session::load(globals)?;
        if session.entry().is_some_and(|e| e.token.is_some()) {
            versions.server = Some(session.server.clone());
            match session.client()?.server_version().await {
                Ok(server) => versions.server_version = Some(server.version),
                Err(error) => failure = Some(error),
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match &args.output {
        None | Some(OutputFormat::Wide) | Some(OutputFormat::Name) => {
            writeln!(out, "Client Version: {}", versions.client_version)?;
            if let Some(version) = &versions.server_version {
                writeln!(out, "Server Version: {version}")?;
            }
            if let Some(server) = &versions.server {
                writeln!(out, "Server: {server}")?;
            }
        }
        Some(format) => write_structured(&mut out, format, &versions)?,
    }
    out.flush()?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
