//! `mmer serve` over loopback: a real server on an ephemeral port of
//! 127.0.0.1, spoken to with hand-written HTTP/1.1 over `std::net`.
//!
//! Most tests serve a tiny model trained here on synthetic features (no
//! encoder weights needed), given zero features by [`TestModel`], which
//! can also hold a request inside the model (a gate) so that a full queue,
//! a timeout and a shutdown with a request in flight are deterministic.
//! One test serves the shipped MiniLM text model and skips when the
//! encoder's weights are not installed.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mmer_core::{Dialogue, Features, Modality};
use mmer_run::analyze::{AnalyzeConfig, Analyzer};
use mmer_run::predict::Predictor;
use mmer_serve::{Predict, ServeConfig, Server};
use mmer_train::{Checkpoint, Prediction};
use serde_json::{Value, json};

// ---------------------------------------------------------------- client

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a TEI-style JSON error of `status` and `error_type` whose
    /// message contains `needle`.
    fn assert_error(&self, status: u16, error_type: &str, needle: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error_type"], error_type, "{body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    }
}

/// Sends `raw` on a new connection and reads the answer to its end (the
/// requests say `Connection: close`).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // The server may answer (413) before it has read all of a large body.
    let _ = stream.write_all(raw);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            // A reset after the answer (the unread rest of a refused body).
            Err(e) if !bytes.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                break;
            }
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    exchange(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// `post` on a keep-alive connection: the answer must end the connection
/// itself (`Connection: close`) for [`exchange`] to return.
fn post_keep_alive(addr: SocketAddr, path: &str, body: &str) -> Reply {
    exchange(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// A body of `dialogues` × `turns` valid turns.
fn conversation(dialogues: usize, turns: usize) -> String {
    let records: Vec<Value> = (0..dialogues)
        .flat_map(|d| {
            (0..turns).map(move |t| {
                json!({
                    "dialogue": format!("d{d}"),
                    "turn": t,
                    "speaker": if t % 2 == 0 { "Ana" } else { "Ben" },
                    "text": format!("turn {t} of dialogue {d}"),
                })
            })
        })
        .collect();
    json!({ "turns": records }).to_string()
}

// ---------------------------------------------------------------- models

/// A gate that holds every `predict` while closed.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        self.state.lock().unwrap().0 = closed;
        self.changed.notify_all();
    }

    /// Waits (on the prediction thread) while the gate is closed.
    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        state.1 += 1;
        self.changed.notify_all();
        while state.0 {
            state = self.changed.wait(state).unwrap();
        }
        state.1 -= 1;
    }

    /// Waits until `n` predictions are held.
    fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.state.lock().unwrap();
        while state.1 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no prediction reached the gate");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// The synthetic-feature model, given features for what it reads (the
/// requests carry text only) and held at `gate` while it is closed.
struct TestModel {
    inner: Predictor,
    features: bool,
    gate: Gate,
}

impl Predict for TestModel {
    fn checkpoint(&self) -> &Checkpoint {
        self.inner.checkpoint()
    }

    fn predict(
        &self,
        mut dialogues: Vec<Dialogue>,
    ) -> Result<Vec<Prediction>, Box<mmer_run::Error>> {
        self.gate.pass();
        if dialogues.iter().any(|d| d.id == "unreadable") {
            return Err(Box::new(mmer_run::Error::Refused(
                "dialogue \"unreadable\" cannot be read".into(),
            )));
        }
        if self.features {
            let layout = &self.inner.checkpoint().layout;
            for u in dialogues.iter_mut().flat_map(|d| &mut d.utterances) {
                for &(modality, width) in &layout.modalities {
                    u.features
                        .insert(modality, Features::vector(vec![0.1; width]));
                }
            }
        }
        Predict::predict(&self.inner, dialogues)
    }
}

/// A tiny model trained once per test binary on synthetic features (audio
/// only, as a model reading text needs an encoder's weights; 2 epochs, 1 seed) into a temporary directory: its
/// `seed-0` directory.
fn synthetic_model() -> &'static Path {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = MODEL.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let mut train = mmer_train::TrainConfig {
            modalities: vec![Modality::Audio],
            max_epochs: 2,
            batch_size: 8,
            seeds: vec![0],
            ..Default::default()
        };
        train.model.context = mmer_models::ContextMode::None;
        train.model.temporal = false;
        train.model.d_modality = 16;
        train.model.d_model = 16;
        train.model.d_hidden = 16;
        let data = mmer_run::DataConfig {
            synthetic: Some(mmer_data::synthetic::SyntheticConfig {
                dialogues: [12, 4, 4],
                ..Default::default()
            }),
            store: tmp.path().join("store"),
            ..mmer_run::DataConfig::new(mmer_run::DatasetKind::Synthetic, None)
        };
        let run = tmp.path().join("run");
        mmer_run::train_run(
            &mmer_run::RunConfig { data, train },
            &run,
            false,
            mmer_run::Existing::Refuse,
        )
        .unwrap();
        (tmp, run.join("seed-0"))
    });
    dir
}

