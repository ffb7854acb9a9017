//! Reusable blocks: a length-aware bidirectional LSTM, the dialogue +
//! speaker context of AMuSE and a fast dropout.

mod bilstm;
mod context;
mod dropout;

pub use bilstm::{MaskedBiLstm, MaskedBiLstmConfig, SequenceIndex};
pub use context::{ContextBlock, ContextBlockConfig, SpeakerIndex};
pub use dropout::{backend_seed, dropout, fast_dropout, run_shards, with_dropout_stream};
