//! Command-line arguments (clap) and dispatch to one module per subcommand.
//!
//! Each subcommand module renders the library's typed results on stdout through [`out`] and
//! returns `Result<u8, CliError>`: the exit code of its outcome, or a [`CliError`];
//! [`exit::finish`] is the one place that prints errors and maps them to exit codes.

mod api;
mod attach;
mod batch;
mod builds;
mod cache;
mod cloud;
mod completions;
mod config;
mod ecr_hosts;
mod error;
mod exit;
mod gc;
mod image;
mod json;
mod list;
mod out;
mod pipeline;
mod plan;
mod progress;
mod reproduce;
mod run;
mod serve;
mod validate;

use clap::{Parser, Subcommand};
use error::CliError;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "localbuild",
    version,
    about = "Run AWS CodeBuild buildspecs locally in Docker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check buildspec files; print each problem as FILE:LINE:COLUMN: message
    Validate {
        /// Buildspec files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what a build would do, without Docker
    Plan(PlanArgs),
    /// List a buildspec's phases and commands (or its batch builds) in a compact table
    List(ListArgs),
    /// Run a build in Docker, with CodeBuild's phases, variables and log
    Run(Box<RunArgs>),
    /// Run a cloud build again here, from its record (`aws codebuild batch-get-builds --ids ID
    /// | localbuild reproduce -`): the commit it built, its buildspec, image and variables; then
    /// its phases next to the local ones and a verdict
    Reproduce(Box<ReproduceArgs>),
    /// Remove containers, volumes and networks left behind by killed builds, and kept ones
    Gc {
        /// Only list what would be removed
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Open a shell in a paused build (`run --debug` at codebuild-breakpoint, or
    /// `--shell-on-failure`), at its working directory with its variables; `codebuild-resume`
    /// there lets the build go on
    Attach {
        /// The build: its id, or PROJECT:NUMBER
        build: String,
    },
    /// Open a shell in the container a build kept (`run --keep-container`), with the state
    /// its last command left
    Shell {
        /// The build: its id, or PROJECT:NUMBER
        build: String,
    },
    /// Build or list localbuild's own build images
    #[command(subcommand)]
    Image(ImageCommand),
    /// List or remove saved build caches
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The build history: list builds, show one, print or follow its log
    #[command(subcommand)]
    Builds(BuildsCommand),
    /// Pipelines kept by `serve`: create, update, start and approve them (through a running
    /// `serve`); list them, a pipeline's stages and actions, its executions (from the store)
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Serve a local CodeBuild and CloudWatch Logs API for the aws CLI and SDKs
    Serve(ServeArgs),
    /// Print the effective run settings (config files, defaults) and where each came from
    Config(ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of localbuild, or of one of its subcommands
    Man {
        /// A subcommand (e.g. `run`) for its own page
        subcommand: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// List the pipelines
    List {
        /// Print ListPipelines' summaries as JSON
        #[arg(long)]
        json: bool,
    },
    /// A pipeline's stages and actions with status, revision and time (GetPipelineState)
    Status {
        /// The pipeline's name
        name: String,
        /// Print GetPipelineState's answer as JSON
        #[arg(long)]
        json: bool,
    },
    /// A pipeline's executions, newest first (ListPipelineExecutions)
    Executions {
        /// The pipeline's name
        name: String,
        /// Print the execution summaries as JSON
        #[arg(long)]
        json: bool,
    },
    /// Create a pipeline from a definition file, as `aws codepipeline create-pipeline` takes it
    /// (`{"pipeline": {…}}` or the declaration alone); its first execution starts at once
    Create {
        /// The pipeline definition (JSON)
        file: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Replace a pipeline's declaration from a definition file (its version goes up by one)
    Update {
        /// The pipeline definition (JSON)
        file: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Start an execution of a pipeline (release the latest change)
    Start {
        /// The pipeline's name
        name: String,
        /// A V2 pipeline variable for this execution, NAME=VALUE (repeatable)
        #[arg(long = "variable", value_name = "NAME=VALUE")]
        variables: Vec<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Approve (or with --reject, reject) a manual approval action that is waiting
    Approve {
        /// The pipeline's name
        name: String,
        /// The stage holding the approval action
        stage: String,
        /// The approval action's name
        action: String,
        /// Reject instead of approve
        #[arg(long)]
        reject: bool,
        /// The reviewer's summary
        #[arg(long, default_value = "")]
        summary: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

/// `reproduce`'s arguments: the record, where its sources are, and every `run` flag (`run`'s
/// `--project NAME` is `--project-name NAME` here: `--project` reads a project record).
#[derive(Debug, clap::Args)]
#[command(mut_arg("project", |a| a.long("project-name").help(
    "Project name of the local build (default: the record's projectName)"
)))]
pub struct ReproduceArgs {
    /// The record: what `aws codebuild batch-get-builds --ids ID` prints (or one Build
    /// object); `-` reads standard input
    pub file: PathBuf,
    /// The build to reproduce when the record holds several (its id or ARN); with --project,
    /// the project's name
    #[arg(long = "build", value_name = "ID")]
    pub build: Option<String>,
    /// FILE is a BatchGetProjects answer: create that project in the running `serve`
    /// (CreateProject), to start it there as it is
    #[arg(long = "project")]
    pub project_record: bool,
    /// Where repository locations resolve, as `serve --git-root`: https://host/OWNER/REPO to
    /// DIR/OWNER/REPO, else DIR/REPO (default: $LOCALBUILD_HOME/git)
    #[arg(long = "git-root", value_name = "DIR")]
    pub git_root: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArg,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The running `serve` a command talks to.
#[derive(Debug, clap::Args)]
pub struct ServerArg {
    /// localbuild serve's address (default: AWS_ENDPOINT_URL, else http://127.0.0.1:4599)
    #[arg(long = "endpoint-url", env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BuildsCommand {
    /// List builds, newest first
    List {
        /// Only this project's builds
        #[arg(long)]
        project: Option<String>,
        /// Only builds with this status (SUCCEEDED, FAILED, IN_PROGRESS, ...)
        #[arg(long)]
        status: Option<String>,
    },
    /// List batch builds, newest first, with their tasks' statuses
    Batches {
        /// Only this project's batches
        #[arg(long)]
        project: Option<String>,
        /// Only batches with this status (SUCCEEDED, FAILED, STOPPED, IN_PROGRESS)
        #[arg(long)]
        status: Option<String>,
    },
    /// Show a build (ID or PROJECT:NUMBER) or a batch (its ID): its phase or task table, or its
    /// record with --json
    Show {
        build: String,
        /// Print the Build (or BuildBatch) record as BatchGetBuilds (BatchGetBuildBatches)
        /// returns it
        #[arg(long)]
        json: bool,
    },
    /// Print a build's log (ID or PROJECT:NUMBER); -f follows a running build
    Logs {
        build: String,
        #[arg(short = 'f', long = "follow")]
        follow: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, printed at start)
    #[arg(
        long = "listen",
        default_value = "127.0.0.1:4599",
        value_name = "ADDRESS:PORT"
    )]
    pub listen: String,
    /// Accept only requests signed (SigV4) with a key of this AWS shared credentials file;
    /// required to listen on a non-loopback address
    #[arg(long = "credentials", value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Also answer requests whose Host is NAME (repeatable); localhost, 127.0.0.1, [::1] and
    /// the listen address always are, any other name is refused (DNS rebinding)
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Values for PARAMETER_STORE and SECRETS_MANAGER variables (as `run --secrets-file`)
    #[arg(long = "secrets-file", value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Builds that run at once; more wait QUEUED (default: the number of CPUs)
    #[arg(long = "max-concurrent-builds", value_name = "N")]
    pub max_concurrent_builds: Option<usize>,
    /// Where repository locations resolve: https://host/OWNER/REPO to DIR/OWNER/REPO, else
    /// DIR/REPO (default: $LOCALBUILD_HOME/git)
    #[arg(long = "git-root", value_name = "DIR")]
    pub git_root: Option<PathBuf>,
    /// Give privileged builds this machine's Docker daemon itself (and a privileged container)
    /// instead of the guarded Docker API: a buildspec can then read and change any file of
    /// this machine
    #[arg(long = "docker-host-access")]
    pub docker_host_access: bool,
    /// The AWS account id in every ARN and message, and the one STS GetCallerIdentity
    /// answers: 12 digits (default: `account-id` of the user config, else 000000000000)
    #[arg(long = "account-id", value_name = "ID")]
    pub account_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build (or rebuild) an image from its embedded recipe: the default image
    /// localbuild/standard:1.0 (--slim, the default), or the CodeBuild-like
    /// localbuild/codebuild-standard:1.0 (--standard) that stands in for aws/codebuild/* images
    Build {
        /// localbuild/codebuild-standard:1.0: the runtimes of CodeBuild's standard images from
        /// Debian's packages (about 10 minutes, 1.9 GB)
        #[arg(long, conflicts_with = "slim")]
        standard: bool,
        /// localbuild/standard:1.0, the default build image (about a minute, 313 MB)
        #[arg(long)]
        slim: bool,
    },
    /// List localbuild's images: built or not, size, the AWS image names they stand in for
    Ls,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the saved caches: project, key, size
    Ls {
        /// Only this project's caches
        project: Option<String>,
    },
    /// Remove a project's caches (all of them, or one key)
    Rm {
        /// The project whose caches to remove
        project: String,
        /// Only the cache with this key (`default` = the unkeyed cache)
        key: Option<String>,
    },
}

/// `run`'s flags. Those a config file can set are `Option`s (or `false`) until
/// [`config::resolve`] fills them in; after it, `image` and `timeout` are always `Some`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Build image (default: localbuild/standard:1.0, built on first use)
    #[arg(short = 'i', long = "image")]
    pub image: Option<String>,
    /// Source directory: the first plain DIR is the primary source (default: .); ID:DIR adds a
    /// secondary source with CODEBUILD_SRC_DIR_<ID> (repeatable)
    #[arg(short = 's', long = "source", value_name = "[ID:]DIR")]
    pub source: Vec<String>,
    /// Buildspec file (default: buildspec.yml in the source directory)
    #[arg(short = 'b', long = "buildspec")]
    pub buildspec: Option<PathBuf>,
    /// Bind-mount the source directory instead of copying it (the build can then change it)
    #[arg(short = 'm', long = "mount")]
    pub mount: bool,
    /// Privileged mode: docker commands in the build use a guarded Docker API of this
    /// machine's daemon (no host files, no privileged containers)
    #[arg(short = 'd', long = "privileged")]
    pub privileged: bool,
    /// With -d: give the build this machine's Docker daemon itself and a privileged container,
    /// as CodeBuild's build VM has; a buildspec can then read and change any file of this
    /// machine (also `docker-host-access = true` in the user config, never the project's)
    #[arg(long = "docker-host-access")]
    pub docker_host_access: bool,
    /// Write the build record (CodeBuild's Build object) to FILE as JSON
    #[arg(long = "build-json", value_name = "FILE")]
    pub build_json: Option<PathBuf>,
    /// Build timeout in minutes (default: 60)
    #[arg(long = "timeout", value_name = "MINUTES")]
    pub timeout: Option<u64>,
    /// The AWS account id in the build's ARNs (CODEBUILD_BUILD_ARN, …) and its local STS
    /// identity: 12 digits (default: 000000000000; also `account-id` in a config file)
    #[arg(long = "account-id", value_name = "ID")]
    pub account_id: Option<String>,
    /// Project name (default: the source directory's name)
    #[arg(long = "project")]
    pub project: Option<String>,
    /// Env file: KEY=VALUE lines, # comments; overrides the buildspec's variables
    #[arg(short = 'e', long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Set a variable (repeatable); overrides the env file and the buildspec
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Local values for env.parameter-store and env.secrets-manager (YAML or JSON)
    #[arg(long = "secrets-file", value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Forward this machine's AWS configuration (~/.aws) and AWS_* variables into the build
    #[arg(short = 'c', long = "aws-config")]
    pub aws_config: bool,
    /// AWS profile to use with -c (sets AWS_PROFILE in the build; needs -c, here or in a config file)
    #[arg(short = 'p', long = "profile", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Write artifacts to DIR (default: artifacts/ in the build's record folder)
    #[arg(short = 'a', long = "artifacts", value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Write report files and their JSON summaries to DIR (default: reports/ in the record folder)
    #[arg(short = 'r', long = "reports", value_name = "DIR")]
    pub reports: Option<PathBuf>,
    /// Package each artifact as a zip instead of a folder
    #[arg(long = "zip")]
    pub zip: bool,
    /// Neither restore nor save the buildspec's cache
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Build this version of the source repository (branch, tag, commit, refs/..., pr/N),
    /// checked out the way CodeBuild clones it; the -s directory must be a git repository
    #[arg(long = "source-version", value_name = "REF")]
    pub source_version: Option<String>,
    /// With --source-version: clone only the last N commits (CodeBuild's gitCloneDepth)
    #[arg(
        long = "git-clone-depth",
        value_name = "N",
        requires = "source_version"
    )]
    pub git_clone_depth: Option<u32>,
    /// Copy every file of a git work tree, also those git ignores (default: only what git
    /// does not ignore, and .git)
    #[arg(long = "all-files")]
    pub all_files: bool,
    /// Run the buildspec's `batch` section as a batch build (as StartBuildBatch does): one
    /// build per task, each with its own container, record and log
    #[arg(long = "batch")]
    pub batch: bool,
    /// With --batch: builds running at once (default: the number of CPUs)
    #[arg(long = "parallel", value_name = "N", requires = "batch", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// With --batch: put each build's artifacts in a folder named by its identifier in the
    /// batch's artifacts folder (CodeBuild's combineArtifacts)
    #[arg(long = "combine-artifacts", requires = "batch")]
    pub combine_artifacts: bool,
    /// With --batch: refuse a batch of more than N builds (restrictions.maximumBuildsAllowed)
    #[arg(long = "max-builds", value_name = "N", requires = "batch")]
    pub max_builds: Option<u32>,
    /// What stdout shows: the text log and summary, or one JSON object per event (JSON Lines;
    /// the last line is the final Build record, or BuildBatch with --batch)
    #[arg(
        long = "output",
        short = 'o',
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub output: OutputFormat,
    /// No progress lines or spinners on stderr (warnings and errors still show)
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Session debugging (CodeBuild's debugSessionEnabled): a `codebuild-breakpoint` command
    /// pauses the build until `codebuild-resume` runs in `localbuild attach`'s shell
    #[arg(long = "debug", conflicts_with = "batch")]
    pub debug: bool,
    /// On an interactive terminal: when a command fails, open a shell at the state it left
    /// before the phase fails; leaving it goes on, `codebuild-resume --retry` runs it again
    #[arg(long = "shell-on-failure", conflicts_with = "batch")]
    pub shell_on_failure: bool,
    /// Do not remove the build container at the end: `localbuild shell BUILD` opens a shell
    /// in it, `localbuild gc` removes it
    #[arg(long = "keep-container", conflicts_with = "batch")]
    pub keep_container: bool,
}

impl RunArgs {
    /// No flags given (what `localbuild config` resolves).
    pub fn defaults() -> RunArgs {
        RunArgs::default()
    }
}

/// `run --output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The agent log and output live, then the phase table
    #[default]
    Text,
    /// JSON Lines: one object per event, the final Build record last
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Buildspec file (default: buildspec.yml in the source directory)
    #[arg(short = 'b', long = "buildspec")]
    pub buildspec: Option<PathBuf>,
    /// Primary source directory
    #[arg(short = 's', long = "source", default_value = ".")]
    pub source: PathBuf,
    /// List the builds of the buildspec's batch section instead of its phases
    #[arg(long)]
    pub batch: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Primary source directory (where .localbuild.toml is looked for)
    #[arg(short = 's', long = "source", default_value = ".")]
    pub source: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Buildspec file (default: buildspec.yml in the source directory)
    #[arg(short = 'b', long = "buildspec")]
    pub buildspec: Option<PathBuf>,
    /// Primary source directory
    #[arg(short = 's', long = "source", default_value = ".")]
    pub source: PathBuf,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
}

/// Diagnostics of localbuild itself go to stderr, filtered by `LOCALBUILD_LOG` (default: warn).
/// `run` prints the build's events, which say a store failure already: its default leaves out
/// the engine's line about it.
pub fn init_tracing(command: &Command) {
    let default = match command {
        Command::Run(_) => format!(
            "warn,{}=off",
            localbuild_engine::handle::STORE_FAILURE_TARGET
        ),
        _ => "warn".to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCALBUILD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .init();
}

/// A tokio runtime for one command.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Fault(format!("cannot start the async runtime: {e}")))
}

/// Run `f` with a connected Docker client; an unreachable daemon is exit 3 with the reason.
fn with_docker<F, Fut>(f: F) -> Result<u8, CliError>
where
    F: FnOnce(localbuild_docker::Docker) -> Fut,
    Fut: std::future::Future<Output = Result<u8, CliError>>,
{
    runtime()?.block_on(async { f(localbuild_docker::Docker::connect().await?).await })
}

/// The build history, for the commands that read it.
fn history() -> Result<localbuild_store::HistoryStore, CliError> {
    localbuild_store::HistoryStore::open(run::store_root()).map_err(CliError::History)
}

/// Run the subcommand and return the process exit code.
pub fn dispatch(cli: Cli) -> u8 {
    exit::finish(match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Plan(args) => plan::run(&args),
        Command::List(args) => list::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Gc { dry_run } => gc::run(dry_run),
        Command::Attach { build } => attach::run(&build, attach::Mode::Attach),
        Command::Shell { build } => attach::run(&build, attach::Mode::Shell),
        Command::Image(ImageCommand::Build { standard, .. }) => image::build(standard),
        Command::Image(ImageCommand::Ls) => image::ls(),
        Command::Cache(c) => cache::run(&c),
        Command::Builds(c) => builds::run(&c),
        Command::Pipeline(c) => pipeline::run(&c),
        Command::Serve(args) => serve::run(&args),
        Command::Config(args) => config::run(&args),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { subcommand } => completions::man(subcommand.as_deref()),
    })
}
