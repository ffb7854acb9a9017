//! From a user's recording to a transcript with turns: the audio track is
//! decoded by ffmpeg (mmer-media), recognised by Whisper (mmer-asr) and
//! grouped into turns at pauses. Also the word-error-rate benchmark over a
//! manifest of recordings whose words are known (`scripts/asr_corpus.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mmer_asr::{AsrModel, DecodeOptions, Segment, Turn, TurnOptions, WerCounts, Whisper};
use mmer_core::progress::Progress;
use mmer_media::{AudioState, Ffmpeg};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result, bail};

/// Speech-recognition settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscribeConfig {
    /// Which Whisper model.
    pub model: AsrModel,
    /// Decoding (language, no-speech rule).
    pub decode: DecodeOptions,
    /// How segments become turns.
    pub turns: TurnOptions,
}

/// Seconds spent per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Probing and decoding the audio track with ffmpeg.
    pub decode_s: f64,
    /// Mel front end, encoder and decoder.
    pub asr_s: f64,
}

/// One file's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTranscript {
    /// The recording.
    pub file: PathBuf,
    /// What its audio track turned out to be; only `present` audio is
    /// transcribed.
    pub audio: AudioState,
    /// Duration of the decoded audio, seconds.
    pub duration_s: f64,
    /// The Whisper model.
    pub model: AsrModel,
    /// Segments, turns and silent windows (empty without audible speech).
    #[serde(flatten)]
    pub speech: Speech,
    /// Time per stage.
    pub seconds: StageSeconds,
}

