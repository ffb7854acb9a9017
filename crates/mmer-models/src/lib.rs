//! burn modules of mmer.
//!
//! Owns the learnable parts — recurrent blocks, the dialogue + speaker
//! context of AMuSE (thesis §3.1, DESIGN §3), the multimodal attention
//! network and adaptive fusion, the classifiers and the losses, and the
//! trainable copy of the text encoder's layers ([`text_encoder`]) — and nothing
//! else: models take tensors and never open a file. Batching from corpora
//! and the training loop live in `mmer-train`.

pub mod blocks;
pub mod erc;
pub mod loss;
pub mod multi_label_loss;
pub mod multimodal;
pub mod nce;
pub mod text_encoder;

pub use erc::{ContextMode, ErcModel, ErcModelConfig};
pub use multimodal::{
    DialogueBatch, EmotionModel, EmotionModelConfig, Fusion, ManResidual, ModelSpec, Pooling,
    UtteranceInput,
};
