//! S3 over a folder: `<s3 root>/<bucket>/<key>`, the same store S3 sources, pipeline artifact
//! stores and S3 deploys use. A bucket is a folder, an object a file; uploads are written to a
//! scratch folder beside it (`<home>/tmp/s3`) and renamed into place when complete, so a
//! reader never sees half an object and a multi-GB upload goes straight to disk.
//!
//! Names are checked with S3's bucket rule first, then every bucket and key becomes a path only
//! through `localbuild_confine` (no `..`, no absolute path, no link out of the bucket). Keys
//! that a folder cannot hold (empty segments, a trailing `/`, `.`/`..` segments, NUL) are
//! refused with `InvalidArgument`; an object and a "folder" of the same name cannot coexist.
//! No metadata is kept: an object's ETag is made from its size and modification time, its
//! content type is `binary/octet-stream`.

use localbuild_confine::{Root, component};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An S3 error, by S3's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    #[error("The specified bucket does not exist")]
    NoSuchBucket(String),
    #[error("The specified key does not exist.")]
    NoSuchKey(String),
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou(String),
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty(String),
    #[error("The specified bucket is not valid: {0}")]
    InvalidBucketName(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload(String),
    #[error("One or more of the specified parts could not be found: {0}")]
    InvalidPart(String),
    #[error("The list of parts was not in ascending order.")]
    InvalidPartOrder,
    #[error("the S3 store failed: {0}")]
    Io(String),
}

fn io(e: std::io::Error) -> S3Error {
    S3Error::Io(e.to_string())
}

/// An object as listed or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    pub etag: String,
}

/// One page of ListObjects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<Object>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// Where the next page starts (the last key or prefix of this one).
    pub next: Option<String>,
}

/// The S3 store.
#[derive(Debug, Clone)]
pub struct S3 {
    root: PathBuf,
    scratch: PathBuf,
}

/// S3's bucket naming rule (general purpose buckets).
pub fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.ends_with("-s3alias");
    if ok {
        Ok(())
    } else {
        Err(S3Error::InvalidBucketName(name.to_owned()))
    }
}

/// The keys a folder can hold: 1 to 1024 bytes, no empty, `.` or `..` segment, no trailing `/`,
/// no NUL.
pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() || key.len() > 1024 {
        return Err(S3Error::InvalidArgument(format!(
            "Key must be 1 to 1024 bytes long (key {key:?})"
        )));
    }
    let bad = key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        || key.contains('\0');
    if bad {
        return Err(S3Error::InvalidArgument(format!(
            "localbuild keeps objects as files: a key with an empty, '.' or '..' segment, a leading or trailing '/', or NUL is not supported (key {key:?})"
        )));
    }
    Ok(())
}

/// An ETag from what the file system knows (not an MD5: no metadata is kept).
fn etag(size: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("\"{size:016x}{nanos:016x}\"")
}

impl S3 {
    /// The store at `root` (`$LOCALBUILD_HOME/s3`), uploads staged in `scratch` (same file
    /// system, e.g. `$LOCALBUILD_HOME/tmp/s3`).
    pub fn new(root: impl Into<PathBuf>, scratch: impl Into<PathBuf>) -> S3 {
        S3 {
            root: root.into(),
            scratch: scratch.into(),
        }
    }

    fn bucket_root(&self, bucket: &str) -> Result<Root, S3Error> {
        check_bucket_name(bucket)?;
        let name =
            component("bucket", bucket).map_err(|e| S3Error::InvalidBucketName(e.to_string()))?;
        Root::new(&self.root)
            .sub("bucket", name)
            .map_err(|e| S3Error::InvalidBucketName(e.to_string()))
    }

    /// The folder of a bucket that exists.
    fn bucket(&self, bucket: &str) -> Result<Root, S3Error> {
        let root = self.bucket_root(bucket)?;
        match std::fs::symlink_metadata(root.path()) {
            Ok(m) if m.is_dir() => Ok(root),
            _ => Err(S3Error::NoSuchBucket(bucket.to_owned())),
        }
    }

    fn key_path(&self, bucket: &str, key: &str) -> Result<PathBuf, S3Error> {
        let root = self.bucket(bucket)?;
        check_key(key)?;
        root.confined("object key", key)
            .map_err(|e| S3Error::InvalidArgument(e.to_string()))
    }