impl FileTranscript {
    /// All segments' text, space-separated.
    pub fn text(&self) -> String {
        self.speech
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Recognised speech: segments and the turns they form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Speech {
    /// Recognised segments.
    pub segments: Vec<Segment>,
    /// Segments grouped into turns.
    pub turns: Vec<Turn>,
    /// 30 s windows judged silent.
    pub silent_windows: usize,
}

/// A loaded Whisper model and the ffmpeg programs.
#[derive(Debug)]
pub struct Transcriber {
    ffmpeg: Ffmpeg,
    whisper: Whisper,
    config: TranscribeConfig,
}

impl Transcriber {
    /// Loads the configured model from `models_dir` and checks ffmpeg.
    ///
    /// # Errors
    /// The model is not installed or damaged; ffmpeg is not found.
    pub fn new(config: TranscribeConfig, models_dir: &Path, ffmpeg: Ffmpeg) -> Result<Self> {
        ffmpeg
            .version()
            .context("speech recognition needs ffmpeg")?;
        let whisper = Whisper::load(config.model, models_dir)
            .with_context(|| format!("loading Whisper {}", config.model))?;
        Ok(Self {
            ffmpeg,
            whisper,
            config,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &TranscribeConfig {
        &self.config
    }

    /// Transcribes one recording; a file without audible speech gets an
    /// empty transcript with its [`AudioState`]. Progress (seconds of audio)
    /// is shown on a terminal and logged otherwise when `show` is set.
    ///
    /// # Errors
    /// The file cannot be probed or decoded (named in the message), or
    /// recognition fails.
    pub fn transcribe_file(&self, path: &Path, show: bool) -> Result<FileTranscript> {
        let started = Instant::now();
        let (audio, samples) = self.decode(path)?;
        let decode_s = started.elapsed().as_secs_f64();
        let mut transcript = FileTranscript {
            file: path.to_path_buf(),
            audio,
            duration_s: samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE),
            model: self.config.model,
            speech: Speech::default(),
            seconds: StageSeconds {
                decode_s,
                asr_s: 0.0,
            },
        };
        if !audio.is_present() {
            return Ok(transcript);
        }
        let started = Instant::now();
        transcript.speech = self.transcribe_samples(path, &samples, show, &|| false)?;
        transcript.seconds.asr_s = started.elapsed().as_secs_f64();
        Ok(transcript)
    }

    /// Recognises already decoded 16 kHz samples of `path` (named in
    /// progress and errors) and groups the segments into turns, giving up
    /// when `cancelled()` says so (asked before every decoder step).
    ///
    /// # Errors
    /// Recognition fails (a non-finite sample, a model error) or was
    /// cancelled.
    pub fn transcribe_samples(
        &self,
        path: &Path,
        samples: &[f32],
        show: bool,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Speech> {
        let duration_s = samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE);
        let what = format!("transcribing {}", path.display());
        let progress = Progress::new(what, "s", duration_s.ceil() as u64, show);
        let result = self
            .whisper
            .transcribe_until(
                samples,
                &self.config.decode,
                &mut |done, _| progress.set_position(done as u64),
                cancelled,
            )
            .with_context(|| format!("{}: speech recognition", path.display()))?;
        progress.set_position(duration_s.ceil() as u64);
        progress.finish();
        Ok(Speech {
            turns: mmer_asr::turns_from_segments(&result.segments, &self.config.turns),
            segments: result.segments,
            silent_windows: result.silent_windows,
        })
    }

    /// mmer-media's errors name the file.
    fn decode(&self, path: &Path) -> Result<(AudioState, Vec<f32>)> {
        let info = self.ffmpeg.probe(path)?;
        let decoded = self.ffmpeg.decode_audio(&info)?;
        Ok((decoded.state, decoded.samples))
    }
}

/// One row of a manifest: a recording and the words spoken in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The recording (relative paths are relative to the manifest).
    pub file: PathBuf,
    /// The words spoken.
    pub text: String,
    /// A group name for the report (`crema-d`, `meld-espeak-en-us`, …).
    pub source: String,
}

/// Reads a `file,text,source` CSV manifest.
///
/// # Errors
/// A missing file or column, or an empty text, naming the manifest line.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut reader = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let mut entries = Vec::new();
    for (i, row) in reader.deserialize::<ManifestEntry>().enumerate() {
        let line = i + 2;
        let mut entry = row.with_context(|| format!("{}: line {line}", path.display()))?;
        if entry.text.trim().is_empty() {
            bail!(
                "{}: line {line}: empty text for {}",
                path.display(),
                entry.file.display()
            );
        }
        if entry.file.is_relative() {
            entry.file = base.join(&entry.file);
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        bail!("{}: the manifest lists no recordings", path.display());
    }
    Ok(entries)
}

/// Another implementation's transcripts of the same recordings
/// (`scripts/whisper_reference.py --segments-only`: CTranslate2 +
/// faster-whisper, greedy), to check mmer's output against.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReferenceTranscripts {
    /// The model name the reference ran (`tiny.en`, `base`).
    pub model: AsrModel,
    /// Per recording (by file name), its segments.
    pub clips: Vec<ReferenceClip>,
}

/// One recording in [`ReferenceTranscripts`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReferenceClip {
    /// File name (no folder).
    pub clip: String,
    /// Segments: start and end seconds, text.
    pub segments: Vec<ReferenceSegment>,
}

/// One segment of a [`ReferenceClip`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReferenceSegment {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Text.
    pub text: String,
}

impl ReferenceTranscripts {
    /// Reads a reference JSON file.
    ///
    /// # Errors
    /// The file cannot be read or parsed (named in the message).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        serde_json::from_str(&text).with_context(|| path.display().to_string())
    }

    /// Whether `transcript` has the reference's segments (same texts, times
    /// within a microsecond); `None` when the reference lacks the file.
    pub fn matches(&self, transcript: &FileTranscript) -> Option<bool> {
        let name = transcript.file.file_name()?.to_string_lossy();
        let clip = self.clips.iter().find(|c| c.clip == name)?;
        Some(
            clip.segments.len() == transcript.speech.segments.len()
                && clip
                    .segments
                    .iter()
                    .zip(&transcript.speech.segments)
                    .all(|(r, s)| {
                        r.text == s.text
                            && (r.start - s.start_s).abs() < 1e-6
                            && (r.end - s.end_s).abs() < 1e-6
                    }),
        )
    }
}

