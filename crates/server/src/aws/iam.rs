//! IAM on the query protocol ([`super::query`]): `Action=CreateRole&Version=2010-05-08`,
//! answered in XML in IAM's namespace, errors as IAM's `<ErrorResponse>`. The stand-in itself
//! (stored and shown, never enforced) is `localbuild_aws::iam`; this module reads the form
//! fields and writes botocore's `iam` output shapes. Policy documents go out URL-encoded, as IAM
//! sends them (botocore decodes them).

use super::Aws;
use super::query::{self, field, iso8601, list, structs};
use super::s3::escape;
use axum::response::Response;
use localbuild_aws::iam::{
    CreatePolicy, CreateRole, Iam, IamError, InstanceProfile, Policy, Role, Scope, Tag,
};
use std::fmt::Write;

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// IAM's API version, the form's `Version` (how an unsigned query call is told from STS's).
pub(super) const VERSION: &str = "2010-05-08";

/// IAM's error document.
pub(super) fn error(code: &str, status: u16, message: &str) -> Response {
    query::error(NS, code, status, message)
}

/// A failed call: IAM's error, or an action this stand-in does not serve.
enum Fail {
    Iam(IamError),
    Unknown,
}

impl From<IamError> for Fail {
    fn from(e: IamError) -> Fail {
        Fail::Iam(e)
    }
}

type Answer = Result<Option<String>, Fail>;

pub(super) fn call(aws: &Aws, action: &str, fields: &[(String, String)]) -> Response {
    match answer(&aws.iam, action, fields) {
        Ok(result) => query::ok(NS, action, result),
        Err(Fail::Unknown) => error(
            "InvalidAction",
            400,
            &format!("Could not find operation {action} for version {VERSION}"),
        ),
        Err(Fail::Iam(e)) => {
            let (code, status) = crate::error::iam_code(&e);
            error(code, status, &e.to_string())
        }
    }
}

/// A required field (the message names it as IAM does, first letter lower-cased).
fn required<'f>(fields: &'f [(String, String)], name: &str) -> Result<&'f str, Fail> {
    field(fields, name).ok_or_else(|| {
        let mut camel = name.to_owned();
        camel[..1].make_ascii_lowercase();
        Fail::Iam(IamError::Validation(format!(
            "1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"
        )))
    })
}

fn number(fields: &[(String, String)], name: &str) -> Result<Option<u32>, Fail> {
    field(fields, name)
        .map(|v| {
            v.parse().map_err(|_| {
                Fail::Iam(IamError::Validation(format!(
                    "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: Member must be a whole number"
                )))
            })
        })
        .transpose()
}

fn tags_of(fields: &[(String, String)]) -> Vec<Tag> {
    structs(fields, "Tags")
        .into_iter()
        .map(|t| Tag {
            key: field(&t, "Key").unwrap_or_default().to_owned(),
            value: field(&t, "Value").unwrap_or_default().to_owned(),
        })
        .collect()
}

