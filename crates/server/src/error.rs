//! The one place where a failed call gets its AWS error type and status. Every JSON 1.1
//! operation returns [`ApiError`], rendered here as `{"__type": "<ErrorShape>", "message":
//! "..."}` with the `X-Amzn-ErrorType` header; every domain error converts to it here (`From`
//! impls below). The XML protocols render their own bodies (S3's `<Error>`, the query
//! protocol's `<ErrorResponse>`) but take the code and status from here too ([`s3_code`],
//! [`iam_code`]). No request can turn into a 500 or a panic (internal failures are
//! `ServiceException`s with a message).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failed call, typed by the error shape the client will see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    AccountLimitExceeded(String),
    /// Malformed JSON or a value of the wrong type; the message names the field.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    /// The body is over the server's limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The request's header section is over the server's limit (431).
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The request may not be served at all, e.g. its `Host` names no address of this
    /// server (403).
    #[error("{0}")]
    AccessDenied(String),
    /// No route answers the request's path (404).
    #[error("{0}")]
    NoSuchPath(String),
    /// The path exists, not for this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A SigV4 failure: the type and status the verifier chose.
    #[error("{message}")]
    Auth {
        aws_type: &'static str,
        status: u16,
        message: String,
    },
    /// CodePipeline and CodeConnections: a value breaks the model's constraints.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    PipelineNameInUse(String),
    #[error("{0}")]
    PipelineNotFound(String),
    #[error("{0}")]
    PipelineVersionNotFound(String),
    #[error("{0}")]
    PipelineExecutionNotFound(String),
    #[error("{0}")]
    PipelineExecutionNotStoppable(String),
    #[error("{0}")]
    InvalidStructure(String),
    #[error("{0}")]
    InvalidStageDeclaration(String),
    #[error("{0}")]
    InvalidActionDeclaration(String),
    #[error("{0}")]
    StageNotFound(String),
    #[error("{0}")]
    ActionNotFound(String),
    #[error("{0}")]
    InvalidApprovalToken(String),
    #[error("{0}")]
    ApprovalAlreadyCompleted(String),
    #[error("{0}")]
    StageNotRetryable(String),
    #[error("{0}")]
    NotLatestPipelineExecution(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    DuplicatedStopRequest(String),
    /// CodePipeline: a resource ARN that is not one.
    #[error("{0}")]
    InvalidArn(String),
    /// CodePipeline: a tag key or value that breaks the rules.
    #[error("{0}")]
    InvalidTags(String),
    /// CodePipeline: more than 50 tags on a resource.
    #[error("{0}")]
    TooManyTags(String),
    /// ECS: no cluster of that name.
    #[error("{0}")]
    ClusterNotFound(String),
    /// ECS: no service of that name in the cluster.
    #[error("{0}")]
    ServiceNotFound(String),
    /// ECS: the service was deleted (INACTIVE).
    #[error("{0}")]
    ServiceNotActive(String),
    /// ECS, CloudWatch Logs: a parameter breaks the rules.
    #[error("{0}")]
    InvalidParameter(String),
    /// ECS: the request cannot be served as asked (e.g. an unknown task definition).
    #[error("{0}")]
    Client(String),
    /// The server could not do what was asked (database, Docker): a 500-class fault with a
    /// message, never a crash.
    #[error("{0}")]
    Service(String),
}

impl From<localbuild_pipeline::DeclarationError> for ApiError {
    fn from(e: localbuild_pipeline::DeclarationError) -> Self {
        use localbuild_pipeline::DeclarationError as D;
        match e {
            D::Validation(m) => ApiError::Validation(m),
            D::InvalidStructure(m) => ApiError::InvalidStructure(m),
            D::InvalidActionDeclaration(m) => ApiError::InvalidActionDeclaration(m),
            D::InvalidStageDeclaration(m) => ApiError::InvalidStageDeclaration(m),
            D::Serialization(m) => ApiError::Serialization(m),
        }
    }
}

/// The CodePipeline exception a declaration error is answered with (for front ends that
/// report a declaration file's problem as the API would: `localbuild pipeline create`).
pub fn declaration_error_type(e: &localbuild_pipeline::DeclarationError) -> &'static str {
    ApiError::from(e.clone()).aws_type()
}

