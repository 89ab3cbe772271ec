//! Reading a cloud build's record for `localbuild reproduce`: pure functions from the JSON
//! that `aws codebuild batch-get-builds` (or `batch-get-projects`) prints to what a local build
//! needs ([`CloudBuild`]: sources, buildspec, environment, variables) and what it is expected
//! to do (the cloud's phases), and the side-by-side [`compare`] of the two afterwards.
//!
//! No I/O: the CLI (`reproduce`) reads the file, maps locations onto this machine, resolves
//! secrets from the secrets file it read, and runs the build. Every refusal is a
//! [`RecordError`] that names the record's field and what to do.

use localbuild_engine::BuildspecSource;
use localbuild_engine::record::{Build, PhaseType};
use localbuild_engine::secrets::SecretsFile;
use localbuild_sources::SourceKind;
use serde_json::{Map, Value, json};

/// Why a record cannot be reproduced (or a project created from it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{origin}:{line}:{column}: not valid JSON: {message}")]
    Json {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{origin}: expected {what} (`{{\"{key}\": [...]}}` as `aws codebuild {command}` prints it) or one {one} object"
    )]
    NotAnAnswer {
        origin: String,
        what: &'static str,
        key: &'static str,
        command: &'static str,
        one: &'static str,
    },
    #[error("{origin}: the answer holds no {one}{}", not_found_note(.not_found))]
    Empty {
        origin: String,
        one: &'static str,
        not_found: Vec<String>,
    },
    #[error("{origin}: the answer holds {} {one}s: choose one with --build ({})", .ids.len(), .ids.join(", "))]
    Several {
        origin: String,
        one: &'static str,
        ids: Vec<String>,
    },
    #[error("--build {wanted}: no such {one} in {origin}; it holds {}", .ids.join(", "))]
    NotInAnswer {
        origin: String,
        wanted: String,
        one: &'static str,
        ids: Vec<String>,
    },
    /// A field the record must have is missing or has the wrong JSON type.
    #[error("`{field}` is missing or not {expected}")]
    Missing {
        field: String,
        expected: &'static str,
    },
    /// A field whose value cannot be reproduced locally; `todo` says what to do.
    #[error("`{field}` is {value}: {todo}")]
    Unsupported {
        field: String,
        value: String,
        todo: String,
    },
    /// PARAMETER_STORE / SECRETS_MANAGER variables with no local value: all of them.
    #[error(
        "{} variable{} of the cloud build {} no local value; add {} to the secrets file (--secrets-file FILE, or secrets-file in .localbuild.toml):\n{}",
        .0.len(),
        if .0.len() == 1 { "" } else { "s" },
        if .0.len() == 1 { "has" } else { "have" },
        if .0.len() == 1 { "it" } else { "them" },
        .0.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n")
    )]
    MissingSecrets(Vec<String>),
}

fn not_found_note(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(
            " (not found: {}); the ids must be the cloud's",
            ids.join(", ")
        )
    }
}

/// Parse the answer's text; a syntax error names the line and column.
pub fn parse(origin: &str, text: &str) -> Result<Value, RecordError> {
    serde_json::from_str(text).map_err(|e| RecordError::Json {
        origin: origin.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json's message without its own ` at line L column C`.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// What kind of answer is read: builds or projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `BatchGetBuilds`: `{"builds": [...]}`, chosen by `id`.
    Builds,
    /// `BatchGetProjects`: `{"projects": [...]}`, chosen by `name`.
    Projects,
}

impl Answer {
    fn key(self) -> &'static str {
        match self {
            Answer::Builds => "builds",
            Answer::Projects => "projects",
        }
    }
    fn one(self) -> &'static str {
        match self {
            Answer::Builds => "build",
            Answer::Projects => "project",
        }
    }
    fn id_field(self) -> &'static str {
        match self {
            Answer::Builds => "id",
            Answer::Projects => "name",
        }
    }
}

