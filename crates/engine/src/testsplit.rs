//! CodeBuild's parallel test splitting inside a build: the `codebuild-tests-run` and
//! `codebuild-glob-search` commands (installed in every build container by
//! [`crate::shell::HELPERS`]) and the pure Rust statement of what they compute.
//!
//! The commands are POSIX `sh` + `awk` + `find` + `sort` scripts (busybox's are enough), since
//! they run in whatever image the build uses. The Rust functions here ([`glob_matches`],
//! [`shard_files`]) are their specification: the module's tests run the scripts on this
//! machine's `/bin/sh` and check they agree with it, and the integration tests check a real
//! build-fanout against it.
//!
//! * `codebuild-glob-search PATTERN...` prints, one a line and sorted (byte order), the regular
//!   files under the working directory whose path relative to it matches any pattern: `*` is
//!   any run of characters but `/`, `**` any run including `/` (`**/` also matches no
//!   directory at all, so `**/*.js` matches `a.js`), `?` one character but `/`, `[abc]`,
//!   `[a-z]`, `[!a]` a class; anything else, dots and leading dots included, matches itself;
//!   a leading `./` is ignored. No match: a message on stderr, nothing on stdout, status 0.
//! * `codebuild-tests-run --test-command CMD --files-search CMD [--sharding-strategy
//!   equal-distribution|stability]` runs the search with `sh -c`, keeps the distinct non-empty
//!   lines, picks this build's share ([`shard_files`]), exports it newline-separated as
//!   `CODEBUILD_CURRENT_SHARD_FILES` and runs `sh -c "CMD 'file1' 'file2' …"` (the share
//!   appended, space-separated and quoted), exiting with its status. A shard with no files
//!   does not run the test command. The shard is read from `<tmp>/shard` (`NUMBER COUNT`,
//!   written for a build-fanout's builds); without it the build is shard 1 of 1.
//!
//! Strategies (CodeBuild's "About test splitting"): `equal-distribution` sorts the files and
//! cuts them into `count` contiguous chunks whose sizes differ by at most one, the larger
//! first; `stability` gives each file to the shard with the highest [`score`] of the file's
//! [`hash`] (rendezvous hashing, a consistent hashing: adding or removing a file never moves
//! another, and going from N to N+1 shards only moves files to the new one).

use crate::buildspec::batch::Shard;

/// `codebuild-tests-run --sharding-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    EqualDistribution,
    Stability,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "equal-distribution" => Some(Strategy::EqualDistribution),
            "stability" => Some(Strategy::Stability),
            _ => None,
        }
    }
}

/// The stability strategy's file hash: `h = (h * 31 + byte) mod (2^31 - 1)` over the bytes.
pub fn hash(s: &str) -> u64 {
    s.bytes()
        .fold(0u64, |h, b| (h * 31 + u64::from(b)) % 2_147_483_647)
}

/// A prime below 2^26, so that a square stays exact in the doubles of any `awk`.
const MIX: u64 = 67_108_859;

/// The score of `shard` for a file of hash `h`: `v = (h * 1000003 + shard) mod MIX`, then
/// three times `v = (v * v + 7) mod MIX` (squaring mixes what a polynomial hash does not).
pub fn score(h: u64, shard: u32) -> u64 {
    let mut v = (h * 1_000_003 + u64::from(shard)) % MIX;
    for _ in 0..3 {
        v = (v * v + 7) % MIX;
    }
    v
}

/// The shard (1-based) that owns `file` among `count` under the stability strategy: the
/// highest [`score`]; ties go to the lowest shard.
pub fn owner(file: &str, count: u32) -> u32 {
    let h = hash(file);
    let mut best = (1, None);
    for s in 1..=count {
        let v = score(h, s);
        if best.1.is_none_or(|b| v > b) {
            best = (s, Some(v));
        }
    }
    best.0
}

