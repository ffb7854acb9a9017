//! The server's settings, declared once: their defaults here are the ones
//! `mmer serve --help` shows (the `clap` feature derives the flags).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::error::{Error, Result};

/// How `mmer serve` listens and how much work it admits.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ServeConfig {
    /// Address to listen on. The default is loopback only; give
    /// `0.0.0.0:8080` to accept other machines (there is no
    /// authentication: put a proxy in front).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = ServeConfig::DEFAULT_ADDR))]
    pub addr: SocketAddr,
    /// Largest request body, bytes; a larger one is answered 413.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES", default_value_t = ServeConfig::DEFAULT_MAX_BODY_BYTES))]
    pub max_body_bytes: usize,
    /// Most turns in one request; more are answered 413.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_TURNS))]
    pub max_turns: usize,
    /// Most requests admitted at once (being read, waiting for a worker or
    /// predicted); one more is answered 429 at once instead of waiting.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_QUEUE))]
    pub queue: usize,
    /// Predictions that run at once (each on its own thread); the other
    /// admitted requests wait their turn in arrival order. Prediction is
    /// CPU-bound and already multi-threaded inside, so more than 1 rarely
    /// helps on a small machine.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_WORKERS))]
    pub workers: usize,
    /// Most turns predicted in one call of the model. When a worker comes
    /// free, the requests waiting for it are predicted together, up to
    /// this many turns (a larger request goes alone), so that the text
    /// encoder fills its batches across conversations; nothing waits for a
    /// batch to fill. 1 predicts every request alone.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_BATCH_TURNS))]
    pub max_batch_turns: usize,
    /// Time a request may take from admission to its answer (reading the
    /// body, waiting for a worker, predicting), milliseconds; past it the
    /// answer is 504. A prediction already running still finishes (and
    /// keeps its place in the queue until it does): CPU work is not
    /// interrupted.
    #[cfg_attr(feature = "clap", arg(long, value_name = "MS", default_value_t = ServeConfig::DEFAULT_TIMEOUT_MS))]
    pub timeout_ms: u64,
    /// Also load the speech, face and Whisper models that ship with mmer
    /// (as `mmer analyze` does, with `--model` as the text model), which
    /// enables `POST /v1/analyze` (an uploaded recording) and the
    /// `/v1/stream` WebSocket (live 16 kHz audio). Needs ffmpeg and the
    /// models of `scripts/setup.sh`.
    #[cfg_attr(feature = "clap", arg(long))]
    pub media: bool,
    /// Largest upload to `POST /v1/analyze`, bytes; a larger one is
    /// answered 413.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES", default_value_t = ServeConfig::DEFAULT_MAX_UPLOAD_BYTES))]
    pub max_upload_bytes: usize,
    /// Longest recording `POST /v1/analyze` takes, seconds; a longer one
    /// is answered 413.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECONDS", default_value_t = ServeConfig::DEFAULT_MAX_MEDIA_S))]
    pub max_media_s: f64,
    /// Most `/v1/stream` connections open at once; one more is answered
    /// 429. Each closed turn is analysed by one of the `--workers`.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_STREAMS))]
    pub max_streams: usize,
}

impl ServeConfig {
    /// Default `addr`: loopback, port 8080.
    pub const DEFAULT_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    /// Default `max_body_bytes`: 1 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
    /// Default `max_turns`.
    pub const DEFAULT_MAX_TURNS: usize = 1024;
    /// Default `queue`.
    pub const DEFAULT_QUEUE: usize = 16;
    /// Default `workers`.
    pub const DEFAULT_WORKERS: usize = 1;
    /// Default `max_batch_turns`.
    pub const DEFAULT_MAX_BATCH_TURNS: usize = 256;
    /// Default `timeout_ms`: 30 s.
    pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
    /// Default `max_upload_bytes`: 64 MiB.
    pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 << 20;
    /// Default `max_media_s`: 10 minutes.
    pub const DEFAULT_MAX_MEDIA_S: f64 = 600.0;
    /// Default `max_streams`.
    pub const DEFAULT_MAX_STREAMS: usize = 4;

    /// The per-request time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks that every limit admits something.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting: a zero limit, or more workers
    /// than the queue admits requests.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("--max-body-bytes", self.max_body_bytes as u64),
            ("--max-turns", self.max_turns as u64),
            ("--queue", self.queue as u64),
            ("--workers", self.workers as u64),
            ("--max-batch-turns", self.max_batch_turns as u64),
            ("--timeout-ms", self.timeout_ms),
            ("--max-upload-bytes", self.max_upload_bytes as u64),
            ("--max-streams", self.max_streams as u64),
        ] {
            if value == 0 {
                return Err(Error::Config(format!("{name} must be at least 1")));
            }
        }
        if !(self.max_media_s > 0.0 && self.max_media_s.is_finite()) {
            return Err(Error::Config(format!(
                "--max-media-s must be a positive number of seconds, got {}",
                self.max_media_s
            )));
        }
        if self.workers > self.queue {
            return Err(Error::Config(format!(
                "--workers {} is more than --queue {}: a worker needs an admitted request",
                self.workers, self.queue
            )));
        }
        Ok(())
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: Self::DEFAULT_ADDR,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_turns: Self::DEFAULT_MAX_TURNS,
            queue: Self::DEFAULT_QUEUE,
            workers: Self::DEFAULT_WORKERS,
            max_batch_turns: Self::DEFAULT_MAX_BATCH_TURNS,
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
            media: false,
            max_upload_bytes: Self::DEFAULT_MAX_UPLOAD_BYTES,
            max_media_s: Self::DEFAULT_MAX_MEDIA_S,
            max_streams: Self::DEFAULT_MAX_STREAMS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_limits_are_refused() {
        ServeConfig::default().validate().unwrap();
        let zero = ServeConfig {
            queue: 0,
            ..ServeConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("--queue must be at least 1")
        );
        let more_workers = ServeConfig {
            queue: 2,
            workers: 3,
            ..ServeConfig::default()
        };
        assert!(more_workers.validate().is_err());
    }
}
