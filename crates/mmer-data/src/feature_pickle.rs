//! The feature pickles of DialogueRNN, DialogueGCN and MMGCN:
//! `IEMOCAP_features.pkl` and `MELD_features_raw.pkl`.
//!
//! Both are pickled tuples of per-dialogue dicts, keyed by dialogue id:
//!
//! | kind | items |
//! | --- | --- |
//! | IEMOCAP (9) | `videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual, videoSentence, trainVid, testVid` |
//! | MELD (10, MMGCN) | the same, then the sentiment labels |
//! | MELD (9, DialogueRNN) | as MELD without `videoVisual` |
//!
//! Per dialogue: `videoIDs` lists utterance ids (strings in IEMOCAP, used
//! as [`Utterance::id`]; ints in MELD, which become `<dialogue>_<index>`),
//! `videoSpeakers` gives `'M'`/`'F'` (IEMOCAP) or a one-hot vector over 9
//! speakers (MELD, which becomes `spk<k>`), `videoLabels` the class index
//! ([`LabelSpace::iemocap`] or [`LabelSpace::meld`] order), and
//! `videoSentence` the transcript ([`Utterance::text`]). Feature values may
//! be lists of numbers, 1-D numpy arrays per utterance, or one 2-D array per
//! dialogue; a 2-D array per utterance becomes a frame sequence.
//!
//! Modalities: `videoText` → [`Modality::Text`], `videoAudio` →
//! [`Modality::Audio`], `videoVisual` → [`Modality::Face`]. The visual
//! features of these pickles are whole-clip visual descriptors (3D-CNN or
//! DenseNet on the face track) with no separate body stream, so they stand
//! in for the face stream and [`Modality::Body`] stays absent.
//!
//! # Validation split
//! These pickles only have `trainVid` and `testVid`. So that model selection
//! never touches test, a validation split is carved from train: train ids
//! are sorted (numerically when all are integers, else as text), and the
//! last `round(valid_fraction × n)` of them become the valid split (at least
//! one when the fraction is positive, never all of train). Sorting makes the
//! split independent of pickle order, which for a pickled `set` depends on
//! Python's string hashing. Test and train keep that sorted order too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use mmer_core::{Corpus, Dialogue, Features, Label, LabelSpace, Modality, Split, Utterance};

use crate::iemocap::{id_text, known_classes};
use crate::pickle::{self, ArrayData, NdArray, Value};
use crate::{Error, Result};

/// The validation fraction used when none is given: DialogueRNN's `valid=0.1`.
pub const DEFAULT_VALID_FRACTION: f64 = 0.1;

/// Which dataset a feature pickle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeaturePickleKind {
    /// `IEMOCAP_features.pkl`: six classes, speakers `'M'`/`'F'`.
    Iemocap,
    /// `MELD_features_raw.pkl`: seven emotions, one-hot speakers.
    Meld,
}

impl FeaturePickleKind {
    /// The label space of the pickle's integer labels.
    pub fn label_space(self) -> LabelSpace {
        match self {
            FeaturePickleKind::Iemocap => LabelSpace::iemocap(),
            FeaturePickleKind::Meld => LabelSpace::meld(),
        }
    }

    /// The corpus name (`iemocap` or `meld`).
    pub fn corpus_name(self) -> &'static str {
        match self {
            FeaturePickleKind::Iemocap => "iemocap",
            FeaturePickleKind::Meld => "meld",
        }
    }
}

/// How to read a feature pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturePickleOptions {
    /// The dataset; `None` detects it from the layout (see [`detect_kind`]).
    pub kind: Option<FeaturePickleKind>,
    /// Share of train dialogues moved to the valid split, in `[0, 1)`.
    pub valid_fraction: f64,
}

impl Default for FeaturePickleOptions {
    fn default() -> Self {
        Self {
            kind: None,
            valid_fraction: DEFAULT_VALID_FRACTION,
        }
    }
}

