//! Batch expansion: a buildspec's `batch` section → the ordered list of builds that
//! CodeBuild's `StartBuildBatch` starts (reference §1.7).
//!
//! Pure, like the rest of the crate. `build-list` and `build-graph` tasks keep their source
//! order; a `build-matrix` is the full cross product buildspec × image × compute type ×
//! each variable (the last axis varies fastest), named `matrix-1`, `matrix-2`, …; a
//! `build-fanout` is `parallelism` builds of the same buildspec named `shard-1`, …, each
//! knowing its [`Shard`] (number and count), which `codebuild-tests-run` uses to pick its
//! share of the test files. CodeBuild documents neither naming, so these are localbuild's
//! (README, "Batch builds").
//!
//! [`graph_problems`] holds the graph rules (duplicate identifiers, unknown `depend-on`
//! identifiers, cycles) with the locations the model keeps; `validate` reports them as
//! buildspec errors and [`expand`] refuses a model that breaks them.

use crate::{Batch, BatchEnv, BatchKind, BatchTask, BuildMatrix, Diagnostic, Location, Severity};
use std::collections::HashMap;

/// Most builds one batch may expand to (a larger matrix or fan-out is refused).
pub const MAX_TASKS: usize = 1000;

/// One build of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    /// `CODEBUILD_BATCH_BUILD_IDENTIFIER` and the build group's identifier.
    pub identifier: String,
    /// A buildspec path in the source; `None` = the batch's own buildspec file.
    pub buildspec: Option<String>,
    /// `None` = the batch's image.
    pub image: Option<String>,
    pub compute_type: Option<String>,
    pub env_type: Option<String>,
    /// `None` = the batch's privileged mode.
    pub privileged: Option<bool>,
    /// Variables that override the buildspec's for this build, in order.
    pub variables: Vec<(String, String)>,
    pub ignore_failure: bool,
    /// Identifiers that must have SUCCEEDED before this build starts (build-graph only).
    pub depends_on: Vec<String>,
    pub debug_session: bool,
    /// The build's place in a build-fanout (`None` outside one: a single shard of one).
    pub shard: Option<Shard>,
}

/// One build of a build-fanout: shard `number` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub number: u32,
    pub count: u32,
}

/// The batch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BuildList,
    BuildGraph,
    BuildMatrix,
    BuildFanout,
    /// A `batch` section without a build kind.
    None,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BuildList => "build-list",
            Kind::BuildGraph => "build-graph",
            Kind::BuildMatrix => "build-matrix",
            Kind::BuildFanout => "build-fanout",
            Kind::None => "none",
        }
    }
}

/// The builds of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub kind: Kind,
    pub fast_fail: bool,
    pub tasks: Vec<Task>,
    /// What localbuild does differently from CodeBuild for this batch (shown by `plan`).
    pub notes: Vec<String>,
}

/// The note `plan` and `run --batch` show for a build-fanout.
pub const FANOUT_NOTE: &str = "build-fanout: every shard runs the whole buildspec; codebuild-tests-run gives each its share of the test files (CODEBUILD_CURRENT_SHARD_FILES) by CodeBuild's strategies, but which shard gets which file is localbuild's choice (CodeBuild does not document its split points or hash)";

fn error(at: Location, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        line: at.line,
        column: at.column,
        message,
    }
}

/// Expand `batch` into its builds, in order. An invalid graph or a batch larger than
/// [`MAX_TASKS`] is an error located in the buildspec.
pub fn expand(batch: &Batch) -> Result<Expansion, Diagnostic> {
    let (kind, tasks) = match &batch.kind {
        BatchKind::BuildList(ts) | BatchKind::BuildGraph(ts) => {
            if let Some(d) = graph_problems(ts).into_iter().next() {
                return Err(d);
            }
            let graph = matches!(batch.kind, BatchKind::BuildGraph(_));
            let kind = if graph {
                Kind::BuildGraph
            } else {
                Kind::BuildList
            };
            (kind, ts.iter().map(|t| task(t, graph)).collect())
        }
        BatchKind::BuildMatrix(m) => {
            let size = matrix_size(m).filter(|&n| n <= MAX_TASKS).ok_or_else(|| {
                error(
                    batch.at,
                    format!("the build-matrix expands to more than {MAX_TASKS} builds"),
                )
            })?;
            let tasks = matrix(m);
            debug_assert_eq!(tasks.len(), size);
            (Kind::BuildMatrix, tasks)
        }
        BatchKind::BuildFanout {
            parallelism,
            ignore_failure,
        } => {
            let n = *parallelism as usize;
            if n > MAX_TASKS {
                return Err(error(
                    batch.at,
                    format!(
                        "build-fanout parallelism {n} is more than the {MAX_TASKS} builds a batch may have"
                    ),
                ));
            }
            let tasks = (1..=n)
                .map(|i| Task {
                    identifier: format!("shard-{i}"),
                    ignore_failure: *ignore_failure,
                    shard: Some(Shard {
                        number: i as u32,
                        count: n as u32,
                    }),
                    ..Task::default()
                })
                .collect();
            (Kind::BuildFanout, tasks)
        }
        BatchKind::None => (Kind::None, Vec::new()),
    };
    let mut notes = Vec::new();
    if kind == Kind::BuildFanout {
        notes.push(FANOUT_NOTE.to_owned());
    }
    if tasks.iter().any(|t: &Task| t.debug_session) {
        notes.push("debug-session: session debugging is not available locally".to_owned());
    }
    Ok(Expansion {
        kind,
        fast_fail: batch.fast_fail,
        tasks,
        notes,
    })
}

