//! The store seam: where builds are numbered and kept.
//!
//! The engine owns no paths. When a build is submitted it asks the [`Store`] for a number and a
//! [`Place`] (where its log, artifacts and reports go); at every phase change it hands the live
//! record to [`Store::save`], so a process killed mid-build leaves a record that says where the
//! build was. `localbuild-store` implements it; the methods block (file and database work), and
//! the engine calls them off the async threads.

use crate::record::{Build, BuildBatch};
use std::path::PathBuf;

/// Where one build's files go.
#[derive(Debug, Clone)]
pub struct Place {
    /// The build number: 1, 2, … per project, never reused.
    pub number: u64,
    /// The folder holding the build's files (shown to the user).
    pub dir: PathBuf,
    /// The build log (the agent's lines and command output, masked).
    pub log: PathBuf,
    /// Default folders for artifacts and report files.
    pub artifacts: PathBuf,
    pub reports: PathBuf,
}

/// Where one batch's files go (its record; combined artifacts).
#[derive(Debug, Clone)]
pub struct BatchPlace {
    /// The batch number: 1, 2, … per project, never reused (`buildBatchNumber`).
    pub number: u64,
    pub dir: PathBuf,
    /// The batch's artifacts folder (`combine-artifacts` puts each build's under its identifier).
    pub artifacts: PathBuf,
}

/// A store failure, phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct StoreError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Builds' numbers, records and logs. One value per process, shared by every build.
pub trait Store: Send + Sync + 'static {
    /// Claim the next build number of `project` for the build `build_id` and make its place.
    /// `project` has passed [`crate::request::check_project_name`].
    fn create(&self, project: &str, build_id: &str) -> Result<Place, StoreError>;

    /// Keep the record as it is now (called at every phase change and at the end).
    fn save(&self, build: &Build) -> Result<(), StoreError>;

    /// Where `project`'s saved caches live.
    fn cache_dir(&self, project: &str) -> PathBuf;

    /// Claim the next batch number of `project` for the batch `batch_id` and make its place.
    /// A store that keeps no batches refuses.
    fn create_batch(&self, project: &str, batch_id: &str) -> Result<BatchPlace, StoreError> {
        let _ = batch_id;
        Err(StoreError {
            action: "create a batch build in",
            path: PathBuf::from(project),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this store keeps no batch builds",
            ),
        })
    }

    /// The place of the batch `number` of `project` made earlier by [`Store::create_batch`]
    /// (a batch being retried).
    fn reopen_batch(&self, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
        let _ = number;
        self.create_batch(project, "")
    }

    /// Keep the batch record as it is now (called at every change and at the end).
    fn save_batch(&self, batch: &BuildBatch) -> Result<(), StoreError> {
        let _ = batch;
        Ok(())
    }
}

/// The first wait between two attempts of [`save_until_kept`]; it doubles up to
/// [`RETRY_SAVE_MAX`].
pub const RETRY_SAVE_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest wait between two attempts of [`save_until_kept`].
pub const RETRY_SAVE_MAX: std::time::Duration = std::time::Duration::from_secs(15);

/// Save a final record the store could not take (a full disk), again and again with growing
/// waits, until it is kept; the failure is traced once, and the success. The record never
/// changes any more, so a later attempt cannot overwrite a newer one. Runs as long as the
/// process does (a server keeps trying; a CLI run that exits leaves the record to
/// `localbuild gc`).
pub async fn save_until_kept(store: std::sync::Arc<dyn Store>, build: Build) {
    let mut wait = RETRY_SAVE_FIRST;
    let mut said = false;
    loop {
        tokio::time::sleep(wait).await;
        let (s, b) = (store.clone(), build.clone());
        match tokio::task::spawn_blocking(move || s.save(&b)).await {
            Ok(Ok(())) => {
                if said {
                    tracing::warn!(
                        target: crate::handle::STORE_FAILURE_TARGET,
                        build = %build.id,
                        "the final record is saved now"
                    );
                }
                return;
            }
            Ok(Err(e)) if !said => {
                tracing::warn!(
                    target: crate::handle::STORE_FAILURE_TARGET,
                    build = %build.id,
                    "the final record is not saved yet ({e}); trying again until it is"
                );
                said = true;
            }
            Ok(Err(_)) => {}
            // The blocking pool is shutting down with the process.
            Err(_) => return,
        }
        wait = (wait * 2).min(RETRY_SAVE_MAX);
    }
}

/// The file a saved cache is kept in, inside [`Store::cache_dir`]: `<key>.tar` with the key's
/// unsafe characters replaced, or `default.tar` for a cache without a key.
pub fn cache_file_name(key: Option<&str>) -> String {
    match key {
        None => "default.tar".to_owned(),
        Some(key) => format!("{}.tar", safe_file_name(key)),
    }
}

/// `name` as one file name: characters other than letters, digits, `.`, `_` and `-` become
/// `_`, and leading dots go; nothing left is `_`. The result is always one plain path component.
pub fn safe_file_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned();
    if name.is_empty() {
        "_".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::cache_file_name;

    #[test]
    fn cache_keys_become_safe_file_names() {
        assert_eq!(cache_file_name(None), "default.tar");
        assert_eq!(cache_file_name(Some("npm-abc")), "npm-abc.tar");
        assert_eq!(cache_file_name(Some("a/b:c")), "a_b_c.tar");
        assert_eq!(cache_file_name(Some("../x")), "_x.tar");
    }
}
