//! `mmer analyze`: the emotion of every turn of a recording, with the
//! evidence behind it, from models that ship with mmer (no training by the
//! user).
//!
//! decode (ffmpeg) → turns (Whisper segments joined at pauses,
//! [`crate::transcribe`]) → faces per turn → speakers (voice prints and the
//! turn's face prints clustered, `mmer_audio::speakers`) → one reading per
//! modality, each mapped into MELD's seven classes ([`LABEL_MAP`]):
//! - **text**: the MELD context model on the transcript, with the speakers;
//! - **audio**: the EmoDB model on the turn's samples
//!   ([`crate::audio_model`]);
//! - **face**: the FER2013 mini-Xception on the faces found in keyframes
//!   inside the turn (`mmer_vision`), averaged;
//!
//! → late fusion: the weighted mean of the readings that exist
//! ([`FusionWeights`]). A turn without a face or without voiced audio is
//! predicted from what is there; its evidence says which readings it had.
//! A user's transcript ([`Analyzer::read_transcript`]) replaces speech
//! recognition and speaker clustering; a video without speech is one turn
//! read from its faces. `--explain` adds [`Explanation`]s
//! ([`crate::explain`]); [`crate::report_html`] draws the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mmer_audio::speakers::{SpeakerCount, assign_speakers_with_faces, voice_print};
use mmer_core::{Dialogue, Utterance};
use mmer_data::conversation::Segment as TimeRange;
use mmer_media::{AudioState, Ffmpeg, KeyframeMode, KeyframeOptions, MediaInfo};
use mmer_train::ClassProbabilities;
use mmer_vision::{
    ExpressionModel, SeetaModel, VisualExtractor, VisualExtractorConfig, face_print,
    mean_face_print,
};
use serde::{Deserialize, Serialize};

use crate::audio_model::AudioEmotionModel;
use crate::error::{Context, Result, bail, ensure};
use crate::explain::{ExplainConfig, explain_words};
use crate::predict::Predictor;
use crate::transcribe::{TranscribeConfig, Transcriber};

/// How each model's classes map onto the shipped label space (MELD's seven
/// classes, the text model's). Classes with no counterpart in a model get
/// no probability from it: EmoDB and FER have no class MELD lacks except
/// EmoDB's *boredom*, which is counted as *neutral* (a low-arousal,
/// non-negative state; MELD has no boredom).
pub const LABEL_MAP: [(&str, &[(&str, &str)]); 2] = [
    (
        "emodb",
        &[
            ("anger", "anger"),
            ("boredom", "neutral"),
            ("disgust", "disgust"),
            ("fear", "fear"),
            ("happiness", "joy"),
            ("sadness", "sadness"),
            ("neutral", "neutral"),
        ],
    ),
    (
        "fer2013",
        &[
            ("angry", "anger"),
            ("disgust", "disgust"),
            ("fear", "fear"),
            ("happy", "joy"),
            ("sad", "sadness"),
            ("surprise", "surprise"),
            ("neutral", "neutral"),
        ],
    ),
];

/// The emotion of a turn no modality could read.
pub const UNKNOWN: &str = "unknown";

/// FER2013's classes in the order of `mmer_vision::Expression::ALL`.
const FER_CLASSES: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// Weight of each modality's reading in the fused distribution (renormalised
/// over the readings a turn has).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusionWeights {
    /// The text context model.
    pub text: f32,
    /// The speech model.
    pub audio: f32,
    /// The face-expression model.
    pub face: f32,
}

impl Default for FusionWeights {
    /// Text counts as much as voice and face together: it is the only model
    /// trained on conversations (MELD), the others on acted single
    /// utterances (EmoDB) and posed faces (FER2013).
    fn default() -> Self {
        Self {
            text: 0.5,
            audio: 0.25,
            face: 0.25,
        }
    }
}

/// Settings of `mmer analyze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzeConfig {
    /// Speech recognition and turns.
    pub transcribe: TranscribeConfig,
    /// Number of speakers; `None` estimates it (up to `max_speakers`).
    pub speakers: Option<usize>,
    /// Most speakers the estimate considers.
    pub max_speakers: usize,
    /// Weight of the faces seen in a turn against its voice when telling
    /// speakers apart (`mmer_audio::speakers::assign_speakers_with_faces`;
    /// 0: voice only).
    pub face_speaker_weight: f64,
    /// The text model (a `seed-<k>` directory).
    pub text_model: PathBuf,
    /// The speech model directory.
    pub audio_model: PathBuf,
    /// Read faces (needs the face models from `scripts/setup.sh`).
    pub face: bool,
    /// Keyframes decoded per second of a turn for the face reading (at
    /// least 2 and at most 16 per turn).
    pub keyframes_per_second: f64,
    /// Late-fusion weights.
    pub weights: FusionWeights,
    /// Explain every turn (`None`: no explanations).
    pub explain: Option<ExplainConfig>,
    /// Installed models (Whisper, text encoder, face models).
    pub models_dir: PathBuf,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        Self {
            transcribe: TranscribeConfig::default(),
            speakers: None,
            max_speakers: 4,
            face_speaker_weight: mmer_audio::speakers::DEFAULT_FACE_WEIGHT,
            text_model: PathBuf::from("assets/models/text-meld-minilm"),
            audio_model: PathBuf::from("assets/models/audio-emodb"),
            face: true,
            keyframes_per_second: 2.0,
            weights: FusionWeights::default(),
            explain: None,
            models_dir: PathBuf::from("models"),
        }
    }
}

