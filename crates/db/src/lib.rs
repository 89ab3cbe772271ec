//! `localbuild-db`: the embedded history database of localbuild.
//!
//! localbuild keeps CodeBuild projects, builds and the other services' documents
//! (batch builds, pipelines, ECS, IAM, ECR, parameters and secrets) in a single
//! SQLite file. Several processes use that file at the
//! same time (a one-shot CLI run and a long-lived server), so:
//!
//! * the database runs in WAL mode with a busy timeout, so readers never block
//!   writers and writers wait for each other instead of failing;
//! * every write is one short `BEGIN IMMEDIATE` transaction, which takes the
//!   write lock up front; read-then-write sequences (such as allocating the
//!   next build number) are therefore atomic across processes;
//! * the schema is versioned through `PRAGMA user_version` and upgraded by
//!   [`MIGRATIONS`] when a file is opened.
//!
//! Records are stored as opaque JSON text (the AWS wire shapes produced by the
//! caller). This crate only knows the few fields that are passed alongside the
//! JSON for indexing (names, build numbers, start times, statuses, owners).
//!
//! The API is blocking; async callers should wrap calls in
//! `tokio::task::spawn_blocking`. [`Db`] is a cheap `Clone + Send + Sync`
//! handle around one connection.
//!
//! The [`process`] module provides the Linux process-liveness helpers used to
//! find builds whose owning process died ([`Db::orphans`]).

#![forbid(unsafe_code)]

mod builds;
mod docs;
pub mod process;
mod projects;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

pub use builds::{BuildQuery, BuildRow, DEFAULT_PAGE_SIZE, NewBuild};
pub use process::{process_alive, this_process};
pub use projects::ProjectSort;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};

/// How long a connection waits for another connection's write lock before
/// giving up with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors returned by [`Db`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The addressed record does not exist.
    #[error("{what} not found: {key}")]
    NotFound {
        /// Kind of record (`"project"`, `"build"`, or a document kind).
        what: String,
        /// Name, id or key that was looked up.
        key: String,
    },
    /// A record with the same name, id or key already exists.
    #[error("{what} already exists: {key}")]
    AlreadyExists {
        /// Kind of record (`"project"`, `"build"`, or a document kind).
        what: String,
        /// The conflicting name, id or key.
        key: String,
    },
    /// An argument was rejected (for example a malformed pagination token).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The file was written by a newer localbuild with a schema this version
    /// does not understand.
    #[error("database schema version {found} is newer than supported version {supported}")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// Highest version this crate can migrate to ([`SCHEMA_VERSION`]).
        supported: i64,
    },
    /// An error reported by SQLite.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An I/O error (for example while creating the parent directory).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl DbError {
    pub(crate) fn not_found(what: &str, key: &str) -> Self {
        DbError::NotFound {
            what: what.to_owned(),
            key: key.to_owned(),
        }
    }

    pub(crate) fn already_exists(what: &str, key: &str) -> Self {
        DbError::AlreadyExists {
            what: what.to_owned(),
            key: key.to_owned(),
        }
    }

    /// True if this error is SQLite reporting a lock it could not get in time
    /// (`SQLITE_BUSY` / `SQLITE_LOCKED`).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            DbError::Sqlite(e) if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            )
        )
    }
}

/// Handle to the history database.
///
/// Cloning is cheap and clones share one SQLite connection behind a mutex.
/// Different processes (or independent `Db::open` calls) get their own
/// connections and coordinate through SQLite's file locks.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: Option<PathBuf>,
}

impl Db {
    /// Opens (creating if needed) the database file at `path`, creating its
    /// parent directories, configuring WAL mode, the busy timeout and foreign
    /// keys, and applying any pending [`MIGRATIONS`].
    pub fn open(path: &Path) -> Result<Db, DbError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a fresh file to WAL needs an exclusive lock; when several
        // processes open a new file at once this can report busy, so retry.
        retry_busy(|| {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            Ok(mode)
        })?;
        Self::configure_and_migrate(conn, Some(path.to_path_buf()))
    }

    /// Opens a private in-memory database (no WAL, not shared between
    /// handles other than clones). Handy for callers' unit tests.
    pub fn open_in_memory() -> Result<Db, DbError> {
        let conn = Connection::open_in_memory()?;
        Self::configure_and_migrate(conn, None)
    }

    fn configure_and_migrate(mut conn: Connection, path: Option<PathBuf>) -> Result<Db, DbError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL makes NORMAL durable against process crashes; only an OS crash
        // or power loss can drop the most recent commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        retry_busy(|| schema::migrate(&mut conn))?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Path of the database file (`None` for [`Db::open_in_memory`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Current schema version of the open file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, DbError> {
        let conn = self.lock();
        Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Runs `PRAGMA integrity_check`; true when SQLite reports `ok`.
    pub fn integrity_check(&self) -> Result<bool, DbError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows.len() == 1 && rows[0] == "ok")
    }

    /// Locks the shared connection. A poisoned mutex is recovered: any
    /// transaction that was open when the panic happened has been rolled back
    /// by `Transaction`'s drop, so the connection is still consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction and commits it if `f`
    /// succeeds (rolls back otherwise).
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Retries `f` while it reports `SQLITE_BUSY`/`SQLITE_LOCKED`, for at most
/// [`BUSY_TIMEOUT`]. Used only for open-time setup, where some lock
/// acquisitions do not go through the busy handler.
fn retry_busy<T>(mut f: impl FnMut() -> Result<T, DbError>) -> Result<T, DbError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(e) if e.is_busy() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Converts a stored INTEGER back into `u64`, rejecting negative values.
pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, rusqlite::Error> {
    u64::try_from(v).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            format!("negative {what}: {v}").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn db_is_send_sync_clone() {
        assert_send_sync_clone::<Db>();
    }

    #[test]
    fn open_sets_pragmas_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/history.db");
        let db = Db::open(&path).unwrap();
        assert!(path.exists());
        assert_eq!(db.path(), Some(path.as_path()));
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        let conn = db.lock();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let timeout: i64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 5000);
    }

    #[test]
    fn newer_schema_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        drop(Db::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        match Db::open(&path) {
            Err(DbError::SchemaTooNew { found, supported }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn in_memory_works() {
        let db = Db::open_in_memory().unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(db.integrity_check().unwrap());
        assert_eq!(db.path(), None);
    }
}
