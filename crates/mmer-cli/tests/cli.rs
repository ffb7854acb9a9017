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
    assert!(text.contains("labelled turns predicted correctly"), "{text}");
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
        "train", "--dataset", "synthetic", "--modalities", "audio,face", "--context", "dialogue-speaker",
        "--seeds", "3,4", "--max-epochs", "2", "--out", out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("weighted_f1"), "{}", stdout(&o));
    let results = read_json(&out.join("results.json"));
    assert_eq!(results["per_seed"].as_array().unwrap().len(), 2);
    assert_eq!(results["modalities"], serde_json::json!(["audio", "face"]));
    let o = mmer(&["eval", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval = read_json(&out.join("eval-test.json"));
    for metric in ["accuracy", "weighted_f1", "macro_f1"] {
        let trained = results["test"][metric]["mean"].as_f64().unwrap();
        let reloaded = eval["aggregate"][metric]["mean"].as_f64().unwrap();
        assert!((trained - reloaded).abs() < 1e-9, "{metric}: {trained} vs {reloaded}");
    }
}

#[test]
fn bad_paths_fail_with_a_message_naming_them() {
    let o = mmer(&["predict", "--model", "/nonexistent/seed-0", "x.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/seed-0"), "{}", stderr(&o));
    let o = mmer(&["data", "stats", "--dataset", "meld", "--data", "/nonexistent/meld"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/meld"), "{}", stderr(&o));
}

#[test]
fn train_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "[data]\ndataset = \"synthetic\"\n[train]\nlearning_rat = 0.1\n").unwrap();
    let o = mmer(&["train", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("learning_rat"), "{}", stderr(&o));
}