/// Loads a DialogueRNN/DialogueGCN/MMGCN feature pickle into a validated
/// corpus with train, valid (carved from train) and test splits.
///
/// # Errors
/// - [`Error::InvalidOption`] for a `valid_fraction` outside `[0, 1)`;
/// - [`Error::Io`] / [`Error::Pickle`] when the file cannot be read or decoded;
/// - [`Error::Format`] for a layout that is not one of the three above, or a
///   dialogue that is missing from a dict, empty, listed twice, has lists of
///   different lengths, non-finite feature values or a feature width unlike
///   the earlier utterances — naming the dialogue and utterance;
/// - [`Error::UnknownLabel`] for a label index outside the label space;
/// - [`Error::Invalid`] when the corpus breaks a domain invariant.
pub fn load_feature_pickle(path: &Path, opts: &FeaturePickleOptions) -> Result<Corpus> {
    check_fraction(opts.valid_fraction)?;
    let value = pickle::load(path)?;
    corpus_from_value(path, &value, opts)
}

/// Builds the corpus from an already decoded pickle (see [`load_feature_pickle`]).
///
/// # Errors
/// As [`load_feature_pickle`], less the I/O and decoding errors.
pub fn corpus_from_value(
    path: &Path,
    value: &Value,
    opts: &FeaturePickleOptions,
) -> Result<Corpus> {
    check_fraction(opts.valid_fraction)?;
    let format = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let items = value.as_seq().ok_or_else(|| {
        format(format!(
            "expected a tuple of 9 or 10 items (videoIDs, videoSpeakers, ...), found {}",
            value.describe()
        ))
    })?;
    let kind = match opts.kind {
        Some(kind) => kind,
        None => detect_kind(value).ok_or_else(|| {
            format("cannot tell IEMOCAP from MELD (speakers neither 'M'/'F' strings nor one-hot vectors); set the kind".into())
        })?,
    };
    let layout = Layout::of(kind, items).ok_or_else(|| {
        format(format!(
            "{}, found {} items",
            match kind {
                FeaturePickleKind::Iemocap => "an IEMOCAP feature pickle has 9 items",
                FeaturePickleKind::Meld => {
                    "a MELD feature pickle has 10 items (or 9 without videoVisual)"
                }
            },
            items.len()
        ))
    })?;
    Loader {
        path,
        kind,
        space: kind.label_space(),
        widths: HashMap::new(),
        utterance_ids: HashSet::new(),
    }
    .corpus(items, &layout, opts.valid_fraction)
}

/// Detects the dataset from the layout: 10 items, or 9 ending with a dict of
/// sentiment labels, is MELD; otherwise the speaker format decides
/// (`'M'`/`'F'` strings for IEMOCAP, one-hot vectors for MELD).
pub fn detect_kind(value: &Value) -> Option<FeaturePickleKind> {
    let items = value.as_seq()?;
    match items.len() {
        10 => Some(FeaturePickleKind::Meld),
        9 if items[8].as_dict().is_some() => Some(FeaturePickleKind::Meld),
        9 => {
            let first = items[1]
                .as_dict()?
                .iter()
                .find_map(|(_, speakers)| first_element(speakers))?;
            match first {
                Element::Str => Some(FeaturePickleKind::Iemocap),
                Element::Vector => Some(FeaturePickleKind::Meld),
                Element::Other => None,
            }
        }
        _ => None,
    }
}

/// Splits train dialogue ids into (train, valid): sorted, the last
/// `round(fraction × n)` are valid — at least one when `fraction > 0` and
/// there are two or more, and never all of them.
pub fn carve_valid(mut train_ids: Vec<String>, fraction: f64) -> (Vec<String>, Vec<String>) {
    sort_ids(&mut train_ids);
    let n = train_ids.len();
    let mut n_valid = (n as f64 * fraction).round() as usize;
    if fraction > 0.0 && n_valid == 0 && n >= 2 {
        n_valid = 1;
    }
    let n_valid = n_valid.min(n.saturating_sub(1));
    let valid = train_ids.split_off(n - n_valid);
    (train_ids, valid)
}

/// Sorts ids numerically when all are integers, else as text.
fn sort_ids(ids: &mut [String]) {
    if ids.iter().all(|id| id.parse::<u64>().is_ok()) {
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
    } else {
        ids.sort();
    }
}

