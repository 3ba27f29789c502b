//! `berth login`, `berth logout`, `berth whoami`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::auth_file::{AuthFile, auth_file_path};
use super::client::{ApiClient, ClientError, Credentials, TlsOptions, TokenRequest};
use super::config::{CliConfig, ServerEntry, parse_server, registry_host};
use super::session::{Globals, Session};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
SERVER is host[:port], http://host[:port] or https://host[:port]. A bare \
host[:port] means HTTPS, except for loopback hosts (localhost, 127.0.0.1, \
[::1]), which mean plain HTTP, as `berth serve` listens by default. Without \
SERVER: the current server, else http://127.0.0.1:5000.

Login creates a token (the password is never stored) and writes it to the \
CLI configuration and to the containers auth.json that podman, skopeo and \
buildah read ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, \
else ~/.config/containers/auth.json), so that `podman push` works at once.")]
pub struct LoginArgs {
    /// The berth server.
    pub server: Option<String>,
    /// User name (asked for on a terminal if not given).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (asked for on a terminal if not given). Prefer --password-stdin.
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Log in with an existing token instead of a password.
    #[arg(long, conflicts_with_all = ["username", "password", "password_stdin"])]
    pub token: Option<String>,
    /// Do not verify the server's certificate (insecure).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_skip_tls_verify: Option<bool>,
    /// PEM file of the certificate authority that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Project to use after login.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {}

#[derive(Debug, clap::Args)]
pub struct WhoamiArgs {
    /// Print the token of the current login instead of the user name.
    #[arg(short = 't', long)]
    pub show_token: bool,
    /// Print the current server instead of the user name.
    #[arg(long, conflicts_with = "show_token")]
    pub show_server: bool,
}

pub async fn login(args: LoginArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut config = CliConfig::load(&globals.config_path)?;
    let server = match &args.server {
        Some(text) => parse_server(text).map_err(anyhow::Error::msg)?,
        None => config.server().to_owned(),
    };
    let previous = config.entry(&server).cloned().unwrap_or_default();
    let tls = TlsOptions {
        insecure_skip_verify: args
            .insecure_skip_tls_verify
            .unwrap_or(previous.insecure_skip_tls_verify),
        certificate_authority: match &args.certificate_authority {
            Some(path) => Some(std::fs::canonicalize(path).with_context(|| {
                format!("reading the certificate authority file {}", path.display())
            })?),
            None => previous.certificate_authority.clone(),
        },
    };

    let (token, token_name) = match &args.token {
        Some(token) => (token.clone(), None),
        None => {
            let user = match &args.username {
                Some(user) => user.clone(),
                None => prompt_user()?,
            };
            let password = password(&args)?;
            let client = ApiClient::new(
                &server,
                &tls,
                Credentials::Password {
                    user: user.clone(),
                    password,
                },
            )?;
            let created = client
                .create_token(&TokenRequest::default())
                .await
                .map_err(login_error)?;
            let secret = created
                .secret()
                .context("the server created a token but did not return its secret")?
                .to_owned();
            (secret, Some(created.metadata.name))
        }
    };
    let client = ApiClient::new(&server, &tls, Credentials::Token(token.clone()))?;
    let user = client.whoami().await.map_err(login_error)?.metadata.name;
    let projects = client.list_projects().await?;
    let names: Vec<String> = projects
        .items
        .into_iter()
        .map(|p| p.metadata.name)
        .collect();

    // The token of an earlier login here is of no use any more.
    if let (Some(old), Some(old_name)) = (&previous.token, &previous.token_name)
        && *old != token
        && let Ok(old_client) = ApiClient::new(&server, &tls, Credentials::Token(old.clone()))
    {
        let _ = old_client.delete_token(old_name).await;
    }

    let chosen = match &args.namespace {
        Some(ns) if !names.contains(ns) => {
            eprintln!(
                "warning: project \"{ns}\" does not exist on {server}, or you have no role in it"
            );
            None
        }
        given => given.clone(),
    };
    let namespace = chosen
        .or_else(|| {
            previous
                .current_namespace
                .clone()
                .filter(|ns| names.contains(ns))
        })
        .or_else(|| (names.len() == 1).then(|| names[0].clone()));
    let entry = ServerEntry {
        user: Some(user.clone()),
        token: Some(token.clone()),
        token_name,
        current_namespace: namespace.clone(),
        insecure_skip_tls_verify: tls.insecure_skip_verify,
        certificate_authority: tls.certificate_authority.clone(),
    };
    config.servers.insert(server.clone(), entry);
    config.current_server = Some(server.clone());
    config.save(&globals.config_path)?;

    if let Err(e) = store_registry_credential(&server, &user, &token) {
        eprintln!("warning: {e:#}; podman, skopeo and buildah will not be logged in to {server}");
    }

    let mut out = std::io::stdout().lock();
    if args.token.is_some() {
        writeln!(
            out,
            "Logged into \"{server}\" as \"{user}\" using the token provided."
        )?;
    } else {
        writeln!(out, "Login successful.")?;
    }
    writeln!(out)?;
    write_projects(&mut out, &names, namespace.as_deref())?;
    Ok(())
}

/// Wrong credentials deserve a plainer message than the server's.
fn login_error(error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Api {
            code: 401, message, ..
        } => anyhow::anyhow!(
            "Login failed (401 Unauthorized): {message}\nVerify you have provided the correct credentials."
        ),
        other => other.into(),
    }
}