/// The files `shard` runs: of the distinct non-empty `files`, in byte order, those its
/// strategy gives it. The shares of shards 1..=count are disjoint and together are all files.
pub fn shard_files(files: &[String], shard: Shard, strategy: Strategy) -> Vec<String> {
    let mut all: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| !f.is_empty())
        .collect();
    all.sort_unstable();
    all.dedup();
    let count = shard.count.max(1) as usize;
    let k = (shard.number.max(1) as usize) - 1;
    let picked: Vec<&str> = match strategy {
        Strategy::EqualDistribution => {
            let (q, r) = (all.len() / count, all.len() % count);
            let start = k * q + k.min(r);
            let size = q + usize::from(k < r);
            all.get(start..start + size).unwrap_or_default().to_vec()
        }
        Strategy::Stability => all
            .into_iter()
            .filter(|f| owner(f, shard.count.max(1)) == shard.number)
            .collect(),
    };
    picked.into_iter().map(str::to_owned).collect()
}

/// Whether `path` (relative, `/`-separated) matches the glob `pattern` as
/// `codebuild-glob-search` matches (module docs).
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let p = pattern.strip_prefix("./").unwrap_or(pattern).as_bytes();
    matches(p, path.as_bytes())
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            if p.get(2) == Some(&b'/') {
                // `**/`: no directory, or any run ending in `/`.
                matches(&p[3..], s)
                    || (0..s.len()).any(|i| s[i] == b'/' && matches(&p[3..], &s[i + 1..]))
            } else {
                (0..=s.len()).any(|i| matches(&p[2..], &s[i..]))
            }
        }
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| matches(&p[1..], &s[i..])),
        Some(b'?') => s.first().is_some_and(|&c| c != b'/') && matches(&p[1..], &s[1..]),
        Some(b'[') => match class(&p[1..]) {
            Some((negated, items, len)) => {
                s.first().is_some_and(|&c| {
                    let inside = in_class(items, c);
                    c != b'/' && inside != negated
                }) && matches(&p[1 + len..], &s[1..])
            }
            None => s.first() == Some(&b'[') && matches(&p[1..], &s[1..]),
        },
        Some(&c) => s.first() == Some(&c) && matches(&p[1..], &s[1..]),
    }
}

/// A class after its `[`: (negated, the items, the length up to and with the `]`), or
/// `None` when it is not closed (then `[` is itself).
fn class(p: &[u8]) -> Option<(bool, &[u8], usize)> {
    let negated = matches!(p.first(), Some(b'!' | b'^'));
    let start = usize::from(negated);
    // A `]` first in the class is one of its characters.
    let from = start + usize::from(p.get(start) == Some(&b']'));
    let end = from + p.get(from..)?.iter().position(|&c| c == b']')?;
    Some((negated, &p[start..end], end + 1))
}

