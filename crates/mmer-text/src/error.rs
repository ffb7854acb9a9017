//! Errors of the feature-extraction stages.

use std::path::PathBuf;

use crate::EncoderKind;

/// Errors raised while loading or running a feature extractor.
///
/// Every variant that comes from a file names that file, so a message alone
/// says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the encoder needs is not installed.
    #[error(
        "{}: missing {kind} model file; run scripts/setup.sh (or point MMER_MODELS_DIR at the models directory)",
        path.display()
    )]
    MissingModelFile {
        /// Which encoder was being loaded.
        kind: EncoderKind,
        /// The file that does not exist.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON configuration file does not parse or lacks a required key.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The sentence-transformers module stack is not one this crate implements.
    #[error("{}: unsupported sentence-transformers pipeline: {reason}", path.display())]
    UnsupportedPipeline {
        /// The configuration file that describes the pipeline.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// `tokenizer.json` could not be loaded or configured.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers crate's message.
        message: String,
    },
    /// Tokenizing one input text failed.
    #[error("{kind}: cannot tokenize text #{index}: {message}")]
    Tokenize {
        /// Which encoder.
        kind: EncoderKind,
        /// Position of the text in the caller's slice.
        index: usize,
        /// The tokenizers crate's message.
        message: String,
    },
    /// The weights file does not match the architecture in `config.json`.
    #[error("{}: cannot load weights: {source}", path.display())]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// candle's error, naming the tensor at fault.
        #[source]
        source: candle_core::Error,
    },
    /// The forward pass failed.
    #[error("{kind}: forward pass on a batch of {batch} texts failed: {source}")]
    Forward {
        /// Which encoder.
        kind: EncoderKind,
        /// Number of texts in the failing batch.
        batch: usize,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A context window the encoder cannot read.
    #[error("text context: {0}")]
    Context(String),
    /// A string does not name an encoder.
    #[error("unknown text encoder {0:?} (expected one of: minilm, mpnet)")]
    UnknownEncoder(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
