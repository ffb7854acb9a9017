//! CMU-MOSEI (Zadeh et al., ACL 2018) as users have it, for multi-label
//! emotion recognition: the six emotions happiness, sadness, anger,
//! surprise, disgust and fear, any number of them per segment.
//!
//! Two forms are read:
//!
//! * [`mmsa`] — the feature pickles of MMSA (`aligned_50.pkl`,
//!   `unaligned_50.pkl`) and of MMSA-FET. They carry features and the
//!   *sentiment* score only: MMSA's MOSEI pickles have **no emotion labels**
//!   (its maintainers say so in thuiar/MMSA issues #14 and #84). An array of
//!   emotion intensities is read when the user has merged one in (see
//!   [`mmsa::MmsaOptions::labels_key`]); otherwise the corpus is
//!   unlabelled, and [`MoseiReport::labelled`] says so.
//! * [`csd`] — the computational sequences of CMU-MultimodalSDK (HDF5
//!   `.csd` files): `CMU_MOSEI_Labels.csd` for the labels, feature
//!   sequences such as `CMU_MOSEI_COVAREP.csd` and
//!   `CMU_MOSEI_VisualFacet42.csd`, and `CMU_MOSEI_TimestampedWords.csd`
//!   for the transcript, with the standard folds from a file the user
//!   supplies.
//!
//! # Corpus
//! The label space is [`label_space`]: `mosei`, multi-label, classes
//! [`CLASSES`] in the order of the SDK's "All Labels" after its sentiment
//! column. Every segment becomes a [`Dialogue`] of one [`Utterance`] (MOSEI
//! segments are sentences of monologue videos, labelled one by one, and
//! SeMuL-PCD's model is not conversational); the dialogue id and the
//! utterance id are the segment id, and the speaker is the video id (one
//! YouTube video shows one speaker; nothing in either form says which
//! videos share a speaker). Features become [`Features::sequence`]s:
//! [`Modality::Text`], [`Modality::Audio`] and [`Modality::Face`].
//!
//! # Labels: intensity > 0
//! Annotators rate each emotion on a 0–3 Likert scale and MOSEI gives the
//! mean of three ratings. An emotion is present when its intensity is
//! greater than 0 ([`binarise`]): the SDK's README ("emotion=0 (emotion not
//! present) and emotion >0 (emotion present)"), the thesis and SeMuL-PCD's
//! code all binarise this way. A negative or non-finite intensity is an
//! error naming the file, key and segment. Intensities above 3 occur in a
//! few released segments (CMU-MultimodalSDK issue #8); they count as
//! present and [`MoseiReport::above_scale`] counts them.
//!
//! # Non-finite features
//! MMSA's audio features hold `-inf` (MMSA's own loader sets them to 0)
//! and the SDK's COVAREP sequences hold NaN and `-inf`. [`NonFinite`]
//! decides: by default such a value is an error naming the file, key,
//! segment, frame and column; [`NonFinite::Zero`] replaces it by 0, as
//! MMSA does, and [`MoseiReport::replaced`] lists every segment and
//! modality it touched (a `tracing` warning gives the totals). A value
//! beyond the `f32` range reads as infinite and is treated the same.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mmer_core::{Corpus, Dialogue, Features, Label, LabelSpace, Modality, Split, Utterance};

use crate::{Error, Result};

pub mod csd;
pub mod mmsa;

pub use csd::{CsdSources, Folds, load_csd, read_folds};
pub use mmsa::{MmsaOptions, load_mmsa};

/// The six emotions in label order (the SDK's "All Labels" columns 1–6).
pub const CLASSES: [&str; 6] = [
    "happiness",
    "sadness",
    "anger",
    "surprise",
    "disgust",
    "fear",
];

/// The top of MOSEI's intensity scale; larger values are counted in
/// [`MoseiReport::above_scale`].
pub const SCALE_MAX: f64 = 3.0;

