//! The HTTP server: routes, handlers, the bounded queue, per-request
//! timeouts and graceful shutdown.
//!
//! A request to `POST /v1/emotions` is admitted by taking a slot of the
//! queue (`--queue`; none free → 429 at once, it never waits), then reads
//! its body (at most `--max-body-bytes`), waits for one of `--workers`
//! prediction threads and predicts there (`spawn_blocking`), together with
//! the other requests waiting then (`crate::batch`), all within
//! `--timeout-ms` (504 past it). A prediction that outlives its
//! request's timeout runs to its end and keeps its slot until then, so the
//! queue bounds the CPU work, not only the answers still owed. The media
//! endpoints (`--media`) are in `crate::media`. A request
//! refused before its body is read (429, 503, a declared length over the
//! limit) is answered with `Connection: close`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mmer_run::analyze::Analyzer;
use mmer_train::Prediction;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batch::Batcher;
use crate::config::ServeConfig;
use crate::error::{ApiError, Error, ErrorType, Result};
use crate::metrics::{Metrics, endpoint_label};
use crate::model::{ModelInfo, Predict};

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) model: Arc<dyn Predict>,
    info: ModelInfo,
    pub(crate) config: ServeConfig,
    /// Admitted requests (`--queue`).
    queue: Arc<Semaphore>,
    /// Predictions running (`--workers`).
    pub(crate) workers: Arc<Semaphore>,
    /// Open `/v1/stream` connections (`--max-streams`).
    pub(crate) streams: Arc<Semaphore>,
    /// The recording analyser (`--media`).
    pub(crate) media: Option<Arc<Analyzer>>,
    /// `/v1/emotions` requests waiting for a worker.
    pub(crate) batcher: Batcher,
    pub(crate) metrics: Metrics,
    /// Set once shutdown has begun: new requests are answered 503.
    draining: AtomicBool,
    /// Told when shutdown begins, so that open streams finish their turns
    /// and close.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub(crate) fn new(
        model: Arc<dyn Predict>,
        media: Option<Arc<Analyzer>>,
        model_dir: &Path,
        config: ServeConfig,
    ) -> Self {
        let info = ModelInfo::new(model_dir, model.checkpoint(), media.is_some(), &config);
        Self {
            model,
            info,
            queue: Arc::new(Semaphore::new(config.queue)),
            workers: Arc::new(Semaphore::new(config.workers)),
            streams: Arc::new(Semaphore::new(config.max_streams)),
            media,
            batcher: Batcher::default(),
            config,
            metrics: Metrics::default(),
            draining: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Requests admitted now.
    fn in_flight(&self) -> usize {
        self.config
            .queue
            .saturating_sub(self.queue.available_permits())
    }

    pub(crate) fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// One of the `--workers`, once one is free.
    ///
    /// # Errors
    /// 503 when shutting down.
    pub(crate) async fn worker(&self) -> std::result::Result<OwnedSemaphorePermit, ApiError> {
        self.workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::new(ErrorType::Unhealthy, "the server is shutting down"))
    }
}

/// `value` as a JSON response with `status`.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let json = HeaderValue::from_static("application/json");
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, json)], body).into_response(),
        Err(err) => {
            tracing::error!("encoding a response: {err}");
            let body = r#"{"error":"the response could not be encoded","error_type":"Backend"}"#;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, json)],
                body,
            )
                .into_response()
        }
    }
}

/// The routes, with the metrics middleware around all of them.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/emotions", post(emotions))
        .route("/v1/analyze", post(crate::media::analyze))
        .route("/v1/stream", get(crate::media::stream))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts every answer by endpoint and status, and times
/// `/v1/emotions`.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint_label(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .record_request(endpoint, response.status().as_u16());
    if endpoint == "/v1/emotions" {
        state.metrics.record_latency(started.elapsed());
    }
    response
}

/// The body of a successful `POST /v1/emotions`.
#[derive(Debug, Serialize)]
struct EmotionsResponse {
    /// One per turn, dialogues in order of first appearance, turns sorted.
    predictions: Vec<Prediction>,
}

/// `POST /v1/emotions`.
pub(crate) async fn emotions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let limit = state.config.max_body_bytes;
    let admitted = match admit(&state, &request, limit, "--max-body-bytes") {
        Ok(admitted) => admitted,
        Err(err) => return closing(err.into_response()),
    };
    let timeout = state.config.timeout();
    match tokio::time::timeout(timeout, answer(state.clone(), request, admitted)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => err.into_response(),
        Err(_) => ApiError::new(
            ErrorType::Timeout,
            format!(
                "no answer within {} ms (--timeout-ms); send fewer turns, or retry when the server is less busy",
                state.config.timeout_ms
            ),
        )
        .into_response(),
    }
}

