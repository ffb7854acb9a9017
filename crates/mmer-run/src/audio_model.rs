//! The audio emotion model mmer ships (`assets/models/audio-emodb/`): one
//! turn's speech → probabilities of EmoDB's seven emotions, with no training
//! by the user.
//!
//! The model is the audio-only utterance MLP of the EmoDB experiment
//! ([`crate::emodb`]) on mmer-audio's 184 eGeMAPS-style functionals,
//! trained by [`crate::emodb::train_shipped`]. Its directory holds:
//!
//! | file | what |
//! |---|---|
//! | `checkpoint.json` | mmer-train's [`Checkpoint`]: training config, the z-score means and standard deviations of the training speakers (`layout.mean`, `layout.std`), class names, SHA-256 of `model.bpk` |
//! | `model.bpk` | the weights (burnpack) |
//! | `audio_model.json` | this module's manifest: sample rate, feature names, classes, how it was trained and validated, and the SHA-256 of `checkpoint.json` |
//! | `README.md` | data, licence, command, scores (kept when the model is retrained) |
//!
//! The two checksums chain: `audio_model.json` seals `checkpoint.json`
//! (normalisation, classes, config), which seals `model.bpk`. A changed
//! byte in either file is refused at [`AudioEmotionModel::load`], because
//! damaged floats load without complaint and predict nonsense.
//!
//! Features are computed by one private function that the training clips
//! also went through (`mmer_audio::functionals` on the samples as given),
//! and normalised by mmer-train's encoder with the statistics stored in the
//! checkpoint, as in training.

use std::path::Path;

use mmer_core::{Dialogue, Features, Modality, Utterance};
use mmer_models::EmotionModel;
use mmer_train::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Format version of `audio_model.json`.
const SCHEMA_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "audio_model.json";
/// mmer-train's checkpoint metadata (normalisation, classes, config).
const CHECKPOINT_FILE: &str = "checkpoint.json";
/// A hand-written file of the model directory that retraining keeps.
const README_FILE: &str = "README.md";

/// Shortest turn the model scores: one 25 ms analysis window
/// ([`mmer_audio::WINDOW_LENGTH`] samples at 16 kHz). Anything shorter
/// would be a single zero-padded frame.
pub const MIN_SAMPLES: usize = mmer_audio::WINDOW_LENGTH;

/// How the shipped model was trained and validated (`training` in
/// `audio_model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecord {
    /// Corpus (`emodb`).
    pub corpus: String,
    /// Seed of the weights and of the validation speakers' draw.
    pub seed: u64,
    /// Speakers whose clips trained the model (and gave the normalisation).
    pub train_speakers: Vec<String>,
    /// Speakers held out to choose the epoch (early stopping).
    pub valid_speakers: Vec<String>,
    /// Training clips.
    pub train_clips: usize,
    /// Validation clips.
    pub valid_clips: usize,
    /// Epoch kept (best validation weighted F1).
    pub best_epoch: usize,
    /// Accuracy of the kept model on the validation speakers' clips. It is
    /// the score the epoch was chosen on, so slightly optimistic; the
    /// leave-one-speaker-out experiment measures generalisation.
    pub valid_accuracy: f64,
    /// Weighted F1 of the kept model on the validation speakers' clips.
    pub valid_weighted_f1: f64,
}

/// `audio_model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// Format version ([`SCHEMA_VERSION`]).
    schema_version: u32,
    /// Sample rate the input must have, Hz.
    sample_rate_hz: u32,
    /// The functionals the model reads, in input order
    /// ([`mmer_audio::functional_names`] when it was trained).
    feature_names: Vec<String>,
    /// Class names in output order.
    classes: Vec<String>,
    /// SHA-256 (lower-case hex) of `checkpoint.json`.
    checkpoint_sha256: String,
    /// How it was trained.
    training: TrainingRecord,
}

/// A trained audio emotion model with its normalisation and classes.
#[derive(Debug)]
pub struct AudioEmotionModel {
    checkpoint: Checkpoint,
    model: EmotionModel,
    training: TrainingRecord,
}

