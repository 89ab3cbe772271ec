//! The validated buildspec model: what a build means, free of YAML.
//!
//! Everything here has been checked by `buildspec::parse`; later stages (plan, engine) never
//! re-validate. No I/O, no Docker, no serde: wire formats live at the edges.

/// Buildspec `version`. 0.1 runs every command in a fresh shell; 0.2 carries state over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V0_1,
    V0_2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1 => "0.1",
            Version::V0_2 => "0.2",
        }
    }
}

/// A validated buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildspec {
    pub version: Version,
    /// Top-level `run-as`: the Linux user for every command unless a phase overrides it.
    pub run_as: Option<String>,
    pub env: Env,
    pub proxy: Proxy,
    pub batch: Option<Batch>,
    /// The four buildspec phases in execution order; `None` when the buildspec omits one.
    pub phases: Phases,
    pub reports: Vec<ReportGroup>,
    pub artifacts: Option<Artifacts>,
    pub cache: Option<Cache>,
}

/// The four buildspec phases, always in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    Install,
    PreBuild,
    Build,
    PostBuild,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The buildspec key: `install`, `pre_build`, `build`, `post_build`.
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// The API / log name: `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD`.
    pub fn upper(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    pub fn from_key(key: &str) -> Option<PhaseName> {
        PhaseName::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// The phases a buildspec defines, indexed by [`PhaseName`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phases {
    pub install: Option<Phase>,
    pub pre_build: Option<Phase>,
    pub build: Option<Phase>,
    pub post_build: Option<Phase>,
}

impl Phases {
    pub fn get(&self, name: PhaseName) -> Option<&Phase> {
        match name {
            PhaseName::Install => self.install.as_ref(),
            PhaseName::PreBuild => self.pre_build.as_ref(),
            PhaseName::Build => self.build.as_ref(),
            PhaseName::PostBuild => self.post_build.as_ref(),
        }
    }

    pub fn get_mut(&mut self, name: PhaseName) -> &mut Option<Phase> {
        match name {
            PhaseName::Install => &mut self.install,
            PhaseName::PreBuild => &mut self.pre_build,
            PhaseName::Build => &mut self.build,
            PhaseName::PostBuild => &mut self.post_build,
        }
    }

    /// The defined phases in execution order.
    pub fn defined(&self) -> impl Iterator<Item = (PhaseName, &Phase)> {
        PhaseName::ALL
            .into_iter()
            .filter_map(|n| self.get(n).map(|p| (n, p)))
    }
}

/// One buildspec phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phase {
    pub run_as: Option<String>,
    pub on_failure: Option<OnFailure>,
    /// `install` only: runtime → version, in source order.
    pub runtime_versions: Vec<(String, String)>,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
}

/// `on-failure` of a phase (reference §1.8, decision U1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
    /// `RETRY`, `RETRY-<count>`, `RETRY-<regex>`, `RETRY-<count>-<regex>`.
    /// `count` is 0..=100 (default 3); `pattern` is a valid Rust regex (default: any message).
    Retry {
        count: u32,
        pattern: Option<String>,
    },
}

/// `env` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `bash`, `/bin/sh` (Linux), kept as written; `None` = the image's `/bin/sh`.
    pub shell: Option<String>,
    /// Plain variables in source order, values as written (never expanded).
    pub variables: Vec<(String, String)>,
    /// Variable name → Parameter Store parameter name.
    pub parameter_store: Vec<(String, String)>,
    /// Variable name → Secrets Manager reference.
    pub secrets_manager: Vec<(String, SecretRef)>,
    pub exported_variables: Vec<String>,
    pub git_credential_helper: bool,
}

/// `secret-id[:json-key[:version-stage[:version-id]]]`; empty parts are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The reference exactly as written (shown by `plan`, never a value).
    pub reference: String,
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// `proxy` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proxy {
    pub upload_artifacts: bool,
    pub logs: bool,
}

/// A 1-based line and column in the buildspec (for problems found after validation, e.g. by
/// the batch expansion).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// `batch` section, as the buildspec says it; [`crate::batch::expand`] turns it into builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub fast_fail: bool,
    pub kind: BatchKind,
    /// Where the build kind's key is (the `batch` key when there is none).
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchKind {
    BuildList(Vec<BatchTask>),
    BuildGraph(Vec<BatchTask>),
    BuildMatrix(BuildMatrix),
    BuildFanout {
        parallelism: u32,
        ignore_failure: bool,
    },
    /// A `batch` section with no build kind (e.g. only `fast-fail`).
    None,
}

