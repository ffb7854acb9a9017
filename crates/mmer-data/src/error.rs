//! Errors of the loaders: each says which file, line and id is wrong.

use std::path::PathBuf;

/// Loader errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A malformed record at a known line.
    #[error("{path}:{line}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when not known).
        line: u64,
        /// What is wrong, naming the id where there is one.
        msg: String,
    },
    /// A label name the dataset's label space does not have.
    #[error("{path}:{line}: utterance {id}: unknown label {label:?} (known: {known})")]
    UnknownLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when not known).
        line: u64,
        /// Utterance id.
        id: String,
        /// Offending label.
        label: String,
        /// Comma-separated known labels.
        known: String,
    },
    /// Several class names for one turn in a single-label set.
    #[error(
        "{path}:{line}: utterance {id}: label {label} lists several classes, but the label set is single-label: give one of {known} (or declare the set multi_label)"
    )]
    LabelList {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Utterance id.
        id: String,
        /// The label as written (a `;`-separated string or a JSON list).
        label: String,
        /// Comma-separated declared classes.
        known: String,
    },
    /// A structurally invalid file (pickle layout, missing keys, shapes).
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A pickle the reader could not decode (the source names byte offset and opcode).
    #[error("{path}: {source}")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// Where and why decoding failed.
        source: crate::pickle::PickleError,
    },
    /// A loader option outside its allowed range.
    #[error("option {name}: {msg}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with its value.
        msg: String,
    },
    /// Two records claim the same utterance (or dialogue turn).
    #[error("{path}:{line}: duplicate utterance {id} (first seen on line {first_line})")]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// 1-based line of the second record.
        line: u64,
        /// 1-based line of the first record.
        first_line: u64,
        /// The repeated utterance id.
        id: String,
    },
    /// An utterance whose text is empty or only whitespace.
    #[error("{path}:{line}: utterance {id} has empty text")]
    EmptyText {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Utterance id.
        id: String,
    },
    /// A table whose header lacks required columns.
    #[error("{path}: missing column(s) {missing:?} (header has {found:?})")]
    MissingColumns {
        /// The file.
        path: PathBuf,
        /// Required columns not in the header.
        missing: Vec<String>,
        /// The header as read.
        found: Vec<String>,
    },
    /// A table whose header has columns the format does not know.
    #[error("{path}: unexpected column(s) {unexpected:?} (allowed: {allowed:?})")]
    UnexpectedColumns {
        /// The file.
        path: PathBuf,
        /// Columns not in the format (or repeated).
        unexpected: Vec<String>,
        /// The columns the format allows.
        allowed: Vec<String>,
    },
    /// A file whose extension names no supported format.
    #[error("{path}: unsupported file type (expected {expected})")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The supported extensions.
        expected: String,
    },
    /// An HDF5 file (a CMU-MultimodalSDK computational sequence) that could
    /// not be decoded, or lacks an object the format needs.
    #[error("{path}: HDF5 object {object:?}: {msg}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// Path of the group or dataset inside the file.
        object: String,
        /// What is wrong.
        msg: String,
    },
    /// The loaded corpus broke a domain invariant.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The violated invariant.
        source: mmer_core::Error,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
