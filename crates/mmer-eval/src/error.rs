//! Errors of the metrics: each names which input is wrong and where.

/// Which of the two label sequences an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The gold labels.
    True,
    /// The predictions.
    Pred,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::True => "y_true",
            Side::Pred => "y_pred",
        })
    }
}

/// Metric errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Gold labels and predictions differ in length.
    #[error("y_true has {y_true} entries but y_pred has {y_pred}")]
    LengthMismatch {
        /// Entries in `y_true`.
        y_true: usize,
        /// Entries in `y_pred`.
        y_pred: usize,
    },
    /// A class index at or beyond `num_classes`.
    #[error("{side}[{index}] = {label} is outside the {num_classes} classes")]
    LabelOutOfRange {
        /// Which sequence holds it.
        side: Side,
        /// Position in that sequence.
        index: usize,
        /// The offending class index.
        label: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// A class to average over is outside the label space.
    #[error("class {class} to average over is outside the {num_classes} classes")]
    ClassOutOfRange {
        /// The offending class index.
        class: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// A class listed twice among the classes to average over.
    #[error("class {class} is listed twice among the classes to average over")]
    DuplicateClass {
        /// The repeated class index.
        class: usize,
    },
    /// A multi-label row whose width is not the number of labels.
    #[error("{side}[{index}] has {got} label bits, expected {expected}")]
    WidthMismatch {
        /// Which sequence holds it.
        side: Side,
        /// Row index.
        index: usize,
        /// Number of labels.
        expected: usize,
        /// Bits in this row.
        got: usize,
    },
    /// Nothing to evaluate: no samples, no classes, or no seeds.
    #[error("empty input: {what}")]
    EmptyInput {
        /// What was empty.
        what: &'static str,
    },
    /// Per-seed reports that cannot be aggregated together.
    #[error("report {index} does not match report 0: {msg}")]
    ReportMismatch {
        /// Index of the first disagreeing report.
        index: usize,
        /// What differs.
        msg: String,
    },
    /// A probability that is NaN or outside `[0, 1]`, at `probs[row][label]`.
    #[error("probs[{row}][{label}] = {value} is not a probability in [0, 1]")]
    InvalidProbability {
        /// Row (sample) index.
        row: usize,
        /// Label index within the row.
        label: usize,
        /// The offending value.
        value: f32,
    },
    /// A number not allowed where it stands: a NaN or infinite ROC score, a
    /// NaN threshold, a label prior outside `[0, 1]`.
    #[error("{what}[{index}] = {value} is not {expected}")]
    InvalidValue {
        /// Which input holds it (`scores`, `thresholds`, `prior`).
        what: &'static str,
        /// Position in that input.
        index: usize,
        /// The offending value.
        value: f64,
        /// What was expected there.
        expected: &'static str,
    },
    /// A per-label list (thresholds, priors) whose length is not the number
    /// of labels.
    #[error("{what} has {got} entries, expected one per label ({expected})")]
    LabelCountMismatch {
        /// Which list.
        what: &'static str,
        /// Number of labels.
        expected: usize,
        /// Entries in the list.
        got: usize,
    },
    /// A deserialised confusion matrix that is not square.
    #[error("confusion matrix row {row} has {got} columns, expected {expected}")]
    RaggedConfusion {
        /// The ragged row.
        row: usize,
        /// Number of rows (= classes).
        expected: usize,
        /// Columns in this row.
        got: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that gold and predicted sequences pair up and are not empty.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyInput`].
pub(crate) fn check_paired(y_true: usize, y_pred: usize) -> Result<()> {
    if y_true != y_pred {
        return Err(Error::LengthMismatch { y_true, y_pred });
    }
    if y_true == 0 {
        return Err(Error::EmptyInput { what: "no samples" });
    }
    Ok(())
}