/// The one build (or project) of an answer: the only one, or the one `wanted` names (a build's
/// id or ARN, a project's name or ARN). A bare object is taken as it is.
pub fn select<'a>(
    origin: &str,
    answer: &'a Value,
    kind: Answer,
    wanted: Option<&str>,
) -> Result<&'a Value, RecordError> {
    let not_an_answer = || RecordError::NotAnAnswer {
        origin: origin.to_owned(),
        what: match kind {
            Answer::Builds => "a BatchGetBuilds answer",
            Answer::Projects => "a BatchGetProjects answer",
        },
        key: kind.key(),
        command: match kind {
            Answer::Builds => "batch-get-builds",
            Answer::Projects => "batch-get-projects",
        },
        one: match kind {
            Answer::Builds => "Build",
            Answer::Projects => "Project",
        },
    };
    let Value::Object(map) = answer else {
        return Err(not_an_answer());
    };
    let items: Vec<&Value> = match map.get(kind.key()) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err(not_an_answer()),
        None if map.get(kind.id_field()).is_some_and(Value::is_string) => vec![answer],
        None => return Err(not_an_answer()),
    };
    let id_of = |v: &Value| {
        v.get(kind.id_field())
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let ids: Vec<String> = items.iter().map(|v| id_of(v)).collect();
    match wanted {
        Some(w) => items
            .iter()
            .find(|v| id_of(v) == w || v.get("arn").and_then(Value::as_str) == Some(w))
            .copied()
            .ok_or_else(|| RecordError::NotInAnswer {
                origin: origin.to_owned(),
                wanted: w.to_owned(),
                one: kind.one(),
                ids,
            }),
        None => match items.as_slice() {
            [one] => Ok(one),
            [] => Err(RecordError::Empty {
                origin: origin.to_owned(),
                one: kind.one(),
                not_found: map
                    .get(match kind {
                        Answer::Builds => "buildsNotFound",
                        Answer::Projects => "projectsNotFound",
                    })
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            _ => Err(RecordError::Several {
                origin: origin.to_owned(),
                one: kind.one(),
                ids,
            }),
        },
    }
}

/// Where a source comes from, by its CodeBuild type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A git repository (GITHUB, GITLAB, BITBUCKET, CODECOMMIT, …).
    Git(SourceKind),
    /// An S3 object or folder.
    S3,
    /// A pipeline's input artifact: not in the record.
    Pipeline,
    /// `NO_SOURCE`.
    None,
}

/// A source of the cloud build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudSource {
    /// `sourceIdentifier` (secondary sources).
    pub identifier: Option<String>,
    pub origin: Origin,
    /// The record's `type`, as written.
    pub kind: String,
    pub location: String,
    /// For the primary git source the commit the cloud built (`resolvedSourceVersion`); for a
    /// secondary source its `secondarySourceVersions` entry; for S3 the object version.
    pub version: Option<String>,
    pub depth: Option<u32>,
}

/// How a variable's value is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Plaintext,
    ParameterStore,
    SecretsManager,
}

/// One of the record's `environment.environmentVariables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// The value (PLAINTEXT), the parameter name or the secret reference.
    pub value: String,
    pub kind: VarKind,
}

/// One phase of the cloud build, as its record shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudPhase {
    pub phase: String,
    pub status: Option<String>,
    /// Seconds: `durationInSeconds`, else `endTime - startTime`.
    pub duration: Option<f64>,
    pub code: String,
    pub message: String,
}

/// What the local build is to be, read from a cloud build's record.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudBuild {
    pub id: String,
    pub arn: String,
    /// The region in the ARN (`AWS_REGION` in the cloud build).
    pub region: Option<String>,
    pub project: String,
    pub status: String,
    pub phases: Vec<CloudPhase>,
    pub source: CloudSource,
    pub secondary: Vec<CloudSource>,
    pub buildspec: BuildspecSource,
    pub image: String,
    pub privileged: bool,
    pub compute_type: Option<String>,
    pub timeout_minutes: Option<u64>,
    pub variables: Vec<Variable>,
}

fn str_field<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.get(path).and_then(Value::as_str)
}

fn required<'a>(v: &'a Value, field: &str, shown: &str) -> Result<&'a str, RecordError> {
    str_field(v, field)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| RecordError::Missing {
            field: shown.to_owned(),
            expected: "a non-empty string",
        })
}

fn unsupported(field: &str, value: &str, todo: impl Into<String>) -> RecordError {
    RecordError::Unsupported {
        field: field.to_owned(),
        value: value.to_owned(),
        todo: todo.into(),
    }
}