fn check_fraction(fraction: f64) -> Result<()> {
    if fraction.is_finite() && (0.0..1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            name: "valid_fraction",
            msg: format!("{fraction} is not in [0, 1)"),
        })
    }
}

/// What the first per-utterance entry of a dict of lists looks like.
enum Element {
    Str,
    Vector,
    Other,
}

fn first_element(per_dialogue: &Value) -> Option<Element> {
    match per_dialogue {
        Value::List(v) | Value::Tuple(v) => Some(match v.first()? {
            Value::Str(_) => Element::Str,
            Value::List(_) | Value::Tuple(_) | Value::NdArray(_) => Element::Vector,
            _ => Element::Other,
        }),
        Value::NdArray(a) if a.shape.len() == 2 && a.shape[0] > 0 => Some(Element::Vector),
        Value::NdArray(a) if a.shape.first().is_some_and(|&n| n > 0) => match &a.data {
            ArrayData::Object(items) if matches!(items.first(), Some(Value::Str(_))) => {
                Some(Element::Str)
            }
            _ => Some(Element::Other),
        },
        _ => None,
    }
}

/// Positions of the per-dialogue dicts and split lists in the tuple.
struct Layout {
    visual: Option<usize>,
    sentences: usize,
    train: usize,
    test: usize,
}

const IDS: usize = 0;
const SPEAKERS: usize = 1;
const LABELS: usize = 2;
const TEXT: usize = 3;
const AUDIO: usize = 4;

impl Layout {
    fn of(kind: FeaturePickleKind, items: &[Value]) -> Option<Self> {
        let full = Layout {
            visual: Some(5),
            sentences: 6,
            train: 7,
            test: 8,
        };
        match (kind, items.len()) {
            (FeaturePickleKind::Iemocap, 9) | (FeaturePickleKind::Meld, 10) => Some(full),
            (FeaturePickleKind::Meld, 9) => Some(Layout {
                visual: None,
                sentences: 5,
                train: 6,
                test: 7,
            }),
            _ => None,
        }
    }

    fn name(&self, index: usize) -> &'static str {
        match index {
            IDS => "videoIDs",
            SPEAKERS => "videoSpeakers",
            LABELS => "videoLabels",
            TEXT => "videoText",
            AUDIO => "videoAudio",
            i if Some(i) == self.visual => "videoVisual",
            i if i == self.sentences => "videoSentence",
            i if i == self.train => "trainVid",
            i if i == self.test => "testVid",
            _ => "item",
        }
    }
}

struct Loader<'p> {
    path: &'p Path,
    kind: FeaturePickleKind,
    space: LabelSpace,
    /// Width of each modality and the utterance that set it.
    widths: HashMap<Modality, (usize, String)>,
    utterance_ids: HashSet<String>,
}

