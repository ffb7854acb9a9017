//! Errors of the domain layer.

use std::path::PathBuf;

/// Errors raised while validating domain objects or reading/writing the feature store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A feature array holds a NaN or infinite value.
    #[error(
        "utterance {utterance}: {modality} features contain a non-finite value at index {index}"
    )]
    NonFinite {
        /// Utterance id.
        utterance: String,
        /// Modality name.
        modality: String,
        /// Flat index of the first bad value.
        index: usize,
    },
    /// A tensor's element count does not match its declared shape.
    #[error("{what}: shape {shape:?} needs {expected} values, got {got}")]
    ShapeMismatch {
        /// What was being built.
        what: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// Values implied by the shape.
        expected: usize,
        /// Values supplied.
        got: usize,
    },
    /// Utterances of one modality disagree on feature width.
    #[error(
        "{modality} features of utterance {utterance} have width {got}, expected {expected} (from earlier utterances)"
    )]
    WidthMismatch {
        /// Modality name.
        modality: String,
        /// Utterance id.
        utterance: String,
        /// Width seen first.
        expected: usize,
        /// Width of this utterance.
        got: usize,
    },
    /// A dialogue without utterances.
    #[error("dialogue {0} has no utterances")]
    EmptyDialogue(String),
    /// A label index outside the label space.
    #[error("utterance {utterance}: label {label} is outside the {num_classes} classes of {space}")]
    LabelOutOfRange {
        /// Utterance id.
        utterance: String,
        /// Offending index.
        label: usize,
        /// Classes in the space.
        num_classes: usize,
        /// Label space name.
        space: String,
    },
    /// A label name not in the label space.
    #[error("unknown label {label:?} for label space {space} (known: {known})")]
    UnknownLabel {
        /// The unknown name.
        label: String,
        /// Label space name.
        space: String,
        /// Comma-separated known names.
        known: String,
    },
    /// A declared label set that cannot be used: no classes, a repeated
    /// or blank class name, a name with surrounding whitespace.
    #[error("label set {space}: {msg}")]
    InvalidLabelSpace {
        /// Label space name.
        space: String,
        /// What is wrong, naming the class.
        msg: String,
    },
    /// A re-split by dialogue-id prefix that would leave a split empty.
    #[error("{0}")]
    HoldOut(String),
    /// Filesystem failure with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A `--shard` that names no shard (`3/2`, `0/0`, `x`).
    #[error("shard {0}")]
    InvalidShard(String),
    /// The feature store's files are unreadable or inconsistent.
    #[error("feature store {path}: {msg}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// `map_err` adapter: an I/O failure on `path`.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A malformed or inconsistent store file.
pub(crate) fn store_err(path: &std::path::Path, msg: impl Into<String>) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}
