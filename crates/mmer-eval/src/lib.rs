//! Evaluation metrics and result records of mmer.
//!
//! This crate owns the numbers a run reports: single-label metrics
//! ([`single_label`]: accuracy, weighted and macro F1, per-class
//! precision/recall/F1, confusion matrix, MELD's 5-class weighted F1),
//! multi-label metrics ([`multi_label`]: weighted/macro/micro F1, Hamming
//! loss, subset accuracy; on probabilities also per-label ROC-AUC, expected
//! calibration error, per-label thresholds tuned on validation and the
//! all-positive and label-prior baselines), the serde records written to
//! `metrics.json` ([`ClassificationReport`], [`MultiLabelReport`],
//! [`MultiLabelScores`]) and seed aggregation ([`aggregate`]: mean ± sample
//! std over seeds, rendered as a table).
//!
//! It takes class indices and bit vectors, not models or files: producing
//! predictions is `mmer-train`'s job, writing run directories too.
//!
//! Every metric matches scikit-learn with `labels=range(num_classes)` and
//! `zero_division=0`; see [`single_label`] for the exact conventions and
//! `tests/sklearn_parity.rs` for the check.
//!
//! ```
//! use mmer_eval::{ClassificationReport, MELD_FIVE_CLASSES};
//!
//! let y_true = [0, 4, 6, 1, 0];
//! let y_pred = [0, 4, 0, 1, 0];
//! let report = ClassificationReport::meld(&y_true, &y_pred)?;
//! assert_eq!(report.accuracy, 0.8);
//! assert_eq!(MELD_FIVE_CLASSES, [0, 1, 3, 4, 6]);
//! # Ok::<(), mmer_eval::Error>(())
//! ```

pub mod aggregate;
mod error;
pub mod multi_label;
mod report;
pub mod single_label;

pub use aggregate::{
    Aggregate, MultiLabelAggregate, MultiLabelScoresAggregate, ReportAggregate, render_table,
};
pub use error::{Error, Result, Side};
pub use multi_label::{MultiLabelReport, MultiLabelScores};
pub use report::ClassificationReport;
pub use single_label::{
    ClassMetrics, ConfusionMatrix, MELD_FIVE_CLASSES, accuracy, confusion_matrix, macro_f1,
    meld_five_class_weighted_f1, per_class, weighted_f1, weighted_f1_over,
};
