//! End-to-end tests of the `mmer` binary.

use std::path::Path;
use std::process::{Command, Output};

fn mmer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(args)
        .env("MMER_LOG", "warn")
        .output()
        .expect("the mmer binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mmer data stats --json` of conversation files `data` with an extracted
/// media store.
fn coverage_stats(data: &Path, store: &str) -> serde_json::Value {
    let o = mmer(&[
        "data",
        "stats",
        "--dataset",
        "conversations",
        "--data",
        data.to_str().unwrap(),
        "--media-store",
        store,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("file exists")).expect("valid JSON")
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = mmer(&["demo", "--max-epochs", "2", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Sample conversation"), "{text}");
    assert!(
        text.contains("labelled turns predicted correctly"),
        "{text}"
    );
    let results = read_json(&out.join("results.json"));
    let wf1 = results["test"]["weighted_f1"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&wf1));
}

/// A reloaded checkpoint must score exactly what the trainer measured.
#[test]
fn train_then_eval_reproduces_test_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let o = mmer(&[
        "train",
        "--dataset",
        "synthetic",
        "--modalities",
        "audio,face",
        "--context",
        "dialogue-speaker",
        "--seeds",
        "3,4",
        "--max-epochs",
        "2",
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("weighted_f1"), "{}", stdout(&o));
    let results = read_json(&out.join("results.json"));
    assert_eq!(results["per_seed"].as_array().unwrap().len(), 2);
    assert_eq!(results["modalities"], serde_json::json!(["audio", "face"]));
    let report = dir.path().join("eval.html");
    let o = mmer(&["eval", out_s, "--report", report.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The report: self-contained, a learning curve per seed.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    assert!(html.contains("Confusion matrix"));
    for seed in ["3", "4"] {
        assert!(
            html.contains(&format!("class=\"curve loss\" data-seed=\"{seed}\"")),
            "seed {seed}"
        );
    }
    let eval = read_json(&out.join("eval-test.json"));
    for metric in ["accuracy", "weighted_f1", "macro_f1"] {
        let trained = results["test"][metric]["mean"].as_f64().unwrap();
        let reloaded = eval["aggregate"][metric]["mean"].as_f64().unwrap();
        assert!(
            (trained - reloaded).abs() < 1e-9,
            "{metric}: {trained} vs {reloaded}"
        );
    }

    // Robustness: the full condition and the 0.0 rate reproduce the test
    // metric; removing a modality is scored, not refused.
    let json = dir.path().join("robustness.json");
    let svg = dir.path().join("robustness.svg");
    let o = mmer(&[
        "robustness",
        out_s,
        "--rates",
        "0,0.5",
        "--draws",
        "1",
        "--out",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| no face |"), "{}", stdout(&o));
    let report = &read_json(&json)[0];
    let names: Vec<&str> = report["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["full", "no audio", "no face"]);
    let test_wf1 = 100.0 * eval["aggregate"]["weighted_f1"]["mean"].as_f64().unwrap();
    let full = report["conditions"][0]["weighted_f1"]["mean"]
        .as_f64()
        .unwrap();
    let rate_0 = report["sweep"][0]["weighted_f1"]["mean"].as_f64().unwrap();
    assert!(
        (full - test_wf1).abs() < 1e-6 && (rate_0 - test_wf1).abs() < 1e-6,
        "{full} {rate_0} {test_wf1}"
    );
    let removed = report["sweep"][1]["removed_share"].as_f64().unwrap();
    assert!(removed > 0.3 && removed <= 0.5, "{removed}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("run"),
        "{chart:.200}"
    );
}

/// `bench train-epoch --config … --export` times any model and writes the
/// exact training inputs another implementation needs (bench/pytorch_amuse.py).
#[test]
fn bench_train_epoch_exports_the_training_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amuse.toml");
    std::fs::write(
        &config,
        "[data]\ndataset = \"synthetic\"\n[data.synthetic]\ndialogues = [6, 2, 2]\n\
         [train]\nmodalities = [\"text\", \"audio\"]\n\
         [train.model]\nfusion = \"man_af\"\nd_modality = 8\nman_layers = 1\nman_heads = 2\n",
    )
    .unwrap();
    let export = dir.path().join("export");
    let order = dir.path().join("order.json");
    let o = mmer(&[
        "bench",
        "train-epoch",
        "--config",
        config.to_str().unwrap(),
        "--batch-size",
        "4",
        "--export",
        export.to_str().unwrap(),
        "--order-out",
        order.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["fusion"], "man_af");
    assert_eq!(report["dialogues"], 6);
    assert!(report["parameters"].as_u64().unwrap() > 0);

    let settings = read_json(&export.join("train.json"));
    assert_eq!(settings["sequences"], true);
    assert_eq!(settings["train"]["model"]["man_layers"], 1);
    let dialogues = settings["dialogues"].as_array().unwrap();
    assert_eq!(dialogues.len(), 6);
    let utterances: usize = dialogues
        .iter()
        .map(|d| d["speakers"].as_array().unwrap().len())
        .sum();
    let bytes = std::fs::read(export.join("train.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for modality in ["text", "audio"] {
        let lengths = tensors.tensor(&format!("lengths.{modality}")).unwrap();
        let frames = tensors.tensor(&format!("frames.{modality}")).unwrap();
        assert_eq!(lengths.shape(), [utterances]);
        let total: i64 = lengths
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .sum();
        assert_eq!(frames.shape()[0] as i64, total, "{modality}");
    }
    let orders: Vec<Vec<String>> = serde_json::from_slice(&std::fs::read(&order).unwrap()).unwrap();
    assert_eq!(orders[0].len(), 6);
}

#[test]
fn bad_paths_fail_with_a_message_naming_them() {
    let o = mmer(&["predict", "--model", "/nonexistent/seed-0", "x.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/seed-0"), "{}", stderr(&o));
    let o = mmer(&[
        "data",
        "stats",
        "--dataset",
        "meld",
        "--data",
        "/nonexistent/meld",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/meld"), "{}", stderr(&o));
}

#[test]
fn train_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        "[data]\ndataset = \"synthetic\"\n[train]\nlearning_rat = 0.1\n",
    )
    .unwrap();
    let o = mmer(&["train", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("learning_rat"), "{}", stderr(&o));
}

/// Trains on the user conversation format with real MiniLM embeddings (and
/// MPNet layer states), then predicts the example conversation. Skips
/// without the installed weights.
#[test]
fn conversations_train_and_predict_with_real_encoders() {
    let Some(models) = minilm_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mine");
    write_conversation_splits(
        &data,
        &[
            ("I love this, thank you so much!", "\"joy\""),
            ("Get out of my room right now!", "\"anger\""),
            ("The meeting is at three.", "\"neutral\""),
            ("Wait, you did what?!", "\"surprise\""),
            ("I miss her every day.", "\"sadness\""),
            ("Okay, see you later.", "\"neutral\""),
        ],
    );
    let store = dir.path().join("store");
    let train = |out: &Path, text: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args([
                "train",
                "--dataset",
                "conversations",
                "--data",
                data.to_str().unwrap(),
            ])
            .args(text)
            .args([
                "--seeds",
                "0",
                "--max-epochs",
                "3",
                "--out",
                out.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
            ])
            .env("MMER_MODELS_DIR", &models)
            .output()
            .unwrap()
    };
    let out = dir.path().join("run");
    let o = train(&out, &["--encoder", "minilm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_predicts_the_example(&out.join("seed-0"), &models);

    // predict feeds a model what training did: its test accuracy is the
    // one results.json reports.
    let predicts_its_test_accuracy = |run: &Path| {
        let results = read_json(&run.join("results.json"));
        let predictions = predict_jsonl(&run.join("seed-0"), &data.join("test.jsonl"), &models);
        let right = predictions
            .iter()
            .filter(|p| p["emotion"] == p["gold"])
            .count();
        let accuracy = right as f64 / predictions.len() as f64;
        let reported = results["per_seed"][0]["test"]["accuracy"].as_f64().unwrap();
        assert!(
            (accuracy - reported).abs() < 1e-9,
            "{}: {accuracy} vs {reported}",
            run.display()
        );
    };

    // The conversation in the encoder's input (issue 17): the checkpoint
    // records the window, and predict builds the same inputs.
    let in_context = dir.path().join("in-context");
    let o = train(
        &in_context,
        &["--encoder", "minilm", "--set", "data.text_context={}"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = read_json(&in_context.join("seed-0/checkpoint.json"));
    assert_eq!(
        checkpoint["text_encoder"], "minilm+context-p3-f1-n128-speakers",
        "{checkpoint}"
    );
    predicts_its_test_accuracy(&in_context);

    // MiniLM's last layer fine-tuned with the model (issue 17), with the
    // conversation in its input: the layer is stored beside the model, and
    // predict and eval (also through a label map) run it (predict detects a
    // damaged copy).
    let tuned = dir.path().join("tuned");
    let tuned_args = [
        "--encoder",
        "minilm",
        "--text-layers",
        "6",
        "--set",
        "train.finetune.layers=1",
        "--set",
        "data.text_context={past=2,future=1,speakers=false,max_tokens=64}",
    ];
    let o = train(&tuned, &tuned_args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("token states under the fine-tuned layers"));
    // Resuming the finished run reuses its seed and computes no token
    // states: nothing is left to train.
    let o = train(&tuned, &[&tuned_args[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("reusing the finished seed")
            && !stderr(&o).contains("token states under the fine-tuned layers"),
        "{}",
        stderr(&o)
    );
    let results = read_json(&tuned.join("results.json"));
    assert!(
        results["per_seed"][0]["test"]["weighted_f1"].is_number(),
        "{results}"
    );
    let checkpoint = read_json(&tuned.join("seed-0/checkpoint.json"));
    assert!(checkpoint["encoder_sha256"].is_string(), "{checkpoint}");
    assert_predicts_the_example(&tuned.join("seed-0"), &models);
    predicts_its_test_accuracy(&tuned);
    // eval runs each seed's layers as predict does: the run's test scores.
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["eval", "--split", "test"])
        .arg(&tuned)
        .env("MMER_MODELS_DIR", &models)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let evaluation = read_json(&tuned.join("eval-test.json"));
    assert_eq!(
        evaluation["per_seed"][0][1]["weighted_f1"], results["per_seed"][0]["test"]["weighted_f1"],
        "{evaluation}"
    );
    // ... and so does scoring through a label map (the run's MELD classes
    // grouped into the comparison classes of the IEMOCAP → MELD map, on its
    // own data).
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["eval", "--label-map"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/label-maps/iemocap-to-meld.toml"
        ))
        .arg(&tuned)
        .env("MMER_MODELS_DIR", &models)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mapped = std::fs::read_dir(&tuned)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("eval-map-iemocap-to-meld")
        });
    assert!(
        mapped,
        "no eval-map-iemocap-to-meld-*.json in {}",
        tuned.display()
    );
    // ... and robustness: its full condition is the run's test score (the
    // frozen features the store holds would score differently).
    let json = dir.path().join("tuned-robustness.json");
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["robustness", "--rates", "0", "--draws", "1", "--out"])
        .arg(&json)
        .arg(&tuned)
        .env("MMER_MODELS_DIR", &models)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = &read_json(&json)[0];
    let full = report["conditions"][0]["weighted_f1"]["mean"]
        .as_f64()
        .unwrap();
    let test_wf1 = 100.0
        * results["per_seed"][0]["test"]["weighted_f1"]
            .as_f64()
            .unwrap();
    assert!((full - test_wf1).abs() < 1e-9, "{full} vs {test_wf1}");
    let layers = tuned.join("seed-0/text_encoder.bpk");
    let mut bytes = std::fs::read(&layers).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&layers, bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["predict", "--model"])
        .arg(tuned.join("seed-0"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/examples/conversation.jsonl"
        ))
        .env("MMER_MODELS_DIR", &models)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("text_encoder.bpk") && stderr(&o).contains("damaged"),
        "{}",
        stderr(&o)
    );
    let o = train(
        &dir.path().join("deep"),
        &[
            "--encoder",
            "minilm",
            "--text-layers",
            "6",
            "--set",
            "train.finetune.layers=7",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("between 1 and the pooled layer 6"),
        "{}",
        stderr(&o)
    );

    // MiniLM has 6 layers, so no 8th; MPNet's 8th trains and predicts (the
    // checkpoint records the layer, so predict embeds only 8 layers).
    let o = train(
        &dir.path().join("bad"),
        &["--encoder", "minilm", "--text-layers", "8"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("0..=6") && stderr(&o).contains("not 8"),
        "{}",
        stderr(&o)
    );
    if models.join("all-mpnet-base-v2/model.safetensors").exists() {
        let out = dir.path().join("layer8");
        let o = train(&out, &["--encoder", "mpnet", "--text-layers", "8"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let checkpoint = read_json(&out.join("seed-0/checkpoint.json"));
        assert_eq!(checkpoint["text_encoder"], "mpnet-layers-8");
        assert_predicts_the_example(&out.join("seed-0"), &models);
    }
}

/// `mmer predict --format jsonl --model model file`: one JSON object per turn.
fn predict_jsonl(model: &Path, file: &Path, models: &Path) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["predict", "--format", "jsonl", "--model"])
        .arg(model)
        .arg(file)
        .env("MMER_MODELS_DIR", models)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `mmer predict --format jsonl` on docs/examples/conversation.jsonl: one
/// distribution over MELD's classes per turn.
fn assert_predicts_the_example(model: &Path, models: &Path) {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/conversation.jsonl"
    );
    let predictions = predict_jsonl(model, Path::new(example), models);
    let turns = std::fs::read_to_string(example).unwrap().lines().count();
    assert_eq!(predictions.len(), turns);
    let classes = [
        "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
    ];
    for p in &predictions {
        assert!(classes.contains(&p["emotion"].as_str().unwrap()), "{p}");
        let probabilities = p["probabilities"].as_object().unwrap();
        let names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        let mut sorted = classes.to_vec();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "one probability per class name");
        let sum: f64 = probabilities.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }

    // The user's own dialogue ids and turn numbers (1, 3, 5 here) come back
    // in every format, not the rank of each turn.
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("sparse.jsonl");
    std::fs::write(
        &sparse,
        "{\"dialogue\": \"call-7\", \"turn\": 5, \"speaker\": \"Ana\", \"text\": \"Fine.\"}\n\
         {\"dialogue\": \"call-7\", \"turn\": 1, \"speaker\": \"Ana\", \"text\": \"Hello?\"}\n\
         {\"dialogue\": \"call-7\", \"turn\": 3, \"speaker\": \"Ben\", \"text\": \"You are late!\"}\n",
    )
    .unwrap();
    let predict = |format: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args(["predict", "--format", format, "--model"])
            .arg(model)
            .arg(&sparse)
            .env("MMER_MODELS_DIR", models)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let jsonl: Vec<serde_json::Value> = predict("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<(String, u64, String)> = jsonl
        .iter()
        .map(|p| {
            (
                p["dialogue"].as_str().unwrap().to_string(),
                p["turn"].as_u64().unwrap(),
                p["speaker"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, String)> = [(1, "Ana"), (3, "Ben"), (5, "Ana")]
        .iter()
        .map(|&(t, s)| ("call-7".to_string(), t, s.to_string()))
        .collect();
    assert_eq!(keys, expected);
    let csv = predict("csv");
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("dialogue,turn,speaker,utterance,emotion,confidence,gold,p_neutral,"),
        "{header}"
    );
    let turns: Vec<&str> = lines.map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(turns, ["1", "3", "5"]);
    let table = predict("table");
    assert!(table.starts_with("dialogue"), "{table}");
    assert!(table.contains("call-7       5  Ana"), "{table}");
}

/// `mmer extract` on a conversation folder: the good clip is extracted, the
/// corrupt one is reported and fails the exit status, a re-run skips, and
/// `data stats --media-store` counts the audio coverage.
#[test]
fn extract_reports_failures_resumes_and_stats_show_coverage() {
    let crema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/crema-d/1001_DFA_ANG_XX.flv");
    let has_ffmpeg = Command::new("ffprobe").arg("-version").output().is_ok();
    if !crema.exists() || !has_ffmpeg {
        eprintln!("extract: skipped, needs ffmpeg and ../shared/data/crema-d");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("conv");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(&crema, data.join("angry.flv")).unwrap();
    std::fs::write(data.join("broken.mp4"), b"garbage").unwrap();
    std::fs::write(
        data.join("train.jsonl"),
        concat!(
            r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "Don't forget a jacket.", "label": "anger", "video": "angry.flv"}"#,
            "\n",
            r#"{"dialogue": "d", "turn": 1, "speaker": "B", "text": "Fine.", "label": "neutral", "video": "broken.mp4"}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("valid.jsonl"),
        r#"{"dialogue": "v", "turn": 0, "speaker": "A", "text": "Okay.", "label": "neutral"}"#,
    )
    .unwrap();
    let store = dir.path().join("store");
    let (conv, store_s) = (data.join("train.jsonl"), store.to_str().unwrap());
    let args = [
        "extract",
        conv.to_str().unwrap(),
        "--out",
        store_s,
        "--jobs",
        "2",
        "--no-visual",
    ];
    let o = mmer(&args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a failed file fails the run: {}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("1 ok"), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));
    assert!(stderr(&o).contains("broken.mp4"), "{}", stderr(&o));
    let report = read_json(&store.join("report.json"));
    assert_eq!(report["failed"], 1);
    assert_eq!(report["files"][0]["id"], "d_utt0");
    assert_eq!(report["files"][0]["presence"]["audio"], "present");

    let o = mmer(&args);
    assert!(stdout(&o).contains("1 skipped"), "{}", stdout(&o));

    let stats = coverage_stats(&data, store_s);
    assert_eq!(stats["train"]["modalities"]["audio"], 1);
    assert_eq!(stats["train"]["modalities"]["text"], 2);
    assert_eq!(stats["valid"]["modalities"]["text"], 1);
}

/// Issue 4: one recording of a whole conversation plus a timed transcript.
/// Turns cut their `start`/`end` out of the same file: a range with sound
/// is present, a range in the silent second half is silent (so the cut
/// really seeks), a range past the end and a repeated range fail naming
/// the turn, and a changed range re-extracts only that turn.
#[test]
fn extract_cuts_timed_turns_out_of_one_recording() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("conv");
    std::fs::create_dir(&data).unwrap();
    let talk = data.join("talk.mkv");
    // 4 s of video; a 220 Hz tone for 2 s, then digital silence (PCM keeps it exact).
    if !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=4:size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=220:duration=2,apad=whole_dur=4",
        "-c:v",
        "mpeg4",
        "-c:a",
        "pcm_s16le",
        "-shortest",
        talk.to_str().unwrap(),
    ]) {
        eprintln!("extract (timed turns): skipped, needs ffmpeg");
        return;
    }
    let transcript = |second_end: f64| {
        let turn = |t: u32, start: f64, end: f64| {
            format!(
                r#"{{"dialogue": "d", "turn": {t}, "speaker": "A", "text": "line {t}", "video": "talk.mkv", "start": {start}, "end": {end}}}"#
            ) + "\n"
        };
        turn(0, 0.0, 1.0) + &turn(1, 2.5, second_end) + &turn(2, 3.0, 9.0) + &turn(3, 0.0, 1.0)
    };
    let conv = data.join("train.jsonl");
    std::fs::write(&conv, transcript(3.5)).unwrap();
    let store = dir.path().join("store");
    let args = [
        "extract",
        conv.to_str().unwrap(),
        "--out",
        store.to_str().unwrap(),
        "--no-visual",
    ];
    let o = mmer(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let first = report_file(&store, "d_utt0");
    assert_eq!(first["presence"]["audio"], "present", "{first}");
    assert!((first["duration_s"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    let quiet = report_file(&store, "d_utt1");
    assert_eq!(quiet["presence"]["audio"], "silent", "{quiet}");
    for (id, reason) in [
        ("d_utt2", "ends after the clip"),
        ("d_utt3", "same time range"),
    ] {
        let failed = report_file(&store, id);
        assert_eq!(failed["outcome"], "failed");
        assert!(
            failed["reason"].as_str().unwrap().contains(reason),
            "{failed}"
        );
    }

    std::fs::write(&conv, transcript(3.0)).unwrap();
    let o = mmer(&args);
    assert!(stdout(&o).contains("1 skipped"), "{}", stdout(&o));
    let changed = report_file(&store, "d_utt1");
    assert_eq!(changed["outcome"], "ok", "{changed}");
    assert!((changed["duration_s"].as_f64().unwrap() - 0.5).abs() < 1e-6);
}

/// The line of utterance `id` in the last `mmer extract` report of `store`.
fn report_file(store: &Path, id: &str) -> serde_json::Value {
    let report = read_json(&store.join("report.json"));
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report}"))
        .clone()
}

/// The installed models directory (`$MMER_MODELS_DIR`, else the workspace's
/// `models/`), or `None` when the face models are not installed.
fn face_models() -> Option<std::path::PathBuf> {
    let models = std::env::var("MMER_MODELS_DIR").unwrap_or_else(|_| "../../models".into());
    let models = Path::new(&models);
    let installed = models.join("seetaface/seeta_fd_frontal_v1.0.bin").is_file()
        && models.join("fer-mini-xception/model.safetensors").is_file();
    installed.then(|| std::fs::canonicalize(models).unwrap())
}

/// Runs the `ffmpeg` program; false when it is not installed.
fn ffmpeg(args: &[&str]) -> bool {
    Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A folder of media for the sharding tests: `n` generated clips (a tone of
/// its own pitch, testsrc video), the CREMA-D clips when present, and one
/// file ffmpeg cannot read. `None` without ffmpeg.
fn shard_media(dir: &Path, n: usize) -> Option<std::path::PathBuf> {
    let media = dir.join("media");
    std::fs::create_dir_all(media.join("gen")).unwrap();
    for i in 0..n {
        let clip = media.join(format!("gen/clip{i:02}.mkv"));
        let tone = format!("sine=frequency={}:duration=1.5", 150 + 40 * i);
        if !ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1.5:size=160x120:rate=10",
            "-f",
            "lavfi",
            "-i",
            &tone,
            "-c:v",
            "mpeg4",
            "-c:a",
            "pcm_s16le",
            "-shortest",
            clip.to_str().unwrap(),
        ]) {
            return None;
        }
    }
    let crema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/crema-d");
    if let Ok(entries) = std::fs::read_dir(&crema) {
        std::fs::create_dir_all(media.join("crema")).unwrap();
        for entry in entries {
            let path = entry.unwrap().path();
            std::fs::copy(&path, media.join("crema").join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(media.join("broken.mp4"), b"not a video").unwrap();
    Some(media)
}

/// `mmer` with the installed models, not yet run.
fn mmer_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmer"));
    command.args(args).env("MMER_LOG", "warn");
    if let Some(models) = face_models() {
        command.env("MMER_MODELS_DIR", models);
    }
    command
}

/// A store's identity: `manifest.json`, `index.json` and every record,
/// with their bytes (not the per-run reports, shard plans or temporaries).
fn store_bytes(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for name in ["manifest.json", "index.json"] {
        out.insert(name.to_string(), std::fs::read(root.join(name)).unwrap());
    }
    for entry in std::fs::read_dir(root.join("utterances")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Issue 19: `extract --shard i/n` in n concurrent processes, then `store
/// merge` in a shuffled order, is the single process's store byte for
/// byte, for every n from 1 to 8 (audio; generated clips plus the CREMA-D
/// ones when present), and with the Face and Body streams for n = 3 when
/// the face models are installed. The unreadable file fails its shard and
/// the merge (exit 2, named), and is in neither store.
#[test]
fn sharded_extraction_merges_into_the_single_process_store() {
    let dir = tempfile::tempdir().unwrap();
    let Some(media) = shard_media(dir.path(), 6) else {
        eprintln!("sharded extraction: skipped, needs ffmpeg");
        return;
    };
    let media_s = media.to_str().unwrap();
    let extract = |out: &Path, extra: &[&str]| {
        let mut args = vec!["extract", media_s, "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        mmer_command(&args).output().unwrap()
    };
    let mut settings: Vec<(&str, Vec<u32>)> = vec![("--no-visual", (1..=8).collect())];
    if face_models().is_some() {
        settings.push(("--keyframes=4", vec![3]));
    } else {
        eprintln!("sharded extraction: Face/Body part skipped, face models not installed");
    }
    for (setting, counts) in settings {
        let single = dir.path().join(format!("single{setting}"));
        let o = extract(&single, &["--jobs", "2", setting]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "broken.mp4 fails the run: {}",
            stderr(&o)
        );
        let expected = store_bytes(&single);
        assert!(!expected.contains_key("broken.safetensors"));
        for count in counts {
            let shards: Vec<std::path::PathBuf> = (0..count)
                .map(|i| dir.path().join(format!("n{count}{setting}-{i}")))
                .collect();
            let running: Vec<_> = shards
                .iter()
                .enumerate()
                .map(|(i, out)| {
                    let shard = format!("{i}/{count}");
                    let args = ["extract", media_s, "--out", out.to_str().unwrap()];
                    mmer_command(&args)
                        .args(["--shard", &shard, "--jobs", "1", setting])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let mut failed_shards = 0;
            for mut child in running {
                if !child.wait().unwrap().success() {
                    failed_shards += 1;
                }
            }
            assert_eq!(
                failed_shards, 1,
                "only broken.mp4's shard fails ({count} shards)"
            );
            let mut order: Vec<&str> = shards.iter().map(|p| p.to_str().unwrap()).collect();
            order.reverse();
            order.rotate_left(count as usize / 2);
            let merged = dir.path().join(format!("merged{count}{setting}"));
            let mut args = vec!["store", "merge"];
            args.extend(&order);
            args.extend(["--out", merged.to_str().unwrap()]);
            let o = mmer(&args);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(stdout(&o).contains("FAILED broken"), "{}", stdout(&o));
            assert!(stderr(&o).contains("1 utterances failed"), "{}", stderr(&o));
            let got = store_bytes(&merged);
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{count} shards {setting}"
            );
            for (name, bytes) in &expected {
                assert!(
                    &got[name] == bytes,
                    "{name} differs ({count} shards {setting})"
                );
            }
        }
    }
}

/// Issue 19: a shard killed mid-run leaves an incomplete store that the
/// merge refuses, naming it; re-running the same command skips every
/// record already written and extracts only the rest (no work lost or
/// done twice), and the merge then equals the single process's store.
#[test]
fn a_killed_shard_resumes_and_then_merges() {
    let dir = tempfile::tempdir().unwrap();
    let Some(media) = shard_media(dir.path(), 16) else {
        eprintln!("killed shard: skipped, needs ffmpeg");
        return;
    };
    std::fs::remove_file(media.join("broken.mp4")).unwrap();
    let media_s = media.to_str().unwrap();
    let store = |name: &str| dir.path().join(name);
    let shard_args = |i: u32| {
        let out = store(&format!("s{i}"));
        let args: Vec<String> = ["extract", media_s, "--out", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .chain([
                "--shard".into(),
                format!("{i}/2"),
                "--jobs".into(),
                "1".into(),
            ])
            .chain(["--no-visual".into()])
            .collect();
        args
    };
    let records = |root: &Path| -> usize {
        std::fs::read_dir(root.join("utterances")).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                .count()
        })
    };
    let args0 = shard_args(0);
    let args0: Vec<&str> = args0.iter().map(String::as_str).collect();
    let mut child = mmer_command(&args0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while records(&store("s0")) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let args1 = shard_args(1);
    let o = mmer(&args1.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    let owned = read_json(&store("s0").join("shard.json"))["utterances"]
        .as_array()
        .unwrap()
        .len();
    let done = records(&store("s0"));
    assert!(done >= 2, "{done} records before the kill");
    let merged = store("merged");
    let merge = || {
        mmer(&[
            "store",
            "merge",
            store("s0").to_str().unwrap(),
            store("s1").to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ])
    };
    if done < owned {
        let o = merge();
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains("did not finish") && stderr(&o).contains("s0"),
            "{}",
            stderr(&o)
        );
        assert!(!merged.exists());
    } else {
        eprintln!("killed shard: the shard finished before the kill; resume not exercised");
    }

    let o = mmer(&args0);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = read_json(&store("s0").join("report.json"));
    assert_eq!(
        report["skipped"], done,
        "records written before the kill are kept"
    );
    assert_eq!(report["ok"], owned - done, "only the rest is extracted");
    let o = merge();
    assert!(o.status.success(), "{}", stderr(&o));
    let single = store("single");
    let o = mmer(&[
        "extract",
        media_s,
        "--out",
        single.to_str().unwrap(),
        "--no-visual",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        store_bytes(&merged) == store_bytes(&single),
        "merged ≠ single"
    );
}

/// Issue 4 (visual): `mmer extract` writes Face and Body next to Audio. The
/// six CREMA-D clips have all three, with a face in ≥ 95 % of keyframes; a
/// generated video without a face and without sound has Body only (Face
/// not detected, Audio absent); an audio-only file has Face and Body
/// absent. A re-run skips, another `--keyframes` re-extracts, and `data
/// stats --media-store` counts the coverage.
#[test]
fn extract_writes_face_and_body_streams() {
    let crema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/crema-d");
    let Some(models) = face_models() else {
        eprintln!("extract (visual): skipped, face models not installed (run scripts/setup.sh)");
        return;
    };
    if !crema.join("labels.csv").is_file() || !ffmpeg(&["-version"]) {
        eprintln!("extract (visual): skipped, needs ffmpeg and ../shared/data/crema-d");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("conv");
    std::fs::create_dir(&data).unwrap();
    let mut clips: Vec<_> = std::fs::read_dir(&crema)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "flv"))
        .collect();
    clips.sort();
    assert_eq!(clips.len(), 6, "one CREMA-D clip per emotion");
    let noface = data.join("noface.mp4");
    assert!(ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25:duration=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        noface.to_str().unwrap(),
    ]));
    let tone = data.join("tone.wav");
    assert!(ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=220:duration=2",
        tone.to_str().unwrap(),
    ]));
    let mut lines = String::new();
    let mut turn = |media: &str, kind: &str| {
        let n = lines.lines().count();
        lines.push_str(&format!(
            "{{\"dialogue\": \"d\", \"turn\": {n}, \"speaker\": \"A\", \"text\": \"t{n}\", \"label\": \"neutral\", \"{kind}\": \"{media}\"}}\n"
        ));
    };
    for clip in &clips {
        let name = clip.file_name().unwrap().to_str().unwrap();
        std::fs::copy(clip, data.join(name)).unwrap();
        turn(name, "video");
    }
    turn("noface.mp4", "video");
    turn("tone.wav", "audio");
    std::fs::write(data.join("train.jsonl"), lines).unwrap();
    std::fs::write(
        data.join("valid.jsonl"),
        r#"{"dialogue": "v", "turn": 0, "speaker": "A", "text": "Okay.", "label": "neutral"}"#,
    )
    .unwrap();
    let store = dir.path().join("store");
    let (conv, store_s) = (data.join("train.jsonl"), store.to_str().unwrap());
    let extract = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args(["extract", conv.to_str().unwrap(), "--out", store_s])
            .args(extra)
            .env("MMER_LOG", "warn")
            .env("MMER_MODELS_DIR", &models)
            .output()
            .unwrap()
    };
    let o = extract(&["--keyframes", "8"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    let index = read_json(&store.join("index.json"));
    let entries = index["utterances"].as_array().unwrap();
    assert_eq!(entries.len(), 8);
    let entry = |id: &str| entries.iter().find(|e| e["id"] == id).unwrap().clone();
    let (mut keyframes, mut faces) = (0, 0);
    for turn in 0..6 {
        let e = entry(&format!("d_utt{turn}"));
        for m in ["audio", "face", "body"] {
            assert_eq!(e["presence"][m], "present", "{m} of {e}");
        }
        assert_eq!(e["frames"]["body"], 8, "{e}");
        keyframes += 8;
        faces += e["frames"]["face"].as_u64().unwrap();
    }
    assert!(
        faces as f64 >= 0.95 * keyframes as f64,
        "a face in {faces} of {keyframes} keyframes"
    );
    let e = entry("d_utt6");
    assert_eq!(e["presence"]["face"], "not_detected", "{e}");
    assert_eq!(e["presence"]["body"], "present", "{e}");
    assert_eq!(e["presence"]["audio"], "absent", "{e}");
    assert!(e["frames"].get("face").is_none(), "no zero rows: {e}");
    let e = entry("d_utt7");
    assert_eq!(e["presence"]["audio"], "present", "{e}");
    assert_eq!(e["presence"]["face"], "absent", "{e}");
    assert_eq!(e["presence"]["body"], "absent", "{e}");
    let manifest = read_json(&store.join("manifest.json"));
    assert_eq!(manifest["streams"]["face"]["dim"], 135);
    assert_eq!(manifest["streams"]["body"]["dim"], 45);

    let o = extract(&["--keyframes", "8"]);
    assert!(stdout(&o).contains("8 skipped"), "{}", stdout(&o));
    let o = extract(&["--keyframes", "4"]);
    assert!(
        stdout(&o).contains("8 ok"),
        "a new fingerprint re-extracts: {}",
        stdout(&o)
    );
    let index = read_json(&store.join("index.json"));
    assert_eq!(index["utterances"][0]["frames"]["body"], 4);

    let stats = coverage_stats(&data, store_s);
    let coverage = &stats["train"]["modalities"];
    assert_eq!(coverage["audio"], 7, "{coverage}");
    assert_eq!(coverage["face"], 6, "{coverage}");
    assert_eq!(coverage["body"], 7, "{coverage}");

    // The store trains and evaluates as it is: turns without a face or
    // without sound lack that modality, nothing special-cased.
    let clip = |k: usize| clips[k].file_name().unwrap().to_str().unwrap().to_string();
    for (split, media) in [
        ("valid", [clip(0), "noface.mp4".into(), "tone.wav".into()]),
        ("test", [clip(1), "tone.wav".into(), "noface.mp4".into()]),
    ] {
        let lines: String = media
            .iter()
            .enumerate()
            .map(|(n, m)| {
                let kind = if m.ends_with(".wav") { "audio" } else { "video" };
                format!(
                    "{{\"dialogue\": \"{split}\", \"turn\": {n}, \"speaker\": \"{split}-A\", \"text\": \"{split} {n}\", \"label\": \"neutral\", \"{kind}\": \"{m}\"}}\n"
                )
            })
            .collect();
        let file = data.join(format!("{split}.jsonl"));
        std::fs::write(&file, lines).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args(["extract", file.to_str().unwrap(), "--out", store_s])
            .args(["--keyframes", "4"])
            .env("MMER_LOG", "warn")
            .env("MMER_MODELS_DIR", &models)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    }
    let run = dir.path().join("run");
    let o = mmer(&[
        "train",
        "--dataset",
        "conversations",
        "--data",
        data.to_str().unwrap(),
        "--media-store",
        store_s,
        "--modalities",
        "audio,face,body",
        "--fusion",
        "am2-emoje",
        "--seeds",
        "0",
        "--max-epochs",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_json(&run.join("results.json"))["split_sizes"],
        serde_json::json!({"train": 8, "valid": 3, "test": 3})
    );
    let o = mmer(&[
        "robustness",
        run.to_str().unwrap(),
        "--rates",
        "0",
        "--draws",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| no face |"), "{}", stdout(&o));
}

/// Without the face models, `mmer extract` says how to install them (or how
/// to do without) instead of failing file by file.
#[test]
fn extract_without_face_models_names_the_setup_script() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("a.wav");
    std::fs::write(&clip, b"not needed").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["extract", clip.to_str().unwrap(), "--out"])
        .arg(dir.path().join("store"))
        .env("MMER_MODELS_DIR", dir.path().join("no-models"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("scripts/setup.sh"), "{err}");
    assert!(err.contains("--no-visual"), "{err}");
}

/// Writes an `IEMOCAP_features.pkl`-shaped pickle (DialogueRNN layout, text
/// 10-d, audio 6-d, visual 4-d per utterance) with python3; `None` (test
/// skipped) when python3 or numpy is missing.
fn generated_iemocap_features(dir: &Path) -> Option<std::path::PathBuf> {
    let path = dir.join("IEMOCAP_features.pkl");
    let script = r#"
import pickle, sys
import numpy as np
rng = np.random.default_rng(0)
ids, spk, lab, txt, aud, vis, sen, train, test = {}, {}, {}, {}, {}, {}, {}, [], []
for d in range(30):
    vid = f"Ses0{d % 5 + 1}F_impro{d:02d}"
    n = 3 + d % 4
    (train if d < 24 else test).append(vid)
    ids[vid] = [f"{vid}_{'FM'[u % 2]}{u:03d}" for u in range(n)]
    spk[vid] = ["FM"[u % 2] for u in range(n)]
    lab[vid] = [int(x) for x in rng.integers(0, 6, n)]
    txt[vid] = [rng.normal(size=10).astype(np.float32) + l for l in lab[vid]]
    aud[vid] = rng.normal(size=(n, 6)).astype(np.float32)
    vis[vid] = [list(map(float, rng.normal(size=4))) for _ in range(n)]
    sen[vid] = [f"utterance {u}" for u in range(n)]
with open(sys.argv[1], "wb") as f:
    pickle.dump((ids, spk, lab, txt, aud, vis, sen, train, set(test)), f, protocol=4)
"#;
    let ok = Command::new("python3")
        .args(["-c", script, path.to_str()?])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: python3 with numpy is needed to generate the feature pickle");
        return None;
    }
    Some(path)
}

/// The documented AMuSE command on a DialogueRNN feature pickle: NCE
/// pre-training, then MAN + Adaptive Fusion training from it, through the
/// normal train path with the modalities the pickle carries.
#[test]
fn amuse_trains_on_a_feature_pickle_from_pretrained_weights() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pickle) = generated_iemocap_features(dir.path()) else {
        return;
    };
    let common = [
        "--dataset",
        "feature-pickle",
        "--data",
        pickle.to_str().unwrap(),
        "--modalities",
        "text,audio,face",
        "--fusion",
        "man-af",
        "--seeds",
        "0",
        "--max-epochs",
        "2",
    ];
    let pre = dir.path().join("pre");
    let o = mmer(
        &[
            &["pretrain"],
            &common[..],
            &["--out", pre.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pre.join("seed-0/model.bpk").is_file());
    let run = dir.path().join("run");
    let o = mmer(
        &[
            &["train"],
            &common[..],
            &[
                "--init-from",
                pre.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["model"], "man_af-context-dialogue_speaker");
    assert_eq!(
        results["modalities"],
        serde_json::json!(["text", "audio", "face"])
    );
    // The robustness verb reads the pickle's run like any other.
    let o = mmer(&[
        "robustness",
        run.to_str().unwrap(),
        "--rates",
        "0,0.5",
        "--draws",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for condition in ["| full |", "| no text |", "| no audio + face |"] {
        assert!(
            stdout(&o).contains(condition),
            "{condition}: {}",
            stdout(&o)
        );
    }
    // Training without one of the modalities the pickle carries is a
    // different model: starting it from these weights is refused by name.
    let o = mmer(
        &[
            &["train"],
            &common[..5],
            &[
                "text,audio",
                "--fusion",
                "man-af",
                "--seeds",
                "0",
                "--max-epochs",
                "1",
            ],
            &[
                "--init-from",
                pre.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
                "--force",
            ],
        ]
        .concat(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("checkpoint.json"), "{}", stderr(&o));
    // The failed --force run left the finished one as it was, and no
    // staging directory behind.
    assert_eq!(read_json(&run.join("results.json")), results);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// `--valid-prefix` validates on exactly the matching training dialogues
/// (IEMOCAP sessions), `--test-prefix` also moves the test split (one fold
/// of leave-one-session-out), and a prefix that empties a split is named.
#[test]
fn prefixes_resplit_the_dialogues() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pickle) = generated_iemocap_features(dir.path()) else {
        return;
    };
    let run = dir.path().join("run");
    let train = |prefixes: &[&str]| {
        let common = [
            "train",
            "--dataset",
            "feature-pickle",
            "--data",
            pickle.to_str().unwrap(),
            "--modalities",
            "text",
            "--seeds",
            "0",
            "--max-epochs",
            "1",
            "--out",
            run.to_str().unwrap(),
            "--force",
        ];
        mmer(&[&common[..], prefixes].concat())
    };
    let sizes = || read_json(&run.join("results.json"))["split_sizes"].clone();
    // Dialogue d (of 30; 0..24 train, the rest test) is session d % 5 + 1
    // with 3 + d % 4 turns.
    let o = train(&["--valid-prefix", "Ses04"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Session 4's training dialogues: d = 3, 8, 13, 18, 23.
    assert_eq!(
        sizes(),
        serde_json::json!({"train": 108 - 24, "valid": 6 + 3 + 4 + 5 + 6, "test": 25})
    );
    let o = train(&["--valid-prefix", "Ses02", "--test-prefix", "Ses01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Session 1: d = 0, 5, ..., 25; session 2: d = 1, 6, ..., 26; 133 turns in all.
    assert_eq!(
        sizes(),
        serde_json::json!({"train": 133 - 25 - 27, "valid": 27, "test": 25})
    );
    let o = train(&["--valid-prefix", "Ses09"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("\"Ses09\""), "{}", stderr(&o));
    let o = train(&["--test-prefix", "Ses01"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("valid_prefix"), "{}", stderr(&o));
}

/// Trains a 2-epoch synthetic run (audio + face) into `out`, with extra flags.
fn train_synthetic(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--dataset",
        "synthetic",
        "--modalities",
        "audio,face",
        "--max-epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    mmer(&args)
}

/// A run directory is never overwritten unasked, never damaged by a failed
/// run, and always describes exactly the models in it.
#[test]
fn run_directories_are_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let o = train_synthetic(&out, &["--seeds", "0,1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let snapshot = |name: &str| std::fs::read(out.join(name)).unwrap();
    let (config, results) = (snapshot("config.toml"), snapshot("results.json"));

    // A plain rerun is refused before anything is written.
    let o = train_synthetic(&out, &["--seeds", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
    // A --force run whose data fails to load leaves the old run as it was.
    let o = mmer(&[
        "train",
        "--dataset",
        "meld",
        "--data",
        "/nonexistent/meld",
        "--encoder",
        "minilm",
        "--out",
        out_s,
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(snapshot("config.toml"), config);
    assert_eq!(snapshot("results.json"), results);
    let o = mmer(&["eval", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));

    // --force replaces the run whole: no stale seed-1 beside seed 2.
    let o = train_synthetic(&out, &["--seeds", "2", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("seed-0").exists() && !out.join("seed-1").exists());
    assert_eq!(
        read_json(&out.join("results.json"))["seeds"],
        serde_json::json!([2])
    );
    // --resume with more seeds keeps seed 2 and lists every seed present.
    let o = train_synthetic(&out, &["--seeds", "3", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_json(&out.join("results.json"))["seeds"],
        serde_json::json!([3, 2])
    );
    let o = mmer(&["eval", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --resume with other settings is refused.
    let o = train_synthetic(&out, &["--seeds", "4", "--resume", "--context", "none"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("other settings"), "{}", stderr(&o));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["run"], "no staging directory is left behind");

    // An unfinished run (no results.json) is not evaluated as if complete.
    std::fs::remove_file(out.join("results.json")).unwrap();
    let o = mmer(&["eval", out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unfinished"), "{}", stderr(&o));
}

/// Flags that contradict the data are errors, not silently ignored.
#[test]
fn contradictory_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for (extra, expected) in [
        (&["--seeds", "0,0"][..], "listed twice"),
        (&["--labels", "iemocap"][..], "conversations data only"),
    ] {
        let o = train_synthetic(&out, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&o).contains(expected), "{extra:?}: {}", stderr(&o));
    }
    let o = mmer(&["train", "--dataset", "meld", "--data", "/nonexistent/meld"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--encoder minilm"), "{}", stderr(&o));
    let o = mmer(&["train", "--dataset", "meld", "--encoder", "minilm"]);
    assert!(
        stderr(&o).contains("dataset meld needs a path"),
        "{}",
        stderr(&o)
    );
    // A validation file that copies the training file.
    let data = dir.path().join("copied");
    std::fs::create_dir_all(&data).unwrap();
    let lines = "{\"dialogue\": \"d1\", \"turn\": 0, \"speaker\": \"A\", \"text\": \"Hi!\", \"label\": \"joy\"}\n";
    for split in ["train", "valid"] {
        std::fs::write(data.join(format!("{split}.jsonl")), lines).unwrap();
    }
    let o = mmer(&[
        "train",
        "--dataset",
        "conversations",
        "--data",
        data.to_str().unwrap(),
        "--encoder",
        "minilm",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the valid file holds the same conversations as the train file"),
        "{}",
        stderr(&o)
    );
    // Each cause is said once.
    let o = mmer(&["eval", "/nonexistent/run"]);
    let message = stderr(&o);
    let cause = "No such file or directory";
    assert_eq!(message.matches(cause).count(), 1, "{message}");
    assert!(!out.exists(), "a refused run wrote nothing");
}

/// Damaged weights are detected before use, and a model that still gives
/// a non-finite probability is an error, never an answer.
#[test]
fn damaged_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train_synthetic(&out, &["--seeds", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let weights = out.join("seed-0/model.bpk");
    let pristine = std::fs::read(&weights).unwrap();
    let mut damaged = pristine.clone();
    let n = damaged.len();
    for b in &mut damaged[n - 64..n - 32] {
        *b = 0xFF;
    }
    std::fs::write(&weights, &damaged).unwrap();
    let o = mmer(&["eval", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is damaged"), "{}", stderr(&o));
    std::fs::write(&weights, &pristine).unwrap();

    // Input statistics that overflow the first layer: the probabilities
    // become NaN, which eval must refuse.
    let meta = out.join("seed-0/checkpoint.json");
    let mut checkpoint = read_json(&meta);
    for v in checkpoint["layout"]["std"].as_array_mut().unwrap() {
        *v = serde_json::json!(1e-38);
    }
    for v in checkpoint["layout"]["mean"].as_array_mut().unwrap() {
        *v = serde_json::json!(3e38);
    }
    std::fs::write(&meta, serde_json::to_vec(&checkpoint).unwrap()).unwrap();
    let o = mmer(&["eval", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("non-finite"), "{}", stderr(&o));
}

/// What the README promises about repeating a run: the same command, seed
/// and code on the same machine train the same model, bit for bit. The
/// witnesses are every epoch's training loss and validation F1, the
/// confusion matrices, and the probabilities `predict` gives (model.bpk
/// itself also holds burn's random parameter ids, so its bytes differ).
#[test]
fn a_run_repeats_to_the_last_bit() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            let o = train_synthetic(&out, &["--seeds", "5", "--data-parallel", "2"]);
            assert!(o.status.success(), "{}", stderr(&o));
            out
        })
        .collect();
    let metrics = |out: &Path| {
        let mut m = read_json(&out.join("seed-5/metrics.json"));
        m["train_seconds"] = serde_json::Value::Null;
        m
    };
    let (a, b) = (metrics(&runs[0]), metrics(&runs[1]));
    assert!(a["history"].as_array().is_some_and(|h| h.len() == 2), "{a}");
    assert_eq!(a, b);
    let eval = |out: &Path| {
        let o = mmer(&["eval", out.to_str().unwrap(), "--split", "valid"]);
        assert!(o.status.success(), "{}", stderr(&o));
        read_json(&out.join("eval-valid.json"))["per_seed"].clone()
    };
    assert_eq!(eval(&runs[0]), eval(&runs[1]));
}

/// Off a terminal (a batch job's log), long work still reports progress.
#[test]
fn progress_reaches_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args([
            "train",
            "--dataset",
            "synthetic",
            "--modalities",
            "audio",
            "--seeds",
            "0",
        ])
        .args(["--max-epochs", "2", "--out"])
        .arg(dir.path().join("run"))
        .env("MMER_LOG", "info")
        .env("MMER_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("seed 0 progress: 1/2 epochs"), "{log}");
    assert!(log.contains("seed 0 done: 2/2 epochs"), "{log}");
}

/// The Whisper tiny.en model directory, if `scripts/setup.sh` installed it.
fn whisper_models() -> Option<std::path::PathBuf> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    models
        .join("whisper-tiny.en/model.safetensors")
        .is_file()
        .then_some(models)
}

#[test]
fn transcribe_names_bad_files_and_completes_the_others() {
    let Some(models) = whisper_models() else {
        eprintln!("skipping: Whisper tiny.en not installed (scripts/setup.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent.wav");
    let tone = dir.path().join("tone.wav");
    if !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=16000:cl=mono",
        "-t",
        "2",
        silent.to_str().unwrap(),
    ]) || !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000",
        "-t",
        "3",
        tone.to_str().unwrap(),
    ]) {
        eprintln!("skipping: ffmpeg not available");
        return;
    }
    let text_file = dir.path().join("notes.mp4");
    std::fs::write(&text_file, "not a video").unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = mmer(&[
        "transcribe",
        "--models-dir",
        models.to_str().unwrap(),
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
        silent.to_str().unwrap(),
        text_file.to_str().unwrap(),
        empty.to_str().unwrap(),
        tone.to_str().unwrap(),
        dir.path().join("missing.wav").to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for bad in ["notes.mp4", "empty.wav", "missing.wav"] {
        assert!(err.contains(bad), "no message names {bad}: {err}");
    }
    assert!(err.contains("3 of 5 files failed"), "{err}");
    // The two good files were transcribed and written in full.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["audio"], "silent");
    assert!(lines[0]["turns"].as_array().unwrap().is_empty());
    assert_eq!(lines[1]["audio"], "present");
    assert!(lines[1]["duration_s"].as_f64().unwrap() > 2.9);
}

/// What `mmer analyze` needs beyond the committed models: the installed
/// models directory (Whisper, faces) and ffmpeg. Returns it and the
/// repository root, or says why the test skips.
fn analyze_models() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let Some(models) = whisper_models() else {
        eprintln!("skipping: Whisper tiny.en not installed (scripts/setup.sh)");
        return None;
    };
    if face_models().is_none() || !ffmpeg(&["-version"]) {
        eprintln!("skipping: needs ffmpeg and the face models (scripts/setup.sh)");
        return None;
    }
    Some((models, Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")))
}

/// Issue 14: `mmer analyze` on the shipped CREMA-D clip, from the shipped
/// models only: one turn with its transcript, fused probabilities that sum
/// to 1, and a reading from every modality (the clip has speech and a
/// face). A non-media file beside it is named and the clip still completes.
#[test]
fn analyze_reads_every_modality_of_the_shipped_clip() {
    let Some((models, root)) = analyze_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.mkv");
    std::fs::write(&junk, "not a video").unwrap();
    let clip = root.join("assets/examples/1001_DFA_ANG_XX.flv");
    let report = dir.path().join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .current_dir(&root)
        .env("MMER_LOG", "warn")
        .args([
            "analyze",
            "--format",
            "jsonl",
            "--explain",
            "--explain-samples",
            "100",
        ])
        .arg("--report")
        .arg(&report)
        .arg("--models-dir")
        .arg(&models)
        .arg(&clip)
        .arg(&junk)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("notes.mkv") && err.contains("1 of 2 files failed"),
        "{err}"
    );
    let turns: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(turns.len(), 1, "{turns:?}");
    let turn = &turns[0];
    assert!(
        turn["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("jacket"),
        "{turn}"
    );
    let total: f64 = turn["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{turn}");
    for modality in ["text", "audio", "face"] {
        assert!(
            turn["evidence"][modality].is_object(),
            "no {modality} reading: {turn}"
        );
    }
    assert!(turn["evidence"]["faces"].as_u64().unwrap() >= 1, "{turn}");
    // --explain: every word weighed, for the predicted class.
    let why = &turn["explanation"];
    assert_eq!(why["class"], turn["emotion"], "{why}");
    assert_eq!(why["samples"], 100);
    let words: Vec<&str> = why["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["word"].as_str().unwrap())
        .collect();
    assert!(
        words.iter().any(|w| w.eq_ignore_ascii_case("jacket")),
        "{why}"
    );
    assert_eq!(why["modalities"].as_array().unwrap().len(), 3, "{why}");
    // --report: one self-contained page with the turn on it.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("1001_DFA_ANG_XX.flv"));
    assert!(!html.contains("http://") && !html.contains("https://"));
}

/// Issue 14: a user's transcript replaces speech recognition and speaker
/// clustering, and a video without sound is one turn read from its faces.
#[test]
fn analyze_takes_a_transcript_and_reads_a_silent_video_from_faces() {
    let Some((models, root)) = analyze_models() else {
        return;
    };
    let clip = root.join("assets/examples/1001_DFA_ANG_XX.flv");
    let dir = tempfile::tempdir().unwrap();
    let mute = dir.path().join("mute.mp4");
    assert!(ffmpeg(&[
        "-i",
        clip.to_str().unwrap(),
        "-an",
        "-c:v",
        "libx264",
        mute.to_str().unwrap()
    ]));
    let transcript = dir.path().join("t.jsonl");
    let line = serde_json::json!({
        "dialogue": "d", "turn": 0, "speaker": "Ann", "text": "I am so happy for you!",
        "video": clip.to_str().unwrap(), "start": 0.0, "end": 2.0,
    });
    std::fs::write(&transcript, format!("{line}\n")).unwrap();
    let analyze = |extra: &[&std::ffi::OsStr]| -> Vec<serde_json::Value> {
        let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
            .current_dir(&root)
            .env("MMER_LOG", "warn")
            .args(["analyze", "--format", "jsonl", "--models-dir"])
            .arg(&models)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let given = analyze(&[
        std::ffi::OsStr::new("--transcript"),
        transcript.as_os_str(),
        clip.as_os_str(),
    ]);
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0]["speaker"], "Ann");
    assert_eq!(given[0]["text"], "I am so happy for you!");
    assert!(given[0]["evidence"]["text"].is_object());

    let silent = analyze(&[mute.as_os_str()]);
    assert_eq!(silent.len(), 1, "{silent:?}");
    let turn = &silent[0];
    assert!(
        turn["evidence"]["text"].is_null() && turn["evidence"]["audio"].is_null(),
        "{turn}"
    );
    assert!(turn["evidence"]["face"].is_object(), "{turn}");
    assert_ne!(turn["emotion"], "unknown");
}

/// The models directory when MiniLM is installed in it; `None` (the test
/// skips, saying so) otherwise.
fn minilm_models() -> Option<std::path::PathBuf> {
    let models = std::env::var("MMER_MODELS_DIR").unwrap_or_else(|_| "../../models".into());
    if !Path::new(&models)
        .join("all-minilm-l6-v2/model.safetensors")
        .exists()
    {
        eprintln!("skipping: MiniLM weights not installed (run scripts/setup.sh)");
        return None;
    }
    Some(std::fs::canonicalize(&models).unwrap())
}

/// Writes `train`, `valid` and `test` JSONL conversation files into `dir`,
/// each dialogue the given turns (text, label as raw JSON) with speakers of
/// its own split (a conversation repeated across splits is leakage).
fn write_conversation_splits(dir: &Path, turns: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (split, dialogues) in [("train", 6), ("valid", 2), ("test", 2)] {
        let mut text = String::new();
        for d in 0..dialogues {
            for (turn, (utterance, label)) in turns.iter().enumerate() {
                let speaker = format!("{}-{split}", if turn % 2 == 0 { "A" } else { "B" });
                text.push_str(&format!(
                    "{{\"dialogue\": \"{split}{d}\", \"turn\": {turn}, \"speaker\": \"{speaker}\", \"text\": \"{utterance}\", \"label\": {label}}}\n"
                ));
            }
        }
        std::fs::write(dir.join(format!("{split}.jsonl")), text).unwrap();
    }
}

/// A run on classes it declares (issue 16): the conversation files name
/// them, and results.json, `eval` and `predict` show them; the checkpoint
/// carries them, so `predict` needs no config. Skips without MiniLM.
#[test]
fn declared_classes_train_evaluate_and_predict_by_name() {
    let Some(models) = minilm_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mine");
    write_conversation_splits(
        &data,
        &[
            ("Let us breathe and take our time.", "\"calm\""),
            ("Why is this still not done?!", "\"tense\""),
            ("We won, I can't believe it!", "\"Happy\""),
            ("Everything is quiet tonight.", "\"calm\""),
            ("You promised, and you lied again.", "\"tense\""),
            ("Best birthday ever, thank you!", "\"happy\""),
        ],
    );
    let out = dir.path().join("run");
    let train = |labels: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args(["train", "--dataset", "conversations", "--data"])
            .arg(&data)
            .args(["--labels", labels, "--encoder", "minilm", "--seeds", "0"])
            .args(["--max-epochs", "2", "--out"])
            .arg(&out)
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(extra)
            .env("MMER_MODELS_DIR", &models)
            .env("MMER_LOG", "warn")
            .output()
            .unwrap()
    };

    // A class the files use but the run does not declare: file, line,
    // turn and the declared classes, before anything is embedded.
    let o = train("calm,tense", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("train.jsonl:3: utterance train0_utt2: unknown label \"Happy\"")
            && err.contains("calm, tense"),
        "{err}"
    );
    // Declared multi-label, the same files train multi-label models (one
    // class per turn is a one-element set) and report the trivial baselines
    // beside them.
    let multi = dir.path().join("multi");
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["train", "--dataset", "conversations", "--data"])
        .arg(&data)
        .args(["--labels", "calm,tense,happy", "--multi-label"])
        .args(["--encoder", "minilm", "--seeds", "0", "--max-epochs", "2"])
        .arg("--out")
        .arg(&multi)
        .arg("--store")
        .arg(dir.path().join("store"))
        .env("MMER_MODELS_DIR", &models)
        .env("MMER_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let results = read_json(&multi.join("results.json"));
    assert_eq!(
        results["classes"],
        serde_json::json!(["calm", "tense", "happy"])
    );
    assert!(results["baselines"]["all_positive"]["report"]["macro_f1"].is_number());
    assert_eq!(
        results["per_seed"][0]["thresholds"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert!(stdout(&o).contains("all labels"), "{}", stdout(&o));
    assert!(!out.exists());
    // eval re-scores it the way results.json did, at 0.5 and tuned.
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .arg("eval")
        .arg(&multi)
        .env("MMER_MODELS_DIR", &models)
        .env("MMER_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let evaluation = read_json(&multi.join("eval-test.json"));
    assert_eq!(
        evaluation["tuned"]["report"]["macro_f1"]["mean"],
        results["test"]["tuned"]["report"]["macro_f1"]["mean"]
    );
    // predict: a label set per turn at the thresholds tuned on validation,
    // which the checkpoint keeps.
    let checkpoint = read_json(&multi.join("seed-0/checkpoint.json"));
    assert_eq!(checkpoint["thresholds"].as_array().map(Vec::len), Some(3));
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .args(["predict", "--format", "jsonl", "--model"])
        .arg(multi.join("seed-0"))
        .arg(data.join("test.jsonl"))
        .env("MMER_MODELS_DIR", &models)
        .env("MMER_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for line in stdout(&o).lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let set = p["emotion"].as_str().unwrap();
        assert!(
            set.split(';')
                .all(|c| c.is_empty() || ["calm", "tense", "happy"].contains(&c)),
            "{line}"
        );
        let confidence = p["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{line}");
        assert_eq!(p["probabilities"].as_object().map(|o| o.len()), Some(3));
    }

    let o = train("calm, tense, happy", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let classes = ["calm", "tense", "happy"];
    let results = read_json(&out.join("results.json"));
    assert_eq!(results["classes"], serde_json::json!(classes));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        config.contains("[data.labels]") && config.contains("\"calm\""),
        "{config}"
    );
    let checkpoint = read_json(&out.join("seed-0/checkpoint.json"));
    assert_eq!(
        checkpoint["labels"],
        serde_json::json!({"name": "custom", "classes": classes, "multi_label": false})
    );

    // eval reloads the declared set from config.toml.
    let o = Command::new(env!("CARGO_BIN_EXE_mmer"))
        .arg("eval")
        .arg(&out)
        .env("MMER_MODELS_DIR", &models)
        .env("MMER_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for class in classes {
        assert!(stdout(&o).contains(class), "{}", stdout(&o));
    }
    let evaluation = read_json(&out.join("eval-test.json"));
    assert_eq!(evaluation["classes"], serde_json::json!(classes));

    // predict: the checkpoint alone gives the names, for the turns' gold
    // labels as for the predictions.
    let conversation = dir.path().join("new.jsonl");
    std::fs::write(
        &conversation,
        "{\"dialogue\": \"n\", \"turn\": 0, \"speaker\": \"Ana\", \"text\": \"What a lovely surprise!\", \"label\": \"happy\"}\n\
         {\"dialogue\": \"n\", \"turn\": 1, \"speaker\": \"Ben\", \"text\": \"Stop shouting at me.\"}\n",
    )
    .unwrap();
    let predict = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_mmer"))
            .args(["predict", "--format", "jsonl", "--model"])
            .arg(out.join("seed-0"))
            .arg(file)
            .env("MMER_MODELS_DIR", &models)
            .env("MMER_LOG", "warn")
            .output()
            .unwrap()
    };
    let o = predict(&conversation);
    assert!(o.status.success(), "{}", stderr(&o));
    let predictions: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(predictions.len(), 2);
    for p in &predictions {
        assert!(classes.contains(&p["emotion"].as_str().unwrap()), "{p}");
        let mut names: Vec<&str> = p["probabilities"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["calm", "happy", "tense"], "{p}");
    }
    assert_eq!(predictions[0]["gold"], "happy");
    // A MELD name is not one of this model's classes.
    let meld = dir.path().join("meld.jsonl");
    std::fs::write(
        &meld,
        "{\"dialogue\": \"m\", \"turn\": 0, \"speaker\": \"Ana\", \"text\": \"Yay!\", \"label\": \"joy\"}\n",
    )
    .unwrap();
    let o = predict(&meld);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("meld.jsonl:1: utterance m_utt0: unknown label \"joy\"")
            && stderr(&o).contains("calm, tense, happy"),
        "{}",
        stderr(&o)
    );
}

/// Multi-label conversations on declared classes: `data stats` counts
/// every class a turn names (an empty list is a labelled turn with none),
/// a list in a single-label set is refused naming the turn. Needs no
/// models: nothing is embedded.
#[test]
fn data_stats_reads_declared_multi_label_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("multi");
    write_conversation_splits(
        &data,
        &[
            ("Oh wow, you came!", "[\"joy\", \"surprise\"]"),
            ("Of course I did.", "\"joy\""),
            ("The train was late.", "[]"),
            ("Let us sit down.", "null"),
        ],
    );
    let stats = |extra: &[&str]| {
        let mut args = vec!["data", "stats", "--dataset", "conversations", "--data"];
        args.push(data.to_str().unwrap());
        args.extend_from_slice(extra);
        mmer(&args)
    };
    let o = stats(&["--labels", "joy,surprise,anger", "--multi-label", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        json["train"]["classes"],
        serde_json::json!({"anger": 0, "joy": 12, "surprise": 6})
    );
    assert_eq!(json["train"]["utterances"], 24);

    let o = stats(&["--labels", "joy,surprise,anger"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("train.jsonl:1: utterance train0_utt0: label [\"joy\", \"surprise\"] lists several classes")
            && stderr(&o).contains("give one of joy, surprise, anger"),
        "{}",
        stderr(&o)
    );
    let o = stats(&["--labels", "meld", "--multi-label"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the preset meld is single-label"),
        "{}",
        stderr(&o)
    );
}
