//! The buildspec rules: the located YAML tree of `raw` → the validated [`Buildspec`] model.
//!
//! Owns every semantic check of buildspec 0.1 / 0.2 (reference §1, decisions U1, U7, U13) and
//! its wording. Problems are collected, not thrown: each error or warning points at the node it
//! is about, so one run reports all of them.

use super::diagnostic::{Diagnostic, Severity};
use super::model::*;
use super::raw::{Node, SNode, pos};

/// Collected problems.
#[derive(Default)]
pub struct Ctx {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Ctx {
    fn push(&mut self, severity: Severity, node: &SNode, message: String) {
        let (line, column) = pos(node);
        let d = Diagnostic {
            severity,
            line,
            column,
            message,
        };
        match severity {
            Severity::Error => self.errors.push(d),
            Severity::Warning => self.warnings.push(d),
        }
    }
    fn error(&mut self, node: &SNode, message: impl Into<String>) {
        self.push(Severity::Error, node, message.into());
    }
    fn warn(&mut self, node: &SNode, message: impl Into<String>) {
        self.push(Severity::Warning, node, message.into());
    }
}

/// A mapping entry: key text, key node, value node.
struct Entry<'a> {
    key: String,
    key_node: &'a SNode,
    value: &'a SNode,
}

/// The entries of a mapping; `null` is an empty mapping. `None` (with an error) otherwise.
fn entries<'a>(ctx: &mut Ctx, node: &'a SNode, what: &str) -> Option<Vec<Entry<'a>>> {
    match &node.value {
        Node::Null => Some(Vec::new()),
        Node::Map(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                match &k.value {
                    Node::Scalar { text, .. } => out.push(Entry {
                        key: text.clone(),
                        key_node: k,
                        value: v,
                    }),
                    other => ctx.error(
                        k,
                        format!("expected a text key in '{what}', found {}", other.kind()),
                    ),
                }
            }
            Some(out)
        }
        other => {
            ctx.error(
                node,
                format!("expected a mapping for '{what}', found {}", other.kind()),
            );
            None
        }
    }
}

fn unknown(ctx: &mut Ctx, e: &Entry<'_>, section: &str) {
    ctx.warn(
        e.key_node,
        format!("unknown key '{}' in '{section}'", e.key),
    );
}

/// A scalar as text. `null` is `None` without an error; lists and mappings are errors.
fn text(ctx: &mut Ctx, node: &SNode, what: &str) -> Option<String> {
    match &node.value {
        Node::Scalar { text, .. } => Some(text.clone()),
        Node::Null => None,
        other => {
            ctx.error(
                node,
                format!("expected a string for '{what}', found {}", other.kind()),
            );
            None
        }
    }
}

/// `yes`/`no`/`true`/`false`/`on`/`off`, bare or quoted, any case (U7 c). `null` = false.
fn yes_no(ctx: &mut Ctx, node: &SNode, what: &str) -> bool {
    match &node.value {
        Node::Null => false,
        Node::Scalar { text, .. } => {
            match text.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "y" => true,
                "no" | "false" | "off" | "n" => false,
                _ => {
                    ctx.error(
                    node,
                    format!("invalid value '{text}' for '{what}': expected yes or no (true or false)"),
                );
                    false
                }
            }
        }
        other => {
            ctx.error(
                node,
                format!("expected yes or no for '{what}', found {}", other.kind()),
            );
            false
        }
    }
}

