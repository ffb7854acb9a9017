//! Training and evaluation of mmer's models.
//!
//! Owns everything between a validated [`mmer_core::Corpus`] and a trained
//! checkpoint: turning dialogues into padded batches ([`batcher`]), the
//! training loop with early stopping on the *validation* weighted F1
//! ([`trainer`]), self-supervised pre-training of the multimodal encoders
//! ([`pretrain`]), checkpoints that rebuild the model for `eval` / `predict`
//! ([`checkpoint`]), and the experiment configuration ([`config`]).
//! Reading files and computing features happen upstream.

pub mod batcher;
pub mod checkpoint;
pub mod config;
mod error;
pub mod pretrain;
pub mod trainer;

pub use checkpoint::{Checkpoint, ClassProbabilities, Prediction};
pub use config::{ClassWeighting, ModelSpec, PretrainSpec, TrainConfig};
pub use error::{Error, Result};
pub use trainer::{SeedOutcome, ensure_single_label, train_seed};
