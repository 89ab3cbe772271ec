//! `localbuild gc`: finalise the builds whose process died and remove the containers, volumes
//! and networks they left, containers kept with `run --keep-container`, and the ECR registry of
//! a killed `serve` or `run`; `--dry-run` only
//! lists them. What a live `serve` or `run` still runs is left alone: a resource's owner label
//! (pid and start time, so a reused pid is not mistaken for it) or, without one, its build's
//! row in the history says whose it is.

use super::error::CliError;
use super::exit;
use localbuild_store::HistoryStore;
use std::fmt::Write as _;

pub fn run(dry_run: bool) -> Result<u8, CliError> {
    super::with_docker(|docker| async move {
        let mut text = String::new();
        let history = match HistoryStore::open(super::run::store_root()) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("warning: the build history could not be checked: {e}");
                None
            }
        };
        // Builds whose process died are finalised first (FAILED, with a context saying so).
        if let (false, Some(h)) = (dry_run, &history) {
            match h.recover() {
                Ok(ids) => {
                    for id in ids {
                        let _ = writeln!(text, "finalised build {id}");
                    }
                }
                Err(e) => eprintln!("warning: the build history could not be checked: {e}"),
            }
        }
        // The ECR registry of a killed `serve` or `run`.
        if !dry_run
            && let Some(pid) = localbuild_aws::registry::Registry::stop_stale(
                &super::run::store_root().join("ecr"),
            )
        {
            let _ = writeln!(
                text,
                "stopped the ECR registry (pid {pid}) a killed process left running"
            );
        }
        let running = |id: &str, owner: Option<&str>| match &history {
            Some(h) => h.is_running(id, owner).unwrap_or_else(|e| {
                // Cannot tell: leave it (a live build must never lose its container).
                eprintln!("warning: cannot tell whether build {id} still runs: {e}");
                true
            }),
            // Without the history only an owner label can tell.
            None => owner.is_some_and(localbuild_store::owner_is_alive),
        };
        let sweep = if dry_run {
            docker.list_abandoned_resources(&running).await
        } else {
            docker.remove_abandoned_resources(&running).await
        };
        // What was finalised is said even when the removal fails.
        super::out::print(std::mem::take(&mut text))?;
        let sweep = sweep?;
        let verb = if dry_run { "would remove" } else { "removed" };
        let found = &sweep.removed;
        for c in &found.containers {
            let _ = writeln!(text, "{verb} container {c}");
        }
        for v in &found.volumes {
            let _ = writeln!(text, "{verb} volume {v}");
        }
        for n in &found.networks {
            let _ = writeln!(text, "{verb} network {n}");
        }
        for (name, build) in &sweep.kept {
            let _ = writeln!(
                text,
                "left container {name}: build {build} is still running"
            );
        }
        if *found == Default::default() {
            text.push_str("nothing to remove\n");
        }
        super::out::print(text)?;
        Ok(exit::SUCCESS)
    })
}