fn with_env(mut t: Task, env: &BatchEnv) -> Task {
    t.image = env.image.clone();
    t.compute_type = env.compute_type.clone();
    t.env_type = env.env_type.clone();
    t.privileged = env.privileged_mode;
    t.variables = env.variables.clone();
    t
}

fn task(t: &BatchTask, graph: bool) -> Task {
    with_env(
        Task {
            identifier: t.identifier.clone(),
            buildspec: t.buildspec.clone(),
            ignore_failure: t.ignore_failure,
            depends_on: if graph { t.depend_on.clone() } else { vec![] },
            debug_session: t.debug_session,
            ..Task::default()
        },
        &t.env,
    )
}

/// The number of builds a matrix expands to, `None` on overflow.
fn matrix_size(m: &BuildMatrix) -> Option<usize> {
    let axis = |n: usize| n.max(1);
    m.variables.iter().try_fold(
        axis(m.buildspecs.len())
            .checked_mul(axis(m.images.len()))?
            .checked_mul(axis(m.compute_types.len()))?,
        |acc, (_, v)| acc.checked_mul(axis(v.len())),
    )
}

/// The full cross product: buildspec × image × compute type × each variable in source order.
fn matrix(m: &BuildMatrix) -> Vec<Task> {
    let base = with_env(
        Task {
            ignore_failure: m.static_ignore_failure,
            ..Task::default()
        },
        &m.static_env,
    );
    let axis = |values: &[String]| -> Vec<Option<String>> {
        if values.is_empty() {
            vec![None]
        } else {
            values.iter().cloned().map(Some).collect()
        }
    };
    fn cross(
        out: Vec<Task>,
        values: &[Option<String>],
        set: &dyn Fn(&mut Task, &str),
    ) -> Vec<Task> {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for t in &out {
            for v in values {
                let mut t = t.clone();
                if let Some(v) = v {
                    set(&mut t, v);
                }
                next.push(t);
            }
        }
        next
    }
    let mut out = vec![base];
    out = cross(out, &axis(&m.buildspecs), &|t, v| {
        t.buildspec = Some(v.to_owned())
    });
    out = cross(out, &axis(&m.images), &|t, v| t.image = Some(v.to_owned()));
    out = cross(out, &axis(&m.compute_types), &|t, v| {
        t.compute_type = Some(v.to_owned())
    });
    for (name, values) in &m.variables {
        out = cross(out, &axis(values), &|t, v| {
            t.variables.retain(|(n, _)| n != name);
            t.variables.push((name.clone(), v.to_owned()));
        });
    }
    for (i, t) in out.iter_mut().enumerate() {
        t.identifier = format!("matrix-{}", i + 1);
    }
    out
}

