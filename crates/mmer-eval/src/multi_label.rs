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
//!
//! # Scores from probabilities
//! A model that outputs one probability per label (sigmoid heads) is scored
//! by [`MultiLabelScores`]: the thresholded metrics above on the bits
//! [`decide`]d from the probabilities, plus two threshold-free numbers.
//! - **ROC-AUC** ([`roc_auc`]) per label, as scikit-learn's
//!   `roc_auc_score(y_true[:, l], probs[:, l])`: the probability that a
//!   random positive scores above a random negative, ties counting ½ (the
//!   Mann–Whitney U over positives × negatives, which is also the
//!   trapezoidal area under the ROC curve). Undefined (`None`) when the
//!   label has a single class in `y_true`, where scikit-learn raises.
//! - **Expected calibration error** ([`expected_calibration_error`]): every
//!   `(sample, label)` probability is one binary prediction of "label
//!   present"; see the function for the binning.
//!
//! Decision thresholds are per label ([`decide`]: present when `p ≥ t`),
//! either [`DEFAULT_THRESHOLD`] or tuned on validation rows by
//! [`tune_thresholds`]. [`MultiLabelScores::all_positive`] and
//! [`MultiLabelScores::prior`] are the two trivial baselines a tuned model
//! has to beat.

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
    fn new<R: AsRef<[bool]>, S: AsRef<[bool]>>(
        y_true: &[R],
        y_pred: &[S],
        num_labels: usize,
    ) -> Result<Self> {
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
        Ok(Self::from_counts(&Counts::new(y_true, y_pred, num_labels)?))
    }

    fn from_counts(counts: &Counts) -> Self {
        let per_label = counts.per_label();
        Self {
            num_samples: counts.samples,
            subset_accuracy: counts.subset_accuracy(),
            hamming_loss: counts.hamming_loss(),
            micro_f1: counts.micro_f1(),
            macro_f1: macro_of(&per_label),
            weighted_f1: weighted_of(&per_label),
            per_label,
        }
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

/// Number of equal-width bins [`MultiLabelScores`] uses for the expected
/// calibration error.
pub const ECE_BINS: usize = 15;

/// Threshold of an untuned label: predict "present" when `p ≥ 0.5`.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

fn check_num_labels(num_labels: usize) -> Result<()> {
    if num_labels == 0 {
        return Err(Error::EmptyInput {
            what: "num_labels is 0",
        });
    }
    Ok(())
}

fn check_width(side: Side, index: usize, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(Error::WidthMismatch {
            side,
            index,
            expected,
            got,
        });
    }
    Ok(())
}

/// Row `row` of the probabilities: `num_labels` wide, every entry in `[0, 1]`.
fn check_probability_row(row: usize, probs: &[f32], num_labels: usize) -> Result<()> {
    check_width(Side::Pred, row, probs.len(), num_labels)?;
    match probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(label) => Err(Error::InvalidProbability {
            row,
            label,
            value: probs[label],
        }),
        None => Ok(()),
    }
}

/// Gold rows and probability rows: as many, not none, all `num_labels`
/// wide, probabilities in `[0, 1]`.
fn check_scored<R: AsRef<[bool]>, P: AsRef<[f32]>>(
    y_true: &[R],
    probs: &[P],
    num_labels: usize,
) -> Result<()> {
    check_paired(y_true.len(), probs.len())?;
    check_num_labels(num_labels)?;
    for (row, (t, p)) in y_true.iter().zip(probs).enumerate() {
        check_width(Side::True, row, t.as_ref().len(), num_labels)?;
        check_probability_row(row, p.as_ref(), num_labels)?;
    }
    Ok(())
}

/// One threshold per label, none NaN.
fn check_thresholds(thresholds: &[f32], num_labels: usize) -> Result<()> {
    if thresholds.len() != num_labels {
        return Err(Error::LabelCountMismatch {
            what: "thresholds",
            expected: num_labels,
            got: thresholds.len(),
        });
    }
    match thresholds.iter().position(|t| t.is_nan()) {
        Some(index) => Err(Error::InvalidValue {
            what: "thresholds",
            index,
            value: f64::NAN,
            expected: "a number",
        }),
        None => Ok(()),
    }
}

/// `(probability, gold bit)` of one label over all rows (rows checked).
fn column<R: AsRef<[bool]>, P: AsRef<[f32]>>(
    y_true: &[R],
    probs: &[P],
    label: usize,
) -> Vec<(f32, bool)> {
    y_true
        .iter()
        .zip(probs)
        .map(|(t, p)| (p.as_ref()[label], t.as_ref()[label]))
        .collect()
}

