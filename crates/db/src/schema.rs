//! Schema definition and the `PRAGMA user_version` migration runner.

use rusqlite::{Connection, TransactionBehavior};

use crate::DbError;

/// Schema migrations, applied in order. Migration `i` (0-based) upgrades a
/// file from `user_version = i` to `user_version = i + 1`.
///
/// Never edit a released entry; append a new string to change the schema.
pub const MIGRATIONS: &[&str] = &[
    // ---- version 1 ----
    r#"
CREATE TABLE projects (
    name          TEXT PRIMARY KEY NOT NULL,
    json          TEXT NOT NULL,
    created       REAL NOT NULL,
    last_modified REAL NOT NULL
);

-- Last build number handed out per project. Kept separately from `builds`
-- so that numbers are never reused after builds (or the project) are deleted.
CREATE TABLE build_counters (
    project     TEXT PRIMARY KEY NOT NULL,
    last_number INTEGER NOT NULL
);

CREATE TABLE builds (
    id          TEXT PRIMARY KEY NOT NULL,
    project     TEXT NOT NULL,
    number      INTEGER NOT NULL,
    arn         TEXT NOT NULL,
    start_time  REAL NOT NULL,
    status      TEXT NOT NULL,
    complete    INTEGER NOT NULL DEFAULT 0,
    json        TEXT NOT NULL,
    log_path    TEXT,
    owner_pid   INTEGER NOT NULL,
    owner_start INTEGER NOT NULL,
    UNIQUE (project, number)
);
CREATE INDEX builds_project_start ON builds (project, start_time, number);
CREATE INDEX builds_start ON builds (start_time, number);
CREATE INDEX builds_status ON builds (status);
CREATE INDEX builds_complete ON builds (complete);

-- Generic documents for later services (pipelines, executions, ...).
CREATE TABLE docs (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"#,
];

/// Schema version this crate migrates to (`MIGRATIONS.len()`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings `conn` up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    migrate_with(conn, MIGRATIONS)
}

/// Applies the pending entries of `migrations` in one `BEGIN IMMEDIATE`
/// transaction, so concurrent openers serialize and each migration runs once.
pub(crate) fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), DbError> {
    let supported = migrations.len() as i64;
    // Cheap check without taking the write lock.
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current == supported {
        return Ok(());
    }
    if current > supported {
        return Err(DbError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated.
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > supported {
        return Err(DbError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_migration_is_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);

        let mut v2: Vec<&str> = MIGRATIONS.to_vec();
        v2.push("ALTER TABLE builds ADD COLUMN extra TEXT; CREATE TABLE t2 (x INTEGER);");
        migrate_with(&mut conn, &v2).unwrap();
        // Running again is a no-op (would fail if the ALTER ran twice).
        migrate_with(&mut conn, &v2).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        conn.execute("INSERT INTO t2 (x) VALUES (1)", []).unwrap();

        // The old list now refuses the newer file.
        assert!(matches!(
            migrate(&mut conn),
            Err(DbError::SchemaTooNew {
                found: 2,
                supported: 1
            })
        ));
    }

    #[test]
    fn failed_migration_rolls_back() {
        let mut conn = Connection::open_in_memory().unwrap();
        let bad: Vec<&str> = vec![MIGRATIONS[0], "CREATE TABLE ok (x); THIS IS NOT SQL;"];
        assert!(migrate_with(&mut conn, &bad).is_err());
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0, "whole upgrade is one transaction");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('projects', 'ok')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }
}