/// What each modality said about a turn, in the shipped label space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The text model's distribution.
    pub text: Option<ClassProbabilities>,
    /// The speech model's distribution (`None`: too little voiced audio).
    pub audio: Option<ClassProbabilities>,
    /// The mean face-expression distribution (`None`: no face found, no
    /// video, or faces not read).
    pub face: Option<ClassProbabilities>,
    /// Keyframes decoded and faces found in them.
    pub keyframes: usize,
    /// Faces found.
    pub faces: usize,
    /// The most confidently read face of the turn (for reports; not written
    /// to JSON).
    #[serde(skip)]
    pub face_thumbnail: Option<FaceThumbnail>,
}

/// A grayscale face crop, as the expression model read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaceThumbnail {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// Row-major 8-bit gray levels.
    pub gray: Vec<u8>,
    /// Time of the keyframe in the recording, seconds.
    pub time_s: f64,
}

/// Why a turn got its emotion (`mmer analyze --explain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The class explained: the turn's fused prediction.
    pub class: String,
    /// LIME over the transcript's words (thesis §5.4): each word's weight on
    /// the text model's probability of `class`, in transcript order; a
    /// positive weight pushed towards it.
    pub words: Vec<WordWeight>,
    /// Perturbed transcripts LIME scored.
    pub samples: usize,
    /// The seed of the perturbations.
    pub seed: u64,
    /// R² of LIME's weighted linear fit (how well the weights describe the
    /// model near this transcript).
    pub fit_r2: f32,
    /// Each modality's contribution: the fused probability of `class` minus
    /// what it is without that modality's reading (drop one).
    pub modalities: Vec<ModalityContribution>,
    /// Per face keyframe, the face model's probability of `class`.
    pub face_frames: Vec<FrameEvidence>,
    /// Per stretch of the turn's audio, how much the voice model's
    /// probability of `class` drops when that stretch is silenced.
    pub audio_segments: Vec<SegmentEvidence>,
}

/// One word's LIME weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordWeight {
    /// The word as written in the transcript.
    pub word: String,
    /// Its weight on the probability of the explained class.
    pub weight: f32,
}

/// A modality's drop-one contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityContribution {
    /// `text`, `audio` or `face`.
    pub modality: String,
    /// Fused probability of the class with every reading minus without this
    /// one (0 when the turn had no such reading).
    pub contribution: f32,
}

/// One keyframe's face reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameEvidence {
    /// Time in the recording, seconds.
    pub time_s: f64,
    /// The face model's probability of the explained class (`None`: no face).
    pub probability: Option<f32>,
}

/// One stretch of a turn's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEvidence {
    /// Start, seconds in the recording.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Voice model's probability of the class minus its probability with
    /// this stretch silenced.
    pub contribution: f32,
}

/// A turn the user gives (`--transcript`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GivenTurn {
    /// Start, seconds into the recording.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// What was said.
    pub text: String,
    /// Who said it (kept as the speaker label).
    pub speaker: String,
}

/// One turn's emotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEmotion {
    /// Turn number, from 0.
    pub turn: usize,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Speaker label (`S1`, `S2`, …; `S?` when the turn had too little
    /// voiced speech to tell).
    pub speaker: String,
    /// Transcript.
    pub text: String,
    /// The fused prediction; [`UNKNOWN`] when no modality had a reading (a
    /// silent turn without a face).
    pub emotion: String,
    /// Its probability.
    pub confidence: f32,
    /// Fused probability per class.
    pub probabilities: ClassProbabilities,
    /// Per-modality readings.
    pub evidence: Evidence,
    /// Why (with `--explain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// Seconds per stage of one analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeSeconds {
    /// Probe and audio decode.
    pub decode_s: f64,
    /// Speech recognition.
    pub asr_s: f64,
    /// Voice prints and clustering.
    pub speakers_s: f64,
    /// Text model (embedding included).
    pub text_s: f64,
    /// Speech model.
    pub audio_s: f64,
    /// Keyframes, face detection and expression.
    pub face_s: f64,
    /// Explanations (`--explain`).
    pub explain_s: f64,
}

