//! Multi-label metrics: one bit per label per sample (ElderReact), with
//! scikit-learn semantics on indicator matrices.
//!
//! Each metric equals scikit-learn's function of the same name on
//! `y_true`/`y_pred` as 0/1 indicator arrays with
//! `labels=range(num_labels), zero_division=0`:
//! - per-label precision/recall/F1 treat every label as its own binary
//!   problem, with the zero_division = 0 convention of
//!   [`crate::single_label`];
//! - **weighted F1** (`average='weighted'`) is the mean of per-label F1
//!   weighted by each label's number of positive gold samples; 0 when no
//!   label has a positive;
//! - **macro F1** is the unweighted mean over all `num_labels` labels;
//! - **micro F1** pools TP/FP/FN over labels: 2·ΣTP / (2·ΣTP + ΣFP + ΣFN);
//! - **Hamming loss** is the fraction of wrong bits over `samples × labels`;
//! - **subset accuracy** is the fraction of samples whose whole bit vector
//!   is right (`accuracy_score` on indicator arrays).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Side, check_paired};
use crate::single_label::{ClassMetrics, ratio, support_weighted};

/// Per-label and pooled counts of a multi-label prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    /// Per label: true positives.
    tp: Vec<usize>,
    /// Per label: predicted positives.
    predicted: Vec<usize>,
    /// Per label: gold positives.
    support: Vec<usize>,
    /// Samples whose whole row is right.
    exact: usize,
    /// Wrong bits over all samples and labels.
    wrong_bits: usize,
    /// Number of samples.
    samples: usize,
}

impl Counts {
    fn new<R: AsRef<[bool]>>(y_true: &[R], y_pred: &[R], num_labels: usize) -> Result<Self> {
        check_paired(y_true.len(), y_pred.len())?;
        if num_labels == 0 {
            return Err(Error::EmptyInput {
                what: "num_labels is 0",
            });
        }
        let mut counts = Self {
            tp: vec![0; num_labels],
            predicted: vec![0; num_labels],
            support: vec![0; num_labels],
            exact: 0,
            wrong_bits: 0,
            samples: y_true.len(),
        };
        for (index, (t, p)) in y_true.iter().zip(y_pred).enumerate() {
            let (t, p) = (t.as_ref(), p.as_ref());
            for (side, row) in [(Side::True, t), (Side::Pred, p)] {
                if row.len() != num_labels {
                    return Err(Error::WidthMismatch {
                        side,
                        index,
                        expected: num_labels,
                        got: row.len(),
                    });
                }
            }
            let mut row_wrong = 0;
            for (label, (&t, &p)) in t.iter().zip(p).enumerate() {
                counts.tp[label] += usize::from(t && p);
                counts.predicted[label] += usize::from(p);
                counts.support[label] += usize::from(t);
                row_wrong += usize::from(t != p);
            }
            counts.wrong_bits += row_wrong;
            counts.exact += usize::from(row_wrong == 0);
        }
        Ok(counts)
    }

    fn per_label(&self) -> Vec<ClassMetrics> {
        (0..self.tp.len())
            .map(|l| ClassMetrics::from_counts(l, self.tp[l], self.predicted[l], self.support[l]))
            .collect()
    }

    fn micro_f1(&self) -> f64 {
        let tp: usize = self.tp.iter().sum();
        let predicted: usize = self.predicted.iter().sum();
        let support: usize = self.support.iter().sum();
        ratio(2 * tp, predicted + support)
    }

    fn hamming_loss(&self) -> f64 {
        ratio(self.wrong_bits, self.samples * self.tp.len())
    }

    fn subset_accuracy(&self) -> f64 {
        ratio(self.exact, self.samples)
    }
}

fn macro_of(per_label: &[ClassMetrics]) -> f64 {
    per_label.iter().map(|m| m.f1).sum::<f64>() / per_label.len() as f64
}

fn weighted_of(per_label: &[ClassMetrics]) -> f64 {
    support_weighted(per_label.iter().map(|m| (m.f1, m.support)))
}

