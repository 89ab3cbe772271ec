//! Where pipelines and executions are kept: the history's documents (`codepipeline.*` kinds),
//! the stored pipeline ([`Stored`]), the disabled transitions and the gates they make, and the
//! records' clock.

use crate::Declaration;
use localbuild_store::{Db, DbError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const PIPELINE_DOC: &str = "codepipeline.pipeline";
pub const VERSION_DOC: &str = "codepipeline.pipeline-version";
pub const EXECUTION_DOC: &str = "codepipeline.execution";
pub const TRANSITION_DOC: &str = "codepipeline.transition";
pub const CONNECTION_DOC: &str = "codepipeline.connection";

/// The clock of pipeline records (epoch seconds).
pub fn now() -> f64 {
    localbuild_engine::record::epoch_now()
}

/// A pipeline as stored: the declaration as sent (defaults filled), and its metadata.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Stored {
    pub pipeline: Value,
    pub created: f64,
    pub updated: f64,
    pub region: String,
}

impl Stored {
    pub fn declaration(&self) -> Option<Declaration> {
        serde_json::from_value(self.pipeline.clone()).ok()
    }
}

/// The stored pipeline `name`.
pub fn load(db: &Db, name: &str) -> Result<Option<Stored>, DbError> {
    let doc = db.get_doc(PIPELINE_DOC, name)?;
    Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
}

/// The disabled transitions of a pipeline: (stage, Inbound|Outbound, `TransitionState`).
pub fn transitions(db: &Db, pipeline: &str) -> Vec<(String, String, Value)> {
    db.list_docs(TRANSITION_DOC, &format!("{pipeline}/"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, doc)| {
            let rest = key.strip_prefix(&format!("{pipeline}/"))?;
            let (stage, kind) = rest.rsplit_once('/')?;
            Some((
                stage.to_owned(),
                kind.to_owned(),
                serde_json::from_str(&doc).ok()?,
            ))
        })
        .collect()
}

/// `gates[s]`: an execution may enter stage `s` (its inbound transition and the outbound
/// transition of the stage before are enabled).
pub fn gates(db: &Db, pipeline: &str, decl: &Declaration) -> Vec<bool> {
    let disabled = transitions(db, pipeline);
    let off = |stage: &str, kind: &str| disabled.iter().any(|(s, k, _)| s == stage && k == kind);
    decl.stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            !off(&st.name, "Inbound") && (i == 0 || !off(&decl.stages[i - 1].name, "Outbound"))
        })
        .collect()
}