impl Loader<'_> {
    fn format(&self, msg: String) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    fn corpus(mut self, items: &[Value], layout: &Layout, valid_fraction: f64) -> Result<Corpus> {
        let mut dicts: Vec<(usize, HashMap<String, &Value>)> = Vec::new();
        let mut wanted = vec![IDS, SPEAKERS, LABELS, TEXT, AUDIO, layout.sentences];
        wanted.extend(layout.visual);
        for index in wanted {
            dicts.push((
                index,
                self.dialogue_dict(&items[index], layout.name(index))?,
            ));
        }
        let train = self.id_list(&items[layout.train], "trainVid")?;
        let mut test = self.id_list(&items[layout.test], "testVid")?;
        let train_set: HashSet<&String> = train.iter().collect();
        if let Some(both) = test.iter().find(|id| train_set.contains(id)) {
            return Err(self.format(format!("dialogue {both} is in both trainVid and testVid")));
        }
        let (train, valid) = carve_valid(train, valid_fraction);
        sort_ids(&mut test);

        let mut splits = BTreeMap::new();
        for (split, ids) in [
            (Split::Train, train),
            (Split::Valid, valid),
            (Split::Test, test),
        ] {
            let mut dialogues = Vec::with_capacity(ids.len());
            for id in ids {
                let mut per: HashMap<usize, &Value> = HashMap::new();
                for (index, dict) in &dicts {
                    let v = dict.get(&id).ok_or_else(|| {
                        self.format(format!(
                            "dialogue {id} is in the {split} split but not in {}",
                            layout.name(*index)
                        ))
                    })?;
                    per.insert(*index, v);
                }
                dialogues.push(self.dialogue(&id, &per, layout)?);
            }
            splits.insert(split, dialogues);
        }
        let corpus = Corpus {
            name: self.kind.corpus_name().into(),
            labels: self.space,
            splits,
        };
        corpus.validate().map_err(|source| Error::Invalid {
            path: self.path.to_path_buf(),
            source,
        })?;
        Ok(corpus)
    }

    fn dialogue(
        &mut self,
        id: &str,
        per: &HashMap<usize, &Value>,
        layout: &Layout,
    ) -> Result<Dialogue> {
        let get = |index: usize| per.get(&index).copied().unwrap_or(&Value::None);
        let ctx = |what: &str, e: String| self.format(format!("dialogue {id}: {what}: {e}"));
        let labels = int_list(get(LABELS)).map_err(|e| ctx("videoLabels", e))?;
        let n = labels.len();
        if n == 0 {
            return Err(self.format(format!("dialogue {id} has no utterances")));
        }
        let ids = utterance_ids(get(IDS)).map_err(|e| ctx("videoIDs", e))?;
        let speakers = speaker_list(get(SPEAKERS)).map_err(|e| ctx("videoSpeakers", e))?;
        let sentences = str_list(get(layout.sentences)).map_err(|e| ctx("videoSentence", e))?;
        let mut modalities = vec![(Modality::Text, TEXT), (Modality::Audio, AUDIO)];
        modalities.extend(layout.visual.map(|v| (Modality::Face, v)));
        let mut features = Vec::with_capacity(modalities.len());
        for (modality, index) in modalities {
            let rows = feature_rows(get(index)).map_err(|e| ctx(layout.name(index), e))?;
            features.push((modality, layout.name(index), rows));
        }
        let lengths = [
            ("videoIDs", ids.len()),
            ("videoSpeakers", speakers.len()),
            ("videoSentence", sentences.len()),
        ]
        .into_iter()
        .chain(features.iter().map(|(_, name, rows)| (*name, rows.len())));
        for (name, len) in lengths {
            if len != n {
                return Err(self.format(format!(
                    "dialogue {id}: {name} has {len} entries, videoLabels has {n}"
                )));
            }
        }

        let mut utterances = Vec::with_capacity(n);
        for index in 0..n {
            let uid = ids[index]
                .clone()
                .unwrap_or_else(|| format!("{id}_{index}"));
            if !self.utterance_ids.insert(uid.clone()) {
                return Err(self.format(format!("dialogue {id}: utterance id {uid} appears twice")));
            }
            let label = labels[index];
            let class = usize::try_from(label)
                .ok()
                .filter(|&c| c < self.space.num_classes())
                .ok_or_else(|| Error::UnknownLabel {
                    path: self.path.to_path_buf(),
                    line: 0,
                    id: uid.clone(),
                    label: label.to_string(),
                    known: known_classes(&self.space),
                })?;
            let mut u = Utterance::new(uid, index, speakers[index].clone());
            u.text = Some(sentences[index].clone());
            u.label = Some(Label::Single(class));
            for (modality, name, rows) in &mut features {
                let f = std::mem::replace(&mut rows[index], Features::vector(Vec::new()));
                self.check_features(id, &u.id, index, *modality, name, &f)?;
                u.features.insert(*modality, f);
            }
            utterances.push(u);
        }
        Ok(Dialogue {
            id: id.to_string(),
            utterances,
        })
    }

    fn check_features(
        &mut self,
        dialogue: &str,
        uid: &str,
        index: usize,
        modality: Modality,
        name: &str,
        f: &Features,
    ) -> Result<()> {
        let at = format!("dialogue {dialogue}, utterance {uid} (#{index}): {name}");
        if let Some(k) = f.first_non_finite() {
            return Err(self.format(format!("{at}: value {k} is {} (as f32)", f.data[k])));
        }
        if f.data.is_empty() {
            return Err(self.format(format!("{at}: empty feature vector")));
        }
        match self.widths.get(&modality) {
            Some((width, first)) if *width != f.dim => Err(self.format(format!(
                "{at}: width {} differs from width {width} of utterance {first}",
                f.dim
            ))),
            Some(_) => Ok(()),
            None => {
                self.widths.insert(modality, (f.dim, uid.to_string()));
                Ok(())
            }
        }
    }

    fn dialogue_dict<'v>(
        &self,
        value: &'v Value,
        name: &str,
    ) -> Result<HashMap<String, &'v Value>> {
        let pairs = value.as_dict().ok_or_else(|| {
            self.format(format!("{name} must be a dict, found {}", value.describe()))
        })?;
        let mut out = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = id_text(k).ok_or_else(|| {
                self.format(format!(
                    "{name}: dialogue id must be a str or int, found {}",
                    k.describe()
                ))
            })?;
            if out.insert(key.clone(), v).is_some() {
                return Err(self.format(format!("{name}: dialogue {key} appears twice")));
            }
        }
        Ok(out)
    }

    fn id_list(&self, value: &Value, name: &str) -> Result<Vec<String>> {
        let parse_id = |v: &Value| {
            id_text(v).ok_or_else(|| {
                self.format(format!(
                    "{name}: dialogue id must be a str or int, found {}",
                    v.describe()
                ))
            })
        };
        let ids: Vec<String> = match value {
            Value::NdArray(a) => match &a.data {
                ArrayData::Int(v) => v.iter().map(i64::to_string).collect(),
                ArrayData::Object(v) => v.iter().map(parse_id).collect::<Result<_>>()?,
                _ => {
                    return Err(self.format(format!(
                        "{name}: expected ids, found an array of dtype {}",
                        a.dtype.descr
                    )));
                }
            },
            other => other
                .as_seq()
                .ok_or_else(|| {
                    self.format(format!("{name} must be a list, found {}", value.describe()))
                })?
                .iter()
                .map(parse_id)
                .collect::<Result<_>>()?,
        };
        let mut seen = HashSet::new();
        if let Some(dup) = ids.iter().find(|id| !seen.insert(*id)) {
            return Err(self.format(format!("{name}: dialogue {dup} appears twice")));
        }
        Ok(ids)
    }
}

