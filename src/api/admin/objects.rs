//! The JSON shapes of the API: objects as OpenShift shapes them (`apiVersion`,
//! `kind`, `metadata`), lists, `Status`, and request bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::auth::admin::{CreatedToken, RoleBinding, SubjectRef, UserInfo, WhoCan, rfc3339};
use crate::metadata::access::{
    BindingSubject, Group, Namespace, ServiceAccount, SubjectKind, Token, TokenSubject,
};

pub const API_VERSION: &str = "v1";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ObjectMeta {
    fn new(name: &str, uid: Option<&str>, created_at: Option<i64>) -> ObjectMeta {
        ObjectMeta {
            name: name.to_owned(),
            namespace: None,
            uid: uid.map(str::to_owned),
            creation_timestamp: created_at.map(rfc3339),
            annotations: None,
        }
    }
}

/// `{"apiVersion":"v1","kind":"<Kind>List","items":[…]}`
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    pub api_version: &'static str,
    pub kind: String,
    pub items: Vec<T>,
}

impl<T> List<T> {
    pub fn of(kind: &str, items: Vec<T>) -> List<T> {
        List {
            api_version: API_VERSION,
            kind: format!("{kind}List"),
            items,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    pub name: String,
    pub kind: String,
}

/// The `Status` object: errors, and the answer to deletions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    pub code: u16,
}

impl Status {
    pub fn failure(code: u16, reason: &'static str, message: String) -> Status {
        Status {
            api_version: API_VERSION,
            kind: "Status",
            status: "Failure",
            message,
            reason: Some(reason),
            details: None,
            code,
        }
    }

    /// `200 {"status":"Success"}` after deleting `kind` `name`.
    pub fn deleted(kind: &str, name: &str) -> Status {
        Status {
            api_version: API_VERSION,
            kind: "Status",
            status: "Success",
            message: format!("{kind} \"{name}\" deleted"),
            reason: None,
            details: Some(StatusDetails {
                name: name.to_owned(),
                kind: kind.to_owned(),
            }),
            code: 200,
        }
    }
}

// --- projects

#[derive(Debug, Serialize)]
pub struct ProjectStatus {
    pub phase: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub status: ProjectStatus,
}

impl From<Namespace> for Project {
    fn from(ns: Namespace) -> Project {
        let mut metadata = ObjectMeta::new(&ns.name, Some(&ns.uid), Some(ns.created_at));
        metadata.annotations = ns
            .created_by
            .map(|by| BTreeMap::from([("openshift.io/requester".to_owned(), by)]));
        Project {
            api_version: API_VERSION,
            kind: "Project",
            metadata,
            status: ProjectStatus { phase: "Active" },
        }
    }
}

// --- service accounts

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub username: String,
}

impl From<ServiceAccount> for ServiceAccountObject {
    fn from(sa: ServiceAccount) -> Self {
        let mut metadata = ObjectMeta::new(&sa.name, Some(&sa.uid), Some(sa.created_at));
        metadata.namespace = Some(sa.namespace.clone());
        ServiceAccountObject {
            api_version: API_VERSION,
            kind: "ServiceAccount",
            username: format!("system:serviceaccount:{}:{}", sa.namespace, sa.name),
            metadata,
        }
    }
}

// --- tokens

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenStatus {
    pub token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: TokenSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
}

impl From<Token> for TokenObject {
    /// Without the secret, as listed.
    fn from(token: Token) -> Self {
        let mut metadata = ObjectMeta::new(&token.name, Some(&token.uid), Some(token.created_at));
        metadata.namespace = token.namespace().map(str::to_owned);
        let subject = match &token.subject {
            TokenSubject::User(name) => name.clone(),
            TokenSubject::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
        };
        TokenObject {
            api_version: API_VERSION,
            kind: "Token",
            metadata,
            spec: TokenSpec {
                subject,
                expiration_timestamp: token.expires_at.map(rfc3339),
            },
            status: None,
        }
    }
}

impl From<CreatedToken> for TokenObject {
    /// With the secret: only when just created.
    fn from(created: CreatedToken) -> Self {
        let mut object = TokenObject::from(created.token);
        object.status = Some(TokenStatus {
            token: created.secret,
        });
        object
    }
}

// --- role bindings

#[derive(Debug, Serialize, Deserialize, Default, Clone)]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<String>,
}