/// The `mosei` label space: multi-label over [`CLASSES`].
pub fn label_space() -> LabelSpace {
    LabelSpace {
        name: "mosei".into(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        multi_label: true,
    }
}

/// Whether an emotion of this intensity is present: `y > 0`.
///
/// # Errors
/// A message for a negative or non-finite intensity, which no binarisation
/// rule maps to 0 or 1.
pub fn binarise(intensity: f64) -> std::result::Result<bool, String> {
    if !intensity.is_finite() {
        Err(format!("intensity {intensity} is not finite"))
    } else if intensity < 0.0 {
        Err(format!(
            "intensity {intensity} is negative (the scale is 0 to {SCALE_MAX})"
        ))
    } else {
        Ok(intensity > 0.0)
    }
}

/// What to do with a NaN or infinite feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinite {
    /// Fail, naming the file, key, segment, frame and column.
    #[default]
    Error,
    /// Replace the value by 0 (MMSA's choice for its `-inf` audio values)
    /// and record it in [`MoseiReport::replaced`].
    Zero,
}

/// Where padding frames sit in a padded `[N, T, d]` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Valid frames first, padding after them (MMSA-FET's default
    /// `padding_location="end"`; MMSA's masks assume it).
    #[default]
    End,
    /// Padding first, the valid frames last (MMSA-FET's
    /// `padding_location="start"`).
    Start,
}

/// What a MOSEI loader did besides loading: nothing here is silent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoseiReport {
    /// Whether the segments carry emotion labels (always for `.csd`; for
    /// an MMSA pickle only when it holds a label array).
    pub labelled: bool,
    /// Segments whose non-finite values [`NonFinite::Zero`] replaced, in
    /// load order.
    pub replaced: Vec<Replacement>,
    /// Per modality, the segments that have no features of it: a length
    /// of 0 in an MMSA pickle, or no entry or no overlapping frame in a
    /// `.csd` sequence. The modality is absent from those utterances.
    pub missing: BTreeMap<Modality, usize>,
    /// Emotion intensities above [`SCALE_MAX`] (kept, as present).
    pub above_scale: usize,
    /// Segments not loaded, with the reason.
    pub skipped: Vec<Skipped>,
}

impl MoseiReport {
    /// Number of feature values replaced by 0.
    pub fn values_replaced(&self) -> usize {
        self.replaced.iter().map(|r| r.values).sum()
    }
}

/// Non-finite values replaced in one segment's features of one modality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// Segment (utterance) id.
    pub utterance: String,
    /// The modality.
    pub modality: Modality,
    /// How many values were replaced.
    pub values: usize,
}

/// A segment the loader left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Segment id (for [`SkipReason::NoFold`], the labels entry).
    pub id: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why a segment was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its interval has (nearly) zero length, which the SDK's alignment
    /// skips too: no feature frame can fall inside it.
    ZeroLength,
    /// Its video is in none of the folds (the SDK's `get_tensors` skips
    /// these as well); one entry per labels entry: the video id, or the
    /// segment id in an aligned labels file.
    NoFold,
}

/// Collects the one-utterance dialogues of the splits, applying the
/// non-finite policy and checking that every segment id is unique.
struct Assembler<'p> {
    /// The file errors name.
    path: &'p Path,
    non_finite: NonFinite,
    report: MoseiReport,
    seen: HashMap<String, Split>,
    splits: BTreeMap<Split, Vec<Dialogue>>,
}

impl<'p> Assembler<'p> {
    fn new(path: &'p Path, non_finite: NonFinite) -> Self {
        Self {
            path,
            non_finite,
            report: MoseiReport::default(),
            seen: HashMap::new(),
            splits: Split::ALL.iter().map(|&s| (s, Vec::new())).collect(),
        }
    }

