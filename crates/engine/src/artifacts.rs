//! Artifact file selection with CodeBuild's rules, over a list of paths (no I/O).
//!
//! Input: the entries of the source directory, relative to `$CODEBUILD_SRC_DIR`, with `/`
//! separators. Output: which entries to copy and under which relative name, plus the agent log
//! lines CodeBuild prints while expanding (`Expanding base directory path: …`, `Found N file(s)`).
//! Used for primary and secondary artifacts, report groups and (with absolute paths) cache paths.
//! Globs follow `globset` with `literal_separator(true)`: `*` stays within one path component,
//! `**` crosses folders.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of the source directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the source directory, `/`-separated, no leading `./`.
    pub path: String,
    pub kind: Kind,
}

/// The rules of one artifact definition (or report group).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub exclude_paths: Vec<String>,
}

/// One selected file: where it is in the source, and its name in the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub src: String,
    pub dest: String,
    pub kind: Kind,
}

/// The result of a selection: files, and the agent lines to log.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub files: Vec<Selected>,
    pub lines: Vec<String>,
}

/// `./a/b/` → `a/b`; `.` → ``.
pub fn normalize(p: &str) -> String {
    let mut s = p.trim();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    let s = s.trim_end_matches('/');
    if s == "." {
        String::new()
    } else {
        s.to_owned()
    }
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

/// A glob in CodeBuild's dialect.
pub fn glob_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let p = normalize(p);
        set.add(GlobBuilder::new(&p).literal_separator(true).build()?);
    }
    set.build()
}

/// Every folder that exists, explicit or implied by a deeper path.
fn all_dirs(entries: &[Entry]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for e in entries {
        if e.kind == Kind::Dir {
            dirs.insert(e.path.clone());
        }
        let mut p = e.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            dirs.insert(p.to_owned());
        }
    }
    dirs.remove("");
    dirs
}