// -- per-dialogue value conversions (errors are messages; the caller adds the dialogue)

/// The items of a per-dialogue list, or the rows of an object array.
fn list_items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::NdArray(NdArray {
            data: ArrayData::Object(items),
            shape,
            ..
        }) if shape.len() == 1 => Some(items),
        other => other.as_seq(),
    }
}

fn int_list(v: &Value) -> std::result::Result<Vec<i64>, String> {
    if let Value::NdArray(a) = v {
        if a.shape.len() != 1 {
            return Err(format!("expected a 1-D array, found shape {:?}", a.shape));
        }
        return match &a.data {
            ArrayData::Int(v) => Ok(v.clone()),
            ArrayData::Bool(_) | ArrayData::F32(_) | ArrayData::F64(_) | ArrayData::Raw(_) => Err(
                format!("expected integer labels, found dtype {}", a.dtype.descr),
            ),
            ArrayData::Object(items) => items.iter().map(int_of).collect(),
        };
    }
    list_items(v)
        .ok_or_else(|| format!("expected a list, found {}", v.describe()))?
        .iter()
        .map(int_of)
        .collect()
}

fn int_of(v: &Value) -> std::result::Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("expected an int, found {}", v.describe()))
}

fn str_list(v: &Value) -> std::result::Result<Vec<String>, String> {
    list_items(v)
        .ok_or_else(|| format!("expected a list, found {}", v.describe()))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("expected a str, found {}", s.describe()))
        })
        .collect()
}

