//! `localbuild reproduce`: run a cloud build again on this machine from its record.
//!
//! Reads a BatchGetBuilds answer (a file or `-`), lets [`super::cloud`] (pure) read the build
//! from it, maps its sources onto this machine the way `serve` does (`localbuild_sources::resolve`
//! under `--git-root` and the local S3 store; `--source DIR` for the user's own clone, built at
//! the record's commit in a clone the build owns, so the working copy is never touched), and
//! runs it with `run`'s machinery ([`super::run::run_with`]: every `run` flag applies). At the
//! end it prints the cloud's phases next to the local ones and a verdict, and keeps the cloud
//! build's ARN in the history (document kind `reproduce`, keyed by the local build id).
//! `--project` instead creates a project of a BatchGetProjects answer in a running `serve`.

use super::cloud::{self, Answer, CloudBuild, CloudSource, Origin, Row, Side, Verdict};
use super::error::CliError;
use super::{OutputFormat, ReproduceArgs, exit};
use localbuild_engine::{BuildRequest, Outcome, Source};
use localbuild_sources::{Resolved, Roots, SourceError};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The document kind that links a reproduced build to the cloud build it repeats.
pub const DOC_KIND: &str = "reproduce";

/// A record or flags that cannot be reproduced: a usage error (exit 2), said by the CLI's one
/// error path.
fn fail(message: impl std::fmt::Display) -> CliError {
    CliError::Usage(message.to_string())
}

/// The record's text and the name to show in messages (`-` for standard input).
fn read_input(file: &Path) -> Result<(String, String), String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the record from standard input: {e}"))?;
        return Ok(("-".to_owned(), text));
    }
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the record {shown}: {e}"))?;
    Ok((shown, text))
}

pub fn run(args: &ReproduceArgs) -> Result<u8, CliError> {
    let (origin, text) = read_input(&args.file).map_err(fail)?;
    let answer = cloud::parse(&origin, &text).map_err(fail)?;
    if args.project_record {
        return create_project(args, &origin, &answer);
    }
    let cloud = cloud::select(&origin, &answer, Answer::Builds, args.build.as_deref())
        .and_then(cloud::read_build)
        .map_err(|e| fail(format!("{origin}: {e}")))?;
    let flags = &args.run;
    for (given, flag) in [
        (flags.batch, "--batch"),
        (flags.source_version.is_some(), "--source-version"),
        (flags.mount, "--mount"),
    ] {
        if given {
            return Err(fail(format!(
                "{flag} does not apply to reproduce: the record says what to build"
            )));
        }
    }
    let (primary, user_secondary) = super::run::parse_sources(&flags.source).map_err(fail)?;
    let user_primary = (flags.source.len() > user_secondary.len()).then_some(primary);
    let roots = Roots {
        git_root: args
            .git_root
            .clone()
            .unwrap_or_else(|| super::run::store_root().join("git")),
        s3_root: super::run::store_root().join("s3"),
    };
    // Folders the build reads secondary sources from (checkouts, extracted zips); removed
    // when the command ends.
    let mut scratch: Vec<tempfile::TempDir> = vec![];
    let adjust = |request: &mut BuildRequest| -> Result<(), CliError> {
        let (values, mask) = cloud::resolve_variables(&cloud.variables, &request.secrets)
            .map_err(|e| fail(format!("{origin}: {e}")))?;
        // The record's variables first: the config files' and --env win.
        let mut env = values;
        env.append(&mut request.env_overrides);
        request.env_overrides = env;
        request.mask.extend(mask);
        if flags.project.is_none() {
            request.project = cloud.project.clone();
        }
        request.initiator = format!("reproduce/{}", cloud.id);
        if let Some(region) = &cloud.region {
            request.region = region.clone();
        }
        if flags.image.is_none() {
            request.image = cloud.image.clone();
        }
        request.privileged |= cloud.privileged;
        if flags.timeout.is_none()
            && let Some(m) = cloud.timeout_minutes
        {
            request.timeout = std::time::Duration::from_secs(m.saturating_mul(60));
        }
        request.compute_type = cloud.compute_type.clone();
        if flags.buildspec.is_none() {
            request.buildspec = cloud.buildspec.clone();
        }
        request.source =
            primary_source(&cloud.source, user_primary.as_deref(), &roots).map_err(fail)?;
        let mut secondary = vec![];
        for s in &cloud.secondary {
            let id = s.identifier.clone().unwrap_or_default();
            let given = user_secondary
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, d)| d.as_path());
            let dir = secondary_source(s, given, &roots, &mut scratch).map_err(fail)?;
            secondary.push((id, dir));
        }
        for (id, dir) in &user_secondary {
            if !secondary.iter().any(|(i, _)| i == id) {
                secondary.push((id.clone(), dir.clone()));
            }
        }
        request.secondary_sources = secondary;
        if !flags.quiet {
            eprintln!("{}", announce(&cloud, &request.source));
        }
        Ok(())
    };
    let output = flags.output;
    let after = |outcome: &Outcome| {
        let (rows, verdict) = cloud::compare(&cloud, &outcome.build);
        let text = side_by_side(&cloud, &rows, &verdict);
        match output {
            // A reader that left is the run's business: it has stopped the build already.
            OutputFormat::Text => drop(super::out::print(&text)),
            OutputFormat::Json => eprint!("{text}"),
        }
        keep_link(&cloud, &outcome.build.id, &verdict);
    };
    super::run::run_with(flags, adjust, after)
}

