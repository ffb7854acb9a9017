//! Seed aggregation: mean ± sample standard deviation of each metric over
//! runs that differ only in their seed (DESIGN §4 reports 5 seeds), and a
//! plain-text table of the result.
//!
//! The standard deviation is the *sample* one (Bessel's correction,
//! `ddof = 1`, as `numpy.std(x, ddof=1)` and `statistics.stdev`): the seeds
//! are a sample of the run-to-run spread, not the whole population. With a
//! single seed it is undefined and stored as `None`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::multi_label::{MultiLabelReport, MultiLabelScores};
use crate::report::ClassificationReport;

/// One metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Arithmetic mean over seeds.
    pub mean: f64,
    /// Sample standard deviation (`ddof = 1`); `None` for a single seed.
    pub std: Option<f64>,
    /// The value of each seed, in the order given.
    pub per_seed: Vec<f64>,
}

impl Aggregate {
    /// Mean and sample standard deviation of `values`.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] when `values` is empty.
    pub fn from_values(values: &[f64]) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::EmptyInput {
                what: "no seeds to aggregate",
            });
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (squares / (n - 1.0)).sqrt()
        });
        Ok(Self {
            mean,
            std,
            per_seed: values.to_vec(),
        })
    }

    /// `mean ± std` in percent with two decimals (`65.21 ± 0.35`), the way
    /// results tables report F1; `± n/a` for a single seed.
    pub fn display_percent(&self) -> String {
        match self.std {
            Some(std) => format!("{:.2} ± {:.2}", 100.0 * self.mean, 100.0 * std),
            None => format!("{:.2} ± n/a", 100.0 * self.mean),
        }
    }
}

/// The values of one metric across reports, via `get`.
fn over<T>(reports: &[T], get: impl Fn(&T) -> f64) -> Result<Aggregate> {
    Aggregate::from_values(&reports.iter().map(get).collect::<Vec<_>>())
}

/// Per-class (or per-label) F1 over seeds, checking every report has as many.
fn per_class_f1<T>(
    reports: &[T],
    classes: impl Fn(&T) -> &[crate::ClassMetrics],
) -> Result<Vec<Aggregate>> {
    let Some(first) = reports.first() else {
        return Err(Error::EmptyInput {
            what: "no seeds to aggregate",
        });
    };
    let n = classes(first).len();
    for (index, r) in reports.iter().enumerate() {
        if classes(r).len() != n {
            return Err(Error::ReportMismatch {
                index,
                msg: format!("{} classes instead of {n}", classes(r).len()),
            });
        }
    }
    (0..n)
        .map(|c| over(reports, |r| classes(r)[c].f1))
        .collect()
}

/// [`ClassificationReport`] metrics over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportAggregate {
    /// Number of seeds aggregated.
    pub num_seeds: usize,
    /// Accuracy over seeds.
    pub accuracy: Aggregate,
    /// Weighted F1 over seeds.
    pub weighted_f1: Aggregate,
    /// Macro F1 over seeds.
    pub macro_f1: Aggregate,
    /// Subset (MELD 5-class) weighted F1 over seeds, when every report has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub five_class_weighted_f1: Option<Aggregate>,
    /// F1 of each class over seeds, in class order.
    pub per_class_f1: Vec<Aggregate>,
}

impl ReportAggregate {
    /// Aggregates per-seed reports of the same experiment.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no reports; [`Error::ReportMismatch`] when
    /// reports disagree on the number of classes or on whether they carry
    /// the 5-class F1.
    pub fn from_reports(reports: &[ClassificationReport]) -> Result<Self> {
        let per_class_f1 = per_class_f1(reports, |r| &r.per_class)?;
        let has_five = reports
            .first()
            .is_some_and(|r| r.five_class_weighted_f1.is_some());
        if let Some(index) = reports
            .iter()
            .position(|r| r.five_class_weighted_f1.is_some() != has_five)
        {
            return Err(Error::ReportMismatch {
                index,
                msg: "only some reports carry five_class_weighted_f1".into(),
            });
        }
        let five_class_weighted_f1 = if has_five {
            Some(over(reports, |r| {
                r.five_class_weighted_f1.unwrap_or(f64::NAN)
            })?)
        } else {
            None
        };
        Ok(Self {
            num_seeds: reports.len(),
            accuracy: over(reports, |r| r.accuracy)?,
            weighted_f1: over(reports, |r| r.weighted_f1)?,
            macro_f1: over(reports, |r| r.macro_f1)?,
            five_class_weighted_f1,
            per_class_f1,
        })
    }

