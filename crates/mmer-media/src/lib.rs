//! Media decoding for mmer, and the extraction stage that turns a user's
//! media files into per-utterance feature sequences (DESIGN §2).
//!
//! This crate owns:
//! - running the `ffmpeg` / `ffprobe` programs ([`Ffmpeg`]): what a file
//!   holds ([`Ffmpeg::probe`] → [`MediaInfo`]), its audio as 16 kHz mono
//!   f32 PCM ([`Ffmpeg::decode_audio`] → [`DecodedAudio`] with an
//!   [`AudioState`]: absent, empty, silent or present), and k RGB keyframes
//!   ([`Ffmpeg::keyframes`] → [`RgbFrame`]) for the visual extractors;
//! - the extraction stage ([`extract::run`]): inputs (files, folders,
//!   conversation files; [`inputs::collect`]) → one record per utterance in
//!   the media store ([`mmer_core::media_store`]), in parallel, resumable,
//!   with a per-file [`extract::RunReport`];
//! - the Audio extractor ([`audio_features::AudioFeatures`]): mmer-audio's
//!   LLDs pooled into 100 ms windows plus utterance functionals.
//!
//! Visual extractors plug in through [`extract::StreamExtractor`].
//!
//! It leaves to others: the DSP (mmer-audio), face detection and expression
//! features (mmer-vision, which consumes [`RgbFrame`]s), text embeddings
//! (mmer-text) and the store format (mmer-core). No burn, no candle,
//! no libav bindings: ffmpeg runs as a child process (see [`ffmpeg`]).

mod audio;
pub mod audio_features;
pub mod bench;
mod error;
pub mod extract;
pub mod ffmpeg;
mod frames;
pub mod inputs;
mod probe;

pub use audio::{AudioState, DecodedAudio};
pub use error::{Error, Result};
pub use ffmpeg::Ffmpeg;
pub use frames::{DEFAULT_SCENE_THRESHOLD, KeyframeMode, KeyframeOptions, RgbFrame, capped_size};
pub use probe::{AudioStream, MediaInfo, VideoStream};