    /// Every bucket, by name, with its creation time.
    pub fn buckets(&self) -> Result<Vec<(String, SystemTime)>, S3Error> {
        let mut out = vec![];
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && check_bucket_name(&name).is_ok() {
                let at = meta.created().or_else(|_| meta.modified());
                out.push((name, at.unwrap_or(SystemTime::UNIX_EPOCH)));
            }
        }
        out.sort();
        Ok(out)
    }

    /// CreateBucket.
    pub fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let root = self.bucket_root(bucket)?;
        if root.path().is_dir() {
            return Err(S3Error::BucketAlreadyOwnedByYou(bucket.to_owned()));
        }
        std::fs::create_dir_all(root.path()).map_err(io)
    }

    /// HeadBucket.
    pub fn head_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        self.bucket(bucket).map(|_| ())
    }

    /// DeleteBucket (empty buckets only).
    pub fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let root = self.bucket(bucket)?;
        let empty = std::fs::read_dir(root.path()).map_err(io)?.next().is_none();
        if !empty {
            return Err(S3Error::BucketNotEmpty(bucket.to_owned()));
        }
        std::fs::remove_dir(root.path()).map_err(io)
    }

    /// A new file in the scratch folder for an upload; [`S3::commit`] moves it into place.
    pub fn stage(&self) -> Result<PathBuf, S3Error> {
        std::fs::create_dir_all(&self.scratch).map_err(io)?;
        Ok(self
            .scratch
            .join(format!("upload-{}", uuid::Uuid::new_v4().simple())))
    }

    /// Check that `bucket`/`key` can be written (before the body is read).
    pub fn check_target(&self, bucket: &str, key: &str) -> Result<PathBuf, S3Error> {
        self.key_path(bucket, key)
    }

    /// Move a staged file to `bucket`/`key` (replacing an object there).
    pub fn commit(&self, staged: &Path, bucket: &str, key: &str) -> Result<Object, S3Error> {
        let path = self.key_path(bucket, key)?;
        let conflict = || {
            S3Error::InvalidArgument(format!(
                "localbuild keeps objects as files: {key:?} and an object that is a prefix of it (or has it as a prefix) cannot both exist"
            ))
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|_| conflict())?;
        }
        if path.is_dir() {
            return Err(conflict());
        }
        std::fs::rename(staged, &path).map_err(io)?;
        self.object(bucket, key)
    }

    /// An object that exists.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Object, S3Error> {
        let path = self.key_path(bucket, key)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                Ok(Object {
                    key: key.to_owned(),
                    path,
                    size: m.len(),
                    modified,
                    etag: etag(m.len(), modified),
                })
            }
            _ => Err(S3Error::NoSuchKey(key.to_owned())),
        }
    }

    /// DeleteObject: gone (also when it was not there, as S3 answers), and the folders it
    /// leaves empty.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let root = self.bucket(bucket)?;
        let path = self.key_path(bucket, key)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => std::fs::remove_file(&path).map_err(io)?,
            _ => return Ok(()),
        }
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root.path() || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// ListObjects(V2): keys under `prefix` after `after`, folded at `delimiter`, at most
    /// `max` entries (objects and common prefixes together), in key order.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> Result<Listing, S3Error> {
        let root = self.bucket(bucket)?;
        let mut keys = vec![];
        walk(root.path(), "", &mut keys);
        keys.sort();
        let mut listing = Listing::default();
        let mut last_prefix: Option<String> = None;
        let delimiter = delimiter.filter(|d| !d.is_empty());
        for key in keys {
            if !key.starts_with(prefix) {
                continue;
            }
            if let Some(a) = after {
                let folded = delimiter.is_some_and(|d| a.ends_with(d)) && key.starts_with(a);
                if key.as_str() <= a || folded {
                    continue;
                }
            }
            let rest = &key[prefix.len()..];
            let folded = delimiter.and_then(|d| rest.find(d).map(|i| i + d.len()));
            if let Some(end) = folded {
                let common = format!("{prefix}{}", &rest[..end]);
                if last_prefix.as_deref() == Some(common.as_str()) {
                    continue;
                }
                if listing.objects.len() + listing.common_prefixes.len() >= max {
                    listing.truncated = true;
                    break;
                }
                last_prefix = Some(common.clone());
                listing.next = Some(common.clone());
                listing.common_prefixes.push(common);
                continue;
            }
            if listing.objects.len() + listing.common_prefixes.len() >= max {
                listing.truncated = true;
                break;
            }
            if let Ok(o) = self.object(bucket, &key) {
                listing.next = Some(key);
                listing.objects.push(o);
            }
        }
        if !listing.truncated {
            listing.next = None;
        }
        Ok(listing)
    }

    /// The folder of multipart uploads (one folder per upload id).
    fn uploads(&self) -> localbuild_confine::Root {
        localbuild_confine::Root::new(self.scratch.join("multipart"))
    }

    /// Where an upload's parts are kept.
    fn upload_dir(&self, upload_id: &str) -> Result<PathBuf, S3Error> {
        let ok = upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(S3Error::NoSuchUpload(upload_id.to_owned()));
        }
        let dir = self
            .uploads()
            .confined("upload id", upload_id)
            .map_err(|_| S3Error::NoSuchUpload(upload_id.to_owned()))?;
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(S3Error::NoSuchUpload(upload_id.to_owned()))
        }
    }

    /// CreateMultipartUpload: the upload id.
    pub fn create_upload(&self, bucket: &str, key: &str) -> Result<String, S3Error> {
        self.key_path(bucket, key)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self
            .uploads()
            .confined("upload id", &id)
            .map_err(|_| S3Error::NoSuchUpload(id.clone()))?;
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::write(dir.join("target"), format!("{bucket}\n{key}")).map_err(io)?;
        Ok(id)
    }

    fn upload_target(&self, dir: &Path) -> Result<(String, String), S3Error> {
        let text = std::fs::read_to_string(dir.join("target")).map_err(io)?;
        let (b, k) = text
            .split_once('\n')
            .ok_or_else(|| S3Error::Io("a multipart upload lost its target".to_owned()))?;
        Ok((b.to_owned(), k.to_owned()))
    }

    /// The file an UploadPart writes (after checking the upload is for `bucket`/`key`).
    pub fn part_path(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: u32,
    ) -> Result<PathBuf, S3Error> {
        let dir = self.upload_dir(upload_id)?;
        if self.upload_target(&dir)? != (bucket.to_owned(), key.to_owned()) {
            return Err(S3Error::NoSuchUpload(upload_id.to_owned()));
        }
        if !(1..=10000).contains(&part) {
            return Err(S3Error::InvalidArgument(format!(
                "Part number must be an integer between 1 and 10000, inclusive (partNumber {part})"
            )));
        }
        Ok(dir.join(format!("part-{part:05}")))
    }

    /// CompleteMultipartUpload: the parts, in ascending order, joined into the object.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[u32],
    ) -> Result<Object, S3Error> {
        let dir = self.upload_dir(upload_id)?;
        if self.upload_target(&dir)? != (bucket.to_owned(), key.to_owned()) {
            return Err(S3Error::NoSuchUpload(upload_id.to_owned()));
        }
        if parts.is_empty() {
            return Err(S3Error::InvalidArgument(
                "You must specify at least one part".to_owned(),
            ));
        }
        if parts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(S3Error::InvalidPartOrder);
        }
        let staged = self.stage()?;
        {
            let mut out = std::fs::File::create(&staged).map_err(io)?;
            for n in parts {
                let mut part = std::fs::File::open(dir.join(format!("part-{n:05}")))
                    .map_err(|_| S3Error::InvalidPart(format!("part {n}")))?;
                std::io::copy(&mut part, &mut out).map_err(io)?;
            }
        }
        let object = self.commit(&staged, bucket, key);
        if object.is_err() {
            let _ = std::fs::remove_file(&staged);
        }
        let _ = std::fs::remove_dir_all(&dir);
        object
    }

    /// AbortMultipartUpload.
    pub fn abort_upload(&self, upload_id: &str) -> Result<(), S3Error> {
        let dir = self.upload_dir(upload_id)?;
        std::fs::remove_dir_all(dir).map_err(io)
    }

    /// CopyObject.
    pub fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<Object, S3Error> {
        let source = self.object(from.0, from.1)?;
        self.key_path(to.0, to.1)?;
        let staged = self.stage()?;
        std::fs::copy(&source.path, &staged).map_err(io)?;
        let object = self.commit(&staged, to.0, to.1);
        if object.is_err() {
            let _ = std::fs::remove_file(&staged);
        }
        object
    }
}