/// A command list (U7 a, b): a scalar is one command, `null` is none, items must be scalars.
fn commands(ctx: &mut Ctx, node: &SNode) -> Vec<String> {
    match &node.value {
        Node::Null => Vec::new(),
        Node::Scalar { text, .. } => vec![text.clone()],
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let (line, _) = pos(item);
                match &item.value {
                    Node::Scalar { text, .. } => out.push(text.clone()),
                    Node::Null => ctx.warn(item, format!("empty command Commands[{i}] ignored")),
                    Node::Map(_) => ctx.error(
                        item,
                        format!(
                            "Expected Commands[{i}] to be of string type: found subkeys instead at line {line}, value of the key tag on line {} might be empty",
                            line.saturating_sub(1)
                        ),
                    ),
                    Node::Seq(_) => ctx.error(
                        item,
                        format!(
                            "Expected Commands[{i}] to be of string type: found a list instead at line {line}"
                        ),
                    ),
                }
            }
            out
        }
        Node::Map(_) => {
            ctx.error(node, "expected a list of commands, found a mapping");
            Vec::new()
        }
    }
}

/// A list of strings (paths, names): a scalar is a one-element list, `null` an empty one.
fn string_list(ctx: &mut Ctx, node: &SNode, what: &str) -> Vec<String> {
    match &node.value {
        Node::Null => Vec::new(),
        Node::Scalar { text, .. } => vec![text.clone()],
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match &item.value {
                    Node::Scalar { text, .. } => out.push(text.clone()),
                    Node::Null => {}
                    other => ctx.error(
                        item,
                        format!("expected a string in '{what}', found {}", other.kind()),
                    ),
                }
            }
            out
        }
        Node::Map(_) => {
            ctx.error(
                node,
                format!("expected a list for '{what}', found a mapping"),
            );
            Vec::new()
        }
    }
}

/// Name → text pairs (env variables, runtime versions); values keep their source text.
fn string_map(ctx: &mut Ctx, node: &SNode, what: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let Some(es) = entries(ctx, node, what) else {
        return out;
    };
    for (i, e) in es.iter().enumerate() {
        let value = text(ctx, e.value, &format!("{what}.{}", e.key)).unwrap_or_default();
        out.push((e.key.clone(), value, i));
    }
    out
}

fn check_env_name(ctx: &mut Ctx, node: &SNode, name: &str) {
    if name.starts_with("CODEBUILD_") {
        ctx.error(
            node,
            format!(
                "invalid environment variable name '{name}': names starting with CODEBUILD_ are reserved"
            ),
        );
    } else if name.is_empty() {
        ctx.error(node, "empty environment variable name");
    }
}

/// Validate the document root.
pub fn buildspec(ctx: &mut Ctx, root: &SNode) -> Option<Buildspec> {
    let es = match &root.value {
        Node::Null => {
            ctx.error(
                root,
                "empty buildspec: expected a mapping with 'version' and 'phases'",
            );
            return None;
        }
        Node::Map(_) => entries(ctx, root, "buildspec")?,
        other => {
            ctx.error(
                root,
                format!(
                    "expected a mapping at the top of the buildspec, found {}",
                    other.kind()
                ),
            );
            return None;
        }
    };

    let mut version = None;
    let mut version_seen = false;
    for e in &es {
        if e.key == "version" {
            version_seen = true;
            version = parse_version(ctx, e.value);
        }
    }
    if !version_seen {
        // A batch-only buildspec (a `batch` section, no `phases`) is read by the batch
        // coordinator; real ones omit `version` (corpus 084, 091), so only warn there.
        let batch_only =
            es.iter().any(|e| e.key == "batch") && !es.iter().any(|e| e.key == "phases");
        if batch_only {
            ctx.warn(
                root,
                "missing 'version' in a batch-only buildspec: assuming 0.2",
            );
            version = Some(Version::V0_2);
        } else {
            ctx.error(root, "missing 'version': expected 0.1 or 0.2");
        }
    }
    let v = version.unwrap_or(Version::V0_2);

    let mut spec = Buildspec {
        version: v,
        run_as: None,
        env: Env::default(),
        proxy: Proxy::default(),
        batch: None,
        phases: Phases::default(),
        reports: Vec::new(),
        artifacts: None,
        cache: None,
    };
    let mut env_key: Option<&str> = None;
    for e in &es {
        match e.key.as_str() {
            "version" => {}
            "run-as" => spec.run_as = text(ctx, e.value, "run-as"),
            "env" | "environment_variables" => {
                if let Some(prev) = env_key {
                    ctx.error(
                        e.key_node,
                        format!("'{}' given together with '{prev}': use one", e.key),
                    );
                }
                env_key = Some(if e.key == "env" {
                    "env"
                } else {
                    "environment_variables"
                });
                spec.env = env(ctx, e.value, &e.key);
            }
            "proxy" => spec.proxy = proxy(ctx, e.value),
            "batch" => spec.batch = batch(ctx, e.key_node, e.value),
            "phases" => spec.phases = phases(ctx, e.value),
            "reports" => spec.reports = reports(ctx, e.value),
            "artifacts" => spec.artifacts = artifacts(ctx, e.key_node, e.value, v),
            "cache" => spec.cache = cache(ctx, e.key_node, e.value),
            _ => ctx.warn(e.key_node, format!("unknown top-level key '{}'", e.key)),
        }
    }
    if ctx.errors.is_empty() && version.is_some() {
        Some(spec)
    } else {
        None
    }
}

