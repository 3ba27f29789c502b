//! `berth policy …` (role bindings of a project, who-can) and
//! `berth adm …` (cluster-wide role bindings, unlocking users; `adm jobs`
//! is in [`super::jobs`], `adm gc` in [`super::garbage`]).

use std::io::Write;

use anyhow::bail;

use super::client::{AccessReview, BindingScope, Subject};
use super::output::{OutputFormat, write_structured};
use super::session::{Globals, InProject, Session};

const ROLES_HELP: &str = "\
Roles: system:image-puller, system:image-pusher, system:image-builder, \
registry-viewer, registry-editor, registry-admin, cluster-admin. Subjects need \
not exist yet. A user named system:serviceaccount:NS:NAME is that service account.";

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Bind a role in a project to users or service accounts.
    #[command(after_help = ROLES_HELP)]
    AddRoleToUser(UserRoleArgs),
    /// Bind a role in a project to groups.
    #[command(after_help = ROLES_HELP)]
    AddRoleToGroup(GroupRoleArgs),
    /// Remove users or service accounts from a role in a project.
    RemoveRoleFromUser(UserRoleArgs),
    /// Remove groups from a role in a project.
    RemoveRoleFromGroup(GroupRoleArgs),
    /// List who may pull, push or delete in a project.
    WhoCan(WhoCanArgs),
}