    /// `(metric name, aggregate)` rows: the scalar metrics, then one
    /// `f1[<class>]` row per class, named by `class_names` when it has an
    /// entry for the class, by index otherwise.
    pub fn rows(&self, class_names: &[&str]) -> Vec<(String, &Aggregate)> {
        let mut rows = vec![
            ("accuracy".to_string(), &self.accuracy),
            ("weighted_f1".to_string(), &self.weighted_f1),
            ("macro_f1".to_string(), &self.macro_f1),
        ];
        if let Some(five) = &self.five_class_weighted_f1 {
            rows.push(("five_class_weighted_f1".to_string(), five));
        }
        rows.extend(class_rows(&self.per_class_f1, class_names));
        rows
    }

    /// The table of [`Self::rows`], rendered by [`render_table`].
    pub fn to_table(&self, class_names: &[&str]) -> String {
        render_table(&self.rows(class_names))
    }
}

/// [`MultiLabelReport`] metrics over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiLabelAggregate {
    /// Number of seeds aggregated.
    pub num_seeds: usize,
    /// Subset accuracy over seeds.
    pub subset_accuracy: Aggregate,
    /// Hamming loss over seeds.
    pub hamming_loss: Aggregate,
    /// Micro F1 over seeds.
    pub micro_f1: Aggregate,
    /// Macro F1 over seeds.
    pub macro_f1: Aggregate,
    /// Weighted F1 over seeds.
    pub weighted_f1: Aggregate,
    /// F1 of each label over seeds, in label order.
    pub per_label_f1: Vec<Aggregate>,
}

impl MultiLabelAggregate {
    /// Aggregates per-seed multi-label reports of the same experiment.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no reports; [`Error::ReportMismatch`] when
    /// reports disagree on the number of labels.
    pub fn from_reports(reports: &[MultiLabelReport]) -> Result<Self> {
        let per_label_f1 = per_class_f1(reports, |r| &r.per_label)?;
        Ok(Self {
            num_seeds: reports.len(),
            subset_accuracy: over(reports, |r| r.subset_accuracy)?,
            hamming_loss: over(reports, |r| r.hamming_loss)?,
            micro_f1: over(reports, |r| r.micro_f1)?,
            macro_f1: over(reports, |r| r.macro_f1)?,
            weighted_f1: over(reports, |r| r.weighted_f1)?,
            per_label_f1,
        })
    }

    /// `(metric name, aggregate)` rows, per-label rows named as in
    /// [`ReportAggregate::rows`].
    pub fn rows(&self, label_names: &[&str]) -> Vec<(String, &Aggregate)> {
        let mut rows = self.scalar_rows();
        rows.extend(class_rows(&self.per_label_f1, label_names));
        rows
    }

    /// The rows of the scalar (not per-label) metrics.
    fn scalar_rows(&self) -> Vec<(String, &Aggregate)> {
        vec![
            ("subset_accuracy".to_string(), &self.subset_accuracy),
            ("hamming_loss".to_string(), &self.hamming_loss),
            ("micro_f1".to_string(), &self.micro_f1),
            ("macro_f1".to_string(), &self.macro_f1),
            ("weighted_f1".to_string(), &self.weighted_f1),
        ]
    }

    /// The table of [`Self::rows`], rendered by [`render_table`].
    pub fn to_table(&self, label_names: &[&str]) -> String {
        render_table(&self.rows(label_names))
    }
}

