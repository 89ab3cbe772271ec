//! The artifact store and S3 store as files: zips made and unpacked (entries confined), S3
//! paths (bucket one component, key confined), object versions, scratch folders under
//! `$LOCALBUILD_HOME/tmp`.

use super::*;

/// Put what a build made (a folder, zipped; or a file, copied) at `dest` in the artifact store.
pub async fn store_artifact(made: PathBuf, dest: PathBuf) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        if made.is_dir() {
            zip_dir(&made, &dest)
        } else {
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::copy(&made, &dest).map(drop)
        }
    })
    .await;
    match written {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Zip a folder (without `.git`; symlinks are left out) to `dest`.
pub fn zip_dir(src: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    let file = std::fs::File::create(dest)?;
    let mut zip = zip::ZipWriter::new(file);
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let Ok(rel) = path.strip_prefix(src) else {
                continue;
            };
            let name = rel.to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let opts = zip::write::SimpleFileOptions::default()
                .unix_permissions(meta.permissions().mode() & 0o777);
            if meta.is_dir() {
                zip.add_directory(format!("{name}/"), opts)
                    .map_err(std::io::Error::other)?;
                stack.push(path);
            } else if meta.is_file() {
                zip.start_file(name, opts).map_err(std::io::Error::other)?;
                let mut f = std::fs::File::open(&path)?;
                std::io::copy(&mut f, &mut zip)?;
            }
        }
    }
    zip.finish().map_err(std::io::Error::other)?.flush()
}

/// `<s3>/<bucket>/<key>` when both are relative names without `..` (and the bucket one
/// component).
pub fn s3_path(s3: &Path, bucket: &str, key: Option<&str>) -> Option<PathBuf> {
    let bucket = localbuild_confine::Root::new(s3)
        .sub(
            "bucket",
            localbuild_confine::component("bucket", bucket).ok()?,
        )
        .ok()?;
    match key {
        Some(k) => bucket
            .confined("object key", k.trim_start_matches('/'))
            .ok(),
        None => Some(bucket.path().to_path_buf()),
    }
}

/// An S3 object's local version: its size and modification time (what the watcher compares).
pub fn s3_version(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{}-{}", meta.len(), modified.as_nanos()))
}

/// A scratch folder for one action (a checkout, unpacked input artifacts), removed when
/// dropped: under `$LOCALBUILD_HOME/tmp`, never the system's `/tmp`.
pub fn scratch(exec: &Executor) -> std::io::Result<tempfile::TempDir> {
    let dir = &exec.tmp;
    std::fs::create_dir_all(dir)?;
    tempfile::Builder::new().prefix("action-").tempdir_in(dir)
}

/// FNV-1a, 64 bits: the local `ETag` of an S3 source object.
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Unpack a zip into `dest`, replacing files that exist (an S3 deploy over an earlier one).
pub fn unzip_replacing(zip: &Path, dest: &Path, tmp: &Path) -> std::io::Result<()> {
    unzip(zip, tmp)?;
    let mut stack = vec![tmp.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let Ok(rel) = path.strip_prefix(tmp) else {
                continue;
            };
            let target = localbuild_confine::Root::new(dest)
                .confined("artifact entry", &rel.to_string_lossy())
                .map_err(std::io::Error::other)?;
            if path.is_dir() {
                std::fs::create_dir_all(&target)?;
                stack.push(path);
            } else {
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p)?;
                }
                // Never write through a symlink that is there.
                if std::fs::symlink_metadata(&target).is_ok() {
                    std::fs::remove_file(&target)?;
                }
                std::fs::copy(&path, &target)?;
            }
        }
    }
    Ok(())
}

/// Unpack a zip into `dest` (entries that would leave it are refused).
pub fn unzip(zip: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dest)?;
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(zip)?).map_err(std::io::Error::other)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(std::io::Error::other)?;
        // The zip is a build's or a source's output: its names are confined like any input.
        let path = localbuild_confine::Root::new(dest)
            .confined("zip entry", entry.name())
            .map_err(std::io::Error::other)?;
        if entry.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::io::copy(&mut entry, &mut out)?;
        if let Some(mode) = entry.unix_mode() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

pub fn read_zip_entry(zip: &Path, name: &str) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut entry = archive.by_name(name).map_err(|e| e.to_string())?;
    let mut text = String::new();
    entry
        .by_ref()
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
