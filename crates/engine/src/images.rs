//! What a build did with container images, read from the docker CLI's output.
//!
//! Pure: [`ImageTracker::line`] takes one output line of a build command at a time and
//! recognises the lines the docker CLI prints when it builds and pushes:
//!
//! * built: `Successfully tagged app:1f3c` (legacy builder), `#8 naming to
//!   docker.io/library/app:1f3c done` (BuildKit);
//! * pushed: `The push refers to repository [127.0.0.1:5000/workshop/app]` followed by
//!   `1f3c: digest: sha256:… size: 528`.
//!
//! Results are kept per build phase ([`PhaseImages`]); the engine feeds every command output
//! line into the tracker with the phase it ran in. Nothing here talks to Docker: the tracker
//! reports what the output says, which is what the user saw.

use super::record::PhaseType;

/// An image pushed to a registry: `reference` is `repository:tag`, `digest` is `sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub reference: String,
    pub digest: String,
}

impl std::fmt::Display for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.reference, self.digest)
    }
}

/// The images one phase built (`name:tag`) and pushed, in the order the output showed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseImages {
    pub phase: PhaseType,
    pub built: Vec<String>,
    pub pushed: Vec<Pushed>,
}

/// Reads docker CLI output lines and collects built and pushed images per phase.
#[derive(Debug, Default, Clone)]
pub struct ImageTracker {
    phases: Vec<PhaseImages>,
    /// The repository of the push in progress (`The push refers to repository [...]`).
    pushing: Option<String>,
}

impl ImageTracker {
    pub fn new() -> ImageTracker {
        ImageTracker::default()
    }

    /// Feed a chunk of complete output lines (as passed to the log).
    pub fn feed(&mut self, phase: PhaseType, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            self.line(phase, line);
        }
    }

    /// Feed one output line (with or without its line ending).
    pub fn line(&mut self, phase: PhaseType, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']).trim();
        if let Some(name) = built_name(line) {
            let entry = self.entry(phase);
            if !entry.built.contains(&name) {
                entry.built.push(name);
            }
        } else if let Some(repo) = line
            .strip_prefix("The push refers to repository [")
            .and_then(|r| r.strip_suffix(']'))
        {
            self.pushing = Some(short_name(repo));
        } else if let Some((tag, digest)) = push_digest(line)
            && let Some(repo) = self.pushing.clone()
        {
            let pushed = Pushed {
                reference: format!("{repo}:{tag}"),
                digest,
            };
            let entry = self.entry(phase);
            if !entry.pushed.contains(&pushed) {
                entry.pushed.push(pushed);
            }
        }
    }

    /// The phases that built or pushed something, in the order they ran.
    pub fn phases(&self) -> &[PhaseImages] {
        &self.phases
    }

    pub fn into_phases(self) -> Vec<PhaseImages> {
        self.phases
    }

    fn entry(&mut self, phase: PhaseType) -> &mut PhaseImages {
        let pos = match self.phases.iter().position(|p| p.phase == phase) {
            Some(i) => i,
            None => {
                self.phases.push(PhaseImages {
                    phase,
                    built: vec![],
                    pushed: vec![],
                });
                self.phases.len() - 1
            }
        };
        &mut self.phases[pos]
    }
}

/// `Successfully tagged app:1f3c` or BuildKit's `#8 naming to docker.io/library/app:1f3c done`.
fn built_name(line: &str) -> Option<String> {
    if let Some(name) = line.strip_prefix("Successfully tagged ") {
        return Some(short_name(name.trim()));
    }
    // BuildKit: `#N naming to NAME [0.0s] [done]`, or without the step number (plain progress).
    let rest = match line.strip_prefix('#') {
        Some(r) => r
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start(),
        None => line,
    };
    let name = rest.strip_prefix("naming to ")?.split_whitespace().next()?;
    // `naming to moby-dangling@sha256:…` is an untagged build.
    if name.contains('@') {
        return None;
    }
    Some(short_name(name))
}

/// `1f3c: digest: sha256:<64 hex> size: 528` → (`1f3c`, `sha256:…`).
fn push_digest(line: &str) -> Option<(String, String)> {
    let (tag, rest) = line.split_once(": digest: ")?;
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    let valid_tag = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_tag || hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some((tag.to_owned(), digest.to_owned()))
}

