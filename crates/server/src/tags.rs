//! Resource tags: the rules AWS applies to a tag list (`[{key, value}]`, at most 50 tags, keys
//! of 1 to 128 characters, values of at most 256, no `aws:` prefix, keys unique), the tag
//! lists of CodePipeline pipelines (kept in the docs table, kind `codepipeline.tags`, keyed by
//! pipeline name) and the merge / remove steps TagResource and UntagResource make. Pure apart
//! from [`load`] and [`save`]; CodeBuild project tags live in the project's own JSON.

use crate::error::ApiError;
use localbuild_store::Db;
use serde::{Deserialize, Serialize};

/// The document kind holding a pipeline's tags (key: the pipeline's name).
pub(crate) const PIPELINE_TAGS_DOC: &str = "codepipeline.tags";

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

/// One tag, as CodeBuild and CodePipeline spell it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// Why a tag list is refused: the message names the field (`field`) and the offending tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagProblem {
    Invalid(String),
    TooMany(String),
}

/// Check a tag list against AWS's rules; `field` names it in the message (`tags`).
pub fn check(field: &str, tags: &[Tag]) -> Result<(), TagProblem> {
    if tags.len() > MAX_TAGS {
        return Err(TagProblem::TooMany(format!(
            "Invalid {field}: {} tags given, a resource may have at most {MAX_TAGS}",
            tags.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let len = t.key.chars().count();
        if !(1..=128).contains(&len) {
            return Err(TagProblem::Invalid(format!(
                "Invalid {field}: the key {:?} must be 1 to 128 characters",
                t.key
            )));
        }
        if t.value.chars().count() > 256 {
            return Err(TagProblem::Invalid(format!(
                "Invalid {field}: the value of {:?} is longer than 256 characters",
                t.key
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TagProblem::Invalid(format!(
                "Invalid {field}: the key {:?} uses the reserved prefix aws:",
                t.key
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(TagProblem::Invalid(format!(
                "Invalid {field}: the key {:?} is given twice",
                t.key
            )));
        }
    }
    Ok(())
}

/// `tags` with `new` laid over it: a key already there takes the new value, new keys are
/// added at the end.
pub fn merge(mut tags: Vec<Tag>, new: Vec<Tag>) -> Vec<Tag> {
    for t in new {
        match tags.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value,
            None => tags.push(t),
        }
    }
    tags
}

/// `tags` without the given keys (keys not there are ignored, as AWS ignores them).
pub fn remove(tags: Vec<Tag>, keys: &[String]) -> Vec<Tag> {
    tags.into_iter()
        .filter(|t| !keys.contains(&t.key))
        .collect()
}

/// A pipeline's tags (none when it has none).
pub(crate) fn load(db: &Db, pipeline: &str) -> Result<Vec<Tag>, ApiError> {
    let doc = db
        .get_doc(PIPELINE_TAGS_DOC, pipeline)
        .map_err(ApiError::db)?;
    Ok(doc
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default())
}

/// Keep a pipeline's tags (an empty list removes the document).
pub(crate) fn save(db: &Db, pipeline: &str, tags: &[Tag]) -> Result<(), ApiError> {
    if tags.is_empty() {
        db.delete_doc(PIPELINE_TAGS_DOC, pipeline)
            .map_err(ApiError::db)?;
        return Ok(());
    }
    let json = serde_json::to_string(tags).map_err(|e| ApiError::Service(e.to_string()))?;
    db.put_doc(PIPELINE_TAGS_DOC, pipeline, &json)
        .map_err(ApiError::db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn tag_lists_follow_aws_rules() {
        assert_eq!(check("tags", &[tag("team", "a"), tag("env", "")]), Ok(()));
        for bad in [
            vec![tag("", "x")],
            vec![tag(&"k".repeat(129), "x")],
            vec![tag("k", &"v".repeat(257))],
            vec![tag("aws:cloudformation", "x")],
            vec![tag("k", "1"), tag("k", "2")],
        ] {
            assert!(
                matches!(check("tags", &bad), Err(TagProblem::Invalid(_))),
                "{bad:?}"
            );
        }
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(matches!(check("tags", &many), Err(TagProblem::TooMany(_))));
    }

    #[test]
    fn merging_replaces_values_and_keeps_order() {
        let merged = merge(
            vec![tag("a", "1"), tag("b", "2")],
            vec![tag("b", "3"), tag("c", "4")],
        );
        assert_eq!(merged, [tag("a", "1"), tag("b", "3"), tag("c", "4")]);
        assert_eq!(
            remove(merged, &["a".into(), "zz".into()]),
            [tag("b", "3"), tag("c", "4")]
        );
    }
}