fn in_class(items: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < items.len() {
        if i + 2 < items.len() && items[i + 1] == b'-' {
            if (items[i]..=items[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if items[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// `codebuild-glob-search` (module docs). Installed with `$_lb_t` (the agent's tmp dir) set.
pub const GLOB_SEARCH: &str = r##"if [ $# -eq 0 ]; then
  echo "usage: codebuild-glob-search <glob_pattern1> [<glob_pattern2> ...]" >&2; exit 2
fi
_lb_p=; for _lb_a in "$@"; do _lb_p="$_lb_p$_lb_a
"; done
_lb_out=$(find . -type f 2>/dev/null | _lb_p="$_lb_p" LC_ALL=C awk '
function re(g,   r, i, j, n, c, k) {
  r = ""; n = length(g); i = 1
  if (substr(g, 1, 2) == "./") i = 3
  while (i <= n) {
    c = substr(g, i, 1)
    if (c == "*" && substr(g, i + 1, 1) == "*") {
      if (substr(g, i + 2, 1) == "/") { r = r "(.*/)?"; i += 3 } else { r = r ".*"; i += 2 }
      continue
    }
    if (c == "*") r = r "[^/]*"
    else if (c == "?") r = r "[^/]"
    else if (c == "[") {
      j = i + 1; if (substr(g, j, 1) == "!" || substr(g, j, 1) == "^") j++
      if (substr(g, j, 1) == "]") j++
      while (j <= n && substr(g, j, 1) != "]") j++
      if (j > n) r = r "\\["
      else {
        k = substr(g, i + 1, j - i - 1); if (substr(k, 1, 1) == "!") k = "^" substr(k, 2)
        if (substr(k, 1, 1) == "^") r = r "[^/" substr(k, 2) "]"
        else r = r "(" "[" k "]" ")"
        i = j
      }
    }
    else if (index("\\.+()|{}^$", c)) r = r "\\" c
    else r = r c
    i++
  }
  return "^" r "$"
}
BEGIN { n = split(ENVIRON["_lb_p"], ps, "\n"); m = 0; for (i = 1; i <= n; i++) if (ps[i] != "") pat[++m] = re(ps[i]) }
{ f = substr($0, 3); for (i = 1; i <= m; i++) if (f ~ pat[i]) { print f; break } }
' | LC_ALL=C sort -u)
if [ -z "$_lb_out" ]; then
  echo "codebuild-glob-search: no files found matching the given pattern(s)" >&2; exit 0
fi
printf '%s\n' "$_lb_out""##;

/// `codebuild-tests-run` (module docs). Installed with `$_lb_t` (the agent's tmp dir) set.
pub const TESTS_RUN: &str = r##"_lb_usage() {
  echo "codebuild-tests-run: $1" >&2
  echo "usage: codebuild-tests-run --test-command <command> --files-search <command> [--sharding-strategy equal-distribution|stability]" >&2
  exit 2
}
_lb_tc=; _lb_fs=; _lb_st=equal-distribution; _lb_has_tc=; _lb_has_fs=
while [ $# -gt 0 ]; do
  case "$1" in
    --test-command|--files-search|--sharding-strategy)
      [ $# -ge 2 ] || _lb_usage "$1 needs a value"
      _lb_o=$1; _lb_v=$2; shift 2 ;;
    --test-command=*|--files-search=*|--sharding-strategy=*)
      _lb_o=${1%%=*}; _lb_v=${1#*=}; shift ;;
    -h|--help) _lb_usage "split test files between the shards of a build-fanout" ;;
    *) _lb_usage "unknown argument '$1'" ;;
  esac
  case "$_lb_o" in
    --test-command) _lb_tc=$_lb_v; _lb_has_tc=1 ;;
    --files-search) _lb_fs=$_lb_v; _lb_has_fs=1 ;;
    --sharding-strategy) _lb_st=$_lb_v ;;
  esac
done
[ -n "$_lb_has_tc" ] || _lb_usage "--test-command is required"
[ -n "$_lb_has_fs" ] || _lb_usage "--files-search is required"
case "$_lb_st" in equal-distribution|stability) ;; *) _lb_usage "invalid --sharding-strategy '$_lb_st': expected equal-distribution or stability" ;; esac
_lb_k=1; _lb_n=1
if [ -f "$_lb_t/shard" ]; then read -r _lb_k _lb_n < "$_lb_t/shard"; fi
_lb_all=$(PATH="$_lb_t/bin:$PATH" sh -c "$_lb_fs")
_lb_rc=$?
if [ $_lb_rc -ne 0 ]; then echo "codebuild-tests-run: the files search exited with status $_lb_rc" >&2; exit $_lb_rc; fi
_lb_files=$(printf '%s\n' "$_lb_all" | LC_ALL=C sort -u | LC_ALL=C awk -v s="$_lb_st" -v k="$_lb_k" -v n="$_lb_n" '
BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i }
function h(x,   v, i) { v = 0; for (i = 1; i <= length(x); i++) v = (v * 31 + ord[substr(x, i, 1)]) % 2147483647; return v }
function score(x, j,   v, r) { v = (x * 1000003 + j) % 67108859; for (r = 0; r < 3; r++) v = (v * v + 7) % 67108859; return v }
length($0) > 0 { f[++m] = $0 }
END {
  if (s == "stability") {
    for (i = 1; i <= m; i++) {
      b = 1; bv = -1; x = h(f[i])
      for (j = 1; j <= n; j++) { v = score(x, j); if (v > bv) { bv = v; b = j } }
      if (b == k) print f[i]
    }
  } else {
    q = int(m / n); r = m % n; lo = (k - 1) * q + (k - 1 < r ? k - 1 : r); z = q + (k - 1 < r ? 1 : 0)
    for (i = lo + 1; i <= lo + z; i++) print f[i]
  }
}')
_lb_total=$(printf '%s\n' "$_lb_all" | LC_ALL=C sort -u | grep -c .)
_lb_mine=$(printf '%s' "$_lb_files" | grep -c .)
echo "codebuild-tests-run: shard $_lb_k of $_lb_n ($_lb_st): $_lb_mine of $_lb_total test file(s)"
if [ -z "$_lb_files" ]; then
  echo "codebuild-tests-run: no test files for this shard; the test command is not run"; exit 0