fn test_model(features: bool) -> Arc<TestModel> {
    Arc::new(TestModel {
        inner: Predictor::load(synthetic_model()).unwrap(),
        features,
        gate: Gate::default(),
    })
}

// ---------------------------------------------------------------- server

/// A server on an ephemeral loopback port, on its own runtime.
struct Running {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<mmer_serve::Result<()>>,
}

impl Running {
    fn start(model: Arc<dyn Predict>, model_dir: &Path, config: ServeConfig) -> Self {
        Self::start_with(model, None, model_dir, config)
    }

    fn start_with(
        model: Arc<dyn Predict>,
        media: Option<Arc<Analyzer>>,
        model_dir: &Path,
        config: ServeConfig,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = ServeConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = runtime
            .block_on(Server::bind(model, media, model_dir, config))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(server.serve(async {
            let _ = stop.await;
        }));
        Self {
            addr,
            runtime,
            shutdown: Some(shutdown),
            served,
        }
    }

    fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Whether the server has stopped.
    fn stopped(&self) -> bool {
        self.served.is_finished()
    }

    /// Shuts down and waits (bounded) for the server to stop.
    fn stop(mut self) {
        self.begin_shutdown();
        let served = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), self.served).await });
        served
            .expect("the server did not stop within 30 s")
            .expect("the server task panicked")
            .expect("the server failed");
    }

    /// A line of `/metrics` that starts with `prefix`, its value.
    fn metric(&self, prefix: &str) -> Option<f64> {
        get(self.addr, "/metrics")
            .body
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until no request is admitted (a held prediction has ended).
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metric("mmer_queue_requests ") != Some(0.0) {
            assert!(Instant::now() < deadline, "the queue did not drain");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn config() -> ServeConfig {
    ServeConfig {
        timeout_ms: 60_000,
        ..ServeConfig::default()
    }
}

/// Asserts a successful answer with one prediction per turn of `body`,
/// each over the model's classes.
fn assert_predictions(reply: &Reply, turns: usize, classes: &[&str]) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let predictions = body["predictions"].as_array().unwrap().clone();
    assert_eq!(predictions.len(), turns, "{body}");
    for p in &predictions {
        let probabilities = p["probabilities"].as_object().unwrap();
        let names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        assert_eq!(
            names.iter().copied().collect::<BTreeSet<_>>(),
            classes.iter().copied().collect::<BTreeSet<_>>(),
            "{p}"
        );
        let total: f64 = probabilities.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-3, "{p}");
        assert!(classes.contains(&p["emotion"].as_str().unwrap()), "{p}");
        for field in [
            "dialogue",
            "utterance",
            "turn",
            "speaker",
            "text",
            "confidence",
        ] {
            assert!(!p[field].is_null(), "{field} missing in {p}");
        }
    }
    predictions
}

fn synthetic_classes() -> Vec<String> {
    test_model(false).checkpoint().labels.classes.clone()
}

// ---------------------------------------------------------------- tests