    fn format(&self, msg: String) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    /// A `frames × dim` sequence of `id`'s `modality`, after the non-finite
    /// policy; an error names `path` (the file the values are from) and
    /// `what` (the key and segment).
    #[allow(clippy::too_many_arguments)]
    fn features(
        &mut self,
        path: &Path,
        id: &str,
        modality: Modality,
        frames: usize,
        dim: usize,
        mut data: Vec<f32>,
        what: &dyn Fn() -> String,
    ) -> Result<Features> {
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            match self.non_finite {
                NonFinite::Error => {
                    return Err(Error::Format {
                        path: path.to_path_buf(),
                        msg: format!(
                            "{}: frame {}, column {} is {} (a value beyond f32 reads as inf); \
                         load with non_finite = zero to replace such values by 0",
                            what(),
                            index / dim.max(1),
                            index % dim.max(1),
                            data[index]
                        ),
                    });
                }
                NonFinite::Zero => {
                    let mut values = 0;
                    for v in data.iter_mut().filter(|v| !v.is_finite()) {
                        *v = 0.0;
                        values += 1;
                    }
                    self.report.replaced.push(Replacement {
                        utterance: id.to_string(),
                        modality,
                        values,
                    });
                }
            }
        }
        Features::sequence(frames, dim, data).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            msg: format!("{}: {e}", what()),
        })
    }

    /// Notes that `modality` is missing for one segment.
    fn missing(&mut self, modality: Modality) {
        *self.report.missing.entry(modality).or_default() += 1;
    }

    /// The multi-label of a row of intensities: 6 emotions, or 7 columns in
    /// the "All Labels" order (sentiment first, dropped).
    fn label(&mut self, row: &[f64], what: &dyn Fn() -> String) -> Result<Label> {
        let emotions = match row.len() {
            6 => row,
            7 => &row[1..],
            n => {
                return Err(self.format(format!(
                    "{}: {n} label columns; expected 6 emotions ({}) or 7 \
                     (sentiment first, as in the SDK's \"All Labels\")",
                    what(),
                    CLASSES.join(", ")
                )));
            }
        };
        let mut bits = Vec::with_capacity(CLASSES.len());
        for (class, &y) in CLASSES.iter().zip(emotions) {
            let present =
                binarise(y).map_err(|e| self.format(format!("{}: {class}: {e}", what())))?;
            if y > SCALE_MAX {
                self.report.above_scale += 1;
            }
            bits.push(present);
        }
        Ok(Label::Multi(bits))
    }

    /// Adds a one-utterance dialogue to `split`.
    fn push(&mut self, split: Split, utterance: Utterance) -> Result<()> {
        if let Some(first) = self.seen.insert(utterance.id.clone(), split) {
            return Err(self.format(format!(
                "segment {} appears twice (in {first} and in {split})",
                utterance.id
            )));
        }
        self.splits.entry(split).or_default().push(Dialogue {
            id: utterance.id.clone(),
            utterances: vec![utterance],
        });
        Ok(())
    }

    fn skip(&mut self, id: String, reason: SkipReason) {
        self.report.skipped.push(Skipped { id, reason });
    }

    fn finish(mut self, labelled: bool) -> Result<(Corpus, MoseiReport)> {
        self.report.labelled = labelled;
        let corpus = Corpus {
            name: "mosei".into(),
            labels: label_space(),
            splits: self.splits,
        };
        corpus.validate().map_err(|source| Error::Invalid {
            path: self.path.to_path_buf(),
            source,
        })?;
        let report = self.report;
        if !report.replaced.is_empty() {
            tracing::warn!(
                "{}: replaced {} non-finite feature values by 0 in {} segment features",
                self.path.display(),
                report.values_replaced(),
                report.replaced.len()
            );
        }
        if !report.skipped.is_empty() {
            tracing::warn!(
                "{}: left out {} segments or videos (zero-length intervals, videos in no fold)",
                self.path.display(),
                report.skipped.len()
            );
        }
        Ok((corpus, report))
    }
}

/// A new utterance of a segment: id, speaker = video id, optional text.
fn segment_utterance(
    id: &str,
    video: &str,
    text: Option<String>,
    label: Option<Label>,
) -> Utterance {
    let mut u = Utterance::new(id, 0, video);
    u.text = text.filter(|t| !t.trim().is_empty());
    u.label = label;
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarisation_is_intensity_above_zero() {
        assert_eq!(binarise(0.0), Ok(false));
        assert_eq!(binarise(1.0 / 3.0), Ok(true));
        assert_eq!(binarise(3.5), Ok(true));
        for bad in [-1.0 / 3.0, f64::NAN, f64::INFINITY] {
            assert!(binarise(bad).is_err(), "{bad}");
        }
        let space = label_space();
        assert!(space.multi_label);
        assert_eq!(space.name, "mosei");
        assert_eq!(space.classes, CLASSES);
    }
}
