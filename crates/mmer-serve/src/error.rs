//! Errors: [`Error`] for what stops the server (settings, the model, the
//! socket), and [`ApiError`], what one request is answered when it fails:
//! a status and a JSON body `{"error": "...", "error_type": "..."}` (the
//! convention of text-embeddings-inference), logged when it is made.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Errors that stop `mmer serve` (a request's failure is an [`ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that admits nothing (a zero limit).
    #[error("{0}")]
    Config(String),
    /// The model could not be loaded (names its directory).
    #[error(transparent)]
    Model(Box<mmer_run::Error>),
    /// The address could not be listened on.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start, or the server stopped on a
    /// socket error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl From<mmer_run::Error> for Error {
    fn from(err: mmer_run::Error) -> Self {
        Self::Model(Box::new(err))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of a failed request, `error_type` in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    /// 422: the body is not JSON of the documented shape, or a turn is
    /// invalid (named as `turns[i]`), or the model cannot read a turn.
    Validation,
    /// 413: the body is over `--max-body-bytes`, or has more turns than
    /// `--max-turns`.
    PayloadTooLarge,
    /// 429: `--queue` requests are already admitted.
    Overloaded,
    /// 503: the server is shutting down.
    Unhealthy,
    /// 504: the request took longer than `--timeout-ms`.
    Timeout,
    /// 500: the model failed on a valid request.
    Backend,
    /// 400: the body could not be read (the client broke off).
    BadRequest,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint does not take this method.
    MethodNotAllowed,
}

impl ErrorType {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorType::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorType::Backend => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::BadRequest => StatusCode::BAD_REQUEST,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// A failed request: its kind and a message that says what to change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    /// What is wrong, naming the turn (`turns[3]`) where there is one.
    pub error: String,
    /// The kind, which decides the status.
    pub error_type: ErrorType,
}

impl ApiError {
    /// An error of `error_type` with `message`.
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
            error_type,
        }
    }

    /// [`ErrorType::Validation`].
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Validation, message)
    }

    /// [`ErrorType::PayloadTooLarge`].
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorType::PayloadTooLarge, message)
    }

    /// The answer to a prediction that failed: a turn the model cannot
    /// read (no modality it reads, a feature width it does not take) is
    /// the client's to fix (422); anything else is the server's (500).
    pub fn from_prediction(err: &mmer_run::Error) -> Self {
        let message = err.to_string();
        if is_unreadable_input(err) {
            Self::validation(message)
        } else {
            Self::new(ErrorType::Backend, format!("prediction failed: {message}"))
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.error_type.status()
    }
}

/// Whether `err` (through its [`mmer_run::Error::Context`] wrappers) is a
/// turn the model cannot read.
fn is_unreadable_input(err: &mmer_run::Error) -> bool {
    match err {
        mmer_run::Error::Context { source, .. } => is_unreadable_input(source),
        mmer_run::Error::Train(
            mmer_train::Error::NoModality { .. } | mmer_train::Error::WidthMismatch { .. },
        ) => true,
        _ => false,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.error, self.error_type)
    }
}

impl IntoResponse for ApiError {
    /// The JSON body with its status; logged here, so that every error
    /// answered is in the log once.
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error_type = ?self.error_type, "{}", self.error);
        } else {
            tracing::warn!(status = status.as_u16(), error_type = ?self.error_type, "{}", self.error);
        }
        crate::server::json_response(status, &self)
    }
}