/// A recording's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The recording.
    pub file: PathBuf,
    /// Its audio track.
    pub audio: AudioState,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Speakers found.
    pub speakers: usize,
    /// Turns in time order.
    pub turns: Vec<TurnEmotion>,
    /// Time per stage.
    pub seconds: AnalyzeSeconds,
}

/// One turn's face reading.
#[derive(Debug, Clone, Default)]
struct FaceReading {
    /// Mean distribution over the faces found, in the shipped classes.
    mean: Option<Vec<f32>>,
    /// Keyframes decoded.
    keyframes: usize,
    /// Faces found.
    faces: usize,
    /// Per keyframe: its time in the recording and, when a face was found,
    /// the face's distribution in the shipped classes.
    frames: Vec<(f64, Option<Vec<f32>>)>,
    /// The most confidently read face.
    thumbnail: Option<FaceThumbnail>,
    /// The mean face print of the faces found (who it was, for the speaker
    /// clustering).
    print: Option<Vec<f32>>,
}

/// Face detection and expression, loaded once.
struct FaceReader {
    seeta: SeetaModel,
    expression: ExpressionModel,
}

impl FaceReader {
    /// A keyframe reader over these models, with the default settings.
    fn extractor(&self) -> Result<VisualExtractor> {
        Ok(VisualExtractor::new(
            &self.seeta,
            self.expression.clone(),
            &VisualExtractorConfig::default(),
        )?)
    }
}

/// The loaded models.
pub struct Analyzer {
    transcriber: Transcriber,
    text: Arc<Predictor>,
    audio: AudioEmotionModel,
    face: Option<FaceReader>,
    classes: Vec<String>,
    audio_map: Vec<usize>,
    face_map: Vec<usize>,
    config: AnalyzeConfig,
    ffmpeg: Ffmpeg,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Index in `targets` of each source class under `map`.
fn class_map(
    source: &[String],
    map: &[(&str, &str)],
    targets: &[String],
    what: &str,
) -> Result<Vec<usize>> {
    source
        .iter()
        .map(|class| {
            let Some((_, target)) = map.iter().find(|(s, _)| s == class) else {
                bail!("{what}: class {class:?} has no entry in the label map");
            };
            targets
                .iter()
                .position(|t| t == target)
                .with_context(|| format!("{what}: {target:?} is not a class of the text model"))
        })
        .collect()
}

fn label_map(name: &str) -> &'static [(&'static str, &'static str)] {
    LABEL_MAP
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
        .unwrap_or(&[])
}

impl Analyzer {
    /// Loads every model the configuration names.
    ///
    /// # Errors
    /// A model that is missing or damaged (named), ffmpeg not found, or
    /// weights that do not sum to a positive number.
    pub fn new(config: AnalyzeConfig, ffmpeg: Ffmpeg) -> Result<Self> {
        let text = Predictor::load_with(&config.text_model, &config.models_dir)?;
        Self::with_text_model(config, ffmpeg, Arc::new(text))
    }

    /// As [`Analyzer::new`], with the text model already loaded (a server
    /// that also answers text requests shares one copy); `text` stands for
    /// `config.text_model`, which is not read.
    ///
    /// # Errors
    /// As [`Analyzer::new`].
    pub fn with_text_model(
        config: AnalyzeConfig,
        ffmpeg: Ffmpeg,
        text: Arc<Predictor>,
    ) -> Result<Self> {
        let w = config.weights;
        ensure!(
            w.text >= 0.0 && w.audio >= 0.0 && w.face >= 0.0 && w.text + w.audio + w.face > 0.0,
            "fusion weights must be non-negative with a positive sum, got {w:?}"
        );
        ensure!(
            config.face_speaker_weight.is_finite() && config.face_speaker_weight >= 0.0,
            "face_speaker_weight must be finite and at least 0, got {}",
            config.face_speaker_weight
        );
        ensure!(
            config.keyframes_per_second.is_finite() && config.keyframes_per_second > 0.0,
            "keyframes_per_second must be positive, got {}",
            config.keyframes_per_second
        );
        let transcriber = Transcriber::new(
            config.transcribe.clone(),
            &config.models_dir,
            ffmpeg.clone(),
        )?;
        let classes = text.checkpoint().labels.classes.clone();
        let audio = AudioEmotionModel::load(&config.audio_model)?;
        let audio_map = class_map(
            audio.classes(),
            label_map("emodb"),
            &classes,
            "speech model",
        )?;
        let fer: Vec<String> = FER_CLASSES.iter().map(|c| c.to_string()).collect();
        let face_map = class_map(&fer, label_map("fer2013"), &classes, "face model")?;
        let face = if config.face {
            let device = burn::tensor::Device::default();
            Some(FaceReader {
                seeta: SeetaModel::from_models_dir(&config.models_dir)
                    .context("loading the face detector (pass --no-face to skip faces)")?,
                expression: ExpressionModel::from_models_dir(&config.models_dir, &device)
                    .context("loading the face-expression model (pass --no-face to skip faces)")?,
            })
        } else {
            None
        };
        Ok(Self {
            transcriber,
            text,
            audio,
            face,
            classes,
            audio_map,
            face_map,
            config,
            ffmpeg,
        })
    }

