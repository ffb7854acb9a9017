//! Domain types of mmer, shared by every stage of the pipeline.
//!
//! This crate owns the data model of DESIGN §1 — [`Corpus`] → [`Split`] →
//! [`Dialogue`] → [`Utterance`] — the [`Modality`] and [`LabelSpace`]
//! vocabularies, and the on-disk format of the feature store
//! ([`store`]). It has no ML framework and no media dependency: loaders
//! live in `mmer-data`, extraction in `mmer-features`, models in
//! `mmer-models`.

mod corpus;
mod error;
mod label;
mod modality;
pub mod store;

pub use corpus::{Corpus, Dialogue, Features, Split, Utterance};
pub use error::{Error, Result};
pub use label::{Label, LabelSpace};
pub use modality::Modality;