impl From<localbuild_pipeline::exec::ExecError> for ApiError {
    fn from(e: localbuild_pipeline::exec::ExecError) -> Self {
        use localbuild_pipeline::exec::ExecError as E;
        match e {
            E::PipelineNotFound(m) => ApiError::PipelineNotFound(m),
            E::StageNotRetryable(m) => ApiError::StageNotRetryable(m),
            E::Unreadable(m) => ApiError::Service(m),
            E::Db(e) => ApiError::db(e),
        }
    }
}

impl From<localbuild_store::DbError> for ApiError {
    fn from(e: localbuild_store::DbError) -> Self {
        ApiError::db(e)
    }
}

impl From<localbuild_service::projects::ProjectError> for ApiError {
    fn from(e: localbuild_service::projects::ProjectError) -> Self {
        use localbuild_service::projects::ProjectError as P;
        match e {
            P::NotFound { .. } => ApiError::ResourceNotFound(e.to_string()),
            P::AlreadyExists { .. } => ApiError::ResourceAlreadyExists(e.to_string()),
            P::InvalidInput(m) => ApiError::InvalidInput(m),
            P::Unreadable(_) => ApiError::Service(e.to_string()),
            P::Db(e) => ApiError::db(e),
        }
    }
}

impl From<localbuild_service::ServiceError> for ApiError {
    fn from(e: localbuild_service::ServiceError) -> Self {
        use localbuild_service::ServiceError as S;
        match e {
            // The engine refused the batch's request or its tasks: the caller's input.
            S::Batch(localbuild_engine::BatchError::Store(e)) => ApiError::Service(e.to_string()),
            S::Batch(e) => ApiError::InvalidInput(e.to_string()),
            S::ShuttingDown | S::Store(_) => ApiError::Service(e.to_string()),
        }
    }
}

impl ApiError {
    /// An error whose type the service names itself (SSM's and Secrets Manager's shapes), 400.
    pub(crate) fn typed(aws_type: &'static str, message: String) -> ApiError {
        ApiError::Auth {
            aws_type,
            status: 400,
            message,
        }
    }

