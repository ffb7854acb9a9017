//! Corpus → Split → Dialogue → Utterance (DESIGN §1).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Error, Label, LabelSpace, Modality, Result};

/// A feature array of one modality for one utterance: `frames × dim`, row
/// major. An utterance-level vector is a single frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Number of frames (time steps); 1 for an utterance-level vector.
    pub frames: usize,
    /// Width of one frame.
    pub dim: usize,
    /// `frames * dim` values.
    pub data: Vec<f32>,
}

impl Features {
    /// An utterance-level vector.
    pub fn vector(data: Vec<f32>) -> Self {
        Self {
            frames: 1,
            dim: data.len(),
            data,
        }
    }

    /// A `frames × dim` sequence.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `data.len() != frames * dim`.
    pub fn sequence(frames: usize, dim: usize, data: Vec<f32>) -> Result<Self> {
        if frames * dim != data.len() {
            return Err(Error::ShapeMismatch {
                what: "feature sequence".into(),
                shape: vec![frames, dim],
                expected: frames * dim,
                got: data.len(),
            });
        }
        Ok(Self { frames, dim, data })
    }

    /// Index of the first NaN/Inf value, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.data.iter().position(|v| !v.is_finite())
    }

    /// Mean over frames: the utterance-level summary of a sequence.
    pub fn mean_pooled(&self) -> Vec<f32> {
        if self.frames <= 1 {
            return self.data.clone();
        }
        let mut out = vec![0.0f32; self.dim];
        for frame in self.data.chunks_exact(self.dim) {
            for (o, v) in out.iter_mut().zip(frame) {
                *o += v;
            }
        }
        let n = self.frames as f32;
        out.iter_mut().for_each(|o| *o /= n);
        out
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// Corpus-unique id (e.g. `dia12_utt3`, `Ses01F_impro01_F000`).
    pub id: String,
    /// Position within its dialogue, from 0.
    pub index: usize,
    /// The turn number as the source gives it (MELD's `Utterance_ID`, the
    /// `turn` of a user's conversation file), which need not start at 0 or
    /// be contiguous; `None` when the source numbers nothing. Output echoes
    /// it so that predictions join back to the user's rows.
    #[serde(default)]
    pub turn: Option<u64>,
    /// Speaker name or tag as the corpus gives it.
    pub speaker: String,
    /// Transcript, when known.
    pub text: Option<String>,
    /// Gold label, when known.
    pub label: Option<Label>,
    /// Precomputed features per modality. A modality that is absent is
    /// missing — never a zero array standing in for data.
    pub features: BTreeMap<Modality, Features>,
}

impl Utterance {
    /// A bare utterance with text and label.
    pub fn new(id: impl Into<String>, index: usize, speaker: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            index,
            turn: None,
            speaker: speaker.into(),
            text: None,
            label: None,
            features: BTreeMap::new(),
        }
    }
}

/// A conversation: utterances in temporal order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialogue {
    /// Corpus-unique dialogue id.
    pub id: String,
    /// Turns in order.
    pub utterances: Vec<Utterance>,
}

impl Dialogue {
    /// Distinct speakers in order of first appearance.
    pub fn speakers(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for u in &self.utterances {
            if !seen.contains(&u.speaker.as_str()) {
                seen.push(&u.speaker);
            }
        }
        seen
    }
}

/// The dataset's fixed partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training partition.
    Train,
    /// Validation partition: model selection happens here and only here.
    Valid,
    /// Test partition: touched once, for the reported numbers.
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled dataset with its standard splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Corpus {
    /// Dataset name (`meld`, `iemocap`, ...).
    pub name: String,
    /// Class vocabulary.
    pub labels: LabelSpace,
    /// Dialogues per split; a split may be empty (e.g. a pickle without valid ids).
    pub splits: BTreeMap<Split, Vec<Dialogue>>,
}