impl From<BindingSubject> for Subject {
    fn from(s: BindingSubject) -> Self {
        Subject {
            kind: s.kind.as_str().to_owned(),
            name: s.name,
            namespace: (s.kind == SubjectKind::ServiceAccount).then_some(s.namespace),
        }
    }
}

impl From<&Subject> for SubjectRef {
    fn from(s: &Subject) -> Self {
        SubjectRef {
            kind: s.kind.clone(),
            name: s.name.clone(),
            namespace: s.namespace.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RoleRef {
    pub kind: &'static str,
    pub name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

impl RoleBindingObject {
    /// `RoleBinding`, or `ClusterRoleBinding` for cluster-wide bindings.
    pub fn kind(cluster: bool) -> &'static str {
        if cluster {
            "ClusterRoleBinding"
        } else {
            "RoleBinding"
        }
    }
}

impl From<RoleBinding> for RoleBindingObject {
    fn from(b: RoleBinding) -> Self {
        let mut metadata = ObjectMeta::new(&b.role, None, None);
        let cluster = b.namespace.is_none();
        metadata.namespace = b.namespace;
        RoleBindingObject {
            api_version: API_VERSION,
            kind: RoleBindingObject::kind(cluster),
            metadata,
            role_ref: RoleRef {
                kind: "ClusterRole",
                name: b.role,
            },
            subjects: b.subjects.into_iter().map(Subject::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccessReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub verb: &'static str,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl From<WhoCan> for ResourceAccessReviewResponse {
    fn from(w: WhoCan) -> Self {
        ResourceAccessReviewResponse {
            api_version: API_VERSION,
            kind: "ResourceAccessReviewResponse",
            namespace: w.namespace,
            verb: w.verb.as_str(),
            users: w.users,
            groups: w.groups,
        }
    }
}

// --- users and groups

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub super_user: bool,
}

impl From<UserInfo> for UserObject {
    fn from(u: UserInfo) -> Self {
        UserObject {
            api_version: API_VERSION,
            kind: "User",
            metadata: ObjectMeta::new(&u.name, u.uid.as_deref(), u.created_at),
            email: u.email,
            groups: u.groups,
            super_user: u.super_user,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub users: Vec<String>,
}

impl From<Group> for GroupObject {
    fn from(g: Group) -> Self {
        GroupObject {
            api_version: API_VERSION,
            kind: "Group",
            metadata: ObjectMeta::new(&g.name, Some(&g.uid), Some(g.created_at)),
            users: g.users,
        }
    }
}

// --- request bodies. Every field is optional to the parser; the service
// says which are required (422 Invalid). An optional field that is present
// must hold a value of its type: `null` is refused ([`present`]), as the
// OpenAPI document says, rather than taken for "absent".

/// For `Option` fields (with `#[serde(default)]`): absent is `None`, a
/// value is `Some`, and `null` is an error, so that
/// `{"metadata":{"name":null}}` is not read as "no name given".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameMeta {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
}

/// `{"metadata":{"name":"…"}}`: projects and service accounts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamedBody {
    pub metadata: NameMeta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TokenRequestSpec {
    #[serde(default, deserialize_with = "present")]
    pub expires_in: Option<String>,
}

/// `{"metadata":{"name":"laptop"},"spec":{"expiresIn":"720h"}}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    pub metadata: NameMeta,
    pub spec: TokenRequestSpec,
}

/// `{"subjects":[…]}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubjectsBody {
    pub subjects: Vec<Subject>,
}

/// `{"metadata":{"name":"alice"},"password":"…","email":"…","superUser":false}`
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UserRequest {
    pub metadata: NameMeta,
    #[serde(default, deserialize_with = "present")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    pub super_user: bool,
}

/// `{"password":"…"}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordRequest {
    #[serde(default, deserialize_with = "present")]
    pub password: Option<String>,
}

/// `{"metadata":{"name":"devs"},"users":["alice"]}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupRequest {
    pub metadata: NameMeta,
    /// Optional to create (no members); required to replace, so that an
    /// empty `PUT` does not empty the group.
    #[serde(default, deserialize_with = "present")]
    pub users: Option<Vec<String>>,
}

/// `{"username":"admin","password":"…","email":"…","access_token":true}`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InitializeRequest {
    #[serde(default, deserialize_with = "present")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    pub access_token: bool,
}

/// `{"username":"admin","email":"…","access_token":"berth_…"}`
#[derive(Debug, Serialize)]
pub struct InitializeResponse {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}
