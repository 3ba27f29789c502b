//! `berth get RESOURCE [NAME]`, and how each kind of object is printed.

use std::str::FromStr;

use anyhow::bail;
use time::OffsetDateTime;

use super::client::{
    BindingScope, ClientError, Group, Project, RoleBinding, ServiceAccount, Token, User,
};
use super::image_streams::{self, StreamResource};
use super::output::{
    OutputFormat, Printable, age, expires, joined, object_identity, print_list, print_one,
    timestamp_cell,
};
use super::session::{Globals, Session};

/// The kinds of objects the admin verbs know, by the names `oc` users type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Projects,
    ServiceAccounts,
    Tokens,
    RoleBindings,
    ClusterRoleBindings,
    Users,
    Groups,
    Secrets,
    Proxies,
    ImageStreams,
    ImageStreamTags,
    ImageStreamImages,
}

impl Resource {
    const NAMES: &'static [(&'static str, Resource)] = &[
        ("projects", Resource::Projects),
        ("project", Resource::Projects),
        ("serviceaccounts", Resource::ServiceAccounts),
        ("serviceaccount", Resource::ServiceAccounts),
        ("sa", Resource::ServiceAccounts),
        ("tokens", Resource::Tokens),
        ("token", Resource::Tokens),
        ("rolebindings", Resource::RoleBindings),
        ("rolebinding", Resource::RoleBindings),
        ("rb", Resource::RoleBindings),
        ("clusterrolebindings", Resource::ClusterRoleBindings),
        ("clusterrolebinding", Resource::ClusterRoleBindings),
        ("users", Resource::Users),
        ("user", Resource::Users),
        ("groups", Resource::Groups),
        ("group", Resource::Groups),
        ("secrets", Resource::Secrets),
        ("secret", Resource::Secrets),
        ("proxies", Resource::Proxies),
        ("proxy", Resource::Proxies),
        ("imagestreams", Resource::ImageStreams),
        ("imagestream", Resource::ImageStreams),
        ("is", Resource::ImageStreams),
        ("imagestreamtags", Resource::ImageStreamTags),
        ("imagestreamtag", Resource::ImageStreamTags),
        ("istag", Resource::ImageStreamTags),
        ("imagestreamimages", Resource::ImageStreamImages),
        ("imagestreamimage", Resource::ImageStreamImages),
        ("isimage", Resource::ImageStreamImages),
    ];

    /// Singular lower-case kind, as in messages.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Projects => "project",
            Resource::ServiceAccounts => "serviceaccount",
            Resource::Tokens => "token",
            Resource::RoleBindings => "rolebinding",
            Resource::ClusterRoleBindings => "clusterrolebinding",
            Resource::Users => "user",
            Resource::Groups => "group",
            Resource::Secrets => "secret",
            Resource::Proxies => "proxy",
            Resource::ImageStreams => "imagestream",
            Resource::ImageStreamTags => "imagestreamtag",
            Resource::ImageStreamImages => "imagestreamimage",
        }
    }
}

impl FromStr for Resource {
    type Err = String;

    fn from_str(text: &str) -> Result<Resource, String> {
        let lower = text.to_ascii_lowercase();
        Resource::NAMES
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, resource)| *resource)
            .ok_or_else(|| {
                format!(
                    "the server doesn't have a resource type \"{text}\" (known: projects, \
                     serviceaccounts (sa), tokens, rolebindings, clusterrolebindings, users, groups, \
                     secrets, proxies, imagestreams (is), imagestreamtags (istag), imagestreamimages (isimage))"
                )
            })
    }
}