/// An optional metric over seeds: `None` when no report has it, an error
/// when only some do (`what` names it).
fn over_optional<T>(
    reports: &[T],
    what: &str,
    get: impl Fn(&T) -> Option<f64>,
) -> Result<Option<Aggregate>> {
    let Some(first) = reports.first() else {
        return Err(Error::EmptyInput {
            what: "no seeds to aggregate",
        });
    };
    let defined = get(first).is_some();
    if let Some(index) = reports.iter().position(|r| get(r).is_some() != defined) {
        return Err(Error::ReportMismatch {
            index,
            msg: format!("{what} is defined in only some reports"),
        });
    }
    if !defined {
        return Ok(None);
    }
    over(reports, |r| get(r).unwrap_or(f64::NAN)).map(Some)
}

/// [`MultiLabelScores`] over seeds: the thresholded metrics of
/// [`MultiLabelAggregate`] plus mean ROC-AUC, expected calibration error and
/// per-label ROC-AUC.
///
/// Whether a label's ROC-AUC is defined depends only on the gold labels, so
/// runs of one experiment (same test rows, different seeds) agree on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiLabelScoresAggregate {
    /// The thresholded metrics (and the number of seeds).
    pub report: MultiLabelAggregate,
    /// Mean ROC-AUC over seeds; `None` when no label has both classes.
    pub mean_roc_auc: Option<Aggregate>,
    /// Expected calibration error over seeds.
    pub expected_calibration_error: Aggregate,
    /// ROC-AUC of each label over seeds, in label order; `None` for a label
    /// with one class in the gold rows.
    pub per_label_roc_auc: Vec<Option<Aggregate>>,
}

impl MultiLabelScoresAggregate {
    /// Aggregates per-seed scores of the same experiment.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no scores; [`Error::ReportMismatch`] when
    /// they disagree on the number of labels or on which ROC-AUCs are
    /// defined, or when one has a per-label ROC-AUC list of another length
    /// than its report.
    pub fn from_scores(scores: &[MultiLabelScores]) -> Result<Self> {
        let reports: Vec<MultiLabelReport> = scores.iter().map(|s| s.report.clone()).collect();
        let report = MultiLabelAggregate::from_reports(&reports)?;
        let num_labels = report.per_label_f1.len();
        if let Some(index) = scores.iter().position(|s| s.roc_auc.len() != num_labels) {
            return Err(Error::ReportMismatch {
                index,
                msg: format!(
                    "{} ROC-AUCs for {num_labels} labels",
                    scores[index].roc_auc.len()
                ),
            });
        }
        let per_label_roc_auc = (0..num_labels)
            .map(|l| over_optional(scores, &format!("roc_auc[{l}]"), |s| s.roc_auc[l]))
            .collect::<Result<_>>()?;
        Ok(Self {
            report,
            mean_roc_auc: over_optional(scores, "mean_roc_auc", |s| s.mean_roc_auc)?,
            expected_calibration_error: over(scores, |s| s.expected_calibration_error)?,
            per_label_roc_auc,
        })
    }

    /// `(metric name, aggregate)` rows: the scalar metrics of
    /// [`MultiLabelAggregate::rows`], `mean_roc_auc` (when defined) and
    /// `expected_calibration_error`, then one `f1[<label>]` row per label and
    /// one `roc_auc[<label>]` row per label with a defined ROC-AUC, labels
    /// named as in [`ReportAggregate::rows`].
    pub fn rows(&self, label_names: &[&str]) -> Vec<(String, &Aggregate)> {
        let mut rows = self.report.scalar_rows();
        if let Some(auc) = &self.mean_roc_auc {
            rows.push(("mean_roc_auc".to_string(), auc));
        }
        rows.push((
            "expected_calibration_error".to_string(),
            &self.expected_calibration_error,
        ));
        rows.extend(class_rows(&self.report.per_label_f1, label_names));
        rows.extend(
            self.per_label_roc_auc
                .iter()
                .enumerate()
                .filter_map(|(l, a)| {
                    a.as_ref()
                        .map(|a| (format!("roc_auc[{}]", label_name(label_names, l)), a))
                }),
        );
        rows
    }

    /// The table of [`Self::rows`], rendered by [`render_table`].
    pub fn to_table(&self, label_names: &[&str]) -> String {
        render_table(&self.rows(label_names))
    }
}

