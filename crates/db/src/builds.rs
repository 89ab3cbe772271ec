//! CodeBuild builds: numbering, status updates, listing with pagination,
//! deletion and orphan detection.

use std::collections::HashSet;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use crate::{Db, DbError, to_u64};

/// Page size CodeBuild uses for `ListBuilds` / `ListBuildsForProject`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Indexed fields of a build being started; see [`Db::insert_build`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewBuild {
    /// Build id (`project:uuid`).
    pub id: String,
    /// Project name.
    pub project: String,
    /// Build ARN.
    pub arn: String,
    /// Start time, epoch seconds.
    pub start_time: f64,
    /// Initial `buildStatus` (normally `IN_PROGRESS`).
    pub status: String,
    /// Pid of the process running the build.
    pub owner_pid: u32,
    /// Start-time token of that process (see [`crate::this_process`]).
    pub owner_start: u64,
    /// Path of the build's log file, if any.
    pub log_path: Option<String>,
}

/// A stored build.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildRow {
    /// Build id.
    pub id: String,
    /// Project name.
    pub project: String,
    /// Build number within the project (1, 2, ...).
    pub number: u64,
    /// Build ARN.
    pub arn: String,
    /// Start time, epoch seconds.
    pub start_time: f64,
    /// Last stored `buildStatus`.
    pub status: String,
    /// Whether the build reached a final state.
    pub complete: bool,
    /// The `Build` JSON as last stored.
    pub json: String,
    /// Path of the build's log file, if any.
    pub log_path: Option<String>,
    /// Pid of the process that owns (runs) the build.
    pub owner_pid: u32,
    /// Start-time token of the owning process.
    pub owner_start: u64,
}

const BUILD_COLUMNS: &str = "id, project, number, arn, start_time, status, complete, json, \
                             log_path, owner_pid, owner_start";

impl BuildRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<BuildRow> {
        Ok(BuildRow {
            id: r.get(0)?,
            project: r.get(1)?,
            number: to_u64(r.get(2)?, "build number")?,
            arn: r.get(3)?,
            start_time: r.get(4)?,
            status: r.get(5)?,
            complete: r.get(6)?,
            json: r.get(7)?,
            log_path: r.get(8)?,
            owner_pid: r.get(9)?,
            // Stored as the two's-complement i64 of the u64 token.
            owner_start: r.get::<_, i64>(10)? as u64,
        })
    }
}

/// Query for [`Db::list_builds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildQuery {
    /// Only builds of this project (`ListBuildsForProject`).
    pub project: Option<String>,
    /// Only builds whose stored status equals this.
    pub status: Option<String>,
    /// Newest first (`DESCENDING`, the CodeBuild default) when true.
    pub descending: bool,
    /// Maximum ids per page; 0 is treated as 1.
    pub page_size: usize,
    /// Token returned by the previous page, if continuing.
    pub next_token: Option<String>,
}

impl Default for BuildQuery {
    fn default() -> Self {
        BuildQuery {
            project: None,
            status: None,
            descending: true,
            page_size: DEFAULT_PAGE_SIZE,
            next_token: None,
        }
    }
}

/// Position after which the next page starts: the last row's sort key.
#[derive(Debug, PartialEq)]
struct Cursor {
    descending: bool,
    start_time: f64,
    number: i64,
    id: String,
}

