//! `berth delete TYPE NAME...`.

use anyhow::bail;

use super::AlreadyReported;
use super::client::{ApiClient, BindingScope, ClientError, Status};
use super::get::{Resource, parse_resource_arg};
use super::session::{Globals, Session};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Types: token, serviceaccount (sa), user, group, project, rolebinding, \
clusterrolebinding, secret, imagestream (is), imagestreamtag (istag, NAME:TAG). `delete token NAME` revokes one of your own tokens (cluster \
admins: any user token, `--user USER` saying whose when several users have a token of \
that name); with -n, a service-account token of that project. \
Deleting a service account or user also revokes its tokens; deleting a project \
removes its service accounts, their tokens, its role bindings and its repositories.")]
pub struct DeleteArgs {
    /// What to delete: TYPE, or TYPE/NAME.
    pub resource: String,
    /// Names of the objects.
    pub names: Vec<String>,
    /// The project (default: the current one, for namespaced types).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// With `token`: whose token (cluster admins; users may each have a
    /// token of the same name).
    #[arg(long)]
    pub user: Option<String>,
}

pub async fn run(args: DeleteArgs, globals: &Globals) -> anyhow::Result<()> {
    let (resource, inline) = parse_resource_arg(&args.resource).map_err(anyhow::Error::msg)?;
    let names: Vec<String> = inline.into_iter().chain(args.names).collect();
    if names.is_empty() {
        bail!(
            "which {} to delete? Give its name: berth delete {} NAME",
            resource.kind(),
            resource.kind()
        );
    }
    let session = Session::load(globals)?;
    let client = session.client()?;
    let namespace = match resource {
        Resource::ServiceAccounts
        | Resource::RoleBindings
        | Resource::Secrets
        | Resource::ImageStreams
        | Resource::ImageStreamTags => session.namespace(args.namespace.as_deref())?,
        _ => args.namespace.clone().unwrap_or_default(),
    };
    let target = match resource {
        Resource::Tokens if args.namespace.is_some() => Target::NamespaceToken(&namespace),
        Resource::Tokens => match &args.user {
            Some(user) => Target::UserToken(user),
            None => Target::OwnToken,
        },
        Resource::ServiceAccounts => Target::ServiceAccount(&namespace),
        Resource::RoleBindings => Target::RoleBinding(&namespace),
        Resource::ClusterRoleBindings => Target::ClusterRoleBinding,
        Resource::Users => Target::User,
        Resource::Groups => Target::Group,
        Resource::Projects => Target::Project,
        Resource::Proxies => Target::Proxy,
        Resource::Secrets => Target::Secret(&namespace),
        Resource::ImageStreams => Target::ImageStream(&namespace),
        Resource::ImageStreamTags => Target::ImageStreamTag(&namespace),
        Resource::ImageStreamImages => bail!(
            "images are not deleted one by one: delete the tags that use them \
             (berth delete istag NAME:TAG), or the manifest with skopeo delete"
        ),
    };
    let mut failed = false;
    for name in &names {
        match delete_one(&client, target, name).await {
            Ok(_) => println!("{} \"{name}\" deleted", resource.kind()),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

/// What a name given to `delete` names.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    OwnToken,
    UserToken(&'a str),
    NamespaceToken(&'a str),
    ServiceAccount(&'a str),
    RoleBinding(&'a str),
    ClusterRoleBinding,
    User,
    Group,
    Project,
    Proxy,
    Secret(&'a str),
    ImageStream(&'a str),
    ImageStreamTag(&'a str),
}

async fn delete_one(
    client: &ApiClient,
    target: Target<'_>,
    name: &str,
) -> Result<Status, ClientError> {
    match target {
        Target::OwnToken => client.delete_token(name).await,
        Target::UserToken(user) => client.delete_user_token(user, name).await,
        Target::NamespaceToken(ns) => client.delete_namespace_token(ns, name).await,
        Target::ServiceAccount(ns) => client.delete_service_account(ns, name).await,
        Target::RoleBinding(ns) => {
            client
                .delete_role_binding(BindingScope::Namespace(ns), name)
                .await
        }
        Target::ClusterRoleBinding => {
            client
                .delete_role_binding(BindingScope::Cluster, name)
                .await
        }
        Target::User => client.delete_user(name).await,
        Target::Group => client.delete_group(name).await,
        Target::Project => client.delete_project(name).await,
        Target::Proxy => client.delete_proxy(name).await,
        Target::Secret(ns) => client.delete_secret(ns, name).await,
        Target::ImageStream(ns) => client.delete_image_stream(ns, name).await,
        Target::ImageStreamTag(ns) => client.delete_image_stream_tag(ns, name).await,
    }
}
