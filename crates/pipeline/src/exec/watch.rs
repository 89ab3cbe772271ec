//! The watcher: starts an execution when a watched branch or S3 object changes (V2 push
//! filters applied with `git diff --name-only`). It looks when a file notification (the
//! `notify` crate: inotify on Linux) says a watched repository's refs or an S3 bucket changed,
//! and every few seconds anyway (a fallback for file systems without notifications).

use super::*;
use std::collections::HashSet;

/// `git -C repo ARGS` (no outside `GIT_*`): its stdout lines, `None` when it fails.
fn git_lines(repo: &Path, args: &[&str]) -> Option<Vec<String>> {
    let mut cmd = std::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.arg("-C").arg(repo).args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

/// One thing the watcher looks at: a source action, on one branch (or an S3 object).
struct Watched {
    pipeline: String,
    region: String,
    action: String,
    /// The action's own branch (`BranchName`); `None` for S3.
    configured: Option<String>,
    branch: String,
    head: String,
    detail: String,
    repo: Option<PathBuf>,
    /// V2 push filters of the action's trigger.
    filters: Option<Vec<crate::PushFilter>>,
}

/// What to watch now: every source action of every pipeline (unless `DetectChanges` or
/// `PollForSourceChanges` is `false` and it has no trigger), with its heads, and the folders
/// whose changes say to look again (folder, recursively).
fn look(state: &Executor) -> (Vec<Watched>, HashSet<(PathBuf, bool)>) {
    let mut folders = HashSet::new();
    let Ok(docs) = state.db.list_docs(PIPELINE_DOC, "") else {
        return (vec![], folders);
    };
    let roots = &state.roots;
    let mut out = vec![];
    for (name, doc) in docs {
        let Ok(stored) = serde_json::from_str::<Stored>(&doc) else {
            continue;
        };
        let Some(decl) = stored.declaration() else {
            continue;
        };
        for a in decl
            .stages
            .first()
            .map(|s| s.actions.as_slice())
            .unwrap_or_default()
        {
            let filters: Option<Vec<crate::PushFilter>> = decl
                .triggers
                .iter()
                .flatten()
                .find(|t| t.git_configuration.source_action_name == a.name)
                .map(|t| t.git_configuration.push.clone().unwrap_or_default());
            let off = |k| a.config(k).is_some_and(|v| v.eq_ignore_ascii_case("false"));
            if filters.is_none() && (off("DetectChanges") || off("PollForSourceChanges")) {
                continue;
            }
            let entry =
                |branch: &str, head: String, detail: String, repo: Option<PathBuf>| Watched {
                    pipeline: name.clone(),
                    region: stored.region.clone(),
                    action: a.name.clone(),
                    configured: repo.as_ref().map(|_| a.branch().to_owned()),
                    branch: branch.to_owned(),
                    head,
                    detail,
                    repo,
                    filters: filters.clone(),
                };
            if a.action_type_id.provider == "S3" {
                let (Some(bucket), Some(key)) = (a.config("S3Bucket"), a.config("S3ObjectKey"))
                else {
                    continue;
                };
                match s3_path(&roots.s3_root, bucket, None) {
                    Some(b) if b.is_dir() => folders.insert((b, true)),
                    _ => folders.insert((roots.s3_root.clone(), false)),
                };
                if let Some(version) =
                    s3_path(&roots.s3_root, bucket, Some(key)).and_then(|p| s3_version(&p))
                {
                    out.push(entry("", version, format!("s3://{bucket}/{key}"), None));
                }
                continue;
            }
            let Ok(repo) = repo_of(a, roots, &stored.region) else {
                continue;
            };
            // A work tree's `.git` folder or a bare repository: its refs (and packed-refs).
            let git_dir = Some(repo.join(".git"))
                .filter(|d| d.is_dir())
                .unwrap_or_else(|| repo.clone());
            folders.insert((git_dir.join("refs"), true));
            folders.insert((git_dir, false));
            let detail = a
                .config("ConnectionArn")
                .map(str::to_owned)
                .unwrap_or_else(|| repo.display().to_string());
            let configured = a.branch();
            let with_branches = filters
                .as_ref()
                .is_some_and(|f| f.iter().any(|p| p.branches.is_some()));
            if with_branches {
                // Every branch a filter admits.
                let refs = git_lines(
                    &repo,
                    &[
                        "for-each-ref",
                        "--format=%(refname:short) %(objectname)",
                        "refs/heads",
                    ],
                )
                .unwrap_or_default();
                for line in refs {
                    let Some((branch, head)) = line.split_once(' ') else {
                        continue;
                    };
                    let admitted = filters
                        .iter()
                        .flatten()
                        .any(|f| f.branches.as_ref().is_none_or(|b| b.admits(branch)));
                    if admitted {
                        out.push(entry(
                            branch,
                            head.to_owned(),
                            detail.clone(),
                            Some(repo.clone()),
                        ));
                    }
                }
            } else if let Ok(head) = localbuild_sources::resolve_version(
                &repo,
                Some(&format!("refs/heads/{configured}")),
            ) {
                out.push(entry(configured, head, detail, Some(repo.clone())));
            }
        }
    }
    (out, folders)
}

/// How long the watcher waits without a notification before it looks anyway.
const FALLBACK: Duration = Duration::from_secs(3);

/// File notifications for the folders the watcher looks at.
struct Notices {
    watcher: Option<notify::RecommendedWatcher>,
    followed: HashSet<(PathBuf, bool)>,
    rx: mpsc::UnboundedReceiver<()>,
}

impl Notices {
    fn new() -> Notices {
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            if e.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })
        .inspect_err(|e| tracing::warn!("no file notifications, polling every {FALLBACK:?}: {e}"))
        .ok();
        Notices {
            watcher,
            followed: HashSet::new(),
            rx,
        }
    }

    /// Follow exactly `folders` from now on.
    fn follow(&mut self, folders: HashSet<(PathBuf, bool)>) {
        use notify::{RecursiveMode, Watcher as _};
        let Some(w) = &mut self.watcher else {
            return;
        };
        for (dir, _) in self.followed.difference(&folders) {
            let _ = w.unwatch(dir);
        }
        let mut followed = HashSet::new();
        for (dir, recursive) in folders {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if self.followed.contains(&(dir.clone(), recursive)) || w.watch(&dir, mode).is_ok() {
                followed.insert((dir, recursive));
            }
        }
        self.followed = followed;
    }

    /// Wait for a change (a burst of notifications counts once), a new or updated pipeline,
    /// or the fallback's time.
    async fn changed(&mut self, declared: &tokio::sync::Notify) {
        tokio::select! {
            () = declared.notified() => {}
            Some(()) = self.rx.recv() => {
                // A commit writes several files: let the burst end, then look once.
                tokio::time::sleep(Duration::from_millis(5)).await;
                while self.rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(FALLBACK) => {}
        }
    }
}