/// An error about a file of a model directory, naming it.
fn file_error(path: &Path, msg: impl Into<String>) -> Error {
    Error::Train(mmer_train::Error::Checkpoint {
        path: path.to_path_buf(),
        msg: msg.into(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        Error::Train(mmer_train::Error::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// The functionals of 16 kHz mono `samples`, as the model's input: the
/// same call for training clips and for turns to predict.
///
/// # Errors
/// Empty audio or a non-finite sample ([`Error::Audio`]).
pub(crate) fn clip_features(samples_16k: &[f32]) -> Result<Vec<f32>> {
    Ok(mmer_audio::functionals(samples_16k)?.values)
}

/// [`clip_features`] of a turn, or `None` when the turn is too short or
/// silent to score (see [`AudioEmotionModel::predict`]).
///
/// # Errors
/// A NaN or infinite sample ([`Error::Audio`]).
pub(crate) fn turn_features(samples_16k: &[f32]) -> Result<Option<Vec<f32>>> {
    if let Some(index) = samples_16k.iter().position(|x| !x.is_finite()) {
        return Err(mmer_audio::Error::NonFinite { index }.into());
    }
    if samples_16k.len() < MIN_SAMPLES || mmer_audio::speech_bounds(samples_16k).is_none() {
        return Ok(None);
    }
    clip_features(samples_16k).map(Some)
}

impl AudioEmotionModel {
    /// A freshly trained model (from [`crate::emodb`]).
    pub(crate) fn new(
        checkpoint: Checkpoint,
        model: EmotionModel,
        training: TrainingRecord,
    ) -> Self {
        Self {
            checkpoint,
            model,
            training,
        }
    }

    /// Loads a model directory and checks it: the manifest's schema,
    /// the SHA-256 of `checkpoint.json` (normalisation and classes) and of
    /// `model.bpk`, that the features this mmer computes are the ones the
    /// model was trained on, and that the normalisation is usable (one
    /// finite mean and positive standard deviation per feature).
    ///
    /// # Errors
    /// [`Error::Train`] naming the file: a missing or unreadable file
    /// ([`mmer_train::Error::Io`]), a file that does not parse, has another
    /// schema version, a changed checksum or contents that contradict the
    /// others ([`mmer_train::Error::Checkpoint`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest: Manifest = serde_json::from_slice(&read_file(&manifest_path)?)
            .map_err(|e| file_error(&manifest_path, e.to_string()))?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(file_error(
                &manifest_path,
                format!(
                    "schema version {} (this mmer reads {SCHEMA_VERSION})",
                    manifest.schema_version
                ),
            ));
        }
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let actual = mmer_core::atomic::sha256_hex(&read_file(&checkpoint_path)?);
        if actual != manifest.checkpoint_sha256 {
            return Err(file_error(
                &checkpoint_path,
                format!(
                    "is damaged or was replaced: its SHA-256 is {actual}, {MANIFEST_FILE} recorded {}",
                    manifest.checkpoint_sha256
                ),
            ));
        }
        let (checkpoint, model) = Checkpoint::load(dir)?;
        check_contents(&manifest, &manifest_path, &checkpoint, &checkpoint_path)?;
        Ok(Self {
            checkpoint,
            model,
            training: manifest.training,
        })
    }

    /// Writes the model into `dir`, replacing it whole (built under a
    /// temporary sibling, then renamed): `checkpoint.json`, `model.bpk` and
    /// `audio_model.json` with the checksum of the first. A `README.md`
    /// already in `dir` is carried over.
    ///
    /// # Errors
    /// I/O failures naming the file.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let staging = mmer_core::atomic::partial_path(dir);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|source| {
                Error::Train(mmer_train::Error::Io {
                    path: staging.clone(),
                    source,
                })
            })?;
        }
        self.checkpoint.save(&self.model, &staging)?;
        let checkpoint_sha256 = mmer_core::atomic::file_sha256(&staging.join(CHECKPOINT_FILE))?;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            sample_rate_hz: mmer_audio::SAMPLE_RATE,
            feature_names: mmer_audio::functional_names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            classes: self.classes().to_vec(),
            checkpoint_sha256,
            training: self.training.clone(),
        };
        let manifest_path = staging.join(MANIFEST_FILE);
        let mut json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| file_error(&manifest_path, e.to_string()))?;
        json.push(b'\n');
        mmer_core::atomic::write_file(&manifest_path, &json)?;
        let readme = dir.join(README_FILE);
        if readme.is_file() {
            mmer_core::atomic::write_file(&staging.join(README_FILE), &read_file(&readme)?)?;
        }
        mmer_core::atomic::publish_dir(&staging, dir)?;
        Ok(())
    }

    /// Class names, in the order of [`AudioEmotionModel::predict`]'s
    /// probabilities (EmoDB: anger, boredom, disgust, fear, happiness,
    /// sadness, neutral).
    pub fn classes(&self) -> &[String] {
        &self.checkpoint.labels.classes
    }

    /// How the model was trained and validated.
    pub fn training(&self) -> &TrainingRecord {
        &self.training
    }

    /// Class probabilities (summing to 1, in [`AudioEmotionModel::classes`]
    /// order) of one turn's speech, 16 kHz mono samples in [-1, 1].
    ///
    /// `None` when the turn cannot be scored: shorter than [`MIN_SAMPLES`]
    /// (one 25 ms window), or silent — no 25 ms frame reaches −60 dBFS
    /// ([`mmer_audio::speech_bounds`] finds no activity, the rule by which
    /// mmer-media calls a track silent). Nothing else is trimmed or
    /// changed: the functionals are computed on `samples_16k` as given, as
    /// they were on the training clips (EmoDB's, 2.0 s each).
    ///
    /// # Errors
    /// A NaN or infinite sample ([`Error::Audio`]); a model giving a
    /// non-finite probability ([`mmer_train::Error::NonFinite`]).
    pub fn predict(&self, samples_16k: &[f32]) -> Result<Option<Vec<f32>>> {
        match turn_features(samples_16k)? {
            Some(features) => self.predict_features(features).map(Some),
            None => Ok(None),
        }
    }

    /// Class probabilities of one turn's functionals (`clip_features`).
    pub(crate) fn predict_features(&self, features: Vec<f32>) -> Result<Vec<f32>> {
        let mut turn = Utterance::new("turn", 0, "speaker");
        turn.features
            .insert(Modality::Audio, Features::vector(features));
        let dialogue = Dialogue {
            id: "turn".into(),
            utterances: vec![turn],
        };
        let prediction = self
            .checkpoint
            .predict(&self.model, std::slice::from_ref(&dialogue))?
            .pop()
            .expect("one turn in, one prediction out");
        Ok(prediction
            .probabilities
            .0
            .into_iter()
            .map(|(_, p)| p)
            .collect())
    }
}