/// Word error rate and speed of one model on one group of recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WerRow {
    /// The Whisper model.
    pub model: AsrModel,
    /// The manifest's source group, or `all`.
    pub source: String,
    /// Recordings.
    pub files: usize,
    /// Edit counts.
    pub counts: WerCounts,
    /// (S + D + I) / N.
    pub wer: f64,
    /// Seconds of audio.
    pub audio_s: f64,
    /// Time per stage.
    pub seconds: StageSeconds,
    /// (decode + recognition time) / audio duration.
    pub real_time_factor: f64,
    /// Recordings compared with a reference transcript, and how many of
    /// them mmer transcribed identically.
    pub reference: Option<ReferenceAgreement>,
}

/// Agreement with another implementation's transcripts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceAgreement {
    /// Recordings the reference covers.
    pub compared: usize,
    /// Of those, transcribed identically (segment texts and times).
    pub identical: usize,
}

/// What one model heard in one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WerFile {
    /// The Whisper model.
    pub model: AsrModel,
    /// The recording.
    pub file: PathBuf,
    /// The words spoken.
    pub reference: String,
    /// What was recognised.
    pub hypothesis: String,
    /// Edit counts.
    pub counts: WerCounts,
    /// Whether the reference transcript is identical (`None`: no reference).
    pub matches_reference: Option<bool>,
}

/// The word-error-rate benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WerReport {
    /// Per model, per source and `all`.
    pub rows: Vec<WerRow>,
    /// Every file's hypothesis.
    pub files: Vec<WerFile>,
}

/// Transcribes every manifest entry with each model and counts word errors;
/// where `references` has the model, compares transcripts with it.
///
/// # Errors
/// A model that does not load, or a recording that fails to decode.
pub fn wer_benchmark(
    entries: &[ManifestEntry],
    models: &[AsrModel],
    references: &[ReferenceTranscripts],
    models_dir: &Path,
    ffmpeg: &Ffmpeg,
    show: bool,
) -> Result<WerReport> {
    let mut rows = Vec::new();
    let mut files = Vec::new();
    for &model in models {
        let config = TranscribeConfig {
            model,
            ..TranscribeConfig::default()
        };
        let transcriber = Transcriber::new(config, models_dir, ffmpeg.clone())?;
        let progress = Progress::new(
            format!("WER of Whisper {model}"),
            "files",
            entries.len() as u64,
            show,
        );
        let mut groups: BTreeMap<String, WerRow> = BTreeMap::new();
        for entry in entries {
            let transcript = transcriber.transcribe_file(&entry.file, false)?;
            let hypothesis = transcript.text();
            let counts = WerCounts::of(&entry.text, &hypothesis);
            let matches_reference = references
                .iter()
                .filter(|r| r.model == model)
                .find_map(|r| r.matches(&transcript));
            for source in [entry.source.as_str(), "all"] {
                let row = groups.entry(source.to_string()).or_insert_with(|| WerRow {
                    model,
                    source: source.to_string(),
                    files: 0,
                    counts: WerCounts::default(),
                    wer: 0.0,
                    audio_s: 0.0,
                    seconds: StageSeconds::default(),
                    real_time_factor: 0.0,
                    reference: None,
                });
                if let Some(identical) = matches_reference {
                    let agreement = row
                        .reference
                        .get_or_insert_with(ReferenceAgreement::default);
                    agreement.compared += 1;
                    agreement.identical += usize::from(identical);
                }
                row.files += 1;
                row.counts += counts;
                row.audio_s += transcript.duration_s;
                row.seconds.decode_s += transcript.seconds.decode_s;
                row.seconds.asr_s += transcript.seconds.asr_s;
            }
            files.push(WerFile {
                model,
                file: entry.file.clone(),
                reference: entry.text.clone(),
                hypothesis,
                counts,
                matches_reference,
            });
            progress.inc(1);
        }
        progress.finish();
        for mut row in groups.into_values() {
            row.wer = row.counts.rate();
            row.real_time_factor =
                (row.seconds.decode_s + row.seconds.asr_s) / row.audio_s.max(1e-9);
            rows.push(row);
        }
    }
    Ok(WerReport { rows, files })
}
