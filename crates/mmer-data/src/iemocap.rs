//! IEMOCAP from the `iemocap.pkl` transcript pickle.
//!
//! The file is a pickled list of six items:
//! `[speakers, labels, sentences, train_ids, test_ids, valid_ids]`, where
//! the first three are dicts from dialogue id (e.g. `Ses02F_script01_3`) to
//! one entry per utterance: the speaker tag (`"M"`/`"F"`), the label index
//! in [`LabelSpace::iemocap`] order (hap 0, sad 1, neu 2, ang 3, exc 4,
//! fru 5) and the transcript. The split lists give the standard 108 / 12 /
//! 31 dialogue partition (5,163 / 647 / 1,623 utterances).
//!
//! Utterance ids are `<dialogue>_<index>`; dialogues keep the order of their
//! split list. Every sentence must have words (the release's all do). No features are loaded: text features are computed later
//! from [`Utterance::text`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mmer_core::{Corpus, Dialogue, Label, LabelSpace, Split, Utterance};

use crate::pickle::{self, Value};
use crate::{Error, Result};

/// Loads `iemocap.pkl` into a validated corpus with train, valid and test splits.
///
/// # Errors
/// - [`Error::Io`] / [`Error::Pickle`] when the file cannot be read or decoded;
/// - [`Error::Format`] when the layout differs (not a list of six, a dict or
///   list of the wrong type, a split naming a dialogue the dicts lack, a
///   dialogue in two splits, per-dialogue lengths that disagree between
///   speakers, labels and sentences, an empty sentence — each naming the
///   dialogue or utterance id);
/// - [`Error::UnknownLabel`] for a label index outside the six classes;
/// - [`Error::Invalid`] when the corpus breaks a domain invariant.
pub fn load_iemocap_pickle(path: &Path) -> Result<Corpus> {
    let value = pickle::load(path)?;
    corpus_from_value(path, &value)
}

