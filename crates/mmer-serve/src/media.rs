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
//!
//! Video is optional. A frame is two messages: the text message
//! `{"type": "frame", "time_s": 1.25, "width": 320, "height": 240}` (its
//! time in the stream, on the audio's clock: samples sent / 16 000), then
//! one binary message of exactly `width * height * 3` bytes, RGB, row-major
//! (`frame.tobytes()` of an OpenCV frame converted to RGB). Each side is at
//! most 1280 pixels. A turn's face is read from the frames inside it (at
//! most 6, spread evenly; [`mmer_run::stream::FrameBuffer`]) and fused
//! with its words and voice, and the answer's `evidence` gains `face`,
//! `keyframes` and `faces` as `mmer analyze`'s does. Send a turn's frames
//! before the audio that closes it: a frame that arrives after its turn was
//! handed to analysis is not read. `ready` announces the format under
//! `video`.
//!
//! Bad input (an odd number of bytes, a text that is not `{"type": "end"}`
//! or a frame header, a frame whose bytes do not match its header) is
//! answered `{"type": "error", "error": ..., "error_type": ...}` and the
//! connection is closed.
//!
//! To answer sooner, the open turn is analysed early, once its speech has
//! paused for the segmenter's `early_ms` (200 ms) and no closed turn is
//! waiting: when the pause then closes the same turn (600 ms), most of the
//! work is done; when speech resumes, the early analysis is cancelled
//! (recognition stops at its next decoder step; it ran on a copy of the
//! conversation, which is dropped).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mmer_run::analyze::{Analyzer, TurnEmotion};
use mmer_run::stream::{
    FrameBuffer, LiveConversation, LiveFrame, MAX_FRAME_SIDE, MAX_TURN_FRAMES, SegmenterConfig,
    SpeechTurn, TurnSegmenter,
};
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
        video: VideoFormat,
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

/// How a stream takes video frames (announced in `ready`).
#[derive(Debug, Serialize)]
struct VideoFormat {
    format: &'static str,
    max_side: usize,
    frames_per_turn: usize,
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

/// What a finished analysis hands back: the conversation with the turn in
/// it, and the answer.
type Analysed = (LiveConversation, Result<TurnEmotion, ApiError>);

/// An analysis on a worker: of a closed turn, or of the open turn ahead of
/// its close ([`TurnSegmenter::early`]) on a copy of the conversation.
struct Analysis {
    handle: JoinHandle<Analysed>,
    turn: SpeechTurn,
    /// The turn's close (instant, stream seconds); `None` while early.
    closed: Option<(Instant, f64)>,
    /// Set to stop the recognition at its next decoder step.
    cancel: Arc<AtomicBool>,
}

impl Analysis {
    /// Analyses `turn` on a worker, as the next turn of `live`.
    fn start(
        state: &AppState,
        analyzer: &Arc<Analyzer>,
        live: LiveConversation,
        turn: SpeechTurn,
        closed: Option<(Instant, f64)>,
    ) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let handle = analyse(state, analyzer, live, &turn, cancel.clone());
        Self {
            handle,
            turn,
            closed,
            cancel,
        }
    }
}

/// Stops the running analysis at its next decoder step, unread (a turn
/// whose speech went on, or a client gone), so that its worker is free
/// sooner.
fn cancel(running: &mut Option<Analysis>) {
    if let Some(analysis) = running.take() {
        analysis.cancel.store(true, Ordering::Relaxed);
    }
}

/// Analyses `turn` on a worker, as the next turn of `live`, until `cancel`.
fn analyse(
    state: &AppState,
    analyzer: &Arc<Analyzer>,
    mut live: LiveConversation,
    turn: &SpeechTurn,
    cancel: Arc<AtomicBool>,
) -> JoinHandle<Analysed> {
    let (analyzer, workers, turn) = (analyzer.clone(), state.workers.clone(), turn.clone());
    tokio::spawn(async move {
        let Ok(worker) = workers.acquire_owned().await else {
            let err = ApiError::new(ErrorType::Unhealthy, "the server is shutting down");
            return (live, Err(err));
        };
        tokio::task::spawn_blocking(move || {
            let _worker = worker;
            let cancelled = || cancel.load(Ordering::Relaxed);
            let result = live.analyze(&analyzer, &turn, &cancelled).map_err(|err| {
                ApiError::new(ErrorType::Backend, format!("analysis failed: {err}"))
            });
            (live, result)
        })
        .await
        .unwrap_or_else(|err| {
            let err = ApiError::new(ErrorType::Backend, format!("analysis failed: {err}"));
            (LiveConversation::new(), Err(err))
        })
    })
}

