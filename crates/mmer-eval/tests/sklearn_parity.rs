//! Parity with scikit-learn: the numbers in `fixtures/sklearn_reference.json`
//! were computed by `scripts/sklearn_reference.py` (scikit-learn with
//! `labels=range(C), zero_division=0`) on the label vectors stored beside
//! them. Regenerate with `python3 scripts/sklearn_reference.py`.
//!
//! The multi-label probability cases (`multi_label_scores`) hold
//! scikit-learn's `roc_auc_score` per label, a plain numpy ECE with the
//! binning of [`multi_label::expected_calibration_error`], thresholds tuned
//! by a plain-Python version of [`multi_label::tune_thresholds`] and
//! scikit-learn's metrics of the bits those thresholds decide.

use mmer_eval::{
    Aggregate, ClassificationReport, MultiLabelReport, MultiLabelScores, multi_label, single_label,
};
use serde::Deserialize;

const TOL: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    sklearn_version: String,
    single_label: Vec<SingleCase>,
    multi_label: Vec<MultiCase>,
    aggregate: Vec<AggregateCase>,
    multi_label_scores: Vec<ScoresCase>,
}

#[derive(Deserialize)]
struct ScoresCase {
    name: String,
    num_labels: usize,
    y_true: Vec<Vec<u8>>,
    probs: Vec<Vec<f32>>,
    tuned: Scored,
    train_y_true: Vec<Vec<u8>>,
    prior: Vec<f64>,
    prior_baseline: Scored,
    all_positive_baseline: Scored,
}

/// What one [`MultiLabelScores`] should hold, by scikit-learn / numpy.
#[derive(Deserialize)]
struct Scored {
    /// Stored as the f64 of an f32; read as f32 so that a 1-ulp error of
    /// serde_json's float parser cannot matter.
    thresholds: Vec<f32>,
    roc_auc: Vec<Option<f64>>,
    mean_roc_auc: Option<f64>,
    ece: Vec<EceCase>,
    decided: Vec<Vec<u8>>,
    weighted_f1: f64,
    macro_f1: f64,
    micro_f1: f64,
    hamming_loss: f64,
    subset_accuracy: f64,
    f1: Vec<f64>,
}

#[derive(Deserialize)]
struct EceCase {
    bins: usize,
    ece: f64,
}

#[derive(Deserialize)]
struct SingleCase {
    name: String,
    num_classes: usize,
    y_true: Vec<usize>,
    y_pred: Vec<usize>,
    accuracy: f64,
    weighted_f1: f64,
    macro_f1: f64,
    precision: Vec<f64>,
    recall: Vec<f64>,
    f1: Vec<f64>,
    support: Vec<usize>,
    confusion: Vec<Vec<usize>>,
    subsets: Vec<Subset>,
}

#[derive(Deserialize)]
struct Subset {
    classes: Vec<usize>,
    weighted_f1: f64,
}

#[derive(Deserialize)]
struct MultiCase {
    name: String,
    num_labels: usize,
    y_true: Vec<Vec<u8>>,
    y_pred: Vec<Vec<u8>>,
    weighted_f1: f64,
    macro_f1: f64,
    micro_f1: f64,
    hamming_loss: f64,
    subset_accuracy: f64,
    precision: Vec<f64>,
    recall: Vec<f64>,
    f1: Vec<f64>,
    support: Vec<usize>,
}

#[derive(Deserialize)]
struct AggregateCase {
    values: Vec<f64>,
    mean: f64,
    std: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sklearn_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture is committed with the crate");
    serde_json::from_str(&text).expect("fixture parses")
}

fn close(what: &str, case: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{case}: {what} = {got}, scikit-learn says {want}"
    );
}

fn close_all(what: &str, case: &str, got: impl IntoIterator<Item = f64>, want: &[f64]) {
    let got: Vec<f64> = got.into_iter().collect();
    assert_eq!(got.len(), want.len(), "{case}: {what} length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(&format!("{what}[{i}]"), case, *g, *w);
    }
}

fn bits(rows: &[Vec<u8>]) -> Vec<Vec<bool>> {
    rows.iter()
        .map(|r| r.iter().map(|&b| b != 0).collect())
        .collect()
}

