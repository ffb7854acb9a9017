//! What the server asks of a loaded model ([`Predict`], which
//! [`Predictor`] is), and what `GET /info` says about it ([`ModelInfo`]).

use std::path::Path;

use mmer_core::Dialogue;
use mmer_run::predict::{ModelSummary, Predictor};
use mmer_train::{Checkpoint, Prediction};
use serde::Serialize;

use crate::config::ServeConfig;

/// A model loaded once and shared by every request: [`Predictor`] in
/// `mmer serve`; a test may wrap one (to hold a request in flight).
pub trait Predict: Send + Sync + 'static {
    /// The model's checkpoint metadata (label space, layout, encoder).
    fn checkpoint(&self) -> &Checkpoint;

    /// The emotion of every turn of `dialogues`. Blocking and CPU-bound:
    /// the server calls it on a blocking thread, never on the async
    /// executor.
    ///
    /// # Errors
    /// A turn the model cannot read, or a failure of the model.
    fn predict(&self, dialogues: Vec<Dialogue>) -> Result<Vec<Prediction>, Box<mmer_run::Error>>;
}

impl Predict for Predictor {
    fn checkpoint(&self) -> &Checkpoint {
        Predictor::checkpoint(self)
    }

    fn predict(&self, dialogues: Vec<Dialogue>) -> Result<Vec<Prediction>, Box<mmer_run::Error>> {
        Predictor::predict(self, dialogues).map_err(Box::new)
    }
}

/// The body of `GET /info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The model: directory (as given to `--model`), weights' SHA-256,
    /// corpus, seed, label set, text encoder, modalities, version.
    #[serde(flatten)]
    pub model: ModelSummary,
    /// `--max-body-bytes`.
    pub max_body_bytes: usize,
    /// `--max-turns`.
    pub max_turns: usize,
    /// `--queue`.
    pub max_concurrent_requests: usize,
    /// `--workers`.
    pub workers: usize,
    /// `--max-batch-turns`.
    pub max_batch_turns: usize,
    /// `--timeout-ms`.
    pub timeout_ms: u64,
    /// `--media`: whether `POST /v1/analyze` and `/v1/stream` are served.
    pub media: bool,
    /// `--max-upload-bytes`.
    pub max_upload_bytes: usize,
    /// `--max-media-s`.
    pub max_media_s: f64,
    /// `--max-streams`.
    pub max_streams: usize,
}

impl ModelInfo {
    /// What `/info` says of `checkpoint`, loaded from `model_dir`, served
    /// with `config`, with or without the `media` endpoints.
    pub fn new(
        model_dir: &Path,
        checkpoint: &Checkpoint,
        media: bool,
        config: &ServeConfig,
    ) -> Self {
        Self {
            model: ModelSummary::new(model_dir, checkpoint),
            max_body_bytes: config.max_body_bytes,
            max_turns: config.max_turns,
            max_concurrent_requests: config.queue,
            workers: config.workers,
            max_batch_turns: config.max_batch_turns,
            timeout_ms: config.timeout_ms,
            media,
            max_upload_bytes: config.max_upload_bytes,
            max_media_s: config.max_media_s,
            max_streams: config.max_streams,
        }
    }
}
