//! `localbuild plan`: find the buildspec as CodeBuild does, validate it, print the dry-run plan.
//!
//! `-b FILE` wins (relative to the current directory); otherwise `buildspec.yml` in the source
//! directory. An invalid buildspec prints the same diagnostics as `validate` and exits 1.

use super::PlanArgs;
use super::error::CliError;
use super::exit;
use localbuild_buildspec as buildspec;
use localbuild_buildspec::plan::{Plan, PlanArtifactSet, PlanOnFailure, PlanPhase, plan};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub fn run(args: &PlanArgs) -> Result<u8, CliError> {
    let p = load(args.buildspec.as_deref(), &args.source)?;
    let text = if args.json {
        let json = serde_json::to_string_pretty(&p)
            .map_err(|e| CliError::Failed(format!("cannot serialize the plan: {e}")))?;
        json + "\n"
    } else {
        render(&p)
    };
    super::out::print(text)?;
    Ok(exit::SUCCESS)
}

/// Find, read and validate the buildspec (`-b FILE`, else `buildspec.yml` in `source`) and make
/// its plan, printing its warnings (also used by `list`).
pub fn load(buildspec: Option<&Path>, source: &Path) -> Result<Plan, CliError> {
    let path: PathBuf = match buildspec {
        Some(b) => b.to_path_buf(),
        None => source.join("buildspec.yml"),
    };
    let name = path.display().to_string();
    let in_file = |message: String| CliError::InFile {
        file: name.clone(),
        message,
    };
    let source = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            in_file("buildspec not found (YAML file does not exist)".into())
        }
        _ => in_file(e.to_string()),
    })?;
    let parsed = match buildspec::parse(&source) {
        Ok(p) => p,
        Err(invalid) => {
            let mut all: Vec<_> = invalid.errors.into_iter().chain(invalid.warnings).collect();
            all.sort_by_key(|d| (d.line, d.column));
            return Err(CliError::Buildspec {
                name,
                text: source,
                diagnostics: all,
            });
        }
    };
    super::validate::print_all(&name, &source, &parsed.warnings);
    // The batch's builds come from the same expansion `run --batch` uses.
    if let Some(batch) = &parsed.buildspec.batch
        && let Err(d) = buildspec::batch::expand(batch)
    {
        return Err(CliError::Buildspec {
            name,
            text: source,
            diagnostics: vec![d],
        });
    }
    Ok(plan(&parsed.buildspec, &name))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Indent continuation lines of a multi-line command under its first line.
fn numbered(out: &mut String, items: &[String], indent: &str) {
    for (i, c) in items.iter().enumerate() {
        let label = format!("{}. ", i + 1);
        let cont = format!("\n{indent}{}", " ".repeat(label.len()));
        let body = c.trim_end_matches('\n').replace('\n', &cont);
        let _ = writeln!(out, "{indent}{label}{body}");
    }
}

fn on_failure(f: &Option<PlanOnFailure>) -> String {
    match f {
        None => "default".to_owned(),
        Some(PlanOnFailure::Abort) => "ABORT".to_owned(),
        Some(PlanOnFailure::Continue) => "CONTINUE".to_owned(),
        Some(PlanOnFailure::Retry { count, pattern }) => match pattern {
            None => format!("RETRY (up to {count} times, on any error)"),
            Some(p) => format!("RETRY (up to {count} times, when the error matches /{p}/)"),
        },
    }
}

fn phase(out: &mut String, p: &PlanPhase) {
    if !p.defined {
        let _ = writeln!(out, "  {} (not defined: no commands)", p.name);
        return;
    }
    let _ = writeln!(out, "  {}", p.name);
    let _ = writeln!(out, "    run-as: {}", p.run_as.as_deref().unwrap_or("root"));
    let _ = writeln!(out, "    on-failure: {}", on_failure(&p.on_failure));
    if !p.runtime_versions.is_empty() {
        let rv: Vec<String> = p
            .runtime_versions
            .iter()
            .map(|r| format!("{} {}", r.runtime, r.version))
            .collect();
        let _ = writeln!(out, "    runtime-versions: {}", rv.join(", "));
    }
    if p.commands.is_empty() {
        let _ = writeln!(out, "    commands: (none)");
    } else {
        let _ = writeln!(out, "    commands:");
        numbered(out, &p.commands, "      ");
    }
    if !p.finally.is_empty() {
        let _ = writeln!(out, "    finally:");
        numbered(out, &p.finally, "      ");
    }
}