impl Corpus {
    /// Dialogues of one split (empty slice when absent).
    pub fn split(&self, split: Split) -> &[Dialogue] {
        self.splits.get(&split).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of utterances in a split.
    pub fn num_utterances(&self, split: Split) -> usize {
        self.split(split).iter().map(|d| d.utterances.len()).sum()
    }

    /// Modalities present on at least one utterance, in canonical order.
    pub fn modalities(&self) -> Vec<Modality> {
        let mut present = std::collections::BTreeSet::new();
        for dialogues in self.splits.values() {
            for d in dialogues {
                for u in &d.utterances {
                    present.extend(u.features.keys().copied());
                }
            }
        }
        present.into_iter().collect()
    }

    /// Checks the invariants every loader promises: non-empty dialogues,
    /// labels inside the label space, finite features, one width per modality.
    ///
    /// # Errors
    /// The first violation found, naming the utterance.
    pub fn validate(&self) -> Result<()> {
        let mut widths: BTreeMap<Modality, usize> = BTreeMap::new();
        for dialogues in self.splits.values() {
            for d in dialogues {
                if d.utterances.is_empty() {
                    return Err(Error::EmptyDialogue(d.id.clone()));
                }
                for u in &d.utterances {
                    self.validate_label(u)?;
                    for (m, f) in &u.features {
                        if f.frames * f.dim != f.data.len() {
                            return Err(Error::ShapeMismatch {
                                what: format!("{m} features of {}", u.id),
                                shape: vec![f.frames, f.dim],
                                expected: f.frames * f.dim,
                                got: f.data.len(),
                            });
                        }
                        if let Some(index) = f.first_non_finite() {
                            return Err(Error::NonFinite {
                                utterance: u.id.clone(),
                                modality: m.to_string(),
                                index,
                            });
                        }
                        let expected = *widths.entry(*m).or_insert(f.dim);
                        if expected != f.dim {
                            return Err(Error::WidthMismatch {
                                modality: m.to_string(),
                                utterance: u.id.clone(),
                                expected,
                                got: f.dim,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-splits the corpus by dialogue-id prefix: validation becomes the
    /// train and valid dialogues starting with `valid`; with `test` given,
    /// test becomes the dialogues of any split starting with it (checked
    /// first), so each fold of a leave-one-group-out cross-validation is one
    /// call. The rest is training.
    ///
    /// Why: IEMOCAP's standard validation dialogues come from the training
    /// speakers' sessions while its test speakers (session 5) are unseen,
    /// so early stopping on them rewards fitting known speakers; holding out
    /// a whole session (`Ses04`: two speakers) does not. And one test
    /// session is two speakers: `test = "Ses01"` … `"Ses05"` gives the
    /// leave-one-session-out protocol of speech emotion recognition.
    ///
    /// # Errors
    /// [`Error::HoldOut`] when the training, validation or test split would
    /// be empty; the corpus is then unchanged.
    pub fn hold_out(&mut self, valid: &str, test: Option<&str>) -> Result<()> {
        let pooled: &[Split] = match test {
            Some(_) => &Split::ALL,
            None => &[Split::Train, Split::Valid],
        };
        let split_of = |id: &str| match test {
            Some(t) if id.starts_with(t) => Split::Test,
            _ if id.starts_with(valid) => Split::Valid,
            _ => Split::Train,
        };
        let filled: BTreeSet<Split> = pooled
            .iter()
            .flat_map(|&s| self.split(s))
            .map(|d| split_of(&d.id))
            .collect();
        if let Some(empty) = pooled.iter().find(|s| !filled.contains(s)) {
            return Err(Error::HoldOut(format!(
                "validating on dialogues starting with {valid:?}{} leaves no {empty} dialogue",
                test.map(|t| format!(" and testing on those starting with {t:?}"))
                    .unwrap_or_default()
            )));
        }
        // Every pooled split gets at least one dialogue (checked above).
        let mut resplit: BTreeMap<Split, Vec<Dialogue>> = BTreeMap::new();
        for d in pooled
            .iter()
            .filter_map(|s| self.splits.remove(s))
            .flatten()
        {
            resplit.entry(split_of(&d.id)).or_default().push(d);
        }
        self.splits.extend(resplit);
        Ok(())
    }

    fn validate_label(&self, u: &Utterance) -> Result<()> {
        let n = self.labels.num_classes();
        let out_of_range = |label| Error::LabelOutOfRange {
            utterance: u.id.clone(),
            label,
            num_classes: n,
            space: self.labels.name.clone(),
        };
        match &u.label {
            Some(Label::Single(c)) if *c >= n => Err(out_of_range(*c)),
            Some(Label::Multi(bits)) if bits.len() != n => Err(out_of_range(bits.len())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_with(u: Utterance) -> Corpus {
        Corpus {
            name: "t".into(),
            labels: LabelSpace::meld(),
            splits: BTreeMap::from([(
                Split::Train,
                vec![Dialogue {
                    id: "d0".into(),
                    utterances: vec![u],
                }],
            )]),
        }
    }

    #[test]
    fn validate_rejects_nan_and_names_the_utterance() {
        let mut u = Utterance::new("d0_u0", 0, "A");
        u.features
            .insert(Modality::Audio, Features::vector(vec![0.0, f32::NAN]));
        let err = corpus_with(u).validate().unwrap_err().to_string();
        assert!(
            err.contains("d0_u0") && err.contains("audio") && err.contains("index 1"),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_label_out_of_range() {
        let mut u = Utterance::new("d0_u0", 0, "A");
        u.label = Some(Label::Single(7));
        assert!(matches!(
            corpus_with(u).validate(),
            Err(Error::LabelOutOfRange { .. })
        ));
    }

    #[test]
    fn hold_out_resplits_by_prefix_or_changes_nothing() {
        let dialogue = |id: &str| Dialogue {
            id: id.into(),
            utterances: vec![Utterance::new(format!("{id}_0"), 0, "M")],
        };
        let original = Corpus {
            name: "t".into(),
            labels: LabelSpace::iemocap(),
            splits: BTreeMap::from([
                (Split::Train, vec![dialogue("Ses01a"), dialogue("Ses04a")]),
                (Split::Valid, vec![dialogue("Ses02a"), dialogue("Ses04b")]),
                (Split::Test, vec![dialogue("Ses05a")]),
            ]),
        };
        let ids =
            |c: &Corpus, s| -> Vec<String> { c.split(s).iter().map(|d| d.id.clone()).collect() };
        let mut corpus = original.clone();
        for (valid, test) in [
            ("Ses09", None),
            ("Ses0", None),
            ("Ses04", Some("Ses0")),
            ("Ses01", Some("Ses01")),
        ] {
            let err = corpus.hold_out(valid, test).unwrap_err();
            assert!(matches!(err, Error::HoldOut(_)), "{err}");
            assert_eq!(corpus, original, "a failed hold-out changes nothing");
        }
        corpus.hold_out("Ses04", None).unwrap();
        assert_eq!(ids(&corpus, Split::Train), ["Ses01a", "Ses02a"]);
        assert_eq!(ids(&corpus, Split::Valid), ["Ses04a", "Ses04b"]);
        assert_eq!(ids(&corpus, Split::Test), ["Ses05a"]);
        // One fold of leave-one-session-out: the old test session trains.
        let mut fold = original.clone();
        fold.hold_out("Ses02", Some("Ses01")).unwrap();
        assert_eq!(ids(&fold, Split::Train), ["Ses04a", "Ses04b", "Ses05a"]);
        assert_eq!(ids(&fold, Split::Valid), ["Ses02a"]);
        assert_eq!(ids(&fold, Split::Test), ["Ses01a"]);
    }

    #[test]
    fn mean_pooling_averages_frames() {
        let f = Features::sequence(2, 2, vec![1.0, 2.0, 3.0, 6.0]).unwrap();
        assert_eq!(f.mean_pooled(), vec![2.0, 4.0]);
        assert!(Features::sequence(2, 2, vec![1.0]).is_err());
    }

    #[test]
    fn unknown_label_lists_known_classes() {
        let err = LabelSpace::meld()
            .index_of("happy")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neutral") && err.contains("\"happy\""),
            "{err}"
        );
        assert_eq!(LabelSpace::meld().index_of(" Joy ").unwrap(), 4);
    }
}
