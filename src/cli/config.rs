//! Defaults for `run` flags from config files, like act's `.actrc`, and `localbuild config`.
//!
//! Two TOML files, both optional: the user's `$XDG_CONFIG_HOME/localbuild/config.toml` (else
//! `~/.config/localbuild/config.toml`) and the project's `.localbuild.toml` in the primary
//! source directory. Precedence, lowest first: built-in default < user config < project config
//! < env file (for variables) < command-line flag. Relative paths in a file are relative to
//! the folder holding it; `~/` is the home folder.
//!
//! A file is checked whole before anything runs: an unknown key or a value of the wrong type is
//! an error located by the `toml` crate's spans, rendered like a buildspec diagnostic
//! (`FILE:LINE:COLUMN: error: …`, the line and a caret) and exit 2.

use super::error::CliError;
use super::{ConfigArgs, RunArgs, exit};
use localbuild_buildspec::{Diagnostic, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The project config's file name, in the primary source directory.
pub const PROJECT_FILE: &str = ".localbuild.toml";

/// The keys a config file may hold (kebab-case, as the long flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    image: Option<Spanned<String>>,
    buildspec: Option<Spanned<PathBuf>>,
    env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    env_file: Option<Spanned<PathBuf>>,
    secrets_file: Option<Spanned<PathBuf>>,
    privileged: Option<Spanned<bool>>,
    /// User config only: a repository's file cannot give its builds the host's daemon.
    docker_host_access: Option<Spanned<bool>>,
    mount: Option<Spanned<bool>>,
    artifacts: Option<Spanned<PathBuf>>,
    reports: Option<Spanned<PathBuf>>,
    zip: Option<Spanned<bool>>,
    no_cache: Option<Spanned<bool>>,
    timeout: Option<Spanned<u64>>,
    account_id: Option<Spanned<String>>,
    project: Option<Spanned<String>>,
    aws_config: Option<Spanned<bool>>,
    profile: Option<Spanned<String>>,
    all_files: Option<Spanned<bool>>,
    quiet: Option<Spanned<bool>>,
}

/// One config file, read and checked.
struct Layer {
    path: PathBuf,
    text: String,
    settings: FileSettings,
}

impl Layer {
    fn origin<T>(&self, s: &Spanned<T>) -> Origin {
        Origin::File {
            path: self.path.clone(),
            line: line_col(&self.text, s.span().start).0,
        }
    }

    /// A path value, relative to the file's folder.
    fn path(&self, p: &Path) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        expand_home(p).unwrap_or_else(|| base.join(p))
    }
}

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    EnvFile(PathBuf),
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::EnvFile(p) => write!(f, "env file {}", p.display()),
            Origin::Flag => f.write_str("command line"),
        }
    }
}

/// One effective setting, for `localbuild config`.
#[derive(Debug, Clone)]
pub struct Shown {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// `run`'s arguments with the config files applied.
#[derive(Debug)]
pub struct Resolved {
    /// Every scalar setting filled in from flag, project, user or default.
    pub args: RunArgs,
    /// Variables from the config files' `env` tables (user, then project) and the env file, in
    /// precedence order (a later one wins); `--env` comes after them.
    pub env: Vec<(String, String)>,
    /// What `localbuild config` prints.
    pub shown: Vec<Shown>,
    /// The files looked for, and whether each was there.
    pub files: Vec<(PathBuf, bool)>,
}

/// A config or env file problem; rendered by [`ConfigError::render`], exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A located problem in a TOML file.
    #[error("{}: {message}", path.display())]
    Located {
        path: PathBuf,
        text: String,
        span: Range<usize>,
        message: String,
    },
    /// Anything else (an unreadable file, a bad env file line).
    #[error("{0}")]
    Plain(String),
}

impl ConfigError {
    /// What stderr shows: a located problem as a buildspec diagnostic (the line and a caret),
    /// else `error: …`.
    pub fn render(&self) -> String {
        match self {
            ConfigError::Located {
                path,
                text,
                span,
                message,
            } => {
                let (line, column) = line_col(text, span.start);
                let d = Diagnostic {
                    severity: Severity::Error,
                    line,
                    column,
                    message: message.clone(),
                };
                d.render(&path.display().to_string(), text.as_bytes())
            }
            ConfigError::Plain(m) => format!("error: {m}\n"),
        }
    }
}