fn write_projects(
    out: &mut impl Write,
    names: &[String],
    current: Option<&str>,
) -> std::io::Result<()> {
    match names {
        [] => {
            writeln!(
                out,
                "You don't have any projects. You can try to create a new project, by running\n\n    berth new-project <projectname>\n"
            )?;
            if let Some(ns) = current {
                writeln!(out, "Using project \"{ns}\".")?;
            }
        }
        [only] => {
            writeln!(out, "You have one project on this server: \"{only}\"\n")?;
            if let Some(ns) = current {
                writeln!(out, "Using project \"{ns}\".")?;
            }
        }
        many => {
            writeln!(
                out,
                "You have access to the following projects and can switch between them with 'berth project <projectname>':\n"
            )?;
            for name in many {
                let mark = if Some(name.as_str()) == current {
                    "*"
                } else {
                    " "
                };
                writeln!(out, "  {mark} {name}")?;
            }
            writeln!(out)?;
            if let Some(ns) = current {
                writeln!(out, "Using project \"{ns}\".")?;
            }
        }
    }
    Ok(())
}

/// Writes `user:token` for the server's host into the containers auth file,
/// replacing what was stored for that host.
fn store_registry_credential(server: &str, user: &str, token: &str) -> anyhow::Result<()> {
    let host = registry_host(server).map_err(anyhow::Error::msg)?;
    let path = auth_file_path(|name| std::env::var_os(name))?;
    let mut file = AuthFile::load(&path)?;
    file.set(&host, registry_user(user), token);
    file.save()?;
    Ok(())
}

/// The user name to pair with a token in `auth.json`, whose `auth` is
/// `user:secret` split at the first colon: a service account
/// (`system:serviceaccount:NS:NAME`) goes by its short name. berth ignores
/// the user name that comes with a token anyway.
fn registry_user(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn prompt_user() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("a user name is needed: pass -u USER");
    }
    eprint!("Username: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let user = line.trim().to_owned();
    if user.is_empty() {
        bail!("a user name is needed: pass -u USER");
    }
    Ok(user)
}

fn password(args: &LoginArgs) -> anyhow::Result<String> {
    if let Some(password) = &args.password {
        return Ok(password.clone());
    }
    let password = if args.password_stdin {
        read_secret_from_stdin()?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ").context("reading the password")?
    } else {
        bail!("a password is needed: pass --password-stdin (or -p PASSWORD), or --token TOKEN");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// All of standard input, without the final line break.
pub fn read_secret_from_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

pub async fn logout(_args: LogoutArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut session = Session::load(globals)?;
    let entry = session.entry().cloned().unwrap_or_default();
    let Some(token) = entry.token.clone() else {
        bail!("you are not logged in to {}", session.server);
    };
    match &entry.token_name {
        Some(name) => match session.client()?.delete_token(name).await {
            Ok(_) => {}
            // Revoked or expired already: nothing left to revoke.
            Err(e) if matches!(e.code(), Some(401 | 404)) => {}
            Err(e) => return Err(e.into()),
        },
        None => eprintln!(
            "note: the token given to \"berth login --token\" is forgotten here, not revoked"
        ),
    }
    let user = entry.user.clone().unwrap_or_default();
    let current = session.entry_mut();
    current.user = None;
    current.token = None;
    current.token_name = None;
    session.save()?;

    if let Err(e) = forget_registry_credential(&session.server, &token) {
        eprintln!("warning: {e:#}");
    }
    println!("Logged \"{user}\" out on \"{}\"", session.server);
    Ok(())
}

/// Removes the server's entry from the containers auth file if it holds
/// `token` (a credential podman stored there itself is left alone).
fn forget_registry_credential(server: &str, token: &str) -> anyhow::Result<()> {
    let host = registry_host(server).map_err(anyhow::Error::msg)?;
    let path = auth_file_path(|name| std::env::var_os(name))?;
    let mut file = AuthFile::load(&path)?;
    if file.remove_if(&host, |_, secret| secret == token) {
        file.save()?;
    }
    Ok(())
}

pub async fn whoami(args: WhoamiArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    if args.show_server {
        println!("{}", session.server);
    } else if args.show_token {
        println!("{}", session.token()?);
    } else {
        println!("{}", session.client()?.whoami().await?.metadata.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(names: &[&str], current: Option<&str>) -> String {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut out = Vec::new();
        write_projects(&mut out, &names, current).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn auth_file_user_names_have_no_colon() {
        assert_eq!(registry_user("alice"), "alice");
        assert_eq!(
            registry_user("system:serviceaccount:myproj:builder"),
            "builder"
        );
    }

    #[test]
    fn project_listing_after_login() {
        assert!(render(&[], None).starts_with("You don't have any projects."));
        assert_eq!(
            render(&["p"], Some("p")),
            "You have one project on this server: \"p\"\n\nUsing project \"p\".\n"
        );
        let many = render(&["a", "b"], Some("b"));
        assert!(
            many.contains("\n    a\n  * b\n\nUsing project \"b\".\n"),
            "{many}"
        );
    }
}
