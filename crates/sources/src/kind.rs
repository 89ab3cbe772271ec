//! CodeBuild source types (`ProjectSource.type`).

use std::fmt;
use std::str::FromStr;

use crate::SourceError;

/// A CodeBuild source type.
///
/// Parsed from (and displayed as) the exact strings of the CodeBuild API,
/// e.g. `"GITHUB"` or `"NO_SOURCE"`. Like the API, parsing is
/// case-sensitive; `CODEPIPELINE` and anything else unknown is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `GITHUB`
    Github,
    /// `GITHUB_ENTERPRISE`
    GithubEnterprise,
    /// `GITLAB`
    Gitlab,
    /// `GITLAB_SELF_MANAGED`
    GitlabSelfManaged,
    /// `BITBUCKET`
    Bitbucket,
    /// `CODECOMMIT`
    Codecommit,
    /// `S3`
    S3,
    /// `NO_SOURCE`
    NoSource,
}

impl SourceKind {
    /// Every source type, in declaration order.
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Github,
        SourceKind::GithubEnterprise,
        SourceKind::Gitlab,
        SourceKind::GitlabSelfManaged,
        SourceKind::Bitbucket,
        SourceKind::Codecommit,
        SourceKind::S3,
        SourceKind::NoSource,
    ];

    /// The CodeBuild API string for this type, e.g. `"GITHUB_ENTERPRISE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Github => "GITHUB",
            SourceKind::GithubEnterprise => "GITHUB_ENTERPRISE",
            SourceKind::Gitlab => "GITLAB",
            SourceKind::GitlabSelfManaged => "GITLAB_SELF_MANAGED",
            SourceKind::Bitbucket => "BITBUCKET",
            SourceKind::Codecommit => "CODECOMMIT",
            SourceKind::S3 => "S3",
            SourceKind::NoSource => "NO_SOURCE",
        }
    }

    /// Whether sources of this type are git repositories (everything but
    /// `S3` and `NO_SOURCE`).
    pub fn is_git(self) -> bool {
        !matches!(self, SourceKind::S3 | SourceKind::NoSource)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SourceError::UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        for kind in SourceKind::ALL {
            assert_eq!(kind.as_str().parse::<SourceKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn rejects_unknown_and_wrong_case() {
        for bad in ["CODEPIPELINE", "github", "", "GIT HUB"] {
            let err = bad.parse::<SourceKind>().unwrap_err();
            assert!(matches!(err, SourceError::UnknownKind(ref s) if s == bad));
            assert!(err.to_string().contains("GITHUB_ENTERPRISE"));
        }
    }

    #[test]
    fn git_kinds() {
        assert!(SourceKind::Codecommit.is_git());
        assert!(SourceKind::GitlabSelfManaged.is_git());
        assert!(!SourceKind::S3.is_git());
        assert!(!SourceKind::NoSource.is_git());
    }
}
