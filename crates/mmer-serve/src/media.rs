//! The endpoints that read recordings, served with `--media`: `POST
//! /v1/analyze` (an uploaded file, answered as `mmer analyze --format
//! json` answers) and the `/v1/stream` WebSocket (live audio, one answer
//! per turn as it closes). Both run the shipped models of
//! [`mmer_run::analyze::Analyzer`] on the `--workers` threads.
//!
//! # `POST /v1/analyze`
//! The body is the file itself (any container ffmpeg reads), at most
//! `--max-upload-bytes`; it is written to a temporary file the server names
//! and removes, probed (longer than `--max-media-s`: 413), and analysed.
//! A file ffmpeg cannot read (truncated, not media) is answered 422.
//!
//! # `/v1/stream`
//! After the upgrade the server sends
//! `{"type": "ready", "sample_rate": 16000, "format": "s16le", "segmenter": {...}}`
//! (the [`SegmenterConfig`]).
//! The client sends binary messages of 16 kHz mono signed 16-bit
//! little-endian PCM, of any length, and finally the text message
//! `{"type": "end"}`. When a pause closes a turn
//! ([`mmer_run::stream::TurnSegmenter`]) the server answers
//! `{"type": "turn", ...}`: the fields of a turn of `mmer analyze` (start
//! and end in seconds of stream, transcript, emotion, probabilities,
//! evidence of text and voice) plus `closed_at_s` (the stream time at
//! which the pause closed it) and `latency_ms` (from the arrival of the
//! audio that closed it to this answer). After `end` the open turn is
//! closed and answered, then `{"type": "end", "turns": N}` and the close;
//! the same happens to every open stream when the server shuts down.
//! Bad input (an odd number of bytes, a text that is not `{"type": "end"}`)
//! is answered `{"type": "error", "error": ..., "error_type": ...}` and the
//! connection is closed. Video frames are not taken (yet): a stream is
//! read from its words and voice.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mmer_run::analyze::{Analyzer, TurnEmotion};
use mmer_run::stream::{LiveConversation, SegmenterConfig, SpeechTurn, TurnSegmenter};
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::error::{ApiError, ErrorType};
use crate::server::{AppState, admit, closing, json_response, on_worker, read_body};

/// The analyser, or 503 naming the flag that loads it.
fn analyzer(state: &AppState) -> Result<Arc<Analyzer>, ApiError> {
    state.media.clone().ok_or_else(|| {
        ApiError::new(
            ErrorType::Unhealthy,
            "this server reads no media: start it with --media (needs ffmpeg and the models of scripts/setup.sh)",
        )
    })
}

/// `POST /v1/analyze`.
pub(crate) async fn analyze(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let analyzer = match analyzer(&state) {
        Ok(analyzer) => analyzer,
        Err(err) => return closing(err.into_response()),
    };
    let limit = state.config.max_upload_bytes;
    let admitted = match admit(&state, &request, limit, "--max-upload-bytes") {
        Ok(admitted) => admitted,
        Err(err) => return closing(err.into_response()),
    };
    let timeout = state.config.timeout();
    let answer = analyze_upload(state.clone(), analyzer, request, admitted);
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => err.into_response(),
        Err(_) => ApiError::new(
            ErrorType::Timeout,
            format!(
                "no answer within {} ms (--timeout-ms); send a shorter recording",
                state.config.timeout_ms
            ),
        )
        .into_response(),
    }
}

async fn analyze_upload(
    state: Arc<AppState>,
    analyzer: Arc<Analyzer>,
    request: Request,
    admitted: OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let body = read_body(
        request.into_body(),
        state.config.max_upload_bytes,
        "--max-upload-bytes",
    )
    .await?;
    if body.is_empty() {
        return Err(ApiError::validation(
            "the body is empty: send the recording's bytes as the body",
        ));
    }
    let max_media_s = state.config.max_media_s;
    let analysis = on_worker(&state, admitted, move || {
        analyze_bytes(&analyzer, &body, max_media_s)
    })
    .await?;
    state.metrics.record_turns(analysis.turns.len());
    Ok(json_response(StatusCode::OK, &analysis))
}