fn answer(iam: &Iam, action: &str, f: &[(String, String)]) -> Answer {
    let acct = iam.account();
    let role_name = || required(f, "RoleName");
    Ok(match action {
        "CreateRole" => {
            let role = iam.create_role(CreateRole {
                name: required(f, "RoleName")?.to_owned(),
                path: field(f, "Path").map(str::to_owned),
                assume_role_policy: required(f, "AssumeRolePolicyDocument")?.to_owned(),
                description: field(f, "Description").map(str::to_owned),
                max_session_duration: number(f, "MaxSessionDuration")?,
                tags: tags_of(f),
            })?;
            Some(element("Role", &role_xml(acct, &role, true)))
        }
        "GetRole" => Some(element(
            "Role",
            &role_xml(acct, &iam.role(role_name()?)?, true),
        )),
        "DeleteRole" => {
            iam.delete_role(role_name()?)?;
            None
        }
        "ListRoles" => {
            let roles = iam.roles(field(f, "PathPrefix"))?;
            let (page, marker) = paginate(&roles, f)?;
            let items: String = page
                .iter()
                .map(|r| element("member", &role_xml(acct, r, false)))
                .collect();
            Some(element("Roles", &items) + &truncation(marker))
        }
        "UpdateAssumeRolePolicy" => {
            iam.update_assume_role_policy(role_name()?, required(f, "PolicyDocument")?)?;
            None
        }
        "PutRolePolicy" => {
            iam.put_role_policy(
                role_name()?,
                required(f, "PolicyName")?,
                required(f, "PolicyDocument")?,
            )?;
            None
        }
        "GetRolePolicy" => {
            let (role, policy) = (role_name()?, required(f, "PolicyName")?);
            let document = iam.role_policy(role, policy)?;
            let role = iam.role(role)?;
            Some(
                text("RoleName", &role.name)
                    + &text("PolicyName", policy)
                    + &text("PolicyDocument", &url_encoded(&document)),
            )
        }
        "DeleteRolePolicy" => {
            iam.delete_role_policy(role_name()?, required(f, "PolicyName")?)?;
            None
        }
        "ListRolePolicies" => {
            let names = iam.role_policies(role_name()?)?;
            let (page, marker) = paginate(&names, f)?;
            let items: String = page.iter().map(|n| text("member", n)).collect();
            Some(element("PolicyNames", &items) + &truncation(marker))
        }
        "AttachRolePolicy" => {
            iam.attach_role_policy(role_name()?, required(f, "PolicyArn")?)?;
            None
        }
        "DetachRolePolicy" => {
            iam.detach_role_policy(role_name()?, required(f, "PolicyArn")?)?;
            None
        }
        "ListAttachedRolePolicies" => {
            let attached = iam.attached_role_policies(role_name()?, field(f, "PathPrefix"))?;
            let (page, marker) = paginate(&attached, f)?;
            let items: String = page
                .iter()
                .map(|(name, arn)| {
                    element(
                        "member",
                        &(text("PolicyName", name) + &text("PolicyArn", arn)),
                    )
                })
                .collect();
            Some(element("AttachedPolicies", &items) + &truncation(marker))
        }
        "TagRole" => {
            iam.tag_role(role_name()?, tags_of(f))?;
            None
        }
        "UntagRole" => {
            iam.untag_role(role_name()?, &list(f, "TagKeys"))?;
            None
        }
        "ListRoleTags" => {
            let tags = iam.role(role_name()?)?.tags;
            let (page, marker) = paginate(&tags, f)?;
            Some(tags_xml(page) + &truncation(marker))
        }
        "CreatePolicy" => {
            let policy = iam.create_policy(CreatePolicy {
                name: required(f, "PolicyName")?.to_owned(),
                path: field(f, "Path").map(str::to_owned),
                document: required(f, "PolicyDocument")?.to_owned(),
                description: field(f, "Description").map(str::to_owned),
                tags: tags_of(f),
            })?;
            Some(element("Policy", &policy_xml(acct, &policy, true)))
        }
        "GetPolicy" => Some(element(
            "Policy",
            &policy_xml(acct, &iam.policy(required(f, "PolicyArn")?)?, true),
        )),
        "DeletePolicy" => {
            iam.delete_policy(required(f, "PolicyArn")?)?;
            None
        }
        "ListPolicies" => {
            let scope = match field(f, "Scope") {
                None | Some("All") => Scope::All,
                Some("AWS") => Scope::Aws,
                Some("Local") => Scope::Local,
                Some(other) => {
                    return Err(Fail::Iam(IamError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
                    ))));
                }
            };
            let only_attached = field(f, "OnlyAttached") == Some("true");
            let policies = iam.policies(scope, only_attached, field(f, "PathPrefix"))?;
            let (page, marker) = paginate(&policies, f)?;
            let items: String = page
                .iter()
                .map(|p| element("member", &policy_xml(acct, p, false)))
                .collect();
            Some(element("Policies", &items) + &truncation(marker))
        }
        "CreateInstanceProfile" => {
            let name = required(f, "InstanceProfileName")?;
            let profile = iam.create_instance_profile(name, field(f, "Path"), tags_of(f))?;
            Some(element(
                "InstanceProfile",
                &profile_xml(acct, &profile, &[]),
            ))
        }
        "GetInstanceProfile" => {
            let (profile, roles) = iam.instance_profile(required(f, "InstanceProfileName")?)?;
            Some(element(
                "InstanceProfile",
                &profile_xml(acct, &profile, &roles),
            ))
        }
        "DeleteInstanceProfile" => {
            iam.delete_instance_profile(required(f, "InstanceProfileName")?)?;
            None
        }
        "AddRoleToInstanceProfile" => {
            iam.add_role_to_instance_profile(required(f, "InstanceProfileName")?, role_name()?)?;
            None
        }
        "RemoveRoleFromInstanceProfile" => {
            iam.remove_role_from_instance_profile(
                required(f, "InstanceProfileName")?,
                role_name()?,
            )?;
            None
        }
        _ => return Err(Fail::Unknown),
    })
}

