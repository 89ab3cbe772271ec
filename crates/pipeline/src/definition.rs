//! Pipeline definitions as JSON: [`normalise`] fills in CodePipeline's defaults (and masks a
//! GitHub token) and checks the declaration; [`read_definition`] reads a definition file in
//! either of the aws CLI's forms with the line and column of a JSON or type error, so the CLI
//! and CreatePipeline refuse the same files.

use crate::DeclarationError;
use crate::declaration::{Declaration, MASKED, check};
use serde::Deserialize;
use serde_json::{Value, json};

/// The declaration with CodePipeline's defaults filled in.
pub fn normalise(raw: &Value, version: i64) -> Result<(Value, Declaration), DeclarationError> {
    let Value::Object(mut p) = raw.clone() else {
        return Err(DeclarationError::Serialization(
            "Invalid value for field 'pipeline': expected an object".into(),
        ));
    };
    p.insert("version".into(), json!(version));
    p.entry("executionMode").or_insert(json!("SUPERSEDED"));
    p.entry("pipelineType").or_insert(json!("V1"));
    if let Some(Value::Array(stages)) = p.get_mut("stages") {
        for s in stages {
            if let Some(Value::Array(actions)) = s.get_mut("actions") {
                for a in actions.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(token) = a
                        .get_mut("configuration")
                        .and_then(|c| c.get_mut("OAuthToken"))
                    {
                        *token = json!(MASKED);
                    }
                    a.entry("runOrder").or_insert(json!(1));
                    a.entry("configuration").or_insert(json!({}));
                    a.entry("inputArtifacts").or_insert(json!([]));
                    a.entry("outputArtifacts").or_insert(json!([]));
                }
            }
        }
    }
    let value = Value::Object(p);
    let decl: Declaration = {
        let de = serde_json::to_string(&value).unwrap_or_default();
        let de = &mut serde_json::Deserializer::from_str(&de);
        serde_path_to_error::deserialize(de).map_err(|e| {
            DeclarationError::Serialization(format!(
                "Invalid value for field 'pipeline.{}': {}",
                e.path(),
                e.inner()
            ))
        })?
    };
    check(&decl)?;
    Ok((value, decl))
}

/// A pipeline definition that is not valid: where in its file (for JSON and type errors, 1-based
/// line and column) and the error CreatePipeline would answer with.
#[derive(Debug)]
pub struct DefinitionError {
    pub at: Option<(usize, usize)>,
    pub error: DeclarationError,
}

/// A pipeline definition file as `aws codepipeline create-pipeline` takes it — the
/// `--cli-input-json` form `{"pipeline": {…}, "tags": […]}` or the `--pipeline` form (the
/// declaration alone) — checked as CreatePipeline checks it, without a server. The result is
/// the request body for CreatePipeline / UpdatePipeline.
pub fn read_definition(text: &str) -> Result<Value, DefinitionError> {
    let at = |e: &serde_json::Error| Some((e.line(), e.column()));
    let value: Value = serde_json::from_str(text).map_err(|e| DefinitionError {
        at: at(&e),
        error: DeclarationError::Serialization(format!("not valid JSON: {}", strip_position(&e))),
    })?;
    let wrapped = value.get("pipeline").is_some();
    // Typed once more from the text itself, so a wrong type is reported where it is.
    let typed = |text: &str| -> Result<(), DefinitionError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let result = if wrapped {
            #[derive(Deserialize)]
            #[allow(dead_code)]
            struct Wrapper {
                pipeline: Declaration,
            }
            serde_path_to_error::deserialize::<_, Wrapper>(de).map(drop)
        } else {
            serde_path_to_error::deserialize::<_, Declaration>(de).map(drop)
        };
        result.map_err(|e| {
            let path = e.path().to_string();
            let path = if wrapped {
                path
            } else {
                format!("pipeline.{path}")
            };
            DefinitionError {
                at: at(e.inner()),
                error: DeclarationError::Serialization(format!(
                    "Invalid value for field '{path}': {}",
                    strip_position(e.inner())
                )),
            }
        })
    };
    typed(text)?;
    let body = if wrapped {
        value
    } else {
        json!({ "pipeline": value })
    };
    normalise(&body["pipeline"], 1).map_err(|error| DefinitionError { at: None, error })?;
    Ok(body)
}

/// serde_json's message without its " at line L column C" (the caller shows the position).
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