/// The user config file: `$XDG_CONFIG_HOME/localbuild/config.toml`, else
/// `~/.config/localbuild/config.toml`.
pub fn user_file() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("localbuild/config.toml"));
    }
    home().map(|h| h.join(".config/localbuild/config.toml"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand_home(p: &Path) -> Option<PathBuf> {
    let rest = p.strip_prefix("~").ok()?;
    Some(home()?.join(rest))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Read and check one config file; `Ok(None)` when it does not exist.
fn load(path: &Path) -> Result<Option<Layer>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Plain(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let located = |span: Range<usize>, message: String| ConfigError::Located {
        path: path.to_owned(),
        text: text.clone(),
        span,
        message,
    };
    let settings: FileSettings = toml::from_str(&text).map_err(|e| {
        let message = e
            .message()
            .trim()
            .replace("expected u64", "expected a whole number");
        located(e.span().unwrap_or(0..0), message)
    })?;
    for (k, _) in settings.env.iter().flatten() {
        if let Err(m) = localbuild_engine::secrets::check_name(k.get_ref()) {
            return Err(located(k.span(), format!("env: {m}")));
        }
    }
    if let Some(t) = &settings.timeout
        && *t.get_ref() == 0
    {
        return Err(located(
            t.span(),
            "timeout: must be at least 1 minute".into(),
        ));
    }
    if let Some(a) = &settings.account_id
        && let Err(e) = localbuild_engine::check_account_id(a.get_ref())
    {
        return Err(located(a.span(), format!("account-id: {e}")));
    }
    Ok(Some(Layer {
        path: path.to_owned(),
        text,
        settings,
    }))
}

/// The user config's `account-id` (checked), for `serve` (which reads no project file).
pub fn user_account_id() -> Result<Option<String>, ConfigError> {
    let Some(path) = user_file() else {
        return Ok(None);
    };
    Ok(load(&path)?.and_then(|l| l.settings.account_id.map(Spanned::into_inner)))
}

/// Apply the user and project config files (the latter in `source_dir`) to `args`.
pub fn resolve(args: &RunArgs, source_dir: &Path) -> Result<Resolved, ConfigError> {
    let user_path = user_file();
    let project_path = source_dir.join(PROJECT_FILE);
    let user = match &user_path {
        Some(p) => load(p)?,
        None => None,
    };
    let project = load(&project_path)?;
    let mut files = vec![];
    if let Some(p) = &user_path {
        files.push((p.clone(), user.is_some()));
    }
    files.push((project_path, project.is_some()));
    // Highest precedence first.
    let layers: Vec<&Layer> = project.iter().chain(user.iter()).collect();

    let mut out = args.clone();
    let mut shown = vec![];

    // A value: the flag's, else the first layer that sets it, else the default.
    macro_rules! pick {
        ($key:literal, $flag:expr, $field:ident, $conv:expr, $default:expr, $show:expr) => {{
            let flag = $flag;
            let (value, origin) = if let Some(v) = flag {
                (Some(v), Origin::Flag)
            } else if let Some((layer, s)) = layers
                .iter()
                .find_map(|l| l.settings.$field.as_ref().map(|s| (*l, s)))
            {
                #[allow(clippy::redundant_closure_call)]
                (Some(($conv)(layer, s.get_ref())), layer.origin(s))
            } else {
                ($default, Origin::Default)
            };
            #[allow(clippy::redundant_closure_call)]
            let text = ($show)(&value);
            shown.push(Shown {
                key: $key.to_owned(),
                value: text,
                origin,
            });
            value
        }};
    }
    let string = |_: &Layer, v: &String| v.clone();
    let path = |l: &Layer, v: &PathBuf| l.path(v);
    let boolean = |_: &Layer, v: &bool| *v;
    let show_opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let show_path = |v: &Option<PathBuf>| {
        v.as_ref()
            .map_or_else(|| "(none)".into(), |p| p.display().to_string())
    };
    let show_bool = |v: &Option<bool>| v.unwrap_or(false).to_string();
    let flag_bool = |b: bool| b.then_some(true);

    out.image = pick!(
        "image",
        args.image.clone(),
        image,
        string,
        Some(localbuild_engine::DEFAULT_IMAGE.to_owned()),
        show_opt
    );
    out.buildspec = pick!(
        "buildspec",
        args.buildspec.clone(),
        buildspec,
        path,
        None,
        |v: &Option<PathBuf>| v.as_ref().map_or_else(
            || "buildspec.yml in the source".into(),
            |p| p.display().to_string()
        )
    );
    out.project = pick!(
        "project",
        args.project.clone(),
        project,
        string,
        None,
        |v: &Option<String>| v
            .clone()
            .unwrap_or_else(|| "the source directory's name".into())
    );
    out.timeout = pick!(
        "timeout",
        args.timeout,
        timeout,
        |_: &Layer, v: &u64| *v,
        Some(60),
        |v: &Option<u64>| format!("{} minutes", v.unwrap_or(60))
    );
    out.account_id = pick!(
        "account-id",
        args.account_id.clone(),
        account_id,
        string,
        Some(localbuild_engine::ACCOUNT_ID.to_owned()),
        show_opt
    );
    out.privileged = pick!(
        "privileged",
        flag_bool(args.privileged),
        privileged,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    if let Some(p) = &project
        && let Some(s) = &p.settings.docker_host_access
    {
        return Err(ConfigError::Located {
            path: p.path.clone(),
            text: p.text.clone(),
            span: s.span(),
            message: "docker-host-access: only the command line (--docker-host-access) or your user config can give builds this machine's Docker daemon, not a project's file (a repository would grant itself root on this machine)".into(),
        });
    }
    out.docker_host_access = pick!(
        "docker-host-access",
        flag_bool(args.docker_host_access),
        docker_host_access,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.mount = pick!(
        "mount",
        flag_bool(args.mount),
        mount,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.zip = pick!("zip", flag_bool(args.zip), zip, boolean, None, show_bool).unwrap_or(false);
    out.no_cache = pick!(
        "no-cache",
        flag_bool(args.no_cache),
        no_cache,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.all_files = pick!(
        "all-files",
        flag_bool(args.all_files),
        all_files,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.aws_config = pick!(
        "aws-config",
        flag_bool(args.aws_config),
        aws_config,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.profile = pick!(
        "profile",
        args.profile.clone(),
        profile,
        string,
        None,
        show_opt
    );
    out.quiet = pick!(
        "quiet",
        flag_bool(args.quiet),
        quiet,
        boolean,
        None,
        show_bool
    )
    .unwrap_or(false);
    out.artifacts = pick!(
        "artifacts",
        args.artifacts.clone(),
        artifacts,
        path,
        None,
        show_path
    );
    out.reports = pick!(
        "reports",
        args.reports.clone(),
        reports,
        path,
        None,
        show_path
    );
    out.secrets_file = pick!(
        "secrets-file",
        args.secrets_file.clone(),
        secrets_file,
        path,
        None,
        show_path
    );
    out.env_file = pick!(
        "env-file",
        args.env_file.clone(),
        env_file,
        path,
        None,
        show_path
    );

    // Variables: user table < project table < env file (< --env, added by `run`).
    let mut vars: BTreeMap<String, (String, Origin)> = BTreeMap::new();
    let mut env = vec![];
    for layer in layers.iter().rev() {
        for (k, v) in layer.settings.env.iter().flatten() {
            env.push((k.get_ref().clone(), v.get_ref().clone()));
            vars.insert(k.get_ref().clone(), (v.get_ref().clone(), layer.origin(v)));
        }
    }
    if let Some(path) = &out.env_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Plain(format!("-e: cannot read {}: {e}", path.display())))?;
        let parsed = localbuild_engine::secrets::parse_env_file(&text)
            .map_err(|(line, m)| ConfigError::Plain(format!("{}:{line}: {m}", path.display())))?;
        for (k, v) in parsed {
            vars.insert(k.clone(), (v.clone(), Origin::EnvFile(path.clone())));
            env.push((k, v));
        }
    }
    for (k, (v, origin)) in vars {
        shown.push(Shown {
            key: format!("env.{k}"),
            value: v,
            origin,
        });
    }
    Ok(Resolved {
        args: out,
        env,
        shown,
        files,
    })
}

/// `localbuild config [-s DIR]`: the effective settings and where each came from.
pub fn run(args: &ConfigArgs) -> Result<u8, CliError> {
    let dir = std::fs::canonicalize(&args.source).unwrap_or_else(|_| args.source.clone());
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "-s: source directory '{}' does not exist or is not a directory",
            args.source.display()
        )));
    }
    let resolved = resolve(&RunArgs::defaults(), &dir)?;
    let mut text = String::new();
    for (path, found) in &resolved.files {
        let state = if *found { "" } else { " (not found)" };
        text.push_str(&format!("# {}{state}\n", path.display()));
    }
    let width = resolved
        .shown
        .iter()
        .map(|s| s.key.len())
        .max()
        .unwrap_or(0);
    let vwidth = resolved
        .shown
        .iter()
        .map(|s| s.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for s in &resolved.shown {
        text.push_str(&format!(
            "{:width$}  {:vwidth$}  {}\n",
            s.key, s.value, s.origin
        ));
    }
    super::out::print(text)?;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("a = 1\nbé = 2\n", 0), (1, 1));
        assert_eq!(line_col("a = 1\nbé = 2\n", 6), (2, 1));
        assert_eq!(line_col("a = 1\nbé = 2\n", 10), (2, 4));
    }

    fn parse(text: &str) -> Result<FileSettings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_located() {
        let text = "image = \"x\"\nimag = \"y\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_col(text, e.span().unwrap().start), (2, 1));
        assert!(
            e.message().contains("unknown field `imag`"),
            "{}",
            e.message()
        );

        let text = "timeout = \"ten\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_col(text, e.span().unwrap().start), (1, 11));

        let text = "[env]\nA = 1\n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_col(text, e.span().unwrap().start), (2, 5));
    }

    #[test]
    fn every_key_parses() {
        let s = parse(
            "image = \"i\"\nbuildspec = \"b.yml\"\nenv-file = \"e\"\nsecrets-file = \"s\"\n\
             privileged = true\nmount = false\nartifacts = \"a\"\nreports = \"r\"\nzip = true\n\
             no-cache = true\ntimeout = 5\nproject = \"p\"\naws-config = true\nprofile = \"x\"\n\
             all-files = true\nquiet = true\n[env]\nK = \"v\"\n",
        )
        .unwrap();
        assert_eq!(s.timeout.unwrap().into_inner(), 5);
        assert_eq!(s.env.unwrap().len(), 1);
    }
}
