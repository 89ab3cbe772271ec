//! One file per action provider, each a [`Provider`]: `source` (git sources:
//! `CodeStarSourceConnection`, `CodeCommit`, `GitHub`), `codebuild` (Build / Test `CodeBuild`),
//! `ecs` (Deploy `ECS`), `s3` (Source and Deploy `S3`); [`provider`] picks one by the action's
//! type. Manual approval has no file: it is no task, only a token and a timer
//! (`approval_timer`).

use super::Provider;

mod codebuild;
mod ecs;
mod s3;
mod source;

pub(crate) use source::repo_of;

/// The provider that runs actions of this category and provider.
pub fn provider(category: &str, provider: &str) -> Option<&'static dyn Provider> {
    Some(match (category, provider) {
        (_, "CodeStarSourceConnection" | "CodeCommit" | "GitHub") => &source::GitSource,
        (_, "CodeBuild") => &codebuild::CodeBuild,
        (_, "ECS") => &ecs::EcsDeploy,
        ("Source", "S3") => &s3::S3Source,
        (_, "S3") => &s3::S3Deploy,
        _ => return None,
    })
}