/// The name of label `l`: `names[l]` when there is one, the index otherwise.
fn label_name(names: &[&str], l: usize) -> String {
    names
        .get(l)
        .map_or_else(|| l.to_string(), |n| (*n).to_string())
}

fn class_rows<'a>(per_class: &'a [Aggregate], names: &[&str]) -> Vec<(String, &'a Aggregate)> {
    per_class
        .iter()
        .enumerate()
        .map(|(c, a)| {
            let name = names
                .get(c)
                .map_or_else(|| c.to_string(), |n| (*n).to_string());
            (format!("f1[{name}]"), a)
        })
        .collect()
}

/// A markdown table with one row per metric: name, `mean ± std` in percent
/// (see [`Aggregate::display_percent`]) and the number of seeds. Columns are
/// padded so the text also reads well unrendered.
///
/// ```text
/// | metric      | mean ± std (%) | seeds |
/// |-------------|---------------:|------:|
/// | accuracy    |   65.16 ± 0.59 |     5 |
/// ```
pub fn render_table(rows: &[(String, &Aggregate)]) -> String {
    let header = ["metric", "mean ± std (%)", "seeds"];
    let body: Vec<[String; 3]> = rows
        .iter()
        .map(|(name, a)| {
            [
                name.clone(),
                a.display_percent(),
                a.per_seed.len().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |cell: &str, width: usize, right: bool| {
        let fill = " ".repeat(width.saturating_sub(cell.chars().count()));
        if right {
            format!("{fill}{cell}")
        } else {
            format!("{cell}{fill}")
        }
    };
    let line = |cells: [&str; 3]| {
        format!(
            "| {} | {} | {} |\n",
            pad(cells[0], widths[0], false),
            pad(cells[1], widths[1], true),
            pad(cells[2], widths[2], true)
        )
    };
    let mut out = line(header);
    out.push_str(&format!(
        "|{}|{}:|{}:|\n",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 1),
        "-".repeat(widths[2] + 1)
    ));
    for row in &body {
        out.push_str(&line([&row[0], &row[1], &row[2]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std_uses_n_minus_one() {
        let a = Aggregate::from_values(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(a.mean, 2.5);
        // Population std would be sqrt(1.25); sample std is sqrt(5/3).
        assert!((a.std.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Aggregate::from_values(&[0.7]).unwrap().std, None);
        assert!(matches!(
            Aggregate::from_values(&[]),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn reports_aggregate_and_render() {
        let a = ClassificationReport::meld(&[0, 1, 4, 6], &[0, 1, 4, 0]).unwrap();
        let b = ClassificationReport::meld(&[0, 1, 4, 6], &[0, 1, 4, 6]).unwrap();
        let agg = ReportAggregate::from_reports(&[a.clone(), b]).unwrap();
        assert_eq!(agg.num_seeds, 2);
        assert_eq!(agg.accuracy.per_seed, vec![0.75, 1.0]);
        assert!(agg.five_class_weighted_f1.is_some());
        assert_eq!(agg.per_class_f1.len(), 7);
        let names = [
            "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
        ];
        let table = agg.to_table(&names);
        assert!(table.contains("| accuracy "), "{table}");
        assert!(table.contains("87.50 ± 17.68"), "{table}");
        assert!(table.contains("f1[anger]"), "{table}");
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "columns are aligned:\n{table}"
        );

        let plain = ClassificationReport::new(&[0, 1], &[0, 1], 7).unwrap();
        assert!(matches!(
            ReportAggregate::from_reports(&[a.clone(), plain]),
            Err(Error::ReportMismatch { index: 1, .. })
        ));
        let six = ClassificationReport::new(&[0, 1], &[0, 1], 6).unwrap();
        assert!(matches!(
            ReportAggregate::from_reports(&[a, six]),
            Err(Error::ReportMismatch { .. })
        ));
        assert!(matches!(
            ReportAggregate::from_reports(&[]),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn multi_label_reports_aggregate() {
        let t = [[true, false, true]];
        let r1 = MultiLabelReport::new(&t, &[[true, false, false]], 3).unwrap();
        let r2 = MultiLabelReport::new(&t, &t, 3).unwrap();
        let agg = MultiLabelAggregate::from_reports(&[r1, r2]).unwrap();
        assert_eq!(agg.subset_accuracy.mean, 0.5);
        assert_eq!(agg.per_label_f1.len(), 3);
        assert!(agg.to_table(&[]).contains("f1[2]"));
    }

    #[test]
    fn multi_label_scores_aggregate() {
        // Label 2 never occurs: its ROC-AUC is undefined in every seed.
        let y = [
            [true, false, false],
            [false, true, false],
            [true, true, false],
        ];
        let p1 = [[0.9f32, 0.2, 0.1], [0.3, 0.8, 0.0], [0.6, 0.4, 0.2]];
        let p2 = [[0.4f32, 0.6, 0.5], [0.5, 0.7, 0.1], [0.8, 0.9, 0.0]];
        let s1 = MultiLabelScores::new(&y, &p1, 3, &[0.5; 3]).unwrap();
        let s2 = MultiLabelScores::new(&y, &p2, 3, &[0.5; 3]).unwrap();
        let agg = MultiLabelScoresAggregate::from_scores(&[s1.clone(), s2.clone()]).unwrap();
        assert_eq!(agg.report.num_seeds, 2);
        assert_eq!(agg.per_label_roc_auc.len(), 3);
        assert!(agg.per_label_roc_auc[2].is_none());
        assert_eq!(
            agg.per_label_roc_auc[0].as_ref().unwrap().per_seed,
            vec![s1.roc_auc[0].unwrap(), s2.roc_auc[0].unwrap()]
        );
        assert_eq!(
            agg.expected_calibration_error.per_seed,
            vec![s1.expected_calibration_error, s2.expected_calibration_error]
        );
        assert_eq!(
            agg.mean_roc_auc.as_ref().unwrap().mean,
            (s1.mean_roc_auc.unwrap() + s2.mean_roc_auc.unwrap()) / 2.0
        );
        let table = agg.to_table(&["joy", "sad"]);
        for row in [
            "| macro_f1 ",
            "| mean_roc_auc ",
            "| expected_calibration_error ",
            "| f1[joy] ",
            "| f1[2] ",
            "| roc_auc[sad] ",
        ] {
            assert!(table.contains(row), "{row}:\n{table}");
        }
        assert!(!table.contains("roc_auc[2]"), "{table}");
        // serde_json's default float parser may be 1 ulp off: compare the
        // round trip row by row with a tolerance.
        let json = serde_json::to_string(&agg).unwrap();
        let back: MultiLabelScoresAggregate = serde_json::from_str(&json).unwrap();
        assert_eq!(back.per_label_roc_auc[2], None);
        let (rows, back_rows) = (agg.rows(&[]), back.rows(&[]));
        assert_eq!(rows.len(), back_rows.len());
        for ((name, a), (back_name, b)) in rows.iter().zip(&back_rows) {
            assert_eq!(name, back_name);
            assert_eq!(a.per_seed.len(), b.per_seed.len(), "{name}");
            for (x, y) in a.per_seed.iter().zip(&b.per_seed) {
                assert!((x - y).abs() < 1e-15, "{name}: {x} vs {y}");
            }
        }

        // Same labels, but label 2 occurs in the other run's gold rows.
        let y3 = [
            [true, false, true],
            [false, true, false],
            [true, true, false],
        ];
        let s3 = MultiLabelScores::new(&y3, &p1, 3, &[0.5; 3]).unwrap();
        assert!(matches!(
            MultiLabelScoresAggregate::from_scores(&[s1.clone(), s3]),
            Err(Error::ReportMismatch { index: 1, .. })
        ));
        let mut short = s2;
        short.roc_auc.pop();
        assert!(matches!(
            MultiLabelScoresAggregate::from_scores(&[s1, short]),
            Err(Error::ReportMismatch { index: 1, .. })
        ));
        assert!(matches!(
            MultiLabelScoresAggregate::from_scores(&[]),
            Err(Error::EmptyInput { .. })
        ));
    }
}
