//! Label spaces and labels.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The classes of a corpus, in the exact order the dataset's integer labels use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSpace {
    /// Short name (`meld`, `iemocap`, ...).
    pub name: String,
    /// Class names; index = integer label.
    pub classes: Vec<String>,
    /// True when an utterance may carry several classes at once (ElderReact).
    pub multi_label: bool,
}

impl LabelSpace {
    /// A single-label space from class names.
    pub fn single(name: &str, classes: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            multi_label: false,
        }
    }

    /// MELD's 7 emotions in `MELD_features_raw.pkl` integer order (DESIGN §1).
    pub fn meld() -> Self {
        Self::single(
            "meld",
            &[
                "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
            ],
        )
    }

    /// IEMOCAP's 6 classes in DialogueRNN pickle order: hap0 sad1 neu2 ang3 exc4 fru5.
    pub fn iemocap() -> Self {
        Self::single(
            "iemocap",
            &["happy", "sad", "neutral", "angry", "excited", "frustrated"],
        )
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Index of a class name, case-insensitive.
    ///
    /// # Errors
    /// [`Error::UnknownLabel`] naming the known classes.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        let wanted = name.trim();
        self.classes
            .iter()
            .position(|c| c.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| Error::UnknownLabel {
                label: name.to_string(),
                space: self.name.clone(),
                known: self.classes.join(", "),
            })
    }

    /// Name of class `index` (or `"?"` when out of range).
    pub fn name_of(&self, index: usize) -> &str {
        self.classes.get(index).map(String::as_str).unwrap_or("?")
    }
}

/// The gold label(s) of one utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// One class index.
    Single(usize),
    /// One bit per class.
    Multi(Vec<bool>),
}

impl Label {
    /// The class index of a single label.
    pub fn single(&self) -> Option<usize> {
        match self {
            Label::Single(c) => Some(*c),
            Label::Multi(_) => None,
        }
    }
}
