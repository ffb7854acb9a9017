//! Single-label metrics from a confusion matrix, with scikit-learn semantics.
//!
//! Every metric here equals scikit-learn's
//! `f1_score(y_true, y_pred, labels=range(num_classes), average=…, zero_division=0)`
//! (and `precision_recall_fscore_support`, `confusion_matrix`,
//! `accuracy_score` likewise); `tests/sklearn_parity.rs` checks this to 1e-9
//! against fixtures written by `scripts/sklearn_reference.py`.
//!
//! # Conventions
//! - **Which classes are averaged.** Every class `0..num_classes`, including
//!   classes absent from both `y_true` and `y_pred`. This is what passing
//!   `labels=range(C)` does in scikit-learn; without `labels`, scikit-learn
//!   averages only over classes present in `y_true ∪ y_pred`, so its macro
//!   F1 can be higher on small or skewed test sets. Weighted averages are
//!   unaffected (absent classes have zero weight).
//! - **zero_division = 0.** Precision is 0 for a class never predicted,
//!   recall is 0 for a class with no support, and F1 = 2·TP / (2·TP + FP + FN)
//!   is 0 when that denominator is 0. A support-weighted average whose
//!   classes all have zero support is 0.
//! - **Weighted F1** is the support-weighted mean of per-class F1
//!   (scikit-learn `average='weighted'`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Side, check_paired};

/// MELD's five evaluated classes in `LabelSpace::meld()` order
/// (neutral 0, surprise 1, sadness 3, joy 4, anger 6): the "5-class
/// weighted F1" leaves out fear (2) and disgust (5), which are rare.
pub const MELD_FIVE_CLASSES: [usize; 5] = [0, 1, 3, 4, 6];

/// Precision, recall, F1 and support of one class (or one label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassMetrics {
    /// Class index.
    pub class: usize,
    /// TP / (TP + FP); 0 when the class is never predicted.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class has no support.
    pub recall: f64,
    /// 2·TP / (2·TP + FP + FN); 0 when the denominator is 0.
    pub f1: f64,
    /// Number of gold samples of the class (TP + FN).
    pub support: usize,
}

impl ClassMetrics {
    /// Metrics from raw counts with the zero_division = 0 convention.
    pub(crate) fn from_counts(class: usize, tp: usize, predicted: usize, support: usize) -> Self {
        Self {
            class,
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2 * tp, support + predicted),
            support,
        }
    }
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn `zero_division=0`).
pub(crate) fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Support-weighted mean of `(f1, support)` pairs; 0 when all supports are 0.
pub(crate) fn support_weighted(items: impl Iterator<Item = (f64, usize)>) -> f64 {
    let (sum, weight) = items.fold((0.0, 0usize), |(s, w), (f1, support)| {
        (s + f1 * support as f64, w + support)
    });
    if weight == 0 {
        0.0
    } else {
        sum / weight as f64
    }
}

/// Checks that `classes` is non-empty, in range and free of repeats.
pub(crate) fn check_classes(classes: &[usize], num_classes: usize) -> Result<()> {
    if classes.is_empty() {
        return Err(Error::EmptyInput {
            what: "no classes to average over",
        });
    }
    let mut seen = vec![false; num_classes];
    for &class in classes {
        let slot = seen
            .get_mut(class)
            .ok_or(Error::ClassOutOfRange { class, num_classes })?;
        if *slot {
            return Err(Error::DuplicateClass { class });
        }
        *slot = true;
    }
    Ok(())
}

/// Counts of (gold, predicted) pairs: `counts[t][p]` is the number of samples
/// of class `t` predicted as `p` (rows gold, columns predicted, as in
/// scikit-learn's `confusion_matrix`). Every metric of this module is a
/// function of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfusion", into = "RawConfusion")]
pub struct ConfusionMatrix {
    counts: Vec<Vec<usize>>,
}

/// Serialised form of [`ConfusionMatrix`], validated on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfusion {
    counts: Vec<Vec<usize>>,
}

impl TryFrom<RawConfusion> for ConfusionMatrix {
    type Error = Error;

    fn try_from(raw: RawConfusion) -> Result<Self> {
        let expected = raw.counts.len();
        if expected == 0 {
            return Err(Error::EmptyInput {
                what: "confusion matrix has no classes",
            });
        }
        for (row, r) in raw.counts.iter().enumerate() {
            if r.len() != expected {
                return Err(Error::RaggedConfusion {
                    row,
                    expected,
                    got: r.len(),
                });
            }
        }
        Ok(Self { counts: raw.counts })
    }
}

impl From<ConfusionMatrix> for RawConfusion {
    fn from(m: ConfusionMatrix) -> Self {
        Self { counts: m.counts }
    }
}