/// The line that says what is being reproduced from where.
fn announce(cloud: &CloudBuild, source: &Source) -> String {
    let from = match source {
        Source::Git { repo, version, .. } => format!(
            " at {} from {}",
            version.as_deref().unwrap_or("HEAD"),
            repo.display()
        ),
        Source::Zip { file, .. } => format!(" from {}", file.display()),
        Source::Dir(d) | Source::Pipeline { dir: d, .. } => format!(" from {}", d.display()),
        Source::Unresolved { location, .. } => format!(" from {location}"),
        Source::None => String::new(),
    };
    format!(
        "Reproducing cloud build {} ({}){from}",
        cloud.id, cloud.status
    )
}

/// The primary source on this machine.
fn primary_source(s: &CloudSource, user: Option<&Path>, roots: &Roots) -> Result<Source, String> {
    match &s.origin {
        Origin::None => Ok(Source::None),
        Origin::Pipeline => match user {
            Some(dir) => Ok(Source::Dir(dir.to_owned())),
            None => Err(
                "`source.type` is CODEPIPELINE: the build's input came from a pipeline artifact, which the record does not hold; give the folder with that input with --source DIR (e.g. a checkout of the commit the pipeline built)"
                    .to_owned(),
            ),
        },
        Origin::S3 => {
            if let Some(dir) = user {
                return Ok(Source::Dir(dir.to_owned()));
            }
            if let Some(v) = &s.version {
                eprintln!(
                    "note: the cloud built S3 object version {v}; the local S3 store keeps one version of {}",
                    s.location
                );
            }
            match localbuild_sources::resolve(localbuild_sources::SourceKind::S3, &s.location, roots)
            {
                Ok(Resolved::Zip(file)) => Ok(Source::Zip {
                    file,
                    location: s.location.clone(),
                }),
                Ok(Resolved::Dir(d)) => Ok(Source::Dir(d)),
                Ok(_) => Err(format!("`source.location` {} is not an S3 object", s.location)),
                Err(e) => Err(format!("`source.location`: {e}")),
            }
        }
        Origin::Git(kind) => {
            let repo = match user {
                Some(dir) => dir.to_owned(),
                None => match localbuild_sources::resolve(*kind, &s.location, roots) {
                    Ok(Resolved::Git { repo }) => repo,
                    Ok(_) => {
                        return Err(format!(
                            "`source.location` {} is not a git repository here",
                            s.location
                        ));
                    }
                    Err(e) => {
                        return Err(format!(
                            "`source.location`: {e}; or give your clone with --source DIR"
                        ));
                    }
                },
            };
            let commit = s.version.clone().unwrap_or_default();
            check_commit(&repo, &commit, "resolvedSourceVersion")?;
            Ok(Source::Git {
                repo,
                version: Some(commit),
                depth: s.depth,
                kind: s.kind.clone(),
                location: s.location.clone(),
            })
        }
    }
}

