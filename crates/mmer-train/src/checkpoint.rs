//! Checkpoints: `checkpoint.json` (everything needed to rebuild the model and
//! its input layout) next to `model.bpk` (burnpack weights of the best
//! validation epoch). `eval` and `predict` start from here.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use mmer_core::{Dialogue, LabelSpace};
use mmer_models::EmotionModel;
use serde::{Deserialize, Serialize};

use crate::batcher::{FeatureLayout, encode};
use crate::error::io_err;
use crate::trainer::predict_probabilities;
use crate::{Error, Result, TrainConfig};

const SCHEMA_VERSION: u32 = 1;
const META_FILE: &str = "checkpoint.json";
const WEIGHTS_FILE: &str = "model.bpk";

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
}

/// The prediction for one utterance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    /// Dialogue id.
    pub dialogue: String,
    /// Utterance id.
    pub utterance: String,
    /// Turn index.
    pub turn: usize,
    /// Speaker.
    pub speaker: String,
    /// Transcript, when known.
    pub text: Option<String>,
    /// Predicted class name.
    pub emotion: String,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// Probability per class, in label-space order.
    pub probabilities: Vec<f32>,
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
        }
    }

    /// Writes `checkpoint.json` and `model.bpk` into `dir`.
    ///
    /// # Errors
    /// I/O or serialisation failures naming the file.
    pub fn save(&self, model: &EmotionModel, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let meta = dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Checkpoint {
            path: meta.clone(),
            msg: e.to_string(),
        })?;
        std::fs::write(&meta, json).map_err(io_err(&meta))?;
        let weights = dir.join(WEIGHTS_FILE);
        model
            .clone()
            .save_file(&weights)
            .map_err(|e| Error::Checkpoint {
                path: weights,
                msg: e.to_string(),
            })
    }

    /// `checkpoint.json` of `dir`, with its path.
    fn read_meta(dir: &Path) -> Result<(PathBuf, Checkpoint)> {
        let meta = dir.join(META_FILE);
        let bytes = std::fs::read(&meta).map_err(io_err(&meta))?;
        let checkpoint = serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path: meta.clone(),
            msg: e.to_string(),
        })?;
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
        let weights = dir.join(WEIGHTS_FILE);
        let record = ModuleRecord::load(&weights).map_err(|e| Error::Checkpoint {
            path: weights.clone(),
            msg: e.to_string(),
        })?;
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

    /// Reads a checkpoint directory and rebuilds the model on the CPU.
    ///
    /// # Errors
    /// Missing files, an unknown schema, or weights that do not fit the config.
    pub fn load(dir: &Path) -> Result<(Self, EmotionModel)> {
        let (meta, checkpoint) = Self::read_meta(dir)?;
        if checkpoint.schema_version != SCHEMA_VERSION {
            return Err(Error::Checkpoint {
                path: meta,
                msg: format!(
                    "schema version {} (this mmer reads {SCHEMA_VERSION})",
                    checkpoint.schema_version
                ),
            });
        }
        let weights: PathBuf = dir.join(WEIGHTS_FILE);
        let record = ModuleRecord::load(&weights).map_err(|e| Error::Checkpoint {
            path: weights.clone(),
            msg: e.to_string(),
        })?;
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
    /// Missing modalities, mismatched widths, or no labelled turn.
    pub fn evaluate(
        &self,
        model: &EmotionModel,
        dialogues: &[Dialogue],
    ) -> Result<mmer_eval::ClassificationReport> {
        let encoded = encode(dialogues, &self.layout)?;
        crate::trainer::evaluate(model, &encoded, &self.labels, &self.layout, &Device::flex())
    }

    /// Predicts every utterance of `dialogues`.
    ///
    /// # Errors
    /// Missing modalities or mismatched widths, naming the utterance.
    pub fn predict(&self, model: &EmotionModel, dialogues: &[Dialogue]) -> Result<Vec<Prediction>> {
        let encoded = encode(dialogues, &self.layout)?;
        let probs = predict_probabilities(model, &encoded, &self.layout, 32, &Device::flex());
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
                    turn: u.index,
                    speaker: u.speaker.clone(),
                    text: u.text.clone(),
                    emotion: self.labels.name_of(best).to_string(),
                    confidence,
                    probabilities: p,
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