/// Utterance ids: strings are kept, anything else (MELD's ints) is `None`.
fn utterance_ids(v: &Value) -> std::result::Result<Vec<Option<String>>, String> {
    if let Value::NdArray(a) = v {
        return match (&a.data, a.shape.len()) {
            (ArrayData::Object(items), 1) => Ok(items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect()),
            (_, 1) => Ok(vec![None; a.len()]),
            _ => Err(format!("expected a 1-D array, found shape {:?}", a.shape)),
        };
    }
    Ok(list_items(v)
        .ok_or_else(|| format!("expected a list, found {}", v.describe()))?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect())
}

/// Speaker tags: strings as they are; an int or a one-hot vector becomes `spk<k>`.
fn speaker_list(v: &Value) -> std::result::Result<Vec<String>, String> {
    if let Value::NdArray(a) = v
        && a.shape.len() == 2
    {
        let values = a
            .to_f32()
            .ok_or_else(|| format!("expected a numeric array, found dtype {}", a.dtype.descr))?;
        return values
            .chunks(a.shape[1].max(1))
            .take(a.shape[0])
            .map(one_hot_speaker)
            .collect();
    }
    let items = list_items(v).ok_or_else(|| format!("expected a list, found {}", v.describe()))?;
    items
        .iter()
        .map(|s| match s {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(k) => Ok(format!("spk{k}")),
            other => one_hot_speaker(&numeric_vector(other)?),
        })
        .collect()
}

fn one_hot_speaker(row: &[f32]) -> std::result::Result<String, String> {
    let (k, max) = row
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bk, bv), (k, &v)| {
            if v > bv { (k, v) } else { (bk, bv) }
        });
    if max > 0.0 {
        Ok(format!("spk{k}"))
    } else {
        Err(format!("speaker vector {row:?} has no positive entry"))
    }
}

/// A flat numeric vector: a list of numbers or a 1-D numeric array.
fn numeric_vector(v: &Value) -> std::result::Result<Vec<f32>, String> {
    match v {
        Value::NdArray(a) if a.shape.len() == 1 => a
            .to_f32()
            .ok_or_else(|| format!("expected a numeric array, found dtype {}", a.dtype.descr)),
        Value::NdArray(a) => Err(format!("expected a 1-D array, found shape {:?}", a.shape)),
        other => other
            .as_seq()
            .ok_or_else(|| format!("expected a vector, found {}", other.describe()))?
            .iter()
            .map(|x| {
                x.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| format!("expected a number, found {}", x.describe()))
            })
            .collect(),
    }
}