#[test]
fn single_label_metrics_match_sklearn() {
    let fx = fixture();
    assert!(fx.single_label.len() >= 4, "sklearn {}", fx.sklearn_version);
    for c in &fx.single_label {
        let name = c.name.as_str();
        let r = ClassificationReport::new(&c.y_true, &c.y_pred, c.num_classes).unwrap();
        close("accuracy", name, r.accuracy, c.accuracy);
        close("weighted_f1", name, r.weighted_f1, c.weighted_f1);
        close("macro_f1", name, r.macro_f1, c.macro_f1);
        close_all(
            "precision",
            name,
            r.per_class.iter().map(|m| m.precision),
            &c.precision,
        );
        close_all(
            "recall",
            name,
            r.per_class.iter().map(|m| m.recall),
            &c.recall,
        );
        close_all("f1", name, r.per_class.iter().map(|m| m.f1), &c.f1);
        let support: Vec<usize> = r.per_class.iter().map(|m| m.support).collect();
        assert_eq!(support, c.support, "{name}: support");
        assert_eq!(
            r.confusion.counts(),
            c.confusion.as_slice(),
            "{name}: confusion"
        );

        // The free functions agree with the report.
        close(
            "accuracy()",
            name,
            single_label::accuracy(&c.y_true, &c.y_pred).unwrap(),
            c.accuracy,
        );
        let wf1 = single_label::weighted_f1(&c.y_true, &c.y_pred, c.num_classes).unwrap();
        close("weighted_f1()", name, wf1, c.weighted_f1);
        let mf1 = single_label::macro_f1(&c.y_true, &c.y_pred, c.num_classes).unwrap();
        close("macro_f1()", name, mf1, c.macro_f1);

        for s in &c.subsets {
            let what = format!("weighted_f1_over({:?})", s.classes);
            let got =
                single_label::weighted_f1_over(&c.y_true, &c.y_pred, c.num_classes, &s.classes)
                    .unwrap();
            close(&what, name, got, s.weighted_f1);
            if c.num_classes == 7 && s.classes == mmer_eval::MELD_FIVE_CLASSES {
                let meld = ClassificationReport::meld(&c.y_true, &c.y_pred).unwrap();
                close(
                    "five_class_weighted_f1",
                    name,
                    meld.five_class_weighted_f1.unwrap(),
                    s.weighted_f1,
                );
                let five = mmer_eval::meld_five_class_weighted_f1(&c.y_true, &c.y_pred).unwrap();
                close("meld_five_class_weighted_f1()", name, five, s.weighted_f1);
            }
        }
    }
}

#[test]
fn multi_label_metrics_match_sklearn() {
    let fx = fixture();
    assert!(fx.multi_label.len() >= 2);
    for c in &fx.multi_label {
        let name = c.name.as_str();
        let (t, p) = (bits(&c.y_true), bits(&c.y_pred));
        let r = MultiLabelReport::new(&t, &p, c.num_labels).unwrap();
        close("weighted_f1", name, r.weighted_f1, c.weighted_f1);
        close("macro_f1", name, r.macro_f1, c.macro_f1);
        close("micro_f1", name, r.micro_f1, c.micro_f1);
        close("hamming_loss", name, r.hamming_loss, c.hamming_loss);
        close(
            "subset_accuracy",
            name,
            r.subset_accuracy,
            c.subset_accuracy,
        );
        close_all(
            "precision",
            name,
            r.per_label.iter().map(|m| m.precision),
            &c.precision,
        );
        close_all(
            "recall",
            name,
            r.per_label.iter().map(|m| m.recall),
            &c.recall,
        );
        close_all("f1", name, r.per_label.iter().map(|m| m.f1), &c.f1);
        let support: Vec<usize> = r.per_label.iter().map(|m| m.support).collect();
        assert_eq!(support, c.support, "{name}: support");

        let n = c.num_labels;
        close(
            "weighted_f1()",
            name,
            multi_label::weighted_f1(&t, &p, n).unwrap(),
            c.weighted_f1,
        );
        close(
            "macro_f1()",
            name,
            multi_label::macro_f1(&t, &p, n).unwrap(),
            c.macro_f1,
        );
        close(
            "micro_f1()",
            name,
            multi_label::micro_f1(&t, &p, n).unwrap(),
            c.micro_f1,
        );
        close(
            "hamming_loss()",
            name,
            multi_label::hamming_loss(&t, &p, n).unwrap(),
            c.hamming_loss,
        );
        let subset = multi_label::subset_accuracy(&t, &p, n).unwrap();
        close("subset_accuracy()", name, subset, c.subset_accuracy);
        let f1: Vec<f64> = multi_label::per_label(&t, &p, n)
            .unwrap()
            .iter()
            .map(|m| m.f1)
            .collect();
        close_all("per_label().f1", name, f1, &c.f1);
    }
}