#[test]
fn health_info_metrics_and_a_prediction() {
    let model = test_model(true);
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    let server = Running::start(model, synthetic_model(), config());

    let health = get(server.addr, "/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));

    let info = get(server.addr, "/info").json();
    assert_eq!(info["model_dir"], synthetic_model().display().to_string());
    assert_eq!(info["labels"]["classes"], json!(classes));
    assert_eq!(info["labels"]["multi_label"], false);
    assert_eq!(info["modalities"], json!(["audio"]));
    assert_eq!(info["text_encoder"], Value::Null);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["max_turns"], ServeConfig::DEFAULT_MAX_TURNS);
    assert_eq!(info["max_concurrent_requests"], ServeConfig::DEFAULT_QUEUE);
    // Without --media the media endpoints say how to get them.
    assert_eq!(info["media"], false);
    post_bytes(server.addr, "/v1/analyze", b"RIFF").assert_error(503, "Unhealthy", "--media");
    get(server.addr, "/v1/stream").assert_error(503, "Unhealthy", "--media");
    assert_eq!(info["model_sha256"].as_str().map(str::len), Some(64));

    // Two dialogues, given out of order: grouped by first appearance,
    // turns sorted, every field of `mmer predict --format jsonl`.
    let body = json!({"turns": [
        {"dialogue": "b", "turn": 3, "speaker": "Ana", "text": "later"},
        {"dialogue": "a", "turn": 0, "speaker": "Ben", "text": "hello", "label": classes[1]},
        {"dialogue": "b", "turn": 1, "speaker": "Cy", "text": "first"},
    ]});
    let reply = post(server.addr, "/v1/emotions", &body.to_string());
    let predictions = assert_predictions(&reply, 3, &classes);
    let keys: Vec<(String, u64)> = predictions
        .iter()
        .map(|p| {
            (
                p["utterance"].as_str().unwrap().into(),
                p["turn"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("b_utt1".into(), 1),
            ("b_utt3".into(), 3),
            ("a_utt0".into(), 0)
        ]
    );
    assert_eq!(predictions[2]["gold"], classes[1]);
    assert_eq!(predictions[0]["gold"], Value::Null);
    assert_eq!(predictions[0]["speaker"], "Cy");
    assert_eq!(predictions[0]["text"], "first");

    get(server.addr, "/nowhere").assert_error(404, "NotFound", "no endpoint GET /nowhere");
    get(server.addr, "/v1/emotions").assert_error(405, "MethodNotAllowed", "does not take GET");

    let metrics = get(server.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for line in [
        "mmer_requests_total{endpoint=\"/v1/emotions\",status=\"200\"} 1",
        "mmer_requests_total{endpoint=\"/v1/emotions\",status=\"405\"} 1",
        "mmer_requests_total{endpoint=\"/health\",status=\"200\"} 1",
        "mmer_requests_total{endpoint=\"/info\",status=\"200\"} 1",
        "mmer_requests_total{endpoint=\"other\",status=\"404\"} 1",
        "mmer_turns_predicted_total 3",
        "mmer_request_duration_seconds_count 2",
        "mmer_request_duration_seconds_bucket{le=\"+Inf\"} 2",
        "mmer_queue_requests 0",
        "mmer_queue_capacity 16",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} not in\n{}",
            metrics.body
        );
    }
    server.stop();
}

#[test]
fn malformed_and_invalid_requests_are_422_naming_the_turn() {
    let model = test_model(true);
    let server = Running::start(model, synthetic_model(), config());
    let addr = server.addr;
    post(addr, "/v1/emotions", "{\"turns\": [").assert_error(422, "Validation", "invalid JSON");
    post(addr, "/v1/emotions", "not json").assert_error(422, "Validation", "invalid JSON");
    post(addr, "/v1/emotions", "[1, 2]").assert_error(422, "Validation", "expected a JSON object");
    post(
        addr,
        "/v1/emotions",
        r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "ok"},
                      {"dialogue": "d", "turn": 1, "speaker": "B", "text": "  "}]}"#,
    )
    .assert_error(
        422,
        "Validation",
        "turns[1]: utterance d_utt1 has empty text",
    );
    post(
        addr,
        "/v1/emotions",
        r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "ok", "label": "bliss"}]}"#,
    )
    .assert_error(422, "Validation", "turns[0]: utterance d_utt0: unknown label \"bliss\"");
    post(
        addr,
        "/v1/emotions",
        r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "ok", "video": "/etc/passwd"}]}"#,
    )
    .assert_error(422, "Validation", "`video` is not accepted here");
    // Bytes that are not UTF-8 are malformed JSON, not a crash.
    let mut raw =
        b"POST /v1/emotions HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
            .to_vec();
    raw.extend_from_slice(&[0xff, 0xfe, 0x92]);
    exchange(addr, &raw).assert_error(422, "Validation", "invalid JSON");
    // The server is still up and right.
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    assert_predictions(
        &post(addr, "/v1/emotions", &conversation(2, 3)),
        6,
        &classes,
    );
    assert_eq!(
        server.metric("mmer_requests_total{endpoint=\"/v1/emotions\",status=\"422\"}"),
        Some(7.0)
    );
    server.stop();

    // The model reads features that text-only turns lack: 422 naming the
    // turn, from the model itself.
    let server = Running::start(test_model(false), synthetic_model(), config());
    post(server.addr, "/v1/emotions", &conversation(1, 2)).assert_error(
        422,
        "Validation",
        "has none of the modalities this model reads",
    );
    server.stop();
}