/// Per-utterance features of one dialogue: a list with one vector (or
/// frame sequence) per utterance, a 2-D array (one row per utterance), or a
/// 3-D array (one frame sequence per utterance).
fn feature_rows(v: &Value) -> std::result::Result<Vec<Features>, String> {
    if let Value::NdArray(a) = v
        && !matches!(a.data, ArrayData::Object(_))
    {
        let values = a
            .to_f32()
            .ok_or_else(|| format!("expected a numeric array, found dtype {}", a.dtype.descr))?;
        return match *a.shape.as_slice() {
            [n, dim] => Ok(values
                .chunks(dim.max(1))
                .take(n)
                .map(|row| Features::vector(row.to_vec()))
                .collect()),
            [n, frames, dim] => {
                let per = frames.checked_mul(dim).filter(|&p| p > 0);
                let Some(per) = per.filter(|p| n.checked_mul(*p) == Some(values.len())) else {
                    return Err(format!(
                        "array of shape {:?} holds no usable frames",
                        a.shape
                    ));
                };
                values
                    .chunks_exact(per)
                    .map(|chunk| {
                        Features::sequence(frames, dim, chunk.to_vec()).map_err(|e| e.to_string())
                    })
                    .collect()
            }
            _ => Err(format!(
                "expected a 2-D or 3-D array, found shape {:?}",
                a.shape
            )),
        };
    }
    let items =
        list_items(v).ok_or_else(|| format!("expected a list or array, found {}", v.describe()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| utterance_features(item).map_err(|e| format!("utterance #{i}: {e}")))
        .collect()
}

fn utterance_features(v: &Value) -> std::result::Result<Features, String> {
    match v {
        Value::NdArray(a) if a.shape.len() == 2 => {
            let data = a.to_f32().ok_or_else(|| {
                format!("expected a numeric array, found dtype {}", a.dtype.descr)
            })?;
            Features::sequence(a.shape[0], a.shape[1], data).map_err(|e| e.to_string())
        }
        Value::List(items) | Value::Tuple(items)
            if items.first().and_then(Value::as_seq).is_some() =>
        {
            let rows = items
                .iter()
                .map(numeric_vector)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let dim = rows.first().map_or(0, Vec::len);
            if let Some(bad) = rows.iter().find(|r| r.len() != dim) {
                return Err(format!("frames of width {dim} and {}", bad.len()));
            }
            Features::sequence(rows.len(), dim, rows.concat()).map_err(|e| e.to_string())
        }
        other => numeric_vector(other).map(Features::vector),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::DType;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn f32_array(shape: Vec<usize>, data: Vec<f32>) -> Value {
        Value::NdArray(NdArray {
            dtype: DType {
                descr: "f4".into(),
                big_endian: false,
            },
            shape,
            data: ArrayData::F32(data),
        })
    }

    fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    /// A 9-item IEMOCAP-layout tuple with `n_train` + 1 test dialogues of two utterances.
    fn iemocap(n_train: usize) -> Vec<Value> {
        let mut dicts: Vec<Vec<(Value, Value)>> = vec![Vec::new(); 7];
        let mut train = Vec::new();
        for d in 0..=n_train {
            let vid = format!("Ses01_{d:02}");
            let row = |v: f32| list(vec![Value::Float(f64::from(v)), Value::Float(1.0)]);
            let per = [
                list(vec![s(&format!("{vid}_F000")), s(&format!("{vid}_M000"))]),
                list(vec![s("F"), s("M")]),
                list(vec![Value::Int(0), Value::Int(5)]),
                list(vec![row(d as f32), row(0.5)]),
                f32_array(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                list(vec![
                    f32_array(vec![1], vec![7.0]),
                    f32_array(vec![1], vec![8.0]),
                ]),
                list(vec![s("a"), s("b")]),
            ];
            for (dict, v) in dicts.iter_mut().zip(per) {
                dict.push((s(&vid), v));
            }
            if d < n_train {
                train.push(s(&vid));
            }
        }
        let test = Value::Set(vec![s(&format!("Ses01_{n_train:02}"))]);
        let mut items: Vec<Value> = dicts.into_iter().map(Value::Dict).collect();
        items.push(list(train));
        items.push(test);
        items
    }

    fn load(items: Vec<Value>) -> Result<Corpus> {
        corpus_from_value(
            Path::new("f.pkl"),
            &Value::Tuple(items),
            &FeaturePickleOptions::default(),
        )
    }

    #[test]
    fn iemocap_layout_loads_with_carved_valid() {
        let c = load(iemocap(10)).unwrap();
        assert_eq!(c.name, "iemocap");
        assert_eq!(c.split(Split::Train).len(), 9);
        assert_eq!(c.split(Split::Valid).len(), 1);
        assert_eq!(
            c.split(Split::Valid)[0].id,
            "Ses01_09",
            "valid is the last train id in sorted order"
        );
        assert_eq!(c.split(Split::Test)[0].id, "Ses01_10");
        let u = &c.split(Split::Train)[3].utterances[1];
        assert_eq!(u.id, "Ses01_03_M000");
        assert_eq!(u.speaker, "M");
        assert_eq!(u.label, Some(Label::Single(5)));
        assert_eq!(u.text.as_deref(), Some("b"));
        assert_eq!(u.features[&Modality::Text].data, vec![0.5, 1.0]);
        assert_eq!(u.features[&Modality::Audio].data, vec![4.0, 5.0, 6.0]);
        assert_eq!(u.features[&Modality::Face].data, vec![8.0]);
        assert_eq!(
            c.modalities(),
            vec![Modality::Text, Modality::Audio, Modality::Face]
        );
    }

    #[test]
    fn carve_valid_sorts_numerically_and_keeps_train_nonempty() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (train, valid) = carve_valid(ids(&["10", "9", "2", "1"]), 0.5);
        assert_eq!((train, valid), (ids(&["1", "2"]), ids(&["9", "10"])));
        let (train, valid) = carve_valid(ids(&["b", "a"]), 0.01);
        assert_eq!(
            (train, valid),
            (ids(&["a"]), ids(&["b"])),
            "a positive fraction gives at least one"
        );
        let (train, valid) = carve_valid(ids(&["a"]), 0.5);
        assert_eq!(
            (train, valid),
            (ids(&["a"]), ids(&[])),
            "never all of train"
        );
        let (_, valid) = carve_valid(ids(&["a", "b"]), 0.0);
        assert!(valid.is_empty());
    }

    #[test]
    fn bad_fraction_is_rejected() {
        let opts = FeaturePickleOptions {
            valid_fraction: 1.0,
            ..Default::default()
        };
        let err =
            corpus_from_value(Path::new("f.pkl"), &Value::Tuple(iemocap(2)), &opts).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidOption {
                    name: "valid_fraction",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn width_mismatch_names_dialogue_and_utterance() {
        let mut items = iemocap(3);
        if let Value::Dict(pairs) = &mut items[4] {
            pairs[1].1 = f32_array(vec![2, 2], vec![1.0; 4]);
        }
        let err = load(items).unwrap_err().to_string();
        assert!(
            err.contains("Ses01_01") && err.contains("videoAudio") && err.contains("width 2"),
            "{err}"
        );
    }

    #[test]
    fn non_finite_names_dialogue_and_utterance() {
        let mut items = iemocap(3);
        if let Value::Dict(pairs) = &mut items[4] {
            pairs[2].1 = f32_array(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, f32::INFINITY, 6.0]);
        }
        let err = load(items).unwrap_err().to_string();
        assert!(
            err.contains("Ses01_02_M000") && err.contains("value 1 is inf"),
            "{err}"
        );
    }

    #[test]
    fn meld_one_hot_speakers_and_int_ids() {
        let mut items = iemocap(2);
        for (d, pairs) in items.iter_mut().take(7).enumerate() {
            let Value::Dict(pairs) = pairs else { continue };
            for (k, v) in pairs.iter_mut() {
                let Value::Str(name) = k else { continue };
                *k = Value::Int(name.trim_start_matches("Ses01_").parse().unwrap());
                if d == 0 {
                    *v = list(vec![Value::Int(0), Value::Int(1)]);
                }
                if d == 1 {
                    let one_hot =
                        |k: usize| list((0..9).map(|i| Value::Int(i64::from(i == k))).collect());
                    *v = list(vec![one_hot(4), one_hot(8)]);
                }
                if d == 2 {
                    *v = list(vec![Value::Int(6), Value::Int(1)]);
                }
            }
        }
        items[7] = list(vec![Value::Int(1), Value::Int(0)]);
        items[8] = list(vec![Value::Int(2)]);
        items.push(Value::Dict(Vec::new()));
        assert_eq!(
            detect_kind(&Value::Tuple(items.clone())),
            Some(FeaturePickleKind::Meld)
        );
        let c = load(items).unwrap();
        assert_eq!(c.name, "meld");
        let u = &c.split(Split::Train)[0].utterances[1];
        assert_eq!((u.id.as_str(), u.speaker.as_str()), ("0_1", "spk8"));
        assert_eq!(c.split(Split::Valid)[0].id, "1");
        assert_eq!(
            c.split(Split::Test)[0].utterances[0].label,
            Some(Label::Single(6))
        );
    }

    #[test]
    fn length_mismatch_names_the_list() {
        let mut items = iemocap(2);
        if let Value::Dict(pairs) = &mut items[6] {
            pairs[0].1 = list(vec![s("only one")]);
        }
        let err = load(items).unwrap_err().to_string();
        assert!(
            err.contains("Ses01_00") && err.contains("videoSentence has 1"),
            "{err}"
        );
    }
}
