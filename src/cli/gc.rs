//! `localbuild gc`: remove containers, volumes and networks left by builds that were killed,
//! and containers kept with `run --keep-container`; `--dry-run` only lists them.

use super::error::CliError;
use super::exit;
use std::fmt::Write as _;

pub fn run(dry_run: bool) -> Result<u8, CliError> {
    super::with_docker(|docker| async move {
        let mut text = String::new();
        if dry_run {
            let found = docker.list_build_resources(None).await?;
            for c in &found.containers {
                let _ = writeln!(text, "would remove container {c}");
            }
            for v in &found.volumes {
                let _ = writeln!(text, "would remove volume {v}");
            }
            for n in &found.networks {
                let _ = writeln!(text, "would remove network {n}");
            }
            if found == Default::default() {
                text.push_str("nothing to remove\n");
            }
            super::out::print(text)?;
            return Ok(exit::SUCCESS);
        }
        // Builds whose process died are finalised first (FAILED, with a context saying so).
        match localbuild_store::HistoryStore::open(super::run::store_root())
            .and_then(|h| h.recover())
        {
            Ok(ids) => {
                for id in ids {
                    let _ = writeln!(text, "finalised build {id}");
                }
            }
            Err(e) => eprintln!("warning: the build history could not be checked: {e}"),
        }
        let removed = docker.remove_build_resources(None).await;
        // What was finalised is said even when the removal fails.
        super::out::print(std::mem::take(&mut text))?;
        let removed = removed?;
        for c in &removed.containers {
            let _ = writeln!(text, "removed container {c}");
        }
        for v in &removed.volumes {
            let _ = writeln!(text, "removed volume {v}");
        }
        for n in &removed.networks {
            let _ = writeln!(text, "removed network {n}");
        }
        if removed == Default::default() {
            text.push_str("nothing to remove\n");
        }
        super::out::print(text)?;
        Ok(exit::SUCCESS)
    })
}
