//! The dry-run plan: what a build of a validated buildspec would do, without Docker.
//!
//! Pure: built from a [`Buildspec`] and rendered as text or JSON by the CLI. Secret sources
//! appear by reference, never by value.

use crate::{ArtifactSet, BatchKind, Buildspec, CacheAction, OnFailure, PhaseName};
use serde::Serialize;

/// What a build would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The buildspec file, as the user named it.
    pub buildspec: String,
    pub version: String,
    /// The shell commands run in; `None` = the image's `/bin/sh`.
    pub shell: Option<String>,
    /// Top-level `run-as`; `None` = root.
    pub run_as: Option<String>,
    pub env: PlanEnv,
    /// All four buildspec phases, in execution order, defined or not.
    pub phases: Vec<PlanPhase>,
    pub reports: Vec<PlanReport>,
    pub artifacts: Option<PlanArtifacts>,
    pub cache: Option<PlanCache>,
    pub proxy: PlanProxy,
    pub batch: Option<PlanBatch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanEnv {
    pub variables: Vec<PlanVariable>,
    pub parameter_store: Vec<PlanParameter>,
    pub secrets_manager: Vec<PlanSecret>,
    pub exported_variables: Vec<String>,
    pub git_credential_helper: bool,
}

/// A plain variable: the value as written (never expanded).
#[derive(Debug, Clone, Serialize)]
pub struct PlanVariable {
    pub name: String,
    pub value: String,
}

/// A Parameter Store variable: the parameter name, not its value.
#[derive(Debug, Clone, Serialize)]
pub struct PlanParameter {
    pub name: String,
    pub parameter: String,
}

/// A Secrets Manager variable: the reference and its parts, not the value.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSecret {
    pub name: String,
    pub reference: String,
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanPhase {
    /// `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD`.
    pub name: String,
    /// Whether the buildspec defines it (an undefined phase still runs, with no commands).
    pub defined: bool,
    /// The effective user: the phase's `run-as`, else the buildspec's; `None` = root.
    pub run_as: Option<String>,
    /// `None` = the default transition rules.
    pub on_failure: Option<PlanOnFailure>,
    pub runtime_versions: Vec<PlanRuntime>,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "UPPERCASE")]