/// Environment types a Linux container on this machine stands in for, or why not.
pub fn check_environment_type(field: &str, kind: &str) -> Result<(), RecordError> {
    match kind {
        "LINUX_CONTAINER" | "LINUX_GPU_CONTAINER" | "LINUX_EC2" => Ok(()),
        k if k.starts_with("WINDOWS") => Err(unsupported(
            field,
            k,
            "localbuild runs Linux containers only; a Windows build cannot be reproduced here",
        )),
        k if k.contains("LAMBDA") => Err(unsupported(
            field,
            k,
            "Lambda compute is not a container localbuild can run; to try the buildspec in a container, set it to LINUX_CONTAINER in a copy of the record",
        )),
        k if k.starts_with("ARM") || k == "MAC_ARM" => Err(unsupported(
            field,
            k,
            "localbuild runs x86-64 Linux containers; to try the build anyway, set it to LINUX_CONTAINER in a copy of the record and pick an x86-64 image with -i",
        )),
        k => Err(unsupported(
            field,
            k,
            "not a CodeBuild environment type localbuild knows; expected LINUX_CONTAINER",
        )),
    }
}

fn origin_of(field: &str, kind: &str) -> Result<Origin, RecordError> {
    match kind {
        "CODEPIPELINE" => Ok(Origin::Pipeline),
        "S3" => Ok(Origin::S3),
        "NO_SOURCE" => Ok(Origin::None),
        k => match k.parse::<SourceKind>() {
            Ok(kind) if kind.is_git() => Ok(Origin::Git(kind)),
            _ => Err(unsupported(
                field,
                k,
                "expected one of CODECOMMIT, CODEPIPELINE, GITHUB, GITHUB_ENTERPRISE, GITLAB, GITLAB_SELF_MANAGED, BITBUCKET, S3, NO_SOURCE",
            )),
        },
    }
}

fn depth_of(src: &Value) -> Option<u32> {
    src.get("gitCloneDepth")
        .and_then(Value::as_u64)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| *d > 0)
}

