//! Reusable blocks: a length-aware bidirectional LSTM and the dialogue +
//! speaker context of AMuSE.

mod bilstm;
mod context;

pub use bilstm::{MaskedBiLstm, MaskedBiLstmConfig, SequenceIndex};
pub use context::{ContextBlock, ContextBlockConfig, SpeakerIndex};