fi
CODEBUILD_CURRENT_SHARD_FILES=$_lb_files; export CODEBUILD_CURRENT_SHARD_FILES
_lb_args=$(printf '%s\n' "$_lb_files" | sed "s/'/'\\\\''/g; s/^/'/; s/\$/'/" | tr '\n' ' ')
exec sh -c "$_lb_tc $_lb_args""##;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("tests/t{i:02}_{}.sh", i * 7 % 5))
            .collect()
    }

    fn sh(number: u32, count: u32) -> Shard {
        Shard { number, count }
    }

    #[test]
    fn every_strategy_splits_the_files_into_disjoint_shares_that_cover_them_all() {
        for strategy in [Strategy::EqualDistribution, Strategy::Stability] {
            for n in 0..25 {
                let files = names(n);
                for count in 1..=6 {
                    let mut seen = BTreeSet::new();
                    for k in 1..=count {
                        for f in shard_files(&files, sh(k, count), strategy) {
                            assert!(seen.insert(f), "{strategy:?}: a file in two shards");
                        }
                    }
                    assert_eq!(
                        seen,
                        files.iter().cloned().collect(),
                        "{strategy:?} {n}/{count}"
                    );
                }
            }
        }
    }

    #[test]
    fn equal_distribution_cuts_the_sorted_files_into_chunks_differing_by_at_most_one() {
        let files: Vec<String> = ["g", "c", "a", "f", "b", "e", "d", "c", ""]
            .map(String::from)
            .to_vec();
        let share = |k| shard_files(&files, sh(k, 3), Strategy::EqualDistribution);
        assert_eq!(share(1), ["a", "b", "c"]);
        assert_eq!(share(2), ["d", "e"]);
        assert_eq!(share(3), ["f", "g"]);
        let one = shard_files(&files, sh(1, 1), Strategy::EqualDistribution);
        assert_eq!(one, ["a", "b", "c", "d", "e", "f", "g"]);
        assert!(shard_files(&files[..1], sh(2, 3), Strategy::EqualDistribution).is_empty());
    }

    #[test]
    fn stability_moves_no_file_when_others_come_or_go_and_only_to_a_new_shard() {
        let files = names(40);
        for f in &files {
            for count in 1..8 {
                let (before, after) = (owner(f, count), owner(f, count + 1));
                assert!(
                    after == before || after == count + 1,
                    "{f}: {before} → {after}"
                );
            }
        }
        let fewer = &files[5..];
        for k in 1..=4 {
            let all = shard_files(&files, sh(k, 4), Strategy::Stability);
            let some = shard_files(fewer, sh(k, 4), Strategy::Stability);
            assert!(some.iter().all(|f| all.contains(f)));
        }
        // Spread: no shard of 4 is empty or has all of 40 files.
        let sizes: Vec<usize> = (1..=4)
            .map(|k| shard_files(&files, sh(k, 4), Strategy::Stability).len())
            .collect();
        assert!(sizes.iter().all(|&s| (4..=18).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn the_hash_is_the_documented_polynomial() {
        assert_eq!(hash(""), 0);
        assert_eq!(hash("a"), 97);
        assert_eq!(hash("ab"), 97 * 31 + 98);
        let long = "x".repeat(10_000);
        assert!(hash(&long) < 2_147_483_647);
    }

    #[test]
    fn glob_star_stays_in_a_directory_and_double_star_crosses_them() {
        let yes = [
            ("*.js", "a.js"),
            ("**/*.js", "a.js"),
            ("**/*.js", "x/y/a.js"),
            ("**/__tests__/*.js", "__tests__/a.js"),
            ("**/__tests__/*.js", "src/__tests__/a.js"),
            ("src/**", "src/a/b"),
            ("src/**/b", "src/b"),
            ("src/**/b", "src/a/c/b"),
            ("./t/*_test.py", "t/a_test.py"),
            ("t/?.sh", "t/a.sh"),
            ("t/[ab].sh", "t/b.sh"),
            ("t/[a-c].sh", "t/c.sh"),
            ("t/[!a].sh", "t/d.sh"),
            ("a.b", "a.b"),
            ("a+(1)", "a+(1)"),
            ("t[", "t["),
            ("*", ".hidden"),
        ];
        for (p, f) in yes {
            assert!(glob_matches(p, f), "{p} should match {f}");
        }
        let no = [
            ("*.js", "x/a.js"),
            ("**/__tests__/*.js", "__tests__/x/a.js"),
            ("t/?.sh", "t/ab.sh"),
            ("t/?", "t//"),
            ("t/[!a].sh", "t/a.sh"),
            ("t/[a-c].sh", "t/d.sh"),
            ("a.b", "axb"),
            ("**/*.js", "a.jsx"),
            ("src/**/b", "srcb"),
        ];
        for (p, f) in no {
            assert!(!glob_matches(p, f), "{p} should not match {f}");
        }
    }

    /// The helpers installed in a scratch tmp dir, run by this machine's `/bin/sh`.
    fn install() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", &crate::shell::install_helpers(), "sh"])
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
        tmp
    }

    /// The shells the scripts are run by: this machine's `/bin/sh` (by their `#!`) and bash
    /// (busybox's `sh` runs them in the integration tests).
    const SHELLS: &[Option<&str>] = &[None, Some("bash")];

    fn run(tmp: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
        let mut outs = SHELLS.iter().map(|shell| run_by(*shell, tmp, dir, args));
        let first = outs.next().unwrap();
        for other in outs {
            assert_eq!(other, first, "bash and /bin/sh differ on {args:?}");
        }
        first
    }

    fn run_by(
        shell: Option<&str>,
        tmp: &std::path::Path,
        dir: &std::path::Path,
        args: &[&str],
    ) -> (i32, String, String) {
        let script = tmp.join("bin").join(args[0]);
        let mut cmd = match shell {
            None => std::process::Command::new(&script),
            Some(sh) => {
                let mut c = std::process::Command::new(sh);
                c.arg(&script);
                c
            }
        };
        let out = cmd
            .args(&args[1..])
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    const TREE: &[&str] = &[
        "a.js",
        "b.txt",
        "src/__tests__/one.test.js",
        "src/__tests__/two.test.js",
        "src/__tests__/deep/three.test.js",
        "src/lib/x.js",
        "lib/__tests__/four.test.js",
        "t/it's [odd].py",
        "t/test_a.py",
        "t/test_b.py",
        ".hidden/test_c.py",
    ];

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in TREE {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("empty.js")).unwrap();
        dir
    }

    #[test]
    fn the_glob_search_script_matches_as_the_rust_statement_says() {
        let tmp = install();
        let dir = tree();
        for patterns in [
            &["**/*.js"][..],
            &["**/__tests__/*.js"],
            &["src/**/*.test.js", "**/test_*.py"],
            &["./t/*"],
            &["t/[!t]*"],
            &["*"],
            &["**"],
            &["*.js", "a.js"],
        ] {
            let mut want: Vec<&str> = TREE
                .iter()
                .copied()
                .filter(|f| patterns.iter().any(|p| glob_matches(p, f)))
                .collect();
            want.sort_unstable();
            let mut args = vec!["codebuild-glob-search"];
            args.extend(patterns);
            let (rc, out, _) = run(tmp.path(), dir.path(), &args);
            assert_eq!(rc, 0);
            assert_eq!(out.lines().collect::<Vec<_>>(), want, "{patterns:?}");
        }
        let (rc, out, err) = run(tmp.path(), dir.path(), &["codebuild-glob-search", "*.none"]);
        assert_eq!((rc, out.as_str()), (0, ""));
        assert!(err.contains("no files found"), "{err}");
        let (rc, _, err) = run(tmp.path(), dir.path(), &["codebuild-glob-search"]);
        assert_eq!(rc, 2);
        assert!(err.contains("usage"), "{err}");
    }

    #[test]
    fn the_tests_run_script_runs_the_share_the_rust_statement_gives_each_shard() {
        let tmp = install();
        let dir = tree();
        let all: Vec<String> = TREE.iter().map(|f| f.to_string()).collect();
        for (strategy, name) in [
            (Strategy::EqualDistribution, "equal-distribution"),
            (Strategy::Stability, "stability"),
        ] {
            for count in [1, 3, 4] {
                for k in 1..=count {
                    std::fs::write(tmp.path().join("shard"), format!("{k} {count}\n")).unwrap();
                    let (rc, out, err) = run(
                        tmp.path(),
                        dir.path(),
                        &[
                            "codebuild-tests-run",
                            "--test-command",
                            "printf 'ENV<%s>\\n' \"$CODEBUILD_CURRENT_SHARD_FILES\"; printf 'ARG<%s>\\n'",
                            "--files-search",
                            "codebuild-glob-search '**' 'a.js'",
                            &format!("--sharding-strategy={name}"),
                        ],
                    );
                    assert_eq!(rc, 0, "{err}");
                    let want = shard_files(&all, sh(k, count), strategy);
                    let args: Vec<&str> = out
                        .lines()
                        .filter_map(|l| l.strip_prefix("ARG<")?.strip_suffix('>'))
                        .collect();
                    if want.is_empty() {
                        assert!(out.contains("the test command is not run"), "{out}");
                        continue;
                    }
                    assert_eq!(args, want, "{name} {k}/{count}");
                    let env = out.split("ENV<").nth(1).unwrap().split(">\nARG<").next();
                    assert_eq!(env, Some(want.join("\n").as_str()));
                    assert!(
                        out.starts_with(&format!(
                            "codebuild-tests-run: shard {k} of {count} ({name}): {} of 11",
                            want.len()
                        )),
                        "{out}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_tests_run_script_passes_the_status_and_refuses_bad_arguments() {
        let tmp = install();
        let dir = tree();
        let (rc, _, _) = run(
            tmp.path(),
            dir.path(),
            &[
                "codebuild-tests-run",
                "--test-command",
                "exit 3",
                "--files-search",
                "echo a.js",
            ],
        );
        assert_eq!(rc, 3);
        for (args, says) in [
            (
                &["--files-search", "echo a"][..],
                "--test-command is required",
            ),
            (&["--test-command", "true"], "--files-search is required"),
            (
                &[
                    "--test-command",
                    "true",
                    "--files-search",
                    "echo a",
                    "--sharding-strategy",
                    "random",
                ],
                "invalid --sharding-strategy 'random'",
            ),
            (&["--test-command"], "--test-command needs a value"),
            (&["--tests", "x"], "unknown argument '--tests'"),
        ] {
            let mut all = vec!["codebuild-tests-run"];
            all.extend(args);
            let (rc, _, err) = run(tmp.path(), dir.path(), &all);
            assert_eq!(rc, 2, "{args:?}");
            assert!(err.contains(says), "{err}");
        }
        let (rc, _, err) = run(
            tmp.path(),
            dir.path(),
            &[
                "codebuild-tests-run",
                "--test-command",
                "true",
                "--files-search",
                "exit 4",
            ],
        );
        assert_eq!(rc, 4);
        assert!(
            err.contains("the files search exited with status 4"),
            "{err}"
        );
    }
}
