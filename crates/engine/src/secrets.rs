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
        self.lookup_parameter(name).map_err(|e| e.to_string())
    }

    /// The value of a Parameter Store parameter, or why there is none (typed).
    pub fn lookup_parameter(&self, name: &str) -> Result<String, SecretError> {
        self.parameter_store
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::ParameterNotFound(name.to_owned()))
    }

    /// The value a Secrets Manager reference stands for: the whole secret, or one field of a
    /// JSON secret. Version stages and ids are accepted and ignored (there is one version).
    pub fn secret(&self, r: &SecretRef) -> Result<String, String> {
        self.lookup_secret(r).map_err(|e| e.to_string())
    }

    /// [`SecretsFile::secret`] with a typed error.
    pub fn lookup_secret(&self, r: &SecretRef) -> Result<String, SecretError> {
        let text = self
            .secrets_manager
            .get(&r.secret_id)
            .ok_or_else(|| SecretError::SecretNotFound(r.secret_id.clone()))?;
        let Some(key) = &r.json_key else {
            return Ok(text.clone());
        };
        let no_key = || SecretError::NoJsonKey {
            secret_id: r.secret_id.clone(),
            key: key.clone(),
        };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|_| no_key())?;
        match json.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v) => Ok(v.to_string()),
            None => Err(no_key()),
        }
    }
}

/// Why a Parameter Store or Secrets Manager reference has no value. The texts are CodeBuild's
/// (`parameter does not exist: NAME`, Secrets Manager's `ResourceNotFoundException`), with where
/// localbuild looked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("parameter does not exist: {0} (not in the secrets file, --secrets-file)")]
    ParameterNotFound(String),
    #[error(
        "ResourceNotFoundException: Secrets Manager can't find the specified secret: {0} (not in the secrets file, --secrets-file)"
    )]
    SecretNotFound(String),
    #[error(
        "InvalidRequestException: the secret {secret_id} has no JSON key {key} (the secret is not a JSON object with that key)"
    )]
    NoJsonKey { secret_id: String, key: String },
}

impl SecretError {
    /// The service whose lookup failed: Parameter Store or Secrets Manager.
    pub fn is_parameter_store(&self) -> bool {
        matches!(self, SecretError::ParameterNotFound(_))
    }
}

/// Every reference of a build that has no value, in the buildspec's order, and the one phase
/// context CodeBuild gives for them: `Decrypted Variables Error` for Parameter Store (which
/// CodeBuild reads first), `Secrets Manager Error` for Secrets Manager.
#[derive(Debug, Default)]
pub struct Missing {
    parameters: Vec<(String, String)>,
    secrets: Vec<(String, SecretError)>,
}

impl Missing {
    /// Record that variable `name`'s reference failed with `e`.
    pub fn push(&mut self, name: &str, e: SecretError) {
        match &e {
            SecretError::ParameterNotFound(p) => self.parameters.push((name.to_owned(), p.clone())),
            _ => self.secrets.push((name.to_owned(), e)),
        }
    }