#[derive(Debug, clap::Args)]
pub struct AdmArgs {
    #[command(subcommand)]
    pub command: AdmCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmCommand {
    /// Cluster-wide role bindings.
    Policy(AdmPolicyArgs),
    /// Forget a user's failed logins: addresses refused for it may try
    /// again, and its logins are no longer slowed down.
    Unlock(AdmUnlockArgs),
    /// Background jobs that run on one replica at a time: last run,
    /// outcome, next run, the replica running them, the last error.
    Jobs(super::jobs::AdmJobsArgs),
    /// Online garbage collection: run it now (or `--dry-run`: what it would
    /// remove), or list its runs.
    Gc(super::garbage::AdmGcArgs),
    /// The image pruner: its schedule, rules, conditions and runs.
    Pruner(super::pruner::AdmPrunerArgs),
    /// Prune old tag revisions and the images and blobs nothing keeps.
    Prune(super::pruner::AdmPruneArgs),
    /// Storage usage: `top projects` (each project's bytes, deduplicated
    /// and raw, repositories, tags and quota), `top images` (each
    /// repository's).
    Top(super::quotas::AdmTopArgs),
}

#[derive(Debug, clap::Args)]
pub struct AdmUnlockArgs {
    /// The user.
    pub user: String,
}

#[derive(Debug, clap::Args)]
pub struct AdmPolicyArgs {
    #[command(subcommand)]
    pub command: AdmPolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmPolicyCommand {
    /// Bind a role in every project to users or service accounts.
    #[command(after_help = ROLES_HELP)]
    AddClusterRoleToUser(UserRoleArgs),
    /// Remove users or service accounts from a cluster-wide role.
    RemoveClusterRoleFromUser(UserRoleArgs),
    /// Bind a role in every project to groups.
    #[command(after_help = ROLES_HELP)]
    AddClusterRoleToGroup(GroupRoleArgs),
    /// Remove groups from a cluster-wide role.
    RemoveClusterRoleFromGroup(GroupRoleArgs),
}

#[derive(Debug, clap::Args)]
pub struct UserRoleArgs {
    pub role: String,
    /// User names.
    #[arg(required_unless_present = "service_accounts")]
    pub users: Vec<String>,
    /// Service account of the project, by its short name (repeatable).
    #[arg(short = 'z', long = "serviceaccount", value_name = "NAME")]
    pub service_accounts: Vec<String>,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct GroupRoleArgs {
    pub role: String,
    /// Group names.
    #[arg(required = true)]
    pub groups: Vec<String>,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessVerb {
    Pull,
    Push,
    Delete,
}

impl AccessVerb {
    fn as_str(self) -> &'static str {
        match self {
            AccessVerb::Pull => "pull",
            AccessVerb::Push => "push",
            AccessVerb::Delete => "delete",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
REPOSITORY is NAMESPACE/NAME (its first component is the project), or a NAME \
in the project of -n (default: the current project). Without it: the project \
of -n. Access is granted per project, so every repository of a project has the \
same answer.")]
pub struct WhoCanArgs {
    #[arg(value_enum)]
    pub verb: AccessVerb,
    pub repository: Option<String>,
    #[command(flatten)]
    pub project: InProject,
}

/// Add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

pub async fn policy(args: PolicyArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    match args.command {
        PolicyCommand::AddRoleToUser(args) => users(&session, args, Change::Add, false).await,
        PolicyCommand::RemoveRoleFromUser(args) => {
            users(&session, args, Change::Remove, false).await
        }
        PolicyCommand::AddRoleToGroup(args) => groups(&session, args, Change::Add, false).await,
        PolicyCommand::RemoveRoleFromGroup(args) => {
            groups(&session, args, Change::Remove, false).await
        }
        PolicyCommand::WhoCan(args) => who_can(&session, args).await,
    }
}

pub async fn adm(args: AdmArgs, globals: &Globals) -> anyhow::Result<()> {
    let session = Session::load(globals)?;
    match args.command {
        AdmCommand::Policy(AdmPolicyArgs { command }) => match command {
            AdmPolicyCommand::AddClusterRoleToUser(args) => {
                users(&session, args, Change::Add, true).await
            }
            AdmPolicyCommand::RemoveClusterRoleFromUser(args) => {
                users(&session, args, Change::Remove, true).await
            }
            AdmPolicyCommand::AddClusterRoleToGroup(args) => {
                groups(&session, args, Change::Add, true).await
            }
            AdmPolicyCommand::RemoveClusterRoleFromGroup(args) => {
                groups(&session, args, Change::Remove, true).await
            }
        },
        AdmCommand::Unlock(AdmUnlockArgs { user }) => {
            let status = session.client()?.unlock_user(&user).await?;
            println!("{}", status.message);
            Ok(())
        }
        AdmCommand::Jobs(args) => super::jobs::jobs(&session, args).await,
        AdmCommand::Gc(args) => super::garbage::gc(&session, args).await,
        AdmCommand::Pruner(args) => super::pruner::pruner(&session, args).await,
        AdmCommand::Prune(args) => super::pruner::prune(&session, args).await,
        AdmCommand::Top(args) => super::quotas::top(&session, args).await,
    }
}

async fn users(
    session: &Session,
    args: UserRoleArgs,
    change: Change,
    cluster: bool,
) -> anyhow::Result<()> {
    let mut subjects: Vec<Subject> = args.users.iter().map(|u| Subject::user(u)).collect();
    let mut shown = args.users.clone();
    if !args.service_accounts.is_empty() {
        let ns = session.namespace(args.namespace.as_deref())?;
        for account in &args.service_accounts {
            subjects.push(Subject::service_account(&ns, account));
            shown.push(account.clone());
        }
    }
    let target = Target {
        cluster,
        namespace: args.namespace.as_deref(),
    };
    apply(session, &args.role, target, &subjects, &shown, change).await
}

async fn groups(
    session: &Session,
    args: GroupRoleArgs,
    change: Change,
    cluster: bool,
) -> anyhow::Result<()> {
    let subjects: Vec<Subject> = args.groups.iter().map(|g| Subject::group(g)).collect();
    let target = Target {
        cluster,
        namespace: args.namespace.as_deref(),
    };
    apply(session, &args.role, target, &subjects, &args.groups, change).await
}

/// Where a binding changes: cluster-wide, or in `-n NAMESPACE` (else the
/// session's current project).
#[derive(Clone, Copy)]
struct Target<'a> {
    cluster: bool,
    namespace: Option<&'a str>,
}

async fn apply(
    session: &Session,
    role: &str,
    target: Target<'_>,
    subjects: &[Subject],
    shown: &[String],
    change: Change,
) -> anyhow::Result<()> {
    let namespace = if target.cluster {
        None
    } else {
        Some(session.namespace(target.namespace)?)
    };
    let scope = match &namespace {
        Some(ns) => BindingScope::Namespace(ns),
        None => BindingScope::Cluster,
    };
    let client = session.client()?;
    match change {
        Change::Add => client.add_subjects(scope, role, subjects).await?,
        Change::Remove => client.remove_subjects(scope, role, subjects).await?,
    }
    let verb = match change {
        Change::Add => "added",
        Change::Remove => "removed",
    };
    println!("clusterrole/{role} {verb}: {}", quoted_list(shown));
    Ok(())
}

/// `"alice"`, or `["alice" "bob"]` for several, as `oc policy` prints them.
fn quoted_list(names: &[String]) -> String {
    match names {
        [one] => format!("{one:?}"),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("{n:?}")).collect();
            format!("[{}]", quoted.join(" "))
        }
    }
}

async fn who_can(session: &Session, args: WhoCanArgs) -> anyhow::Result<()> {
    let (namespace, resource) = match &args.repository {
        Some(repository) => match repository.split_once('/') {
            Some((ns, name)) => {
                if ns.is_empty() || name.is_empty() {
                    bail!("{repository:?} is not of the form NAMESPACE/NAME");
                }
                if let Some(given) = &args.project.namespace
                    && given != ns
                {
                    bail!("{repository:?} is in project {ns:?}, but -n says {given:?}");
                }
                (ns.to_owned(), Some(repository.clone()))
            }
            None => {
                let ns = session.namespace(args.project.namespace.as_deref())?;
                let resource = format!("{ns}/{repository}");
                (ns, Some(resource))
            }
        },
        None => (session.namespace(args.project.namespace.as_deref())?, None),
    };
    let review = session
        .client()?
        .who_can(&namespace, args.verb.as_str())
        .await?;
    let mut out = std::io::stdout().lock();
    match &args.project.output {
        Some(OutputFormat::Name) => {
            writeln!(out, "resourceaccessreviewresponse/{namespace}")?;
        }
        None | Some(OutputFormat::Wide) => {
            out.write_all(render_review(&review, &namespace, resource.as_deref()).as_bytes())?
        }
        Some(format) => write_structured(&mut out, format, &review)?,
    }
    Ok(())
}

/// The review as `oc policy who-can` prints it.
fn render_review(review: &AccessReview, namespace: &str, resource: Option<&str>) -> String {
    let namespace = if review.namespace.is_empty() {
        namespace
    } else {
        review.namespace.as_str()
    };
    let mut text = format!("Namespace: {namespace}\nVerb:      {}\n", review.verb);
    if let Some(resource) = resource {
        text.push_str(&format!("Resource:  {resource}\n"));
    }
    for (label, names) in [("Users:  ", &review.users), ("Groups: ", &review.groups)] {
        text.push('\n');
        text.push_str(label);
        match names.split_first() {
            None => text.push_str("none\n"),
            Some((first, rest)) => {
                text.push_str(first);
                text.push('\n');
                for name in rest {
                    text.push_str("        ");
                    text.push_str(name);
                    text.push('\n');
                }
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lists() {
        assert_eq!(quoted_list(&["alice".into()]), "\"alice\"");
        assert_eq!(quoted_list(&["a".into(), "b".into()]), "[\"a\" \"b\"]");
    }

    #[test]
    fn review_like_oc() {
        let review = AccessReview {
            api_version: "v1".into(),
            kind: "ResourceAccessReviewResponse".into(),
            namespace: "myproj".into(),
            verb: "pull".into(),
            users: vec![
                "admin".into(),
                "system:serviceaccount:myproj:builder".into(),
            ],
            groups: vec![],
            extra: Default::default(),
        };
        assert_eq!(
            render_review(&review, "myproj", Some("myproj/app")),
            "Namespace: myproj\nVerb:      pull\nResource:  myproj/app\n\n\
             Users:  admin\n        system:serviceaccount:myproj:builder\n\n\
             Groups: none\n"
        );
    }
}
