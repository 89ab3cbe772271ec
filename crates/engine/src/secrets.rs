//! Offline Parameter Store and Secrets Manager: a local secrets file, env files, and masking.
//!
//! Owns the `--secrets-file` format (YAML or JSON: `parameter-store: {name: value}`,
//! `secrets-manager: {secret-id: text}`), resolving buildspec references against it with
//! CodeBuild's `secret-id[:json-key[:version-stage[:version-id]]]` rules, the `-e` env-file
//! format (`KEY=VALUE` lines, `#` comments, values literal), and [`Masker`], which replaces
//! every secret value with `***` in whatever localbuild writes. Pure: callers read the files.

use crate::buildspec::SecretRef;
use std::collections::BTreeMap;

/// The contents of a `--secrets-file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    #[serde(rename = "parameter-store", default)]
    pub parameter_store: BTreeMap<String, String>,
    #[serde(rename = "secrets-manager", default)]
    pub secrets_manager: BTreeMap<String, String>,
}

impl SecretsFile {
    /// Parse YAML or JSON. The error names the line and column.
    pub fn parse(text: &str) -> Result<SecretsFile, String> {
        if text.trim().is_empty() {
            return Ok(SecretsFile::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The value of a Parameter Store parameter.
    pub fn parameter(&self, name: &str) -> Result<String, String> {
        self.parameter_store.get(name).cloned().ok_or_else(|| {
            format!("Parameter Store parameter {name} is not in the secrets file (--secrets-file)")
        })
    }

    /// The value a Secrets Manager reference stands for: the whole secret, or one field of a
    /// JSON secret. Version stages and ids are accepted and ignored (there is one version).
    pub fn secret(&self, r: &SecretRef) -> Result<String, String> {
        let text = self.secrets_manager.get(&r.secret_id).ok_or_else(|| {
            format!(
                "Secrets Manager secret {} is not in the secrets file (--secrets-file)",
                r.secret_id
            )
        })?;
        let Some(key) = &r.json_key else {
            return Ok(text.clone());
        };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|_| {
            format!(
                "Secrets Manager secret {} is not JSON, so it has no key {key} (reference {})",
                r.secret_id, r.reference
            )
        })?;
        match json.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v) => Ok(v.to_string()),
            None => Err(format!(
                "Secrets Manager secret {} has no JSON key {key} (reference {})",
                r.secret_id, r.reference
            )),
        }
    }
}

/// Parse an env file: `KEY=VALUE` lines, `#` comments and blank lines; quotes are kept as
/// written (as `codebuild_build.sh` does). Errors are `(line, message)`.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut vars = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, format!("expected KEY=VALUE, found {line:?}")));
        };
        let key = key.trim();
        check_name(key).map_err(|m| (i + 1, m))?;
        vars.push((key.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// A shell variable name: letters, digits and `_`, not starting with a digit.
pub fn is_variable_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A variable name a user may set: a shell name, not reserved by CodeBuild.
pub fn check_name(key: &str) -> Result<(), String> {
    if !is_variable_name(key) {
        return Err(format!("{key:?} is not a valid variable name"));
    }
    if key.starts_with("CODEBUILD_") {
        return Err(format!(
            "{key}: variable names starting with CODEBUILD_ are reserved for CodeBuild"
        ));
    }
    Ok(())
}

/// Replaces secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    needles: Vec<Vec<u8>>,
}

/// Secrets shorter than this are not masked inside other text (they would mask everything);
/// CodeBuild does the same for very short values.
const MIN_LEN: usize = 3;

impl Masker {
    pub fn new<I: IntoIterator<Item = String>>(secrets: I) -> Masker {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            // Output is masked line by line, so a multi-line secret is masked per line.
            for part in s.lines() {
                if part.trim().len() >= MIN_LEN {
                    needles.push(part.as_bytes().to_vec());
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Masker { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// This masker plus `more` values.
    pub fn with<I: IntoIterator<Item = String>>(&self, more: I) -> Masker {
        let mut m = Masker::new(more);
        m.needles.extend(self.needles.iter().cloned());
        m.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        m.needles.dedup();
        m
    }

    /// Mask whole lines of bytes (complete lines, so a secret is never split).
    pub fn mask_bytes(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut current: Option<Vec<u8>> = None;
        for needle in &self.needles {
            let src = current.as_deref().unwrap_or(data);
            if memchr::memmem::find(src, needle).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(src.len());
            let mut rest = src;
            while let Some(i) = memchr::memmem::find(rest, needle) {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"***");
                rest = &rest[i + needle.len()..];
            }
            out.extend_from_slice(rest);
            current = Some(out);
        }
        current
    }

    pub fn mask(&self, text: &str) -> String {
        match self.mask_bytes(text.as_bytes()) {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::parse_secret_ref;

    fn file() -> SecretsFile {
        SecretsFile::parse(
            "parameter-store:\n  /workshop/db/password: \"pw-1234\"\n  /n: 42\nsecrets-manager:\n  workshop/hub: '{\"username\":\"u\",\"password\":\"p4ss\",\"port\":5432}'\n  workshop/plain: \"text secret\"\n",
        )
        .unwrap()
    }

    #[test]
    fn parameters_resolve_by_name_and_keep_their_text() {
        assert_eq!(
            file().parameter("/workshop/db/password").unwrap(),
            "pw-1234"
        );
        assert_eq!(file().parameter("/n").unwrap(), "42");
        assert!(
            file()
                .parameter("/missing")
                .unwrap_err()
                .contains("/missing")
        );
    }

    #[test]
    fn secrets_resolve_whole_or_by_json_key() {
        let f = file();
        let r = |s: &str| f.secret(&parse_secret_ref(s).unwrap());
        assert_eq!(r("workshop/plain").unwrap(), "text secret");
        assert_eq!(r("workshop/hub:password").unwrap(), "p4ss");
        assert_eq!(r("workshop/hub:port").unwrap(), "5432");
        assert_eq!(r("workshop/hub:username:AWSCURRENT").unwrap(), "u");
        assert!(r("workshop/hub:nokey").unwrap_err().contains("nokey"));
        assert!(r("workshop/plain:k").unwrap_err().contains("not JSON"));
        assert!(r("nothere").unwrap_err().contains("nothere"));
    }

    #[test]
    fn json_secrets_files_parse_too() {
        let f = SecretsFile::parse(r#"{"parameter-store": {"/a": "b"}}"#).unwrap();
        assert_eq!(f.parameter("/a").unwrap(), "b");
        assert!(SecretsFile::parse("other: 1\n").is_err());
    }

    #[test]
    fn env_files_keep_values_literal_and_refuse_reserved_names() {
        let vars = parse_env_file("# c\n\nA=1\nB=\"quoted\" $HOME\n  C = x=y\n").unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), "\"quoted\" $HOME".into()),
                ("C".into(), " x=y".into())
            ]
        );
        assert_eq!(parse_env_file("A=1\nnope\n").unwrap_err().0, 2);
        assert!(
            parse_env_file("CODEBUILD_X=1\n")
                .unwrap_err()
                .1
                .contains("reserved")
        );
    }

    #[test]
    fn masking_replaces_every_occurrence() {
        let m = Masker::new([
            "s3cret".to_owned(),
            "ab".to_owned(),
            "line1\nline2".to_owned(),
        ]);
        assert_eq!(m.mask("x s3cret y s3cret"), "x *** y ***");
        assert_eq!(m.mask("ab stays"), "ab stays");
        assert_eq!(m.mask("line2 line1"), "*** ***");
        assert!(m.mask_bytes(b"nothing here\n").is_none());
    }
}