/// ROC-AUC of `(score, gold)` pairs with finite scores; `None` for one class.
fn auc_of(mut pairs: Vec<(f32, bool)>) -> Option<f64> {
    let positives = pairs.iter().filter(|(_, y)| *y).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // 2·U: each positive counts 2 per negative scored lower, 1 per tie.
    let (mut twice_u, mut below) = (0u128, 0u128);
    for group in pairs.chunk_by(|a, b| a.0 == b.0) {
        let pos = group.iter().filter(|(_, y)| *y).count() as u128;
        let neg = group.len() as u128 - pos;
        twice_u += pos * (2 * below + neg);
        below += neg;
    }
    Some(twice_u as f64 / (2 * positives as u128 * negatives as u128) as f64)
}

/// ROC-AUC of one binary label, as scikit-learn's `roc_auc_score(y_true,
/// scores)`.
///
/// With `P` positives and `N` negatives in `y_true`, the area is
/// `U / (P·N)` where `U` counts, over every (positive, negative) pair, 1 when
/// the positive's score is higher and ½ when the two are equal (the
/// Mann–Whitney U statistic; equal to the trapezoidal area under the ROC
/// curve, so tied scores give a diagonal segment). Only the order of the
/// scores matters: they may be probabilities, logits or any other finite
/// numbers.
///
/// Returns `Ok(None)` when `y_true` holds only one class (all positive or
/// all negative), where the area is undefined and scikit-learn raises.
///
/// # Errors
/// [`Error::LengthMismatch`] when the lengths differ, [`Error::EmptyInput`]
/// for no samples, [`Error::InvalidValue`] for a NaN or infinite score.
///
/// ```
/// use mmer_eval::multi_label::roc_auc;
///
/// // 2 positives × 2 negatives: 3 pairs ordered right, 1 tie → 3.5 / 4.
/// let auc = roc_auc(&[true, false, true, false], &[0.9, 0.4, 0.4, 0.1])?;
/// assert_eq!(auc, Some(0.875));
/// assert_eq!(roc_auc(&[true, true], &[0.2, 0.7])?, None);
/// # Ok::<(), mmer_eval::Error>(())
/// ```
pub fn roc_auc(y_true: &[bool], scores: &[f32]) -> Result<Option<f64>> {
    check_paired(y_true.len(), scores.len())?;
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::InvalidValue {
            what: "scores",
            index,
            value: f64::from(scores[index]),
            expected: "a finite score",
        });
    }
    Ok(auc_of(
        scores.iter().copied().zip(y_true.iter().copied()).collect(),
    ))
}

/// [`roc_auc`] of every label: `probs[i][l]` scores `y_true[i][l]`.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyInput`] (no samples or no
/// labels), [`Error::WidthMismatch`] (probability rows are reported as
/// [`Side::Pred`]), [`Error::InvalidProbability`].
pub fn roc_auc_per_label<R: AsRef<[bool]>, P: AsRef<[f32]>>(
    y_true: &[R],
    probs: &[P],
    num_labels: usize,
) -> Result<Vec<Option<f64>>> {
    check_scored(y_true, probs, num_labels)?;
    Ok((0..num_labels)
        .map(|l| auc_of(column(y_true, probs, l)))
        .collect())
}

/// Index of the calibration bin holding `p` among `bins` equal-width bins.
fn bin_of(p: f32, bins: usize) -> usize {
    // Exact: an f32 has 24 significant bits, so p·bins is exact in f64.
    let upper = (f64::from(p) * bins as f64).ceil() as usize;
    upper.saturating_sub(1).min(bins - 1)
}

fn ece_of<R: AsRef<[bool]>, P: AsRef<[f32]>>(y_true: &[R], probs: &[P], bins: usize) -> f64 {
    // Per bin: predictions, gold positives, sum of probabilities.
    let mut count = vec![0usize; bins];
    let mut positives = vec![0usize; bins];
    let mut prob_sum = vec![0f64; bins];
    for (t, p) in y_true.iter().zip(probs) {
        for (&y, &p) in t.as_ref().iter().zip(p.as_ref()) {
            let k = bin_of(p, bins);
            count[k] += 1;
            positives[k] += usize::from(y);
            prob_sum[k] += f64::from(p);
        }
    }
    let total: usize = count.iter().sum();
    (0..bins)
        .filter(|&k| count[k] > 0)
        .map(|k| {
            let n = count[k] as f64;
            n / total as f64 * (positives[k] as f64 / n - prob_sum[k] / n).abs()
        })
        .sum()
}

