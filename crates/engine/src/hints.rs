//! Failure hints: one short line that names the usual cause of a failed command.
//!
//! Pure and table-driven: [`RULES`] is a list of [`Rule`]s, each a set of output fragments
//! (any one must appear; empty = any output), an optional exit status, a condition on the
//! build ([`Facts`]) and the hint's text. The first rule that matches wins, so specific rules
//! come before general ones (the `docker` rule before "exit status 127"). Adding a rule is
//! one entry in the table. The engine writes the hint as an agent line (`Hint: …`) after the
//! failed phase's context line; it is never part of the CodeBuild record.
//!
//! An image on a registry this machine cannot reach ([`offline_hint`]: the build image's pull
//! in PROVISIONING, `docker pull`/`run`, `FROM` in `docker build`) gets a hint naming the image
//! and how to make it available offline; the engine asks it first, with the phase's context
//! message (which names the command) before the output.
//!
//! The small default image (`localbuild/standard:1.0`) lacks the runtimes of CodeBuild's
//! images: a command it does not have but the CodeBuild-like image does ([`CODEBUILD_TOOLS`]),
//! and a `runtime-versions` selection ([`runtime_versions_hint`]), get a hint naming
//! `-i aws/codebuild/standard:7.0` (or the curated image whose list has the version) and
//! what the first build of its stand-in costs.

use crate::buildspec::{cloud, runtimes};

/// The first build of the CodeBuild-like stand-in, as measured (the recipe's `build_time`).
pub const STANDARD_IMAGE_COST: &str = "about 20 minutes and 4 GB";

/// The curated image named by the small image's hints.
pub const SUGGESTED_IMAGE: &str = "aws/codebuild/standard:7.0";

/// Commands the CodeBuild-like image has and the small default image lacks.
pub const CODEBUILD_TOOLS: &[&str] = &[
    "npm", "npx", "node", "yarn", "pip", "pip3", "pytest", "mvn", "gradle", "java", "javac", "go",
    "gofmt", "ruby", "gem", "bundle", "php", "composer", "make", "gcc", "g++", "cc", "jq", "gpg",
    "sudo", "xvfb-run", "wget",
];

/// What is known about a failed command.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The command's combined stdout and stderr.
    pub output: &'a str,
    pub exit_code: i64,
    /// The build runs with `-d` / `--privileged`.
    pub privileged: bool,
    /// The buildspec's `env.shell`, `None` = the default `/bin/sh`.
    pub shell: Option<&'a str>,
    /// The build image.
    pub image: &'a str,
}

/// One hint rule.
pub struct Rule {
    /// Fragments of the output, any of which triggers the rule (empty = no output condition).
    pub any_of: &'static [&'static str],
    /// The exit status the command must have, if any.
    pub exit: Option<i64>,
    /// A further condition on the build.
    pub when: fn(&Facts) -> bool,
    /// The hint text.
    pub hint: fn(&Facts) -> String,
}

/// The rules, most specific first.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { any_of: OFFLINE, exit: None, when: |f| offline_image(f.output).is_some(), hint: |f| offline_hint(f.output).unwrap_or_default() },
    Rule { any_of: &["Cannot connect to the Docker daemon", "docker: not found", "docker: command not found"], exit: None, when: not_privileged, hint: |_| "docker commands need privileged mode: run with -d (--privileged) to give the build this machine's Docker daemon".into() },
    Rule { any_of: &["no basic auth credentials", "unauthorized", "denied: requested access"], exit: None, when: is_push, hint: login_hint },
    Rule { any_of: &["Syntax error: redirection unexpected", "[[: not found", "Bad substitution", "bad substitution"], exit: None, when: default_shell, hint: |_| "the image's /bin/sh is dash or ash, not bash: set `env: shell: bash` in the buildspec (or use POSIX sh syntax)".into() },
    Rule { any_of: &["unable to find user"], exit: Some(126), when: always, hint: |f| format!("run-as names a user that image {} does not have: create it in the image, or drop run-as", f.image) },
    Rule { any_of: &[": not found", "command not found"], exit: Some(127), when: |f| missing_codebuild_tool(f).is_some(), hint: codebuild_tool_hint },
    Rule { any_of: &[], exit: Some(127), when: always, hint: |f| format!("command not found in image {}: install it in the install phase or use an image that has it", f.image) },
];