#[test]
fn oversized_bodies_and_too_many_turns_are_413() {
    let config = ServeConfig {
        max_body_bytes: 2048,
        max_turns: 4,
        ..config()
    };
    let server = Running::start(test_model(true), synthetic_model(), config);
    let addr = server.addr;
    // Declared too large: refused before the body is read.
    let big = conversation(1, 40);
    assert!(big.len() > 2048);
    post(addr, "/v1/emotions", &big).assert_error(
        413,
        "PayloadTooLarge",
        &format!("the body is {} bytes, more than the 2048", big.len()),
    );
    // Chunked, no length declared: refused once the limit is passed.
    let mut raw = b"POST /v1/emotions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in big.as_bytes().chunks(500) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    exchange(addr, &raw).assert_error(413, "PayloadTooLarge", "over 2048 bytes");
    // Small enough, but more turns than --max-turns.
    post(addr, "/v1/emotions", &conversation(1, 5)).assert_error(
        413,
        "PayloadTooLarge",
        "5 turns, more than the 4 this server takes",
    );
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    assert_predictions(
        &post(addr, "/v1/emotions", &conversation(2, 2)),
        4,
        &classes,
    );
    server.stop();
}

#[test]
fn a_full_queue_answers_429_and_the_server_recovers() {
    let model = test_model(true);
    let config = ServeConfig {
        queue: 1,
        ..config()
    };
    let server = Running::start(model.clone(), synthetic_model(), config);
    let addr = server.addr;
    model.gate.set_closed(true);
    let held = std::thread::spawn(move || post(addr, "/v1/emotions", &conversation(1, 3)));
    model.gate.wait_held(1);
    // The one slot is taken: refused at once, not queued.
    let started = Instant::now();
    for _ in 0..3 {
        post(addr, "/v1/emotions", &conversation(1, 1)).assert_error(
            429,
            "Overloaded",
            "1 requests are in flight",
        );
    }
    // A keep-alive client is told that the connection ends (its body was
    // not read), rather than finding out by writing into a closed socket.
    let refused = post_keep_alive(addr, "/v1/emotions", &conversation(1, 1));
    refused.assert_error(429, "Overloaded", "retry later");
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // Cheap endpoints still answer while the queue is full.
    assert_eq!(get(addr, "/health").status, 200);
    assert_eq!(server.metric("mmer_queue_requests "), Some(1.0));
    model.gate.set_closed(false);
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    assert_predictions(&held.join().unwrap(), 3, &classes);
    server.wait_idle();
    assert_predictions(
        &post(addr, "/v1/emotions", &conversation(1, 2)),
        2,
        &classes,
    );
    assert_eq!(
        server.metric("mmer_requests_total{endpoint=\"/v1/emotions\",status=\"429\"}"),
        Some(4.0)
    );
    server.stop();
}

