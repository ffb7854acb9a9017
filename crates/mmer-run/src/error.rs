//! Errors of the run and predict library.
//!
//! Every stage's own error passes through unchanged ([`Error::Data`],
//! [`Error::Train`], …); what the library itself refuses (contradictory
//! settings, a run directory it must not touch) is [`Error::Refused`] with
//! the remedy in its message; [`Context`] adds what was being done (the
//! file being read, the model being loaded) as [`Error::Context`].

use std::fmt::Display;

/// Errors of `mmer-run`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings, inputs or a run directory that mmer will not act on; the
    /// message says what to do instead.
    #[error("{0}")]
    Refused(String),
    /// What was being done, and the error it ran into.
    #[error("{context}: {source}")]
    Context {
        /// What was being done (names the file or model).
        context: String,
        /// The error.
        #[source]
        source: Box<Error>,
    },
    /// A filesystem failure (wrapped in [`Error::Context`] naming the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A TOML run config that does not parse.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A config that cannot be written as TOML.
    #[error(transparent)]
    TomlWrite(#[from] toml::ser::Error),
    /// A JSON file that does not parse or cannot be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A CSV file that cannot be read or written.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// Speech analysis.
    #[error(transparent)]
    Audio(#[from] mmer_audio::Error),
    /// Domain types and the feature store.
    #[error(transparent)]
    Core(#[from] mmer_core::Error),
    /// Dataset loading.
    #[error(transparent)]
    Data(#[from] mmer_data::Error),
    /// Text encoders.
    #[error(transparent)]
    Text(#[from] mmer_text::Error),
    /// Training, checkpoints and prediction.
    #[error(transparent)]
    Train(#[from] mmer_train::Error),
    /// A trainable text encoder that does not fit its checkpoint.
    #[error(transparent)]
    TextEncoder(#[from] mmer_models::text_encoder::TextEncoderError),
    /// Metrics.
    #[error(transparent)]
    Metric(#[from] mmer_eval::Error),
    /// A safetensors file that cannot be written (`mmer bench train-epoch
    /// --export`).
    #[error(transparent)]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// Media decoding (ffmpeg).
    #[error(transparent)]
    Media(#[from] mmer_media::Error),
    /// Speech recognition.
    #[error(transparent)]
    Asr(#[from] mmer_asr::Error),
    /// Face detection and expression.
    #[error(transparent)]
    Vision(#[from] mmer_vision::Error),
    /// A chart that could not be drawn or written (names the file).
    #[error("{0}")]
    Plot(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an error, or turns a missing value into
/// [`Error::Refused`].
pub trait Context<T> {
    /// The error (or absence) with `context` in front.
    fn context(self, context: impl Display) -> Result<T>;
    /// [`Context::context`] with a context computed only on error.
    fn with_context<D: Display>(self, context: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.with_context(|| context)
    }

    fn with_context<D: Display>(self, context: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().to_string(),
            source: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.with_context(|| context)
    }

    fn with_context<D: Display>(self, context: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| Error::Refused(context().to_string()))
    }
}

/// Returns [`Error::Refused`] with a formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::Refused(format!($($arg)*)))
    };
}

/// [`bail!`] unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            bail!($($arg)*);
        }
    };
}

pub(crate) use {bail, ensure};