/// One task of a build-list or build-graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTask {
    pub identifier: String,
    pub buildspec: Option<String>,
    pub depend_on: Vec<String>,
    /// Where each `depend-on` entry is (same length as `depend_on` when parsed).
    pub depend_on_at: Vec<Location>,
    /// Where the task is (its list item).
    pub at: Location,
    pub ignore_failure: bool,
    pub env: BatchEnv,
    pub debug_session: bool,
}

/// `env` of a batch task or matrix (image, compute type, variables, privileged mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchEnv {
    pub compute_type: Option<String>,
    pub image: Option<String>,
    pub env_type: Option<String>,
    pub privileged_mode: Option<bool>,
    pub variables: Vec<(String, String)>,
}

/// `build-matrix`: `static` settings and `dynamic` axes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildMatrix {
    pub static_ignore_failure: bool,
    pub static_env: BatchEnv,
    /// Dynamic buildspec files.
    pub buildspecs: Vec<String>,
    /// Dynamic `env.image`, `env.compute-type` values.
    pub images: Vec<String>,
    pub compute_types: Vec<String>,
    /// Dynamic `env.variables`: name → candidate values.
    pub variables: Vec<(String, Vec<String>)>,
}

impl BuildMatrix {
    /// Number of builds the matrix expands to.
    pub fn size(&self) -> usize {
        let axis = |n: usize| n.max(1);
        axis(self.buildspecs.len())
            * axis(self.images.len())
            * axis(self.compute_types.len())
            * self
                .variables
                .iter()
                .map(|(_, v)| axis(v.len()))
                .product::<usize>()
    }
}

/// Test report formats (`file-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    JunitXml,
    CucumberJson,
    NunitXml,
    Nunit3Xml,
    TestNgXml,
    VisualStudioTrx,
    CoberturaXml,
    JacocoXml,
    CloverXml,
    SimpleCov,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 10] = [
        ReportFormat::JunitXml,
        ReportFormat::CucumberJson,
        ReportFormat::NunitXml,
        ReportFormat::Nunit3Xml,
        ReportFormat::TestNgXml,
        ReportFormat::VisualStudioTrx,
        ReportFormat::CoberturaXml,
        ReportFormat::JacocoXml,
        ReportFormat::CloverXml,
        ReportFormat::SimpleCov,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::JunitXml => "JUNITXML",
            ReportFormat::CucumberJson => "CUCUMBERJSON",
            ReportFormat::NunitXml => "NUNITXML",
            ReportFormat::Nunit3Xml => "NUNIT3XML",
            ReportFormat::TestNgXml => "TESTNGXML",
            ReportFormat::VisualStudioTrx => "VISUALSTUDIOTRX",
            ReportFormat::CoberturaXml => "COBERTURAXML",
            ReportFormat::JacocoXml => "JACOCOXML",
            ReportFormat::CloverXml => "CLOVERXML",
            ReportFormat::SimpleCov => "SIMPLECOV",
        }
    }

    /// Case-insensitive, as CodeBuild reads it.
    pub fn parse(s: &str) -> Option<ReportFormat> {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
    }

    pub fn is_coverage(self) -> bool {
        matches!(
            self,
            ReportFormat::CoberturaXml
                | ReportFormat::JacocoXml
                | ReportFormat::CloverXml
                | ReportFormat::SimpleCov
        )
    }
}

/// One `reports` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportGroup {
    pub name: String,
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub file_format: ReportFormat,
}

/// The primary artifact and its secondary artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    pub primary: ArtifactSet,
    /// `secondary-artifacts`: identifier → definition, in source order.
    pub secondary: Vec<(String, ArtifactSet)>,
}

/// One artifact definition (`files`, `base-directory`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactSet {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub discard_paths: bool,
    pub base_directory: Option<String>,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
}

/// `cache` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    pub paths: Vec<String>,
    pub key: Option<String>,
    pub fallback_keys: Vec<String>,
    pub action: Option<CacheAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheAction {
    Restore,
    Save,
}
