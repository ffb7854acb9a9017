//! One module per verb.

pub mod analyze;
pub mod bench;
pub mod data;
pub mod demo;
pub mod eval;
pub mod extract;
pub mod predict;
pub mod pretrain;
pub mod train;
pub mod transcribe;