/// Requests that wait for the worker together are predicted in one batch,
/// each answered with exactly its own turns; a batch in which one request
/// fails is predicted again request by request, so only that one fails.
#[test]
fn waiting_requests_are_predicted_together_and_each_gets_its_own_answer() {
    let model = test_model(true);
    let server = Running::start(model.clone(), synthetic_model(), config());
    let addr = server.addr;
    model.gate.set_closed(true);
    let first = std::thread::spawn(move || post(addr, "/v1/emotions", &conversation(1, 2)));
    model.gate.wait_held(1);
    let unreadable = json!({"turns": [
        {"dialogue": "unreadable", "turn": 0, "speaker": "A", "text": "x"}
    ]})
    .to_string();
    let bodies = [conversation(2, 3), unreadable, conversation(1, 4)];
    let waiting: Vec<_> = bodies
        .into_iter()
        .map(|body| std::thread::spawn(move || post(addr, "/v1/emotions", &body)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("mmer_queue_requests ") != Some(4.0) {
        assert!(Instant::now() < deadline, "the requests were not admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300)); // bodies read, waiting
    model.gate.set_closed(false);
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    let ids = |predictions: &[Value]| -> Vec<String> {
        predictions
            .iter()
            .map(|p| p["utterance"].as_str().unwrap().to_string())
            .collect()
    };
    let first = assert_predictions(&first.join().unwrap(), 2, &classes);
    assert_eq!(ids(&first), ["d0_utt0", "d0_utt1"]);
    let mut waiting = waiting.into_iter().map(|t| t.join().unwrap());
    let two = assert_predictions(&waiting.next().unwrap(), 6, &classes);
    assert_eq!(
        ids(&two),
        [
            "d0_utt0", "d0_utt1", "d0_utt2", "d1_utt0", "d1_utt1", "d1_utt2"
        ]
    );
    waiting
        .next()
        .unwrap()
        .assert_error(500, "Backend", "dialogue \"unreadable\" cannot be read");
    let one = assert_predictions(&waiting.next().unwrap(), 4, &classes);
    assert_eq!(ids(&one), ["d0_utt0", "d0_utt1", "d0_utt2", "d0_utt3"]);
    // The first alone, then the three that waited, in one batch.
    assert_eq!(server.metric("mmer_batches_total "), Some(2.0));
    assert_eq!(server.metric("mmer_batched_requests_total "), Some(4.0));
    server.wait_idle();
    server.stop();
}

#[test]
fn a_request_past_its_timeout_is_504_and_keeps_its_slot_until_the_prediction_ends() {
    let model = test_model(true);
    let config = ServeConfig {
        queue: 1,
        timeout_ms: 300,
        ..config()
    };
    let server = Running::start(model.clone(), synthetic_model(), config);
    let addr = server.addr;
    model.gate.set_closed(true);
    let started = Instant::now();
    post(addr, "/v1/emotions", &conversation(1, 2)).assert_error(
        504,
        "Timeout",
        "no answer within 300 ms",
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The prediction still runs: its slot is not free yet.
    model.gate.wait_held(1);
    post(addr, "/v1/emotions", &conversation(1, 1)).assert_error(429, "Overloaded", "");
    model.gate.set_closed(false);
    server.wait_idle();
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    assert_predictions(
        &post(addr, "/v1/emotions", &conversation(1, 2)),
        2,
        &classes,
    );
    server.stop();
}

#[test]
fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let model = test_model(true);
    let mut server = Running::start(model.clone(), synthetic_model(), config());
    let addr = server.addr;
    model.gate.set_closed(true);
    let held = std::thread::spawn(move || post(addr, "/v1/emotions", &conversation(2, 3)));
    model.gate.wait_held(1);
    server.begin_shutdown();
    // No new connection is accepted…
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        std::thread::sleep(Duration::from_millis(20));
    }
    // …but the server waits for the request in flight, which is answered.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.stopped(), "stopped with a request in flight");
    model.gate.set_closed(false);
    let classes = synthetic_classes();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    assert_predictions(&held.join().unwrap(), 6, &classes);
    server.stop();
}

/// The models directory with MiniLM installed, or `None` (the test is
/// skipped, with a message) when it is not.
fn minilm_models() -> Option<PathBuf> {
    let models = std::env::var_os(mmer_core::MODELS_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    if !models.join("all-minilm-l6-v2/model.safetensors").exists() {
        eprintln!("skipping: MiniLM weights not installed (run scripts/setup.sh)");
        return None;
    }
    Some(models)
}

/// The shipped text model (MELD, MiniLM) served: the example conversation
/// gets the answer `Predictor::predict` gives, and a burst of concurrent
/// clients past a queue of 1 gets only 200s and 429s, with the server
/// right afterwards.
#[test]
fn the_shipped_text_model_answers_as_predict_does() {
    let Some(models) = minilm_models() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models/text-meld-minilm");
    let predictor = Arc::new(Predictor::load_with(&dir, &models).unwrap());
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/conversation.jsonl"),
    )
    .unwrap();
    let turns: Vec<Value> = example
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let body = json!({ "turns": turns }).to_string();
    let config = ServeConfig {
        queue: 1,
        ..config()
    };
    let server = Running::start(predictor.clone(), &dir, config);
    let addr = server.addr;

    let info = get(addr, "/info").json();
    assert_eq!(info["text_encoder"], "minilm");
    assert_eq!(info["labels"]["name"], "meld");
    let classes = mmer_core::LabelSpace::meld().classes;
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();

    let served = assert_predictions(&post(addr, "/v1/emotions", &body), turns.len(), &classes);
    let dialogues = mmer_serve::request::parse(
        body.as_bytes(),
        &predictor.checkpoint().labels,
        ServeConfig::DEFAULT_MAX_TURNS,
    )
    .unwrap();
    let direct = Predict::predict(predictor.as_ref(), dialogues).unwrap();
    for (s, d) in served.iter().zip(&direct) {
        assert_eq!(s["utterance"], d.utterance.as_str());
        assert_eq!(s["emotion"], d.emotion.as_str(), "{s}");
        assert_eq!(s["gold"], json!(d.gold));
        let p = s["confidence"].as_f64().unwrap();
        assert!((p - f64::from(d.confidence)).abs() < 1e-6, "{s}");
    }

    let clients = 6;
    let start = Arc::new(std::sync::Barrier::new(clients));
    let burst: Vec<_> = (0..clients)
        .map(|_| {
            let (start, body) = (start.clone(), body.clone());
            std::thread::spawn(move || {
                start.wait();
                post(addr, "/v1/emotions", &body)
            })
        })
        .collect();
    let mut ok = 0;
    for reply in burst {
        let reply = reply.join().unwrap();
        match reply.status {
            200 => {
                assert_predictions(&reply, turns.len(), &classes);
                ok += 1;
            }
            _ => reply.assert_error(429, "Overloaded", "retry later"),
        }
    }
    assert!(ok >= 1);
    server.wait_idle();
    let again = assert_predictions(&post(addr, "/v1/emotions", &body), turns.len(), &classes);
    assert_eq!(again, served);
    server.stop();
}

// ---------------------------------------------------------------- media

/// The shipped models for `--media` (MiniLM, Whisper, face models) and
/// ffmpeg, or `None` (skipped, with a message).
fn media_analyzer() -> Option<(Arc<Analyzer>, PathBuf)> {
    let models = minilm_models()?;
    if !models.join("whisper-tiny.en").exists() || !models.join("seetaface").exists() {
        eprintln!("skipping: Whisper or the face models not installed (run scripts/setup.sh)");
        return None;
    }
    let ffmpeg = mmer_media::Ffmpeg::from_env();
    if ffmpeg.version().is_err() {
        eprintln!("skipping: ffmpeg not found");
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = AnalyzeConfig {
        text_model: root.join("assets/models/text-meld-minilm"),
        audio_model: root.join("assets/models/audio-emodb"),
        models_dir: models,
        ..AnalyzeConfig::default()
    };
    Some((Arc::new(Analyzer::new(config, ffmpeg).unwrap()), root))
}

fn post_bytes(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw)
}

/// 16-bit PCM of `samples`.
fn pcm(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("no message from the stream within 120 s"),
        }
    }
}

/// `--media`: an upload is analysed as `mmer analyze` analyses the file;
/// truncated media is 422, a long recording or a large body 413; a live
/// stream of two utterances gets one answer per turn, then `end`, the
/// second read from its video frames too; bad audio or a frame whose bytes
/// do not match its header is an error message and a close; a client that
/// disconnects mid-stream leaves the server answering the next one.
#[test]
fn media_uploads_and_live_streams() {
    let Some((analyzer, root)) = media_analyzer() else {
        return;
    };
    let clip_path = root.join("assets/examples/1001_DFA_ANG_XX.flv");
    let clip = std::fs::read(&clip_path).unwrap();
    let text_dir = root.join("assets/models/text-meld-minilm");
    let predictor = Arc::new(Predictor::load_with(&text_dir, &minilm_models().unwrap()).unwrap());
    let config = ServeConfig {
        max_upload_bytes: 1 << 20,
        max_media_s: 5.0,
        max_streams: 2,
        ..config()
    };
    let server = Running::start_with(predictor, Some(analyzer.clone()), &text_dir, config);
    let addr = server.addr;
    assert_eq!(get(addr, "/info").json()["media"], true);

    // The upload, as the library analyses the file.
    let reply = post_bytes(addr, "/v1/analyze", &clip);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let served = reply.json();
    let direct = serde_json::to_value(analyzer.analyze(&clip_path, false).unwrap()).unwrap();
    assert_eq!(served["file"], "upload");
    assert_eq!(
        served["turns"].as_array().unwrap().len(),
        direct["turns"].as_array().unwrap().len()
    );
    for (s, d) in served["turns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(direct["turns"].as_array().unwrap())
    {
        for key in ["text", "emotion", "speaker"] {
            assert_eq!(s[key], d[key], "{key}");
        }
        // Numbers to float noise (the models run on other threads here).
        assert_close(&s["probabilities"], &d["probabilities"]);
        assert_close(&s["evidence"], &d["evidence"]);
    }

    // Damaged and oversized uploads; the server answers the next request.
    post_bytes(addr, "/v1/analyze", &clip[..clip.len() / 3]).assert_error(
        422,
        "Validation",
        "not a recording ffmpeg can read",
    );
    post_bytes(addr, "/v1/analyze", b"").assert_error(422, "Validation", "empty");
    post_bytes(addr, "/v1/analyze", &vec![0u8; (1 << 20) + 1]).assert_error(
        413,
        "PayloadTooLarge",
        "--max-upload-bytes",
    );
    let seconds = 8;
    let mut wav = mmer_wav_header(seconds * 16_000);
    wav.extend(vec![0u8; seconds * 32_000]);
    post_bytes(addr, "/v1/analyze", &wav).assert_error(413, "PayloadTooLarge", "--max-media-s");
    assert_eq!(get(addr, "/health").status, 200);

    // A live stream: the clip's speech twice, the first cut in the middle
    // by a short pause (an early analysis, dropped when speech resumes),
    // then a long pause (an early analysis that becomes the answer).
    let audio = analyzer
        .ffmpeg()
        .decode_audio(&analyzer.ffmpeg().probe(&clip_path).unwrap())
        .unwrap()
        .samples;
    let silence = |s: f64| vec![0.0f32; (s * 16_000.0) as usize];
    let mid = audio.len() / 2;
    let stream = [
        silence(0.5),
        audio[..mid].to_vec(),
        silence(0.35),
        audio[mid..].to_vec(),
        silence(1.5),
        audio.clone(),
        silence(0.3),
    ]
    .concat();
    // The clip's video frames, timed at the second utterance of the stream.
    let second_at = (stream.len() - audio.len() - silence(0.3).len()) as f64 / 16_000.0;
    let frames = analyzer
        .ffmpeg()
        .keyframes(
            &analyzer.ffmpeg().probe(&clip_path).unwrap(),
            &mmer_media::KeyframeOptions {
                count: 6,
                max_side: None,
                mode: mmer_media::KeyframeMode::Uniform,
            },
        )
        .unwrap();
    let url = format!("ws://{addr}/v1/stream");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let ready = next_json(&mut socket).await.unwrap();
        assert_eq!(ready["type"], "ready");
        assert_eq!(ready["sample_rate"], 16_000);
        assert_eq!(ready["video"]["format"], "rgb24");
        for frame in &frames {
            let header = json!({
                "type": "frame",
                "time_s": second_at + frame.time_s,
                "width": frame.width,
                "height": frame.height,
            });
            socket
                .send(Message::Text(header.to_string().into()))
                .await
                .unwrap();
            socket
                .send(Message::Binary(frame.data.clone().into()))
                .await
                .unwrap();
        }
        for chunk in pcm(&stream).chunks(3_200) {
            socket
                .send(Message::Binary(chunk.to_vec().into()))
                .await
                .unwrap();
        }
        socket
            .send(Message::Text(r#"{"type": "end"}"#.into()))
            .await
            .unwrap();
        let mut turns = Vec::new();
        let end = loop {
            let message = next_json(&mut socket)
                .await
                .expect("the stream ended early");
            match message["type"].as_str() {
                Some("turn") => turns.push(message),
                Some("end") => break message,
                other => panic!("unexpected {other:?}: {message}"),
            }
        };
        assert_eq!(end["turns"], turns.len());
        assert_eq!(turns.len(), 2, "{turns:?}");
        for (k, turn) in turns.iter().enumerate() {
            assert_eq!(turn["turn"], k);
            let text = turn["text"].as_str().unwrap().to_lowercase();
            assert!(text.contains("jacket"), "{text}");
            assert!(turn["latency_ms"].as_f64().unwrap() >= 0.0);
            assert!(turn["evidence"]["text"].is_object() && turn["evidence"]["audio"].is_object());
            let total: f64 = turn["probabilities"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!((total - 1.0).abs() < 1e-3, "{total}");
        }
        // The short pause did not close the first turn.
        let pause_end = 0.5 + mid as f64 / 16_000.0 + 0.35;
        assert!(
            turns[0]["end_s"].as_f64().unwrap() > pause_end,
            "{}",
            turns[0]
        );
        // Only the second turn has frames, and a face was read from them.
        let evidence = |k: usize, key: &str| turns[k]["evidence"][key].clone();
        assert_eq!(evidence(0, "keyframes"), 0);
        assert!(evidence(0, "face").is_null());
        // (those inside its speech, padding included)
        let keyframes = evidence(1, "keyframes").as_u64().unwrap() as usize;
        assert!((1..=frames.len()).contains(&keyframes), "{}", turns[1]);
        assert!(evidence(1, "faces").as_u64().unwrap() >= 1, "{}", turns[1]);
        assert!(evidence(1, "face").is_object(), "{}", turns[1]);
        // The second turn starts after the first ends, both inside the stream.
        assert!(turns[1]["start_s"].as_f64().unwrap() > turns[0]["end_s"].as_f64().unwrap());
        assert!(turns[1]["end_s"].as_f64().unwrap() <= stream.len() as f64 / 16_000.0 + 1e-6);
        assert!(next_json(&mut socket).await.is_none(), "closed after end");

        // Bad audio: an error, then the close.
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        next_json(&mut socket).await.unwrap();
        socket
            .send(Message::Binary(vec![0u8; 3].into()))
            .await
            .unwrap();
        let error = next_json(&mut socket).await.unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error_type"], "Validation");
        assert!(
            error["error"].as_str().unwrap().contains("even number"),
            "{error}"
        );
        assert!(next_json(&mut socket).await.is_none());

        // A frame whose bytes do not match its header: an error, the close.
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        next_json(&mut socket).await.unwrap();
        let header = r#"{"type": "frame", "time_s": 0.5, "width": 4, "height": 2}"#;
        socket.send(Message::Text(header.into())).await.unwrap();
        socket
            .send(Message::Binary(vec![0u8; 23].into()))
            .await
            .unwrap();
        let error = next_json(&mut socket).await.unwrap();
        assert_eq!(error["error_type"], "Validation", "{error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("a 4x2 RGB frame takes 24 bytes, got 23"),
            "{error}"
        );
        assert!(next_json(&mut socket).await.is_none());

        // A client gone mid-stream, mid-turn.
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        next_json(&mut socket).await.unwrap();
        socket
            .send(Message::Binary(pcm(&stream[..stream.len() / 2]).into()))
            .await
            .unwrap();
        drop(socket);
    });
    // The server is still right: a fresh stream slot and a prediction.
    server.wait_idle();
    let early = |outcome: &str| {
        let name = format!("mmer_stream_early_analyses_total{{outcome=\"{outcome}\"}}");
        server.metric(&name).unwrap_or(0.0)
    };
    assert!(early("used") >= 1.0, "no early analysis was used");
    assert!(
        early("dropped") >= 1.0,
        "the short pause's early analysis was not dropped"
    );
    runtime.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        assert_eq!(next_json(&mut socket).await.unwrap()["type"], "ready");
    });
    assert_eq!(post_bytes(addr, "/v1/analyze", &clip).status, 200);

    // Shutdown with a stream mid-turn: the turn is answered, then `end`.
    let mut server = server;
    runtime.block_on(async {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        next_json(&mut socket).await.unwrap();
        let speech = [silence(0.3), audio.clone()].concat();
        socket
            .send(Message::Binary(pcm(&speech).into()))
            .await
            .unwrap();
        socket.send(Message::Ping(Vec::new().into())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.begin_shutdown();
        let turn = next_json(&mut socket).await.expect("the open turn");
        assert_eq!(turn["type"], "turn", "{turn}");
        assert_eq!(
            next_json(&mut socket).await.unwrap(),
            json!({"type": "end", "turns": 1})
        );
    });
    server.stop();
}

/// A 16 kHz mono 16-bit WAV header for `samples` samples.
fn mmer_wav_header(samples: usize) -> Vec<u8> {
    let data = (samples * 2) as u32;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&16_000u32.to_le_bytes());
    h.extend_from_slice(&32_000u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

/// `a` and `b` equal, numbers within 1e-4.
fn assert_close(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.values()
                .zip(y.values())
                .for_each(|(x, y)| assert_close(x, y));
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_close(x, y));
        }
        _ => assert_eq!(a, b),
    }
}