/// One page of `items` by `MaxItems` (1–1000, default 100) and `Marker` (the index of the
/// first item, as this stand-in hands it out), and the next page's marker.
fn paginate<'i, T>(
    items: &'i [T],
    f: &[(String, String)],
) -> Result<(&'i [T], Option<String>), Fail> {
    let max = number(f, "MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(Fail::Iam(IamError::Validation(format!(
            "1 validation error detected: Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
        ))));
    }
    let start = match field(f, "Marker") {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= items.len())
            .ok_or_else(|| Fail::Iam(IamError::InvalidInput(format!("Invalid Marker {m}."))))?,
    };
    let end = (start + max as usize).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((&items[start..end], next))
}

fn truncation(marker: Option<String>) -> String {
    match marker {
        Some(m) => text("IsTruncated", "true") + &text("Marker", &m),
        None => text("IsTruncated", "false"),
    }
}

/// `<name>` escaped `value` `</name>`, indented, one line.
fn text(name: &str, value: &str) -> String {
    format!("      <{name}>{}</{name}>\n", escape(value))
}

/// `<name>` around already formed elements.
fn element(name: &str, inner: &str) -> String {
    format!("    <{name}>\n{inner}    </{name}>\n")
}

/// A policy document as IAM sends it: URL-encoded JSON.
fn url_encoded(document: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(document, SET).to_string()
}

fn tags_xml(tags: &[Tag]) -> String {
    let items: String = tags
        .iter()
        .map(|t| element("member", &(text("Key", &t.key) + &text("Value", &t.value))))
        .collect();
    element("Tags", &items)
}

/// A `Role`; `full` (GetRole, CreateRole) adds its tags and `RoleLastUsed`, as IAM does.
fn role_xml(acct: &str, r: &Role, full: bool) -> String {
    let mut out = text("Path", &r.path)
        + &text("RoleName", &r.name)
        + &text("RoleId", &r.id)
        + &text("Arn", &r.arn(acct))
        + &text("CreateDate", &iso8601(r.created))
        + &text(
            "AssumeRolePolicyDocument",
            &url_encoded(&r.assume_role_policy),
        )
        + &text("MaxSessionDuration", &r.max_session_duration.to_string());
    if let Some(d) = &r.description {
        out += &text("Description", d);
    }
    if full && !r.tags.is_empty() {
        out += &tags_xml(&r.tags);
    }
    if full {
        out += "      <RoleLastUsed/>\n";
    }
    out
}

/// A `Policy`; `full` (GetPolicy, CreatePolicy) adds its description and tags.
fn policy_xml(acct: &str, p: &Policy, full: bool) -> String {
    let mut out = text("PolicyName", &p.name)
        + &text("PolicyId", &p.id)
        + &text("Arn", &p.arn(acct))
        + &text("Path", &p.path)
        + &text("DefaultVersionId", "v1")
        + &text("AttachmentCount", &p.attachment_count.to_string())
        + &text("PermissionsBoundaryUsageCount", "0")
        + &text("IsAttachable", "true")
        + &text("CreateDate", &iso8601(p.created))
        + &text("UpdateDate", &iso8601(p.created));
    if full {
        if let Some(d) = &p.description {
            out += &text("Description", d);
        }
        if !p.tags.is_empty() {
            out += &tags_xml(&p.tags);
        }
    }
    out
}

fn profile_xml(acct: &str, p: &InstanceProfile, roles: &[Role]) -> String {
    let mut out = text("Path", &p.path)
        + &text("InstanceProfileName", &p.name)
        + &text("InstanceProfileId", &p.id)
        + &text("Arn", &p.arn(acct))
        + &text("CreateDate", &iso8601(p.created));
    let mut members = String::new();
    for r in roles {
        let _ = write!(members, "{}", element("member", &role_xml(acct, r, false)));
    }
    out += &element("Roles", &members);
    if !p.tags.is_empty() {
        out += &tags_xml(&p.tags);
    }
    out
}