/// Read a cloud build's record: refuse what cannot run here (a build still running, a
/// Windows, ARM or Lambda environment, an unknown source type, a git build with no commit).
pub fn read_build(b: &Value) -> Result<CloudBuild, RecordError> {
    let id = required(b, "id", "id")?.to_owned();
    let arn = str_field(b, "arn").unwrap_or_default().to_owned();
    let project = match str_field(b, "projectName") {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => id.split(':').next().unwrap_or_default().to_owned(),
    };
    let status = required(b, "buildStatus", "buildStatus")?.to_owned();
    if status == "IN_PROGRESS" || b.get("buildComplete") == Some(&Value::Bool(false)) {
        return Err(unsupported(
            "buildStatus",
            &status,
            "the cloud build has not finished; wait until it has, then run `aws codebuild batch-get-builds` again",
        ));
    }
    let env = b.get("environment").ok_or_else(|| RecordError::Missing {
        field: "environment".into(),
        expected: "an object",
    })?;
    let env_type = str_field(env, "type").unwrap_or("LINUX_CONTAINER");
    check_environment_type("environment.type", env_type)?;
    let image = required(env, "image", "environment.image")?.to_owned();

    let src = b.get("source").ok_or_else(|| RecordError::Missing {
        field: "source".into(),
        expected: "an object",
    })?;
    let kind = required(src, "type", "source.type")?.to_owned();
    let origin = origin_of("source.type", &kind)?;
    let location = str_field(src, "location").unwrap_or_default().to_owned();
    let version = match &origin {
        Origin::Git(_) => {
            let resolved = str_field(b, "resolvedSourceVersion").filter(|v| !v.is_empty());
            let Some(commit) = resolved else {
                return Err(RecordError::Missing {
                    field: "resolvedSourceVersion".into(),
                    expected: "the commit the cloud built (a git build records it once DOWNLOAD_SOURCE has run)",
                });
            };
            Some(commit.to_owned())
        }
        Origin::S3 => str_field(b, "sourceVersion").map(str::to_owned),
        Origin::Pipeline | Origin::None => None,
    };
    if matches!(origin, Origin::Git(_) | Origin::S3) && location.is_empty() {
        return Err(RecordError::Missing {
            field: "source.location".into(),
            expected: "a non-empty string",
        });
    }
    let buildspec = localbuild_service::projects::buildspec_source(str_field(src, "buildspec"));
    if origin == Origin::None && !matches!(buildspec, BuildspecSource::Inline(_)) {
        return Err(RecordError::Missing {
            field: "source.buildspec".into(),
            expected: "an inline buildspec (a NO_SOURCE build has nothing else to read)",
        });
    }
    let source = CloudSource {
        identifier: None,
        origin,
        kind,
        location,
        version,
        depth: depth_of(src),
    };

    let versions: Vec<(String, String)> = b
        .get("secondarySourceVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| {
                    Some((
                        str_field(v, "sourceIdentifier")?.to_owned(),
                        str_field(v, "sourceVersion")?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut secondary = vec![];
    for (i, s) in b
        .get("secondarySources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("secondarySources[{i}]");
        let identifier = required(s, "sourceIdentifier", &format!("{field}.sourceIdentifier"))?;
        let kind = required(s, "type", &format!("{field}.type"))?;
        let origin = origin_of(&format!("{field}.type"), kind)?;
        if origin == Origin::None {
            continue;
        }
        let location = str_field(s, "location").unwrap_or_default().to_owned();
        if matches!(origin, Origin::Git(_) | Origin::S3) && location.is_empty() {
            return Err(RecordError::Missing {
                field: format!("{field}.location"),
                expected: "a non-empty string",
            });
        }
        secondary.push(CloudSource {
            identifier: Some(identifier.to_owned()),
            origin,
            kind: kind.to_owned(),
            location,
            version: versions
                .iter()
                .find(|(id, _)| id == identifier)
                .map(|(_, v)| v.clone()),
            depth: depth_of(s),
        });
    }

    let mut variables = vec![];
    for (i, v) in env
        .get("environmentVariables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("environment.environmentVariables[{i}]");
        let name = required(v, "name", &format!("{field}.name"))?.to_owned();
        let value = str_field(v, "value").unwrap_or_default().to_owned();
        let kind = match str_field(v, "type").unwrap_or("PLAINTEXT") {
            "PLAINTEXT" => VarKind::Plaintext,
            "PARAMETER_STORE" => VarKind::ParameterStore,
            "SECRETS_MANAGER" => VarKind::SecretsManager,
            other => {
                return Err(unsupported(
                    &format!("{field}.type"),
                    other,
                    "expected PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER",
                ));
            }
        };
        variables.push(Variable { name, value, kind });
    }

    let phases = b
        .get("phases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let phase = str_field(p, "phaseType")?.to_owned();
            let ctx = p
                .get("contexts")
                .and_then(Value::as_array)
                .and_then(|c| c.first());
            let duration = p
                .get("durationInSeconds")
                .and_then(Value::as_f64)
                .or_else(|| Some(p.get("endTime")?.as_f64()? - p.get("startTime")?.as_f64()?));
            Some(CloudPhase {
                phase,
                status: str_field(p, "phaseStatus").map(str::to_owned),
                duration,
                code: ctx
                    .and_then(|c| str_field(c, "statusCode"))
                    .unwrap_or_default()
                    .to_owned(),
                message: ctx
                    .and_then(|c| str_field(c, "message"))
                    .unwrap_or_default()
                    .to_owned(),
            })
        })
        .collect();

    let region = arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned);
    Ok(CloudBuild {
        id,
        region,
        arn,
        project,
        status,
        phases,
        source,
        secondary,
        buildspec,
        image,
        privileged: env
            .get("privilegedMode")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        compute_type: str_field(env, "computeType").map(str::to_owned),
        timeout_minutes: b.get("timeoutInMinutes").and_then(Value::as_u64),
        variables,
    })
}

/// Variables as `BuildRequest::env_overrides` takes them: name and value, in order.
pub type Variables = Vec<(String, String)>;

/// The variables' values, in the record's order, and the values to mask: PLAINTEXT as
/// written, PARAMETER_STORE and SECRETS_MANAGER from `secrets`. Every name without a value is
/// in the one error.
pub fn resolve_variables(
    vars: &[Variable],
    secrets: &SecretsFile,
) -> Result<(Variables, Vec<String>), RecordError> {
    let mut values = vec![];
    let mut mask = vec![];
    let mut missing = vec![];
    for v in vars {
        let value = match v.kind {
            VarKind::Plaintext => Ok(v.value.clone()),
            VarKind::ParameterStore => secrets
                .parameter(&v.value)
                .map_err(|_| format!("{} (PARAMETER_STORE): parameter-store: {}", v.name, v.value)),
            VarKind::SecretsManager => {
                match localbuild_engine::buildspec::parse_secret_ref(&v.value) {
                    None => Err(format!(
                        "{} (SECRETS_MANAGER): {:?} is not a Secrets Manager reference (secret-id[:json-key[:version-stage[:version-id]]])",
                        v.name, v.value
                    )),
                    Some(r) => secrets.secret(&r).map_err(|e| {
                        format!(
                            "{} (SECRETS_MANAGER): secrets-manager: {} ({e})",
                            v.name, r.secret_id
                        )
                    }),
                }
            }
        };
        match value {
            Ok(value) => {
                if v.kind != VarKind::Plaintext {
                    mask.push(value.clone());
                }
                values.push((v.name.clone(), value));
            }
            Err(m) => missing.push(m),
        }
    }
    if missing.is_empty() {
        Ok((values, mask))
    } else {
        Err(RecordError::MissingSecrets(missing))
    }
}

/// One row of the side-by-side table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub phase: String,
    pub cloud: Option<Side>,
    pub local: Option<Side>,
}

