//! The HTTP server of mmer (`mmer serve`): a model loaded once, behind a
//! JSON API in the conventions of text-embeddings-inference.
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /v1/emotions` | `{"turns": [...]}` → `{"predictions": [...]}` |
//! | `POST /v1/analyze` | (`--media`) a recording's bytes → `mmer analyze --format json`'s answer |
//! | `GET /v1/stream` | (`--media`) WebSocket: 16 kHz PCM in, each turn's transcript and emotion out as the turn closes |
//! | `GET /health` | 200 `{"status": "ok"}`; 503 once shutting down |
//! | `GET /info` | the model ([`ModelInfo`]): directory, weights' SHA-256, label set, text encoder, modalities, version, limits |
//! | `GET /metrics` | Prometheus text: requests by endpoint and status, turns predicted, latency histograms, queue occupancy |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of this API |
//!
//! `POST /v1/emotions` takes the records of a conversation file as one
//! JSON list (the [`request`] module states the rules) and answers one
//! prediction per turn with the fields of `mmer predict --format jsonl`:
//! `dialogue`, `utterance`, `turn`, `speaker`, `text`, `emotion`,
//! `confidence`, `probabilities` (class → probability, in the model's
//! class order) and `gold` (the request's label, if any).
//!
//! A failed request is answered `{"error": "...", "error_type": "..."}`
//! ([`ApiError`], logged): 422 `Validation` (not the documented JSON, an
//! invalid turn, named `turns[i]`, or a turn the model cannot read), 413
//! `PayloadTooLarge` (body over `--max-body-bytes`, more turns than
//! `--max-turns`), 429 `Overloaded` (`--queue` requests already admitted),
//! 503 `Unhealthy` (shutting down), 504 `Timeout` (past `--timeout-ms`:
//! 504 rather than 408, since the server, not the client, was slow), 500
//! `Backend`, 404 / 405 for unknown endpoints and methods.
//!
//! The server opens no file a request names: the model is the one given at
//! startup, and the media keys of the conversation format are refused; an
//! upload is written to a temporary file of the server's naming. The
//! media endpoints are described in the `media` module (private; the
//! OpenAPI document and the README describe them too).
//!
//! - [`config`]: the settings and their defaults ([`ServeConfig`]).
//! - [`request`]: the request body read into dialogues.
//! - [`model`]: what the server needs of a model ([`Predict`]) and
//!   `/info`'s answer.
//! - [`metrics`]: the counters and their Prometheus text.
//! - [`server`]: routes, the bounded queue, timeouts, graceful shutdown
//!   ([`Server`]).
//!
//! Dependencies point down: run ← serve ← cli.

mod batch;
pub mod config;
mod error;
mod media;
pub mod metrics;
pub mod model;
pub mod request;
pub mod server;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmer_run::analyze::{AnalyzeConfig, Analyzer};

pub use config::ServeConfig;
pub use error::{ApiError, Error, ErrorType, Result};
pub use model::{ModelInfo, Predict};
pub use server::{Server, shutdown_signal};

/// Loads the model in `model_dir` (a `seed-<k>` directory of a run, its
/// text encoder from `$MMER_MODELS_DIR`, else `./models`) and serves it
/// with `config` until Ctrl-C or SIGTERM, then finishes the requests in
/// flight. Blocks.
///
/// # Errors
/// [`Error::Config`] for a setting that admits nothing, [`Error::Model`]
/// for a model that does not load, [`Error::Bind`] for an address that
/// cannot be listened on, [`Error::Io`] when the runtime cannot start or
/// the signal handlers cannot be registered.
pub fn run(model_dir: &Path, config: ServeConfig) -> Result<()> {
    config.validate()?;
    let started = Instant::now();
    let predictor = Arc::new(mmer_run::predict::Predictor::load(model_dir)?);
    tracing::info!(
        model = %model_dir.display(),
        seconds = started.elapsed().as_secs_f64(),
        "model loaded"
    );
    let media = if config.media {
        let started = Instant::now();
        let analyze = AnalyzeConfig {
            text_model: model_dir.to_path_buf(),
            models_dir: mmer_text::default_models_dir(),
            ..AnalyzeConfig::default()
        };
        // The media endpoints read text with the model /v1/emotions serves:
        // one copy in memory.
        let analyzer = Analyzer::with_text_model(
            analyze,
            mmer_media::Ffmpeg::from_env(),
            Arc::clone(&predictor),
        )?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "media models loaded (speech, face, Whisper): /v1/analyze and /v1/stream are served"
        );
        Some(Arc::new(analyzer))
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "starting the async runtime",
            source,
        })?;
    let result = runtime.block_on(async {
        let signal = shutdown_signal()?;
        let server = Server::bind(predictor, media, model_dir, config).await?;
        server.serve(signal).await
    });
    // Every request has been answered; a prediction still running belongs
    // to a request that timed out, and is not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}