/// The hint for a failed command, if a rule recognises it.
pub fn hint(facts: &Facts) -> Option<String> {
    RULES
        .iter()
        .find(|r| {
            (r.any_of.is_empty() || r.any_of.iter().any(|n| facts.output.contains(n)))
                && r.exit.is_none_or(|e| e == facts.exit_code)
                && (r.when)(facts)
        })
        .map(|r| (r.hint)(facts))
}

/// What Docker says when a registry's host cannot be reached (no DNS, no route).
pub const OFFLINE: &[&str] = &[
    "no such host",
    "Temporary failure in name resolution",
    "server misbehaving",
    "network is unreachable",
    "dial tcp: lookup",
];

/// The hint for an image a registry this machine cannot reach holds (the build image's pull
/// in PROVISIONING, `docker pull`/`run`, or `FROM` in `docker build`): the image, that the
/// machine is offline, and how to make the image available without the registry. `text` is
/// the failed command's output, after its context message (which names the command).
pub fn offline_hint(text: &str) -> Option<String> {
    let (image, registry) = offline_image(text)?;
    Some(format!(
        "image {image} is on {registry}, which this machine cannot reach (it looks offline):          load a saved copy (`docker save {image} -o image.tar` where it is online, then          `docker load -i image.tar` here), push it to a registry this machine runs, or build          from an image this machine has (`docker images`)"
    ))
}

/// The image (and its registry) of an unreachable-registry error in `text`, if it says one.
fn offline_image(text: &str) -> Option<(String, String)> {
    if !OFFLINE.iter().any(|n| text.contains(n)) {
        return None;
    }
    let image = text.lines().rev().find_map(|l| {
        let l = l.trim();
        // BuildKit: `failed to resolve source metadata for docker.io/library/python:3.11-slim`,
        // `load metadata for …`.
        for marker in ["source metadata for ", "load metadata for "] {
            if let Some(rest) = l.split(marker).nth(1) {
                let image = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
                return Some(image.trim_end_matches(':').to_owned());
            }
        }
        // The classic builder: `Step 1/3 : FROM python:3.11-slim [AS x]`.
        if let Some(rest) = l.split(" : FROM ").nth(1) {
            return rest.split_whitespace().next().map(str::to_owned);
        }
        // `docker run`: `Unable to find image 'python:3.11-slim' locally`; the build image.
        for (start, end) in [
            ("Unable to find image '", "'"),
            ("image ", " is not available"),
        ] {
            if let Some(rest) = l.split(start).nth(1)
                && let Some((image, _)) = rest.split_once(end)
            {
                return Some(image.to_owned());
            }
        }
        // The command (in the phase's context message): `docker pull IMAGE`.
        if let Some(rest) = l.split("docker pull ").nth(1) {
            let word = rest.split_whitespace().find(|w| !w.starts_with('-'))?;
            let word = word.trim_end_matches(['.', ';']);
            return (!word.contains('$')).then(|| word.to_owned());
        }
        // The daemon's request: `"https://registry-1.docker.io/v2/library/python/manifests/3"`.
        let url = l.split("https://").nth(1)?;
        let url = url.split('"').next()?;
        let (host, path) = url.split_once("/v2/")?;
        let (name, tag) = path.split_once("/manifests/")?;
        let name = if host.ends_with("docker.io") {
            name.strip_prefix("library/").unwrap_or(name).to_owned()
        } else {
            format!("{host}/{name}")
        };
        Some(format!("{name}:{tag}"))
    })?;
    let image = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(&image)
        .to_owned();
    let first = image.split('/').next().unwrap_or_default();
    let registry = if image.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_owned()
    } else {
        "Docker Hub".to_owned()
    };
    Some((image, registry))
}

