//! The experiment configuration: one TOML file reproduces a run.

use std::path::PathBuf;

use mmer_core::Modality;
use mmer_models::erc::ContextMode;
use mmer_models::loss::LossKind;
use mmer_models::{EmotionModelConfig, Fusion, ManResidual, Pooling};
use serde::{Deserialize, Serialize};

/// Model hyper-parameters (input width and classes come from the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// Modality fusion: `early` (pooled features concatenated at the input),
    /// `concat` (per-modality encoders, concatenated), `man_concat`, or
    /// `man_af` (AMuSE: MAN + Adaptive Fusion).
    pub fusion: Fusion,
    /// Bi-LSTM over each modality's frames (sequence fusions only).
    pub temporal: bool,
    /// Per-utterance pooling of each modality's encoded frames: `mean` or
    /// `attention` (learned weights; sequence fusions only).
    pub pooling: Pooling,
    /// A classifier per modality whose focal loss is averaged into the
    /// training loss (AMuSE Eq. 5; sequence fusions only).
    pub mode_heads: bool,
    /// Common width of the modality encoders (sequence fusions only).
    pub d_modality: usize,
    /// MAN layers per central stack (AMuSE: 4).
    pub man_layers: usize,
    /// MAN attention heads (must divide `d_modality`).
    pub man_heads: usize,
    /// How MAN's sub-layers join the residual stream: `post_norm` (the
    /// transformer layer) or `rezero` (learned scales from 0: MAN starts as
    /// the identity).
    pub man_residual: ManResidual,
    /// Context streams: `none` (utterance MLP), `dialogue`, `dialogue_speaker` (AMuSE).
    pub context: ContextMode,
    /// Utterance representation width.
    pub d_model: usize,
    /// Context LSTM hidden width per direction (thesis: 100).
    pub d_hidden: usize,
    /// Dropout.
    pub dropout: f64,
    /// Dropout on each modality's raw frames in the sequence fusions (early
    /// fusion drops its input at `dropout`). 0 = the recorded AMuSE runs;
    /// frozen text embeddings want the foundation's 0.3.
    pub input_dropout: f64,
    /// Dropout on the context streams' output (0 = the foundation model).
    pub context_dropout: f64,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            fusion: Fusion::Early,
            temporal: true,
            pooling: Pooling::Mean,
            mode_heads: false,
            d_modality: 64,
            man_layers: 4,
            man_heads: 4,
            man_residual: ManResidual::PostNorm,
            context: ContextMode::DialogueSpeaker,
            d_model: 256,
            d_hidden: 100,
            dropout: 0.3,
            input_dropout: 0.0,
            context_dropout: 0.0,
        }
    }
}

impl ModelSpec {
    /// The burn config for given modality widths and classes.
    pub fn model_config(
        &self,
        modality_widths: Vec<usize>,
        num_classes: usize,
    ) -> EmotionModelConfig {
        EmotionModelConfig::new(modality_widths, num_classes)
            .with_fusion(self.fusion)
            .with_temporal(self.temporal)
            .with_pooling(self.pooling)
            .with_mode_heads(self.mode_heads)
            .with_d_modality(self.d_modality)
            .with_man_layers(self.man_layers)
            .with_man_heads(self.man_heads)
            .with_man_residual(self.man_residual)
            .with_context(self.context)
            .with_d_model(self.d_model)
            .with_d_hidden(self.d_hidden)
            .with_dropout(self.dropout)
            .with_input_dropout(self.input_dropout)
            .with_context_dropout(self.context_dropout)
    }
}

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
    /// Loss function (AMuSE: focal, γ = 1).
    pub loss: LossKind,
    /// Class weighting of the loss.
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
