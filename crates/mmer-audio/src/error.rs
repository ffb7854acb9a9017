//! Errors of the audio stage.

use std::path::PathBuf;

/// Errors raised while reading, resampling or analysing audio.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The WAV file could not be opened or its header is invalid or unsupported.
    #[error("{path}: cannot read WAV file: {source}", path = path.display())]
    OpenWav {
        /// The WAV file.
        path: PathBuf,
        /// What hound reported.
        source: hound::Error,
    },
    /// A sample of the WAV file could not be decoded (truncated or corrupt data).
    #[error("{path}: cannot decode sample {index}: {source}", path = path.display())]
    DecodeWav {
        /// The WAV file.
        path: PathBuf,
        /// Index of the interleaved sample that failed.
        index: usize,
        /// What hound reported.
        source: hound::Error,
    },
    /// The WAV file holds no samples.
    #[error("{path}: WAV file holds no samples", path = path.display())]
    EmptyWav {
        /// The WAV file.
        path: PathBuf,
    },
    /// A float WAV file holds a NaN or infinite sample.
    #[error("{path}: sample {index} (frame {frame}) is NaN or infinite", path = path.display())]
    NonFiniteWav {
        /// The WAV file.
        path: PathBuf,
        /// Index of the interleaved sample.
        index: usize,
        /// Index of the multi-channel frame it belongs to.
        frame: usize,
    },
    /// Audio handed to an analysis function is empty.
    #[error("audio is empty")]
    Empty,
    /// Audio handed to an analysis function holds a NaN or infinite sample.
    #[error("sample {index} is NaN or infinite")]
    NonFinite {
        /// Index of the first bad sample.
        index: usize,
    },
    /// A sample rate of zero (or one the resampler cannot represent).
    #[error("invalid sample rate {rate} Hz")]
    InvalidSampleRate {
        /// The rejected rate.
        rate: u32,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
