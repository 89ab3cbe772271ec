//! A generic `(kind, key) -> JSON` document table for services that do not
//! need their own indexed columns (pipelines, executions, connections,
//! batch builds, ...).

use rusqlite::{OptionalExtension, params};

use crate::{Db, DbError};

impl Db {
    /// Inserts or replaces a document.
    pub fn put_doc(&self, kind: &str, key: &str, json: &str) -> Result<(), DbError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO docs (kind, key, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, key) DO UPDATE SET json = excluded.json",
            )?
            .execute(params![kind, key, json])?;
            Ok(())
        })
    }

    /// Inserts a document; [`DbError::AlreadyExists`] (with `what = kind`) if
    /// the key is taken.
    pub fn insert_doc(&self, kind: &str, key: &str, json: &str) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "INSERT INTO docs (kind, key, json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, key) DO NOTHING",
                )?
                .execute(params![kind, key, json])?;
            if n == 0 {
                return Err(DbError::already_exists(kind, key));
            }
            Ok(())
        })
    }

    /// Replaces an existing document; [`DbError::NotFound`] (with
    /// `what = kind`) if it does not exist.
    pub fn update_doc(&self, kind: &str, key: &str, json: &str) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE docs SET json = ?3 WHERE kind = ?1 AND key = ?2")?
                .execute(params![kind, key, json])?;
            if n == 0 {
                return Err(DbError::not_found(kind, key));
            }
            Ok(())
        })
    }

    /// Returns a document's JSON, if present.
    pub fn get_doc(&self, kind: &str, key: &str) -> Result<Option<String>, DbError> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached("SELECT json FROM docs WHERE kind = ?1 AND key = ?2")?
            .query_row(params![kind, key], |r| r.get(0))
            .optional()?)
    }

    /// All `(key, json)` of `kind` whose key starts with `prefix` (`""` for
    /// all), ordered by key (bytewise).
    pub fn list_docs(&self, kind: &str, prefix: &str) -> Result<Vec<(String, String)>, DbError> {
        let conn = self.lock();
        // Keys are compared bytewise (BINARY collation), so every key with the
        // prefix sorts at or after it; stop at the first key without it.
        let mut stmt = conn.prepare_cached(
            "SELECT key, json FROM docs WHERE kind = ?1 AND key >= ?2 ORDER BY key",
        )?;
        let mut rows = stmt.query(params![kind, prefix])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, r.get(1)?));
        }
        Ok(out)
    }

    /// Deletes a document; returns whether it existed.
    pub fn delete_doc(&self, kind: &str, key: &str) -> Result<bool, DbError> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM docs WHERE kind = ?1 AND key = ?2")?
                .execute(params![kind, key])?
                > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_crud_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("d.db")).unwrap();

        db.put_doc("pipeline", "p1", r#"{"v":1}"#).unwrap();
        db.put_doc("pipeline", "p1", r#"{"v":2}"#).unwrap();
        assert_eq!(
            db.get_doc("pipeline", "p1").unwrap().as_deref(),
            Some(r#"{"v":2}"#)
        );
        match db.insert_doc("pipeline", "p1", "{}") {
            Err(DbError::AlreadyExists { what, key }) => {
                assert_eq!((what.as_str(), key.as_str()), ("pipeline", "p1"));
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        // Same key, different kind is independent.
        db.insert_doc("execution", "p1", "{}").unwrap();
        assert_eq!(db.get_doc("nothing", "p1").unwrap(), None);

        db.update_doc("pipeline", "p1", r#"{"v":3}"#).unwrap();
        assert!(matches!(
            db.update_doc("pipeline", "zz", "{}"),
            Err(DbError::NotFound { .. })
        ));

        for k in [
            "exec/p1/b",
            "exec/p1/a",
            "exec/p10/a",
            "exec/p2/a",
            "exec/p1",
        ] {
            db.put_doc("execution", k, &format!("\"{k}\"")).unwrap();
        }
        let keys = |p: &str| -> Vec<String> {
            db.list_docs("execution", p)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys("exec/p1/"), ["exec/p1/a", "exec/p1/b"]);
        assert_eq!(
            keys("exec/p1"),
            ["exec/p1", "exec/p1/a", "exec/p1/b", "exec/p10/a"]
        );
        assert_eq!(keys("").len(), 6);
        assert!(keys("nope").is_empty());
        assert_eq!(
            db.list_docs("execution", "exec/p2").unwrap(),
            [("exec/p2/a".to_string(), "\"exec/p2/a\"".to_string())]
        );

        assert!(db.delete_doc("pipeline", "p1").unwrap());
        assert!(!db.delete_doc("pipeline", "p1").unwrap());
        assert_eq!(db.get_doc("pipeline", "p1").unwrap(), None);
    }
}
