//! CodeBuild's project operations: CreateProject, UpdateProject, DeleteProject,
//! BatchGetProjects, ListProjects: the requests decoded into the service's types
//! (`localbuild_service::projects`, which checks, stores and answers with the stored
//! documents), the answers encoded.

use super::*;
use localbuild_service::projects::ProjectInput;

/// The tags of CreateProject / UpdateProject (the rest is the service's [`ProjectInput`]).
#[derive(Debug, Deserialize)]
pub(super) struct TagsInput {
    tags: Option<Vec<crate::tags::Tag>>,
}

/// CreateProject's (`create`) or UpdateProject's input, decoded and checked in CodeBuild's
/// order (the service's rules around the tags'), with the document as sent.
fn checked_input(
    body: &[u8],
    create: bool,
) -> Result<(ProjectInput, Map<String, Value>), ApiError> {
    let input: ProjectInput = parse(body)?;
    let tags: TagsInput = parse(body)?;
    input.check(create)?;
    if let Some(tags) = &tags.tags {
        crate::tags::check("tags", tags).map_err(|e| match e {
            crate::tags::TagProblem::Invalid(m) | crate::tags::TagProblem::TooMany(m) => {
                ApiError::InvalidInput(m)
            }
        })?;
    }
    input.check_rest()?;
    Ok((input, object(body)?))
}

pub(super) fn create_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let (input, raw) = checked_input(body, true)?;
    let project = ctx.state.projects.create(&ctx.region, &input, raw)?;
    Ok(json!({ "project": project }))
}

pub(super) fn update_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let (input, raw) = checked_input(body, false)?;
    let project = ctx.state.projects.update(&ctx.region, &input, raw)?;
    Ok(json!({ "project": project }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NameInput {
    name: String,
}

pub(super) fn delete_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NameInput = parse(body)?;
    ctx.state.projects.delete(&input.name)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NamesInput {
    names: Vec<String>,
}

pub(super) fn batch_get_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NamesInput = parse(body)?;
    if input.names.is_empty() {
        return Err(ApiError::InvalidInput(
            "The input project name list cannot be empty.".into(),
        ));
    }
    if input.names.len() > 100 {
        return Err(ApiError::InvalidInput(format!(
            "Invalid names: {} project names given, at most 100 are allowed",
            input.names.len()
        )));
    }
    // Names may also be ARNs.
    let names = input
        .names
        .iter()
        .map(|n| checked_project_name(n))
        .collect::<Result<Vec<String>, _>>()?;
    let found = ctx.state.projects.get_many(&names)?;
    let projects: Vec<&Value> = found.iter().map(|(_, p)| p).collect();
    let not_found: Vec<&String> = input
        .names
        .iter()
        .zip(&names)
        .filter(|(_, n)| !found.iter().any(|(f, _)| f == *n))
        .map(|(orig, _)| orig)
        .collect();
    Ok(without_empty(
        json!({"projects": projects, "projectsNotFound": not_found}),
    ))
}

/// A project name given to BatchGetProjects, or its ARN
/// (`arn:PARTITION:codebuild:REGION:ACCOUNT:project/NAME`): the name, or an
/// `InvalidInputException` naming the malformed entry.
pub(super) fn checked_project_name(given: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::InvalidInput(format!(
            "Invalid project name or ARN provided: {given:?} in names: expected a project name (letters, digits, - and _, starting with a letter or digit) or a project ARN (arn:aws:codebuild:REGION:ACCOUNT:project/NAME)"
        ))
    };
    let name = if given.starts_with("arn:") {
        let parts: Vec<&str> = given.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "codebuild", region, account, resource]
                if !partition.is_empty() && !region.is_empty() && !account.is_empty() =>
            {
                resource.strip_prefix("project/").ok_or_else(invalid)?
            }
            _ => return Err(invalid()),
        }
    } else {
        given
    };
    check_project_name(name).map_err(|_| invalid())?;
    Ok(name.to_owned())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListProjectsInput {
    sort_by: Option<String>,
    sort_order: Option<String>,
    next_token: Option<String>,
}

pub(super) fn list_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    use localbuild_service::projects::ProjectSort;
    let input: ListProjectsInput = parse(body)?;
    let sort = match input.sort_by.as_deref() {
        None | Some("NAME") => ProjectSort::Name,
        Some("CREATED_TIME") => ProjectSort::CreatedTime,
        Some("LAST_MODIFIED_TIME") => ProjectSort::LastModifiedTime,
        Some(s) => {
            return Err(ApiError::InvalidInput(format!(
                "Invalid sortBy: {s}. Valid values: NAME, CREATED_TIME, LAST_MODIFIED_TIME"
            )));
        }
    };
    let descending = sort_descending(input.sort_order.as_deref(), false)?;
    let names = ctx.state.projects.list(sort, descending)?;
    let start = match &input.next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::InvalidInput(format!("Invalid nextToken: {t}")))?,
    };
    let page: Vec<&String> = names.iter().skip(start).take(100).collect();
    let mut out = json!({ "projects": page });
    if start + 100 < names.len() {
        out["nextToken"] = json!((start + 100).to_string());
    }
    Ok(out)
}
