//! Checkpoints: `checkpoint.json` (everything needed to rebuild the model and
//! its input layout) next to `model.bpk` (burnpack weights of the best
//! validation epoch). `eval` and `predict` start from here.
//!
//! A checkpoint directory is written whole or not at all (built under a
//! temporary sibling, then renamed into place), and `checkpoint.json`
//! records the SHA-256 of `model.bpk`: a loader refuses weights whose bytes
//! changed, since damaged floats load without complaint and predict NaN or
//! nonsense. A model that still yields a non-finite probability is an error
//! naming the utterance, never an answer.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use mmer_core::{Dialogue, Label, LabelSpace};
use mmer_models::EmotionModel;
use mmer_models::text_encoder::TextEncoder;
use serde::{Deserialize, Serialize};

use crate::batcher::{EncodedDialogue, FeatureLayout, encode};
use crate::error::io_err;
use crate::trainer::predict_probabilities;
use crate::{Error, Result, TrainConfig};

/// 2: `weights_sha256`. Version 1 files (no checksum) still load, with a
/// warning that their weights cannot be verified.
const SCHEMA_VERSION: u32 = 2;
const META_FILE: &str = "checkpoint.json";
const WEIGHTS_FILE: &str = "model.bpk";
/// The fine-tuned text-encoder layers of a `[train.finetune]` model.
const ENCODER_FILE: &str = "text_encoder.bpk";

/// Class probabilities of every turn of one dialogue.
type DialogueProbabilities = Vec<Vec<f32>>;

/// Metadata of a trained model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version of this file.
    pub schema_version: u32,
    /// Corpus the model was trained on.
    pub corpus: String,
    /// Feature source of the text modality (e.g. `minilm`, or `mpnet-tokens`
    /// for token states), when text is used.
    pub text_encoder: Option<String>,
    /// The full training configuration.
    pub config: TrainConfig,
    /// The seed of this model.
    pub seed: u64,
    /// Epoch selected on validation.
    pub best_epoch: usize,
    /// Input layout and normalisation fitted on train.
    pub layout: FeatureLayout,
    /// Class names.
    pub labels: LabelSpace,
    /// SHA-256 (lower-case hex) of `model.bpk`, verified before loading.
    /// `None` only in schema-1 checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// Multi-label models: each label's decision threshold, tuned on
    /// validation (a label is predicted when its probability is at least
    /// its threshold); `None` for single-label models, and 0.5 for every
    /// label of a multi-label checkpoint without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<f32>>,
    /// SHA-256 of `text_encoder.bpk`, the fine-tuned encoder layers of a
    /// `[train.finetune]` model, verified before loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_sha256: Option<String>,
}

/// The prediction for one utterance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    /// Dialogue id.
    pub dialogue: String,
    /// Utterance id.
    pub utterance: String,
    /// The turn number as the input gave it (its rank in the dialogue when
    /// the input numbers no turns).
    pub turn: u64,
    /// Speaker.
    pub speaker: String,
    /// Transcript, when known.
    pub text: Option<String>,
    /// Predicted class name; for a multi-label model the predicted set,
    /// `;`-separated in label order (empty for none).
    pub emotion: String,
    /// Probability of the predicted class (multi-label: of exactly the
    /// predicted set).
    pub confidence: f32,
    /// Probability per class name, in label-space order.
    pub probabilities: ClassProbabilities,
    /// Gold class, when labelled.
    pub gold: Option<String>,
}

