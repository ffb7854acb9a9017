//! Errors of media decoding and extraction.

use std::path::PathBuf;

/// What can go wrong while probing, decoding or extracting one media file.
///
/// Every variant that concerns a file names it, so a batch report can show
/// the error as-is. A silent or absent audio track is *not* an error: it is
/// an [`crate::AudioState`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ffmpeg or ffprobe program is not installed (or not executable).
    #[error(
        "{program} not found ({tried}): install ffmpeg with scripts/setup.sh \
         (Debian package `ffmpeg`), or set MMER_FFMPEG / MMER_FFPROBE to the programs"
    )]
    FfmpegNotFound {
        /// `ffmpeg` or `ffprobe`.
        program: &'static str,
        /// The path or name that was tried.
        tried: String,
    },
    /// The program exists but could not be started or talked to.
    #[error("{program}: cannot run on {path}: {source}", path = path.display())]
    Spawn {
        /// `ffmpeg` or `ffprobe`.
        program: &'static str,
        /// The media file it was run on.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The media file does not exist or cannot be read.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The media file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is empty (0 bytes): nothing to decode.
    #[error("{path}: file is empty (0 bytes)", path = path.display())]
    ZeroLength {
        /// The media file.
        path: PathBuf,
    },
    /// ffmpeg/ffprobe failed on the file: corrupt, truncated, or a format it
    /// does not read. `stderr` is the tail of the program's own message.
    #[error("{path}: {program} cannot decode it (corrupt, truncated or unsupported): {stderr}", path = path.display())]
    Corrupt {
        /// `ffmpeg` or `ffprobe`.
        program: &'static str,
        /// The media file.
        path: PathBuf,
        /// Last lines of the program's stderr.
        stderr: String,
    },
    /// The file has no stream of the requested kind.
    #[error("{path}: no {kind} stream", path = path.display())]
    NoStream {
        /// The media file.
        path: PathBuf,
        /// `audio` or `video`.
        kind: &'static str,
    },
    /// A conversation turn's `start`/`end` range does not lie inside its clip.
    #[error("{path}: the turn's time range {segment} ends after the clip ({duration_s:.3} s long)", path = path.display())]
    SegmentOutside {
        /// The media file.
        path: PathBuf,
        /// The range the transcript gives.
        segment: mmer_data::conversation::Segment,
        /// The clip's duration, seconds.
        duration_s: f64,
    },
    /// The audio of a file without video decodes to no samples (a WAV
    /// header without data, an audio file cut after its header).
    #[error(
        "{path}: no audio samples: its audio stream decodes to nothing{}",
        declared_s.map_or_else(String::new, |d| format!(" (the file declares {d:.3} s)")),
        path = path.display()
    )]
    NoAudioSamples {
        /// The media file.
        path: PathBuf,
        /// The duration the container declares, seconds, when it does.
        declared_s: Option<f64>,
    },
    /// The file holds much less audio than it declares (or than a turn's
    /// range needs): the container was cut (a partial download or copy) or
    /// its data are corrupt, so its declared duration would be a lie.
    /// Times are seconds from the start of the file.
    #[error(
        "{path}: truncated or corrupt: its audio should run to {expected_s:.3} s but decodes \
         only to {decoded_s:.3} s; {}",
        packets_end_s.map_or_else(
            || "it holds no packets".to_string(),
            |e| format!("its last packet ends at {e:.3} s")
        ),
        path = path.display()
    )]
    Truncated {
        /// The media file.
        path: PathBuf,
        /// Where the audio should end: the declared duration, or the end
        /// of the turn's range.
        expected_s: f64,
        /// Where the decoded audio ends.
        decoded_s: f64,
        /// Where the file's last packet (of any stream) ends; `None` when
        /// it holds none.
        packets_end_s: Option<f64>,
    },
    /// A WAV file whose header contradicts itself or the file (a bit depth
    /// no PCM has, a cut data chunk, no samples): checked before ffmpeg,
    /// which would read it with the wrong length.
    #[error(transparent)]
    Wav(mmer_audio::Error),
    /// A failure of the media of one conversation turn, with the turn.
    #[error("{at}: {source}")]
    Turn {
        /// The conversation file, line and turn.
        at: TurnRef,
        /// What failed.
        source: Box<Error>,
    },
    /// ffprobe's answer could not be understood.
    #[error("{path}: unexpected ffprobe output: {msg}", path = path.display())]
    Probe {
        /// The media file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// An invalid request (zero keyframes, a zero scale cap, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Audio analysis failed (mmer-audio).
    #[error("{path}: audio analysis: {source}", path = path.display())]
    Audio {
        /// The media file.
        path: PathBuf,
        /// What mmer-audio reported.
        source: mmer_audio::Error,
    },
    /// Reading or writing the feature store failed.
    #[error(transparent)]
    Store(#[from] mmer_core::Error),
    /// Reading a conversation file failed.
    #[error(transparent)]
    Conversation(#[from] mmer_data::Error),
    /// An input list that resolves to no media file.
    #[error("no media files found in {0}")]
    NoInputs(String),
    /// A generated clip came out shorter than asked: ffmpeg can drop a
    /// stream's tail and still exit 0 (`-stream_loop` on an FLV), and a
    /// benchmark on such a clip would time the wrong thing.
    #[error(
        "{path}: made a {want_s:.2} s clip but its {kind} stream lasts {got}",
        path = path.display(),
        got = got_s.map_or_else(|| "an unknown time".to_string(), |s| format!("{s:.2} s"))
    )]
    ClipTooShort {
        /// The generated clip.
        path: PathBuf,
        /// `audio` or `video`.
        kind: &'static str,
        /// Its duration as probed, seconds (`None`: the stream is absent or
        /// its duration unknown).
        got_s: Option<f64>,
        /// The requested duration, seconds.
        want_s: f64,
    },
    /// A pluggable extractor ([`crate::extract::StreamExtractor`]) failed.
    #[error("{path}: {extractor}: {msg}", path = path.display())]
    Extractor {
        /// The media file.
        path: PathBuf,
        /// Extractor name.
        extractor: String,
        /// Its message.
        msg: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Where a job comes from in a conversation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRef {
    /// The conversation file.
    pub file: PathBuf,
    /// Line of the turn's record (1-based).
    pub line: u64,
    /// Utterance id.
    pub utterance: String,
    /// Dialogue id.
    pub dialogue: String,
    /// The turn number as the file gives it.
    pub turn: u64,
}

impl std::fmt::Display for TurnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} line {}, utterance {} (dialogue {}, turn {})",
            self.file.display(),
            self.line,
            self.utterance,
            self.dialogue,
            self.turn
        )
    }
}