impl ConfusionMatrix {
    /// Counts `(y_true[i], y_pred[i])` pairs over `num_classes` classes.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::EmptyInput`] (no samples or
    /// `num_classes == 0`), [`Error::LabelOutOfRange`] naming the side and
    /// position of the first bad label.
    pub fn new(y_true: &[usize], y_pred: &[usize], num_classes: usize) -> Result<Self> {
        check_paired(y_true.len(), y_pred.len())?;
        if num_classes == 0 {
            return Err(Error::EmptyInput {
                what: "num_classes is 0",
            });
        }
        let mut counts = vec![vec![0usize; num_classes]; num_classes];
        for (index, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
            let out_of_range = |side, label| Error::LabelOutOfRange {
                side,
                index,
                label,
                num_classes,
            };
            if t >= num_classes {
                return Err(out_of_range(Side::True, t));
            }
            if p >= num_classes {
                return Err(out_of_range(Side::Pred, p));
            }
            counts[t][p] += 1;
        }
        Ok(Self { counts })
    }

    /// Number of classes (rows = columns).
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// The matrix, `counts()[gold][predicted]`.
    pub fn counts(&self) -> &[Vec<usize>] {
        &self.counts
    }

    /// Number of samples counted.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    fn diagonal(&self, class: usize) -> usize {
        self.counts[class][class]
    }

    fn support(&self, class: usize) -> usize {
        self.counts[class].iter().sum()
    }

    fn predicted(&self, class: usize) -> usize {
        self.counts.iter().map(|row| row[class]).sum()
    }

    /// Fraction of samples predicted correctly (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let correct = (0..self.num_classes()).map(|c| self.diagonal(c)).sum();
        ratio(correct, self.total())
    }

    /// Precision, recall, F1 and support of every class, in class order.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        (0..self.num_classes())
            .map(|c| {
                ClassMetrics::from_counts(c, self.diagonal(c), self.predicted(c), self.support(c))
            })
            .collect()
    }

    /// Support-weighted mean F1 over all classes.
    pub fn weighted_f1(&self) -> f64 {
        support_weighted(self.per_class().iter().map(|m| (m.f1, m.support)))
    }

    /// Unweighted mean F1 over all `num_classes` classes, absent ones
    /// included (they contribute 0).
    pub fn macro_f1(&self) -> f64 {
        let per_class = self.per_class();
        per_class.iter().map(|m| m.f1).sum::<f64>() / per_class.len() as f64
    }

    /// Support-weighted mean F1 over `classes` only. Predictions are still
    /// over all classes: a sample of class 0 predicted as an excluded class
    /// is a false negative of class 0. Equals scikit-learn's
    /// `f1_score(labels=classes, average='weighted', zero_division=0)`.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no classes, [`Error::ClassOutOfRange`],
    /// [`Error::DuplicateClass`].
    pub fn weighted_f1_over(&self, classes: &[usize]) -> Result<f64> {
        check_classes(classes, self.num_classes())?;
        let per_class = self.per_class();
        Ok(support_weighted(
            classes
                .iter()
                .map(|&c| (per_class[c].f1, per_class[c].support)),
        ))
    }
}

/// Fraction of positions where `y_pred` equals `y_true`.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyInput`].
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    check_paired(y_true.len(), y_pred.len())?;
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(ratio(correct, y_true.len()))
}

/// The confusion matrix of `y_true` against `y_pred`.
///
/// # Errors
/// As [`ConfusionMatrix::new`].
pub fn confusion_matrix(
    y_true: &[usize],
    y_pred: &[usize],
    num_classes: usize,
) -> Result<ConfusionMatrix> {
    ConfusionMatrix::new(y_true, y_pred, num_classes)
}

/// Per-class precision, recall, F1 and support over `0..num_classes`.
///
/// # Errors
/// As [`ConfusionMatrix::new`].
pub fn per_class(
    y_true: &[usize],
    y_pred: &[usize],
    num_classes: usize,
) -> Result<Vec<ClassMetrics>> {
    Ok(ConfusionMatrix::new(y_true, y_pred, num_classes)?.per_class())
}

/// Support-weighted F1 over all classes (scikit-learn `average='weighted'`).
///
/// # Errors
/// As [`ConfusionMatrix::new`].
pub fn weighted_f1(y_true: &[usize], y_pred: &[usize], num_classes: usize) -> Result<f64> {
    Ok(ConfusionMatrix::new(y_true, y_pred, num_classes)?.weighted_f1())
}

/// Mean F1 over all `num_classes` classes (scikit-learn `average='macro'`
/// with `labels=range(num_classes)`): absent classes count as 0.
///
/// # Errors
/// As [`ConfusionMatrix::new`].
pub fn macro_f1(y_true: &[usize], y_pred: &[usize], num_classes: usize) -> Result<f64> {
    Ok(ConfusionMatrix::new(y_true, y_pred, num_classes)?.macro_f1())
}

