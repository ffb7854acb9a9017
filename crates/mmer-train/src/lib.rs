//! Training and evaluation of mmer's models.
//!
//! Owns everything between a validated [`mmer_core::Corpus`] and a trained
//! checkpoint: turning dialogues into padded batches ([`batcher`]), the
//! training loop with early stopping on the *validation* weighted F1
//! ([`trainer`]; multi-label sets: the validation macro F1, with per-label
//! thresholds tuned on validation, [`multi_label`]), self-supervised pre-training of the multimodal encoders
//! ([`pretrain`]), fine-tuning the text encoder's top layers with the
//! model ([`finetune`]), checkpoints that rebuild the model for `eval` / `predict`
//! ([`checkpoint`]), and the experiment configuration ([`config`]).
//! Reading files and computing features happen upstream.

pub mod batcher;
pub mod checkpoint;
pub mod config;
mod error;
pub mod finetune;
pub mod multi_label;
pub mod pretrain;
pub mod trainer;

pub use checkpoint::{Checkpoint, ClassProbabilities, Prediction};
pub use config::{ClassWeighting, FineTuneSpec, ModelSpec, PretrainSpec, TrainConfig};
pub use error::{Error, Result};
pub use multi_label::{MultiLabelOutcome, train_seed_multi_label};
pub use trainer::{SeedOutcome, train_seed};

/// Serialises the tests that train: burn's CPU backend draws every
/// parameter initialisation from one process-wide generator, so two tests
/// training at once would interleave their draws and a "same seed, same
/// model" check would fail by chance.
#[cfg(test)]
pub(crate) fn training_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
