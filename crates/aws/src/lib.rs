//! The local AWS services a build reaches, and ECS, as domain logic: no wire format, no HTTP
//! server, no Docker client (ECS's tasks go through the engine's `Runtime`; the registry's API
//! is called over loopback HTTP). `localbuild-server` speaks the protocols (JSON 1.1 for SSM,
//! Secrets Manager, ECR and ECS, the query protocol for STS and IAM, REST/XML for S3) over these
//! types.
//!
//! * [`params`] — Parameter Store and Secrets Manager: one store, seeded by the secrets file
//!   (`--secrets-file`), API writes kept in the history database; builds read it through
//!   [`params::Store::snapshot`] for `env.parameter-store` / `env.secrets-manager`.
//! * [`s3`] — buckets and objects over `$LOCALBUILD_HOME/s3` (the store S3 sources and
//!   pipeline artifact stores use), uploads staged and renamed into place.
//! * [`iam`] — roles, managed policies and instance profiles as IAM keeps them: stored and
//!   shown, never enforced.
//! * [`ecr`] — ECR repositories, their images in the local registry, and the mapping of
//!   `ACCOUNT.dkr.ecr.REGION.amazonaws.com/…` to it ([`ecr::EcrImages`]: the engine's
//!   `ImageSource`).
//! * [`registry`] — the local registry behind ECR (Debian's `docker-registry`, supervised).
//! * [`ecs`] — ECS clusters, services (one task each, a container of the runtime's) and task
//!   definitions: what the pipeline's ECS deploy action and `aws ecs` change.
//! * [`sts`] — who a key is: the build's session credentials, `AssumeRole` sessions and the
//!   static `--credentials` keys; [`sts::Identities::keys`] is what SigV4 checks against.
//!
//! Every ARN names one account: [`ACCOUNT_ID`] (the engine's default) unless the caller chose
//! another (`--account-id`; `Iam::in_account`, `Identities::in_account`, `Ecr::in_account`).

pub mod ecr;
pub mod ecs;
pub mod iam;
pub mod params;
pub mod registry;
pub mod s3;
pub mod sts;

pub use localbuild_engine::ACCOUNT_ID;

/// A failed call, in the service's terms; the server maps each variant to AWS's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// SSM `ParameterNotFound`.
    #[error("Parameter {0} not found.")]
    ParameterNotFound(String),
    /// SSM `ParameterAlreadyExists`.
    #[error(
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    )]
    ParameterAlreadyExists,
    /// Secrets Manager `ResourceNotFoundException`.
    #[error("Secrets Manager can't find the specified secret.")]
    SecretNotFound,
    /// Secrets Manager `ResourceExistsException`.
    #[error("The operation failed because the secret {0} already exists.")]
    SecretExists(String),
    /// Secrets Manager `InvalidRequestException` (e.g. a secret scheduled for deletion).
    #[error("{0}")]
    InvalidRequest(String),
    /// A field breaks the service's rules (`ValidationException`; the message names the field).
    #[error("{0}")]
    Validation(String),
    /// Secrets Manager `InvalidParameterException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// The history database failed.
    #[error("the history database failed: {0}")]
    Store(String),
}

impl From<localbuild_db::DbError> for AwsError {
    fn from(e: localbuild_db::DbError) -> AwsError {
        AwsError::Store(e.to_string())
    }
}

/// Seconds since the epoch, as the JSON APIs give timestamps (the engine's one clock).
pub use localbuild_engine::record::epoch_now as now;

/// `n` random characters from `alphabet` (uuid v4's randomness: the OS's generator).
pub(crate) fn random(alphabet: &[u8], n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push(alphabet[*b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}
