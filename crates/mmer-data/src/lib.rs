//! Dataset loaders: each turns a dataset's own files into a validated
//! [`mmer_core::Corpus`], and every failure names the file, line and id.
//!
//! Owns file formats only; no features are computed here (that is
//! `mmer-text`) and nothing here knows about models.

pub mod conversation;
mod csv_quotes;
pub mod elderreact;
mod error;
pub mod feature_pickle;
pub mod iemocap;
pub mod meld;
pub mod mosei;
pub mod pickle;
pub mod synthetic;
pub mod synthetic_multi;

pub use error::{Error, Result};
