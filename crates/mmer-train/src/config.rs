//! The experiment configuration: one TOML file reproduces a run.

use std::path::PathBuf;

use mmer_core::Modality;
pub use mmer_models::ModelSpec;
use mmer_models::loss::LossKind;
use serde::{Deserialize, Serialize};

/// Per-class loss weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ClassWeighting {
    /// All classes weigh 1.
    None,
    /// Class-balanced weights from the effective number of samples
    /// (Cui et al., CVPR 2019): `w_c ∝ (1 − β) / (1 − β^{n_c})`, scaled to mean 1.
    EffectiveNumber {
        /// β in [0, 1); 0.999–0.9999 are the paper's values.
        beta: f64,
    },
}

/// Self-supervised pre-training of the encoders and MAN with the
/// cross-modal NCE (AMuSE §III-E1; `mmer pretrain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainSpec {
    /// Maximum epochs over the training split (labels unused).
    pub max_epochs: usize,
    /// Stop after this many epochs without a lower validation NCE loss.
    pub patience: usize,
    /// Negatives drawn from the memory bank per batch (AMuSE: 1,024).
    pub negatives: usize,
    /// Softmax temperature τ (AMuSE: 0.07).
    pub temperature: f64,
    /// Memory-bank momentum: `m ← normalise(μ m + (1 − μ) z)` (AVID: 0.9).
    pub momentum: f64,
}

impl Default for PretrainSpec {
    fn default() -> Self {
        Self {
            max_epochs: 30,
            patience: 5,
            negatives: 1024,
            temperature: 0.07,
            momentum: 0.9,
        }
    }
}

/// Everything that determines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Feature modalities fed to the model, concatenated in this order.
    pub modalities: Vec<Modality>,
    /// Model hyper-parameters.
    pub model: ModelSpec,
    /// Loss function of single-label sets (AMuSE: focal, γ = 1).
    /// Multi-label sets train with binary cross-entropy per label
    /// (`mmer_train::multi_label`), whatever this says.
    pub loss: LossKind,
    /// Class weighting of the loss (single-label sets only).
    pub class_weighting: ClassWeighting,
    /// Adam learning rate (AMuSE: 5e-4).
    pub learning_rate: f64,
    /// Adam L2 weight decay (AMuSE: 2e-4).
    pub weight_decay: f64,
    /// Dialogues per batch.
    pub batch_size: usize,
    /// Maximum epochs.
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation weighted F1.
    pub patience: usize,
    /// Never stop before this epoch: models that first sit on a plateau
    /// (MAN learning to align modalities) would otherwise stop early.
    pub min_epochs: usize,
    /// Seeds; one model is trained per seed.
    pub seeds: Vec<u64>,
    /// Start from the weights `mmer pretrain` wrote to this directory
    /// (relative paths are relative to the working directory).
    pub init_from: Option<PathBuf>,
    /// Pre-training settings (read by `mmer pretrain`).
    pub pretrain: PretrainSpec,
    /// Shards per batch, each trained on its own thread (1 = one thread).
    /// Part of the run's definition, not a machine setting: the shards'
    /// dropout masks come from per-shard streams, so a value trains its own
    /// (deterministic) model whatever the core count.
    pub data_parallel: usize,
    /// Fine-tune the top layers of the text encoder with the model
    /// (`[train.finetune]`; absent = frozen features, the default).
    pub finetune: Option<FineTuneSpec>,
}

/// Fine-tuning the text encoder's top layers together with the model
/// (issue 17; `mmer_train::finetune`). The frozen encoder computes the token
/// states under the trained layers once; the trained layers, the pooling
/// and the model above run in every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineTuneSpec {
    /// Encoder layers trained, counted down from the pooled layer
    /// (`data.text_layers`, e.g. 8 → layers 7 and 8 with 2).
    pub layers: usize,
    /// AdamW learning rate of the top trained layer at the end of warm-up.
    pub learning_rate: f64,
    /// Layer-wise decay: each layer below the top gets this factor more
    /// (1 = one rate for all).
    pub layer_decay: f64,
    /// Share of all steps spent warming the encoder's rate up from 0; it
    /// then falls linearly to 0 at `max_epochs`. The model above keeps
    /// `train.learning_rate`.
    pub warmup: f64,
    /// Gradient clipping of the encoder's parameters: each parameter
    /// tensor's gradient is scaled down to this L2 norm (burn's
    /// `GradientClippingConfig::Norm`); 0 = off.
    pub clip_norm: f64,
    /// Batches whose gradients are summed before each optimiser step.
    pub accumulate: usize,
    /// AdamW decoupled weight decay of the encoder's parameters.
    pub weight_decay: f64,
    /// Utterances per encoder forward pass (sorted by length to cut padding).
    pub chunk: usize,
}

impl Default for FineTuneSpec {
    fn default() -> Self {
        Self {
            layers: 2,
            learning_rate: 5e-5,
            layer_decay: 0.9,
            warmup: 0.1,
            clip_norm: 1.0,
            accumulate: 1,
            weight_decay: 0.01,
            chunk: 32,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            modalities: vec![Modality::Text],
            model: ModelSpec::default(),
            loss: LossKind::default(),
            class_weighting: ClassWeighting::None,
            learning_rate: 5e-4,
            weight_decay: 2e-4,
            batch_size: 16,
            max_epochs: 60,
            patience: 10,
            min_epochs: 0,
            seeds: vec![0, 1, 2, 3, 4],
            init_from: None,
            pretrain: PretrainSpec::default(),
            data_parallel: 1,
            finetune: None,
        }
    }
}

impl TrainConfig {
    /// Whether `other` trains the same models, its seed list aside: what
    /// `--resume` and `eval` demand of the seeds they find in a run.
    pub fn same_settings(&self, other: &TrainConfig) -> bool {
        let without_seeds = |c: &TrainConfig| TrainConfig {
            seeds: Vec::new(),
            ..c.clone()
        };
        without_seeds(self) == without_seeds(other)
    }
}

impl ClassWeighting {
    /// Weights per class from training counts (`None` for uniform).
    pub fn weights(&self, counts: &[usize]) -> Option<Vec<f32>> {
        match *self {
            ClassWeighting::None => None,
            ClassWeighting::EffectiveNumber { beta } => {
                let raw: Vec<f64> = counts
                    .iter()
                    .map(|&n| {
                        if n == 0 {
                            0.0
                        } else {
                            (1.0 - beta) / (1.0 - beta.powf(n as f64))
                        }
                    })
                    .collect();
                let present = raw.iter().filter(|w| **w > 0.0).count().max(1) as f64;
                let sum: f64 = raw.iter().sum();
                Some(raw.iter().map(|w| (w * present / sum) as f32).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_toml_and_rejects_typos() {
        let c = TrainConfig::default();
        let text = toml::to_string(&c).unwrap();
        let back: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(c, back);
        assert!(toml::from_str::<TrainConfig>("learning_rat = 0.1").is_err());
    }

    #[test]
    fn effective_number_weights_favour_rare_classes() {
        let w = ClassWeighting::EffectiveNumber { beta: 0.999 }
            .weights(&[1000, 100, 10])
            .unwrap();
        assert!(w[2] > w[1] && w[1] > w[0]);
        let mean = w.iter().sum::<f32>() / 3.0;
        assert!((mean - 1.0).abs() < 1e-5);
    }
}