/// The version must be in the local repository (it is checked out later, by the build).
fn check_commit(repo: &Path, version: &str, field: &str) -> Result<(), String> {
    match localbuild_sources::resolve_version(repo, Some(version)) {
        Ok(_) => Ok(()),
        Err(SourceError::VersionNotFound { .. }) => Err(format!(
            "`{field}` {version} is not in the local repository {}: fetch it there (`git -C {} fetch origin`), or give a clone that has it with --source DIR",
            repo.display(),
            repo.display()
        )),
        Err(SourceError::RepositoryNotFound(p)) => Err(format!(
            "{} is not a git repository; give a clone of the build's repository with --source DIR",
            p.display()
        )),
        Err(e) => Err(format!("`{field}` {version}: {e}")),
    }
}

/// A secondary source as a folder of this machine: a checkout of its version, the S3
/// folder or the extracted zip, or the folder given with `-s ID:DIR` (checked out at the
/// record's version when it is a git source).
fn secondary_source(
    s: &CloudSource,
    given: Option<&Path>,
    roots: &Roots,
    scratch: &mut Vec<tempfile::TempDir>,
) -> Result<PathBuf, String> {
    let id = s.identifier.as_deref().unwrap_or_default();
    let field = format!("secondarySources[{id}]");
    let mut temp = || -> Result<PathBuf, String> {
        // Under $LOCALBUILD_HOME/tmp, never the system's /tmp.
        let tmp = super::run::store_root().join("tmp");
        let dir = std::fs::create_dir_all(&tmp)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix("reproduce-")
                    .tempdir_in(&tmp)
            })
            .map_err(|e| format!("cannot make a folder for the source {id}: {e}"))?;
        let path = dir.path().to_owned();
        scratch.push(dir);
        Ok(path)
    };
    let repo = match (&s.origin, given) {
        (Origin::Git(_), Some(dir)) => dir.to_owned(),
        (_, Some(dir)) => return Ok(dir.to_owned()),
        (Origin::Pipeline, None) => {
            return Err(format!(
                "`{field}.type` is CODEPIPELINE: the pipeline artifact is not in the record; give its folder with -s {id}:DIR"
            ));
        }
        (Origin::None, None) => return temp(),
        (Origin::S3, None) => {
            return match localbuild_sources::resolve(
                localbuild_sources::SourceKind::S3,
                &s.location,
                roots,
            ) {
                Ok(Resolved::Dir(d)) => Ok(d),
                Ok(Resolved::Zip(file)) => {
                    let dest = temp()?;
                    unzip(&file, &dest).map_err(|e| {
                        format!("`{field}.location`: cannot extract {}: {e}", file.display())
                    })?;
                    Ok(dest)
                }
                Ok(_) => Err(format!(
                    "`{field}.location` {} is not an S3 object",
                    s.location
                )),
                Err(e) => Err(format!("`{field}.location`: {e}")),
            };
        }
        (Origin::Git(kind), None) => match localbuild_sources::resolve(*kind, &s.location, roots) {
            Ok(Resolved::Git { repo }) => repo,
            Ok(_) => {
                return Err(format!(
                    "`{field}.location` {} is not a git repository here",
                    s.location
                ));
            }
            Err(e) => {
                return Err(format!(
                    "`{field}.location`: {e}; or give a clone with -s {id}:DIR"
                ));
            }
        },
    };
    if s.version.is_none() {
        eprintln!(
            "note: the record names no version of secondary source {id} (secondarySourceVersions): building its default branch"
        );
    }
    if let Some(v) = &s.version {
        check_commit(&repo, v, &format!("secondarySourceVersions[{id}]"))?;
    }
    let dest = temp()?;
    localbuild_sources::checkout(&repo, s.version.as_deref(), s.depth, &dest)
        .map_err(|e| format!("secondary source {id}: {e}"))?;
    Ok(dest)
}

/// Extract a zip (an S3 object) into `dest`; names with `..` or absolute paths are refused.
fn unzip(file: &Path, dest: &Path) -> Result<(), String> {
    let f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(f).map_err(|e| e.to_string())?;
    archive.extract(dest).map_err(|e| e.to_string())
}

fn duration(d: Option<f64>) -> String {
    match d {
        None => String::new(),
        Some(d) if d.fract() == 0.0 => format!("{d:.0}s"),
        Some(d) => format!("{d:.1}s"),
    }
}