fn parse_version(ctx: &mut Ctx, node: &SNode) -> Option<Version> {
    let t = match &node.value {
        Node::Scalar { text, .. } => text.trim().to_owned(),
        other => {
            ctx.error(
                node,
                format!(
                    "invalid 'version': expected 0.1 or 0.2, found {}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    match t.as_str() {
        "0.1" => Some(Version::V0_1),
        "0.2" => Some(Version::V0_2),
        _ => {
            ctx.error(
                node,
                format!("unsupported buildspec version '{t}': expected 0.1 or 0.2"),
            );
            None
        }
    }
}

fn env(ctx: &mut Ctx, node: &SNode, section: &str) -> Env {
    let mut env = Env::default();
    let Some(es) = entries(ctx, node, section) else {
        return env;
    };
    let mut vars_key: Option<&str> = None;
    for e in &es {
        let what = format!("{section}.{}", e.key);
        match e.key.as_str() {
            "shell" => env.shell = text(ctx, e.value, &what),
            "variables" | "plaintext" => {
                if let Some(prev) = vars_key {
                    ctx.error(
                        e.key_node,
                        format!(
                            "'{}' given together with '{prev}' in '{section}': use one",
                            e.key
                        ),
                    );
                }
                vars_key = Some(if e.key == "variables" {
                    "variables"
                } else {
                    "plaintext"
                });
                env.variables = named_values(ctx, e.value, &what);
            }
            "parameter-store" => env.parameter_store = named_values(ctx, e.value, &what),
            "secrets-manager" => {
                if let Some(ves) = entries(ctx, e.value, &what) {
                    for ve in &ves {
                        check_env_name(ctx, ve.key_node, &ve.key);
                        let Some(reference) = text(ctx, ve.value, &format!("{what}.{}", ve.key))
                        else {
                            ctx.error(
                                ve.value,
                                format!("empty secrets-manager reference for '{}'", ve.key),
                            );
                            continue;
                        };
                        match secret_ref(&reference) {
                            Some(r) => env.secrets_manager.push((ve.key.clone(), r)),
                            None => ctx.error(
                                ve.value,
                                format!(
                                    "invalid secrets-manager reference '{reference}': expected secret-id[:json-key[:version-stage[:version-id]]]"
                                ),
                            ),
                        }
                    }
                }
            }
            "exported-variables" => {
                env.exported_variables = string_list(ctx, e.value, &what);
                for name in &env.exported_variables {
                    if name.starts_with("AWS_") {
                        ctx.warn(
                            e.value,
                            format!("exported variable '{name}' cannot be exported: names starting with AWS_ are reserved"),
                        );
                    }
                }
            }
            "git-credential-helper" => env.git_credential_helper = yes_no(ctx, e.value, &what),
            _ => unknown(ctx, e, section),
        }
    }
    env
}

/// Variables or parameter-store entries: name → text, names checked.
fn named_values(ctx: &mut Ctx, node: &SNode, what: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(es) = entries(ctx, node, what) {
        for e in &es {
            check_env_name(ctx, e.key_node, &e.key);
            let value = text(ctx, e.value, &format!("{what}.{}", e.key)).unwrap_or_default();
            out.push((e.key.clone(), value));
        }
    }
    out
}

/// `secret-id[:json-key[:version-stage[:version-id]]]`; an ARN secret-id keeps its colons.
pub fn secret_ref(reference: &str) -> Option<SecretRef> {
    let parts: Vec<&str> = reference.split(':').collect();
    let id_parts = if reference.starts_with("arn:") { 7 } else { 1 };
    if parts.len() < id_parts || parts.len() > id_parts + 3 {
        return None;
    }
    let secret_id = parts[..id_parts].join(":");
    if secret_id.trim().is_empty() {
        return None;
    }
    let part = |i: usize| {
        parts
            .get(id_parts + i)
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned())
    };
    Some(SecretRef {
        reference: reference.to_owned(),
        secret_id,
        json_key: part(0),
        version_stage: part(1),
        version_id: part(2),
    })
}

fn proxy(ctx: &mut Ctx, node: &SNode) -> Proxy {
    let mut p = Proxy::default();
    if let Some(es) = entries(ctx, node, "proxy") {
        for e in &es {
            match e.key.as_str() {
                "upload-artifacts" => {
                    p.upload_artifacts = yes_no(ctx, e.value, "proxy.upload-artifacts")
                }
                "logs" => p.logs = yes_no(ctx, e.value, "proxy.logs"),
                _ => unknown(ctx, e, "proxy"),
            }
        }
    }
    p
}

fn loc(node: &SNode) -> Location {
    let (line, column) = pos(node);
    Location { line, column }
}

fn batch(ctx: &mut Ctx, key: &SNode, node: &SNode) -> Option<Batch> {
    let es = entries(ctx, node, "batch")?;
    let mut b = Batch {
        fast_fail: false,
        kind: BatchKind::None,
        at: loc(key),
    };
    let mut kind_key: Option<String> = None;
    for e in &es {
        let kind = match e.key.as_str() {
            "fast-fail" => {
                b.fast_fail = yes_no(ctx, e.value, "batch.fast-fail");
                continue;
            }
            "build-list" => {
                let ts = tasks(ctx, e.value, "build-list", false);
                for d in crate::batch::graph_problems(&ts) {
                    ctx.errors.push(d);
                }
                BatchKind::BuildList(ts)
            }
            "build-graph" => {
                let ts = tasks(ctx, e.value, "build-graph", true);
                for d in crate::batch::graph_problems(&ts) {
                    ctx.errors.push(d);
                }
                BatchKind::BuildGraph(ts)
            }
            "build-matrix" => BatchKind::BuildMatrix(matrix(ctx, e.value)),
            "build-fanout" => fanout(ctx, e.value),
            _ => {
                unknown(ctx, e, "batch");
                continue;
            }
        };
        if let Some(prev) = &kind_key {
            ctx.error(
                e.key_node,
                format!("'batch' may define only one of build-list, build-graph, build-matrix, build-fanout: '{}' follows '{prev}'", e.key),
            );
        } else {
            kind_key = Some(e.key.clone());
            b.kind = kind;
            b.at = loc(e.key_node);
        }
    }
    Some(b)
}

fn tasks(ctx: &mut Ctx, node: &SNode, what: &str, graph: bool) -> Vec<BatchTask> {
    let items = match &node.value {
        Node::Null => return Vec::new(),
        Node::Seq(items) => items,
        other => {
            ctx.error(
                node,
                format!(
                    "expected a list of tasks for 'batch.{what}', found {}",
                    other.kind()
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Some(es) = entries(ctx, item, &format!("batch.{what}[]")) else {
            continue;
        };
        let mut t = BatchTask {
            at: loc(item),
            ..BatchTask::default()
        };
        let mut has_id = false;
        for e in &es {
            let w = format!("batch.{what}.{}", e.key);
            match e.key.as_str() {
                "identifier" => {
                    if let Some(id) = text(ctx, e.value, &w) {
                        has_id = !id.is_empty();
                        if has_id && let Err(why) = crate::names::batch_identifier(&id) {
                            ctx.error(
                                e.value,
                                format!("invalid 'batch.{what}' identifier {id:?}: {why}"),
                            );
                        }
                        t.identifier = id;
                    }
                }
                "buildspec" => t.buildspec = text(ctx, e.value, &w),
                "depend-on" if graph => {
                    t.depend_on = string_list(ctx, e.value, &w);
                    t.depend_on_at = match &e.value.value {
                        Node::Seq(items) => items
                            .iter()
                            .filter(|i| matches!(i.value, Node::Scalar { .. }))
                            .map(loc)
                            .collect(),
                        _ => vec![loc(e.value); t.depend_on.len()],
                    };
                }
                "ignore-failure" => t.ignore_failure = yes_no(ctx, e.value, &w),
                "debug-session" => t.debug_session = yes_no(ctx, e.value, &w),
                "env" => t.env = batch_env(ctx, e.value, &w),
                _ => unknown(ctx, e, &format!("batch.{what}")),
            }
        }
        if !has_id {
            ctx.error(
                item,
                format!("a 'batch.{what}' task requires an 'identifier'"),
            );
        }
        out.push(t);
    }
    out
}

fn batch_env(ctx: &mut Ctx, node: &SNode, what: &str) -> BatchEnv {
    let mut env = BatchEnv::default();
    if let Some(es) = entries(ctx, node, what) {
        for e in &es {
            let w = format!("{what}.{}", e.key);
            match e.key.as_str() {
                "compute-type" => env.compute_type = text(ctx, e.value, &w),
                "image" => env.image = text(ctx, e.value, &w),
                "type" => env.env_type = text(ctx, e.value, &w),
                "privileged-mode" => env.privileged_mode = Some(yes_no(ctx, e.value, &w)),
                "variables" => env.variables = named_values(ctx, e.value, &w),
                "fleet" => {
                    let _ = text(ctx, e.value, &w);
                }
                _ => unknown(ctx, e, what),
            }
        }
    }
    env
}

fn matrix(ctx: &mut Ctx, node: &SNode) -> BuildMatrix {
    let mut m = BuildMatrix::default();
    let Some(es) = entries(ctx, node, "batch.build-matrix") else {
        return m;
    };
    for e in &es {
        match e.key.as_str() {
            "static" => {
                if let Some(ses) = entries(ctx, e.value, "batch.build-matrix.static") {
                    for s in &ses {
                        match s.key.as_str() {
                            "ignore-failure" => {
                                m.static_ignore_failure =
                                    yes_no(ctx, s.value, "build-matrix.static.ignore-failure")
                            }
                            "env" => {
                                m.static_env =
                                    batch_env(ctx, s.value, "batch.build-matrix.static.env")
                            }
                            _ => unknown(ctx, s, "batch.build-matrix.static"),
                        }
                    }
                }
            }
            "dynamic" => {
                let Some(des) = entries(ctx, e.value, "batch.build-matrix.dynamic") else {
                    continue;
                };
                for d in &des {
                    match d.key.as_str() {
                        "buildspec" => {
                            m.buildspecs =
                                string_list(ctx, d.value, "batch.build-matrix.dynamic.buildspec")
                        }
                        "env" => {
                            let w = "batch.build-matrix.dynamic.env";
                            let Some(ees) = entries(ctx, d.value, w) else {
                                continue;
                            };
                            for ee in &ees {
                                let ww = format!("{w}.{}", ee.key);
                                match ee.key.as_str() {
                                    "image" => m.images = string_list(ctx, ee.value, &ww),
                                    "compute-type" => {
                                        m.compute_types = string_list(ctx, ee.value, &ww)
                                    }
                                    "variables" => {
                                        if let Some(ves) = entries(ctx, ee.value, &ww) {
                                            for ve in &ves {
                                                check_env_name(ctx, ve.key_node, &ve.key);
                                                let vals = string_list(
                                                    ctx,
                                                    ve.value,
                                                    &format!("{ww}.{}", ve.key),
                                                );
                                                m.variables.push((ve.key.clone(), vals));
                                            }
                                        }
                                    }
                                    _ => unknown(ctx, ee, w),
                                }
                            }
                        }
                        _ => unknown(ctx, d, "batch.build-matrix.dynamic"),
                    }
                }
            }
            _ => unknown(ctx, e, "batch.build-matrix"),
        }
    }
    m
}

fn fanout(ctx: &mut Ctx, node: &SNode) -> BatchKind {
    let mut parallelism = 1;
    let mut ignore_failure = false;
    if let Some(es) = entries(ctx, node, "batch.build-fanout") {
        for e in &es {
            match e.key.as_str() {
                "parallelism" => match text(ctx, e.value, "batch.build-fanout.parallelism")
                    .and_then(|t| t.trim().parse::<u32>().ok())
                {
                    Some(n) if n >= 1 => parallelism = n,
                    _ => ctx.error(
                        e.value,
                        "invalid 'batch.build-fanout.parallelism': expected an integer of at least 1",
                    ),
                },
                "ignore-failure" => {
                    ignore_failure = yes_no(ctx, e.value, "batch.build-fanout.ignore-failure")
                }
                _ => unknown(ctx, e, "batch.build-fanout"),
            }
        }
    }
    BatchKind::BuildFanout {
        parallelism,
        ignore_failure,
    }
}

const PHASE_LIST: &str = "build,install,post_build,pre_build";

fn phases(ctx: &mut Ctx, node: &SNode) -> Phases {
    let mut out = Phases::default();
    let Some(es) = entries(ctx, node, "phases") else {
        return out;
    };
    for e in &es {
        let Some(name) = PhaseName::from_key(&e.key) else {
            ctx.error(
                e.key_node,
                format!(
                    "Invalid buildspec phase name: {}. Expecting: {PHASE_LIST}",
                    e.key
                ),
            );
            continue;
        };
        let p = phase(ctx, name, e.value);
        *out.get_mut(name) = Some(p);
    }
    out
}

fn phase(ctx: &mut Ctx, name: PhaseName, node: &SNode) -> Phase {
    let mut p = Phase::default();
    let section = format!("phases.{}", name.key());
    let Some(es) = entries(ctx, node, &section) else {
        return p;
    };
    for e in &es {
        let what = format!("{section}.{}", e.key);
        match e.key.as_str() {
            "run-as" => p.run_as = text(ctx, e.value, &what),
            "on-failure" => {
                if let Some(t) = text(ctx, e.value, &what) {
                    match on_failure(&t) {
                        Ok(f) => p.on_failure = Some(f),
                        Err(msg) => ctx.error(e.value, msg),
                    }
                }
            }
            "runtime-versions" => {
                if name != PhaseName::Install {
                    ctx.warn(
                        e.key_node,
                        format!(
                            "'runtime-versions' is only used in the install phase, not in '{}'",
                            name.key()
                        ),
                    );
                }
                p.runtime_versions = string_map(ctx, e.value, &what)
                    .into_iter()
                    .map(|(k, v, _)| (k, v))
                    .collect();
            }
            "commands" => p.commands = commands(ctx, e.value),
            "finally" => p.finally = commands(ctx, e.value),
            k if PhaseName::from_key(k).is_some() => ctx.error(
                e.key_node,
                format!(
                    "phase '{k}' is nested under '{}': phases must be direct children of 'phases'",
                    name.key()
                ),
            ),
            _ => unknown(ctx, e, &section),
        }
    }
    p
}

/// `ABORT`, `CONTINUE` and the `RETRY` forms of decision U1 (prefixes case-insensitive).
pub fn on_failure(value: &str) -> Result<OnFailure, String> {
    let v = value.trim();
    let upper = v.to_ascii_uppercase();
    let expected =
        "expected ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>";
    match upper.as_str() {
        "ABORT" => return Ok(OnFailure::Abort),
        "CONTINUE" => return Ok(OnFailure::Continue),
        "RETRY" => {
            return Ok(OnFailure::Retry {
                count: 3,
                pattern: None,
            });
        }
        _ => {}
    }
    if !upper.starts_with("RETRY-") {
        return Err(format!("invalid on-failure value '{v}': {expected}"));
    }
    let rest = &v["RETRY-".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (count, pattern) =
        if digits > 0 && (digits == rest.len() || rest.as_bytes()[digits] == b'-') {
            let count = rest[..digits]
            .parse::<u32>()
            .ok()
            .filter(|c| *c <= 100)
            .ok_or_else(|| {
                format!(
                    "invalid on-failure value '{v}': the retry count {} is not between 0 and 100",
                    &rest[..digits]
                )
            })?;
            let pat = rest.get(digits + 1..).unwrap_or_default();
            (count, (digits < rest.len()).then(|| pat.to_owned()))
        } else {
            (3, Some(rest.to_owned()))
        };
    if let Some(p) = &pattern {
        if p.is_empty() {
            return Err(format!(
                "invalid on-failure value '{v}': empty retry pattern"
            ));
        }
        if let Err(err) = regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
            let first = err.to_string();
            let last = first.lines().last().unwrap_or_default().trim().to_owned();
            return Err(format!(
                "invalid on-failure value '{v}': invalid retry pattern: {last}"
            ));
        }
    }
    Ok(OnFailure::Retry { count, pattern })
}

fn reports(ctx: &mut Ctx, node: &SNode) -> Vec<ReportGroup> {
    let mut out = Vec::new();
    let Some(es) = entries(ctx, node, "reports") else {
        return out;
    };
    for e in &es {
        let section = format!("reports.{}", e.key);
        let Some(ges) = entries(ctx, e.value, &section) else {
            continue;
        };
        let mut g = ReportGroup {
            name: e.key.clone(),
            files: Vec::new(),
            base_directory: None,
            discard_paths: false,
            file_format: ReportFormat::JunitXml,
        };
        let mut has_files = false;
        for ge in &ges {
            let what = format!("{section}.{}", ge.key);
            match ge.key.as_str() {
                "files" => {
                    has_files = true;
                    g.files = string_list(ctx, ge.value, &what);
                }
                "base-directory" => g.base_directory = text(ctx, ge.value, &what),
                "discard-paths" => g.discard_paths = yes_no(ctx, ge.value, &what),
                "file-format" => {
                    if let Some(t) = text(ctx, ge.value, &what) {
                        match ReportFormat::parse(t.trim()) {
                            Some(f) => g.file_format = f,
                            None => {
                                let allowed: Vec<&str> =
                                    ReportFormat::ALL.iter().map(|f| f.as_str()).collect();
                                ctx.error(
                                    ge.value,
                                    format!(
                                        "invalid file-format '{t}' in report group '{}': expected one of {}",
                                        e.key,
                                        allowed.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                }
                _ => unknown(ctx, ge, &section),
            }
        }
        if !has_files {
            ctx.error(
                e.key_node,
                format!("report group '{}' requires 'files'", e.key),
            );
        }
        out.push(g);
    }
    out
}

fn artifacts(ctx: &mut Ctx, key: &SNode, node: &SNode, v: Version) -> Option<Artifacts> {
    let primary = artifact_set(ctx, key, node, "artifacts", v, true)?;
    let mut secondary = Vec::new();
    if let Some(es) = entries(ctx, node, "artifacts") {
        for e in es.iter().filter(|e| e.key == "secondary-artifacts") {
            let Some(ses) = entries(ctx, e.value, "artifacts.secondary-artifacts") else {
                continue;
            };
            for s in &ses {
                if let Err(why) = crate::names::artifact_identifier(&s.key) {
                    ctx.error(
                        s.key_node,
                        format!("invalid secondary artifact identifier {:?}: {why}", s.key),
                    );
                }
                let section = format!("artifacts.secondary-artifacts.{}", s.key);
                if let Some(set) = artifact_set(ctx, s.key_node, s.value, &section, v, false) {
                    secondary.push((s.key.clone(), set));
                }
            }
        }
    }
    Some(Artifacts { primary, secondary })
}

fn artifact_set(
    ctx: &mut Ctx,
    key: &SNode,
    node: &SNode,
    section: &str,
    v: Version,
    primary: bool,
) -> Option<ArtifactSet> {
    let es = entries(ctx, node, section)?;
    let mut set = ArtifactSet::default();
    let mut has_files = false;
    for e in &es {
        let what = format!("{section}.{}", e.key);
        match e.key.as_str() {
            "files" => {
                has_files = true;
                set.files = string_list(ctx, e.value, &what);
            }
            "name" => set.name = text(ctx, e.value, &what),
            "discard-paths" => set.discard_paths = yes_no(ctx, e.value, &what),
            "base-directory" => set.base_directory = text(ctx, e.value, &what),
            "exclude-paths" => set.exclude_paths = string_list(ctx, e.value, &what),
            "enable-symlinks" => set.enable_symlinks = yes_no(ctx, e.value, &what),
            "s3-prefix" => set.s3_prefix = text(ctx, e.value, &what),
            "secondary-artifacts" if primary => {}
            "type" => {
                if v == Version::V0_2 {
                    ctx.warn(
                        e.key_node,
                        format!("'{section}.type' is deprecated in buildspec 0.2 and ignored"),
                    );
                }
            }
            _ => unknown(ctx, e, section),
        }
    }
    if !has_files {
        ctx.error(key, format!("'{section}' requires 'files'"));
    }
    Some(set)
}

fn cache(ctx: &mut Ctx, key: &SNode, node: &SNode) -> Option<Cache> {
    let es = entries(ctx, node, "cache")?;
    let mut c = Cache::default();
    let mut has_paths = false;
    for e in &es {
        let what = format!("cache.{}", e.key);
        match e.key.as_str() {
            "paths" => {
                has_paths = true;
                c.paths = string_list(ctx, e.value, &what);
            }
            "key" => c.key = text(ctx, e.value, &what),
            "fallback-keys" => {
                c.fallback_keys = string_list(ctx, e.value, &what);
                if c.fallback_keys.len() > 5 {
                    ctx.warn(
                        e.value,
                        "'cache.fallback-keys' takes at most 5 keys; CodeBuild ignores the rest",
                    );
                }
            }
            "action" => {
                if let Some(t) = text(ctx, e.value, &what) {
                    match t.trim().to_ascii_lowercase().as_str() {
                        "restore" => c.action = Some(CacheAction::Restore),
                        "save" => c.action = Some(CacheAction::Save),
                        _ => ctx.error(
                            e.value,
                            format!("invalid cache action '{t}': expected restore or save"),
                        ),
                    }
                }
            }
            _ => unknown(ctx, e, "cache"),
        }
    }
    if !has_paths {
        ctx.error(key, "'cache' requires 'paths'");
    }
    Some(c)
}
