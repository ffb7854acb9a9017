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

    /// A label set a user declares, `classes` in index order.
    ///
    /// # Errors
    /// [`Error::InvalidLabelSpace`] naming the problem: a blank set name; no
    /// classes, or one class in a single-label set (nothing to choose
    /// between); a class name that is empty, has leading or trailing
    /// whitespace, or contains [`Self::LIST_SEPARATOR`]; a class named
    /// twice, compared case-insensitively as [`Self::index_of`] matches.
    pub fn declared(name: &str, classes: Vec<String>, multi_label: bool) -> Result<Self> {
        let invalid = |msg: String| Error::InvalidLabelSpace {
            space: format!("{name:?}"),
            msg,
        };
        if name.trim().is_empty() || name.trim() != name {
            return Err(invalid(
                "the name must not be empty or start or end with whitespace".into(),
            ));
        }
        match classes.len() {
            0 => return Err(invalid("no classes declared".into())),
            1 if !multi_label => {
                return Err(invalid(format!(
                    "a single-label set needs at least two classes (only {:?} declared)",
                    classes[0]
                )));
            }
            _ => {}
        }
        for (k, class) in classes.iter().enumerate() {
            if class.trim().is_empty() {
                return Err(invalid(format!("class {} has an empty name", k + 1)));
            }
            if class.trim() != class {
                return Err(invalid(format!(
                    "class {class:?} starts or ends with whitespace"
                )));
            }
            if class.contains(Self::LIST_SEPARATOR) {
                return Err(invalid(format!(
                    "class {class:?} contains {:?}, which separates the classes of a multi-label turn",
                    Self::LIST_SEPARATOR
                )));
            }
            if let Some(first) = classes[..k].iter().find(|c| c.eq_ignore_ascii_case(class)) {
                return Err(invalid(match first == class {
                    true => format!("class {class:?} is declared twice"),
                    false => format!(
                        "classes {first:?} and {class:?} differ only in case (labels match case-insensitively)"
                    ),
                }));
            }
        }
        Ok(Self {
            name: name.to_string(),
            classes,
            multi_label,
        })
    }

    /// Separates the class names of one multi-label turn in a
    /// conversation file (`joy;surprise`); no class name contains it.
    pub const LIST_SEPARATOR: char = ';';

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_sets_refuse_what_a_label_could_not_name() {
        let declare = |classes: &[&str], multi: bool| {
            LabelSpace::declared(
                "mine",
                classes.iter().map(|c| c.to_string()).collect(),
                multi,
            )
        };
        let space = declare(&["calm", "tense", "happy"], false).unwrap();
        assert_eq!((space.name.as_str(), space.num_classes()), ("mine", 3));
        assert!(declare(&["tense"], true).unwrap().multi_label);
        for (classes, multi, problem) in [
            (&[][..], true, "no classes"),
            (&["calm"][..], false, "at least two classes"),
            (&["calm", ""][..], false, "class 2 has an empty name"),
            (&["calm", "  "][..], false, "class 2 has an empty name"),
            (&["calm", " tense"][..], false, "\" tense\" starts or ends"),
            (
                &["calm", "tense\t"][..],
                false,
                "starts or ends with whitespace",
            ),
            (&["calm", "a;b"][..], true, "contains ';'"),
            (&["calm", "calm"][..], false, "\"calm\" is declared twice"),
            (&["Calm", "calm"][..], true, "differ only in case"),
        ] {
            let err = declare(classes, multi).unwrap_err().to_string();
            assert!(
                err.starts_with("label set \"mine\": ") && err.contains(problem),
                "{classes:?}: {err}"
            );
        }
        for name in ["", " ", "mine "] {
            let err = LabelSpace::declared(name, vec!["a".into(), "b".into()], false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("the name must not be empty"), "{err}");
        }
    }
}
