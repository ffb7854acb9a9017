//! Errors of speech recognition: loading a Whisper model and transcribing.

use std::path::PathBuf;

/// Errors raised while loading a Whisper model or transcribing audio.
///
/// Every variant that comes from a file names it. The underlying error is the
/// [`std::error::Error::source`], not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the model directory is not installed.
    #[error(
        "{}: missing Whisper model file; run scripts/setup.sh (or point MMER_MODELS_DIR at the models directory)",
        path.display()
    )]
    MissingModelFile {
        /// The file that does not exist.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("{}: cannot read", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` does not parse or describes a model this crate cannot run.
    #[error("{}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights do not load (damaged file, or names/shapes that do not
    /// match the configuration).
    #[error("{}: cannot load the Whisper weights", path.display())]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// `tokenizer.json` does not load or lacks a Whisper special token.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A language the model cannot transcribe.
    #[error("language {language:?}: {reason}")]
    Language {
        /// The requested language code.
        language: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A sample is NaN or infinite.
    #[error("audio sample {index} is {value}; Whisper needs finite samples")]
    NonFiniteSample {
        /// Index of the first bad sample.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// The model failed while running.
    #[error("Whisper inference failed")]
    Inference(#[source] candle_core::Error),
    /// Decoding token ids back to text failed.
    #[error("cannot decode tokens to text: {0}")]
    Detokenize(String),
    /// Decoding options that cannot be used (see
    /// [`crate::DecodeOptions::validate`]).
    #[error("invalid decoding options: {message}")]
    Options {
        /// What is wrong.
        message: String,
    },
    /// The caller cancelled the transcription
    /// ([`crate::Whisper::transcribe_until`]).
    #[error("speech recognition cancelled")]
    Cancelled,
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<candle_core::Error> for Error {
    fn from(source: candle_core::Error) -> Self {
        Error::Inference(source)
    }
}