/// The name as the user wrote it: `docker.io/library/app:1` → `app:1`,
/// `docker.io/someuser/app` → `someuser/app`; other registries are kept.
fn short_name(name: &str) -> String {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `localbuild-test/docker:1` (docker CLI 28.2.2, daemon 20.10, legacy builder)
    /// talking to the host daemon and a loopback registry.
    const LEGACY_BUILD: &str = "\
DEPRECATED: The legacy builder is deprecated and will be removed in a future release.
            Install the buildx component to build images with BuildKit:
            https://docs.docker.com/go/buildx/

Sending build context to Docker daemon  2.048kB
Step 1/2 : FROM localbuild-test/busybox:1
 ---> 3a8223514092
Step 2/2 : CMD [\"echo\",\"hello\"]
 ---> Running in fbc169760b43
Removing intermediate container fbc169760b43
 ---> 3fd9c575b72c
Successfully built 3fd9c575b72c
Successfully tagged capapp:1f3c
";

    const PUSH: &str = "\
The push refers to repository [127.0.0.1:5999/workshop/capapp]
bae3704ff64d: Preparing
0bab5b983bf6: Preparing
fce14aa5cb39: Preparing
0bab5b983bf6: Pushed
bae3704ff64d: Pushed
fce14aa5cb39: Pushed
1f3c: digest: sha256:897678fc3f7ff3c47e3eafc412b0d920af771a2842d2201658e5780c9b7e9fd5 size: 943
";

    const PUSH_NO_LOGIN: &str = "\
The push refers to repository [127.0.0.1:5999/workshop/capapp]
bae3704ff64d: Preparing
0bab5b983bf6: Preparing
no basic auth credentials
";

    /// BuildKit (`docker buildx build --progress plain`, docker 24-28).
    const BUILDKIT: &str = "\
#5 [1/1] FROM docker.io/library/busybox:1.36
#5 DONE 0.0s
#6 exporting to image
#6 exporting layers done
#6 writing image sha256:5b0d2d635df829f65d0ffb45eab2c3124a52c1ab1ce1a9d9d8ba2a8b0e0a8d3c done
#6 naming to docker.io/library/app:1f3c done
#6 naming to 127.0.0.1:5000/workshop/app:latest 0.0s done
#6 DONE 0.1s
";

    fn track(phase: PhaseType, text: &str) -> ImageTracker {
        let mut t = ImageTracker::new();
        t.feed(phase, text.as_bytes());
        t
    }

    #[test]
    fn legacy_builder_tags_are_built_images() {
        let t = track(PhaseType::Build, LEGACY_BUILD);
        assert_eq!(
            t.phases(),
            &[PhaseImages {
                phase: PhaseType::Build,
                built: vec!["capapp:1f3c".into()],
                pushed: vec![],
            }]
        );
    }

    #[test]
    fn buildkit_naming_lines_are_built_images() {
        let t = track(PhaseType::Build, BUILDKIT);
        assert_eq!(
            t.phases()[0].built,
            vec!["app:1f3c", "127.0.0.1:5000/workshop/app:latest"]
        );
    }

    #[test]
    fn a_push_gives_the_reference_and_its_digest() {
        let t = track(PhaseType::PostBuild, PUSH);
        let p = &t.phases()[0];
        assert_eq!(p.phase, PhaseType::PostBuild);
        assert!(p.built.is_empty());
        assert_eq!(
            p.pushed,
            vec![Pushed {
                reference: "127.0.0.1:5999/workshop/capapp:1f3c".into(),
                digest: "sha256:897678fc3f7ff3c47e3eafc412b0d920af771a2842d2201658e5780c9b7e9fd5"
                    .into(),
            }]
        );
        assert_eq!(
            p.pushed[0].to_string(),
            "127.0.0.1:5999/workshop/capapp:1f3c@sha256:897678fc3f7ff3c47e3eafc412b0d920af771a2842d2201658e5780c9b7e9fd5"
        );
    }

    #[test]
    fn a_failed_push_records_nothing() {
        assert!(
            track(PhaseType::PostBuild, PUSH_NO_LOGIN)
                .phases()
                .is_empty()
        );
    }

    #[test]
    fn docker_hub_names_are_shortened() {
        let text = "The push refers to repository [docker.io/someuser/app]\n\
                    latest: digest: sha256:0000000000000000000000000000000000000000000000000000000000000000 size: 1\n";
        let t = track(PhaseType::PostBuild, text);
        assert_eq!(t.phases()[0].pushed[0].reference, "someuser/app:latest");
    }

    #[test]
    fn phases_are_kept_apart_and_lines_may_come_one_by_one() {
        let mut t = ImageTracker::new();
        for line in LEGACY_BUILD.lines() {
            t.line(PhaseType::Build, line);
        }
        t.feed(PhaseType::PostBuild, PUSH.as_bytes());
        t.feed(PhaseType::PostBuild, PUSH.as_bytes()); // the same push twice: listed once
        let phases = t.into_phases();
        assert_eq!(phases.len(), 2);
        assert_eq!(phases[0].phase, PhaseType::Build);
        assert_eq!(phases[1].phase, PhaseType::PostBuild);
        assert_eq!(phases[1].pushed.len(), 1);
    }

    #[test]
    fn look_alike_lines_are_ignored() {
        let text = "echo naming to nothing\n\
                    x: digest: sha256:short size: 1\n\
                    1f3c: digest: sha256:897678fc3f7ff3c47e3eafc412b0d920af771a2842d2201658e5780c9b7e9fd5 size: 943\n\
                    #6 naming to moby-dangling@sha256:897678fc3f7ff3c47e3eafc412b0d920af771a2842d2201658e5780c9b7e9fd5 done\n";
        // No `The push refers to` line before the digest: the repository is unknown.
        assert!(track(PhaseType::Build, text).phases().is_empty());
    }
}