/// Writes `bytes` to a temporary file of the server's choosing and
/// analyses it; the file is removed when this returns.
fn analyze_bytes(
    analyzer: &Analyzer,
    bytes: &[u8],
    max_media_s: f64,
) -> Result<mmer_run::analyze::Analysis, ApiError> {
    let internal = |what: &str, err: std::io::Error| {
        ApiError::new(ErrorType::Backend, format!("{what} the upload: {err}"))
    };
    let mut file = tempfile::Builder::new()
        .prefix("mmer-upload-")
        .tempfile()
        .map_err(|e| internal("storing", e))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| internal("storing", e))?;
    let path = file.path().to_path_buf();
    // The client knows its file as "upload": the temporary name is ours.
    let named = |message: String| message.replace(&path.display().to_string(), "upload");
    let unreadable = |err: mmer_run::Error| {
        ApiError::validation(named(format!(
            "the upload is not a recording ffmpeg can read: {err}"
        )))
    };
    let info = analyzer
        .ffmpeg()
        .probe(&path)
        .map_err(|e| unreadable(e.into()))?;
    if let Some(duration) = info.duration_s
        && duration > max_media_s
    {
        return Err(ApiError::too_large(format!(
            "the recording is {duration:.1} s long, more than the {max_media_s} s this server takes (--max-media-s)"
        )));
    }
    let mut analysis = analyzer.analyze(&path, false).map_err(|err| match err {
        mmer_run::Error::Media(_) => unreadable(err),
        other => ApiError::new(
            ErrorType::Backend,
            named(format!("analysis failed: {other}")),
        ),
    })?;
    analysis.file = "upload".into();
    Ok(analysis)
}

/// What the server sends on a stream.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamMessage<'a> {
    Ready {
        sample_rate: u32,
        format: &'static str,
        segmenter: &'a SegmenterConfig,
    },
    Turn {
        #[serde(flatten)]
        turn: Box<TurnEmotion>,
        closed_at_s: f64,
        latency_ms: f64,
    },
    End {
        turns: usize,
    },
    Error {
        #[serde(flatten)]
        error: ApiError,
    },
}

impl StreamMessage<'_> {
    fn into_message(self) -> Message {
        let text = serde_json::to_string(&self).unwrap_or_else(|err| {
            format!(
                r#"{{"type":"error","error":"encoding a message: {err}","error_type":"Backend"}}"#
            )
        });
        Message::Text(text.into())
    }
}

/// `GET /v1/stream` (a WebSocket upgrade).
pub(crate) async fn stream(
    State(state): State<Arc<AppState>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let analyzer = match analyzer(&state) {
        Ok(analyzer) => analyzer,
        Err(err) => return err.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(
                ErrorType::BadRequest,
                format!("/v1/stream is a WebSocket: {rejection}"),
            )
            .into_response();
        }
    };
    if state.draining() {
        return ApiError::new(ErrorType::Unhealthy, "the server is shutting down").into_response();
    }
    let Ok(slot) = state.streams.clone().try_acquire_owned() else {
        return ApiError::new(
            ErrorType::Overloaded,
            format!(
                "{} streams are open (--max-streams); retry later",
                state.config.max_streams
            ),
        )
        .into_response();
    };
    upgrade.on_upgrade(move |socket| async move {
        let _slot = slot;
        serve_stream(state, analyzer, socket).await;
    })
}

/// A turn waiting for its analysis, with the instant its audio arrived.
struct ClosedTurn {
    turn: SpeechTurn,
    closed: Instant,
}

/// A turn being analysed on a worker.
type Running = JoinHandle<(LiveConversation, Result<TurnEmotion, ApiError>)>;