/// Expected calibration error of multi-label probabilities.
///
/// Every `(sample, label)` pair is one binary prediction of "label present"
/// with confidence `p = probs[i][l]` and outcome `y = y_true[i][l]`, so there
/// are `N = samples × num_labels` predictions. They fall into `bins`
/// equal-width bins on `[0, 1]`: bin `k` (0-based) holds
/// `k/bins < p ≤ (k+1)/bins`, and the first bin also holds `p = 0`
/// (so `p = 1` is in the last bin). Equivalently, the bin index is
/// `max(⌈p·bins⌉ − 1, 0)`, which is exact in `f64` for `f32` probabilities.
/// Then
///
/// `ECE = Σ_bins |B|/N · |mean(y in B) − mean(p in B)|`,
///
/// empty bins contributing nothing. 0 is perfect calibration; the worst is 1.
/// [`MultiLabelScores`] uses [`ECE_BINS`] = 15 bins.
///
/// # Errors
/// As [`roc_auc_per_label`], and [`Error::EmptyInput`] when `bins` is 0.
///
/// ```
/// use mmer_eval::multi_label::expected_calibration_error;
///
/// // Two bins: {0.2, 0.4} has 1 positive of 2 (|0.5 − 0.3| = 0.2), {1.0}
/// // has 1 of 1 (0): ECE = 2/3 · 0.2.
/// let y = [[true, false, true]];
/// let p = [[0.2f32, 0.4, 1.0]];
/// let ece = expected_calibration_error(&y, &p, 3, 2)?;
/// assert!((ece - 0.4 / 3.0).abs() < 1e-7);
/// # Ok::<(), mmer_eval::Error>(())
/// ```
pub fn expected_calibration_error<R: AsRef<[bool]>, P: AsRef<[f32]>>(
    y_true: &[R],
    probs: &[P],
    num_labels: usize,
    bins: usize,
) -> Result<f64> {
    check_scored(y_true, probs, num_labels)?;
    if bins == 0 {
        return Err(Error::EmptyInput { what: "bins is 0" });
    }
    Ok(ece_of(y_true, probs, bins))
}

/// A candidate threshold with the counts it gives: true positives and
/// predicted positives.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    threshold: f32,
    tp: usize,
    predicted: usize,
}

impl Candidate {
    /// Whether `self` is preferred to `other` for a label with `positives`
    /// gold positives (> 0): higher F1 = 2·TP / (positives + predicted), then
    /// threshold closer to 0.5, then the lower threshold.
    fn beats(&self, other: &Self, positives: usize) -> bool {
        // Compare the F1 fractions exactly by cross-multiplying.
        let lhs = self.tp as u128 * (positives + other.predicted) as u128;
        let rhs = other.tp as u128 * (positives + self.predicted) as u128;
        if lhs != rhs {
            return lhs > rhs;
        }
        let distance = |t: f32| (f64::from(t) - 0.5).abs();
        match distance(self.threshold).total_cmp(&distance(other.threshold)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.threshold < other.threshold,
        }
    }
}

/// The F1-maximising threshold of one label's `(probability, gold)` pairs.
fn tune_label(mut pairs: Vec<(f32, bool)>) -> f32 {
    let positives = pairs.iter().filter(|(_, y)| *y).count();
    if positives == 0 {
        return DEFAULT_THRESHOLD;
    }
    let mut best = Candidate {
        threshold: DEFAULT_THRESHOLD,
        tp: pairs
            .iter()
            .filter(|&&(p, y)| y && p >= DEFAULT_THRESHOLD)
            .count(),
        predicted: pairs
            .iter()
            .filter(|(p, _)| *p >= DEFAULT_THRESHOLD)
            .count(),
    };
    // Descending: after each group of equal probabilities v, the running
    // counts are those of the threshold v.
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut predicted) = (0, 0);
    for group in pairs.chunk_by(|a, b| a.0 == b.0) {
        tp += group.iter().filter(|(_, y)| *y).count();
        predicted += group.len();
        // `+ 0.0` turns a -0.0 into 0.0.
        let candidate = Candidate {
            threshold: group[0].0 + 0.0,
            tp,
            predicted,
        };
        if candidate.beats(&best, positives) {
            best = candidate;
        }
    }
    best.threshold
}