/// A phase's status, duration and context on one side.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub status: String,
    pub duration: Option<f64>,
    pub code: String,
    pub message: String,
}

/// Did the local build do what the cloud build did?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every phase ended with the cloud's status and status code.
    Reproduced,
    /// The first phase (in lifecycle order) whose outcome differs.
    DiffersFrom(String),
}

/// The phases compared: after QUEUED (how long a build waits for capacity says nothing about
/// the build) up to FINALIZING.
const COMPARED: [&str; 8] = [
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
];

/// The cloud's phases next to the local build's, and the verdict.
pub fn compare(cloud: &CloudBuild, local: &Build) -> (Vec<Row>, Verdict) {
    let mut rows = vec![];
    let mut verdict = None;
    for phase in COMPARED {
        let c = cloud
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .and_then(|p| {
                Some(Side {
                    status: p.status.clone()?,
                    duration: p.duration,
                    code: p.code.clone(),
                    message: p.message.clone(),
                })
            });
        let l = local
            .phases
            .iter()
            .find(|p| p.phase_type.as_str() == phase && p.phase_type != PhaseType::Completed)
            .and_then(|p| {
                let ctx = p.contexts.as_ref().and_then(|c| c.first());
                Some(Side {
                    status: p.phase_status?.as_str().to_owned(),
                    duration: p.end_time.map(|e| (e - p.start_time).max(0.0)),
                    code: ctx.map(|c| c.status_code.clone()).unwrap_or_default(),
                    message: ctx.map(|c| c.message.clone()).unwrap_or_default(),
                })
            });
        if c.is_none() && l.is_none() {
            continue;
        }
        let same = match (&c, &l) {
            (Some(c), Some(l)) => c.status == l.status && c.code == l.code,
            _ => false,
        };
        if !same && verdict.is_none() {
            verdict = Some(Verdict::DiffersFrom(phase.to_owned()));
        }
        rows.push(Row {
            phase: phase.to_owned(),
            cloud: c,
            local: l,
        });
    }
    let verdict = verdict.unwrap_or(if cloud.status == local.build_status.as_str() {
        Verdict::Reproduced
    } else {
        Verdict::DiffersFrom("COMPLETED".to_owned())
    });
    (rows, verdict)
}