/// The hint for a `runtime-versions` selection on an image without `runtimes.yml`: on the
/// default image, the curated image to use instead (the first of standard:7.0, 8.0, 6.0, 5.0
/// that lists every selected version, else standard:7.0).
pub fn runtime_versions_hint(image: &str, requested: &[(String, String)]) -> Option<String> {
    if image != crate::DEFAULT_IMAGE {
        return None;
    }
    let none = |_: &str| None;
    let lists_all = |name: &str| {
        cloud::image(name).is_some_and(|c| {
            runtimes::select(&c.runtimes, requested, &none)
                .is_ok_and(|s| s.iter().all(|s| s.custom.is_none()))
        })
    };
    let suggested = [
        SUGGESTED_IMAGE,
        "aws/codebuild/standard:8.0",
        "aws/codebuild/standard:6.0",
        "aws/codebuild/standard:5.0",
    ]
    .into_iter()
    .find(|n| lists_all(n))
    .unwrap_or(SUGGESTED_IMAGE);
    Some(format!(
        "{image} has no runtimes to select: run with -i {suggested}, whose local stand-in \
         has CodeBuild's runtimes (built on first use: {STANDARD_IMAGE_COST}, once)"
    ))
}

/// The command of [`CODEBUILD_TOOLS`] the output says is not found, on the default image.
fn missing_codebuild_tool(f: &Facts) -> Option<&'static str> {
    if f.image != crate::DEFAULT_IMAGE {
        return None;
    }
    f.output.lines().find_map(|l| {
        let l = l.trim_end();
        let before = l
            .strip_suffix(": not found")
            .or_else(|| l.strip_suffix(": command not found"))?;
        let word = before.rsplit([' ', ':']).next()?;
        CODEBUILD_TOOLS.iter().copied().find(|t| *t == word)
    })
}

fn codebuild_tool_hint(f: &Facts) -> String {
    let tool = missing_codebuild_tool(f).unwrap_or("the command");
    format!(
        "{} has no {tool}; CodeBuild's images do: run with -i {SUGGESTED_IMAGE} (its local \
         stand-in is built on first use: {STANDARD_IMAGE_COST}, once), or install {tool} in \
         the install phase",
        f.image
    )
}

fn always(_: &Facts) -> bool {
    true
}

fn not_privileged(f: &Facts) -> bool {
    !f.privileged
}

fn default_shell(f: &Facts) -> bool {
    matches!(f.shell, None | Some("sh" | "/bin/sh"))
}

/// A push (or a login) was attempted: the output shows the push or registry auth.
fn is_push(f: &Facts) -> bool {
    f.output.contains("The push refers to repository")
        || f.output.contains("denied: requested access")
        || f.output.contains("no basic auth credentials")
}

fn login_hint(f: &Facts) -> String {
    match push_registry(f.output) {
        Some(registry) => format!(
            "the registry refused the push: the build did not run `docker login {registry}` \
             (or ran it with wrong credentials) before pushing"
        ),
        None => "the registry refused the push: the build did not run `docker login` for it \
                 (or ran it with wrong credentials) before pushing"
            .into(),
    }
}

/// The registry of the last `The push refers to repository [REPO]` line: the host part of
/// REPO (`docker.io` when REPO names none).
fn push_registry(output: &str) -> Option<String> {
    let repo = output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("The push refers to repository ["))?
        .strip_suffix(']')?;
    let first = repo.split('/').next()?;
    let is_host =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    Some(if is_host { first } else { "docker.io" }.to_owned())
}

#[cfg(test)]
mod offline_tests {
    use super::*;

