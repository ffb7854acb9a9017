//! burn modules of mmer.
//!
//! Owns the learnable parts — recurrent blocks, the dialogue + speaker
//! context of AMuSE (thesis §3.1, DESIGN §3), the classifiers and the
//! losses — and nothing else: models take tensors and never open a file.
//! Batching from corpora and the training loop live in `mmer-train`.

pub mod blocks;
pub mod erc;
pub mod loss;

pub use erc::{ContextMode, DialogueBatch, ErcModel, ErcModelConfig};
