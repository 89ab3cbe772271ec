//! The one rule that turns untrusted input into a host path.
//!
//! Buildspecs, API requests and pipeline declarations name things that become files on this
//! machine: artifact names and identifiers, batch and secondary-source identifiers, report
//! groups, cache keys, S3 buckets and keys, artifact stores, project names, repository
//! locations. Every such name is joined onto a host folder here and nowhere else:
//! [`Root::confined`] takes a `/`-separated relative path and answers a path under the root, or
//! [`Refused`] when the input is empty, absolute, has a `.` or `..` component or a control
//! character, or when an existing part of it is a symbolic link that resolves outside the root.
//! [`component`] checks a name that must be one path component (a project name, a bucket).
//!
//! This is the second line of defence: the fields are validated first, where they are read,
//! with AWS's own rules and a located error. The check is made when the path is formed; a
//! folder that a concurrent process swaps for a link afterwards is out of its reach (the
//! writers below `O_EXCL`-create files and never follow links they did not check).
//!
//! **Invariant:** for every `Ok(p)` from `root.confined(input)`, `p` starts with `root` and no
//! existing component of `p` below `root` is a link leading out of `root`.

use std::path::{Component, Path, PathBuf};

/// Why an input cannot become a path under a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Nothing to name.
    #[error("{what} is empty")]
    Empty {
        /// What the input is (e.g. `artifact identifier`).
        what: String,
    },
    /// A path component that could escape or that a file name cannot hold.
    #[error("{what} {input:?} is not a plain relative path: {reason}")]
    NotPlain {
        /// What the input is.
        what: String,
        /// The input as given.
        input: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An existing part of the path is a symbolic link that leads out of the root.
    #[error("{what} {input:?} resolves outside {root} through the symbolic link {link}")]
    Escapes {
        /// What the input is.
        what: String,
        /// The input as given.
        input: String,
        /// The root it must stay in.
        root: PathBuf,
        /// The link that leads out.
        link: PathBuf,
    },
}

/// A host folder that untrusted names are confined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// The folder `path` as a root (it need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The root folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `input` (`/`-separated, relative; `what` names it in errors) as a path under this root.
    ///
    /// Empty segments (`a//b`, a trailing `/`) are ignored.
    ///
    /// # Errors
    ///
    /// [`Refused`] as the module says.
    pub fn confined(&self, what: &str, input: &str) -> Result<PathBuf, Refused> {
        let segments = relative(what, input)?;
        let mut path = self.path.clone();
        for seg in segments {
            path.push(seg);
        }
        self.no_escaping_link(what, input, &path)?;
        Ok(path)
    }

    /// Like [`Root::confined`], as a root of its own.
    ///
    /// # Errors
    ///
    /// [`Refused`] as the module says.
    pub fn sub(&self, what: &str, input: &str) -> Result<Root, Refused> {
        self.confined(what, input).map(Root::new)
    }

    /// Refuse `path` (under this root) when an existing component below the root is a link
    /// that resolves outside it.
    fn no_escaping_link(&self, what: &str, input: &str, path: &Path) -> Result<(), Refused> {
        let Ok(rest) = path.strip_prefix(&self.path) else {
            return Ok(());
        };
        let mut at = self.path.clone();
        let mut root_real: Option<PathBuf> = None;
        for c in rest.components() {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    let real = root_real
                        .get_or_insert_with(|| {
                            std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
                        })
                        .clone();
                    let inside = std::fs::canonicalize(&at)
                        .map(|t| t.starts_with(&real))
                        .unwrap_or(false);
                    if !inside {
                        return Err(Refused::Escapes {
                            what: what.to_owned(),
                            input: input.to_owned(),
                            root: self.path.clone(),
                            link: at,
                        });
                    }
                }
                Ok(_) => {}
                // The rest does not exist yet: nothing below can be a link.
                Err(_) => break,
            }
        }
        Ok(())
    }
}

/// The segments of a relative `/`-separated `input`, or why it is not one.
///
/// # Errors
///
/// [`Refused::Empty`] or [`Refused::NotPlain`].
pub fn relative<'a>(what: &str, input: &'a str) -> Result<Vec<&'a str>, Refused> {
    let not_plain = |reason| Refused::NotPlain {
        what: what.to_owned(),
        input: input.to_owned(),
        reason,
    };
    if input.starts_with('/') || Path::new(input).has_root() {
        return Err(not_plain("it is absolute"));
    }
    if input.chars().any(char::is_control) {
        return Err(not_plain("it has a control character"));
    }
    let segments: Vec<&str> = input.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err(Refused::Empty {
            what: what.to_owned(),
        });
    }
    for seg in &segments {
        match Path::new(seg).components().next() {
            Some(Component::ParentDir) => return Err(not_plain("it has a `..` component")),
            Some(Component::CurDir) if *seg == "." => {
                return Err(not_plain("it has a `.` component"));
            }
            _ => {}
        }
    }
    Ok(segments)
}

/// Check that `input` is exactly one safe path component (no `/`).
///
/// # Errors
///
/// [`Refused::Empty`] or [`Refused::NotPlain`].
pub fn component<'a>(what: &str, input: &'a str) -> Result<&'a str, Refused> {
    if input.contains('/') {
        return Err(Refused::NotPlain {
            what: what.to_owned(),
            input: input.to_owned(),
            reason: "it has a `/`",
        });
    }
    relative(what, input)?;
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_stay_under_the_root() {
        let root = Root::new("/r");
        assert_eq!(root.confined("x", "a/b").unwrap(), Path::new("/r/a/b"));
        assert_eq!(root.confined("x", "a//b/").unwrap(), Path::new("/r/a/b"));
        assert_eq!(
            root.confined("x", "..a/b..").unwrap(),
            Path::new("/r/..a/b..")
        );
    }

    #[test]
    fn escapes_are_refused() {
        let root = Root::new("/r");
        for bad in [
            "",
            "/",
            "//",
            "/etc",
            "..",
            "a/../../b",
            "../../../../../../tmp/x",
            ".",
            "a/./b",
            "a\nb",
            "a\0b",
        ] {
            assert!(root.confined("x", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let e = Root::new("/r")
            .confined("secondary artifact identifier", "../x")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secondary artifact identifier \"../x\" is not a plain relative path: it has a `..` component"
        );
        assert_eq!(
            component("project name", "").unwrap_err().to_string(),
            "project name is empty"
        );
    }

    #[test]
    fn components_have_no_slash() {
        assert!(component("x", "a").is_ok());
        assert!(component("x", "a/b").is_err());
        assert!(component("x", "..").is_err());
    }

    #[test]
    fn links_that_lead_out_are_refused_links_inside_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("in")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
        let root = Root::new(&root);
        assert!(matches!(
            root.confined("x", "out/file"),
            Err(Refused::Escapes { .. })
        ));
        assert!(matches!(
            root.confined("x", "out"),
            Err(Refused::Escapes { .. })
        ));
        assert!(matches!(
            root.confined("x", "dangling/x"),
            Err(Refused::Escapes { .. })
        ));
        assert!(root.confined("x", "in/file").is_ok());
        assert!(root.confined("x", "new/deeper").is_ok());
    }
}