pub enum PlanOnFailure {
    Abort,
    Continue,
    Retry {
        count: u32,
        /// `None` = any error.
        pattern: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanRuntime {
    pub runtime: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub name: String,
    pub file_format: String,
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanArtifacts {
    pub primary: PlanArtifactSet,
    pub secondary: Vec<PlanArtifactSet>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanArtifactSet {
    /// `None` for the primary artifact; the artifact identifier for a secondary one.
    pub identifier: Option<String>,
    pub files: Vec<String>,
    pub name: Option<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanCache {
    pub paths: Vec<String>,
    pub key: Option<String>,
    pub fallback_keys: Vec<String>,
    /// `restore`, `save`, or `restore+save` when unset.
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanProxy {
    pub upload_artifacts: bool,
    pub logs: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanBatch {
    pub fast_fail: bool,
    /// `build-list`, `build-graph`, `build-matrix`, `build-fanout` or `none`.
    pub kind: String,
    /// Tasks of a build-list / build-graph, or the expanded combinations of a build-matrix,
    /// or the shards of a build-fanout ([`crate::batch::expand`]).
    pub tasks: Vec<PlanBatchTask>,
    /// What runs differently from CodeBuild (e.g. a build-fanout's split points).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanBatchTask {
    pub identifier: String,
    pub buildspec: Option<String>,
    pub depend_on: Vec<String>,
    pub ignore_failure: bool,
    pub image: Option<String>,
    pub compute_type: Option<String>,
    pub env_type: Option<String>,
    pub privileged_mode: Option<bool>,
    pub variables: Vec<PlanVariable>,
}

/// Describe a build of `buildspec`, read from `path` (as the user named it).
pub fn plan(buildspec: &Buildspec, path: &str) -> Plan {
    let b = buildspec;
    let env = PlanEnv {
        variables: vars(&b.env.variables),
        parameter_store: b
            .env
            .parameter_store
            .iter()
            .map(|(n, p)| PlanParameter {
                name: n.clone(),
                parameter: p.clone(),
            })
            .collect(),
        secrets_manager: b
            .env
            .secrets_manager
            .iter()
            .map(|(n, s)| PlanSecret {
                name: n.clone(),
                reference: s.reference.clone(),
                secret_id: s.secret_id.clone(),
                json_key: s.json_key.clone(),
                version_stage: s.version_stage.clone(),
                version_id: s.version_id.clone(),
            })
            .collect(),
        exported_variables: b.env.exported_variables.clone(),
        git_credential_helper: b.env.git_credential_helper,
    };
    let phases = PhaseName::ALL
        .into_iter()
        .map(|name| match b.phases.get(name) {
            Some(p) => PlanPhase {
                name: name.upper().to_owned(),
                defined: true,
                run_as: p.run_as.clone().or_else(|| b.run_as.clone()),
                on_failure: p.on_failure.as_ref().map(|f| match f {
                    OnFailure::Abort => PlanOnFailure::Abort,
                    OnFailure::Continue => PlanOnFailure::Continue,
                    OnFailure::Retry { count, pattern } => PlanOnFailure::Retry {
                        count: *count,
                        pattern: pattern.clone(),
                    },
                }),
                runtime_versions: p
                    .runtime_versions
                    .iter()
                    .map(|(r, v)| PlanRuntime {
                        runtime: r.clone(),
                        version: v.clone(),
                    })
                    .collect(),
                commands: p.commands.clone(),
                finally: p.finally.clone(),
            },
            None => PlanPhase {
                name: name.upper().to_owned(),
                defined: false,
                run_as: b.run_as.clone(),
                on_failure: None,
                runtime_versions: Vec::new(),
                commands: Vec::new(),
                finally: Vec::new(),
            },
        })
        .collect();
    let reports = b
        .reports
        .iter()
        .map(|r| PlanReport {
            name: r.name.clone(),
            file_format: r.file_format.as_str().to_owned(),
            files: r.files.clone(),
            base_directory: r.base_directory.clone(),
            discard_paths: r.discard_paths,
        })
        .collect();
    let artifacts = b.artifacts.as_ref().map(|a| PlanArtifacts {
        primary: artifact_set(None, &a.primary),
        secondary: a
            .secondary
            .iter()
            .map(|(id, s)| artifact_set(Some(id.clone()), s))
            .collect(),
    });
    let cache = b.cache.as_ref().map(|c| PlanCache {
        paths: c.paths.clone(),
        key: c.key.clone(),
        fallback_keys: c.fallback_keys.clone(),
        action: match c.action {
            Some(CacheAction::Restore) => "restore",
            Some(CacheAction::Save) => "save",
            None => "restore+save",
        }
        .to_owned(),
    });
    Plan {
        buildspec: path.to_owned(),
        version: b.version.as_str().to_owned(),
        shell: b.env.shell.clone(),
        run_as: b.run_as.clone(),
        env,
        phases,
        reports,
        artifacts,
        cache,
        proxy: PlanProxy {
            upload_artifacts: b.proxy.upload_artifacts,
            logs: b.proxy.logs,
        },
        batch: b.batch.as_ref().map(plan_batch),
    }
}

fn vars(v: &[(String, String)]) -> Vec<PlanVariable> {
    v.iter()
        .map(|(n, v)| PlanVariable {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

fn artifact_set(identifier: Option<String>, s: &ArtifactSet) -> PlanArtifactSet {
    PlanArtifactSet {
        identifier,
        files: s.files.clone(),
        name: s.name.clone(),
        base_directory: s.base_directory.clone(),
        discard_paths: s.discard_paths,
        exclude_paths: s.exclude_paths.clone(),
        enable_symlinks: s.enable_symlinks,
        s3_prefix: s.s3_prefix.clone(),
    }
}

/// The batch's builds, from the same expansion `run --batch` uses.
fn plan_batch(batch: &crate::Batch) -> PlanBatch {
    match crate::batch::expand(batch) {
        Ok(e) => PlanBatch {
            fast_fail: e.fast_fail,
            kind: e.kind.as_str().to_owned(),
            tasks: e
                .tasks
                .iter()
                .map(|t| PlanBatchTask {
                    identifier: t.identifier.clone(),
                    buildspec: t.buildspec.clone(),
                    depend_on: t.depends_on.clone(),
                    ignore_failure: t.ignore_failure,
                    image: t.image.clone(),
                    compute_type: t.compute_type.clone(),
                    env_type: t.env_type.clone(),
                    privileged_mode: t.privileged,
                    variables: vars(&t.variables),
                })
                .collect(),
            notes: e.notes,
        },
        Err(d) => PlanBatch {
            fast_fail: batch.fast_fail,
            kind: match batch.kind {
                BatchKind::BuildList(_) => "build-list",
                BatchKind::BuildGraph(_) => "build-graph",
                BatchKind::BuildMatrix(_) => "build-matrix",
                BatchKind::BuildFanout { .. } => "build-fanout",
                BatchKind::None => "none",
            }
            .to_owned(),
            tasks: Vec::new(),
            notes: vec![format!("error: {}:{}: {}", d.line, d.column, d.message)],
        },
    }
}