/// Every regular file under `dir` as a key (`/`-separated); links are never followed.
fn walk(dir: &Path, prefix: &str, keys: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let key = format!("{prefix}{name}");
        if kind.is_dir() {
            walk(&entry.path(), &format!("{key}/"), keys);
        } else if kind.is_file() {
            keys.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &S3, bucket: &str, key: &str, text: &str) -> Object {
        let staged = s.stage().unwrap();
        std::fs::write(&staged, text).unwrap();
        s.commit(&staged, bucket, key).unwrap()
    }

    #[test]
    fn buckets_objects_and_listing_with_a_delimiter() {
        let home = tempfile::tempdir().unwrap();
        let s = S3::new(home.path().join("s3"), home.path().join("tmp/s3"));
        assert!(matches!(
            s.create_bucket("Bad_Name"),
            Err(S3Error::InvalidBucketName(_))
        ));
        s.create_bucket("site").unwrap();
        assert!(matches!(
            s.create_bucket("site"),
            Err(S3Error::BucketAlreadyOwnedByYou(_))
        ));
        put(&s, "site", "a.txt", "a");
        put(&s, "site", "dir/b.txt", "bb");
        put(&s, "site", "dir/sub/c.txt", "ccc");
        put(&s, "site", "e.txt", "e");
        assert_eq!(s.object("site", "dir/b.txt").unwrap().size, 2);
        let l = s.list("site", "", Some("/"), None, 1000).unwrap();
        let keys: Vec<&str> = l.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a.txt", "e.txt"]);
        assert_eq!(l.common_prefixes, ["dir/"]);
        let l = s.list("site", "dir/", None, None, 2).unwrap();
        let keys: Vec<&str> = l.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["dir/b.txt", "dir/sub/c.txt"]);
        assert!(!l.truncated);
        let page = s.list("site", "", None, None, 2).unwrap();
        assert!(page.truncated);
        let rest = s.list("site", "", None, page.next.as_deref(), 2).unwrap();
        let keys: Vec<&str> = rest.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["dir/sub/c.txt", "e.txt"]);
        assert!(matches!(
            s.delete_bucket("site"),
            Err(S3Error::BucketNotEmpty(_))
        ));
        s.delete_object("site", "dir/sub/c.txt").unwrap();
        assert!(!home.path().join("s3/site/dir/sub").exists());
        s.delete_object("site", "never-there").unwrap();
    }

    #[test]
    fn keys_never_leave_their_bucket() {
        let home = tempfile::tempdir().unwrap();
        let s = S3::new(home.path().join("s3"), home.path().join("tmp/s3"));
        s.create_bucket("bk1").unwrap();
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/",
            ".",
            "a\0b",
        ] {
            assert!(
                matches!(s.check_target("bk1", key), Err(S3Error::InvalidArgument(_))),
                "{key:?}"
            );
        }
        std::os::unix::fs::symlink("/", home.path().join("s3/bk1/out")).unwrap();
        assert!(matches!(
            s.check_target("bk1", "out/etc/passwd"),
            Err(S3Error::InvalidArgument(_))
        ));
        assert!(matches!(
            s.object("nope", "k"),
            Err(S3Error::NoSuchBucket(_))
        ));
    }

    #[test]
    fn multipart_uploads_join_their_parts_in_order() {
        let home = tempfile::tempdir().unwrap();
        let s = S3::new(home.path().join("s3"), home.path().join("tmp/s3"));
        s.create_bucket("big").unwrap();
        let id = s.create_upload("big", "f.bin").unwrap();
        std::fs::write(s.part_path("big", "f.bin", &id, 2).unwrap(), "world").unwrap();
        std::fs::write(s.part_path("big", "f.bin", &id, 1).unwrap(), "hello ").unwrap();
        assert_eq!(
            s.complete_upload("big", "f.bin", &id, &[2, 1]).unwrap_err(),
            S3Error::InvalidPartOrder
        );
        let o = s.complete_upload("big", "f.bin", &id, &[1, 2]).unwrap();
        assert_eq!(std::fs::read_to_string(o.path).unwrap(), "hello world");
        assert!(matches!(
            s.complete_upload("big", "f.bin", &id, &[1]),
            Err(S3Error::NoSuchUpload(_))
        ));
    }

    #[test]
    fn a_hostile_upload_id_names_no_upload() {
        let home = tempfile::tempdir().unwrap();
        let s = S3::new(home.path().join("s3"), home.path().join("tmp/s3"));
        s.create_bucket("big").unwrap();
        for id in [
            "../../../../tmp",
            "/etc",
            "..",
            "",
            "0123456789abcdef0123456789abcdef/..",
        ] {
            assert!(
                matches!(
                    s.part_path("big", "f", id, 1),
                    Err(S3Error::NoSuchUpload(_))
                ),
                "{id:?}"
            );
        }
    }
}