/// Select the files of one artifact definition.
pub fn select(rules: &Rules, entries: &[Entry]) -> Selection {
    let mut out = Selection::default();
    let dirs = all_dirs(entries);
    let base_shown = rules
        .base_directory
        .as_deref()
        .map(normalize)
        .filter(|b| !b.is_empty());
    let shown = base_shown.clone().unwrap_or_else(|| ".".to_owned());
    out.lines
        .push(format!("Expanding base directory path: {shown}"));
    out.lines.push("Assembling file list".to_owned());
    out.lines.push(format!("Expanding {shown}"));
    let bases: Vec<String> = match &base_shown {
        None => vec![String::new()],
        Some(b) if has_glob(b) => match glob_set(std::slice::from_ref(b)) {
            Ok(set) => dirs.iter().filter(|d| set.is_match(d)).cloned().collect(),
            Err(_) => vec![],
        },
        Some(b) => {
            if dirs.contains(b) {
                vec![b.clone()]
            } else {
                vec![]
            }
        }
    };
    if bases.is_empty() {
        out.lines
            .push(format!("Skipping invalid file path {shown}"));
        return out;
    }
    let excludes = glob_set(&rules.exclude_paths).unwrap_or_else(|_| GlobSet::empty());
    let mut chosen: BTreeMap<String, Selected> = BTreeMap::new();
    let mut matched_any: Vec<bool> = vec![false; rules.files.len()];
    for base in &bases {
        let b = if base.is_empty() { "." } else { base.as_str() };
        out.lines
            .push(format!("Expanding file paths for base directory {b}"));
        out.lines.push("Assembling file list".to_owned());
        let prefix = if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        };
        let under: Vec<(&Entry, &str)> = entries
            .iter()
            .filter(|e| e.kind != Kind::Dir)
            .filter_map(|e| e.path.strip_prefix(&prefix).map(|r| (e, r)))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        let under_dirs: BTreeSet<&str> = dirs
            .iter()
            .filter_map(|d| d.strip_prefix(&prefix))
            .collect();
        for (i, pattern) in rules.files.iter().enumerate() {
            out.lines.push(format!("Expanding {pattern}"));
            let p = normalize(pattern);
            let p = if p.is_empty() {
                "**/*".to_owned()
            } else if under_dirs.contains(p.as_str()) {
                // A folder named literally: everything under it.
                format!("{p}/**/*")
            } else {
                p
            };
            let Ok(set) = glob_set(&[p]) else { continue };
            for (e, rel) in &under {
                if !set.is_match(rel) || excludes.is_match(rel) {
                    continue;
                }
                matched_any[i] = true;
                let dest = if rules.discard_paths {
                    rel.rsplit('/').next().unwrap_or(rel).to_owned()
                } else {
                    (*rel).to_owned()
                };
                chosen.entry(dest.clone()).or_insert(Selected {
                    src: e.path.clone(),
                    dest,
                    kind: e.kind,
                });
            }
        }
    }
    for (i, pattern) in rules.files.iter().enumerate() {
        if !matched_any[i] {
            out.lines
                .push(format!("Skipping invalid file path {pattern}"));
        }
    }
    out.files = chosen.into_values().collect();
    out.lines.push(format!("Found {} file(s)", out.files.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buildspec reference's example tree.
    fn tree() -> Vec<Entry> {
        [
            "my-build-1/my-file-1.txt",
            "my-build-2/my-file-2.txt",
            "my-build-2/my-subdirectory/my-file-3.txt",
        ]
        .iter()
        .map(|p| Entry {
            path: (*p).to_owned(),
            kind: Kind::File,
        })
        .collect()
    }

    fn dests(s: &Selection) -> Vec<&str> {
        s.files.iter().map(|f| f.dest.as_str()).collect()
    }

    fn rules(files: &[&str], base: Option<&str>, discard: bool) -> Rules {
        Rules {
            files: files.iter().map(|s| (*s).to_owned()).collect(),
            base_directory: base.map(str::to_owned),
            discard_paths: discard,
            exclude_paths: vec![],
        }
    }

    #[test]
    fn doc_example_subdirectory_file_from_base_directory() {
        let s = select(
            &rules(&["*/my-file-3.txt"], Some("my-build-2"), false),
            &tree(),
        );
        assert_eq!(dests(&s), ["my-subdirectory/my-file-3.txt"]);
        assert_eq!(s.files[0].src, "my-build-2/my-subdirectory/my-file-3.txt");
    }

    #[test]
    fn doc_example_wildcard_base_directory_discarding_paths() {
        let s = select(&rules(&["**/*"], Some("my-build*"), true), &tree());
        assert_eq!(
            dests(&s),
            ["my-file-1.txt", "my-file-2.txt", "my-file-3.txt"]
        );
        assert_eq!(s.lines.last().unwrap(), "Found 3 file(s)");
    }

    #[test]
    fn star_stays_in_one_folder_and_double_star_crosses() {
        let s = select(&rules(&["my-build-2/*"], None, false), &tree());
        assert_eq!(dests(&s), ["my-build-2/my-file-2.txt"]);
        let s = select(&rules(&["my-build-2/**/*"], None, false), &tree());
        assert_eq!(s.files.len(), 2);
        let s = select(&rules(&["*"], None, false), &tree());
        assert!(s.files.is_empty());
    }

    #[test]
    fn exclude_paths_are_relative_to_the_base_directory() {
        let mut r = rules(&["**/*"], Some("my-build-2"), false);
        r.exclude_paths = vec!["my-subdirectory/**/*".into()];
        let s = select(&r, &tree());
        assert_eq!(dests(&s), ["my-file-2.txt"]);
    }

    #[test]
    fn unmatched_paths_are_logged_and_nothing_found() {
        let s = select(&rules(&["nope/*.jar"], None, false), &tree());
        assert!(s.files.is_empty());
        assert!(
            s.lines
                .contains(&"Skipping invalid file path nope/*.jar".to_owned())
        );
        let s = select(&rules(&["**/*"], Some("missing"), false), &tree());
        assert!(s.files.is_empty());
    }

    #[test]
    fn log_lines_follow_codebuild() {
        let s = select(&rules(&["**/*"], None, false), &tree());
        assert_eq!(
            s.lines,
            [
                "Expanding base directory path: .",
                "Assembling file list",
                "Expanding .",
                "Expanding file paths for base directory .",
                "Assembling file list",
                "Expanding **/*",
                "Found 3 file(s)"
            ]
        );
    }

    #[test]
    fn a_folder_named_literally_takes_its_contents() {
        let s = select(&rules(&["./my-build-2"], None, false), &tree());
        assert_eq!(s.files.len(), 2);
    }
}