/// Builds the corpus from an already decoded pickle (see [`load_iemocap_pickle`]).
///
/// # Errors
/// As [`load_iemocap_pickle`], less the I/O and decoding errors.
pub fn corpus_from_value(path: &Path, value: &Value) -> Result<Corpus> {
    let format = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let items = value
        .as_seq()
        .filter(|items| items.len() == 6)
        .ok_or_else(|| {
            format(format!(
                "expected a list of 6 items [speakers, labels, sentences, train, test, valid], found {}",
                value.describe()
            ))
        })?;
    let speakers = dialogue_dict(path, &items[0], "speakers")?;
    let labels = dialogue_dict(path, &items[1], "labels")?;
    let sentences = dialogue_dict(path, &items[2], "sentences")?;
    let space = LabelSpace::iemocap();

    let mut splits = BTreeMap::new();
    let mut seen: HashMap<String, Split> = HashMap::new();
    for (split, item, name) in [
        (Split::Train, &items[3], "train ids"),
        (Split::Test, &items[4], "test ids"),
        (Split::Valid, &items[5], "valid ids"),
    ] {
        let ids = id_list(path, item, name)?;
        let mut dialogues = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(previous) = seen.insert(id.clone(), split) {
                return Err(format(format!(
                    "dialogue {id} is in both the {previous} and the {split} split"
                )));
            }
            let missing = |what: &str| {
                format(format!(
                    "{name} list dialogue {id}, which {what} does not have"
                ))
            };
            let spk = speakers
                .get(&id)
                .copied()
                .ok_or_else(|| missing("speakers"))?;
            let lab = labels.get(&id).copied().ok_or_else(|| missing("labels"))?;
            let sen = sentences
                .get(&id)
                .copied()
                .ok_or_else(|| missing("sentences"))?;
            dialogues.push(dialogue(path, &space, &id, spk, lab, sen)?);
        }
        splits.insert(split, dialogues);
    }
    let corpus = Corpus {
        name: "iemocap".into(),
        labels: space,
        splits,
    };
    corpus.validate().map_err(|source| Error::Invalid {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(corpus)
}

fn dialogue<'v>(
    path: &Path,
    space: &LabelSpace,
    id: &str,
    speakers: &'v Value,
    labels: &'v Value,
    sentences: &'v Value,
) -> Result<Dialogue> {
    let format = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let seq = |v: &'v Value, what: &str| -> Result<&'v [Value]> {
        v.as_seq().ok_or_else(|| {
            format(format!(
                "dialogue {id}: {what} must be a list, found {}",
                v.describe()
            ))
        })
    };
    let speakers = seq(speakers, "speakers")?;
    let labels = seq(labels, "labels")?;
    let sentences = seq(sentences, "sentences")?;
    if speakers.len() != labels.len() || sentences.len() != labels.len() {
        return Err(format(format!(
            "dialogue {id}: {} speakers, {} labels and {} sentences disagree",
            speakers.len(),
            labels.len(),
            sentences.len()
        )));
    }
    let mut utterances = Vec::with_capacity(labels.len());
    for (index, ((speaker, label), sentence)) in
        speakers.iter().zip(labels).zip(sentences).enumerate()
    {
        let uid = format!("{id}_{index}");
        let speaker = speaker.as_str().ok_or_else(|| {
            format(format!(
                "utterance {uid}: speaker must be a str, found {}",
                speaker.describe()
            ))
        })?;
        let text = sentence.as_str().ok_or_else(|| {
            format(format!(
                "utterance {uid}: sentence must be a str, found {}",
                sentence.describe()
            ))
        })?;
        if text.trim().is_empty() {
            return Err(format(format!(
                "utterance {uid}: the sentence is empty (the release has none, so \
                 this is damage; an utterance with no words cannot be classified from text)"
            )));
        }
        let class = label
            .as_i64()
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l < space.num_classes())
            .ok_or_else(|| Error::UnknownLabel {
                path: path.to_path_buf(),
                line: 0,
                id: uid.clone(),
                label: match label {
                    Value::Int(i) => i.to_string(),
                    other => format!("<{}>", other.type_name()),
                },
                known: known_classes(space),
            })?;
        let mut u = Utterance::new(uid, index, speaker);
        u.text = Some(text.to_string());
        u.label = Some(Label::Single(class));
        utterances.push(u);
    }
    Ok(Dialogue {
        id: id.to_string(),
        utterances,
    })
}

/// `0=happy, 1=sad, ...`: the integer labels the pickle uses, for messages.
pub(crate) fn known_classes(space: &LabelSpace) -> String {
    space
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i}={c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dict keyed by dialogue id (str or int keys, as text).
fn dialogue_dict<'v>(
    path: &Path,
    value: &'v Value,
    what: &str,
) -> Result<HashMap<String, &'v Value>> {
    let pairs = value.as_dict().ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        msg: format!("{what} must be a dict, found {}", value.describe()),
    })?;
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        let key = id_text(k).ok_or_else(|| Error::Format {
            path: path.to_path_buf(),
            msg: format!(
                "{what}: dialogue id must be a str or int, found {}",
                k.describe()
            ),
        })?;
        if out.insert(key.clone(), v).is_some() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                msg: format!("{what}: dialogue {key} appears twice"),
            });
        }
    }
    Ok(out)
}

/// A list (tuple, set) of dialogue ids.
fn id_list(path: &Path, value: &Value, what: &str) -> Result<Vec<String>> {
    let items = value.as_seq().ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        msg: format!("{what} must be a list, found {}", value.describe()),
    })?;
    items
        .iter()
        .map(|v| {
            id_text(v).ok_or_else(|| Error::Format {
                path: path.to_path_buf(),
                msg: format!(
                    "{what}: dialogue id must be a str or int, found {}",
                    v.describe()
                ),
            })
        })
        .collect()
}

