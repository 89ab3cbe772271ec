//! CodePipeline in localbuild: what a pipeline is, how one execution advances, and the
//! executor that runs executions.
//!
//! * [`declaration`] — the declaration types and `check` (CodePipeline's rules and the
//!   providers localbuild runs), `glob` / `Patterns` for V2 push filters.
//! * [`definition`] — definition JSON: defaults, masking, definition files with positions.
//! * [`machine`] — the pure state machine of one execution (stages in sequence, actions by
//!   `runOrder`, failure, stop with or without abandon, supersede, gates, retry, resume).
//! * [`exec`] — the executor: one task per execution, one [`exec::Provider`] per action
//!   provider (git and S3 sources, CodeBuild, ECS, S3 deploy), the artifact store, the source
//!   watcher; builds and deploys through the [`exec::Builds`] and [`exec::Deploys`] traits.
//!
//! The server (`localbuild-server`) translates CodePipeline's wire format to these types and
//! back, implements the executor's traits and maps [`DeclarationError`] and
//! [`exec::ExecError`] to CodePipeline's exception types in its one error map. No axum,
//! bollard or clap here; the history is `localbuild-store`'s `Db` (rusqlite only through it,
//! as in the build service).

pub mod declaration;
pub mod definition;
pub mod exec;
pub mod machine;
#[cfg(test)]
mod tests;

pub use declaration::*;
pub use definition::{DefinitionError, normalise, read_definition};

/// Why a declaration is refused, named after the CodePipeline exception it answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// `ValidationException`: a field breaks its constraint (pattern, length, enum).
    #[error("{0}")]
    Validation(String),
    /// `InvalidStructureException`: the pipeline's shape (stages, artifacts, stores).
    #[error("{0}")]
    InvalidStructure(String),
    /// `InvalidActionDeclarationException`: an action's type, configuration or artifacts.
    #[error("{0}")]
    InvalidActionDeclaration(String),
    /// `InvalidStageDeclarationException`: a stage's declaration.
    #[error("{0}")]
    InvalidStageDeclaration(String),
    /// `SerializationException`: the JSON is not a declaration.
    #[error("{0}")]
    Serialization(String),
}