/// Per-label decision thresholds that maximise each label's F1 on the given
/// (validation) rows.
///
/// For label `l`, a threshold `t` predicts "present" when
/// `probs[i][l] ≥ t` (see [`decide`]) and scores
/// `F1 = 2·TP / (2·TP + FP + FN)` on `y_true[·][l]`. The candidates are the
/// distinct values of `probs[·][l]` plus [`DEFAULT_THRESHOLD`] (0.5); the
/// threshold returned is the candidate with the highest F1, ties going to
/// the candidate closest to 0.5 and, between `0.5 − d` and `0.5 + d`, to the
/// lower one. A label with no positive in `y_true` (F1 is 0 whatever the
/// threshold) keeps 0.5.
///
/// Tune on validation rows and apply the thresholds to test rows; tuning on
/// the test rows overstates every thresholded metric.
///
/// # Errors
/// As [`roc_auc_per_label`].
///
/// ```
/// use mmer_eval::multi_label::tune_thresholds;
///
/// let y = [[true, false], [true, false], [false, false]];
/// let p = [[0.3f32, 0.9], [0.35, 0.2], [0.1, 0.6]];
/// // Label 0: t = 0.3 catches both positives and nothing else (F1 = 1).
/// // Label 1 has no positive: 0.5.
/// assert_eq!(tune_thresholds(&y, &p, 2)?, vec![0.3, 0.5]);
/// # Ok::<(), mmer_eval::Error>(())
/// ```
pub fn tune_thresholds<R: AsRef<[bool]>, P: AsRef<[f32]>>(
    y_true: &[R],
    probs: &[P],
    num_labels: usize,
) -> Result<Vec<f32>> {
    check_scored(y_true, probs, num_labels)?;
    Ok((0..num_labels)
        .map(|l| tune_label(column(y_true, probs, l)))
        .collect())
}

/// Bits of checked rows: `p ≥ t` per label.
fn decide_checked<P: AsRef<[f32]>>(probs: &[P], thresholds: &[f32]) -> Vec<Vec<bool>> {
    probs
        .iter()
        .map(|row| {
            row.as_ref()
                .iter()
                .zip(thresholds)
                .map(|(p, t)| p >= t)
                .collect()
        })
        .collect()
}

/// The predicted bits: label `l` of row `i` is present when
/// `probs[i][l] ≥ thresholds[l]`. One threshold per label; `probs` may be
/// empty.
///
/// # Errors
/// [`Error::EmptyInput`] for no thresholds (no labels),
/// [`Error::InvalidValue`] for a NaN threshold, [`Error::WidthMismatch`]
/// for a row that is not `thresholds.len()` wide (reported as
/// [`Side::Pred`]), [`Error::InvalidProbability`].
pub fn decide<P: AsRef<[f32]>>(probs: &[P], thresholds: &[f32]) -> Result<Vec<Vec<bool>>> {
    let num_labels = thresholds.len();
    check_num_labels(num_labels)?;
    check_thresholds(thresholds, num_labels)?;
    for (row, p) in probs.iter().enumerate() {
        check_probability_row(row, p.as_ref(), num_labels)?;
    }
    Ok(decide_checked(probs, thresholds))
}

/// Fraction of `rows` in which each label is present: the per-label prior
/// of [`MultiLabelScores::prior`], computed on the training split.
///
/// # Errors
/// [`Error::EmptyInput`] (no rows or no labels), [`Error::WidthMismatch`]
/// (as [`Side::True`]).
pub fn label_prior<R: AsRef<[bool]>>(rows: &[R], num_labels: usize) -> Result<Vec<f64>> {
    check_num_labels(num_labels)?;
    if rows.is_empty() {
        return Err(Error::EmptyInput { what: "no samples" });
    }
    let mut present = vec![0usize; num_labels];
    for (index, row) in rows.iter().enumerate() {
        let row = row.as_ref();
        check_width(Side::True, index, row.len(), num_labels)?;
        for (n, &bit) in present.iter_mut().zip(row) {
            *n += usize::from(bit);
        }
    }
    Ok(present
        .iter()
        .map(|&n| n as f64 / rows.len() as f64)
        .collect())
}

/// Multi-label scores of per-label probabilities: thresholded metrics,
/// ROC-AUC and calibration (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiLabelScores {
    /// Decision threshold of each label (present when `p ≥ t`).
    pub thresholds: Vec<f32>,
    /// Thresholded metrics of the [`decide`]d bits.
    pub report: MultiLabelReport,
    /// [`roc_auc`] of each label; `None` where the label has one class.
    pub roc_auc: Vec<Option<f64>>,
    /// Unweighted mean of the defined per-label ROC-AUCs; `None` when no
    /// label has both classes.
    pub mean_roc_auc: Option<f64>,
    /// [`expected_calibration_error`] over every `(sample, label)`
    /// probability, with [`ECE_BINS`] bins.
    pub expected_calibration_error: f64,
}

