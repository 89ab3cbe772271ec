//! The dry-run plan: what a build of a validated buildspec would do, without Docker.
//!
//! Pure: built from a [`Buildspec`] and rendered as text or JSON by the CLI. Secret sources
//! appear by reference, never by value.

use crate::{
    ArtifactSet, BatchEnv, BatchKind, BatchTask, Buildspec, CacheAction, OnFailure, PhaseName,
};
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
    /// or the shards of a build-fanout.
    pub tasks: Vec<PlanBatchTask>,
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
        batch: b.batch.as_ref().map(|batch| {
            let (kind, tasks) = match &batch.kind {
                BatchKind::BuildList(ts) => ("build-list", ts.iter().map(task).collect()),
                BatchKind::BuildGraph(ts) => ("build-graph", ts.iter().map(task).collect()),
                BatchKind::BuildMatrix(m) => ("build-matrix", matrix_tasks(m)),
                BatchKind::BuildFanout {
                    parallelism,
                    ignore_failure,
                } => (
                    "build-fanout",
                    (1..=*parallelism)
                        .map(|i| PlanBatchTask {
                            identifier: format!("shard-{i}"),
                            ignore_failure: *ignore_failure,
                            ..empty_task()
                        })
                        .collect(),
                ),
                BatchKind::None => ("none", Vec::new()),
            };
            PlanBatch {
                fast_fail: batch.fast_fail,
                kind: kind.to_owned(),
                tasks,
            }
        }),
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

fn empty_task() -> PlanBatchTask {
    PlanBatchTask {
        identifier: String::new(),
        buildspec: None,
        depend_on: Vec::new(),
        ignore_failure: false,
        image: None,
        compute_type: None,
        env_type: None,
        privileged_mode: None,
        variables: Vec::new(),
    }
}

fn with_env(mut t: PlanBatchTask, env: &BatchEnv) -> PlanBatchTask {
    t.image = env.image.clone();
    t.compute_type = env.compute_type.clone();
    t.env_type = env.env_type.clone();
    t.privileged_mode = env.privileged_mode;
    t.variables = vars(&env.variables);
    t
}

fn task(t: &BatchTask) -> PlanBatchTask {
    with_env(
        PlanBatchTask {
            identifier: t.identifier.clone(),
            buildspec: t.buildspec.clone(),
            depend_on: t.depend_on.clone(),
            ignore_failure: t.ignore_failure,
            ..empty_task()
        },
        &t.env,
    )
}

/// At most this many matrix combinations are listed.
const MAX_MATRIX_TASKS: usize = 256;

/// The combinations of a build-matrix, in CodeBuild's axis order (buildspec, image,
/// compute type, variables), capped at [`MAX_MATRIX_TASKS`].
fn matrix_tasks(m: &crate::BuildMatrix) -> Vec<PlanBatchTask> {
    let base = with_env(
        PlanBatchTask {
            ignore_failure: m.static_ignore_failure,
            ..empty_task()
        },
        &m.static_env,
    );
    let mut out = vec![base];
    let opt = |v: &[String]| -> Vec<Option<String>> {
        if v.is_empty() {
            vec![None]
        } else {
            v.iter().cloned().map(Some).collect()
        }
    };
    let expand = |out: Vec<PlanBatchTask>,
                  vals: Vec<Option<String>>,
                  set: &dyn Fn(&mut PlanBatchTask, String)| {
        let mut next = Vec::new();
        for t in &out {
            for v in &vals {
                if next.len() >= MAX_MATRIX_TASKS {
                    return next;
                }
                let mut t = t.clone();
                if let Some(v) = v {
                    set(&mut t, v.clone());
                }
                next.push(t);
            }
        }
        next
    };
    out = expand(out, opt(&m.buildspecs), &|t, v| t.buildspec = Some(v));
    out = expand(out, opt(&m.images), &|t, v| t.image = Some(v));
    out = expand(out, opt(&m.compute_types), &|t, v| t.compute_type = Some(v));
    for (name, values) in &m.variables {
        let name = name.clone();
        out = expand(out, opt(values), &|t, v| {
            t.variables.retain(|x| x.name != name);
            t.variables.push(PlanVariable {
                name: name.clone(),
                value: v,
            });
        });
    }
    for (i, t) in out.iter_mut().enumerate() {
        t.identifier = format!("matrix-{}", i + 1);
    }
    out
}