fn artifact(out: &mut String, a: &PlanArtifactSet) {
    let title = match &a.identifier {
        None => "  primary".to_owned(),
        Some(id) => format!("  secondary {id}"),
    };
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "    files: {}", a.files.join(", "));
    if let Some(n) = &a.name {
        let _ = writeln!(out, "    name: {n}");
    }
    if let Some(d) = &a.base_directory {
        let _ = writeln!(out, "    base-directory: {d}");
    }
    if a.discard_paths {
        let _ = writeln!(out, "    discard-paths: yes");
    }
    if !a.exclude_paths.is_empty() {
        let _ = writeln!(out, "    exclude-paths: {}", a.exclude_paths.join(", "));
    }
    if a.enable_symlinks {
        let _ = writeln!(out, "    enable-symlinks: yes");
    }
    if let Some(s) = &a.s3_prefix {
        let _ = writeln!(out, "    s3-prefix: {s}");
    }
}

/// The human-readable plan.
pub fn render(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Buildspec: {} (version {})", p.buildspec, p.version);
    let _ = writeln!(
        out,
        "Shell: {}",
        p.shell.as_deref().unwrap_or("/bin/sh (image default)")
    );
    let _ = writeln!(out, "Run as: {}", p.run_as.as_deref().unwrap_or("root"));

    let _ = writeln!(out, "\nEnvironment:");
    let e = &p.env;
    if e.variables.is_empty() && e.parameter_store.is_empty() && e.secrets_manager.is_empty() {
        let _ = writeln!(out, "  (no variables)");
    }
    for v in &e.variables {
        let _ = writeln!(out, "  {}={}", v.name, v.value);
    }
    for v in &e.parameter_store {
        let _ = writeln!(out, "  {} <- parameter-store {}", v.name, v.parameter);
    }
    for v in &e.secrets_manager {
        let _ = writeln!(out, "  {} <- secrets-manager {}", v.name, v.reference);
    }
    if !e.exported_variables.is_empty() {
        let _ = writeln!(out, "  exported: {}", e.exported_variables.join(", "));
    }
    if e.git_credential_helper {
        let _ = writeln!(out, "  git-credential-helper: yes");
    }

    let _ = writeln!(out, "\nPhases:");
    for ph in &p.phases {
        phase(&mut out, ph);
    }

    let _ = writeln!(out, "\nReports:");
    if p.reports.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for r in &p.reports {
        let _ = writeln!(out, "  {} ({})", r.name, r.file_format);
        let _ = writeln!(out, "    files: {}", r.files.join(", "));
        if let Some(d) = &r.base_directory {
            let _ = writeln!(out, "    base-directory: {d}");
        }
        if r.discard_paths {
            let _ = writeln!(out, "    discard-paths: yes");
        }
    }

    let _ = writeln!(out, "\nArtifacts:");
    match &p.artifacts {
        None => {
            let _ = writeln!(out, "  (none)");
        }
        Some(a) => {
            artifact(&mut out, &a.primary);
            for s in &a.secondary {
                artifact(&mut out, s);
            }
        }
    }

    let _ = writeln!(out, "\nCache:");
    match &p.cache {
        None => {
            let _ = writeln!(out, "  (none)");
        }
        Some(c) => {
            let _ = writeln!(out, "  paths: {}", c.paths.join(", "));
            if let Some(k) = &c.key {
                let _ = writeln!(out, "  key: {k}");
            }
            if !c.fallback_keys.is_empty() {
                let _ = writeln!(out, "  fallback-keys: {}", c.fallback_keys.join(", "));
            }
            let _ = writeln!(out, "  action: {}", c.action);
        }
    }

    if p.proxy.upload_artifacts || p.proxy.logs {
        let _ = writeln!(
            out,
            "\nProxy: upload-artifacts {}, logs {}",
            yes(p.proxy.upload_artifacts),
            yes(p.proxy.logs)
        );
    }

    if let Some(b) = &p.batch {
        let _ = writeln!(
            out,
            "\nBatch: {} (fast-fail {}), {} task(s)",
            b.kind,
            yes(b.fast_fail),
            b.tasks.len()
        );
        for n in &b.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for t in &b.tasks {
            let mut line = format!("  {}", t.identifier);
            if let Some(bs) = &t.buildspec {
                let _ = write!(line, " buildspec={bs}");
            }
            if let Some(i) = &t.image {
                let _ = write!(line, " image={i}");
            }
            if let Some(c) = &t.compute_type {
                let _ = write!(line, " compute-type={c}");
            }
            if !t.depend_on.is_empty() {
                let _ = write!(line, " depend-on={}", t.depend_on.join(","));
            }
            if t.ignore_failure {
                line.push_str(" ignore-failure");
            }
            for v in &t.variables {
                let _ = write!(line, " {}={}", v.name, v.value);
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
