//! Errors of training, evaluation and checkpoints.

use std::path::PathBuf;

/// Training errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The corpus cannot be trained on as configured.
    #[error("{0}")]
    Data(String),
    /// A turn has none of the modalities the model reads.
    #[error(
        "dialogue {dialogue}, turn {turn} (0-based; id {utterance}) has none of the modalities this model reads ({modalities}); it has: {available}"
    )]
    NoModality {
        /// Dialogue id.
        dialogue: String,
        /// Position of the turn in the dialogue, 0-based.
        turn: usize,
        /// Utterance id.
        utterance: String,
        /// The model's modalities.
        modalities: String,
        /// Modalities the utterance has (possibly none).
        available: String,
    },
    /// Feature width differs from the checkpoint's.
    #[error(
        "utterance {utterance}: {modality} features are {got}-d, the model expects {expected}-d"
    )]
    WidthMismatch {
        /// Utterance id.
        utterance: String,
        /// Modality.
        modality: mmer_core::Modality,
        /// Expected width.
        expected: usize,
        /// Actual width.
        got: usize,
    },
    /// Filesystem failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is unreadable or inconsistent.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The model produced a non-finite probability: its weights are
    /// damaged or it diverged in training.
    #[error(
        "the model gives utterance {utterance} a non-finite probability (NaN or infinite): its weights are damaged or it diverged; retrain it"
    )]
    NonFinite {
        /// Utterance id.
        utterance: String,
    },
    /// A core operation failed (an atomic write, a checksum).
    #[error(transparent)]
    Core(#[from] mmer_core::Error),
    /// Metric computation failed.
    #[error(transparent)]
    Metric(#[from] mmer_eval::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