impl MultiLabelScores {
    /// Scores `probs` (one row of `num_labels` probabilities per sample)
    /// against `y_true`, deciding bits with `thresholds` (one per label, for
    /// instance [`tune_thresholds`] on validation rows or
    /// `[DEFAULT_THRESHOLD; num_labels]`). Thresholds may be any non-NaN
    /// number.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::EmptyInput`] (no samples or no
    /// labels), [`Error::WidthMismatch`] (probability rows as
    /// [`Side::Pred`]), [`Error::InvalidProbability`],
    /// [`Error::LabelCountMismatch`] and [`Error::InvalidValue`] for the
    /// thresholds.
    pub fn new<R: AsRef<[bool]>, P: AsRef<[f32]>>(
        y_true: &[R],
        probs: &[P],
        num_labels: usize,
        thresholds: &[f32],
    ) -> Result<Self> {
        check_scored(y_true, probs, num_labels)?;
        check_thresholds(thresholds, num_labels)?;
        let decided = decide_checked(probs, thresholds);
        let report = MultiLabelReport::from_counts(&Counts::new(y_true, &decided, num_labels)?);
        let roc_auc: Vec<Option<f64>> = (0..num_labels)
            .map(|l| auc_of(column(y_true, probs, l)))
            .collect();
        let defined: Vec<f64> = roc_auc.iter().flatten().copied().collect();
        let mean_roc_auc =
            (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
        Ok(Self {
            thresholds: thresholds.to_vec(),
            report,
            roc_auc,
            mean_roc_auc,
            expected_calibration_error: ece_of(y_true, probs, ECE_BINS),
        })
    }

    /// Trivial baseline "every label is present": every probability is 1.0
    /// and every threshold 0.5, so every bit is predicted. Its recall is 1,
    /// its ROC-AUC 0.5 for every label with both classes (all scores tie)
    /// and its ECE `1 − (fraction of present bits)`.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] (no samples or no labels),
    /// [`Error::WidthMismatch`].
    pub fn all_positive<R: AsRef<[bool]>>(y_true: &[R], num_labels: usize) -> Result<Self> {
        let probs = vec![vec![1.0f32; num_labels]; y_true.len()];
        Self::new(
            y_true,
            &probs,
            num_labels,
            &vec![DEFAULT_THRESHOLD; num_labels],
        )
    }

    /// Trivial baseline "label frequency": every sample gets probability
    /// `prior[l]` (as `f32`) for label `l`, where `prior` is the label's
    /// frequency in the **training** split ([`label_prior`]), and every
    /// threshold is 0.5, so label `l` is predicted on every sample when
    /// `prior[l] ≥ 0.5` and never otherwise. Its ROC-AUC is 0.5 for every
    /// label with both classes; its ECE measures how far the test split's
    /// label frequencies are from the training split's.
    ///
    /// # Errors
    /// As [`Self::all_positive`], plus [`Error::LabelCountMismatch`] when
    /// `prior` has not `num_labels` entries and [`Error::InvalidValue`] for
    /// an entry outside `[0, 1]`.
    pub fn prior<R: AsRef<[bool]>>(y_true: &[R], num_labels: usize, prior: &[f64]) -> Result<Self> {
        if prior.len() != num_labels {
            return Err(Error::LabelCountMismatch {
                what: "prior",
                expected: num_labels,
                got: prior.len(),
            });
        }
        if let Some(index) = prior.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Err(Error::InvalidValue {
                what: "prior",
                index,
                value: prior[index],
                expected: "a probability in [0, 1]",
            });
        }
        let row: Vec<f32> = prior.iter().map(|&p| p as f32).collect();
        let probs = vec![row; y_true.len()];
        Self::new(
            y_true,
            &probs,
            num_labels,
            &vec![DEFAULT_THRESHOLD; num_labels],
        )
    }
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