/// `TYPE` or `TYPE/NAME`, as `oc get` accepts.
pub fn parse_resource_arg(text: &str) -> Result<(Resource, Option<String>), String> {
    match text.split_once('/') {
        Some((kind, name)) if !name.is_empty() => Ok((kind.parse()?, Some(name.to_owned()))),
        Some(_) => Err(format!("{text:?}: a name is missing after the '/'")),
        None => Ok((text.parse()?, None)),
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Resources: projects, serviceaccounts (sa), tokens, rolebindings (rb), \
clusterrolebindings, users, groups, secrets, proxies, imagestreams (is), imagestreamtags (istag: \
NAME:TAG), imagestreamimages (isimage: NAME@sha256:…).

`get tokens` without -n lists your own tokens (cluster admins: every user \
token); with -n, the service-account tokens of that project. Secrets are \
never shown: they are printed once, by `berth create token`. Pull secrets \
show their servers and user names (-o wide, -o yaml) to who manages the \
project, never a password.")]
pub struct GetArgs {
    /// What to list: TYPE, or TYPE/NAME.
    pub resource: String,
    /// Show only this one.
    pub name: Option<String>,
    /// The project (default: the current one).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Output format instead of a table: json, yaml, name, wide (the table
    /// with more columns), or jsonpath=TEMPLATE (e.g.
    /// jsonpath='{.items[*].metadata.name}').
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Image streams of every project you may read.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

pub async fn run(args: GetArgs, globals: &Globals) -> anyhow::Result<()> {
    let (resource, inline_name) = parse_resource_arg(&args.resource).map_err(anyhow::Error::msg)?;
    let name = match (inline_name, args.name) {
        (Some(_), Some(extra)) => {
            bail!(
                "there is a name in {:?} already; {extra:?} is one too many",
                args.resource
            )
        }
        (a, b) => a.or(b),
    };
    let session = Session::load(globals)?;
    let client = session.client()?;
    let format = args.output.as_ref();
    match resource {
        Resource::Projects => match name {
            Some(name) => print_one(&client.get_project(&name).await?, format),
            None => print_list(&client.list_projects().await?, format, None),
        },
        Resource::ServiceAccounts => {
            let ns = session.namespace(args.namespace.as_deref())?;
            match name {
                Some(name) => print_one(&client.get_service_account(&ns, &name).await?, format),
                None => print_list(&client.list_service_accounts(&ns).await?, format, Some(&ns)),
            }
        }
        Resource::Tokens => {
            let mut list = match &args.namespace {
                Some(ns) => client.list_namespace_tokens(ns).await?,
                None => client.list_tokens().await?,
            };
            if let Some(name) = name {
                list.items.retain(|t| t.metadata.name == name);
                match list.items.pop() {
                    Some(token) => return print_one(&token, format),
                    None => {
                        return Err(ClientError::Api {
                            code: 404,
                            reason: "NotFound".into(),
                            message: format!("tokens \"{name}\" not found"),
                        }
                        .into());
                    }
                }
            }
            print_list(&list, format, args.namespace.as_deref())
        }
        Resource::RoleBindings => {
            let ns = session.namespace(args.namespace.as_deref())?;
            let scope = BindingScope::Namespace(&ns);
            match name {
                Some(role) => print_one(&client.get_role_binding(scope, &role).await?, format),
                None => print_list(&client.list_role_bindings(scope).await?, format, Some(&ns)),
            }
        }
        Resource::ClusterRoleBindings => match name {
            Some(role) => print_one(
                &client
                    .get_role_binding(BindingScope::Cluster, &role)
                    .await?,
                format,
            ),
            None => print_list(
                &client.list_role_bindings(BindingScope::Cluster).await?,
                format,
                None,
            ),
        },
        Resource::Users => match name {
            Some(name) => print_one(&client.get_user(&name).await?, format),
            None => print_list(&client.list_users().await?, format, None),
        },
        Resource::Groups => match name {
            Some(name) => print_one(&client.get_group(&name).await?, format),
            None => print_list(&client.list_groups().await?, format, None),
        },
        Resource::Secrets => {
            let ns = session.namespace(args.namespace.as_deref())?;
            match name {
                Some(name) => print_one(&client.get_secret(&ns, &name).await?, format),
                None => print_list(&client.list_secrets(&ns).await?, format, Some(&ns)),
            }
        }
        Resource::Proxies => match name {
            Some(name) => print_one(&client.get_proxy(&name).await?, format),
            None => print_list(&client.list_proxies().await?, format, None),
        },
        Resource::ImageStreams | Resource::ImageStreamTags | Resource::ImageStreamImages => {
            let what = match resource {
                Resource::ImageStreams => StreamResource::Streams,
                Resource::ImageStreamTags => StreamResource::Tags,
                _ => StreamResource::Images,
            };
            image_streams::get(
                &client,
                &session,
                what,
                name.as_deref(),
                args.namespace.as_deref(),
                args.all_namespaces,
                format,
            )
            .await
        }
    }
}

impl Printable for Project {
    object_identity!("project");
    fn headers() -> &'static [&'static str] {
        &["NAME", "STATUS", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.status
                .as_ref()
                .map_or_else(String::new, |s| s.phase.clone()),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["REQUESTER", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.metadata
                .annotations
                .get("openshift.io/requester")
                .cloned()
                .unwrap_or_default(),
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

impl Printable for ServiceAccount {
    object_identity!("serviceaccount");
    fn headers() -> &'static [&'static str] {
        &["NAME", "USERNAME", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.username.clone().unwrap_or_default(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["NAMESPACE", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.metadata.namespace.clone().unwrap_or_default(),
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

impl Printable for Token {
    object_identity!("token");
    fn headers() -> &'static [&'static str] {
        &["NAME", "SUBJECT", "EXPIRES", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.spec.subject.clone().unwrap_or_default(),
            expires(self.spec.expiration_timestamp.as_deref(), now),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["NAMESPACE", "EXPIRATION", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.metadata.namespace.clone().unwrap_or_default(),
            timestamp_cell(self.spec.expiration_timestamp.as_deref()),
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

impl Printable for RoleBinding {
    object_identity!("rolebinding");
    fn headers() -> &'static [&'static str] {
        &["NAME", "ROLE", "USERS", "GROUPS", "SERVICE ACCOUNTS"]
    }
    fn row(&self, _now: OffsetDateTime) -> Vec<String> {
        let of_kind = |kind: &str| {
            self.subjects
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| match &s.namespace {
                    Some(ns) if kind == "ServiceAccount" => format!("{ns}/{}", s.name),
                    _ => s.name.clone(),
                })
                .collect::<Vec<_>>()
        };
        vec![
            self.metadata.name.clone(),
            self.role().to_owned(),
            joined(of_kind("User")),
            joined(of_kind("Group")),
            joined(of_kind("ServiceAccount")),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["KIND", "NAMESPACE"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.kind.clone(),
            self.metadata.namespace.clone().unwrap_or_default(),
        ]
    }
}

impl Printable for User {
    object_identity!("user");
    fn headers() -> &'static [&'static str] {
        &["NAME", "SUPER USER", "GROUPS", "AGE"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        vec![
            self.metadata.name.clone(),
            self.super_user.to_string(),
            joined(&self.groups),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["EMAIL", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            self.email.clone().unwrap_or_default(),
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

impl Printable for Group {
    object_identity!("group");
    fn headers() -> &'static [&'static str] {
        &["NAME", "USERS"]
    }
    fn row(&self, _now: OffsetDateTime) -> Vec<String> {
        vec![self.metadata.name.clone(), joined(&self.users)]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["AGE", "CREATED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        vec![
            age(
                self.metadata.creation_timestamp.as_deref(),
                OffsetDateTime::now_utc(),
            ),
            timestamp_cell(self.metadata.creation_timestamp.as_deref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::{ObjectMeta, RoleRef, Subject};

    #[test]
    fn resource_names() {
        assert_eq!("sa".parse(), Ok(Resource::ServiceAccounts));
        assert_eq!("ServiceAccounts".parse(), Ok(Resource::ServiceAccounts));
        assert_eq!("rolebinding".parse(), Ok(Resource::RoleBindings));
        assert!("pods".parse::<Resource>().unwrap_err().contains("\"pods\""));
        assert_eq!(
            parse_resource_arg("sa/builder"),
            Ok((Resource::ServiceAccounts, Some("builder".into())))
        );
        assert_eq!(parse_resource_arg("users"), Ok((Resource::Users, None)));
        assert!(parse_resource_arg("users/").is_err());
    }

    #[test]
    fn role_binding_rows_split_subjects_by_kind() {
        let binding = RoleBinding {
            api_version: "v1".into(),
            kind: "RoleBinding".into(),
            metadata: ObjectMeta::named("system:image-puller"),
            role_ref: Some(RoleRef {
                kind: "ClusterRole".into(),
                name: "system:image-puller".into(),
            }),
            subjects: vec![
                Subject::user("alice"),
                Subject::group("system:serviceaccounts:myapp"),
                Subject::user("bob"),
                Subject::service_account("myproj", "builder"),
            ],
            extra: Default::default(),
        };
        assert_eq!(
            binding.row(OffsetDateTime::now_utc()),
            vec![
                "system:image-puller",
                "system:image-puller",
                "alice, bob",
                "system:serviceaccounts:myapp",
                "myproj/builder"
            ]
        );
        assert_eq!(binding.kind(), "rolebinding");
    }
}
