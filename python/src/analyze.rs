//! `mmer.Analyzer` (and `mmer.analyze`): recordings analysed with the
//! models that ship with mmer, as `mmer analyze` does it. The options are
//! the command's flags (snake_case; `face=False` for `--no-face`), each
//! defaulting to the command's default, and build the same
//! [`AnalyzeConfig`]. The models load once per `Analyzer`, which then
//! analyses any number of recordings.

use std::path::{Path, PathBuf};

use mmer_asr::{AsrModel, DecodeOptions, TurnOptions};
use mmer_run::analyze::{Analysis, AnalyzeConfig, Analyzer, FusionWeights};
use mmer_run::explain::ExplainConfig;
use mmer_run::transcribe::TranscribeConfig;
use pyo3::prelude::*;

use crate::error::{Error, Result};

/// The options of `mmer.analyze`, `None` where the caller left mmer's
/// default.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// `--speakers`.
    pub speakers: Option<usize>,
    /// `--max-speakers`.
    pub max_speakers: Option<usize>,
    /// `--face-speaker-weight`.
    pub face_speaker_weight: Option<f64>,
    /// `--asr-model` (`tiny.en`, `base`).
    pub asr_model: Option<String>,
    /// `--temperature-fallback`.
    pub temperature_fallback: bool,
    /// `--max-pause`, seconds.
    pub max_pause: Option<f64>,
    /// `--text-model`.
    pub text_model: Option<PathBuf>,
    /// `--audio-model`.
    pub audio_model: Option<PathBuf>,
    /// Not `--no-face`.
    pub face: bool,
    /// `--keyframes-per-second`.
    pub keyframes_per_second: Option<f64>,
    /// `--weights` text, audio, face.
    pub weights: Option<Vec<f32>>,
    /// `--explain`.
    pub explain: bool,
    /// `--explain-samples`.
    pub explain_samples: Option<usize>,
    /// `--seed` (of the explanations).
    pub seed: Option<u64>,
    /// `--models-dir` (default `$MMER_MODELS_DIR`, else `./models`).
    pub models_dir: Option<PathBuf>,
}

impl AnalyzeOptions {
    /// The configuration `mmer analyze` builds from the same flags.
    ///
    /// # Errors
    /// [`Error::Option`] for an unknown Whisper model or weights that are
    /// not three numbers.
    pub fn config(&self) -> Result<AnalyzeConfig> {
        let defaults = AnalyzeConfig::default();
        let model = match &self.asr_model {
            None => AsrModel::default(),
            Some(name) => AsrModel::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = AsrModel::ALL.iter().map(|m| m.name()).collect();
                    Error::Option(format!(
                        "asr_model {name:?}: expected one of {}",
                        known.join(", ")
                    ))
                })?,
        };
        let weights = match self.weights.as_deref() {
            None => FusionWeights::default(),
            Some(&[text, audio, face]) => FusionWeights { text, audio, face },
            Some(other) => {
                return Err(Error::Option(format!(
                    "weights: give three numbers (text, audio, face), got {}",
                    other.len()
                )));
            }
        };
        let explain_defaults = ExplainConfig::default();
        Ok(AnalyzeConfig {
            transcribe: TranscribeConfig {
                model,
                decode: if self.temperature_fallback {
                    DecodeOptions::default().with_fallback()
                } else {
                    DecodeOptions::default()
                },
                turns: TurnOptions {
                    max_pause_s: self.max_pause.unwrap_or(TurnOptions::default().max_pause_s),
                    ..TurnOptions::default()
                },
            },
            speakers: self.speakers,
            max_speakers: self.max_speakers.unwrap_or(defaults.max_speakers),
            face_speaker_weight: self
                .face_speaker_weight
                .unwrap_or(defaults.face_speaker_weight),
            text_model: self.text_model.clone().unwrap_or(defaults.text_model),
            audio_model: self.audio_model.clone().unwrap_or(defaults.audio_model),
            face: self.face,
            keyframes_per_second: self
                .keyframes_per_second
                .unwrap_or(defaults.keyframes_per_second),
            weights,
            explain: self.explain.then(|| ExplainConfig {
                samples: self.explain_samples.unwrap_or(explain_defaults.samples),
                seed: self.seed.unwrap_or(explain_defaults.seed),
                ..explain_defaults.clone()
            }),
            models_dir: self
                .models_dir
                .clone()
                .unwrap_or_else(mmer_text::default_models_dir),
        })
    }
}