/// Admits the request, or refuses it at once, before its body is read:
/// 503 while shutting down, 413 for a declared `Content-Length` over
/// `limit` (the setting `flag`), 429 when `--queue` requests are in flight.
pub(crate) fn admit(
    state: &AppState,
    request: &Request,
    limit: usize,
    flag: &str,
) -> Result<OwnedSemaphorePermit, ApiError> {
    if state.draining() {
        return Err(ApiError::new(
            ErrorType::Unhealthy,
            "the server is shutting down; send the request again elsewhere or later",
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        return Err(too_large_body(Some(length), limit, flag));
    }
    state.queue.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorType::Overloaded,
            format!(
                "the server is busy: {} requests are in flight (--queue); retry later",
                state.config.queue
            ),
        )
    })
}

/// `response` with `Connection: close`: the answer to a request whose
/// body was not read. The server cannot reuse such a connection (the
/// unread body is in the way), and says so, so that a keep-alive client
/// opens a new one instead of writing its next request into a closed
/// socket.
pub(crate) fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads, validates and predicts an admitted request.
async fn answer(
    state: Arc<AppState>,
    request: Request,
    admitted: OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let body = read_body(
        request.into_body(),
        state.config.max_body_bytes,
        "--max-body-bytes",
    )
    .await?;
    let dialogues = crate::request::parse(&body, &state.info.model.labels, state.config.max_turns)?;
    let predictions = crate::batch::predict(&state, dialogues, admitted).await?;
    state.metrics.record_turns(predictions.len());
    Ok(json_response(
        StatusCode::OK,
        &EmotionsResponse { predictions },
    ))
}

/// Runs `work` on one of the `--workers` threads, once one is free. The
/// request's queue slot (`admitted`) and the worker are given back when
/// the work ends, even if the request has timed out meanwhile: CPU work is
/// not interrupted, and the queue bounds it.
///
/// # Errors
/// `work`'s error; 503 when shutting down, 500 when it panics.
pub(crate) async fn on_worker<T: Send + 'static>(
    state: &AppState,
    admitted: OwnedSemaphorePermit,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let worker = state.worker().await?;
    tokio::task::spawn_blocking(move || {
        let _slots = (admitted, worker);
        work()
    })
    .await
    .map_err(|err| ApiError::new(ErrorType::Backend, format!("the work failed: {err}")))?
}

/// The body, or 413 past `limit` bytes (the setting `flag`; 400 when it
/// cannot be read).
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    flag: &str,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let inner = err.into_inner();
        if inner.is::<http_body_util::LengthLimitError>() {
            too_large_body(None, limit, flag)
        } else {
            ApiError::new(
                ErrorType::BadRequest,
                format!("reading the request body: {inner}"),
            )
        }
    })
}

fn too_large_body(length: Option<u64>, limit: usize, flag: &str) -> ApiError {
    let size = match length {
        Some(length) => format!("{length} bytes"),
        None => format!("over {limit} bytes"),
    };
    ApiError::too_large(format!(
        "the body is {size}, more than the {limit} this server takes ({flag})"
    ))
}

/// `GET /health`: 200 while the model is loaded and the server admits
/// requests; 503 once it is shutting down.
pub(crate) async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.draining() {
        return ApiError::new(ErrorType::Unhealthy, "the server is shutting down").into_response();
    }
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /info`.
async fn info(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &state.info)
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(state.in_flight(), state.config.queue);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The OpenAPI 3.1 document of this API (written by hand next to this
/// file; a test holds it to the routes, the error kinds and `/info`).
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// `GET /openapi.json`.
async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    ApiError::new(
        ErrorType::NotFound,
        format!(
            "no endpoint {} {}; there are POST /v1/emotions, POST /v1/analyze, GET /v1/stream (WebSocket), GET /health, GET /info, GET /metrics, GET /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        ErrorType::MethodNotAllowed,
        format!(
            "{} does not take {}",
            request.uri().path(),
            request.method()
        ),
    )
    .into_response()
}

/// A bound server with its model, ready to [`Server::serve`].
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("info", &self.state.info)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `config.addr` (port 0: any free port, see
    /// [`Server::local_addr`]) with `model`, loaded from `model_dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for a setting that admits nothing,
    /// [`Error::Bind`] when the address cannot be listened on.
    pub async fn bind(
        model: Arc<dyn Predict>,
        media: Option<Arc<Analyzer>>,
        model_dir: &Path,
        config: ServeConfig,
    ) -> Result<Self> {
        config.validate()?;
        let addr = config.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self {
            listener,
            state: Arc::new(AppState::new(model, media, model_dir, config)),
        })
    }

    /// The address listened on.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| Error::Io {
            what: "reading the listening address",
            source,
        })
    }

    /// What `GET /info` answers.
    pub fn info(&self) -> &ModelInfo {
        &self.state.info
    }

    /// Serves until `shutdown` completes, then stops accepting
    /// connections, answers new requests on open connections 503, and
    /// returns once the requests in flight are answered.
    ///
    /// # Errors
    /// [`Error::Io`] when the listening address cannot be read.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.local_addr()?;
        let state = self.state.clone();
        let signal = async move {
            shutdown.await;
            state.begin_shutdown();
            tracing::info!(
                in_flight = state.in_flight(),
                "shutting down: no new connections; finishing the requests in flight"
            );
        };
        tracing::info!(
            model = %self.state.info.model.model_dir,
            classes = %self.state.info.model.labels.classes.join(","),
            "listening on http://{addr}"
        );
        let state = self.state.clone();
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(signal)
            .await
            .map_err(|source| Error::Io {
                what: "serving",
                source,
            })?;
        // Streams outlive their HTTP connection (the upgrade hands the
        // socket over): wait, up to one request timeout, for each to answer
        // its last turn and close.
        let all = u32::try_from(state.config.max_streams).unwrap_or(u32::MAX);
        if tokio::time::timeout(state.config.timeout(), state.streams.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("a stream did not finish within --timeout-ms of the shutdown");
        }
        tracing::info!("stopped: every request in flight was answered");
        Ok(())
    }
}