/// The rules of a build-list / build-graph: identifiers are unique, every `depend-on` names a
/// task, and the graph has no cycle. Each problem is located at the task or the dependency.
pub fn graph_problems(tasks: &[BatchTask]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if t.identifier.is_empty() {
            continue;
        }
        if index.insert(&t.identifier, i).is_some() {
            out.push(error(
                t.at,
                format!(
                    "identifier '{}' is used by more than one task",
                    t.identifier
                ),
            ));
        }
    }
    let dep_at = |t: &BatchTask, k: usize| t.depend_on_at.get(k).copied().unwrap_or(t.at);
    for t in tasks {
        for (k, d) in t.depend_on.iter().enumerate() {
            if !index.contains_key(d.as_str()) {
                out.push(error(
                    dep_at(t, k),
                    format!(
                        "task '{}' depends on '{d}', which is not an identifier in 'batch.build-graph'",
                        t.identifier
                    ),
                ));
            }
        }
    }
    // Cycles: depth-first, in source order; the first back edge found is reported.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; tasks.len()];
    for root in 0..tasks.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (task, next dependency to look at)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnStack;
        while let Some(top) = stack.last_mut() {
            let (u, edge) = *top;
            let t = &tasks[u];
            if edge >= t.depend_on.len() {
                mark[u] = Mark::Done;
                stack.pop();
                continue;
            }
            top.1 += 1;
            let Some(&v) = index.get(t.depend_on[edge].as_str()) else {
                continue;
            };
            match mark[v] {
                Mark::New => {
                    mark[v] = Mark::OnStack;
                    stack.push((v, 0));
                }
                Mark::OnStack => {
                    let from = stack.iter().position(|&(s, _)| s == v).unwrap_or(0);
                    let mut path: Vec<&str> = stack[from..]
                        .iter()
                        .map(|&(s, _)| tasks[s].identifier.as_str())
                        .collect();
                    path.push(&tasks[v].identifier);
                    out.push(error(
                        dep_at(t, edge),
                        format!(
                            "'batch.build-graph' has a dependency cycle: {}",
                            path.join(" -> ")
                        ),
                    ));
                    return out;
                }
                Mark::Done => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const V: &str = "version: 0.2\n";

    fn expand_yaml(yaml: &str) -> Expansion {
        let b = parse(format!("{V}{yaml}").as_bytes())
            .unwrap_or_else(|e| panic!("{:?}", e.errors))
            .buildspec;
        expand(b.batch.as_ref().expect("a batch section")).expect("expands")
    }

    fn errors(yaml: &str) -> Vec<String> {
        match parse(format!("{V}{yaml}").as_bytes()) {
            Ok(_) => vec![],
            Err(e) => e
                .errors
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    fn ids(e: &Expansion) -> Vec<&str> {
        e.tasks.iter().map(|t| t.identifier.as_str()).collect()
    }

    #[test]
    fn build_list_keeps_order_and_settings() {
        let e = expand_yaml(
            "batch:\n  fast-fail: true\n  build-list:\n    - identifier: linux\n      env:\n        image: img:1\n        privileged-mode: true\n        compute-type: BUILD_GENERAL1_LARGE\n        variables:\n          A: 1\n    - identifier: arm\n      buildspec: arm.yml\n      ignore-failure: true\n",
        );
        assert_eq!(e.kind, Kind::BuildList);
        assert!(e.fast_fail);
        assert_eq!(ids(&e), ["linux", "arm"]);
        let t = &e.tasks[0];
        assert_eq!(t.image.as_deref(), Some("img:1"));
        assert_eq!(t.privileged, Some(true));
        assert_eq!(t.compute_type.as_deref(), Some("BUILD_GENERAL1_LARGE"));
        assert_eq!(t.variables, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(t.buildspec, None);
        assert_eq!(e.tasks[1].buildspec.as_deref(), Some("arm.yml"));
        assert!(e.tasks[1].ignore_failure);
        assert!(e.notes.is_empty());
    }

    #[test]
    fn build_graph_keeps_dependencies() {
        let e = expand_yaml(
            "batch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\n",
        );
        assert_eq!(e.kind, Kind::BuildGraph);
        assert_eq!(ids(&e), ["a", "b", "c", "d"]);
        assert_eq!(e.tasks[3].depends_on, ["b", "c"]);
        assert!(e.tasks[0].depends_on.is_empty());
    }

    #[test]
    fn a_cycle_is_an_error_at_the_dependency() {
        assert_eq!(
            errors(
                "batch:\n  build-graph:\n    - identifier: a\n      depend-on: [c]\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on:\n        - b\n"
            ),
            ["7:19: 'batch.build-graph' has a dependency cycle: a -> c -> b -> a"]
        );
        assert_eq!(
            errors("batch:\n  build-graph:\n    - identifier: a\n      depend-on: [a]\n"),
            ["5:19: 'batch.build-graph' has a dependency cycle: a -> a"]
        );
    }

    #[test]
    fn an_unknown_dependency_is_an_error_at_the_dependency() {
        assert_eq!(
            errors("batch:\n  build-graph:\n    - identifier: a\n      depend-on: [a2, z]\n"),
            [
                "5:19: task 'a' depends on 'a2', which is not an identifier in 'batch.build-graph'",
                "5:23: task 'a' depends on 'z', which is not an identifier in 'batch.build-graph'"
            ]
        );
    }

    #[test]
    fn a_duplicate_identifier_is_an_error() {
        assert_eq!(
            errors("batch:\n  build-list:\n    - identifier: a\n    - identifier: a\n"),
            ["5:7: identifier 'a' is used by more than one task"]
        );
    }

    #[test]
    fn expand_refuses_a_model_that_breaks_the_graph_rules() {
        let task = |id: &str, deps: &[&str], line: usize| BatchTask {
            identifier: id.to_owned(),
            depend_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            at: Location { line, column: 7 },
            ..BatchTask::default()
        };
        let batch = Batch {
            fast_fail: false,
            kind: BatchKind::BuildGraph(vec![task("a", &["b"], 3), task("b", &["a"], 5)]),
            at: Location::default(),
        };
        let d = expand(&batch).unwrap_err();
        assert_eq!((d.line, d.column), (5, 7));
        assert!(d.message.contains("a -> b -> a"), "{}", d.message);
    }

    #[test]
    fn build_matrix_is_the_full_cross_product() {
        let e = expand_yaml(
            "batch:\n  build-matrix:\n    static:\n      ignore-failure: true\n      env:\n        privileged-mode: true\n        variables:\n          S: s\n          V: static\n    dynamic:\n      buildspec: [a.yml, b.yml]\n      env:\n        image: [i1, i2]\n        variables:\n          V: [1, 2, 3]\n",
        );
        assert_eq!(e.kind, Kind::BuildMatrix);
        assert_eq!(e.tasks.len(), 12);
        assert_eq!(e.tasks[0].identifier, "matrix-1");
        assert_eq!(e.tasks[11].identifier, "matrix-12");
        let combo = |t: &Task| {
            format!(
                "{}/{}/{}",
                t.buildspec.as_deref().unwrap_or("-"),
                t.image.as_deref().unwrap_or("-"),
                t.variables
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        assert_eq!(combo(&e.tasks[0]), "a.yml/i1/S=s,V=1");
        assert_eq!(combo(&e.tasks[1]), "a.yml/i1/S=s,V=2");
        assert_eq!(combo(&e.tasks[3]), "a.yml/i2/S=s,V=1");
        assert_eq!(combo(&e.tasks[11]), "b.yml/i2/S=s,V=3");
        assert!(
            e.tasks
                .iter()
                .all(|t| t.ignore_failure && t.privileged == Some(true))
        );
        let mut all: Vec<String> = e.tasks.iter().map(combo).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 12, "every combination once");
    }

    #[test]
    fn a_huge_matrix_is_refused_with_a_location() {
        let values = (0..40)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let b = parse(
            format!("{V}batch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          A: [{values}]\n          B: [{values}]\n").as_bytes(),
        )
        .unwrap()
        .buildspec;
        let d = expand(b.batch.as_ref().unwrap()).unwrap_err();
        assert_eq!((d.line, d.column), (3, 3));
        assert!(d.message.contains("more than 1000"), "{}", d.message);
    }

    #[test]
    fn build_fanout_makes_parallelism_shards() {
        let e =
            expand_yaml("batch:\n  build-fanout:\n    parallelism: 3\n    ignore-failure: true\n");
        assert_eq!(e.kind, Kind::BuildFanout);
        assert_eq!(ids(&e), ["shard-1", "shard-2", "shard-3"]);
        let shards: Vec<_> = e.tasks.iter().map(|t| t.shard).collect();
        let shard = |number| Some(Shard { number, count: 3 });
        assert_eq!(shards, [shard(1), shard(2), shard(3)]);
        assert!(
            e.tasks
                .iter()
                .all(|t| t.ignore_failure && t.buildspec.is_none())
        );
        assert_eq!(e.notes, [FANOUT_NOTE]);
    }

    #[test]
    fn a_batch_without_a_kind_has_no_builds() {
        let e = expand_yaml("batch:\n  fast-fail: true\n");
        assert_eq!(e.kind, Kind::None);
        assert!(e.tasks.is_empty());
    }

    /// Every batch buildspec of the corpus expands, or fails with a location.
    #[test]
    fn corpus_batch_buildspecs_expand() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/buildspecs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "corpus {} is missing",
                dir.display()
            );
            return;
        };
        let mut expanded = 0;
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(parsed) = parse(&bytes) else {
                continue; // rejected with a location: tests/corpus.expected covers it
            };
            let Some(batch) = &parsed.buildspec.batch else {
                continue;
            };
            match expand(batch) {
                Ok(e) => {
                    assert!(
                        e.kind == Kind::None || !e.tasks.is_empty(),
                        "{name}: no builds"
                    );
                    for t in &e.tasks {
                        assert!(!t.identifier.is_empty(), "{name}: an empty identifier");
                        for d in &t.depends_on {
                            assert!(e.tasks.iter().any(|o| &o.identifier == d), "{name}");
                        }
                    }
                    expanded += 1;
                }
                Err(d) => assert!(d.line >= 1 && d.column >= 1, "{name}: unlocated {d:?}"),
            }
        }
        assert!(expanded >= 5, "only {expanded} corpus batches expanded");
    }
}
