//! Errors of the audio stage.

use std::path::PathBuf;

/// Errors raised while reading, resampling or analysing audio.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The WAV file could not be opened or read.
    #[error("{path}: cannot read WAV file: {source}", path = path.display())]
    OpenWav {
        /// The WAV file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a well-formed WAV file: no RIFF/WAVE header, a
    /// missing or malformed `fmt ` chunk, a bit depth or block alignment
    /// that contradicts the rest of the header (PCM with 7 bits per sample),
    /// a chunk that runs past the end of the file.
    #[error("{path}: invalid WAV file: {msg}", path = path.display())]
    InvalidWav {
        /// The WAV file.
        path: PathBuf,
        /// What is wrong, with the offending header values.
        msg: String,
    },
    /// A well-formed WAV file in an encoding this reader does not decode
    /// (µ-law, ADPCM, 64-bit float, ...).
    #[error(
        "{path}: unsupported WAV encoding: {msg} (convert it to 16-bit PCM, \
         e.g. `ffmpeg -i in.wav -c:a pcm_s16le out.wav`)",
        path = path.display()
    )]
    UnsupportedWav {
        /// The WAV file.
        path: PathBuf,
        /// The encoding.
        msg: String,
    },
    /// The data chunk is shorter than its header says: the file was cut.
    #[error(
        "{path}: truncated WAV file: its data chunk declares {declared_bytes} bytes{} \
         but only {present_bytes} are present{}",
        seconds(*declared_bytes, *byte_rate),
        seconds(*present_bytes, *byte_rate),
        path = path.display()
    )]
    TruncatedWav {
        /// The WAV file.
        path: PathBuf,
        /// Length of the sample data the header declares, bytes.
        declared_bytes: u64,
        /// Bytes of sample data the file holds.
        present_bytes: u64,
        /// The header's average bytes per second (0 when it gives none).
        byte_rate: u32,
    },
    /// The WAV file holds no audio samples (a header without data).
    #[error("{path}: WAV file holds no audio samples", path = path.display())]
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
    /// A speaker count of zero ([`crate::SpeakerCount`]): every turn needs
    /// a speaker.
    #[error("a speaker count must be at least 1")]
    ZeroSpeakers,
    /// Voice prints handed to the clustering differ in length.
    #[error("voice print of turn {turn} has {got} values, expected {expected} (as turn 0)")]
    VoicePrintLength {
        /// Index of the first turn whose print differs.
        turn: usize,
        /// Length of turn 0's print.
        expected: usize,
        /// Length of this turn's print.
        got: usize,
    },
    /// A voice print holds a NaN or infinite value.
    #[error("voice print of turn {turn}: value {index} is NaN or infinite")]
    NonFiniteVoicePrint {
        /// Index of the turn.
        turn: usize,
        /// Index of the first bad value in its print.
        index: usize,
    },
    /// Voice and face cues handed to the speaker clustering cover different
    /// numbers of turns.
    #[error("{voices} turns of voice prints but {faces} of face prints")]
    SpeakerCueLengths {
        /// Number of voice entries.
        voices: usize,
        /// Number of face entries.
        faces: usize,
    },
    /// A face print handed to the speaker clustering is malformed.
    #[error("face print of turn {turn}: {reason}")]
    FacePrint {
        /// Index of the turn.
        turn: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The face cue's weight is negative or not finite.
    #[error("face weight must be finite and at least 0, got {0}")]
    FaceWeight(f64),
    /// True and predicted speaker labels differ in length.
    #[error("{truth} true speaker labels but {predicted} predicted ones")]
    SpeakerLabelLengths {
        /// Number of true labels.
        truth: usize,
        /// Number of predicted labels.
        predicted: usize,
    },
    /// No turns to score.
    #[error("no turns to score")]
    NoTurns,
}

/// ` (1.250 s)` for `bytes` at `byte_rate` bytes per second; empty when
/// the rate is unknown.
fn seconds(bytes: u64, byte_rate: u32) -> String {
    if byte_rate == 0 {
        String::new()
    } else {
        format!(" ({:.3} s)", bytes as f64 / f64::from(byte_rate))
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