/// A future that completes on Ctrl-C or (Unix) SIGTERM. The handlers are
/// registered here, at once, not when the future is first polled: a
/// signal sent as soon as the server listens is not lost (nor does it kill
/// the process). Call it inside the runtime.
///
/// # Errors
/// [`Error::Io`] when the handlers cannot be registered.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    let io = |source| Error::Io {
        what: "listening for Ctrl-C and SIGTERM",
        source,
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("Ctrl-C received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = io;
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("Ctrl-C received"),
                Err(err) => {
                    tracing::error!("cannot listen for Ctrl-C: {err}");
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmer_core::{Dialogue, LabelSpace, Modality};
    use mmer_train::batcher::FeatureLayout;
    use mmer_train::{Checkpoint, TrainConfig};

    /// A model that is never asked: the requests here are refused first.
    struct Stub(Checkpoint);

    impl Predict for Stub {
        fn checkpoint(&self) -> &Checkpoint {
            &self.0
        }

        fn predict(&self, _: Vec<Dialogue>) -> Result<Vec<Prediction>, Box<mmer_run::Error>> {
            Err(Box::new(mmer_run::Error::Refused("not expected".into())))
        }
    }

    fn state() -> Arc<AppState> {
        let layout = FeatureLayout {
            modalities: vec![(Modality::Text, 2)],
            mean: vec![0.0; 2],
            std: vec![1.0; 2],
            sequences: false,
        };
        let checkpoint = Checkpoint::new(
            "stub",
            None,
            &TrainConfig::default(),
            0,
            0,
            layout,
            LabelSpace::meld(),
        );
        Arc::new(AppState::new(
            Arc::new(Stub(checkpoint)),
            None,
            Path::new("stub"),
            ServeConfig::default(),
        ))
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The OpenAPI document names every endpoint, every error kind and
    /// every field of `/info`, and this version.
    #[test]
    fn the_openapi_document_matches_the_server() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        for endpoint in crate::metrics::ENDPOINTS {
            assert!(
                doc["paths"][endpoint].is_object(),
                "{endpoint} not documented"
            );
        }
        assert_eq!(
            doc["paths"].as_object().unwrap().len(),
            crate::metrics::ENDPOINTS.len()
        );
        let kinds = [
            ErrorType::Validation,
            ErrorType::PayloadTooLarge,
            ErrorType::Overloaded,
            ErrorType::Unhealthy,
            ErrorType::Timeout,
            ErrorType::Backend,
            ErrorType::BadRequest,
            ErrorType::NotFound,
            ErrorType::MethodNotAllowed,
        ];
        let documented = &doc["components"]["schemas"]["Error"]["properties"]["error_type"]["enum"];
        assert_eq!(documented, &serde_json::to_value(kinds).unwrap());
        let info = serde_json::to_value(&state().info).unwrap();
        let properties = &doc["components"]["schemas"]["ModelInfo"]["properties"];
        for key in info.as_object().unwrap().keys() {
            assert!(properties[key].is_object(), "/info's {key} not documented");
        }
    }

    /// Connections still open when shutdown begins get 503 for a new
    /// request, and `/health` turns 503 so a balancer stops sending.
    #[test]
    fn once_shutting_down_new_requests_and_health_are_503() {
        let state = state();
        block_on(async {
            let ok = health(State(state.clone())).await;
            assert_eq!(ok.status(), StatusCode::OK);
            assert_eq!(body(ok).await, serde_json::json!({"status": "ok"}));
            state.begin_shutdown();
            let unhealthy = health(State(state.clone())).await;
            assert_eq!(unhealthy.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(body(unhealthy).await["error_type"], "Unhealthy");
            let request = Request::builder()
                .method("POST")
                .uri("/v1/emotions")
                .body(Body::from(
                    r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "hi"}]}"#,
                ))
                .unwrap();
            let refused = emotions(State(state.clone()), request).await;
            assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
            let refused = body(refused).await;
            assert_eq!(refused["error_type"], "Unhealthy");
            assert!(
                refused["error"].as_str().unwrap().contains("shutting down"),
                "{refused}"
            );
            // Refused before admission: the queue is untouched.
            assert_eq!(state.in_flight(), 0);
        });
    }
}