    /// The phase context's status code and message; `None` when nothing is missing. Each
    /// service's references are listed together, in order, each with its variable.
    pub fn context(&self) -> Option<(&'static str, String)> {
        let parameters = (!self.parameters.is_empty()).then(|| {
            let names: Vec<String> = self
                .parameters
                .iter()
                .map(|(var, p)| format!("{p} (variable {var})"))
                .collect();
            format!(
                "parameter does not exist: {} (not in the secrets file, --secrets-file)",
                names.join(", ")
            )
        });
        let secrets = (!self.secrets.is_empty()).then(|| {
            let not_found: Vec<String> = self
                .secrets
                .iter()
                .filter_map(|(var, e)| match e {
                    SecretError::SecretNotFound(id) => Some(format!("{id} (variable {var})")),
                    _ => None,
                })
                .collect();
            let mut parts = vec![];
            if !not_found.is_empty() {
                parts.push(format!(
                    "ResourceNotFoundException: Secrets Manager can't find the specified secret: {} (not in the secrets file, --secrets-file)",
                    not_found.join(", ")
                ));
            }
            for (var, e) in &self.secrets {
                if let SecretError::NoJsonKey { .. } = e {
                    parts.push(format!("{e} (variable {var})"));
                }
            }
            parts.join("; ")
        });
        match (parameters, secrets) {
            (None, None) => None,
            (Some(p), None) => Some(("Decrypted Variables Error", p)),
            (None, Some(s)) => Some(("Secrets Manager Error", s)),
            (Some(p), Some(s)) => Some((
                "Decrypted Variables Error",
                format!("{p}; Secrets Manager Error: {s}"),
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

/// Replaces secret values with `***`: every occurrence, leftmost first and the longest secret
/// where several start at the same byte. Output that arrives in pieces is masked with
/// [`Masker::mask_stream`], which holds back what could still be the start of a secret, so a
/// secret is masked wherever the pieces were cut.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// The secrets' lines (to make a masker with more of them, [`Masker::with`]).
    needles: Vec<Vec<u8>>,
    /// The secrets' lines; `None` when there is nothing to mask.
    finder: Option<aho_corasick::AhoCorasick>,
    /// The longest secret line, in bytes.
    longest: usize,
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
        Masker::of(needles)
    }

    fn of(mut needles: Vec<Vec<u8>>) -> Masker {
        needles.sort();
        needles.dedup();
        let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
        let finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&needles)
            .ok()
            .filter(|_| !needles.is_empty());
        Masker {
            needles,
            finder,
            longest,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.finder.is_none()
    }

    /// This masker plus `more` values.
    pub fn with<I: IntoIterator<Item = String>>(&self, more: I) -> Masker {
        let mut needles = Masker::new(more).needles;
        needles.extend(self.needles.iter().cloned());
        Masker::of(needles)
    }

    /// Mask whole lines of bytes; `None` when nothing in them is secret.
    pub fn mask_bytes(&self, data: &[u8]) -> Option<Vec<u8>> {
        let finder = self.finder.as_ref()?;
        let mut found = finder.find_iter(data).peekable();
        found.peek()?;
        Some(replace(data, found.map(|m| m.range())))
    }

    /// Mask the next piece of a stream of output: `carry` is what the previous call held back
    /// (start with an empty one). Returns the masked text that can be passed on; a piece that
    /// ends inside a line keeps back, in `carry`, the bytes a secret could still begin in (at
    /// most the longest secret's length less one). A piece ending with a newline passes
    /// everything on (secrets are masked per line). [`Masker::finish`] releases what is left.
    pub fn mask_stream(&self, carry: &mut Vec<u8>, piece: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(carry);
        buf.extend_from_slice(piece);
        let Some(finder) = &self.finder else {
            return buf;
        };
        let len = buf.len();
        if buf.ends_with(b"\n") {
            return replace(&buf, finder.find_iter(&buf).map(|m| m.range()));
        }
        // A match that starts before `safe` is final: every byte a secret starting there could
        // span is known. One starting later may still grow or appear with the next piece.
        let safe = len.saturating_sub(self.longest - 1);
        let mut cut = safe;
        let mut ranges = vec![];
        for m in finder.find_iter(&buf) {
            if m.start() >= safe {
                break;
            }
            cut = cut.max(m.end());
            ranges.push(m.range());
        }
        *carry = buf.split_off(cut);
        replace(&buf, ranges.into_iter())
    }

    /// The end of a stream: mask and release what [`Masker::mask_stream`] held back.
    pub fn finish(&self, carry: &mut Vec<u8>) -> Vec<u8> {
        let rest = std::mem::take(carry);
        self.mask_bytes(&rest).unwrap_or(rest)
    }

    pub fn mask(&self, text: &str) -> String {
        match self.mask_bytes(text.as_bytes()) {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => text.to_owned(),
        }
    }
}

/// `data` with each of the (ordered, disjoint) `ranges` replaced by `***`.
fn replace(data: &[u8], ranges: impl Iterator<Item = std::ops::Range<usize>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    for r in ranges {
        out.extend_from_slice(&data[at..r.start]);
        out.extend_from_slice(b"***");
        at = r.end;
    }
    out.extend_from_slice(&data[at..]);
    out
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
        assert!(
            r("workshop/plain:k")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(r("nothere").unwrap_err().contains("nothere"));
    }

    #[test]
    fn missing_references_are_named_together_with_each_services_text() {
        let f = file();
        let mut m = Missing::default();
        assert_eq!(m.context(), None);
        for (var, id) in [("A", "gone/a"), ("B", "workshop/plain"), ("C", "gone/c")] {
            if let Err(e) = f.lookup_secret(&parse_secret_ref(id).unwrap()) {
                m.push(var, e);
            }
        }
        let (code, msg) = m.context().unwrap();
        assert_eq!(code, "Secrets Manager Error");
        assert!(
            msg.starts_with("ResourceNotFoundException: Secrets Manager can't find the specified secret: gone/a (variable A), gone/c (variable C)"),
            "{msg}"
        );
        m.push("P", f.lookup_parameter("/nope").unwrap_err());
        let (code, msg) = m.context().unwrap();
        assert_eq!(code, "Decrypted Variables Error");
        assert!(
            msg.starts_with("parameter does not exist: /nope (variable P)"),
            "{msg}"
        );
        assert!(
            msg.contains("; Secrets Manager Error: ResourceNotFoundException"),
            "{msg}"
        );
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

    /// Output cut into pieces anywhere (a line longer than the splitter's limit is passed on
    /// in parts): the pieces masked one after the other are the whole text masked at once.
    fn streamed(m: &Masker, text: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut carry = vec![];
        let mut out = vec![];
        let mut at = 0;
        for &c in cuts {
            let c = c.clamp(at, text.len());
            out.extend(m.mask_stream(&mut carry, &text[at..c]));
            at = c;
        }
        out.extend(m.mask_stream(&mut carry, &text[at..]));
        out.extend(m.finish(&mut carry));
        out
    }

    #[test]
    fn a_secret_cut_between_two_pieces_is_still_masked() {
        let m = Masker::new(["s3cret-value".to_owned()]);
        let line = "s3cret-value.".repeat(300_000) + "\n";
        // Cut every 1 MiB, as the line splitter does with a long line.
        let cuts: Vec<usize> = (1..4).map(|i| i << 20).collect();
        let out = streamed(&m, line.as_bytes(), &cuts);
        assert!(memchr::memmem::find(&out, b"s3cret").is_none());
        assert_eq!(out, ("***.".repeat(300_000) + "\n").into_bytes());
        // What is held back is at most the secret's length less one.
        let mut carry = vec![];
        let passed = m.mask_stream(&mut carry, b"abc s3cret-valu");
        assert_eq!(
            (passed.as_slice(), carry.as_slice()),
            (&b"abc "[..], &b"s3cret-valu"[..])
        );
        let passed = m.mask_stream(&mut carry, b"e and more");
        assert_eq!(
            (passed.as_slice(), carry.as_slice()),
            (&b"***"[..], &b" and more"[..])
        );
    }

    proptest::proptest! {
        #[test]
        fn masking_in_pieces_equals_masking_at_once(
            words in proptest::collection::vec(0usize..6, 0..60),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let m = Masker::new(["abcab".to_owned(), "bca".to_owned(), "xyz".to_owned()]);
            let parts = ["abcab", "bca", "xy", "z", "ab", "\n"];
            let text: Vec<u8> = words.iter().flat_map(|w| parts[*w].bytes()).collect();
            let mut cuts = cuts;
            cuts.sort();
            let at_once = m.mask_bytes(&text).unwrap_or_else(|| text.clone());
            proptest::prop_assert_eq!(streamed(&m, &text, &cuts), at_once);
        }
    }
}