/// The message answering a closed turn, counted in the metrics.
fn answer(
    state: &AppState,
    result: Result<TurnEmotion, ApiError>,
    closed: (Instant, f64),
    answered: &mut usize,
) -> Message {
    let message = match result {
        Ok(turn) => {
            *answered += 1;
            state.metrics.record_turns(1);
            let elapsed = closed.0.elapsed();
            state.metrics.record_stream_latency(elapsed);
            let latency_ms = elapsed.as_secs_f64() * 1e3;
            StreamMessage::Turn {
                turn: Box::new(turn),
                closed_at_s: closed.1,
                latency_ms,
            }
        }
        Err(error) => {
            tracing::error!("stream: {error}");
            StreamMessage::Error { error }
        }
    };
    message.into_message()
}

/// One stream: reads audio, cuts turns, analyses them one at a time in
/// order (reading on while a turn is analysed), answers each. While
/// nothing waits, the open turn is analysed early, on a copy of the
/// conversation, once its speech has paused for `early_ms`: when the
/// pause closes that same turn, the analysis (done or under way) is its
/// answer; when speech resumed instead, it is dropped.
async fn serve_stream(state: Arc<AppState>, analyzer: Arc<Analyzer>, mut socket: WebSocket) {
    let config = SegmenterConfig::default();
    let ready = StreamMessage::Ready {
        sample_rate: mmer_run::stream::SAMPLE_RATE,
        format: "s16le",
        segmenter: &config,
        video: VideoFormat {
            format: "rgb24",
            max_side: MAX_FRAME_SIDE,
            frames_per_turn: MAX_TURN_FRAMES,
        },
    };
    if socket.send(ready.into_message()).await.is_err() {
        return;
    }
    let mut segmenter = TurnSegmenter::new(config);
    let mut frames = FrameBuffer::default();
    let mut frame_header: Option<FrameHeader> = None;
    // `None` while a closed turn's analysis holds it.
    let mut conversation = Some(LiveConversation::new());
    let mut waiting: VecDeque<ClosedTurn> = VecDeque::new();
    let mut running: Option<Analysis> = None;
    // The open turn offered early, not yet started; an early analysis that
    // finished before its turn closed.
    let mut offered: Option<SpeechTurn> = None;
    let mut early_done: Option<(SpeechTurn, Analysed)> = None;
    let mut ended = false;
    let mut answered = 0usize;
    let mut shutdown = state.shutdown.subscribe();
    loop {
        // A closed turn takes over the early analysis of its own speech
        // (answered at once when it is done); any other early one is stale.
        if let Some(front) = waiting.front() {
            let same = |turn: &SpeechTurn| turn.same_speech(&front.turn);
            let done_is_front = early_done.as_ref().is_some_and(|(turn, _)| same(turn));
            let running_early = running.as_ref().filter(|r| r.closed.is_none());
            let running_is_front = running_early.map(|r| same(&r.turn));
            let next = (front.closed, front.turn.closed_at_s);
            match early_done.take() {
                Some((_, (live, result))) if done_is_front => {
                    state.metrics.record_early(true);
                    waiting.pop_front();
                    conversation = Some(live);
                    if socket
                        .send(answer(&state, result, next, &mut answered))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Some(_) => state.metrics.record_early(false),
                None => {}
            }
            match running_is_front {
                Some(true) => {
                    state.metrics.record_early(true);
                    waiting.pop_front();
                    if let Some(early) = &mut running {
                        early.closed = Some(next);
                    }
                }
                Some(false) => {
                    state.metrics.record_early(false);
                    cancel(&mut running);
                }
                None => {}
            }
        }
        if running.is_none() {
            if !waiting.is_empty()
                && let Some(live) = conversation.take()
            {
                let next = waiting.pop_front().expect("front");
                let closed = Some((next.closed, next.turn.closed_at_s));
                running = Some(Analysis::start(&state, &analyzer, live, next.turn, closed));
            } else if let Some(turn) = offered.take()
                && let Some(live) = &conversation
                && !ended
            {
                running = Some(Analysis::start(&state, &analyzer, live.clone(), turn, None));
            }
        }
        if ended && waiting.is_empty() && running.as_ref().is_none_or(|r| r.closed.is_none()) {
            if running.is_some() || early_done.is_some() {
                state.metrics.record_early(false);
            }
            cancel(&mut running);
            let end = StreamMessage::End { turns: answered };
            let _ = socket.send(end.into_message()).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        tokio::select! {
            done = async { (&mut running.as_mut().expect("guarded").handle).await }, if running.is_some() => {
                let analysis = running.take().expect("guarded");
                let done = done.unwrap_or_else(|err| {
                    let err = ApiError::new(ErrorType::Backend, format!("analysis failed: {err}"));
                    (LiveConversation::new(), Err(err))
                });
                match analysis.closed {
                    Some(closed) => {
                        let (live, result) = done;
                        conversation = Some(live);
                        if socket.send(answer(&state, result, closed, &mut answered)).await.is_err() {
                            return;
                        }
                    }
                    None => early_done = Some((analysis.turn, done)),
                }
            }
            // Shutting down: the open turn is closed and answered, as if
            // the client had sent `end`.
            () = async { drop(shutdown.wait_for(|down| *down).await) }, if !ended => {
                ended = true;
                if let Some(turn) = segmenter.finish() {
                    let turn = with_frames(turn, &mut frames, true);
                    waiting.push_back(ClosedTurn { turn, closed: Instant::now() });
                }
            }
            message = socket.recv(), if !ended => {
                let Some(Ok(message)) = message else {
                    // The client went away: nothing more to answer.
                    tracing::info!(answered, "stream: the client disconnected");
                    cancel(&mut running);
                    return;
                };
                match read_message(message, &mut segmenter, &mut frame_header) {
                    Ok(Read::Audio(turns)) => {
                        let closed = Instant::now();
                        if !turns.is_empty() {
                            offered = None;
                        }
                        waiting.extend(turns.into_iter().map(|turn| ClosedTurn {
                            turn: with_frames(turn, &mut frames, true),
                            closed,
                        }));
                        if let Some(turn) = segmenter.early() {
                            // A new offer means the speech went on since
                            // the last: its early analysis is stale.
                            if running.as_ref().is_some_and(|r| r.closed.is_none()) {
                                state.metrics.record_early(false);
                                cancel(&mut running);
                            }
                            if early_done.take().is_some() {
                                state.metrics.record_early(false);
                            }
                            offered = Some(with_frames(turn, &mut frames, false));
                        }
                    }
                    Ok(Read::Frame(frame)) => frames.push(frame),
                    Ok(Read::End) => {
                        ended = true;
                        offered = None;
                        if let Some(turn) = segmenter.finish() {
                            let turn = with_frames(turn, &mut frames, true);
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

/// `turn` with the frames inside it; a closed turn's frames (and those
/// before them) leave the buffer, an early offer's stay for its close.
fn with_frames(mut turn: SpeechTurn, frames: &mut FrameBuffer, closed: bool) -> SpeechTurn {
    turn.frames = frames.frames_in(&turn);
    if closed {
        frames.forget_before(turn.end_s);
    }
    turn
}

/// A frame's header: the binary message after it holds its pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameHeader {
    time_s: f64,
    width: usize,
    height: usize,
}

/// What one client message was.
enum Read {
    /// Audio, and the turns it closed.
    Audio(Vec<SpeechTurn>),
    /// A video frame (header and pixels).
    Frame(LiveFrame),
    /// `{"type": "end"}`.
    End,
    /// A ping or pong, or a frame's header.
    Nothing,
    /// The client closed the stream.
    Closed,
}

fn read_message(
    message: Message,
    segmenter: &mut TurnSegmenter,
    frame_header: &mut Option<FrameHeader>,
) -> Result<Read, ApiError> {
    match message {
        Message::Binary(bytes) if frame_header.is_some() => {
            let header = frame_header.take().expect("guarded");
            LiveFrame::new(header.time_s, header.width, header.height, bytes.to_vec())
                .map(Read::Frame)
                .map_err(ApiError::validation)
        }
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
        Message::Text(_) if frame_header.is_some() => Err(ApiError::validation(
            "a frame header must be followed by the frame's bytes as one binary message",
        )),
        Message::Text(text) => {
            let mut value: serde_json::Value = serde_json::from_str(text.as_str())
                .map_err(|e| ApiError::validation(format!("a text message must be JSON: {e}")))?;
            if value == serde_json::json!({"type": "end"}) {
                return Ok(Read::End);
            }
            if value.get("type") == Some(&serde_json::json!("frame"))
                && let Some(object) = value.as_object_mut()
            {
                object.remove("type");
                let header: FrameHeader = serde_json::from_value(value).map_err(|e| {
                    ApiError::validation(format!(
                        "a frame header is {{\"type\": \"frame\", \"time_s\": seconds, \"width\": pixels, \"height\": pixels}}: {e}"
                    ))
                })?;
                *frame_header = Some(header);
                return Ok(Read::Nothing);
            }
            Err(ApiError::validation(format!(
                "unknown message {value}: send audio as binary messages, a video frame as {{\"type\": \"frame\", ...}} and its bytes, and {{\"type\": \"end\"}} when done"
            )))
        }
        Message::Ping(_) | Message::Pong(_) => Ok(Read::Nothing),
        Message::Close(_) => Ok(Read::Closed),
    }
}