/// One stream: reads audio, cuts turns, analyses them one at a time in
/// order (reading on while a turn is analysed), answers each.
async fn serve_stream(state: Arc<AppState>, analyzer: Arc<Analyzer>, mut socket: WebSocket) {
    let config = SegmenterConfig::default();
    let ready = StreamMessage::Ready {
        sample_rate: mmer_run::stream::SAMPLE_RATE,
        format: "s16le",
        segmenter: &config,
    };
    if socket.send(ready.into_message()).await.is_err() {
        return;
    }
    let mut segmenter = TurnSegmenter::new(config);
    let mut conversation = Some(LiveConversation::new());
    let mut waiting: VecDeque<ClosedTurn> = VecDeque::new();
    let mut running: Option<(Running, Instant, f64)> = None;
    let mut ended = false;
    let mut answered = 0usize;
    let mut shutdown = state.shutdown.subscribe();
    loop {
        // Start the next turn's analysis when none is running.
        if running.is_none()
            && let Some(next) = waiting.pop_front()
            && let Some(mut live) = conversation.take()
        {
            let analyzer = analyzer.clone();
            let workers = state.workers.clone();
            let closed_at_s = next.turn.closed_at_s;
            let handle = tokio::spawn(async move {
                let Ok(worker) = workers.acquire_owned().await else {
                    let err = ApiError::new(ErrorType::Unhealthy, "the server is shutting down");
                    return (live, Err(err));
                };
                tokio::task::spawn_blocking(move || {
                    let _worker = worker;
                    let result = live.analyze(&analyzer, &next.turn).map_err(|err| {
                        ApiError::new(ErrorType::Backend, format!("analysis failed: {err}"))
                    });
                    (live, result)
                })
                .await
                .unwrap_or_else(|err| {
                    let err = ApiError::new(ErrorType::Backend, format!("analysis failed: {err}"));
                    (LiveConversation::new(), Err(err))
                })
            });
            running = Some((handle, next.closed, closed_at_s));
        }
        if ended && running.is_none() && waiting.is_empty() {
            let end = StreamMessage::End { turns: answered };
            let _ = socket.send(end.into_message()).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        tokio::select! {
            done = async { (&mut running.as_mut().expect("guarded").0).await }, if running.is_some() => {
                let (_, closed, closed_at_s) = running.take().expect("guarded");
                let (live, result) = match done {
                    Ok(done) => done,
                    Err(err) => (LiveConversation::new(), Err(ApiError::new(ErrorType::Backend, format!("analysis failed: {err}")))),
                };
                conversation = Some(live);
                let message = match result {
                    Ok(turn) => {
                        answered += 1;
                        state.metrics.record_turns(1);
                        let latency_ms = closed.elapsed().as_secs_f64() * 1e3;
                        state.metrics.record_stream_latency(closed.elapsed());
                        StreamMessage::Turn { turn: Box::new(turn), closed_at_s, latency_ms }
                    }
                    Err(error) => {
                        tracing::error!("stream: {error}");
                        StreamMessage::Error { error }
                    }
                };
                if socket.send(message.into_message()).await.is_err() {
                    return;
                }
            }
            // Shutting down: the open turn is closed and answered, as if
            // the client had sent `end`.
            () = async { drop(shutdown.wait_for(|down| *down).await) }, if !ended => {
                ended = true;
                if let Some(turn) = segmenter.finish() {
                    waiting.push_back(ClosedTurn { turn, closed: Instant::now() });
                }
            }
            message = socket.recv(), if !ended => {
                let Some(Ok(message)) = message else {
                    // The client went away: nothing more to answer. A turn
                    // being analysed finishes on its worker, unread.
                    tracing::info!(answered, "stream: the client disconnected");
                    return;
                };
                match read_message(message, &mut segmenter) {
                    Ok(Read::Audio(turns)) => {
                        let closed = Instant::now();
                        waiting.extend(turns.into_iter().map(|turn| ClosedTurn { turn, closed }));
                    }
                    Ok(Read::End) => {
                        ended = true;
                        if let Some(turn) = segmenter.finish() {
                            waiting.push_back(ClosedTurn { turn, closed: Instant::now() });
                        }
                    }
                    Ok(Read::Nothing) => {}
                    Ok(Read::Closed) => return,
                    Err(error) => {
                        tracing::warn!("stream: {error}");
                        let _ = socket.send(StreamMessage::Error { error }.into_message()).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
    }
}

/// What one client message was.
enum Read {
    /// Audio, and the turns it closed.
    Audio(Vec<SpeechTurn>),
    /// `{"type": "end"}`.
    End,
    /// A ping or pong.
    Nothing,
    /// The client closed the stream.
    Closed,
}

fn read_message(message: Message, segmenter: &mut TurnSegmenter) -> Result<Read, ApiError> {
    match message {
        Message::Binary(bytes) => {
            if bytes.len() % 2 != 0 {
                return Err(ApiError::validation(format!(
                    "an audio message of {} bytes: 16-bit PCM takes an even number",
                    bytes.len()
                )));
            }
            let samples: Vec<f32> = bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
            Ok(Read::Audio(segmenter.push(&samples)))
        }
        Message::Text(text) => {
            let value: serde_json::Value = serde_json::from_str(text.as_str())
                .map_err(|e| ApiError::validation(format!("a text message must be JSON: {e}")))?;
            if value == serde_json::json!({"type": "end"}) {
                Ok(Read::End)
            } else {
                Err(ApiError::validation(format!(
                    "unknown message {value}: send audio as binary messages and {{\"type\": \"end\"}} when done"
                )))
            }
        }
        Message::Ping(_) | Message::Pong(_) => Ok(Read::Nothing),
        Message::Close(_) => Ok(Read::Closed),
    }
}
