//! Where builds are kept: `<root>/builds/<project>/<number>/{build.json,build.log}`.
//!
//! Build numbers count per project from 1; a number is claimed by creating its folder, which is
//! atomic, so concurrent builds of one project never share a number.

use std::path::{Path, PathBuf};

/// Claim the next build number of `project`; returns it and its (new, empty) folder.
pub fn claim_build_dir(root: &Path, project: &str) -> std::io::Result<(u64, PathBuf)> {
    let dir = root.join("builds").join(project);
    std::fs::create_dir_all(&dir)?;
    let mut next = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    loop {
        let path = dir.join(next.to_string());
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok((next, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_numbers_count_per_project() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(claim_build_dir(root.path(), "a").unwrap().0, 1);
        assert_eq!(claim_build_dir(root.path(), "a").unwrap().0, 2);
        assert_eq!(claim_build_dir(root.path(), "b").unwrap().0, 1);
        let (n, dir) = claim_build_dir(root.path(), "a").unwrap();
        assert_eq!(n, 3);
        assert!(dir.ends_with("builds/a/3"));
    }
}