/// Support-weighted F1 over a subset of classes; see
/// [`ConfusionMatrix::weighted_f1_over`].
///
/// # Errors
/// As [`ConfusionMatrix::new`] and [`ConfusionMatrix::weighted_f1_over`].
pub fn weighted_f1_over(
    y_true: &[usize],
    y_pred: &[usize],
    num_classes: usize,
    classes: &[usize],
) -> Result<f64> {
    ConfusionMatrix::new(y_true, y_pred, num_classes)?.weighted_f1_over(classes)
}

/// MELD's "5-class weighted F1": predictions over all 7 classes, F1 averaged
/// (by support) over [`MELD_FIVE_CLASSES`].
///
/// # Errors
/// As [`ConfusionMatrix::new`] with 7 classes.
pub fn meld_five_class_weighted_f1(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    weighted_f1_over(y_true, y_pred, 7, &MELD_FIVE_CLASSES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_predictions_score_one() {
        let y = [0, 1, 2, 2, 1];
        let m = ConfusionMatrix::new(&y, &y, 3).unwrap();
        assert_eq!(m.accuracy(), 1.0);
        assert_eq!(m.weighted_f1(), 1.0);
        assert_eq!(m.macro_f1(), 1.0);
        assert_eq!(m.total(), 5);
    }

    #[test]
    fn absent_class_counts_zero_in_macro() {
        // Class 2 never occurs: macro over 3 classes is 2/3, weighted is 1.
        let y = [0, 1, 0, 1];
        assert!((macro_f1(&y, &y, 3).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(weighted_f1(&y, &y, 3).unwrap(), 1.0);
    }

    #[test]
    fn confusion_rows_are_gold_columns_predicted() {
        let m = confusion_matrix(&[0, 0, 1], &[1, 1, 1], 2).unwrap();
        assert_eq!(m.counts(), &[vec![0, 2], vec![0, 1]]);
        let pc = m.per_class();
        assert_eq!(
            (pc[0].precision, pc[0].recall, pc[0].support),
            (0.0, 0.0, 2)
        );
        assert!((pc[1].precision - 1.0 / 3.0).abs() < 1e-12 && pc[1].recall == 1.0);
    }

    #[test]
    fn errors_name_side_and_position() {
        assert_eq!(
            accuracy(&[0, 1], &[0]),
            Err(Error::LengthMismatch {
                y_true: 2,
                y_pred: 1
            })
        );
        assert_eq!(
            accuracy(&[], &[]),
            Err(Error::EmptyInput { what: "no samples" })
        );
        let err = weighted_f1(&[0, 1, 2], &[0, 1, 3], 3).unwrap_err();
        assert_eq!(
            err,
            Error::LabelOutOfRange {
                side: Side::Pred,
                index: 2,
                label: 3,
                num_classes: 3
            }
        );
        assert_eq!(err.to_string(), "y_pred[2] = 3 is outside the 3 classes");
        assert!(matches!(
            macro_f1(&[0], &[0], 0),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn class_subset_is_validated() {
        let m = confusion_matrix(&[0, 1], &[0, 1], 2).unwrap();
        assert_eq!(
            m.weighted_f1_over(&[0, 0]),
            Err(Error::DuplicateClass { class: 0 })
        );
        assert_eq!(
            m.weighted_f1_over(&[2]),
            Err(Error::ClassOutOfRange {
                class: 2,
                num_classes: 2
            })
        );
        assert!(matches!(
            m.weighted_f1_over(&[]),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn meld_five_class_ignores_fear_and_disgust_support() {
        // All fear/disgust samples wrong; the five evaluated classes perfect.
        let y_true = [0, 1, 3, 4, 6, 2, 5];
        let y_pred = [0, 1, 3, 4, 6, 0, 0];
        let five = meld_five_class_weighted_f1(&y_true, &y_pred).unwrap();
        // Neutral has precision 1/3 (two false positives), the rest are perfect.
        let neutral_f1 = 2.0 * 1.0 / (2.0 * 1.0 + 2.0);
        assert!((five - (neutral_f1 + 4.0) / 5.0).abs() < 1e-12, "{five}");
        assert!(weighted_f1(&y_true, &y_pred, 7).unwrap() < five);
    }

    #[test]
    fn deserialising_a_ragged_matrix_fails() {
        let err = serde_json::from_str::<ConfusionMatrix>(r#"{"counts":[[1,0],[2]]}"#).unwrap_err();
        assert!(err.to_string().contains("row 1 has 1 columns"), "{err}");
        let m = confusion_matrix(&[0, 1], &[1, 1], 2).unwrap();
        let back: ConfusionMatrix =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
