//! Numeric parity with sentence-transformers (DESIGN §5, STYLE B4).
//!
//! `tests/fixtures/st_reference.json` holds vectors written by
//! `scripts/reference_embeddings.py` (PyTorch + sentence-transformers, CPU)
//! for sentences chosen to break tokenizers and padding: empty and
//! whitespace-only text, lone punctuation, emoji, accents, CJK, mis-decoded
//! MELD text, special-token strings, numbers, and texts longer than 256 and
//! 384 tokens. Each encoder whose weights are installed must reach cosine ≥
//! 0.9999 on every sentence; without weights the test says how to install
//! them and passes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mmer_text::mpnet::{RELATIVE_ATTENTION_MAX_DISTANCE, relative_position_bucket};
use mmer_text::{EncoderKind, MODELS_DIR_ENV, NUMERICS_VERSION, SentenceEncoder};
use serde::Deserialize;

const MIN_COSINE: f64 = 0.9999;

#[derive(Deserialize)]
struct Fixture {
    sentences: Vec<String>,
    models: BTreeMap<EncoderKind, Reference>,
    mpnet_relative_position_buckets: Buckets,
}

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    dim: usize,
    token_counts: Vec<usize>,
    vectors: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Buckets {
    relative_position_from: i64,
    buckets: Vec<usize>,
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/st_reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `$MMER_MODELS_DIR`, else `models/` at the workspace root (tests run in the
/// crate directory, where `./models` would be wrong).
fn models_dir() -> PathBuf {
    match std::env::var_os(MODELS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

fn check_parity(kind: EncoderKind) {
    let dir = models_dir();
    if !SentenceEncoder::is_installed(kind, &dir) {
        eprintln!(
            "skipping {kind} parity: weights not installed under {} (run scripts/setup.sh{})",
            dir.display(),
            if kind == EncoderKind::MiniLm {
                " --minilm-only"
            } else {
                ""
            }
        );
        return;
    }
    let fixture = fixture();
    let reference = &fixture.models[&kind];
    // Batches of 2 keep the 384-token text from padding every other one to
    // its length (a 25-text batch would cost ~10× more); 2 workers.
    let encoder = SentenceEncoder::load(kind, &dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_batch_size(2)
        .with_workers(2);
    assert_eq!(encoder.dim(), reference.dim);
    assert_eq!(encoder.max_seq_length(), reference.max_seq_length);
    assert!(encoder.fingerprint().starts_with(&format!("{kind}:")));

    let texts: Vec<&str> = fixture.sentences.iter().map(String::as_str).collect();
    let counts = encoder
        .count_tokens(&texts)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        counts, reference.token_counts,
        "{kind}: token counts differ from the reference tokenizer"
    );

    let mut calls = Vec::new();
    let vectors = encoder
        .embed_with_progress(&texts, |done, total| calls.push((done, total)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        calls.len(),
        texts.len().div_ceil(2),
        "one progress call per batch"
    );
    assert_eq!(calls.last(), Some(&(texts.len(), texts.len())));
    let (mut min, mut max, mut max_abs) = (f64::INFINITY, f64::NEG_INFINITY, 0f32);
    for (i, (ours, theirs)) in vectors.iter().zip(&reference.vectors).enumerate() {
        assert_eq!(ours.len(), theirs.len());
        let cos = cosine(ours, theirs);
        min = min.min(cos);
        max = max.max(cos);
        max_abs = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(max_abs, f32::max);
        assert!(
            cos >= MIN_COSINE,
            "{kind}: sentence #{i} {:?}: cosine {cos:.7} < {MIN_COSINE}",
            texts[i]
        );
        let norm = ours.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "{kind}: sentence #{i} has norm {norm}"
        );
    }
    eprintln!(
        "{kind}: {} sentences, cosine min {min:.9} (1 - min = {:.1e}) max {max:.9}, max |diff| {max_abs:.2e}",
        texts.len(),
        1.0 - min
    );

    // Batch composition and the worker count must not matter beyond rounding:
    // the short texts again, all in one padded batch, on one worker.
    let short: Vec<usize> = (0..texts.len()).filter(|&i| counts[i] < 64).collect();
    let short_texts: Vec<&str> = short.iter().map(|&i| texts[i]).collect();
    let encoder = encoder.with_batch_size(32).with_workers(1);
    let rebatched = encoder
        .embed(&short_texts)
        .unwrap_or_else(|e| panic!("{e}"));
    for (&i, b) in short.iter().zip(&rebatched) {
        let cos = cosine(&vectors[i], b);
        assert!(
            cos >= 0.999_999,
            "{kind}: sentence #{i} changes with batching (cosine {cos})"
        );
    }
}

#[test]
fn minilm_matches_sentence_transformers() {
    check_parity(EncoderKind::MiniLm);
}

#[test]
fn mpnet_matches_sentence_transformers() {
    check_parity(EncoderKind::Mpnet);
}

/// Token states are what the sentence vector pools: their mean, L2-normalised,
/// is `embed`'s vector, and there is one state per token `count_tokens` reports.
#[test]
fn token_states_mean_pool_to_the_sentence_vector() {
    let dir = models_dir();
    if !SentenceEncoder::is_installed(EncoderKind::MiniLm, &dir) {
        eprintln!(
            "skipping token states: MiniLM not installed (run scripts/setup.sh --minilm-only)"
        );
        return;
    }
    let encoder = SentenceEncoder::load(EncoderKind::MiniLm, &dir).unwrap();
    let texts = ["Oh my God!", "", "I'm fine, really, thanks for asking."];
    let sentences = encoder.embed(&texts).unwrap();
    let tokens = encoder
        .embed_tokens_with_progress(&texts, |_, _| {})
        .unwrap();
    let counts = encoder.count_tokens(&texts).unwrap();
    let dim = encoder.dim();
    for ((states, sentence), count) in tokens.iter().zip(&sentences).zip(counts) {
        assert_eq!(states.len(), count * dim);
        let mut mean = vec![0f32; dim];
        for token in states.chunks(dim) {
            mean.iter_mut()
                .zip(token)
                .for_each(|(m, t)| *m += t / count as f32);
        }
        assert!(
            cosine(&mean, sentence) > 0.99999,
            "cosine {}",
            cosine(&mean, sentence)
        );
    }
}

/// Per-layer states, for both encoders: embeddings + every layer, of which
/// the last, L2-normalised, is the sentence vector; a shallower pass returns
/// the same first layers.
#[test]
fn layer_states_end_with_the_sentence_vector() {
    let dir = models_dir();
    for (kind, count) in [(EncoderKind::MiniLm, 7), (EncoderKind::Mpnet, 13)] {
        if !SentenceEncoder::is_installed(kind, &dir) {
            eprintln!("skipping {kind} layer states: not installed (run scripts/setup.sh)");
            continue;
        }
        let encoder = SentenceEncoder::load(kind, &dir).unwrap();
        let texts = ["Oh my God!", "", "I'm fine, really, thanks for asking."];
        let sentences = encoder.embed(&texts).unwrap();
        let layers = encoder
            .embed_layers_with_progress(&texts, usize::MAX, |_, _| {})
            .unwrap();
        let dim = encoder.dim();
        assert_eq!(encoder.num_layer_states(), count);
        for (states, sentence) in layers.iter().zip(&sentences) {
            assert_eq!(states.len(), count * dim);
            let last = &states[(count - 1) * dim..];
            assert!(
                cosine(last, sentence) > 0.99999,
                "{kind}: cosine {}",
                cosine(last, sentence)
            );
            let middle = &states[(count / 2) * dim..(count / 2 + 1) * dim];
            assert!(cosine(middle, sentence) < 0.999, "{kind}: layers differ");
        }
        let shallow = encoder
            .embed_layers_with_progress(&texts, 3, |_, _| {})
            .unwrap();
        for (short, full) in shallow.iter().zip(&layers) {
            assert_eq!(short.len(), 4 * dim);
            assert!(cosine(&short[3 * dim..], &full[3 * dim..4 * dim]) > 0.99999);
        }
    }
}

/// Conversation context in the input, for both encoders: an empty window
/// is the plain input (ids and vectors bit for bit); with context, the
/// pooled prefix is the turn's own plain input, the context follows in the
/// tokenizer's pair format, and it changes the turn's vector without
/// replacing it.
#[test]
fn context_inputs_pool_the_turn_and_reduce_to_the_plain_input() {
    use mmer_text::{ContextWindow, Output};
    let dir = models_dir();
    for kind in [EncoderKind::MiniLm, EncoderKind::Mpnet] {
        if !SentenceEncoder::is_installed(kind, &dir) {
            eprintln!("skipping {kind} context inputs: not installed (run scripts/setup.sh)");
            continue;
        }
        let encoder = SentenceEncoder::load(kind, &dir).unwrap();
        let turns = [
            ("Ross", Some("We were on a break!")),
            ("Rachel", None),
            ("Rachel", Some("Oh my God, you are unbelievable.")),
            ("Ross", Some("Fine.")),
        ];
        let texts: Vec<&str> = turns.iter().filter_map(|t| t.1).collect();
        let none = ContextWindow {
            past: 0,
            future: 0,
            speakers: false,
            max_tokens: encoder.max_seq_length(),
        };
        let plain: Vec<_> = encoder
            .inputs_in_context(&turns, &none)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(plain, encoder.inputs(&texts).unwrap(), "{kind}");
        let layers = |inputs: &[mmer_text::EncoderInput]| {
            encoder
                .embed_inputs(inputs, Output::Layers(4), |_, _| {})
                .unwrap()
        };
        let reference = encoder
            .embed_layers_with_progress(&texts, 4, |_, _| {})
            .unwrap();
        assert_eq!(layers(&plain), reference, "{kind}: bit for bit");

        let window = ContextWindow {
            speakers: false,
            ..ContextWindow::default()
        };
        let inputs: Vec<_> = encoder
            .inputs_in_context(&turns, &window)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        // "Oh my God…": its own tokens lead, then the turn before and after.
        let middle = &inputs[1];
        assert_eq!(&middle.ids[..middle.pooled], plain[1].ids.as_slice());
        let content = |i: usize| &plain[i].ids[1..plain[i].ids.len() - 1];
        let rest = &middle.ids[middle.pooled..];
        let at = |part: &[u32]| rest.windows(part.len()).position(|w| w == part);
        let (past, future) = (at(content(0)).unwrap(), at(content(2)).unwrap());
        assert!(past < future, "{kind}: {:?}", middle.ids);
        let contextual = layers(&inputs);
        let dim = encoder.dim();
        let last = |row: &Vec<f32>| row[4 * dim..].to_vec();
        let c = cosine(&last(&contextual[1]), &last(&reference[1]));
        assert!((0.5..0.9999).contains(&c), "{kind}: cosine {c}");
        // Embeddings (layer 0) do not mix tokens: the pooled prefix equals.
        let first = |row: &Vec<f32>| row[..dim].to_vec();
        assert!(cosine(&first(&contextual[1]), &first(&reference[1])) > 0.99999);

        let too_long = ContextWindow {
            max_tokens: encoder.max_seq_length() + 1,
            ..window
        };
        let err = encoder.inputs_in_context(&turns, &too_long).unwrap_err();
        assert!(err.to_string().contains("max_tokens"), "{err}");
    }
}

/// The whole bucket table from transformers' `MPNetEncoder.relative_position_bucket`
/// for relative positions −400..=400 (needs no weights).
#[test]
fn relative_position_buckets_match_transformers() {
    let table = fixture().mpnet_relative_position_buckets;
    assert_eq!(table.buckets.len(), 801);
    for (offset, &expected) in table.buckets.iter().enumerate() {
        let relative = table.relative_position_from + offset as i64;
        assert_eq!(
            relative_position_bucket(relative, 32, RELATIVE_ATTENTION_MAX_DISTANCE),
            expected,
            "relative position {relative}"
        );
    }
}

#[test]
fn fixture_covers_the_edge_cases() {
    let fixture = fixture();
    assert!(fixture.sentences.len() >= 20);
    assert!(fixture.sentences.iter().any(String::is_empty));
    assert!(
        fixture
            .sentences
            .iter()
            .any(|s| !s.is_empty() && s.trim().is_empty())
    );
    for (kind, reference) in &fixture.models {
        assert_eq!(reference.vectors.len(), fixture.sentences.len(), "{kind}");
        // At least one text was truncated to max_seq_length.
        assert!(
            reference.token_counts.contains(&reference.max_seq_length),
            "{kind}"
        );
    }
}

#[test]
fn loading_without_weights_points_at_setup_script() {
    let empty = tempfile::tempdir().expect("tempdir");
    for kind in EncoderKind::ALL {
        let err = SentenceEncoder::load(kind, empty.path()).expect_err("nothing is installed");
        let message = err.to_string();
        assert!(message.contains("scripts/setup.sh"), "{message}");
        assert!(message.contains(kind.dir_name()), "{message}");
    }
}

/// MiniLM's own outputs on the short fixture sentences, recorded under
/// [`NUMERICS_VERSION`] in `tests/fixtures/numerics.json` together with the
/// matrix-product kernels of the recording CPU. The feature store trusts
/// that version to change whenever the numerics do, so on a CPU with the
/// same kernels this demands the recorded outputs bit for bit: a change as
/// small as the GELU rewrite (3e-7) fails it. Other kernels round
/// differently, so elsewhere it allows 1e-5 and says so. Re-record after
/// bumping the version:
/// `MMER_RECORD_NUMERICS=1 cargo test -p mmer-text --test parity numerics`.
#[test]
fn numerics_match_their_recorded_version() {
    const OTHER_KERNELS_TOLERANCE: f32 = 1e-5;
    let dir = models_dir();
    let kind = EncoderKind::MiniLm;
    if !SentenceEncoder::is_installed(kind, &dir) {
        eprintln!("skipping recorded numerics: MiniLM not installed (run scripts/setup.sh)");
        return;
    }
    let fixture = fixture();
    let texts: Vec<&str> = fixture
        .sentences
        .iter()
        .map(String::as_str)
        .filter(|s| s.len() < 80)
        .take(8)
        .collect();
    let encoder = SentenceEncoder::load(kind, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        encoder
            .fingerprint()
            .ends_with(&format!(":numerics-{NUMERICS_VERSION}")),
        "the store key must carry the numerics version: {}",
        encoder.fingerprint()
    );
    let vectors = encoder.embed(&texts).unwrap_or_else(|e| panic!("{e}"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numerics.json");
    if std::env::var_os("MMER_RECORD_NUMERICS").is_some() {
        let record = serde_json::json!({
            "numerics_version": NUMERICS_VERSION,
            "kernels": kernels(),
            "encoder": kind.as_str(),
            "texts": texts,
            "vectors": vectors,
        });
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        eprintln!("recorded {}", path.display());
        return;
    }
    #[derive(Deserialize)]
    struct Recorded {
        numerics_version: u32,
        kernels: String,
        texts: Vec<String>,
        vectors: Vec<Vec<f32>>,
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let recorded: Recorded = serde_json::from_str(&text).unwrap();
    assert_eq!(recorded.texts, texts, "the recorded texts changed");
    let max_diff = vectors
        .iter()
        .flatten()
        .zip(recorded.vectors.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let tolerance = if recorded.kernels == kernels() {
        0.0
    } else {
        eprintln!(
            "numerics: recorded with {} kernels, this CPU uses {}: allowing {OTHER_KERNELS_TOLERANCE:.0e}",
            recorded.kernels,
            kernels()
        );
        OTHER_KERNELS_TOLERANCE
    };
    eprintln!(
        "numerics: max |diff| {max_diff:.2e} against version {}",
        recorded.numerics_version
    );
    assert!(
        max_diff <= tolerance && recorded.numerics_version == NUMERICS_VERSION,
        "MiniLM outputs differ from those recorded under numerics version {} by {max_diff:.2e} \
         (this code says version {NUMERICS_VERSION}): when the numerics changed on purpose, bump \
         NUMERICS_VERSION (so feature stores re-embed) and re-record with MMER_RECORD_NUMERICS=1",
        recorded.numerics_version
    );
}

/// The matrix-product kernels gemm picks on this CPU (their rounding
/// differs): `x86_64-avx512`, `x86_64-avx2`, or the architecture alone.
fn kernels() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "x86_64-avx512".into();
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "x86_64-avx2".into();
        }
    }
    std::env::consts::ARCH.to_string()
}
