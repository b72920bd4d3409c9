//! `AppError`, the error every service returns; `api::error` maps it to HTTP in one place.

/// What went wrong, described by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but its content is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The request could not be parsed at all.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The action conflicts with the current state (a taken username, a repeated move).
    #[error("{0}")]
    Conflict(String),
    /// A body over the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The caller sends too much too fast.
    #[error("{0}")]
    RateLimited(String),
    /// A remote server failed or sent something we cannot use.
    #[error("{0}")]
    Remote(String),
    /// An OAuth 2 error (RFC 6749 §5.2): `code` is `invalid_request`, `invalid_client`,
    /// `invalid_grant`, `unsupported_grant_type` or `invalid_scope`.
    #[error("{code}: {description}")]
    OAuth {
        /// The RFC 6749 error code.
        code: &'static str,
        /// What is wrong, for people.
        description: String,
    },
    /// Form fields that failed validation, as Mastodon reports them (`422` with `details`).
    #[error("Validation failed: {}", .0.iter().map(FieldError::sentence).collect::<Vec<_>>().join(", "))]
    Validation(Vec<FieldError>),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Anything else; logged, and shown to clients only as "internal error".
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One failed field of a form, with Mastodon's error code (`ERR_BLANK`, `ERR_TAKEN`,
/// `ERR_TOO_SHORT`, `ERR_TOO_LONG`, `ERR_INVALID`, `ERR_ACCEPTED`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as the form names it.
    pub field: &'static str,
    /// Mastodon's code for the problem.
    pub code: &'static str,
    /// What is wrong, as the end of a sentence ("is too short (minimum is 8 characters)").
    pub description: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: &'static str, code: &'static str, description: impl Into<String>) -> Self {
        FieldError { field, code, description: description.into() }
    }

    /// "Password is too short (minimum is 8 characters)".
    fn sentence(&self) -> String {
        let mut name = self.field.replace('_', " ");
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        format!("{name} {}", self.description)
    }
}

/// Result of a service call.
pub type AppResult<T> = Result<T, AppError>;

impl From<activitypub_federation::error::Error> for AppError {
    fn from(err: activitypub_federation::error::Error) -> Self {
        use activitypub_federation::error::Error;
        match err {
            Error::NotFound => AppError::NotFound("object not found".to_owned()),
            Error::UrlVerificationError(reason) => {
                AppError::Invalid(format!("url refused: {reason}"))
            }
            Error::DomainResolveError(domain) => {
                AppError::Invalid(format!("{domain} does not resolve to a public address"))
            }
            Error::ObjectDeleted(url) => AppError::NotFound(format!("{url} was deleted")),
            other => AppError::Remote(other.to_string()),
        }
    }
}

impl From<ferry_protocol::signatures::SignatureError> for AppError {
    fn from(err: ferry_protocol::signatures::SignatureError) -> Self {
        AppError::Unauthorized(format!("signature: {err}"))
    }
}

impl From<serde_json::Error> for AppError {
    fn from(err: serde_json::Error) -> Self {
        AppError::BadRequest(format!("invalid JSON: {err}"))
    }
}
