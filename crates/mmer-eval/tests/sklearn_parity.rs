//! Parity with scikit-learn: the numbers in `fixtures/sklearn_reference.json`
//! were computed by `scripts/sklearn_reference.py` (scikit-learn with
//! `labels=range(C), zero_division=0`) on the label vectors stored beside
//! them. Regenerate with `python3 scripts/sklearn_reference.py`.

use mmer_eval::{Aggregate, ClassificationReport, MultiLabelReport, multi_label, single_label};
use serde::Deserialize;

const TOL: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    sklearn_version: String,
    single_label: Vec<SingleCase>,
    multi_label: Vec<MultiCase>,
    aggregate: Vec<AggregateCase>,
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