/// A dialogue or utterance id as text: strings as they are, ints in decimal.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn dict(pairs: Vec<(&str, Value)>) -> Value {
        Value::Dict(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    fn sample() -> Vec<Value> {
        let spk = dict(vec![
            ("d1", Value::List(vec![s("M"), s("F")])),
            ("d2", Value::List(vec![s("F")])),
            ("d3", Value::List(vec![s("M")])),
        ]);
        let lab = dict(vec![
            ("d1", Value::List(vec![Value::Int(0), Value::Int(5)])),
            ("d2", Value::List(vec![Value::Int(2)])),
            ("d3", Value::List(vec![Value::Int(3)])),
        ]);
        let sen = dict(vec![
            ("d1", Value::List(vec![s("hi"), s("there")])),
            ("d2", Value::List(vec![s("x")])),
            ("d3", Value::List(vec![s("y")])),
        ]);
        vec![
            spk,
            lab,
            sen,
            Value::List(vec![s("d1")]),
            Value::List(vec![s("d2")]),
            Value::List(vec![s("d3")]),
        ]
    }

    fn load(items: Vec<Value>) -> Result<Corpus> {
        corpus_from_value(Path::new("iemocap.pkl"), &Value::List(items))
    }

    #[test]
    fn builds_splits_ids_text_and_labels() {
        let c = load(sample()).unwrap();
        assert_eq!(c.num_utterances(Split::Train), 2);
        assert_eq!(c.num_utterances(Split::Test), 1);
        assert_eq!(c.num_utterances(Split::Valid), 1);
        let u = &c.split(Split::Train)[0].utterances[1];
        assert_eq!(u.id, "d1_1");
        assert_eq!(u.speaker, "F");
        assert_eq!(u.text.as_deref(), Some("there"));
        assert_eq!(u.label, Some(Label::Single(5)));
        assert_eq!(c.split(Split::Valid)[0].id, "d3");
    }

    #[test]
    fn length_mismatch_names_the_dialogue() {
        let mut items = sample();
        items[2] = dict(vec![
            ("d1", Value::List(vec![s("only one")])),
            ("d2", Value::List(vec![s("x")])),
            ("d3", Value::List(vec![s("y")])),
        ]);
        let err = load(items).unwrap_err().to_string();
        assert!(
            err.contains("dialogue d1") && err.contains("disagree"),
            "{err}"
        );
    }

    #[test]
    fn label_out_of_range_is_unknown_label() {
        let mut items = sample();
        items[1] = dict(vec![
            ("d1", Value::List(vec![Value::Int(0), Value::Int(6)])),
            ("d2", Value::List(vec![Value::Int(2)])),
            ("d3", Value::List(vec![Value::Int(3)])),
        ]);
        let err = load(items).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLabel { id, label, .. } if id == "d1_1" && label == "6"),
            "{err}"
        );
    }

    #[test]
    fn empty_sentence_names_the_utterance() {
        let mut items = sample();
        items[2] = dict(vec![
            ("d1", Value::List(vec![s("hi"), s(" ")])),
            ("d2", Value::List(vec![s("x")])),
            ("d3", Value::List(vec![s("y")])),
        ]);
        let err = load(items).unwrap_err().to_string();
        assert!(
            err.starts_with("iemocap.pkl: utterance d1_1: the sentence is empty"),
            "{err}"
        );
    }

    #[test]
    fn split_naming_a_missing_dialogue_is_an_error() {
        let mut items = sample();
        items[4] = Value::List(vec![s("nope")]);
        let err = load(items).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn dialogue_in_two_splits_is_an_error() {
        let mut items = sample();
        items[5] = Value::List(vec![s("d1")]);
        let err = load(items).unwrap_err().to_string();
        assert!(err.contains("d1") && err.contains("both"), "{err}");
    }

    #[test]
    fn wrong_top_level_shape_is_a_format_error() {
        let err = corpus_from_value(Path::new("x.pkl"), &Value::List(vec![])).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
    }
}
