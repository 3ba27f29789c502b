//! Subjects of role bindings, as clients give them and as they are stored.

use super::names::*;
use super::*;
use crate::auth::policy::{GROUP_AUTHENTICATED, GROUP_SERVICE_ACCOUNTS, GROUP_UNAUTHENTICATED};
use crate::metadata::access::{BindingSubject, SubjectKind};
use crate::wire::SERVICE_ACCOUNT_PREFIX;

// ---------------------------------------------------------------------------
// Subjects of role bindings

/// A subject as a client gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

fn valid_namespace_ref(ns: &str) -> bool {
    !ns.contains('/') && ns.parse::<crate::oci::names::RepositoryName>().is_ok()
}

fn is_builtin_group(name: &str) -> bool {
    matches!(
        name,
        GROUP_AUTHENTICATED | GROUP_UNAUTHENTICATED | GROUP_SERVICE_ACCOUNTS
    ) || name
        .strip_prefix(GROUP_SERVICE_ACCOUNTS)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(valid_namespace_ref)
}

fn service_account_subject(namespace: &str, name: &str) -> AdminResult<BindingSubject> {
    if !valid_namespace_ref(namespace) || !valid_object_name(name) {
        return Err(AdminError::Invalid(format!(
            "service account {SERVICE_ACCOUNT_PREFIX}{namespace}:{name} is not a valid name"
        )));
    }
    Ok(BindingSubject {
        kind: SubjectKind::ServiceAccount,
        name: name.to_owned(),
        namespace: namespace.to_owned(),
    })
}

/// Validates a subject. A `User` named `system:serviceaccount:NS:NAME` is
/// that service account; a `ServiceAccount` without a namespace is in the
/// binding's namespace.
pub fn parse_subject(
    subject: &SubjectRef,
    binding_namespace: Option<&str>,
) -> AdminResult<BindingSubject> {
    let name = subject.name.as_str();
    match subject.kind.as_str() {
        "User" => {
            if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
                let (ns, account) = rest.split_once(':').unwrap_or(("", rest));
                return service_account_subject(ns, account);
            }
            if name.starts_with("system:") || !valid_object_name(name) {
                return Err(AdminError::Invalid(format!(
                    "user name {name:?} is invalid (bind the group system:unauthenticated or \
                     system:authenticated to grant everyone)"
                )));
            }
            Ok(BindingSubject {
                kind: SubjectKind::User,
                name: name.to_owned(),
                namespace: String::new(),
            })
        }
        "Group" => {
            if !is_builtin_group(name) && (name.starts_with("system:") || !valid_object_name(name))
            {
                return Err(AdminError::Invalid(format!(
                    "group name {name:?} is invalid"
                )));
            }
            Ok(BindingSubject {
                kind: SubjectKind::Group,
                name: name.to_owned(),
                namespace: String::new(),
            })
        }
        "ServiceAccount" => {
            if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
                let (ns, account) = rest.split_once(':').unwrap_or(("", rest));
                return service_account_subject(ns, account);
            }
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .or(binding_namespace)
                .ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "service account subject {name:?} needs a namespace"
                    ))
                })?;
            service_account_subject(namespace, name)
        }
        other => Err(AdminError::Invalid(format!(
            "subject kind {other:?} is invalid: User, Group or ServiceAccount"
        ))),
    }
}