    /// The shipped label space (the text model's classes).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Analyses one recording.
    ///
    /// # Errors
    /// The file cannot be probed or decoded (named), or a model fails.
    pub fn analyze(&self, path: &Path, show: bool) -> Result<Analysis> {
        self.analyze_with(path, None, show)
    }

    /// Reads the turns of `path` (a `.jsonl` or `.csv` conversation file:
    /// one dialogue whose every turn names the `recording` in its `video` or
    /// `audio` column and has `start` and `end`, seconds into it) to use
    /// instead of speech recognition and speaker clustering.
    ///
    /// # Errors
    /// The file does not read (named, with the line), holds more than one
    /// dialogue, or a turn has no time range or names another recording.
    pub fn read_transcript(&self, path: &Path, recording: &Path) -> Result<Vec<GivenTurn>> {
        let same = |named: &Path| match (named.canonicalize(), recording.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let conversations =
            mmer_data::conversation::read_conversations(path, &self.text.checkpoint().labels)?;
        ensure!(
            conversations.dialogues.len() == 1,
            "{}: a transcript for one recording holds one dialogue, this one has {}",
            path.display(),
            conversations.dialogues.len()
        );
        let dialogue = &conversations.dialogues[0];
        dialogue
            .utterances
            .iter()
            .map(|u| {
                let media = conversations.media.get(&u.id);
                if let Some(named) = media.and_then(|m| m.video.as_ref().or(m.audio.as_ref()))
                    && !same(named)
                {
                    bail!(
                        "{}: turn {} names {}, not the recording {}",
                        path.display(),
                        u.turn.map_or_else(|| u.index.to_string(), |t| t.to_string()),
                        named.display(),
                        recording.display()
                    );
                }
                let segment = media
                    .and_then(|m| m.segment)
                    .with_context(|| {
                        format!(
                            "{}: turn {} of dialogue {} has no start and end (seconds into the recording)",
                            path.display(),
                            u.turn.map_or_else(|| u.index.to_string(), |t| t.to_string()),
                            dialogue.id
                        )
                    })?;
                Ok(GivenTurn {
                    start_s: segment.start_s,
                    end_s: segment.end_s,
                    text: u.text.clone().unwrap_or_default(),
                    speaker: u.speaker.clone(),
                })
            })
            .collect()
    }

    /// Analyses one recording; `given` turns (from [`Analyzer::read_transcript`])
    /// replace speech recognition and speaker clustering. A recording without
    /// speech but with video is one turn read from its faces.
    ///
    /// # Errors
    /// The file cannot be probed or decoded (named), or a model fails.
    pub fn analyze_with(
        &self,
        path: &Path,
        given: Option<&[GivenTurn]>,
        show: bool,
    ) -> Result<Analysis> {
        let started = Instant::now();
        let info = self.ffmpeg.probe(path)?;
        let decoded = self.ffmpeg.decode_audio(&info)?;
        let mut seconds = AnalyzeSeconds {
            decode_s: started.elapsed().as_secs_f64(),
            ..AnalyzeSeconds::default()
        };
        let samples = decoded.samples;
        let duration_s = if samples.is_empty() {
            info.duration_s.unwrap_or_default()
        } else {
            samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE)
        };
        let mut analysis = Analysis {
            file: path.to_path_buf(),
            audio: decoded.state,
            duration_s,
            speakers: 0,
            turns: Vec::new(),
            seconds,
        };

        let started = Instant::now();
        let turns: Vec<mmer_asr::Turn> = match given {
            Some(given) => given
                .iter()
                .map(|g| mmer_asr::Turn {
                    start_s: g.start_s,
                    end_s: g.end_s,
                    text: g.text.clone(),
                    segments: Vec::new(),
                })
                .collect(),
            None if decoded.state.is_present() => {
                self.transcriber
                    .transcribe_samples(path, &samples, show, &|| false)?
                    .turns
            }
            // No speech: a video is one turn read from its faces.
            None => match info.video_duration_s() {
                Some(end_s) if self.face.is_some() => vec![mmer_asr::Turn {
                    start_s: 0.0,
                    end_s,
                    text: String::new(),
                    segments: Vec::new(),
                }],
                _ => Vec::new(),
            },
        };
        seconds.asr_s = started.elapsed().as_secs_f64();
        if turns.is_empty() {
            analysis.seconds = seconds;
            return Ok(analysis);
        }
        let rate = f64::from(mmer_audio::SAMPLE_RATE);
        let turn_samples: Vec<&[f32]> = turns
            .iter()
            .map(|t| {
                let a = ((t.start_s * rate) as usize).min(samples.len());
                let b = ((t.end_s * rate).ceil() as usize).clamp(a, samples.len());
                &samples[a..b]
            })
            .collect();

        let started = Instant::now();
        let faces = match (&self.face, &info.video) {
            (Some(reader), Some(_)) => self.read_faces(reader, &info, &turns)?,
            _ => vec![FaceReading::default(); turns.len()],
        };
        seconds.face_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let (speaker_ids, speakers) =
            match given {
                Some(given) => {
                    let mut names: Vec<&str> = Vec::new();
                    let ids =
                        given
                            .iter()
                            .map(|g| {
                                Some(names.iter().position(|n| *n == g.speaker).unwrap_or_else(
                                    || {
                                        names.push(&g.speaker);
                                        names.len() - 1
                                    },
                                ))
                            })
                            .collect::<Vec<_>>();
                    (
                        ids,
                        given.iter().map(|g| g.speaker.clone()).collect::<Vec<_>>(),
                    )
                }
                None => {
                    let prints = turn_samples
                        .iter()
                        .map(|s| voice_print(s))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let count = match self.config.speakers {
                        Some(n) => SpeakerCount::Given(n),
                        None => SpeakerCount::Estimate {
                            max: self.config.max_speakers,
                        },
                    };
                    let face_prints: Vec<Option<&[f32]>> =
                        faces.iter().map(|f| f.print.as_deref()).collect();
                    let ids = assign_speakers_with_faces(
                        &prints,
                        &face_prints,
                        self.config.face_speaker_weight,
                        count,
                    )?;
                    let names = ids
                        .iter()
                        .map(|id| id.map_or_else(|| "S?".to_string(), |k| format!("S{}", k + 1)))
                        .collect();
                    (ids, names)
                }
            };
        analysis.speakers = speaker_ids.iter().flatten().max().map_or(0, |m| m + 1);
        seconds.speakers_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let (dialogue, text) = self.read_text(path, &turns, &speaker_ids, &speakers)?;
        // A turn without words (a silent video) has no text reading.
        let text: Vec<Option<Vec<f32>>> = turns
            .iter()
            .zip(text)
            .map(|(t, p)| (!t.text.trim().is_empty()).then_some(p))
            .collect();
        seconds.text_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let audio = turn_samples
            .iter()
            .map(|s| {
                Ok(self
                    .audio
                    .predict(s)?
                    .map(|p| map_into(&p, &self.audio_map, self.classes.len())))
            })
            .collect::<Result<Vec<_>>>()?;
        seconds.audio_s = started.elapsed().as_secs_f64();

        for (i, turn) in turns.iter().enumerate() {
            let face = faces[i].mean.clone();
            let evidence = Evidence {
                text: text[i].as_ref().map(|p| self.named(p)),
                audio: audio[i].as_ref().map(|p| self.named(p)),
                face: face.as_ref().map(|p| self.named(p)),
                keyframes: faces[i].keyframes,
                faces: faces[i].faces,
                face_thumbnail: faces[i].thumbnail.clone(),
            };
            let w = self.config.weights;
            let fused = fuse(
                &[
                    (text[i].as_deref(), w.text),
                    (audio[i].as_deref(), w.audio),
                    (face.as_deref(), w.face),
                ],
                self.classes.len(),
            );
            let (best, confidence) = argmax(&fused);
            let emotion = if confidence > 0.0 {
                self.classes[best].clone()
            } else {
                UNKNOWN.to_string()
            };
            analysis.turns.push(TurnEmotion {
                turn: i,
                start_s: turn.start_s,
                end_s: turn.end_s,
                speaker: speakers[i].clone(),
                text: turn.text.clone(),
                emotion,
                confidence,
                probabilities: self.named(&fused),
                evidence,
                explanation: None,
            });
        }
        if let Some(config) = &self.config.explain {
            let started = Instant::now();
            for (i, turn) in analysis.turns.iter_mut().enumerate() {
                let Some(class) = self.classes.iter().position(|c| *c == turn.emotion) else {
                    continue;
                };
                let (words, fit_r2) = if text[i].is_some() {
                    explain_words(&self.text, &dialogue, i, class, config)?
                } else {
                    (Vec::new(), 0.0)
                };
                let w = self.config.weights;
                let readings = [
                    ("text", text[i].as_deref(), w.text),
                    ("audio", audio[i].as_deref(), w.audio),
                    ("face", faces[i].mean.as_deref(), w.face),
                ];
                let all: Vec<(Option<&[f32]>, f32)> = readings.iter().map(|r| (r.1, r.2)).collect();
                let full = fuse(&all, self.classes.len())[class];
                let modalities = readings
                    .iter()
                    .enumerate()
                    .map(|(m, (name, reading, _))| {
                        let mut without = all.clone();
                        without[m].0 = None;
                        let contribution = if reading.is_some() {
                            full - fuse(&without, self.classes.len())[class]
                        } else {
                            0.0
                        };
                        ModalityContribution {
                            modality: (*name).to_string(),
                            contribution,
                        }
                    })
                    .collect();
                let face_frames = faces[i]
                    .frames
                    .iter()
                    .map(|(time_s, p)| FrameEvidence {
                        time_s: *time_s,
                        probability: p.as_ref().map(|p| p[class]),
                    })
                    .collect();
                let audio_segments = match &audio[i] {
                    Some(p) => {
                        self.explain_audio(turn_samples[i], turn.start_s, class, p[class], config)?
                    }
                    None => Vec::new(),
                };
                turn.explanation = Some(Explanation {
                    class: turn.emotion.clone(),
                    words,
                    samples: config.samples,
                    seed: config.seed,
                    fit_r2,
                    modalities,
                    face_frames,
                    audio_segments,
                });
            }
            seconds.explain_s = started.elapsed().as_secs_f64();
        }
        analysis.seconds = seconds;
        Ok(analysis)
    }

