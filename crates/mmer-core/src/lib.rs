//! Domain types of mmer, shared by every stage of the pipeline.
//!
//! This crate owns the data model of DESIGN §1 — [`Corpus`] → [`Split`] →
//! [`Dialogue`] → [`Utterance`] — the [`Modality`] and [`LabelSpace`]
//! vocabularies, and the on-disk formats of the feature store: text
//! embedding tables ([`store`]) and per-utterance media feature sequences
//! ([`media_store`]) with its sharding and merging ([`sharding`]), plus two services every stage shares: writes that
//! never leave half an artefact ([`atomic`]) and progress that reaches a
//! terminal or a log ([`progress`]). It has no ML framework and no media
//! dependency: loaders live in `mmer-data`, extraction in `mmer-media`,
//! `mmer-vision` and `mmer-text` (text), models in `mmer-models`.

pub mod atomic;
mod corpus;
mod error;
mod label;
pub mod media_store;
mod modality;
mod models_dir;
pub mod progress;
pub mod sharding;
pub mod store;

pub use corpus::{Corpus, Dialogue, Features, Split, Utterance};
pub use error::{Error, Result};
pub use label::{Label, LabelSpace};
pub use modality::Modality;
pub use models_dir::{MODELS_DIR_ENV, default_models_dir};
