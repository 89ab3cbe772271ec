//! `localbuild cache ls|rm`: the build caches kept under `<store>/cache/<project>/<key>.tar`.

use super::CacheCommand;
use super::error::CliError;
use super::exit;
use super::run::store_root;
use localbuild_engine::store::cache_file_name;

pub fn run(cmd: &CacheCommand) -> Result<u8, CliError> {
    let root = store_root().join("cache");
    match cmd {
        CacheCommand::Ls { project } => {
            let mut projects: Vec<_> = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|p| project.as_ref().is_none_or(|want| want == p))
                .collect();
            projects.sort();
            let mut text = format!("{:<24} {:<40} {:>12}\n", "PROJECT", "KEY", "BYTES");
            for p in projects {
                let mut files: Vec<_> = std::fs::read_dir(root.join(&p))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let key = name.strip_suffix(".tar")?.to_owned();
                        Some((key, e.metadata().map(|m| m.len()).unwrap_or(0)))
                    })
                    .collect();
                files.sort();
                for (key, size) in files {
                    text.push_str(&format!("{p:<24} {key:<40} {size:>12}\n"));
                }
            }
            super::out::print(text)?;
            Ok(exit::SUCCESS)
        }
        CacheCommand::Rm { project, key } => {
            localbuild_engine::request::check_project_name(project)?;
            let dir = root.join(project);
            let result = match key {
                Some(k) => std::fs::remove_file(dir.join(cache_file_name(Some(k)))),
                None => std::fs::remove_dir_all(&dir),
            };
            match result {
                Ok(()) => Ok(exit::SUCCESS),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(CliError::Failed("no such cache".into()))
                }
                Err(e) => Err(CliError::Failed(e.to_string())),
            }
        }
    }
}
