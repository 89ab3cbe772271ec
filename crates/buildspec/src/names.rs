//! Names that become host paths or variable names: the identifier rules for batch tasks,
//! secondary artifacts and sources, checked where a buildspec or a request is read (with a
//! located error) before anything is made of them. Pure; the confinement of the resulting
//! paths is `localbuild-confine`'s (the second line).

/// A batch task's identifier: letters, digits, `_` and `-`, under 128 characters. CodeBuild
/// documents identifiers as letters, digits and underscores (its sources' rule); real batch
/// buildspecs run in the cloud with `-` (`cypress-e2e-tests` in the corpus), so it is kept.
/// The identifier names the task's folder of combined artifacts.
pub fn batch_identifier(id: &str) -> Result<(), String> {
    identifier_chars(id, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .map_err(|()| "use only letters, digits, '_' and '-', fewer than 128 characters".into())
}

/// A secondary artifact identifier: it names the artifact's folder or zip, so it is one plain
/// path component (no `/`, not `.` or `..`, no control characters), under 128 characters.
/// CodeBuild documents no character set for it.
pub fn artifact_identifier(id: &str) -> Result<(), String> {
    identifier_chars(id, |c| !c.is_control() && c != '/')
        .and_then(|()| {
            if id == "." || id == ".." {
                Err(())
            } else {
                Ok(())
            }
        })
        .map_err(|()| {
            "it must be one plain file name (no '/', not '.' or '..'), fewer than 128 characters"
                .into()
        })
}

/// A source identifier (secondary sources, `CODEBUILD_SRC_DIR_<identifier>`): CodeBuild's rule,
/// "can only contain alphanumeric characters and underscores, and must be less than 128
/// characters in length".
pub fn source_identifier(id: &str) -> Result<(), String> {
    identifier_chars(id, |c| c.is_ascii_alphanumeric() || c == '_').map_err(|()| {
        "The identifier can only contain alphanumeric characters and underscores, and must be less than 128 characters in length".into()
    })
}

fn identifier_chars(id: &str, ok: impl Fn(char) -> bool) -> Result<(), ()> {
    if id.is_empty() || id.chars().count() >= 128 || !id.chars().all(ok) {
        return Err(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_their_rules() {
        assert!(batch_identifier("cypress-e2e-tests").is_ok());
        assert!(batch_identifier("Rust_openssl102_x86_0").is_ok());
        for bad in ["", "../x", "/tmp/x", "a b", "a.b", &"x".repeat(128)] {
            assert!(batch_identifier(bad).is_err(), "{bad:?}");
        }
        assert!(artifact_identifier("DefinitionArtifact").is_ok());
        assert!(artifact_identifier("site.v2").is_ok());
        for bad in ["", ".", "..", "../../../../../../tmp/x", "a/b", "a\nb"] {
            assert!(artifact_identifier(bad).is_err(), "{bad:?}");
        }
        assert!(source_identifier("source2").is_ok());
        for bad in ["", "a-b", "../x", &"x".repeat(128)] {
            assert!(source_identifier(bad).is_err(), "{bad:?}");
        }
    }
}