/// Whether a push from `old` (`None`: a new branch) to `new` passes the trigger's filters.
fn admitted(w: &Watched, old: Option<&str>) -> bool {
    let Some(filters) = &w.filters else {
        return true;
    };
    let Some(repo) = &w.repo else {
        return true;
    };
    let files = match old {
        Some(old) => git_lines(repo, &["diff", "--name-only", old, &w.head]),
        None => git_lines(
            repo,
            &[
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                "--root",
                &w.head,
            ],
        ),
    }
    .unwrap_or_default();
    filters.iter().any(|f| {
        let branch_ok = match &f.branches {
            Some(b) => b.admits(&w.branch),
            None => Some(w.branch.as_str()) == w.configured.as_deref(),
        };
        let files_ok = f
            .file_paths
            .as_ref()
            .is_none_or(|p| files.iter().any(|file| p.admits(file)));
        branch_ok && files_ok
    })
}

/// Watch every pipeline's source actions (git branches, with a trigger's push filters when it
/// has one; S3 objects) when their files change, and every [`FALLBACK`] anyway; start an
/// execution when one moves. A branch a trigger admits that appears after the first look
/// counts as a push.
pub async fn watch(state: Arc<Executor>) {
    let mut seen: HashMap<(String, String, String), String> = HashMap::new();
    let mut known_actions: HashSet<(String, String)> = Default::default();
    let mut notices = Notices::new();
    let mut first = true;
    loop {
        if !first {
            notices.changed(&state.declared).await;
        }
        first = false;
        if state.builds.shutting_down() {
            return;
        }
        let st = state.clone();
        let Ok((watched, folders)) = tokio::task::spawn_blocking(move || look(&st)).await else {
            continue;
        };
        notices.follow(folders);
        let mut live_keys = HashSet::new();
        let mut live_actions = HashSet::new();
        let mut starts = vec![];
        for w in watched {
            let key = (w.pipeline.clone(), w.action.clone(), w.branch.clone());
            let action_key = (w.pipeline.clone(), w.action.clone());
            live_keys.insert(key.clone());
            live_actions.insert(action_key.clone());
            let known: Option<String> = match seen.get(&key) {
                Some(k) => Some(k.clone()),
                // A branch that appeared since the first look: a push.
                None if known_actions.contains(&action_key) => None,
                None => {
                    // The first look: the newest execution's revision on the action's own
                    // branch, else the head (nothing to do).
                    let last = (Some(w.branch.as_str()) == w.configured.as_deref()
                        || w.configured.is_none())
                    .then(|| {
                        executions(&state.db, &w.pipeline).ok().and_then(|e| {
                            e.first()?
                                .stages
                                .first()?
                                .actions
                                .iter()
                                .find(|r| r.name == w.action)?
                                .revision
                                .clone()
                        })
                    })
                    .flatten();
                    Some(last.unwrap_or_else(|| w.head.clone()))
                }
            };
            seen.insert(key, w.head.clone());
            if known.as_deref() != Some(w.head.as_str()) {
                starts.push((w, known));
            }
        }
        for (w, known) in starts {
            let filtered = w.filters.is_some();
            let w = Arc::new(w);
            let check = (w.clone(), known.clone());
            let ok = tokio::task::spawn_blocking(move || admitted(&check.0, check.1.as_deref()))
                .await
                .unwrap_or(false);
            if !ok {
                continue;
            }
            let ctx = Ctx {
                exec: state.clone(),
                region: w.region.clone(),
            };
            let (trigger, pins) = if filtered {
                (
                    "WebhookV2",
                    BTreeMap::from([(w.action.clone(), (w.branch.clone(), w.head.clone()))]),
                )
            } else {
                ("PollForSourceChanges", BTreeMap::new())
            };
            let _ = start_pinned(&ctx, &w.pipeline, trigger, &w.detail, vec![], pins);
        }
        seen.retain(|k, _| live_keys.contains(k));
        known_actions = live_actions;
    }
}