/// One side of a row: `FAILED 48s COMMAND_EXECUTION_ERROR: Error while executing…`, at most
/// `width` characters (`None`: all of it).
fn cell(side: Option<&Side>, width: Option<usize>) -> String {
    let Some(s) = side else {
        return "-".to_owned();
    };
    let mut text = format!("{:<9} {:>6}", s.status, duration(s.duration));
    if !s.code.is_empty() || !s.message.is_empty() {
        text.push(' ');
        text.push_str(&s.code);
        if !s.message.is_empty() {
            text.push_str(": ");
            text.push_str(&s.message);
        }
    }
    if let Some(width) = width
        && text.chars().count() > width
    {
        text = text
            .chars()
            .take(width.saturating_sub(1))
            .collect::<String>()
            + "…";
    }
    text
}

/// The cloud's phases next to the local build's, then the verdict.
fn side_by_side(cloud: &CloudBuild, rows: &[Row], verdict: &Verdict) -> String {
    const WIDTH: usize = 64;
    let mut s = format!("\nCloud build {} next to the local build:\n", cloud.id);
    s.push_str(&format!(
        "{:<17} {:<WIDTH$} | {}\n",
        "PHASE", "CLOUD", "LOCAL"
    ));
    for r in rows {
        s.push_str(&format!(
            "{:<17} {:<WIDTH$} | {}\n",
            r.phase,
            cell(r.cloud.as_ref(), Some(WIDTH)),
            cell(r.local.as_ref(), None)
        ));
    }
    match verdict {
        Verdict::Reproduced => s.push_str(&format!(
            "Verdict: reproduced (the cloud build was {}, so is the local one)\n",
            cloud.status
        )),
        Verdict::DiffersFrom(phase) => {
            let row = rows.iter().find(|r| &r.phase == phase);
            let show = |side: Option<&Side>| {
                side.map_or("not run".to_owned(), |s| {
                    format!("{} {}", s.status, s.code).trim_end().to_owned()
                })
            };
            match row {
                Some(r) => s.push_str(&format!(
                    "Verdict: differs from phase {phase} on (cloud: {}, local: {})\n",
                    show(r.cloud.as_ref()),
                    show(r.local.as_ref())
                )),
                None => s.push_str(&format!("Verdict: differs from phase {phase} on\n")),
            }
        }
    }
    s
}

/// Keep which cloud build the local one reproduces (for `localbuild builds` and the console).
fn keep_link(cloud: &CloudBuild, local_id: &str, verdict: &Verdict) {
    let doc = json!({
        "cloudBuildId": cloud.id,
        "cloudBuildArn": cloud.arn,
        "cloudBuildStatus": cloud.status,
        "verdict": match verdict {
            Verdict::Reproduced => "reproduced".to_owned(),
            Verdict::DiffersFrom(p) => format!("differs from {p}"),
        },
    });
    let kept = localbuild_store::HistoryStore::open(super::run::store_root())
        .map_err(|e| e.to_string())
        .and_then(|h| {
            h.db()
                .put_doc(DOC_KIND, local_id, &doc.to_string())
                .map_err(|e| e.to_string())
        });
    if let Err(e) = kept {
        eprintln!("warning: the link to the cloud build could not be kept: {e}");
    }
}

/// `--project`: CreateProject in the running `serve` with the record's settings.
fn create_project(
    args: &ReproduceArgs,
    origin: &str,
    answer: &serde_json::Value,
) -> Result<u8, CliError> {
    let input = cloud::select(origin, answer, Answer::Projects, args.build.as_deref())
        .and_then(cloud::project_input)
        .map_err(|e| fail(format!("{origin}: {e}")))?;
    let endpoint = super::api::Endpoint::new(args.server.endpoint_url.as_deref()).map_err(fail)?;
    let answer = endpoint.call("CodeBuild_20161006.CreateProject", &input)?;
    let name = answer["project"]["name"].as_str().unwrap_or_default();
    super::out::print(format!(
        "Created project {name} ({}); start it with `aws codebuild start-build --project-name {name}`\n",
        answer["project"]["arn"].as_str().unwrap_or_default()
    ))?;
    Ok(exit::SUCCESS)
}
