//! `berth create user|group|serviceaccount|token|secret|imagestream|proxy`.

use anyhow::{Context, bail};

use super::client::{GroupRequest, NameMeta, SERVICE_ACCOUNT_PREFIX, TokenRequest, UserRequest};
use super::login::read_secret_from_stdin;
use super::output::{OutputFormat, print_created, print_one};
use super::session::{Globals, InProject, Session};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: CreateCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CreateCommand {
    /// Create a user (cluster admins).
    User(CreateUserArgs),
    /// Create a group of users (cluster admins).
    Group(CreateGroupArgs),
    /// Create a service account in a project.
    #[command(name = "serviceaccount", visible_alias = "sa")]
    ServiceAccount(CreateServiceAccountArgs),
    /// Create a token and print it (only it, for `$(berth create token …)`).
    Token(CreateTokenArgs),
    /// Create a pull secret in a project: docker-registry or generic.
    Secret(super::secrets::CreateSecretArgs),
    /// Create an empty image stream (pushes and `berth tag` make them too).
    #[command(name = "imagestream", visible_alias = "is")]
    ImageStream(super::image_streams::CreateImageStreamArgs),
    /// Create a project that caches an upstream registry (a pull-through
    /// cache): pulls fetch from the upstream, pushes are refused.
    Proxy(super::proxies::CreateProxyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateUserArgs {
    pub name: String,
    /// Read the user's password from standard input. Without it the user
    /// has no password and logs in with tokens only.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long)]
    pub email: Option<String>,
    /// Make the user a super user (cluster admin).
    #[arg(long)]
    pub super_user: bool,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
pub struct CreateGroupArgs {
    pub name: String,
    /// Members, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "USER,...")]
    pub users: Vec<String>,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
pub struct CreateServiceAccountArgs {
    pub name: String,
    #[command(flatten)]
    pub project: InProject,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without SUBJECT: a token for yourself (the logged-in user). With sa/NAME (or \
serviceaccount/NAME, NAME, or system:serviceaccount:NS:NAME): a token for the \
service account NAME of the project. With user/NAME (cluster admins): a token \
for that user, e.g. one without a password. Only the token is printed, so that \
TOKEN=$(berth create token sa/builder -n myproj) works; it is shown only \
this once.")]
pub struct CreateTokenArgs {
    /// Whose token: sa/NAME, user/NAME, or nothing for yourself.
    pub subject: Option<String>,
    /// The project of the service account (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// How long the token is valid, e.g. 24h, 90m, 30d (default: the server's).
    #[arg(long)]
    pub duration: Option<String>,
    /// Name of the token (default: generated, <subject>-token-xxxxx).
    #[arg(long)]
    pub name: Option<String>,
    /// Print the whole Token object (with its secret) instead of the token.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn run(args: CreateArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    let client = session.client()?;
    match args.what {
        CreateCommand::User(args) => {
            let password = if args.password_stdin {
                let password = read_secret_from_stdin()?;
                if password.is_empty() {
                    bail!("the password read from standard input is empty");
                }
                Some(password)
            } else {
                None
            };
            let user = client
                .create_user(&UserRequest {
                    metadata: NameMeta::named(&args.name),
                    password,
                    email: args.email.clone(),
                    super_user: args.super_user,
                })
                .await?;
            print_created(&user, args.output.as_ref())
        }
        CreateCommand::Group(args) => {
            let users: Vec<String> = args
                .users
                .iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            let group = client
                .create_group(&GroupRequest {
                    metadata: NameMeta::named(&args.name),
                    users: Some(users),
                })
                .await?;
            print_created(&group, args.output.as_ref())
        }
        CreateCommand::ServiceAccount(args) => {
            let ns = session.namespace(args.project.namespace.as_deref())?;
            let account = client.create_service_account(&ns, &args.name).await?;
            print_created(&account, args.project.output.as_ref())
        }
        CreateCommand::Secret(args) => super::secrets::create(args, &session).await,
        CreateCommand::ImageStream(args) => super::image_streams::create(args, &session).await,
        CreateCommand::Proxy(args) => super::proxies::create(args, &session).await,
        CreateCommand::Token(args) => {
            let request = TokenRequest::new(args.name.as_deref(), args.duration.as_deref());
            let token = match token_owner(args.subject.as_deref(), args.namespace.as_deref())? {
                TokenOwner::Me => client.create_token(&request).await?,
                TokenOwner::User(user) => client.create_user_token(&user, &request).await?,
                TokenOwner::ServiceAccount { namespace, name } => {
                    let ns = session.namespace(namespace.as_deref())?;
                    client
                        .create_service_account_token(&ns, &name, &request)
                        .await?
                }
            };
            if args.output.is_some() {
                return print_one(&token, args.output.as_ref());
            }
            let secret = token
                .secret()
                .context("the server created the token but did not return its secret")?;
            println!("{secret}");
            Ok(())
        }
    }
}

/// Whom `berth create token [SUBJECT]` is for.
#[derive(Debug, PartialEq, Eq)]
enum TokenOwner {
    Me,
    User(String),
    /// The namespace when the subject or `-n` names one.
    ServiceAccount {
        namespace: Option<String>,
        name: String,
    },
}

fn token_owner(subject: Option<&str>, namespace: Option<&str>) -> anyhow::Result<TokenOwner> {
    let Some(subject) = subject else {
        return Ok(TokenOwner::Me);
    };
    if let Some(("user" | "users", name)) = subject.split_once('/') {
        if name.is_empty() {
            bail!("{subject:?}: the user name is missing");
        }
        return Ok(TokenOwner::User(name.to_owned()));
    }
    let (namespace, name) = service_account_of(subject, namespace)?;
    Ok(TokenOwner::ServiceAccount { namespace, name })
}

/// The service account named by `subject`, and its namespace if the
/// subject or `-n` names one.
fn service_account_of(
    subject: &str,
    namespace: Option<&str>,
) -> anyhow::Result<(Option<String>, String)> {
    if let Some(rest) = subject.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
        let Some((ns, name)) = rest.split_once(':') else {
            bail!("{subject:?} is not of the form system:serviceaccount:NAMESPACE:NAME");
        };
        if let Some(given) = namespace
            && given != ns
        {
            bail!("{subject:?} is in namespace {ns:?}, but -n says {given:?}");
        }
        return Ok((Some(ns.to_owned()), name.to_owned()));
    }
    let name = match subject.split_once('/') {
        Some(("sa" | "serviceaccount" | "serviceaccounts", name)) => name,
        Some((kind, _)) => bail!(
            "cannot create a token for a {kind:?}: give sa/NAME for a service account, \
             user/NAME for a user, or nothing for yourself"
        ),
        None => subject,
    };
    if name.is_empty() {
        bail!("{subject:?}: the service account name is missing");
    }
    Ok((namespace.map(str::to_owned), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_subjects() {
        let ok = |s: &str, ns: Option<&str>| service_account_of(s, ns).unwrap();
        assert_eq!(
            ok("sa/builder", Some("p")),
            (Some("p".into()), "builder".into())
        );
        assert_eq!(ok("serviceaccount/builder", None), (None, "builder".into()));
        assert_eq!(ok("builder", None), (None, "builder".into()));
        assert_eq!(
            ok("system:serviceaccount:p:builder", None),
            (Some("p".into()), "builder".into())
        );
        assert!(service_account_of("system:serviceaccount:p:builder", Some("q")).is_err());
        assert!(service_account_of("group/devs", None).is_err());
        assert!(service_account_of("sa/", None).is_err());
        assert_eq!(token_owner(None, None).unwrap(), TokenOwner::Me);
        assert_eq!(
            token_owner(Some("user/alice"), None).unwrap(),
            TokenOwner::User("alice".into())
        );
        assert!(token_owner(Some("user/"), None).is_err());
        assert_eq!(
            token_owner(Some("sa/b"), Some("p")).unwrap(),
            TokenOwner::ServiceAccount {
                namespace: Some("p".into()),
                name: "b".into()
            }
        );
    }
}