    /// The text model's distribution per turn, the turns as one dialogue.
    fn read_text(
        &self,
        path: &Path,
        turns: &[mmer_asr::Turn],
        speaker_ids: &[Option<usize>],
        speakers: &[String],
    ) -> Result<(Dialogue, Vec<Vec<f32>>)> {
        let id = path.file_stem().map_or_else(
            || "recording".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let utterances = turns
            .iter()
            .enumerate()
            .map(|(i, turn)| {
                // A turn whose speaker is unknown is its own speaker, so the
                // speaker-level context does not merge strangers.
                let speaker = match speaker_ids[i] {
                    Some(_) => speakers[i].clone(),
                    None => format!("unknown-{i}"),
                };
                let mut u = Utterance::new(format!("{id}-{i}"), i, speaker);
                u.turn = Some(i as u64);
                u.text = Some(turn.text.clone());
                u
            })
            .collect();
        let mut dialogue = Dialogue { id, utterances };
        self.text.embed(std::slice::from_mut(&mut dialogue))?;
        let predictions = self
            .text
            .predict_embedded(std::slice::from_ref(&dialogue))?;
        ensure!(
            predictions.len() == turns.len(),
            "the text model returned {} predictions for {} turns",
            predictions.len(),
            turns.len()
        );
        let probabilities = predictions
            .into_iter()
            .map(|p| p.probabilities.0.into_iter().map(|(_, v)| v).collect())
            .collect();
        Ok((dialogue, probabilities))
    }

    /// Mean face-expression distribution per turn, keyframes decoded and
    /// faces found.
    fn read_faces(
        &self,
        reader: &FaceReader,
        info: &MediaInfo,
        turns: &[mmer_asr::Turn],
    ) -> Result<Vec<FaceReading>> {
        let mut extractor = reader.extractor()?;
        let video_start_s = info.video.as_ref().map_or(0.0, |v| v.start_s);
        let mut out = Vec::with_capacity(turns.len());
        for turn in turns {
            let count = ((turn.end_s - turn.start_s) * self.config.keyframes_per_second).round();
            let options = KeyframeOptions {
                count: (count as usize).clamp(2, 16),
                max_side: Some(640),
                mode: KeyframeMode::Uniform,
            };
            // ffmpeg's input seek to a time before the first video frame
            // (FLV video often starts a few ms after the audio) decodes no
            // frame at all: start the cut at the video's first frame.
            let range = TimeRange {
                start_s: turn.start_s.max(video_start_s),
                end_s: turn.end_s,
            };
            let Ok(cut) = info.clone().cut(range) else {
                // A turn past the video's end (Whisper's last timestamp can
                // overshoot) has no frames.
                out.push(FaceReading::default());
                continue;
            };
            let frames = self.ffmpeg.keyframes(&cut, &options)?;
            let frames: Vec<(f64, usize, usize, &[u8])> = frames
                .iter()
                .map(|f| {
                    let time_s = range.start_s + f.time_s;
                    (
                        time_s,
                        f.width as usize,
                        f.height as usize,
                        f.data.as_slice(),
                    )
                })
                .collect();
            out.push(self.read_frames(&mut extractor, &frames)?);
        }
        Ok(out)
    }

    /// The faces of one turn's frames `(time in the recording, width,
    /// height, RGB bytes)`: per-frame distributions, their mean, the
    /// sharpest face and the mean face print.
    fn read_frames(
        &self,
        extractor: &mut VisualExtractor,
        frames: &[(f64, usize, usize, &[u8])],
    ) -> Result<FaceReading> {
        let views = frames
            .iter()
            .map(|&(_, width, height, data)| mmer_vision::RgbFrame::new(width, height, data))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let features = extractor.extract(&views)?;
        let mut reading = FaceReading {
            keyframes: frames.len(),
            ..FaceReading::default()
        };
        let mut sum = vec![0.0f32; self.classes.len()];
        let mut prints = Vec::new();
        let mut sharpest = f32::NEG_INFINITY;
        for (&(time_s, ..), keyframe) in frames.iter().zip(&features) {
            let Some(face) = &keyframe.face else {
                reading.frames.push((time_s, None));
                continue;
            };
            let p = map_into(
                &face.expression.probabilities,
                &self.face_map,
                self.classes.len(),
            );
            sum.iter_mut().zip(&p).for_each(|(s, v)| *s += v);
            prints.extend(face_print(&face.crop.image));
            let top = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if top > sharpest {
                sharpest = top;
                let image = &face.crop.image;
                reading.thumbnail = Some(FaceThumbnail {
                    width: image.width(),
                    height: image.height(),
                    gray: image.data().to_vec(),
                    time_s,
                });
            }
            reading.frames.push((time_s, Some(p)));
            reading.faces += 1;
        }
        if reading.faces > 0 {
            reading.mean = Some(sum.iter().map(|v| v / reading.faces as f32).collect());
        }
        reading.print = mean_face_print(&prints);
        Ok(reading)
    }

    /// Silences each stretch of a turn's audio in turn and records how much
    /// the voice model's probability of `class` falls.
    fn explain_audio(
        &self,
        samples: &[f32],
        start_s: f64,
        class: usize,
        full: f32,
        config: &ExplainConfig,
    ) -> Result<Vec<SegmentEvidence>> {
        let rate = f64::from(mmer_audio::SAMPLE_RATE);
        let step = ((config.audio_segment_s * rate) as usize).max(1);
        let mut out = Vec::new();
        for begin in (0..samples.len()).step_by(step) {
            let end = (begin + step).min(samples.len());
            let mut silenced = samples.to_vec();
            silenced[begin..end].iter_mut().for_each(|v| *v = 0.0);
            let without = self.audio.predict(&silenced)?.map_or(0.0, |p| {
                map_into(&p, &self.audio_map, self.classes.len())[class]
            });
            out.push(SegmentEvidence {
                start_s: start_s + begin as f64 / rate,
                end_s: start_s + end as f64 / rate,
                contribution: full - without,
            });
        }
        Ok(out)
    }

    /// The ffmpeg programs in use.
    pub fn ffmpeg(&self) -> &Ffmpeg {
        &self.ffmpeg
    }

    /// Turn `index` of a live stream ([`crate::stream`]): its words from
    /// Whisper, read by the text model in the context of the turns of
    /// `dialogue` before it (one speaker, `S1`: a stream is not
    /// clustered), its voice by the speech model and, when the turn
    /// carries frames and faces are read, its face as a recording's
    /// keyframes are, fused with the configured weights. A turn with words joins `dialogue`,
    /// embedded, as the context of the next. Recognition gives up when
    /// `cancelled()` says so (the caller no longer wants the turn).
    ///
    /// # Errors
    /// Recognition or a model fails, or recognition was cancelled.
    pub fn analyze_live_turn(
        &self,
        dialogue: &mut Dialogue,
        index: usize,
        turn: &crate::stream::SpeechTurn,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<TurnEmotion> {
        // The face is read on a second thread while Whisper decodes (most
        // of a turn's time, on about one core).
        let (speech, face) = std::thread::scope(|scope| {
            let face = scope.spawn(|| self.read_live_face(&turn.frames));
            let speech = self.transcriber.transcribe_samples(
                Path::new(&dialogue.id),
                &turn.samples,
                false,
                cancelled,
            );
            let face = face
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (speech, face)
        });
        let (speech, face) = (speech?, face?);
        let words: Vec<&str> = speech.segments.iter().map(|s| s.text.trim()).collect();
        let words = words.join(" ").trim().to_string();
        let text = if words.is_empty() {
            None
        } else {
            // Only the new turn is embedded: the turns before keep theirs
            // (and are its context if the model reads them in its input).
            let mut utterance = Utterance::new(format!("{}-{index}", dialogue.id), index, "S1");
            utterance.turn = Some(index as u64);
            utterance.text = Some(words.clone());
            dialogue.utterances.push(utterance);
            let last = dialogue.utterances.len() - 1;
            if let Err(err) = self.text.embed_turns(dialogue, last..last + 1) {
                dialogue.utterances.pop();
                return Err(err);
            }
            let predictions = self.text.predict_embedded(std::slice::from_ref(dialogue))?;
            predictions.last().map(|p| {
                p.probabilities
                    .0
                    .iter()
                    .map(|(_, v)| *v)
                    .collect::<Vec<f32>>()
            })
        };
        let audio = self
            .audio
            .predict(&turn.samples)?
            .map(|p| map_into(&p, &self.audio_map, self.classes.len()));
        let w = self.config.weights;
        let fused = fuse(
            &[
                (text.as_deref(), w.text),
                (audio.as_deref(), w.audio),
                (face.mean.as_deref(), w.face),
            ],
            self.classes.len(),
        );
        let (best, confidence) = argmax(&fused);
        Ok(TurnEmotion {
            turn: index,
            start_s: turn.start_s,
            end_s: turn.end_s,
            speaker: "S1".to_string(),
            text: words,
            emotion: if confidence > 0.0 {
                self.classes[best].clone()
            } else {
                UNKNOWN.to_string()
            },
            confidence,
            probabilities: self.named(&fused),
            evidence: Evidence {
                text: text.as_ref().map(|p| self.named(p)),
                audio: audio.as_ref().map(|p| self.named(p)),
                face: face.mean.as_ref().map(|p| self.named(p)),
                keyframes: face.keyframes,
                faces: face.faces,
                face_thumbnail: face.thumbnail,
            },
            explanation: None,
        })
    }

    /// The face in a live turn's `frames` (none without frames, or when
    /// faces are not read).
    fn read_live_face(&self, frames: &[crate::stream::LiveFrame]) -> Result<FaceReading> {
        let Some(reader) = self.face.as_ref().filter(|_| !frames.is_empty()) else {
            return Ok(FaceReading::default());
        };
        let mut extractor = reader.extractor()?;
        let frames: Vec<(f64, usize, usize, &[u8])> = frames
            .iter()
            .map(|f| (f.time_s, f.width, f.height, f.rgb.as_slice()))
            .collect();
        self.read_frames(&mut extractor, &frames)
    }

    fn named(&self, p: &[f32]) -> ClassProbabilities {
        ClassProbabilities(
            self.classes
                .iter()
                .cloned()
                .zip(p.iter().copied())
                .collect(),
        )
    }
}

/// A source distribution summed into `n` target classes (`map[i]` is the
/// target of source class `i`).
fn map_into(probabilities: &[f32], map: &[usize], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    for (p, &k) in probabilities.iter().zip(map) {
        out[k] += p;
    }
    out
}

/// Weighted mean of the readings present (each `(reading, weight)`),
/// renormalised over their weights; all zeros when none is present.
fn fuse(readings: &[(Option<&[f32]>, f32)], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    let mut total = 0.0f32;
    for &(reading, weight) in readings {
        if let Some(p) = reading
            && weight > 0.0
        {
            for (o, v) in out.iter_mut().zip(p) {
                *o += weight * v;
            }
            total += weight;
        }
    }
    if total > 0.0 {
        out.iter_mut().for_each(|v| *v /= total);
    }
    out
}

fn argmax(p: &[f32]) -> (usize, f32) {
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MELD: [&str; 7] = [
        "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
    ];

    fn meld() -> Vec<String> {
        MELD.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn every_source_class_lands_in_meld_and_mass_is_kept() {
        let emodb: Vec<String> = crate::emodb::CLASSES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let map = class_map(&emodb, label_map("emodb"), &meld(), "emodb").unwrap();
        let p = [0.1, 0.2, 0.05, 0.05, 0.3, 0.1, 0.2];
        let q = map_into(&p, &map, 7);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // boredom + neutral → neutral; happiness → joy; nothing → surprise.
        assert!((q[0] - 0.4).abs() < 1e-6 && (q[4] - 0.3).abs() < 1e-6 && q[1] == 0.0);
        let fer: Vec<String> = FER_CLASSES.iter().map(|c| c.to_string()).collect();
        let map = class_map(&fer, label_map("fer2013"), &meld(), "fer").unwrap();
        let mut sorted = map.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..7).collect::<Vec<_>>(),
            "FER maps one-to-one onto MELD"
        );
    }

    #[test]
    fn a_class_outside_the_map_or_the_target_is_refused() {
        let odd = vec!["contempt".to_string()];
        assert!(class_map(&odd, label_map("fer2013"), &meld(), "x").is_err());
        let targets = vec!["neutral".to_string()];
        let fer: Vec<String> = FER_CLASSES.iter().map(|c| c.to_string()).collect();
        assert!(class_map(&fer, label_map("fer2013"), &targets, "x").is_err());
    }

    #[test]
    fn fusion_uses_only_the_readings_present() {
        let text = [1.0, 0.0];
        let audio = [0.0, 1.0];
        let both = fuse(&[(Some(&text), 0.5), (Some(&audio), 0.25), (None, 0.25)], 2);
        assert!((both[0] - 2.0 / 3.0).abs() < 1e-6 && (both[1] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(fuse(&[(Some(&text), 0.5), (None, 0.5)], 2), vec![1.0, 0.0]);
        assert_eq!(fuse(&[(None, 1.0)], 2), vec![0.0, 0.0]);
        assert_eq!(argmax(&both), (0, both[0]));
    }
}
