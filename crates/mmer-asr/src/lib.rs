//! Speech recognition for mmer: Whisper on candle, from 16 kHz mono samples
//! to timed segments, then turns.
//!
//! - [`mel`]: the log-mel front end, as faster-whisper computes it;
//! - [`model`]: loading an installed model (`tiny.en`, `base`; weights from
//!   `scripts/setup.sh`, never downloaded at run time);
//! - [`decode`]: decoding with Whisper's timestamp rules, faster-whisper's
//!   temperature fallback on repetitive or unlikely output, and the 30 s
//!   window loop; at temperature 0 equal token for token to CTranslate2 (see
//!   `tests/parity.rs` and `scripts/whisper_reference.py`);
//! - [`turns`]: segments → turns at pauses;
//! - [`wer`]: word error rate, to measure it.

pub mod decode;
pub mod error;
pub mod mel;
pub mod model;
mod net;
pub mod turns;
pub mod wer;
mod zlib;

pub use decode::{DecodeOptions, Segment, Transcript, WindowDecode};
pub use error::{Error, Result};
pub use model::{AsrModel, Whisper};
pub use turns::{Turn, TurnOptions, turns_from_segments};
pub use wer::WerCounts;
