//! Errors of the visual stage.

use std::path::PathBuf;

/// Errors raised while loading the visual models or analysing a frame.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file that `scripts/setup.sh` installs is not there.
    #[error(
        "{path}: missing {what}; run scripts/setup.sh (or point MMER_MODELS_DIR at the models directory)",
        path = path.display()
    )]
    MissingModelFile {
        /// Which model the file belongs to, in words.
        what: &'static str,
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS reported.
        source: std::io::Error,
    },
    /// The SeetaFace model file could not be parsed.
    #[error("{path}: not a SeetaFace detector model: {source}", path = path.display())]
    SeetaModel {
        /// The model file.
        path: PathBuf,
        /// What rustface reported.
        source: std::io::Error,
    },
    /// The weights file is not valid safetensors.
    #[error("{path}: cannot read safetensors: {source}", path = path.display())]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// What the safetensors reader reported.
        source: safetensors::SafeTensorError,
    },
    /// A tensor the network needs is absent from the weights file.
    #[error("{path}: tensor {name:?} not found", path = path.display())]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor name (Keras layer/weight).
        name: String,
    },
    /// A tensor of the weights file has the wrong shape or dtype.
    #[error("{path}: tensor {name:?} is {got}, expected {expected}", path = path.display())]
    BadTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// What the network needs (dtype and shape).
        expected: String,
        /// What the file holds.
        got: String,
    },
    /// A frame buffer does not match its declared size.
    #[error("frame {width}×{height}: {what} holds {got} bytes, expected {expected}")]
    FrameSize {
        /// Declared width in pixels.
        width: usize,
        /// Declared height in pixels.
        height: usize,
        /// Which buffer (`rgb24`, `gray8`).
        what: &'static str,
        /// Bytes given.
        got: usize,
        /// `width * height * channels`.
        expected: usize,
    },
    /// A frame with no pixels.
    #[error("frame is empty ({width}×{height})")]
    EmptyFrame {
        /// Declared width in pixels.
        width: usize,
        /// Declared height in pixels.
        height: usize,
    },
    /// A configuration value outside its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The offending field.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Two inputs that must agree in shape do not.
    #[error("{what}: {reason}")]
    ShapeMismatch {
        /// What was being combined.
        what: &'static str,
        /// The disagreement.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
