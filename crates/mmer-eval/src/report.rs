//! The result record of one single-label evaluation.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::single_label::{ClassMetrics, ConfusionMatrix, MELD_FIVE_CLASSES};

/// Every single-label metric of one evaluation, ready for `metrics.json`.
/// Conventions (classes averaged, zero_division = 0) are those of
/// [`crate::single_label`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationReport {
    /// Number of samples evaluated.
    pub num_samples: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Support-weighted mean F1 over all classes.
    pub weighted_f1: f64,
    /// Mean F1 over all classes, absent ones counting 0.
    pub macro_f1: f64,
    /// Precision, recall, F1 and support per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// Gold × predicted counts.
    pub confusion: ConfusionMatrix,
    /// Support-weighted F1 over a class subset (MELD: the five classes of
    /// [`MELD_FIVE_CLASSES`]); absent unless asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub five_class_weighted_f1: Option<f64>,
}

impl ClassificationReport {
    /// Evaluates `y_pred` against `y_true` over `num_classes` classes.
    ///
    /// # Errors
    /// As [`ConfusionMatrix::new`].
    pub fn new(y_true: &[usize], y_pred: &[usize], num_classes: usize) -> Result<Self> {
        Ok(Self::from_confusion(ConfusionMatrix::new(
            y_true,
            y_pred,
            num_classes,
        )?))
    }

    /// The report of a confusion matrix (without the subset F1).
    pub fn from_confusion(confusion: ConfusionMatrix) -> Self {
        Self {
            num_samples: confusion.total(),
            accuracy: confusion.accuracy(),
            weighted_f1: confusion.weighted_f1(),
            macro_f1: confusion.macro_f1(),
            per_class: confusion.per_class(),
            confusion,
            five_class_weighted_f1: None,
        }
    }

    /// A MELD report: 7 classes in `LabelSpace::meld()` order plus the
    /// 5-class weighted F1 over [`MELD_FIVE_CLASSES`].
    ///
    /// # Errors
    /// As [`ConfusionMatrix::new`] with 7 classes.
    pub fn meld(y_true: &[usize], y_pred: &[usize]) -> Result<Self> {
        Self::new(y_true, y_pred, 7)?.with_five_class(&MELD_FIVE_CLASSES)
    }

    /// Fills [`Self::five_class_weighted_f1`] with the support-weighted F1
    /// over `classes` (see [`ConfusionMatrix::weighted_f1_over`]).
    ///
    /// # Errors
    /// As [`ConfusionMatrix::weighted_f1_over`].
    pub fn with_five_class(mut self, classes: &[usize]) -> Result<Self> {
        self.five_class_weighted_f1 = Some(self.confusion.weighted_f1_over(classes)?);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meld_report_round_trips_through_json() {
        let y_true = [0, 1, 2, 3, 4, 5, 6, 0];
        let y_pred = [0, 1, 0, 3, 4, 0, 6, 1];
        let r = ClassificationReport::meld(&y_true, &y_pred).unwrap();
        assert_eq!(r.num_samples, 8);
        assert_eq!(r.per_class.len(), 7);
        assert!(r.five_class_weighted_f1.is_some());
        let json = serde_json::to_string(&r).unwrap();
        let back: ClassificationReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn five_class_field_is_omitted_when_absent() {
        let r = ClassificationReport::new(&[0, 1], &[0, 1], 2).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("five_class"), "{json}");
        let back: ClassificationReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.five_class_weighted_f1, None);
    }
}
