//! A pipeline declaration as CodePipeline's API carries it (serde, camelCase), and `check`:
//! the declaration rules CodePipeline applies at CreatePipeline / UpdatePipeline (names,
//! structure, artifacts, action configuration, V2 variables and triggers), plus the providers
//! localbuild can run ([`PROVIDERS`]). Pure: errors are [`DeclarationError`]s, which the server
//! maps to CodePipeline's exception types.

use crate::DeclarationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The providers localbuild runs, as (category, owner, provider).
pub const PROVIDERS: [(&str, &str, &str); 9] = [
    ("Source", "AWS", "CodeStarSourceConnection"),
    ("Source", "AWS", "CodeCommit"),
    ("Source", "ThirdParty", "GitHub"),
    ("Source", "AWS", "S3"),
    ("Build", "AWS", "CodeBuild"),
    ("Test", "AWS", "CodeBuild"),
    ("Deploy", "AWS", "ECS"),
    ("Deploy", "AWS", "S3"),
    ("Approval", "AWS", "Manual"),
];

/// What CodePipeline shows for a GitHub (version 1) action's `OAuthToken`: the token itself is
/// never kept (localbuild reads the repository from the git root, it needs none).
pub const MASKED: &str = "****";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    pub name: String,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub artifact_store: Option<ArtifactStore>,
    #[serde(default)]
    pub artifact_stores: Option<Value>,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub execution_mode: Option<String>,
    #[serde(default)]
    pub pipeline_type: Option<String>,
    #[serde(default)]
    pub variables: Option<Vec<Variable>>,
    /// V2 triggers: git push filters per source action.
    #[serde(default)]
    pub triggers: Option<Vec<Trigger>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub provider_type: String,
    pub git_configuration: GitConfiguration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    pub source_action_name: String,
    #[serde(default)]
    pub push: Option<Vec<PushFilter>>,
    #[serde(default)]
    pub pull_request: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushFilter {
    #[serde(default)]
    pub branches: Option<Patterns>,
    #[serde(default)]
    pub file_paths: Option<Patterns>,
    #[serde(default)]
    pub tags: Option<Patterns>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Patterns {
    #[serde(default)]
    pub includes: Option<Vec<String>>,
    #[serde(default)]
    pub excludes: Option<Vec<String>>,
}

impl Patterns {
    /// Matches an include (or there are none) and no exclude.
    pub fn admits(&self, name: &str) -> bool {
        let any = |p: &Option<Vec<String>>| p.iter().flatten().any(|g| glob(g, name));
        (self.includes.as_ref().is_none_or(Vec::is_empty) || any(&self.includes))
            && !any(&self.excludes)
    }
}

/// Git-style glob: `*` any run of characters but `/`, `**` any run including `/`, `?` one
/// character but `/`; everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p {
            [] => t.is_empty(),
            // `**/`: zero or more whole directories.
            ['*', '*', '/', rest @ ..] => (0..=t.len())
                .filter(|&i| i == 0 || t[i - 1] == '/')
                .any(|i| go(rest, &t[i..])),
            ['*', '*', rest @ ..] => (0..=t.len()).any(|i| go(rest, &t[i..])),
            ['*', rest @ ..] => (0..=t.len())
                .take_while(|i| *i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            ['?', rest @ ..] => t.first().is_some_and(|c| *c != '/') && go(rest, &t[1..]),
            [c, rest @ ..] => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    #[serde(rename = "type")]
    pub kind: String,
    pub location: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub default_value: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    pub action_type_id: ActionTypeId,
    #[serde(default)]
    pub run_order: Option<i64>,
    #[serde(default)]
    pub configuration: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub input_artifacts: Option<Vec<Named>>,
    #[serde(default)]
    pub output_artifacts: Option<Vec<Named>>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Manual approval actions only (minutes, 5 to 86400; default 7 days).
    #[serde(default)]
    pub timeout_in_minutes: Option<i64>,
}

impl Action {
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configuration
            .as_ref()
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }
    pub fn inputs(&self) -> impl Iterator<Item = &str> {
        self.input_artifacts
            .iter()
            .flatten()
            .map(|n| n.name.as_str())
    }
    pub fn outputs(&self) -> impl Iterator<Item = &str> {
        self.output_artifacts
            .iter()
            .flatten()
            .map(|n| n.name.as_str())
    }
    /// The branch a git source action follows (`BranchName`; GitHub version 1: `Branch`).
    pub fn branch(&self) -> &str {
        self.config("BranchName")
            .or_else(|| self.config("Branch"))
            .unwrap_or("main")
    }
    /// A git source action's repository as a CodeBuild source (kind and location), resolved
    /// under the git root exactly like a CodeBuild source of that kind.
    pub fn repository(&self, region: &str) -> (localbuild_sources::SourceKind, String) {
        use localbuild_sources::SourceKind;
        match self.action_type_id.provider.as_str() {
            "CodeCommit" => (
                SourceKind::Codecommit,
                format!(
                    "https://git-codecommit.{region}.amazonaws.com/v1/repos/{}",
                    self.config("RepositoryName").unwrap_or_default()
                ),
            ),
            "GitHub" => (
                SourceKind::Github,
                format!(
                    "https://github.com/{}/{}",
                    self.config("Owner").unwrap_or_default(),
                    self.config("Repo").unwrap_or_default()
                ),
            ),
            _ => (
                SourceKind::Github,
                format!(
                    "https://github.com/{}",
                    self.config("FullRepositoryId").unwrap_or_default()
                ),
            ),
        }
    }
    pub fn run_order(&self) -> u32 {
        self.run_order
            .and_then(|o| u32::try_from(o).ok())
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeId {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Named {
    pub name: String,
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'))
}

/// An artifact store location: CodePipeline's pattern `[a-zA-Z0-9\-\.]+`, 3 to 63 characters,
/// and S3's bucket rule that it starts and ends with a letter or digit (so never `.` or `..`):
/// it names the store's folder under the S3 root.
fn valid_bucket(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

/// Check a declaration as CodePipeline does (structure, actions, artifacts), and that
/// localbuild can run every action.
pub fn check(d: &Declaration) -> Result<(), DeclarationError> {
    if !valid_name(&d.name, 100) {
        return Err(DeclarationError::Validation(format!(
            "1 validation error detected: Value '{}' at 'pipeline.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+",
            d.name
        )));
    }
    match (&d.artifact_store, &d.artifact_stores) {
        (Some(_), Some(_)) => {
            return Err(DeclarationError::InvalidStructure(
                "Pipeline cannot have both artifactStore and artifactStores".into(),
            ));
        }
        (None, _) => {
            return Err(DeclarationError::InvalidStructure(
                "Pipeline must have an artifactStore (localbuild keeps artifacts in $LOCALBUILD_HOME/s3/<location>)".into(),
            ));
        }
        (Some(s), None) if !valid_bucket(&s.location) => {
            return Err(DeclarationError::Validation(format!(
                "1 validation error detected: Value '{}' at 'pipeline.artifactStore.location' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9\\-\\.]+ (an S3 bucket name: 3 to 63 characters, starting and ending with a letter or digit)",
                s.location
            )));
        }
        (Some(s), None) if s.kind != "S3" || s.location.is_empty() => {
            return Err(DeclarationError::InvalidStructure(format!(
                "Invalid artifactStore: type must be S3 and location a bucket name (got type {} location '{}')",
                s.kind, s.location
            )));
        }
        _ => {}
    }
    if let Some(m) = &d.execution_mode
        && !["QUEUED", "SUPERSEDED", "PARALLEL"].contains(&m.as_str())
    {
        return Err(DeclarationError::Validation(format!(
            "Invalid executionMode {m}: QUEUED, SUPERSEDED or PARALLEL"
        )));
    }
    if let Some(vars) = d.variables.as_ref().filter(|v| !v.is_empty()) {
        if d.pipeline_type.as_deref() != Some("V2") {
            return Err(DeclarationError::Validation(
                "Pipeline variables are only supported in pipelines of type V2 (set pipelineType to V2)".into(),
            ));
        }
        let mut seen = HashSet::new();
        for v in vars {
            if v.name.is_empty()
                || v.name.len() > 128
                || !v
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'))
            {
                return Err(DeclarationError::Validation(format!(
                    "Invalid pipeline variable name '{}': 1 to 128 characters of A-Za-z0-9@-_",
                    v.name
                )));
            }
            if !seen.insert(v.name.as_str()) {
                return Err(DeclarationError::InvalidStructure(format!(
                    "Pipeline variable names must be unique: '{}' is declared more than once",
                    v.name
                )));
            }
        }
    }
    for t in d.triggers.iter().flatten() {
        let name = &t.git_configuration.source_action_name;
        if d.pipeline_type.as_deref() != Some("V2") {
            return Err(DeclarationError::Validation(
                "Triggers are only supported in pipelines of type V2 (set pipelineType to V2)"
                    .into(),
            ));
        }
        let source = d
            .stages
            .first()
            .and_then(|s| s.actions.iter().find(|a| &a.name == name));
        match source {
            Some(a) if a.action_type_id.provider == "CodeStarSourceConnection" => {}
            _ => {
                return Err(DeclarationError::InvalidStructure(format!(
                    "The trigger's sourceActionName '{name}' is not a CodeStarSourceConnection source action of the first stage"
                )));
            }
        }
        if t.git_configuration.pull_request.is_some()
            || t.git_configuration
                .push
                .iter()
                .flatten()
                .any(|f| f.tags.is_some())
        {
            return Err(DeclarationError::Validation(format!(
                "The trigger of '{name}': localbuild runs push filters on branches and file paths; tag and pull request filters are not supported"
            )));
        }
    }
    if d.stages.len() < 2 {
        return Err(DeclarationError::InvalidStructure(format!(
            "Pipeline has only {} stage(s). There should be a minimum of 2 stages in a pipeline",
            d.stages.len()
        )));
    }
    let mut stage_names = HashSet::new();
    let mut outputs: HashSet<&str> = HashSet::new();
    for (si, stage) in d.stages.iter().enumerate() {
        if !valid_name(&stage.name, 100) {
            return Err(DeclarationError::InvalidStageDeclaration(format!(
                "Invalid stage name '{}': 1 to 100 characters of A-Za-z0-9.@-_",
                stage.name
            )));
        }
        if !stage_names.insert(stage.name.as_str()) {
            return Err(DeclarationError::InvalidStructure(format!(
                "Stage names must be unique: there is more than one stage named '{}'",
                stage.name
            )));
        }
        if stage.actions.is_empty() {
            return Err(DeclarationError::InvalidStructure(format!(
                "Stage '{}' must contain at least one action",
                stage.name
            )));
        }
        let mut action_names = HashSet::new();
        let mut stage_outputs = vec![];
        for a in &stage.actions {
            let at = format!("action '{}' in stage '{}'", a.name, stage.name);
            if !valid_name(&a.name, 100) {
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "Invalid name for {at}: 1 to 100 characters of A-Za-z0-9.@-_"
                )));
            }
            if !action_names.insert(a.name.as_str()) {
                return Err(DeclarationError::InvalidStructure(format!(
                    "Action names must be unique within a stage: there is more than one action named '{}' in stage '{}'",
                    a.name, stage.name
                )));
            }
            if let Some(o) = a.run_order
                && !(1..=999).contains(&o)
            {
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "Invalid runOrder {o} for {at}: it must be between 1 and 999"
                )));
            }
            let t = &a.action_type_id;
            let source = t.category == "Source";
            if si == 0 && !source {
                return Err(DeclarationError::InvalidStructure(format!(
                    "The first stage '{}' must contain only source actions: action '{}' is of category {}",
                    stage.name, a.name, t.category
                )));
            }
            if si > 0 && source {
                return Err(DeclarationError::InvalidStructure(format!(
                    "Source actions can only be in the first stage: {at} is a source action"
                )));
            }
            if !PROVIDERS.contains(&(t.category.as_str(), t.owner.as_str(), t.provider.as_str())) {
                let known: Vec<String> = PROVIDERS
                    .iter()
                    .map(|(c, o, p)| format!("{c}/{o}/{p}"))
                    .collect();
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "ActionType (Category: '{}', Provider: '{}', Owner: '{}', Version: '{}') of {at} is not one localbuild can run; it runs: {}",
                    t.category,
                    t.provider,
                    t.owner,
                    t.version,
                    known.join(", ")
                )));
            }
            let required: &[&str] = match (t.category.as_str(), t.provider.as_str()) {
                (_, "CodeStarSourceConnection") => {
                    &["ConnectionArn", "FullRepositoryId", "BranchName"]
                }
                (_, "CodeCommit") => &["RepositoryName", "BranchName"],
                (_, "GitHub") => &["Owner", "Repo", "Branch", "OAuthToken"],
                (_, "CodeBuild") => &["ProjectName"],
                (_, "ECS") => &["ClusterName", "ServiceName"],
                ("Source", "S3") => &["S3Bucket", "S3ObjectKey"],
                ("Deploy", "S3") => &["BucketName", "Extract"],
                _ => &[],
            };
            if t.provider == "S3" {
                for key in ["S3Bucket", "S3ObjectKey", "BucketName", "ObjectKey"] {
                    let plain = |v: &str| match key {
                        "S3Bucket" | "BucketName" => localbuild_confine::component(key, v).is_ok(),
                        _ => localbuild_confine::relative(key, v.trim_start_matches('/')).is_ok(),
                    };
                    if let Some(v) = a.config(key)
                        && !plain(v)
                    {
                        return Err(DeclarationError::InvalidActionDeclaration(format!(
                            "Invalid {key} '{v}' for {at}: a relative name without '..'"
                        )));
                    }
                }
                if t.category == "Deploy"
                    && a.config("Extract")
                        .is_some_and(|e| e.eq_ignore_ascii_case("false"))
                    && a.config("ObjectKey").is_none_or(str::is_empty)
                {
                    return Err(DeclarationError::InvalidActionDeclaration(format!(
                        "Action configuration for action '{}' is missing required configuration 'ObjectKey' (Extract is false)",
                        a.name
                    )));
                }
            }
            if let Some(minutes) = a.timeout_in_minutes {
                if t.category != "Approval" {
                    return Err(DeclarationError::InvalidActionDeclaration(format!(
                        "timeoutInMinutes of {at} is only allowed for manual approval actions"
                    )));
                }
                if !(5..=86400).contains(&minutes) {
                    return Err(DeclarationError::InvalidActionDeclaration(format!(
                        "Invalid timeoutInMinutes {minutes} for {at}: it must be between 5 and 86400"
                    )));
                }
            }
            for key in required {
                if a.config(key).is_none_or(str::is_empty) {
                    return Err(DeclarationError::InvalidActionDeclaration(format!(
                        "Action configuration for action '{}' is missing required configuration '{key}'",
                        a.name
                    )));
                }
            }
            let (ins, outs) = (a.inputs().count(), a.outputs().count());
            let (in_range, out_range) = match t.provider.as_str() {
                "CodeStarSourceConnection" | "CodeCommit" | "GitHub" => ((0, 0), (1, 1)),
                "S3" if t.category == "Source" => ((0, 0), (1, 1)),
                "CodeBuild" => ((1, 5), (0, 5)),
                "Manual" => ((0, 0), (0, 0)),
                _ => ((1, 1), (0, 0)),
            };
            if ins < in_range.0 || ins > in_range.1 || outs < out_range.0 || outs > out_range.1 {
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "Action '{}' in stage '{}' has {ins} input artifact(s) and {outs} output artifact(s); {} actions take {} to {} inputs and {} to {} outputs",
                    a.name,
                    stage.name,
                    t.provider,
                    in_range.0,
                    in_range.1,
                    out_range.0,
                    out_range.1
                )));
            }
            if t.provider == "CodeBuild" && ins > 1 && a.config("PrimarySource").is_none() {
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "Action configuration for action '{}' is missing required configuration 'PrimarySource' (it has more than one input artifact)",
                    a.name
                )));
            }
            if let Some(env) = a.config("EnvironmentVariables")
                && serde_json::from_str::<Vec<EnvVarDecl>>(env).is_err()
            {
                return Err(DeclarationError::InvalidActionDeclaration(format!(
                    "Invalid EnvironmentVariables for {at}: a JSON list of {{name, value, type}}"
                )));
            }
            for input in a.inputs() {
                if !outputs.contains(input) {
                    return Err(DeclarationError::InvalidStructure(format!(
                        "Input artifact '{input}' of {at} is not the output artifact of an action in an earlier stage"
                    )));
                }
            }
            for output in a.outputs() {
                if !valid_name(output, 100) || output.contains(['.', '@']) {
                    return Err(DeclarationError::InvalidActionDeclaration(format!(
                        "Invalid output artifact name '{output}' of {at}: 1 to 100 characters of A-Za-z0-9_-"
                    )));
                }
                stage_outputs.push(output);
            }
        }
        for o in stage_outputs {
            if !outputs.insert(o) {
                return Err(DeclarationError::InvalidStructure(format!(
                    "Output artifact name '{o}' is used by more than one action; artifact names must be unique in a pipeline"
                )));
            }
        }
    }
    Ok(())
}

/// An entry of a CodeBuild action's `EnvironmentVariables`.
#[derive(Debug, Clone, Deserialize)]
pub struct EnvVarDecl {
    pub name: String,
    pub value: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}