impl Checkpoint {
    /// Builds the metadata of a freshly trained model.
    pub fn new(
        corpus: &str,
        text_encoder: Option<String>,
        config: &TrainConfig,
        seed: u64,
        best_epoch: usize,
        layout: FeatureLayout,
        labels: LabelSpace,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            corpus: corpus.to_string(),
            text_encoder,
            config: config.clone(),
            seed,
            best_epoch,
            layout,
            labels,
            weights_sha256: None,
            thresholds: None,
            encoder_sha256: None,
        }
    }

    /// The checkpoint with multi-label decision thresholds.
    pub fn with_thresholds(self, thresholds: Option<Vec<f32>>) -> Self {
        Self { thresholds, ..self }
    }

    /// Writes `checkpoint.json` and `model.bpk` into `dir`, replacing it
    /// whole; see [`Checkpoint::save_with`].
    ///
    /// # Errors
    /// As [`Checkpoint::save_with`].
    pub fn save(&self, model: &EmotionModel, dir: &Path) -> Result<()> {
        self.save_with(model, dir, &[])
    }

    /// Writes `model.bpk`, `checkpoint.json` (with the weights' SHA-256) and
    /// the `extra` files (name, bytes) into a temporary sibling of `dir`,
    /// then renames it to `dir`, replacing what was there: an interrupted
    /// save leaves the old directory or the new one, never a mix.
    ///
    /// # Errors
    /// I/O or serialisation failures naming the file.
    pub fn save_with(
        &self,
        model: &EmotionModel,
        dir: &Path,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        self.save_all(model, None, dir, extra)
    }

    /// [`Checkpoint::save_with`] for a `[train.finetune]` model: its
    /// fine-tuned encoder layers go to `text_encoder.bpk`, whose SHA-256
    /// `checkpoint.json` records too.
    ///
    /// # Errors
    /// As [`Checkpoint::save_with`].
    pub fn save_fine_tuned(
        &self,
        model: &EmotionModel,
        encoder: &TextEncoder,
        dir: &Path,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        self.save_all(model, Some(encoder), dir, extra)
    }

    fn save_all(
        &self,
        model: &EmotionModel,
        encoder: Option<&TextEncoder>,
        dir: &Path,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        let staging = mmer_core::atomic::partial_path(dir);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        let weights = staging.join(WEIGHTS_FILE);
        model
            .clone()
            .save_file(&weights)
            .map_err(|e| Error::Checkpoint {
                path: weights.clone(),
                msg: e.to_string(),
            })?;
        let encoder_sha256 = match encoder {
            Some(encoder) => {
                let path = staging.join(ENCODER_FILE);
                encoder
                    .clone()
                    .save_file(&path)
                    .map_err(|e| Error::Checkpoint {
                        path: path.clone(),
                        msg: e.to_string(),
                    })?;
                Some(mmer_core::atomic::file_sha256(&path)?)
            }
            None => None,
        };
        let sealed = Self {
            weights_sha256: Some(mmer_core::atomic::file_sha256(&weights)?),
            encoder_sha256,
            ..self.clone()
        };
        let meta = staging.join(META_FILE);
        let json = serde_json::to_vec_pretty(&sealed).map_err(|e| Error::Checkpoint {
            path: meta.clone(),
            msg: e.to_string(),
        })?;
        mmer_core::atomic::write_file(&meta, &json)?;
        for (name, bytes) in extra {
            mmer_core::atomic::write_file(&staging.join(name), bytes)?;
        }
        mmer_core::atomic::publish_dir(&staging, dir)?;
        Ok(())
    }

    /// `checkpoint.json` of `dir`, with its path.
    fn read_meta(dir: &Path) -> Result<(PathBuf, Checkpoint)> {
        let meta = dir.join(META_FILE);
        let bytes = std::fs::read(&meta).map_err(io_err(&meta))?;
        let checkpoint: Checkpoint =
            serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
                path: meta.clone(),
                msg: e.to_string(),
            })?;
        if !(1..=SCHEMA_VERSION).contains(&checkpoint.schema_version) {
            return Err(Error::Checkpoint {
                path: meta,
                msg: format!(
                    "schema version {} (this mmer reads 1 to {SCHEMA_VERSION})",
                    checkpoint.schema_version
                ),
            });
        }
        Ok((meta, checkpoint))
    }

    /// Loads this checkpoint's weights into `model` (built by the caller on
    /// any device, e.g. for further training), after checking that it was
    /// made for the same input layout and model hyper-parameters.
    ///
    /// # Errors
    /// A different layout or model spec, or unreadable weights.
    pub fn load_weights_into(
        dir: &Path,
        model: EmotionModel,
        layout: &FeatureLayout,
        spec: &crate::ModelSpec,
    ) -> Result<EmotionModel> {
        let (meta, checkpoint) = Self::read_meta(dir)?;
        let mismatch = |what: &str| Error::Checkpoint {
            path: meta.clone(),
            msg: format!(
                "was made with a different {what} than this run's; pre-train with the same config"
            ),
        };
        if checkpoint.layout.modalities != layout.modalities
            || checkpoint.layout.sequences != layout.sequences
        {
            return Err(mismatch("input layout (modalities, widths)"));
        }
        // Pre-training has no labels, so its checkpoints have no per-modality
        // heads: a run with heads starts them fresh on top of the rest.
        let fresh_heads = spec.mode_heads && !checkpoint.config.model.mode_heads;
        let headless = crate::ModelSpec {
            mode_heads: false,
            ..spec.clone()
        };
        if checkpoint.config.model != *spec && !(fresh_heads && checkpoint.config.model == headless)
        {
            return Err(mismatch("[model] section"));
        }
        let (weights, record) = checkpoint.verified_record(dir)?;
        let load = |model: EmotionModel| {
            model
                .try_load_record(record)
                .map_err(|e| Error::Checkpoint {
                    path: weights,
                    msg: e.to_string(),
                })
        };
        if fresh_heads {
            let (body, heads) = model.split_mode_heads();
            Ok(load(body)?.with_mode_heads(heads))
        } else {
            load(model)
        }
    }

    /// The weights record of `dir`, after checking the file's SHA-256
    /// against the one recorded at save time.
    fn verified_record(&self, dir: &Path) -> Result<(PathBuf, ModuleRecord)> {
        let weights = dir.join(WEIGHTS_FILE);
        match &self.weights_sha256 {
            Some(expected) => {
                let actual = mmer_core::atomic::file_sha256(&weights)?;
                if actual != *expected {
                    return Err(Error::Checkpoint {
                        path: weights,
                        msg: format!(
                            "is damaged: its SHA-256 is {actual}, checkpoint.json recorded {expected}"
                        ),
                    });
                }
            }
            None => tracing::warn!(
                path = %weights.display(),
                "schema-1 checkpoint: no checksum recorded, the weights cannot be verified"
            ),
        }
        let record = ModuleRecord::load(&weights).map_err(|e| Error::Checkpoint {
            path: weights.clone(),
            msg: e.to_string(),
        })?;
        Ok((weights, record))
    }

    /// Reads a checkpoint directory and rebuilds the model on the CPU.
    ///
    /// # Errors
    /// Missing files, an unknown schema, or weights that do not fit the config.
    pub fn load(dir: &Path) -> Result<(Self, EmotionModel)> {
        let loaded = Self::load_model(dir)?;
        if loaded.0.config.finetune.is_some() {
            // Its model reads the fine-tuned layers' output, not the frozen
            // features this caller would give it: refuse rather than score
            // the wrong inputs.
            return Err(Error::Checkpoint {
                path: dir.join(META_FILE),
                msg: "a fine-tuned model ([train.finetune]) reads its own encoder layers' output: use `mmer predict` (or serve, Python), `mmer eval` or `mmer robustness`, which run them".into(),
            });
        }
        Ok(loaded)
    }

    /// The fine-tuned encoder layers of a `[train.finetune]` checkpoint in
    /// `dir`, loaded into `layers` (built by the caller from the installed
    /// encoder, the same layers), after checking `text_encoder.bpk`'s
    /// SHA-256.
    ///
    /// # Errors
    /// Not a fine-tuned checkpoint, a missing or damaged file, weights that
    /// do not fit `layers`.
    pub fn load_encoder_into(&self, dir: &Path, layers: TextEncoder) -> Result<TextEncoder> {
        let path = dir.join(ENCODER_FILE);
        let expected = self
            .encoder_sha256
            .as_ref()
            .ok_or_else(|| Error::Checkpoint {
                path: dir.join(META_FILE),
                msg: "records no fine-tuned encoder layers".into(),
            })?;
        let actual = mmer_core::atomic::file_sha256(&path)?;
        if actual != *expected {
            return Err(Error::Checkpoint {
                path,
                msg: format!(
                    "is damaged: its SHA-256 is {actual}, checkpoint.json recorded {expected}"
                ),
            });
        }
        let record = ModuleRecord::load(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        layers
            .try_load_record(record)
            .map_err(|e| Error::Checkpoint {
                path,
                msg: e.to_string(),
            })
    }

    /// [`Checkpoint::load`] for callers that run a fine-tuned model's
    /// encoder layers themselves ([`Checkpoint::load_encoder_into`]):
    /// every checkpoint loads.
    ///
    /// # Errors
    /// As [`Checkpoint::load`], fine-tuned models aside.
    pub fn load_model(dir: &Path) -> Result<(Self, EmotionModel)> {
        let (_, checkpoint) = Self::read_meta(dir)?;
        let (weights, record) = checkpoint.verified_record(dir)?;
        let device = Device::flex();
        let model = checkpoint
            .config
            .model
            .model_config(checkpoint.layout.widths(), checkpoint.labels.num_classes())
            .init(&device)
            .try_load_record(record)
            .map_err(|e| Error::Checkpoint {
                path: weights,
                msg: e.to_string(),
            })?;
        Ok((checkpoint, model))
    }

    /// Metrics of the model on labelled dialogues.
    ///
    /// # Errors
    /// Missing modalities, mismatched widths, a non-finite probability, or
    /// no labelled turn.
    pub fn evaluate(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<mmer_eval::ClassificationReport> {
        let (encoded, probs) = self.probabilities(model, dialogues)?;
        crate::trainer::report(&encoded, &probs, &self.labels)
    }

    /// Per-utterance class probabilities of `dialogues`, checked finite.
    fn probabilities(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<(Vec<EncodedDialogue>, Vec<DialogueProbabilities>)> {
        let encoded = encode(dialogues, &self.layout)?;
        let probs = predict_probabilities(model, &encoded, &self.layout, 32, &Device::flex());
        for (d, dialogue_probs) in dialogues.iter().zip(&probs) {
            for (u, p) in d.utterances.iter().zip(dialogue_probs) {
                if p.iter().any(|x| !x.is_finite()) {
                    return Err(Error::NonFinite {
                        utterance: u.id.clone(),
                    });
                }
            }
        }
        Ok((encoded, probs))
    }

    /// Per-turn label probabilities of `dialogues` (`[dialogue][turn][class]`,
    /// label-space order), checked finite: the softmax of the logits for a
    /// single-label model, each label's own sigmoid for a multi-label one
    /// (what its training loss and thresholds read).
    ///
    /// # Errors
    /// As [`Checkpoint::evaluate`], less the need for labelled turns.
    pub fn label_probabilities(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<Vec<DialogueProbabilities>> {
        if !self.labels.multi_label {
            return Ok(self.probabilities(model, dialogues)?.1);
        }
        let encoded = encode(dialogues, &self.layout)?;
        let mut probs = vec![Vec::new(); encoded.len()];
        crate::trainer::predict_with(
            &encoded,
            &self.layout,
            32,
            &Device::flex(),
            |batch, chunk| {
                let p = burn::tensor::activation::sigmoid(model.forward(&batch.input));
                crate::trainer::scatter(&p, chunk, &encoded, &mut probs);
            },
        );
        for (d, dialogue_probs) in dialogues.iter().zip(&probs) {
            for (u, p) in d.utterances.iter().zip(dialogue_probs) {
                if p.iter().any(|x| !x.is_finite()) {
                    return Err(Error::NonFinite {
                        utterance: u.id.clone(),
                    });
                }
            }
        }
        Ok(probs)
    }

    /// Predicts every utterance of `dialogues`.
    ///
    /// # Errors
    /// Missing modalities or mismatched widths, naming the utterance; a
    /// non-finite probability ([`Error::NonFinite`]).
    pub fn predict(&self, model: &EmotionModel, dialogues: &[Dialogue]) -> Result<Vec<Prediction>> {
        if self.labels.multi_label {
            return self.predict_label_sets(model, dialogues);
        }
        let (_, probs) = self.probabilities(model, dialogues)?;
        let mut out = Vec::new();
        for (d, dialogue_probs) in dialogues.iter().zip(probs) {
            for (u, p) in d.utterances.iter().zip(dialogue_probs) {
                let (best, confidence) = p
                    .iter()
                    .copied()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or((0, 0.0));
                out.push(Prediction {
                    dialogue: d.id.clone(),
                    utterance: u.id.clone(),
                    turn: u.turn.unwrap_or(u.index as u64),
                    speaker: u.speaker.clone(),
                    text: u.text.clone(),
                    emotion: self.labels.name_of(best).to_string(),
                    confidence,
                    probabilities: ClassProbabilities(
                        self.labels.classes.iter().cloned().zip(p).collect(),
                    ),
                    gold: u
                        .label
                        .as_ref()
                        .and_then(|l| l.single())
                        .map(|c| self.labels.name_of(c).to_string()),
                });
            }
        }
        Ok(out)
    }
}

impl Checkpoint {
    /// A multi-label model's scores on the labelled turns of `dialogues`,
    /// decided at 0.5 and at the checkpoint's thresholds (0.5 without
    /// them).
    ///
    /// # Errors
    /// A single-label checkpoint, missing modalities, mismatched widths, a
    /// non-finite probability, or no labelled turn.
    pub fn evaluate_multi_label(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<crate::multi_label::HeadScores> {
        if !self.labels.multi_label {
            return Err(Error::Data(format!(
                "the label set {} is single-label: use Checkpoint::evaluate",
                self.labels.name
            )));
        }
        let probs = self.label_probabilities(model, dialogues)?;
        let (mut gold, mut rows) = (Vec::new(), Vec::new());
        for (d, dialogue_probs) in dialogues.iter().zip(probs) {
            for (u, p) in d.utterances.iter().zip(dialogue_probs) {
                if let Some(Label::Multi(bits)) = &u.label {
                    gold.push(bits.clone());
                    rows.push(p);
                }
            }
        }
        let n = self.labels.num_classes();
        let thresholds = self.thresholds.clone().unwrap_or_else(|| vec![0.5; n]);
        crate::multi_label::score_head(&gold, &rows, n, &thresholds)
    }

    /// [`Checkpoint::predict`] of a multi-label model: `emotion` is the
    /// set of labels whose probability reaches its threshold, in label
    /// order, joined by [`LabelSpace::LIST_SEPARATOR`] (empty for none);
    /// `confidence` is the model's probability of exactly that set,
    /// `Π_l p_l` over predicted labels × `Π_l (1 − p_l)` over the others
    /// (its labels are independent Bernoullis); `gold` is the gold set,
    /// written the same way.
    fn predict_label_sets(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<Vec<Prediction>> {
        let probs = self.label_probabilities(model, dialogues)?;
        let n = self.labels.num_classes();
        let thresholds = self.thresholds.clone().unwrap_or_else(|| vec![0.5; n]);
        let separator = LabelSpace::LIST_SEPARATOR.to_string();
        let set = |on: &mut dyn Iterator<Item = bool>| {
            on.zip(&self.labels.classes)
                .filter_map(|(on, class)| on.then_some(class.as_str()))
                .collect::<Vec<_>>()
                .join(&separator)
        };
        let mut out = Vec::new();
        for (d, dialogue_probs) in dialogues.iter().zip(probs) {
            for (u, p) in d.utterances.iter().zip(dialogue_probs) {
                let decided: Vec<bool> = p.iter().zip(&thresholds).map(|(p, t)| p >= t).collect();
                let confidence = p
                    .iter()
                    .zip(&decided)
                    .map(|(&p, &on)| if on { p } else { 1.0 - p })
                    .product();
                out.push(Prediction {
                    dialogue: d.id.clone(),
                    utterance: u.id.clone(),
                    turn: u.turn.unwrap_or(u.index as u64),
                    speaker: u.speaker.clone(),
                    text: u.text.clone(),
                    emotion: set(&mut decided.iter().copied()),
                    confidence,
                    probabilities: ClassProbabilities(
                        self.labels.classes.iter().cloned().zip(p).collect(),
                    ),
                    gold: match &u.label {
                        Some(Label::Multi(bits)) => Some(set(&mut bits.iter().copied())),
                        _ => None,
                    },
                });
            }
        }
        Ok(out)
    }
}

/// Class name → probability, in label-space order; a JSON object
/// (`{"neutral": 0.61, "joy": 0.2, …}`) that keeps that order.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassProbabilities(pub Vec<(String, f32)>);

impl Serialize for ClassProbabilities {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, p) in &self.0 {
            map.serialize_entry(name, p)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ClassProbabilities {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ClassProbabilities;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of class name to probability")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, f32>()? {
                    out.push(entry);
                }
                Ok(ClassProbabilities(out))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