impl Cursor {
    /// Encodes as hex of `d|a:<f64 bits>:<number>:<id>`. Opaque to callers.
    fn encode(&self) -> String {
        let raw = format!(
            "{}:{:016x}:{}:{}",
            if self.descending { 'd' } else { 'a' },
            self.start_time.to_bits(),
            self.number,
            self.id
        );
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(token: &str) -> Result<Cursor, DbError> {
        let bad = || DbError::InvalidInput(format!("invalid nextToken: {token}"));
        if token.len() % 2 != 0 || !token.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let raw = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = raw.splitn(4, ':');
        let descending = match parts.next() {
            Some("d") => true,
            Some("a") => false,
            _ => return Err(bad()),
        };
        let bits = parts
            .next()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(bad)?;
        let number = parts
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(bad)?;
        let id = parts.next().ok_or_else(bad)?.to_owned();
        Ok(Cursor {
            descending,
            start_time: f64::from_bits(bits),
            number,
            id,
        })
    }
}

impl Db {
    /// Starts a build: atomically allocates the project's next build number
    /// (1, 2, ...; never reused, even after deletions) and inserts the row,
    /// whose JSON is produced by `json(number)` inside the same transaction.
    /// The build is stored as not complete. Returns the number.
    ///
    /// Fails with [`DbError::AlreadyExists`] if the id is taken (the number
    /// is then not consumed).
    pub fn insert_build(
        &self,
        b: &NewBuild,
        json: impl FnOnce(u64) -> String,
    ) -> Result<u64, DbError> {
        self.write(|tx| {
            let number: i64 = tx
                .prepare_cached(
                    "INSERT INTO build_counters (project, last_number) VALUES (?1, 1)
                     ON CONFLICT (project) DO UPDATE SET last_number = last_number + 1
                     RETURNING last_number",
                )?
                .query_row([&b.project], |r| r.get(0))?;
            let unsigned = to_u64(number, "build number")?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO builds (id, project, number, arn, start_time, status, complete,
                                         json, log_path, owner_pid, owner_start)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)
                     ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    b.id,
                    b.project,
                    number,
                    b.arn,
                    b.start_time,
                    b.status,
                    json(unsigned),
                    b.log_path,
                    b.owner_pid,
                    b.owner_start as i64,
                ])?;
            if inserted == 0 {
                return Err(DbError::already_exists("build", &b.id));
            }
            Ok(unsigned)
        })
    }

    /// Stores a build's new status, completion flag and full JSON.
    /// Fails with [`DbError::NotFound`] if the id is unknown.
    pub fn update_build(
        &self,
        id: &str,
        status: &str,
        complete: bool,
        json: &str,
    ) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE builds SET status = ?2, complete = ?3, json = ?4 WHERE id = ?1",
                )?
                .execute(params![id, status, complete, json])?;
            if n == 0 {
                return Err(DbError::not_found("build", id));
            }
            Ok(())
        })
    }

    /// Records a new owning process for a build (e.g. when a server adopts a
    /// build). Fails with [`DbError::NotFound`] if the id is unknown.
    pub fn set_owner(&self, id: &str, pid: u32, start: u64) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE builds SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1",
                params![id, pid, start as i64],
            )?;
            if n == 0 {
                return Err(DbError::not_found("build", id));
            }
            Ok(())
        })
    }

    /// Returns one build by id.
    pub fn get_build(&self, id: &str) -> Result<Option<BuildRow>, DbError> {
        let conn = self.lock();
        let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id], BuildRow::from_row)
            .optional()?)
    }

    /// `BatchGetBuilds`: the builds that exist, in request order; unknown ids
    /// are skipped (the caller reports them as `buildsNotFound`).
    pub fn get_builds(&self, ids: &[String]) -> Result<Vec<BuildRow>, DbError> {
        let conn = self.lock();
        let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = stmt.query_row([id], BuildRow::from_row).optional()? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Looks a build up by project and number.
    pub fn build_by_number(&self, project: &str, number: u64) -> Result<Option<BuildRow>, DbError> {
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        let conn = self.lock();
        let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE project = ?1 AND number = ?2");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row(params![project, number], BuildRow::from_row)
            .optional()?)
    }

    /// `ListBuilds` / `ListBuildsForProject`: one page of build ids ordered by
    /// start time, then number, then id (descending or ascending), with the
    /// optional project and status filters. Returns the ids and the token for
    /// the next page (`None` on the last page).
    ///
    /// Tokens are keyset cursors, so builds inserted or deleted between pages
    /// neither shift nor repeat entries. A token is only valid with the same
    /// sort direction; a malformed one yields [`DbError::InvalidInput`].
    pub fn list_builds(&self, q: &BuildQuery) -> Result<(Vec<String>, Option<String>), DbError> {
        let mut conds: Vec<&str> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(p) = &q.project {
            conds.push("project = ?");
            args.push(Value::Text(p.clone()));
        }
        if let Some(s) = &q.status {
            conds.push("status = ?");
            args.push(Value::Text(s.clone()));
        }
        if let Some(token) = &q.next_token {
            let c = Cursor::decode(token)?;
            if c.descending != q.descending {
                return Err(DbError::InvalidInput(
                    "nextToken was issued for the other sort order".into(),
                ));
            }
            conds.push(if q.descending {
                "(start_time, number, id) < (?, ?, ?)"
            } else {
                "(start_time, number, id) > (?, ?, ?)"
            });
            args.push(Value::Real(c.start_time));
            args.push(Value::Integer(c.number));
            args.push(Value::Text(c.id));
        }
        let page = q.page_size.max(1);
        let dir = if q.descending { "DESC" } else { "ASC" };
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT id, start_time, number FROM builds {where_clause}
             ORDER BY start_time {dir}, number {dir}, id {dir} LIMIT ?"
        );
        // One extra row tells whether another page exists.
        args.push(Value::Integer(
            i64::try_from(page).unwrap_or(i64::MAX - 1) + 1,
        ));

        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows: Vec<(String, f64, i64)> = stmt
            .query_map(params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let next = if rows.len() > page {
            rows.truncate(page);
            let (id, start_time, number) = rows.last().cloned().expect("page >= 1");
            Some(
                Cursor {
                    descending: q.descending,
                    start_time,
                    number,
                    id,
                }
                .encode(),
            )
        } else {
            None
        };
        Ok((rows.into_iter().map(|(id, _, _)| id).collect(), next))
    }

    /// `BatchDeleteBuilds`: deletes the given builds in one transaction.
    /// Returns `(deleted, not_found)`, each in request order; a repeated id
    /// is reported once. Build numbers of deleted builds are not reused.
    pub fn delete_builds(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>), DbError> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM builds WHERE id = ?1")?;
            let mut seen = HashSet::new();
            let (mut deleted, mut missing) = (Vec::new(), Vec::new());
            for id in ids {
                if !seen.insert(id.as_str()) {
                    continue;
                }
                if stmt.execute([id])? > 0 {
                    deleted.push(id.clone());
                } else {
                    missing.push(id.clone());
                }
            }
            Ok((deleted, missing))
        })
    }

    /// Builds not marked complete whose owner is gone, i.e. for which
    /// `is_alive(owner_pid, owner_start)` returns false. Ordered by start
    /// time. Pass [`crate::process_alive`] in production.
    pub fn orphans(&self, is_alive: impl Fn(u32, u64) -> bool) -> Result<Vec<BuildRow>, DbError> {
        let rows = {
            let conn = self.lock();
            let sql = format!(
                "SELECT {BUILD_COLUMNS} FROM builds WHERE complete = 0
                 ORDER BY start_time, number, id"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map([], BuildRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(rows
            .into_iter()
            .filter(|b| !is_alive(b.owner_pid, b.owner_start))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_rejects_garbage() {
        let c = Cursor {
            descending: true,
            start_time: 1_700_000_000.123_456,
            number: 42,
            id: "proj:with:colons".into(),
        };
        let t = c.encode();
        assert!(t.chars().all(|ch| ch.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&t).unwrap(), c);
        for bad in ["", "zz", "abc", "é1", "78", "643a31"] {
            assert!(
                matches!(Cursor::decode(bad), Err(DbError::InvalidInput(_))),
                "{bad:?} should be rejected"
            );
        }
    }
}