/// Checks that `checkpoint` is an audio-functionals model this mmer can feed:
/// the manifest's features are this mmer's, its classes the checkpoint's, and
/// the normalisation has one finite mean and positive std per feature.
fn check_contents(
    manifest: &Manifest,
    manifest_path: &Path,
    checkpoint: &Checkpoint,
    checkpoint_path: &Path,
) -> Result<()> {
    let names = mmer_audio::functional_names();
    if manifest.sample_rate_hz != mmer_audio::SAMPLE_RATE {
        return Err(file_error(
            manifest_path,
            format!(
                "expects {} Hz input; mmer computes features at {} Hz",
                manifest.sample_rate_hz,
                mmer_audio::SAMPLE_RATE
            ),
        ));
    }
    if manifest.feature_names.len() != names.len()
        || manifest
            .feature_names
            .iter()
            .zip(names)
            .any(|(a, b)| a != b)
    {
        return Err(file_error(
            manifest_path,
            format!(
                "the model reads {} functionals that differ from the {} this mmer computes \
                 (mmer-audio's feature set changed): retrain it with scripts/train_shipped_audio.sh",
                manifest.feature_names.len(),
                names.len()
            ),
        ));
    }
    if manifest.classes != checkpoint.labels.classes {
        return Err(file_error(
            manifest_path,
            format!(
                "lists classes {:?}, {CHECKPOINT_FILE} {:?}",
                manifest.classes, checkpoint.labels.classes
            ),
        ));
    }
    let layout = &checkpoint.layout;
    if layout.modalities != [(Modality::Audio, names.len())] || layout.sequences {
        return Err(file_error(
            checkpoint_path,
            format!(
                "is not a model of {} audio functionals per turn (its inputs: {:?})",
                names.len(),
                layout.modalities
            ),
        ));
    }
    if layout.mean.len() != names.len() || layout.std.len() != names.len() {
        return Err(file_error(
            checkpoint_path,
            format!(
                "holds {} means and {} standard deviations for {} features",
                layout.mean.len(),
                layout.std.len(),
                names.len()
            ),
        ));
    }
    let bad = layout
        .mean
        .iter()
        .zip(&layout.std)
        .position(|(m, s)| !m.is_finite() || !s.is_finite() || *s <= 0.0);
    if let Some(i) = bad {
        return Err(file_error(
            checkpoint_path,
            format!(
                "normalisation of feature {i} ({}) is unusable: mean {}, std {}",
                names[i], layout.mean[i], layout.std[i]
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The shipped model's directory in this repository.
    fn shipped_model_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models/audio-emodb")
    }
    use crate::emodb::{Clip, train_audio_model};

    /// A voiced synthetic "utterance": harmonics of `f0` Hz with a slow
    /// amplitude envelope, `seconds` long, plus a little deterministic noise.
    fn voiced(f0: f32, amplitude: f32, seconds: f32, phase: u32) -> Vec<f32> {
        let n = (seconds * mmer_audio::SAMPLE_RATE as f32) as usize;
        let mut state = 0x9E37_79B9u32 ^ phase;
        (0..n)
            .map(|i| {
                let t = i as f32 / mmer_audio::SAMPLE_RATE as f32;
                let envelope = 0.6 + 0.4 * (std::f32::consts::TAU * 3.0 * t).sin();
                let tone: f32 = (1..=5)
                    .map(|h| (std::f32::consts::TAU * f0 * h as f32 * t).sin() / h as f32)
                    .sum();
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.02;
                amplitude * envelope * tone * 0.3 + noise
            })
            .collect()
    }

    /// A tiny model trained on synthetic clips: class c has pitch
    /// 100 + 30·c Hz, three speakers, one held out for validation.
    fn tiny_model() -> AudioEmotionModel {
        let mut clips = Vec::new();
        for speaker in ["01", "02", "03"] {
            for class in 0..7 {
                for take in 0..2u32 {
                    let f0 = 100.0 + 30.0 * class as f32 + 5.0 * take as f32;
                    let samples = voiced(f0, 0.5 + 0.05 * class as f32, 0.4, take + class as u32);
                    clips.push(Clip {
                        id: format!("{speaker}x{class}{take}"),
                        speaker: speaker.into(),
                        class,
                        features: clip_features(&samples).unwrap(),
                    });
                }
            }
        }
        train_audio_model(&clips, &["03".to_string()], 7, 3)
            .unwrap()
            .0
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mmer-audio-model-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// One test for the save/load round trip and the refusals, so that the
    /// model is trained once.
    #[test]
    fn saved_model_predicts_as_in_memory_and_refuses_damage() {
        let model = tiny_model();
        let turn = voiced(155.0, 0.55, 0.7, 99);
        let in_memory = model
            .predict(&turn)
            .unwrap()
            .expect("a voiced turn is scored");
        assert_eq!(in_memory.len(), 7);
        let sum: f32 = in_memory.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to {sum}");
        assert!(in_memory.iter().all(|p| (0.0..=1.0).contains(p)));

        let dir = scratch_dir("roundtrip");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(README_FILE), "kept\n").unwrap();
        model.save(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(README_FILE)).unwrap(),
            "kept\n"
        );
        let loaded = AudioEmotionModel::load(&dir).unwrap();
        assert_eq!(loaded.classes(), model.classes());
        assert_eq!(loaded.training(), model.training());
        let reloaded = loaded.predict(&turn).unwrap().unwrap();
        for (a, b) in in_memory.iter().zip(&reloaded) {
            assert!((a - b).abs() < 1e-6, "{in_memory:?} vs {reloaded:?}");
        }

        // A changed normalisation value is refused by the checksum ...
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let original = std::fs::read(&checkpoint_path).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
        let mean0 = json["layout"]["mean"][0].as_f64().unwrap();
        json["layout"]["mean"][0] = serde_json::json!(mean0 + 1.0);
        std::fs::write(&checkpoint_path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let err = AudioEmotionModel::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("checkpoint.json") && err.contains("damaged"),
            "{err}"
        );

        // ... and an unusable one even when the checksum was updated with it.
        json["layout"]["std"][3] = serde_json::json!(0.0);
        let bytes = serde_json::to_vec_pretty(&json).unwrap();
        std::fs::write(&checkpoint_path, &bytes).unwrap();
        let manifest_path = dir.join(MANIFEST_FILE);
        let mut manifest: Manifest =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        manifest.checkpoint_sha256 = mmer_core::atomic::sha256_hex(&bytes);
        std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let err = AudioEmotionModel::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("checkpoint.json") && err.contains("feature 3"),
            "{err}"
        );

        // A manifest that is not JSON, and a missing one, name the file.
        std::fs::write(&checkpoint_path, &original).unwrap();
        std::fs::write(&manifest_path, b"{ not json").unwrap();
        let err = AudioEmotionModel::load(&dir).unwrap_err().to_string();
        assert!(err.contains(MANIFEST_FILE), "{err}");
        std::fs::remove_file(&manifest_path).unwrap();
        let err = AudioEmotionModel::load(&dir).unwrap_err().to_string();
        assert!(err.contains(MANIFEST_FILE), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_or_silent_turns_are_not_scored() {
        assert_eq!(turn_features(&[]).unwrap(), None);
        assert_eq!(turn_features(&voiced(150.0, 0.5, 0.02, 1)).unwrap(), None); // 20 ms
        assert_eq!(turn_features(&vec![0.0; 16_000]).unwrap(), None);
        assert_eq!(turn_features(&vec![1e-5; 16_000]).unwrap(), None); // −100 dBFS
        assert!(
            turn_features(&voiced(150.0, 0.5, 0.5, 1))
                .unwrap()
                .is_some()
        );
        let mut bad = voiced(150.0, 0.5, 0.5, 1);
        bad[10] = f32::NAN;
        assert!(turn_features(&bad).is_err());
    }

    /// The committed model loads without any data (its checksums, and
    /// features that this mmer still computes) and scores a turn.
    #[test]
    fn shipped_model_loads_and_scores_a_turn() {
        let dir = shipped_model_dir();
        if !dir.join(MANIFEST_FILE).is_file() {
            eprintln!("skipping: no shipped model at {}", dir.display());
            return;
        }
        let model = AudioEmotionModel::load(&dir).unwrap();
        let probs = model.predict(&voiced(180.0, 0.6, 1.5, 3)).unwrap().unwrap();
        assert_eq!(probs.len(), model.classes().len());
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{probs:?}");
    }

    /// The shipped model on the EmoDB clips of its validation speakers gives
    /// the accuracy recorded in its manifest (and README). Skips without the
    /// data or the model.
    #[test]
    fn shipped_model_reproduces_its_validation_accuracy() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/emodb/wav");
        let dir = shipped_model_dir();
        if !data.is_dir() || !dir.join(MANIFEST_FILE).is_file() {
            eprintln!("skipping: needs {} and {}", data.display(), dir.display());
            return;
        }
        let model = AudioEmotionModel::load(&dir).unwrap();
        assert_eq!(
            model.classes(),
            [
                "anger",
                "boredom",
                "disgust",
                "fear",
                "happiness",
                "sadness",
                "neutral"
            ]
        );
        let training = model.training().clone();
        let (mut correct, mut total) = (0usize, 0usize);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        paths.sort();
        for path in paths {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            if !training
                .valid_speakers
                .iter()
                .any(|s| stem.starts_with(s.as_str()))
            {
                continue;
            }
            let gold = crate::emodb::class_of(&stem).unwrap();
            let samples = mmer_audio::load_16k_mono(&path).unwrap();
            let probs = model
                .predict(&samples)
                .unwrap()
                .expect("every EmoDB clip is scored");
            let best = probs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            correct += usize::from(best == gold);
            total += 1;
        }
        assert_eq!(total, training.valid_clips);
        let accuracy = correct as f64 / total as f64;
        assert!(
            (accuracy - training.valid_accuracy).abs() < 1e-9,
            "accuracy {accuracy} ({correct}/{total}), recorded {}",
            training.valid_accuracy
        );
    }
}
