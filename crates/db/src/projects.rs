//! CodeBuild projects: one row per project name, holding the `Project` JSON.

use rusqlite::{OptionalExtension, params};

use crate::{Db, DbError};

/// Sort key for [`Db::list_projects`] (CodeBuild `ProjectSortByType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProjectSort {
    /// By project name.
    #[default]
    Name,
    /// By the `created` time passed to [`Db::create_project`].
    CreatedTime,
    /// By the last `create_project` / `update_project` time.
    LastModifiedTime,
}

impl Db {
    /// Stores a new project. `created` (epoch seconds) also initialises the
    /// last-modified time. Fails with [`DbError::AlreadyExists`] if the name
    /// is taken.
    pub fn create_project(&self, name: &str, json: &str, created: f64) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO projects (name, json, created, last_modified)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, json, created],
            )?;
            if n == 0 {
                return Err(DbError::already_exists("project", name));
            }
            Ok(())
        })
    }

    /// Replaces a project's JSON and sets its last-modified time (epoch
    /// seconds). Fails with [`DbError::NotFound`] if it does not exist.
    pub fn update_project(&self, name: &str, json: &str, modified: f64) -> Result<(), DbError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE projects SET json = ?2, last_modified = ?3 WHERE name = ?1",
                params![name, json, modified],
            )?;
            if n == 0 {
                return Err(DbError::not_found("project", name));
            }
            Ok(())
        })
    }

    /// Returns the JSON of one project, if it exists.
    pub fn get_project(&self, name: &str) -> Result<Option<String>, DbError> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached("SELECT json FROM projects WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    /// `BatchGetProjects`: `(name, json)` of the projects that exist, in
    /// request order. Unknown names are skipped (the caller reports them as
    /// `projectsNotFound`); duplicate names yield duplicate entries.
    pub fn get_projects(&self, names: &[String]) -> Result<Vec<(String, String)>, DbError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT json FROM projects WHERE name = ?1")?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(json) = stmt
                .query_row([name], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.push((name.clone(), json));
            }
        }
        Ok(out)
    }

    /// `ListProjects`: all project names sorted by `sort_by` (ties broken by
    /// name, in the same direction).
    pub fn list_projects(
        &self,
        sort_by: ProjectSort,
        descending: bool,
    ) -> Result<Vec<String>, DbError> {
        let column = match sort_by {
            ProjectSort::Name => "name",
            ProjectSort::CreatedTime => "created",
            ProjectSort::LastModifiedTime => "last_modified",
        };
        let dir = if descending { "DESC" } else { "ASC" };
        let sql = format!("SELECT name FROM projects ORDER BY {column} {dir}, name {dir}");
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    /// Deletes a project; returns whether it existed. Its builds and its
    /// build-number counter are kept (as in CodeBuild, deleting a project does
    /// not delete its builds), so a re-created project continues numbering.
    pub fn delete_project(&self, name: &str) -> Result<bool, DbError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM projects WHERE name = ?1", [name])? > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("p.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn create_duplicate_update_delete() {
        let (_d, db) = db();
        db.create_project("a", r#"{"name":"a","v":1}"#, 10.0)
            .unwrap();
        match db.create_project("a", "{}", 11.0) {
            Err(DbError::AlreadyExists { what, key }) => {
                assert_eq!(what, "project");
                assert_eq!(key, "a");
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        // The failed create did not overwrite.
        assert_eq!(
            db.get_project("a").unwrap().as_deref(),
            Some(r#"{"name":"a","v":1}"#)
        );

        db.update_project("a", r#"{"name":"a","v":2}"#, 12.0)
            .unwrap();
        assert_eq!(
            db.get_project("a").unwrap().as_deref(),
            Some(r#"{"name":"a","v":2}"#)
        );
        assert!(matches!(
            db.update_project("missing", "{}", 1.0),
            Err(DbError::NotFound { .. })
        ));

        assert!(db.delete_project("a").unwrap());
        assert!(!db.delete_project("a").unwrap());
        assert_eq!(db.get_project("a").unwrap(), None);
        // Name can be reused after deletion.
        db.create_project("a", "{}", 13.0).unwrap();
    }

    #[test]
    fn get_projects_keeps_request_order() {
        let (_d, db) = db();
        for (i, n) in ["x", "y", "z"].iter().enumerate() {
            db.create_project(n, &format!("{{\"n\":\"{n}\"}}"), i as f64)
                .unwrap();
        }
        let req: Vec<String> = ["z", "nope", "x", "y"].map(String::from).to_vec();
        let got = db.get_projects(&req).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["z", "x", "y"]);
        assert_eq!(got[0].1, r#"{"n":"z"}"#);
        assert!(db.get_projects(&[]).unwrap().is_empty());
    }

    #[test]
    fn list_sorting() {
        let (_d, db) = db();
        // name order: alpha, beta, gamma; created order: gamma, alpha, beta
        db.create_project("beta", "{}", 300.0).unwrap();
        db.create_project("alpha", "{}", 200.0).unwrap();
        db.create_project("gamma", "{}", 100.0).unwrap();
        // modified order: alpha(200) gamma(250) beta(300) -> after update of gamma
        db.update_project("gamma", "{}", 250.0).unwrap();

        let l = |s, d| db.list_projects(s, d).unwrap();
        assert_eq!(l(ProjectSort::Name, false), ["alpha", "beta", "gamma"]);
        assert_eq!(l(ProjectSort::Name, true), ["gamma", "beta", "alpha"]);
        assert_eq!(
            l(ProjectSort::CreatedTime, false),
            ["gamma", "alpha", "beta"]
        );
        assert_eq!(
            l(ProjectSort::CreatedTime, true),
            ["beta", "alpha", "gamma"]
        );
        assert_eq!(
            l(ProjectSort::LastModifiedTime, false),
            ["alpha", "gamma", "beta"]
        );
        assert_eq!(
            l(ProjectSort::LastModifiedTime, true),
            ["beta", "gamma", "alpha"]
        );
    }

    #[test]
    fn list_ties_broken_by_name() {
        let (_d, db) = db();
        for n in ["c", "a", "b"] {
            db.create_project(n, "{}", 5.0).unwrap();
        }
        assert_eq!(
            db.list_projects(ProjectSort::CreatedTime, false).unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            db.list_projects(ProjectSort::CreatedTime, true).unwrap(),
            ["c", "b", "a"]
        );
    }
}