    /// Brute-force ROC-AUC over all (positive, negative) pairs.
    fn auc_by_pairs(y: &[bool], s: &[f32]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &yi) in y.iter().enumerate() {
            for (j, &yj) in y.iter().enumerate() {
                if yi && !yj {
                    pairs += 1.0;
                    wins += match s[i].partial_cmp(&s[j]).unwrap() {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
        }
        wins / pairs
    }

    /// A deterministic stream of numbers in [0, 1) (64-bit LCG).
    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn roc_auc_orders_and_ties() {
        let y = [true, true, false, false];
        assert_eq!(roc_auc(&y, &[0.9, 0.8, 0.2, 0.1]).unwrap(), Some(1.0));
        assert_eq!(roc_auc(&y, &[0.1, 0.2, 0.8, 0.9]).unwrap(), Some(0.0));
        // Every score tied: the diagonal.
        assert_eq!(roc_auc(&y, &[0.3; 4]).unwrap(), Some(0.5));
        // One tie between a positive and a negative: 3.5 of 4 pairs.
        assert_eq!(roc_auc(&y, &[0.9, 0.5, 0.5, 0.1]).unwrap(), Some(0.875));
        // Scores need not be probabilities.
        assert_eq!(roc_auc(&y, &[3.0, -1.0, -2.0, -1.0]).unwrap(), Some(0.875));

        let mut next = lcg(7);
        let y: Vec<bool> = (0..300).map(|_| next() < 0.3).collect();
        // Coarse scores, so many ties across classes.
        let s: Vec<f32> = y
            .iter()
            .map(|&t| ((next() * 8.0).floor() as f32 + if t { 2.0 } else { 0.0 }) / 10.0)
            .collect();
        let got = roc_auc(&y, &s).unwrap().unwrap();
        assert!((got - auc_by_pairs(&y, &s)).abs() < 1e-12, "{got}");
    }

    #[test]
    fn roc_auc_single_class_and_bad_input() {
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.9]).unwrap(), None);
        assert_eq!(roc_auc(&[false], &[0.1]).unwrap(), None);
        assert_eq!(
            roc_auc(&[true, false], &[0.1]),
            Err(Error::LengthMismatch {
                y_true: 2,
                y_pred: 1
            })
        );
        assert!(matches!(roc_auc(&[], &[]), Err(Error::EmptyInput { .. })));
        assert!(matches!(
            roc_auc(&[true, false], &[0.1, f32::NAN]),
            Err(Error::InvalidValue {
                what: "scores",
                index: 1,
                ..
            })
        ));
        assert!(roc_auc(&[true, false], &[f32::INFINITY, 0.0]).is_err());
        let per = roc_auc_per_label(&[[true, true], [false, true]], &[[0.7, 0.1], [0.2, 0.3]], 2);
        assert_eq!(per.unwrap(), vec![Some(1.0), None]);
    }

    #[test]
    fn ece_bins_edges() {
        // p = 0 goes to the first bin, p = 1 to the last: one bin each here,
        // both perfectly calibrated.
        let y = [[false, true]];
        assert_eq!(
            expected_calibration_error(&y, &[[0.0f32, 1.0]], 2, 15).unwrap(),
            0.0
        );
        // 0.5 sits on the boundary of 2 bins and belongs to the lower one
        // (k/B < p ≤ (k+1)/B): {0.0, 0.5} holds 1 positive of 2, mean p 0.25
        // → 2/3 · 0.25; {1.0} is calibrated.
        let y = [[true, false, true]];
        let p = [[0.5f32, 0.0, 1.0]];
        let ece = expected_calibration_error(&y, &p, 3, 2).unwrap();
        assert!((ece - 0.5 / 3.0).abs() < 1e-15, "{ece}");
        assert_eq!(bin_of(0.5, 2), 0);
        assert_eq!(bin_of(0.0, 15), 0);
        assert_eq!(bin_of(1.0, 15), 14);
        // No f32 equals 1/15: the nearest is above it (second bin), the one
        // below it is in the first bin.
        let fifteenth = 1.0f32 / 15.0;
        assert!(f64::from(fifteenth) > 1.0 / 15.0);
        assert_eq!(bin_of(fifteenth, 15), 1);
        assert_eq!(bin_of(f32::from_bits(fifteenth.to_bits() - 1), 15), 0);
        assert_eq!(bin_of(0.25, 4), 0);
        assert_eq!(bin_of(0.250_000_03, 4), 1);
        // One bin: |mean y − mean p|.
        let ece = expected_calibration_error(&[[true, false]], &[[0.9f32, 0.3]], 2, 1).unwrap();
        assert!((ece - 0.1).abs() < 1e-7, "{ece}");
        // Worst case: confident and wrong everywhere.
        let ece = expected_calibration_error(&[[true, false]], &[[0.0f32, 1.0]], 2, 15).unwrap();
        assert_eq!(ece, 1.0);
        assert!(matches!(
            expected_calibration_error(&y, &p, 3, 0),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn invalid_probabilities_name_row_and_label() {
        let y = [[true, false], [false, false]];
        for bad in [f32::NAN, 1.5, -0.1, f32::INFINITY] {
            let p = [[0.2f32, 0.3], [0.4, bad]];
            let err = expected_calibration_error(&y, &p, 2, 15).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidProbability {
                        row: 1,
                        label: 1,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().starts_with("probs[1][1] = "), "{err}");
            assert!(tune_thresholds(&y, &p, 2).is_err());
            assert!(MultiLabelScores::new(&y, &p, 2, &[0.5, 0.5]).is_err());
            assert!(decide(&p, &[0.5, 0.5]).is_err());
        }
        let ragged = vec![vec![0.2f32, 0.3], vec![0.4]];
        assert_eq!(
            tune_thresholds(&y, &ragged, 2),
            Err(Error::WidthMismatch {
                side: Side::Pred,
                index: 1,
                expected: 2,
                got: 1
            })
        );
        let ragged_true = vec![vec![true], vec![false, false]];
        assert!(matches!(
            MultiLabelScores::new(&ragged_true, &[[0.1f32, 0.2], [0.3, 0.4]], 2, &[0.5; 2]),
            Err(Error::WidthMismatch {
                side: Side::True,
                index: 0,
                ..
            })
        ));
        assert!(matches!(
            MultiLabelScores::new(&y, &[[0.1f32, 0.2], [0.3, 0.4]], 2, &[0.5]),
            Err(Error::LabelCountMismatch {
                what: "thresholds",
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            decide(&[[0.1f32]], &[f32::NAN]),
            Err(Error::InvalidValue {
                what: "thresholds",
                ..
            })
        ));
    }

    #[test]
    fn thresholds_maximise_f1_with_ties_to_one_half() {
        let y = [[true, false], [true, true], [false, false], [false, true]];
        let p = [[0.8f32, 0.25], [0.2, 0.75], [0.3, 0.55], [0.25, 0.25]];
        // Label 0 (2 positives): 0.8 → TP 1, predicted 1, F1 2/3; 0.5 → the
        // same; 0.3 → 1/2; 0.25 → 2/5; 0.2 → TP 2, predicted 4, F1 2/3.
        // Three-way tie → 0.5 itself, the closest to 0.5.
        // Label 1 (2 positives): 0.75 → F1 2/3; 0.55 and 0.5 → 1/2;
        // 0.25 → TP 2, predicted 4, F1 2/3. 0.25 and 0.75 tie at distance
        // 0.25 → the lower.
        let t = tune_thresholds(&y, &p, 2).unwrap();
        assert_eq!(t, vec![0.5, 0.25]);
        // p ≥ t: equality predicts the label.
        let bits = decide(&p, &t).unwrap();
        assert_eq!(
            bits,
            vec![
                vec![true, true],
                vec![false, true],
                vec![false, true],
                vec![false, true]
            ]
        );
        assert_eq!(
            decide::<[f32; 2]>(&[], &t).unwrap(),
            Vec::<Vec<bool>>::new()
        );
    }

    #[test]
    fn thresholds_of_degenerate_labels() {
        // Label 0 never occurs: 0.5. Label 1 always occurs: the lowest
        // probability predicts every row (F1 = 1). Label 2: a perfect split.
        let y = [
            [false, true, true],
            [false, true, false],
            [false, true, false],
        ];
        let p = [[0.9f32, 0.05, 0.4], [0.1, 0.2, 0.3], [0.6, 0.9, 0.0]];
        assert_eq!(tune_thresholds(&y, &p, 3).unwrap(), vec![0.5, 0.05, 0.4]);
        // Ties at p = 0: a threshold of 0 predicts everything.
        let y = [[true], [false]];
        let p = [[0.0f32], [0.0]];
        // Candidates 0 (TP1 FP1 → 2/3) and 0.5 (TP0 → 0).
        assert_eq!(tune_thresholds(&y, &p, 1).unwrap(), vec![0.0]);
    }

    #[test]
    fn thresholds_match_brute_force() {
        let mut next = lcg(11);
        let y: Vec<[bool; 2]> = (0..80).map(|_| [next() < 0.3, next() < 0.6]).collect();
        let p: Vec<[f32; 2]> = y
            .iter()
            .map(|r| {
                [
                    ((0.4 * f64::from(u8::from(r[0])) + 0.6 * next()) * 20.0).round() as f32 / 20.0,
                    (0.3 * f64::from(u8::from(r[1])) + 0.7 * next()) as f32,
                ]
            })
            .collect();
        let tuned = tune_thresholds(&y, &p, 2).unwrap();
        for l in 0..2 {
            let f1 = |t: f32| {
                let bits: Vec<[bool; 1]> = p.iter().map(|r| [r[l] >= t]).collect();
                let gold: Vec<[bool; 1]> = y.iter().map(|r| [r[l]]).collect();
                macro_f1(&gold, &bits, 1).unwrap()
            };
            let mut candidates: Vec<f32> = p.iter().map(|r| r[l]).collect();
            candidates.push(0.5);
            let best = candidates.iter().map(|&t| f1(t)).fold(0.0, f64::max);
            assert_eq!(f1(tuned[l]), best, "label {l}");
            for &t in &candidates {
                if f1(t) == best {
                    assert!((t - 0.5).abs() >= (tuned[l] - 0.5).abs(), "label {l}: {t}");
                }
            }
        }
    }

    #[test]
    fn trivial_baselines() {
        let train = [
            [true, false, true],
            [true, false, false],
            [false, false, false],
            [true, false, false],
        ];
        let prior = label_prior(&train, 3).unwrap();
        assert_eq!(prior, vec![0.75, 0.0, 0.25]);

        let test = [[true, false, false], [false, true, true]];
        let base = MultiLabelScores::prior(&test, 3, &prior).unwrap();
        assert_eq!(base.thresholds, vec![0.5; 3]);
        // Only label 0 (prior 0.75 ≥ 0.5) is predicted, on every row.
        assert_eq!(base.report.per_label[0].precision, 0.5);
        assert_eq!(base.report.per_label[1].f1, 0.0);
        assert_eq!(base.report.hamming_loss, 3.0 / 6.0);
        // Constant scores: AUC 0.5 wherever it is defined.
        assert_eq!(base.roc_auc, vec![Some(0.5), Some(0.5), Some(0.5)]);
        assert_eq!(base.mean_roc_auc, Some(0.5));
        // Bins: {0.0} with 1 positive of 2 → 2/6·0.5; {0.25} with 1 of 2 →
        // 2/6·0.25; {0.75} with 1 of 2 → 2/6·0.25.
        let want = (0.5 + 0.25 + 0.25) / 3.0;
        assert!((base.expected_calibration_error - want).abs() < 1e-12);

        let all = MultiLabelScores::all_positive(&test, 3).unwrap();
        assert!(all.report.per_label.iter().all(|m| m.recall == 1.0));
        assert_eq!(all.mean_roc_auc, Some(0.5));
        assert_eq!(all.expected_calibration_error, 0.5);
        assert_eq!(all.report.micro_f1, 2.0 * 3.0 / (3.0 + 6.0));

        assert!(matches!(
            MultiLabelScores::prior(&test, 3, &[0.5, 0.5]),
            Err(Error::LabelCountMismatch { what: "prior", .. })
        ));
        assert!(matches!(
            MultiLabelScores::prior(&test, 3, &[0.5, 1.5, f64::NAN]),
            Err(Error::InvalidValue {
                what: "prior",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            label_prior::<[bool; 3]>(&[], 3),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            MultiLabelScores::all_positive::<[bool; 3]>(&[], 3),
            Err(Error::EmptyInput { .. })
        ));
    }

    #[test]
    fn scores_round_trip_and_undefined_auc() {
        // Label 1 never occurs: its AUC is undefined and left out of the mean.
        let y = [[true, false], [false, false], [true, false]];
        let p = [[0.9f32, 0.2], [0.4, 0.1], [0.3, 0.7]];
        let s = MultiLabelScores::new(&y, &p, 2, &[0.5, 0.5]).unwrap();
        assert_eq!(s.roc_auc, vec![Some(0.5), None]);
        assert_eq!(s.mean_roc_auc, Some(0.5));
        let gold: Vec<Vec<bool>> = y.iter().map(|r| r.to_vec()).collect();
        let decided = decide(&p, &[0.5; 2]).unwrap();
        assert_eq!(s.report, MultiLabelReport::new(&gold, &decided, 2).unwrap());
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"roc_auc\":[0.5,null]"), "{json}");
        // serde_json's default float parser may be 1 ulp off: compare the
        // ECE with a tolerance, the rest (exact binary fractions) exactly.
        let back: MultiLabelScores = serde_json::from_str(&json).unwrap();
        let ece_error = back.expected_calibration_error - s.expected_calibration_error;
        assert!(ece_error.abs() < 1e-15);
        assert_eq!(
            MultiLabelScores {
                expected_calibration_error: s.expected_calibration_error,
                ..back
            },
            s
        );
        let extra = json.replacen('{', "{\"bogus\":1,", 1);
        assert!(serde_json::from_str::<MultiLabelScores>(&extra).is_err());

        let none = MultiLabelScores::new(&[[false]], &[[0.3f32]], 1, &[0.5]).unwrap();
        assert_eq!(none.mean_roc_auc, None);
    }
}