/// The shipped models, loaded once (`mmer.Analyzer` wraps it).
#[pyclass(frozen, module = "mmer._mmer", name = "Analyzer")]
pub struct PyAnalyzer {
    /// Boxed: `Analyzer` is aligned to 64 bytes (cache-padded parts), more
    /// than Python's allocator guarantees for the object PyO3 embeds it in.
    analyzer: Box<Analyzer>,
}

#[pymethods]
impl PyAnalyzer {
    /// Loads the models the options name (`mmer analyze`'s flags).
    #[staticmethod]
    #[pyo3(signature = (
        *,
        speakers = None,
        max_speakers = None,
        face_speaker_weight = None,
        asr_model = None,
        temperature_fallback = false,
        max_pause = None,
        text_model = None,
        audio_model = None,
        face = true,
        keyframes_per_second = None,
        weights = None,
        explain = false,
        explain_samples = None,
        seed = None,
        models_dir = None,
    ))]
    #[allow(clippy::too_many_arguments, reason = "one keyword argument per flag")]
    fn load(
        py: Python<'_>,
        speakers: Option<usize>,
        max_speakers: Option<usize>,
        face_speaker_weight: Option<f64>,
        asr_model: Option<String>,
        temperature_fallback: bool,
        max_pause: Option<f64>,
        text_model: Option<PathBuf>,
        audio_model: Option<PathBuf>,
        face: bool,
        keyframes_per_second: Option<f64>,
        weights: Option<Vec<f32>>,
        explain: bool,
        explain_samples: Option<usize>,
        seed: Option<u64>,
        models_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let options = AnalyzeOptions {
            speakers,
            max_speakers,
            face_speaker_weight,
            asr_model,
            temperature_fallback,
            max_pause,
            text_model,
            audio_model,
            face,
            keyframes_per_second,
            weights,
            explain,
            explain_samples,
            seed,
            models_dir,
        };
        let analyzer = py.detach(|| -> Result<Analyzer> {
            Ok(Analyzer::new(
                options.config()?,
                mmer_media::Ffmpeg::from_env(),
            )?)
        })?;
        Ok(Self {
            analyzer: Box::new(analyzer),
        })
    }

    /// Analyses the recording `path` (with `transcript`, a conversation
    /// file read instead of speech recognition and speaker clustering) and
    /// answers the analysis as JSON: `file`, `audio`, `duration_s`,
    /// `speakers`, `turns` (each with the fields of a line of `mmer analyze
    /// --format jsonl` but `file`), `seconds`.
    #[pyo3(signature = (path, *, transcript = None))]
    fn analyze_json(
        &self,
        py: Python<'_>,
        path: PathBuf,
        transcript: Option<PathBuf>,
    ) -> PyResult<String> {
        let json = py.detach(|| -> Result<String> {
            let analysis = self.analyze(&path, transcript.as_deref())?;
            Ok(serde_json::to_string(&analysis)?)
        })?;
        Ok(json)
    }
}

impl PyAnalyzer {
    /// As `mmer analyze`: a transcript that does not read, a recording
    /// ffmpeg cannot decode.
    fn analyze(&self, recording: &Path, transcript: Option<&Path>) -> Result<Analysis> {
        let given = match transcript {
            Some(path) => Some(self.analyzer.read_transcript(path, recording)?),
            None => None,
        };
        Ok(self
            .analyzer
            .analyze_with(recording, given.as_deref(), false)?)
    }
}
