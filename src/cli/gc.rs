//! `localbuild gc`: remove containers, volumes and networks left by builds that were killed,
//! and containers kept with `run --keep-container`; `--dry-run` only lists them.

use super::exit;

pub fn run(dry_run: bool) -> u8 {
    super::with_docker(|docker| async move {
        if dry_run {
            return match docker.list_build_resources(None).await {
                Ok(found) => {
                    for c in &found.containers {
                        println!("would remove container {c}");
                    }
                    for v in &found.volumes {
                        println!("would remove volume {v}");
                    }
                    for n in &found.networks {
                        println!("would remove network {n}");
                    }
                    if found == Default::default() {
                        println!("nothing to remove");
                    }
                    exit::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAULT
                }
            };
        }
        // Builds whose process died are finalised first (FAILED, with a context saying so).
        match localbuild_store::HistoryStore::open(super::run::store_root())
            .and_then(|h| h.recover())
        {
            Ok(ids) => ids.iter().for_each(|id| println!("finalised build {id}")),
            Err(e) => eprintln!("warning: the build history could not be checked: {e}"),
        }
        match docker.remove_build_resources(None).await {
            Ok(removed) => {
                for c in &removed.containers {
                    println!("removed container {c}");
                }
                for v in &removed.volumes {
                    println!("removed volume {v}");
                }
                for n in &removed.networks {
                    println!("removed network {n}");
                }
                if removed == Default::default() {
                    println!("nothing to remove");
                }
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAULT
            }
        }
    })
}