#[test]
fn seed_aggregation_matches_numpy_ddof1() {
    for c in fixture().aggregate {
        let a = Aggregate::from_values(&c.values).unwrap();
        let name = format!("{:?}", c.values);
        close("mean", &name, a.mean, c.mean);
        close("std", &name, a.std.unwrap(), c.std);
        assert_eq!(a.per_seed, c.values);
    }
}

/// Checks `scores` (built from `probs`) against the reference `want`.
fn check_scored(
    what: &str,
    c: &ScoresCase,
    y: &[Vec<bool>],
    probs: &[Vec<f32>],
    scores: &MultiLabelScores,
    want: &Scored,
) {
    let name = format!("{}/{what}", c.name);
    let name = name.as_str();
    assert_eq!(scores.thresholds, want.thresholds, "{name}: thresholds");
    let decided = multi_label::decide(probs, &scores.thresholds).unwrap();
    assert_eq!(decided, bits(&want.decided), "{name}: decided bits");

    let r = &scores.report;
    assert_eq!(r.num_samples, c.y_true.len(), "{name}: num_samples");
    close("weighted_f1", name, r.weighted_f1, want.weighted_f1);
    close("macro_f1", name, r.macro_f1, want.macro_f1);
    close("micro_f1", name, r.micro_f1, want.micro_f1);
    close("hamming_loss", name, r.hamming_loss, want.hamming_loss);
    close(
        "subset_accuracy",
        name,
        r.subset_accuracy,
        want.subset_accuracy,
    );
    close_all("f1", name, r.per_label.iter().map(|m| m.f1), &want.f1);

    assert_eq!(scores.roc_auc.len(), want.roc_auc.len(), "{name}: roc_auc");
    for (l, (got, w)) in scores.roc_auc.iter().zip(&want.roc_auc).enumerate() {
        match (got, w) {
            (Some(g), Some(w)) => close(&format!("roc_auc[{l}]"), name, *g, *w),
            (None, None) => {}
            _ => panic!("{name}: roc_auc[{l}] = {got:?}, scikit-learn says {w:?}"),
        }
    }
    match (scores.mean_roc_auc, want.mean_roc_auc) {
        (Some(g), Some(w)) => close("mean_roc_auc", name, g, w),
        (g, w) => assert_eq!(g, w, "{name}: mean_roc_auc"),
    }

    let fifteen = want.ece.iter().find(|e| e.bins == multi_label::ECE_BINS);
    let fifteen = fifteen.expect("the fixture has the ECE with ECE_BINS bins");
    close(
        "expected_calibration_error",
        name,
        scores.expected_calibration_error,
        fifteen.ece,
    );
    for e in &want.ece {
        let got = multi_label::expected_calibration_error(y, probs, c.num_labels, e.bins).unwrap();
        close(&format!("ece({} bins)", e.bins), name, got, e.ece);
    }
}

#[test]
fn multi_label_scores_match_sklearn() {
    let fx = fixture();
    assert!(fx.multi_label_scores.len() >= 3);
    for c in &fx.multi_label_scores {
        let n = c.num_labels;
        let y = bits(&c.y_true);

        // Tuned on these very rows (the fixture checks the rule, not a split).
        let tuned = multi_label::tune_thresholds(&y, &c.probs, n).unwrap();
        let scores = MultiLabelScores::new(&y, &c.probs, n, &tuned).unwrap();
        check_scored("tuned", c, &y, &c.probs, &scores, &c.tuned);
        let per_label = multi_label::roc_auc_per_label(&y, &c.probs, n).unwrap();
        assert_eq!(per_label, scores.roc_auc, "{}: roc_auc_per_label", c.name);

        let prior = multi_label::label_prior(&bits(&c.train_y_true), n).unwrap();
        close_all("label_prior", &c.name, prior.iter().copied(), &c.prior);
        let prior_probs: Vec<Vec<f32>> = vec![prior.iter().map(|&p| p as f32).collect(); y.len()];
        let scores = MultiLabelScores::prior(&y, n, &prior).unwrap();
        check_scored(
            "prior_baseline",
            c,
            &y,
            &prior_probs,
            &scores,
            &c.prior_baseline,
        );

        let ones = vec![vec![1.0f32; n]; y.len()];
        let scores = MultiLabelScores::all_positive(&y, n).unwrap();
        check_scored(
            "all_positive_baseline",
            c,
            &y,
            &ones,
            &scores,
            &c.all_positive_baseline,
        );
    }
}