    fn facts(output: &str) -> Facts<'_> {
        Facts {
            output,
            exit_code: 1,
            privileged: true,
            shell: None,
            image: "localbuild-test/docker:1",
        }
    }

    #[test]
    fn an_unreachable_registry_names_the_image_and_how_to_load_it() {
        for (output, image, registry) in [
            (
                "Step 1/2 : FROM python:3.11-slim\nGet \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host\n",
                "python:3.11-slim",
                "Docker Hub",
            ),
            (
                "ERROR: failed to solve: python:3.11-slim: failed to resolve source metadata for docker.io/library/python:3.11-slim: failed to do request: Head \"https://registry-1.docker.io/v2/library/python/manifests/3.11-slim\": dial tcp: lookup registry-1.docker.io on 127.0.0.11:53: server misbehaving\n",
                "python:3.11-slim",
                "Docker Hub",
            ),
            (
                "Unable to find image 'public.ecr.aws/docker/library/node:20' locally\ndocker: Error response from daemon: Get \"https://public.ecr.aws/v2/\": dial tcp: lookup public.ecr.aws: Temporary failure in name resolution.\n",
                "public.ecr.aws/docker/library/node:20",
                "public.ecr.aws",
            ),
            (
                "Error while executing command: docker pull -q registry.invalid/team/app:2. Reason: exit status 1\nError response from daemon: Get \"https://registry.invalid/v2/\": dial tcp: lookup registry.invalid on 10.0.0.53:53: no such host\n",
                "registry.invalid/team/app:2",
                "registry.invalid",
            ),
            (
                "Error response from daemon: Head \"https://registry-1.docker.io/v2/library/alpine/manifests/3.20\": dial tcp: lookup registry-1.docker.io: no such host\n",
                "alpine:3.20",
                "Docker Hub",
            ),
            (
                "Unable to pull customer's container image. image ubuntu:24.04 is not available locally and could not be pulled: error trying to connect: dial tcp: lookup registry-1.docker.io: no such host",
                "ubuntu:24.04",
                "Docker Hub",
            ),
        ] {
            let h = hint(&facts(output)).unwrap_or_else(|| panic!("no hint for {output}"));
            assert!(
                h.starts_with(&format!(
                    "image {image} is on {registry}, which this machine cannot reach"
                )),
                "{h}"
            );
            assert!(h.contains("docker load -i"), "{h}");
        }
    }

    #[test]
    fn an_error_without_an_image_or_without_a_dns_failure_gets_no_offline_hint() {
        assert_eq!(
            offline_image("dial tcp 10.0.0.1:443: connect: connection refused"),
            None
        );
        assert_eq!(offline_image("no such host\n"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(output: &str, exit_code: i64) -> Facts<'_> {
        Facts {
            output,
            exit_code,
            privileged: false,
            shell: None,
            image: "localbuild-test/docker:1",
        }
    }

    /// Captured: `docker info` in `localbuild-test/docker:1` without the socket.
    const NO_DAEMON: &str = "Client:\n Version:    28.2.2\n\nServer:\n\
        Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";

    /// Captured: `docker push` to a loopback htpasswd registry without `docker login`.
    const NO_LOGIN: &str = "The push refers to repository [127.0.0.1:5999/workshop/capapp]\n\
        bae3704ff64d: Preparing\n0bab5b983bf6: Preparing\nno basic auth credentials\n";

    #[test]
    fn docker_without_privileged_mode_suggests_d() {
        let h = hint(&facts(NO_DAEMON, 1)).unwrap();
        assert!(h.contains("-d"), "{h}");
        let h = hint(&facts("sh: docker: not found\n", 127)).unwrap();
        assert!(h.contains("-d"), "{h}");
        // With -d the daemon rule does not apply; a missing docker is then "not found".
        let f = Facts {
            privileged: true,
            ..facts("sh: docker: not found\n", 127)
        };
        assert!(hint(&f).unwrap().contains("command not found in image"));
        let f = Facts {
            privileged: true,
            ..facts(NO_DAEMON, 1)
        };
        assert_eq!(hint(&f), None);
    }

    #[test]
    fn refused_pushes_name_the_registry() {
        let h = hint(&facts(NO_LOGIN, 1)).unwrap();
        assert!(h.contains("docker login 127.0.0.1:5999"), "{h}");
        let hub = "The push refers to repository [docker.io/someuser/app]\n\
                   denied: requested access to the resource is denied\n";
        assert!(
            hint(&facts(hub, 1))
                .unwrap()
                .contains("docker login docker.io")
        );
        let ecr = "The push refers to repository [123.dkr.ecr.eu-west-1.amazonaws.com/app]\n\
                   unauthorized: authentication required\n";
        assert!(
            hint(&facts(ecr, 1))
                .unwrap()
                .contains("docker login 123.dkr.ecr.eu-west-1.amazonaws.com")
        );
        // "unauthorized" outside a push (e.g. curl output) is not a login problem.
        assert_eq!(hint(&facts("HTTP 401 unauthorized\n", 1)), None);
    }

    #[test]
    fn bash_syntax_under_sh_suggests_bash() {
        for out in [
            "/bin/sh: 1: Syntax error: redirection unexpected\n",
            "/bin/sh: 1: [[: not found\n",
            "/bin/sh: 1: Bad substitution\n",
        ] {
            let code = if out.contains("[[") { 127 } else { 2 };
            let h = hint(&facts(out, code)).unwrap();
            assert!(h.contains("shell: bash"), "{out}: {h}");
            let bash = Facts {
                shell: Some("bash"),
                ..facts(out, code)
            };
            assert!(!hint(&bash).is_some_and(|h| h.contains("shell: bash")));
        }
    }

    #[test]
    fn exit_127_names_the_image() {
        let h = hint(&facts("sh: jq: not found\n", 127)).unwrap();
        assert!(h.contains("localbuild-test/docker:1"), "{h}");
    }

    #[test]
    fn ordinary_failures_have_no_hint() {
        assert_eq!(hint(&facts("tests failed\n", 1)), None);
        assert_eq!(hint(&facts("", 2)), None);
    }

    fn on_default_image(output: &str) -> Facts<'_> {
        Facts {
            image: crate::DEFAULT_IMAGE,
            ..facts(output, 127)
        }
    }

    #[test]
    fn a_codebuild_tool_missing_from_the_default_image_names_the_codebuild_image() {
        for (out, tool) in [
            ("/bin/sh: 1: npm: not found\n", "npm"),
            ("sh: pip: not found\n", "pip"),
            ("bash: line 1: mvn: command not found\n", "mvn"),
            ("/codebuild/output/tmp/script.sh: 4: go: not found\n", "go"),
        ] {
            let h = hint(&on_default_image(out)).unwrap();
            assert!(h.contains(&format!("has no {tool};")), "{out}: {h}");
            assert!(h.contains("-i aws/codebuild/standard:7.0"), "{h}");
            assert!(h.contains(STANDARD_IMAGE_COST), "{h}");
        }
        // Not a CodeBuild tool, or another image: the general hint.
        let h = hint(&on_default_image("sh: terraform: not found\n")).unwrap();
        assert!(h.starts_with("command not found in image"), "{h}");
        let h = hint(&facts("sh: npm: not found\n", 127)).unwrap();
        assert!(h.starts_with("command not found in image"), "{h}");
    }

    #[test]
    fn runtime_versions_on_the_default_image_name_the_image_that_lists_them() {
        let req = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let h = runtime_versions_hint(crate::DEFAULT_IMAGE, &req(&[("python", "3.12")])).unwrap();
        assert!(h.contains("-i aws/codebuild/standard:7.0,"), "{h}");
        assert!(h.contains(STANDARD_IMAGE_COST), "{h}");
        let h = runtime_versions_hint(crate::DEFAULT_IMAGE, &req(&[("nodejs", "14")])).unwrap();
        assert!(h.contains("-i aws/codebuild/standard:5.0,"), "{h}");
        let h = runtime_versions_hint(
            crate::DEFAULT_IMAGE,
            &req(&[("nodejs", "16"), ("java", "corretto17")]),
        )
        .unwrap();
        assert!(h.contains("-i aws/codebuild/standard:6.0,"), "{h}");
        assert_eq!(
            runtime_versions_hint("my/image:1", &req(&[("python", "3.12")])),
            None
        );
    }
}