/// The CreateProject input for a project of a BatchGetProjects answer: its settings as the
/// API takes them (the server maps the source location through its own git root), without
/// the fields the cloud computes (`arn`, `created`, `webhook`, …).
pub fn project_input(p: &Value) -> Result<Value, RecordError> {
    const INPUT: [&str; 21] = [
        "name",
        "description",
        "source",
        "secondarySources",
        "sourceVersion",
        "secondarySourceVersions",
        "artifacts",
        "secondaryArtifacts",
        "cache",
        "environment",
        "serviceRole",
        "timeoutInMinutes",
        "queuedTimeoutInMinutes",
        "encryptionKey",
        "tags",
        "vpcConfig",
        "logsConfig",
        "fileSystemLocations",
        "buildBatchConfig",
        "concurrentBuildLimit",
        "autoRetryLimit",
    ];
    required(p, "name", "name")?;
    let env = p.get("environment").ok_or_else(|| RecordError::Missing {
        field: "environment".into(),
        expected: "an object",
    })?;
    check_environment_type(
        "environment.type",
        str_field(env, "type").unwrap_or("LINUX_CONTAINER"),
    )?;
    let src = p.get("source").ok_or_else(|| RecordError::Missing {
        field: "source".into(),
        expected: "an object",
    })?;
    origin_of("source.type", required(src, "type", "source.type")?)?;
    for (i, s) in p
        .get("secondarySources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("secondarySources[{i}].type");
        origin_of(&field, required(s, "type", &field)?)?;
    }
    let mut out = Map::new();
    for key in INPUT {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(b) = p.pointer("/badge/badgeEnabled") {
        out.insert("badgeEnabled".to_owned(), b.clone());
    }
    Ok(json!(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Value {
        json!({
            "id": "web:7a1c",
            "arn": "arn:aws:codebuild:eu-west-1:123456789012:build/web:7a1c",
            "projectName": "web",
            "buildStatus": "FAILED",
            "buildComplete": true,
            "sourceVersion": "main",
            "resolvedSourceVersion": "0123456789abcdef0123456789abcdef01234567",
            "source": {"type": "GITHUB", "location": "https://github.com/acme/web.git", "gitCloneDepth": 1, "buildspec": "ci/buildspec.yml"},
            "secondarySources": [
                {"type": "S3", "location": "acme-assets/fonts.zip", "sourceIdentifier": "fonts"},
                {"type": "CODECOMMIT", "location": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/tools", "sourceIdentifier": "tools"}
            ],
            "secondarySourceVersions": [{"sourceIdentifier": "tools", "sourceVersion": "v2"}],
            "environment": {
                "type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_MEDIUM", "privilegedMode": true,
                "environmentVariables": [
                    {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                    {"name": "TOKEN", "value": "/web/token", "type": "PARAMETER_STORE"},
                    {"name": "DB", "value": "web/db:password", "type": "SECRETS_MANAGER"}
                ]
            },
            "timeoutInMinutes": 25,
            "phases": [
                {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": 1.0, "endTime": 1.5, "durationInSeconds": 0},
                {"phaseType": "BUILD", "phaseStatus": "FAILED", "startTime": 10.0, "endTime": 58.0, "durationInSeconds": 48,
                 "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "Error while executing command: make test. Reason: exit status 2"}]},
                {"phaseType": "COMPLETED", "startTime": 60.0}
            ]
        })
    }

    #[test]
    fn a_record_becomes_what_the_local_build_needs() {
        let c = read_build(&build()).unwrap();
        assert_eq!(c.project, "web");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.source.origin,
            Origin::Git(SourceKind::Github),
            "{:?}",
            c.source
        );
        assert_eq!(
            c.source.version.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567"),
            "resolvedSourceVersion, not sourceVersion"
        );
        assert_eq!(c.source.depth, Some(1));
        assert_eq!(
            c.buildspec,
            BuildspecSource::InSource("ci/buildspec.yml".into())
        );
        assert_eq!((c.privileged, c.timeout_minutes), (true, Some(25)));
        assert_eq!(c.compute_type.as_deref(), Some("BUILD_GENERAL1_MEDIUM"));
        assert_eq!(c.secondary.len(), 2);
        assert_eq!(c.secondary[0].origin, Origin::S3);
        assert_eq!(c.secondary[0].version, None);
        assert_eq!(c.secondary[1].version.as_deref(), Some("v2"));
        assert_eq!(c.phases[1].duration, Some(48.0));
        assert_eq!(c.phases[1].code, "COMMAND_EXECUTION_ERROR");
    }

    #[test]
    fn every_missing_secret_is_named_at_once() {
        let c = read_build(&build()).unwrap();
        let err = resolve_variables(&c.variables, &SecretsFile::default()).unwrap_err();
        let RecordError::MissingSecrets(names) = &err else {
            panic!("{err}")
        };
        assert_eq!(names.len(), 2, "{err}");
        assert!(names[0].starts_with("TOKEN (PARAMETER_STORE)"), "{err}");
        assert!(names[1].starts_with("DB (SECRETS_MANAGER)"), "{err}");
        let secrets = SecretsFile::parse(
            "parameter-store:\n  /web/token: t0k\nsecrets-manager:\n  web/db: '{\"password\": \"pw\"}'\n",
        )
        .unwrap();
        let (values, mask) = resolve_variables(&c.variables, &secrets).unwrap();
        assert_eq!(
            values,
            [
                ("STAGE".to_owned(), "prod".to_owned()),
                ("TOKEN".to_owned(), "t0k".to_owned()),
                ("DB".to_owned(), "pw".to_owned())
            ]
        );
        assert_eq!(mask, ["t0k", "pw"]);
    }

    #[test]
    fn what_cannot_run_here_is_refused_naming_the_field() {
        let cases: [(&str, Value, &str); 6] = [
            (
                "/buildStatus",
                json!("IN_PROGRESS"),
                "`buildStatus` is IN_PROGRESS",
            ),
            (
                "/environment/type",
                json!("ARM_CONTAINER"),
                "`environment.type` is ARM_CONTAINER",
            ),
            (
                "/environment/type",
                json!("WINDOWS_SERVER_2019_CONTAINER"),
                "Linux containers only",
            ),
            (
                "/environment/type",
                json!("LINUX_LAMBDA_CONTAINER"),
                "Lambda",
            ),
            ("/source/type", json!("SVN"), "`source.type` is SVN"),
            (
                "/resolvedSourceVersion",
                Value::Null,
                "`resolvedSourceVersion` is missing",
            ),
        ];
        for (pointer, value, wanted) in cases {
            let mut b = build();
            *b.pointer_mut(pointer).unwrap() = value;
            let err = read_build(&b).unwrap_err().to_string();
            assert!(err.contains(wanted), "{pointer}: {err}");
        }
    }

    #[test]
    fn answers_are_chosen_from_by_id() {
        let one = build();
        let mut two = build();
        two["id"] = json!("web:8b2d");
        let answer = json!({"builds": [one, two], "buildsNotFound": []});
        let err = select("f.json", &answer, Answer::Builds, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.json: the answer holds 2 builds: choose one with --build (web:7a1c, web:8b2d)"
        );
        let b = select("f.json", &answer, Answer::Builds, Some("web:8b2d")).unwrap();
        assert_eq!(b["id"], "web:8b2d");
        let bare = build();
        assert_eq!(
            select("-", &bare, Answer::Builds, None).unwrap()["id"],
            "web:7a1c"
        );
        let err = select(
            "-",
            &json!({"builds": [], "buildsNotFound": ["web:x"]}),
            Answer::Builds,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not found: web:x"), "{err}");
        let err = parse("f.json", "{\n  \"builds\": [,]\n}").unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Json {
                    line: 2,
                    column: 14,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("f.json:2:14: not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn projects_become_create_project_input() {
        let p = json!({
            "name": "web", "arn": "arn:aws:codebuild:eu-west-1:123456789012:project/web",
            "created": 1.0, "lastModified": 2.0, "badge": {"badgeEnabled": false},
            "webhook": {"url": "https://x"}, "projectVisibility": "PRIVATE",
            "source": {"type": "GITHUB", "location": "https://github.com/acme/web.git"},
            "artifacts": {"type": "NO_ARTIFACTS"},
            "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
            "serviceRole": "arn:aws:iam::123456789012:role/web"
        });
        let input = project_input(&p).unwrap();
        assert_eq!(input["name"], "web");
        assert_eq!(input["badgeEnabled"], false);
        for computed in [
            "arn",
            "created",
            "lastModified",
            "webhook",
            "projectVisibility",
            "badge",
        ] {
            assert!(input.get(computed).is_none(), "{computed}: {input}");
        }
        let mut arm = p.clone();
        arm["environment"]["type"] = json!("ARM_LAMBDA_CONTAINER");
        assert!(project_input(&arm).is_err());
    }
}
