//! One file per action provider: each adds its `Job` method (`s3_source`/`s3_deploy`, `source`,
//! `build`/`batch_build`, `deploy`); `Job::run` in the parent picks one by the action's type.
//! Manual approval has no file: it is no task, only a token and a timer (`approval_timer`).

mod codebuild;
mod ecs;
mod s3;
mod source;

pub(crate) use source::repo_of;