/// All multi-label metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiLabelReport {
    /// Number of samples evaluated.
    pub num_samples: usize,
    /// Fraction of samples with every bit right.
    pub subset_accuracy: f64,
    /// Fraction of wrong bits.
    pub hamming_loss: f64,
    /// F1 of TP/FP/FN pooled over labels.
    pub micro_f1: f64,
    /// Mean per-label F1.
    pub macro_f1: f64,
    /// Per-label F1 weighted by gold positives.
    pub weighted_f1: f64,
    /// Per-label precision, recall, F1 and support (gold positives).
    pub per_label: Vec<ClassMetrics>,
}

impl MultiLabelReport {
    /// Evaluates `y_pred` against `y_true`, each a row of `num_labels` bits
    /// per sample.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::EmptyInput`] (no samples or no
    /// labels), [`Error::WidthMismatch`] naming the side and row.
    pub fn new<R: AsRef<[bool]>>(y_true: &[R], y_pred: &[R], num_labels: usize) -> Result<Self> {
        let counts = Counts::new(y_true, y_pred, num_labels)?;
        let per_label = counts.per_label();
        Ok(Self {
            num_samples: counts.samples,
            subset_accuracy: counts.subset_accuracy(),
            hamming_loss: counts.hamming_loss(),
            micro_f1: counts.micro_f1(),
            macro_f1: macro_of(&per_label),
            weighted_f1: weighted_of(&per_label),
            per_label,
        })
    }
}

/// Per-label precision, recall, F1 and support.
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn per_label<R: AsRef<[bool]>>(
    y_true: &[R],
    y_pred: &[R],
    num_labels: usize,
) -> Result<Vec<ClassMetrics>> {
    Ok(Counts::new(y_true, y_pred, num_labels)?.per_label())
}

/// Per-label F1 weighted by gold positives (scikit-learn `average='weighted'`).
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn weighted_f1<R: AsRef<[bool]>>(y_true: &[R], y_pred: &[R], num_labels: usize) -> Result<f64> {
    Ok(weighted_of(&per_label(y_true, y_pred, num_labels)?))
}

/// Mean per-label F1 over all `num_labels` labels.
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn macro_f1<R: AsRef<[bool]>>(y_true: &[R], y_pred: &[R], num_labels: usize) -> Result<f64> {
    Ok(macro_of(&per_label(y_true, y_pred, num_labels)?))
}

/// F1 of TP/FP/FN pooled over all labels.
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn micro_f1<R: AsRef<[bool]>>(y_true: &[R], y_pred: &[R], num_labels: usize) -> Result<f64> {
    Ok(Counts::new(y_true, y_pred, num_labels)?.micro_f1())
}

/// Fraction of wrong bits over `samples × num_labels`.
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn hamming_loss<R: AsRef<[bool]>>(
    y_true: &[R],
    y_pred: &[R],
    num_labels: usize,
) -> Result<f64> {
    Ok(Counts::new(y_true, y_pred, num_labels)?.hamming_loss())
}

/// Fraction of samples whose every bit is right.
///
/// # Errors
/// As [`MultiLabelReport::new`].
pub fn subset_accuracy<R: AsRef<[bool]>>(
    y_true: &[R],
    y_pred: &[R],
    num_labels: usize,
) -> Result<f64> {
    Ok(Counts::new(y_true, y_pred, num_labels)?.subset_accuracy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_all_wrong() {
        let y = [[true, false], [false, true]];
        let r = MultiLabelReport::new(&y, &y, 2).unwrap();
        assert_eq!(
            (r.subset_accuracy, r.hamming_loss, r.micro_f1, r.weighted_f1),
            (1.0, 0.0, 1.0, 1.0)
        );
        let flipped = [[false, true], [true, false]];
        let r = MultiLabelReport::new(&y, &flipped, 2).unwrap();
        assert_eq!(
            (r.subset_accuracy, r.hamming_loss, r.micro_f1),
            (0.0, 1.0, 0.0)
        );
    }

    #[test]
    fn ragged_rows_are_errors() {
        let t = vec![vec![true, false], vec![true]];
        let p = vec![vec![true, false], vec![true, false]];
        assert_eq!(
            hamming_loss(&t, &p, 2),
            Err(Error::WidthMismatch {
                side: Side::True,
                index: 1,
                expected: 2,
                got: 1
            })
        );
        assert!(matches!(
            micro_f1::<Vec<bool>>(&[], &[], 2),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            subset_accuracy(&t[..1], &p, 2),
            Err(Error::LengthMismatch { .. })
        ));
    }
}