    /// `__type` of the error body.
    pub fn aws_type(&self) -> &'static str {
        match self {
            ApiError::ResourceNotFound(_) => "ResourceNotFoundException",
            ApiError::InvalidInput(_) => "InvalidInputException",
            ApiError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            ApiError::AccountLimitExceeded(_) => "AccountLimitExceededException",
            ApiError::Serialization(_) => "SerializationException",
            ApiError::UnknownOperation(_) => "UnknownOperationException",
            ApiError::TooLarge(_) => "RequestEntityTooLargeException",
            ApiError::HeadersTooLarge(_) => "RequestHeaderFieldsTooLargeException",
            ApiError::AccessDenied(_) => "AccessDeniedException",
            ApiError::NoSuchPath(_) => "ResourceNotFoundException",
            ApiError::MethodNotAllowed(_) => "UnknownOperationException",
            ApiError::Auth { aws_type, .. } => aws_type,
            ApiError::Validation(_) => "ValidationException",
            ApiError::PipelineNameInUse(_) => "PipelineNameInUseException",
            ApiError::InvalidArn(_) => "InvalidArnException",
            ApiError::InvalidTags(_) => "InvalidTagsException",
            ApiError::TooManyTags(_) => "TooManyTagsException",
            ApiError::PipelineNotFound(_) => "PipelineNotFoundException",
            ApiError::PipelineVersionNotFound(_) => "PipelineVersionNotFoundException",
            ApiError::PipelineExecutionNotFound(_) => "PipelineExecutionNotFoundException",
            ApiError::PipelineExecutionNotStoppable(_) => "PipelineExecutionNotStoppableException",
            ApiError::InvalidStructure(_) => "InvalidStructureException",
            ApiError::InvalidStageDeclaration(_) => "InvalidStageDeclarationException",
            ApiError::InvalidActionDeclaration(_) => "InvalidActionDeclarationException",
            ApiError::StageNotFound(_) => "StageNotFoundException",
            ApiError::ActionNotFound(_) => "ActionNotFoundException",
            ApiError::InvalidApprovalToken(_) => "InvalidApprovalTokenException",
            ApiError::ApprovalAlreadyCompleted(_) => "ApprovalAlreadyCompletedException",
            ApiError::StageNotRetryable(_) => "StageNotRetryableException",
            ApiError::NotLatestPipelineExecution(_) => "NotLatestPipelineExecutionException",
            ApiError::Conflict(_) => "ConflictException",
            ApiError::DuplicatedStopRequest(_) => "DuplicatedStopRequestException",
            ApiError::ClusterNotFound(_) => "ClusterNotFoundException",
            ApiError::ServiceNotFound(_) => "ServiceNotFoundException",
            ApiError::ServiceNotActive(_) => "ServiceNotActiveException",
            ApiError::InvalidParameter(_) => "InvalidParameterException",
            ApiError::Client(_) => "ClientException",
            ApiError::Service(_) => "ServiceUnavailableException",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::AccessDenied(_) => StatusCode::FORBIDDEN,
            ApiError::NoSuchPath(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Auth { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Service(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A database failure, as a service error.
    pub fn db(e: localbuild_store::DbError) -> ApiError {
        match e {
            localbuild_store::DbError::InvalidInput(m) => ApiError::InvalidInput(m),
            e => ApiError::Service(format!("the build history failed: {e}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"__type": self.aws_type(), "message": self.to_string()});
        let mut response = (
            self.status(),
            [("content-type", "application/x-amz-json-1.1")],
            body.to_string(),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.aws_type()),
        );
        response
    }
}

/// ECR's errors under ECR's own type names (`ServerException` for the registry and the
/// database).
impl From<localbuild_aws::ecr::EcrError> for ApiError {
    fn from(e: localbuild_aws::ecr::EcrError) -> ApiError {
        use localbuild_aws::ecr::EcrError as E;
        let (aws_type, status) = match &e {
            E::RepositoryNotFound(..) => ("RepositoryNotFoundException", 400),
            E::RepositoryAlreadyExists(..) => ("RepositoryAlreadyExistsException", 400),
            E::RepositoryNotEmpty(..) => ("RepositoryNotEmptyException", 400),
            E::LifecyclePolicyNotFound(..) => ("LifecyclePolicyNotFoundException", 400),
            E::ImageNotFound { .. } => ("ImageNotFoundException", 400),
            E::InvalidParameter(_) => ("InvalidParameterException", 400),
            E::Registry(_) | E::Store(_) => ("ServerException", 503),
        };
        ApiError::Auth {
            aws_type,
            status,
            message: e.to_string(),
        }
    }
}

/// A serde error at a path, as the message of a `SerializationException`.
/// SSM's and Secrets Manager's errors.
impl From<localbuild_aws::AwsError> for ApiError {
    fn from(e: localbuild_aws::AwsError) -> ApiError {
        use localbuild_aws::AwsError as A;
        let message = e.to_string();
        let typed = |aws_type| ApiError::typed(aws_type, message.clone());
        match e {
            A::ParameterNotFound(_) => typed("ParameterNotFound"),
            A::ParameterAlreadyExists => typed("ParameterAlreadyExists"),
            A::SecretNotFound => typed("ResourceNotFoundException"),
            A::SecretExists(_) => typed("ResourceExistsException"),
            A::InvalidRequest(_) => typed("InvalidRequestException"),
            A::InvalidParameter(_) => typed("InvalidParameterException"),
            A::Validation(_) => ApiError::Validation(message),
            A::Store(_) => ApiError::Service(message),
        }
    }
}

impl From<localbuild_aws::ecs::EcsError> for ApiError {
    fn from(e: localbuild_aws::ecs::EcsError) -> ApiError {
        use localbuild_aws::ecs::EcsError as E;
        let m = e.to_string();
        match e {
            E::ClusterNotFound(_) => ApiError::ClusterNotFound(m),
            E::ServiceNotFound(_) => ApiError::ServiceNotFound(m),
            E::ServiceNotActive(_) => ApiError::ServiceNotActive(m),
            E::InvalidParameter(_) => ApiError::InvalidParameter(m),
            E::Client(_) => ApiError::Client(m),
            E::Server(_) => ApiError::Service(m),
        }
    }
}

/// S3's error code and HTTP status (REST-XML; `aws::s3` renders the `<Error>` document).
pub fn s3_code(e: &localbuild_aws::s3::S3Error) -> (&'static str, u16) {
    use localbuild_aws::s3::S3Error as S;
    match e {
        S::NoSuchBucket(_) => ("NoSuchBucket", 404),
        S::NoSuchKey(_) => ("NoSuchKey", 404),
        S::BucketAlreadyOwnedByYou(_) => ("BucketAlreadyOwnedByYou", 409),
        S::BucketNotEmpty(_) => ("BucketNotEmpty", 409),
        S::InvalidBucketName(_) => ("InvalidBucketName", 400),
        S::InvalidArgument(_) => ("InvalidArgument", 400),
        S::NoSuchUpload(_) => ("NoSuchUpload", 404),
        S::InvalidPart(_) => ("InvalidPart", 400),
        S::InvalidPartOrder => ("InvalidPartOrder", 400),
        S::Io(_) => ("InternalError", 500),
    }
}

/// IAM's error code and HTTP status (the query protocol; `aws::iam` renders the
/// `<ErrorResponse>`).
pub fn iam_code(e: &localbuild_aws::iam::IamError) -> (&'static str, u16) {
    use localbuild_aws::iam::IamError as I;
    match e {
        I::Validation(_) => ("ValidationError", 400),
        I::NoSuchEntity(_) => ("NoSuchEntity", 404),
        I::EntityAlreadyExists(_) => ("EntityAlreadyExists", 409),
        I::DeleteConflict(_) => ("DeleteConflict", 409),
        I::MalformedPolicyDocument(_) => ("MalformedPolicyDocument", 400),
        I::InvalidInput(_) => ("InvalidInput", 400),
        I::LimitExceeded(_) => ("LimitExceeded", 409),
        I::Store(_) => ("ServiceFailure", 500),
    }
}

pub fn serialization(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path.is_empty() || path == "." {
        ApiError::Serialization(format!("Invalid request body: {inner}"))
    } else {
        ApiError::Serialization(format!("Invalid value for field '{path}': {inner}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_errors_have_ecrs_types() {
        use localbuild_aws::ecr::EcrError as E;
        use localbuild_aws::registry::RegistryError;
        for (e, ty, status) in [
            (
                E::RepositoryNotFound("a".into(), "000000000000".into()),
                "RepositoryNotFoundException",
                400,
            ),
            (
                E::RepositoryAlreadyExists("a".into(), "000000000000".into()),
                "RepositoryAlreadyExistsException",
                400,
            ),
            (
                E::RepositoryNotEmpty("a".into(), "000000000000".into()),
                "RepositoryNotEmptyException",
                400,
            ),
            (
                E::InvalidParameter("x".into()),
                "InvalidParameterException",
                400,
            ),
            (
                E::LifecyclePolicyNotFound("a".into(), "000000000000".into()),
                "LifecyclePolicyNotFoundException",
                400,
            ),
            (E::Registry(RegistryError::Missing), "ServerException", 503),
        ] {
            let e = ApiError::from(e);
            assert_eq!((e.aws_type(), e.status().as_u16()), (ty, status));
        }
        let e = ApiError::from(E::RepositoryNotFound(
            "team/app".into(),
            "123456789012".into(),
        ));
        assert_eq!(
            e.to_string(),
            "The repository with name 'team/app' does not exist in the registry with id '123456789012'"
        );
    }

    #[test]
    fn errors_have_aws_types_and_statuses() {
        let e = ApiError::ResourceNotFound("x".into());
        assert_eq!(e.aws_type(), "ResourceNotFoundException");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        for (e, ty, status) in [
            (
                ApiError::TooLarge("x".into()),
                "RequestEntityTooLargeException",
                413,
            ),
            (
                ApiError::HeadersTooLarge("x".into()),
                "RequestHeaderFieldsTooLargeException",
                431,
            ),
            (
                ApiError::AccessDenied("x".into()),
                "AccessDeniedException",
                403,
            ),
            (
                ApiError::NoSuchPath("x".into()),
                "ResourceNotFoundException",
                404,
            ),
            (
                ApiError::MethodNotAllowed("x".into()),
                "UnknownOperationException",
                405,
            ),
        ] {
            assert_eq!((e.aws_type(), e.status().as_u16()), (ty, status));
        }
    }
}
