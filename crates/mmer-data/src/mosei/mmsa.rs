//! MMSA's CMU-MOSEI feature pickles: `aligned_50.pkl` and
//! `unaligned_50.pkl` of thuiar/MMSA, and the `feature.pkl` MMSA-FET's
//! `run_dataset` writes.
//!
//! # Layout
//! A pickled dict with `train`, `valid` and `test` (MMSA-FET adds
//! `config`, which is ignored). Each split is a dict of numpy arrays over
//! its `N` segments, as MMSA's README and `MMSA/data_loader.py` and
//! MMSA-FET's `dataset.py` describe them:
//!
//! | key | shape, dtype | read as |
//! | --- | --- | --- |
//! | `id` | `[N]` str (`<U` or object) | segment id `videoid$_$clipid`, kept verbatim; the speaker is `videoid` |
//! | `raw_text` | `[N]` str | [`mmer_core::Utterance::text`] |
//! | `text` | `[N, T, d]` float (BERT, d = 768) | [`Modality::Text`] |
//! | `text_bert` | `[N, 3, T]` (input ids, attention mask, segment ids) | the mask gives the text length; token ids are not features |
//! | `audio` | `[N, T, d]` float (COVAREP, d = 74) | [`Modality::Audio`] |
//! | `vision` | `[N, T, d]` float (FACET, d = 35) | [`Modality::Face`] |
//! | `audio_lengths`, `vision_lengths` | `[N]` int, unaligned files only | valid frames of `audio` / `vision` |
//! | `regression_labels` | `[N]` or `[N, 1]` float, sentiment in `[-3, 3]` | not read (no place in an [`mmer_core::Utterance`]) |
//! | `annotations`, `classification_labels`, `regression_labels_{T,A,V}` | | not read |
//!
//! For MOSEI, MMSA's `config_regression.json` gives `T` = 50 for all three
//! in `aligned_50.pkl` and 50 / 500 / 375 (text / audio / vision) in
//! `unaligned_50.pkl`, with d = 768 / 74 / 35, and 16,326 training
//! segments. A 2-D `[N, d]` feature array is read as one vector per segment.
//!
//! **Emotion labels are not part of MMSA's pickles.** Its MOSEI label file
//! kept the sentiment score only (thuiar/MMSA issue #14, a maintainer:
//! the csv they compiled has no emotion labels, take them from the
//! official release; issue #84, a maintainer: merge the provided pickle
//! with CMU's by video id). No key for them is documented
//! anywhere, so this loader reads one the user names,
//! [`MmsaOptions::labels_key`] (default `emotion_labels`): a float `[N, 6]`
//! array of intensities in [`super::CLASSES`] order, or `[N, 7]` in the
//! SDK's "All Labels" order (sentiment first). Without it the segments have
//! no label and [`MoseiReport::labelled`] is false; with
//! [`MmsaOptions::require_labels`] that is an error. For labelled MOSEI
//! without merging, read the SDK's `.csd` files with [`super::csd`].
//!
//! # Padding
//! MMSA pads every sequence to one length with zeros. With
//! [`MmsaOptions::trim_padding`] (the default) the padding is cut off:
//! - `audio` and `vision` keep `audio_lengths` / `vision_lengths` frames
//!   when those keys exist (unaligned files);
//! - `text` keeps as many frames as `text_bert`'s attention mask (row 1)
//!   has ones, when `text_bert` has the same `T` as `text`;
//! - in aligned files (no `*_lengths`), `audio` and `vision` are aligned to
//!   the text tokens, and keep the text's length when their `T` equals
//!   `text_bert`'s (MMSA's `data_loader.py` does the same for its aligned
//!   missing-modality runs).
//!
//! The valid frames are the first ones ([`Padding::End`], MMSA-FET's
//! default and what MMSA's masks assume) or the last ones
//! ([`Padding::Start`]). A sequence left with no frame is reported missing
//! ([`MoseiReport::missing`]), never a zero array. A length that is
//! negative or longer than the array is an error.
//!
//! # Memory
//! The pickle is read and decoded whole ([`crate::pickle`]): at its peak
//! loading holds the file's bytes and their decoded arrays, about twice
//! the file's size, then the trimmed corpus replaces the arrays split by
//! split. MMSA's `unaligned_50.pkl` for MOSEI is 13.7 GB, too large for a
//! 24 GB machine; `aligned_50.pkl` (50 frames of 877 values per segment,
//! about 4 GB as float32) is within reach.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use mmer_core::{Corpus, Modality, Split};

use super::{Assembler, MoseiReport, NonFinite, Padding, segment_utterance};
use crate::pickle::{self, ArrayData, NdArray, Value};
use crate::{Error, Result};

/// The default [`MmsaOptions::labels_key`].
pub const DEFAULT_LABELS_KEY: &str = "emotion_labels";

/// How to read an MMSA feature pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmsaOptions {
    /// What to do with NaN / infinite feature values.
    pub non_finite: NonFinite,
    /// Where the padding frames are.
    pub padding: Padding,
    /// Cut the padding off (see the module docs); `false` keeps every
    /// sequence at the array's full length.
    pub trim_padding: bool,
    /// The key of the emotion-intensity array, which MMSA itself does not
    /// provide (see the module docs).
    pub labels_key: String,
    /// Fail when [`Self::labels_key`] is absent instead of loading the
    /// segments unlabelled.
    pub require_labels: bool,
}

impl Default for MmsaOptions {
    fn default() -> Self {
        Self {
            non_finite: NonFinite::Error,
            padding: Padding::End,
            trim_padding: true,
            labels_key: DEFAULT_LABELS_KEY.into(),
            require_labels: false,
        }
    }
}

/// Loads an MMSA / MMSA-FET feature pickle into a validated `mosei` corpus,
/// one single-utterance dialogue per segment, in file order.
///
/// # Errors
/// - [`Error::Io`] / [`Error::Pickle`] when the file cannot be read or decoded;
/// - [`Error::Format`], naming the split, key and segment where there is
///   one: a missing `train` / `valid` / `test` or `id` key, an array whose
///   length differs from `id`'s, an array of the wrong shape or dtype, a
///   length outside `0..=T`, a label array with the wrong number of columns
///   or an intensity that is negative or not a number, labels in some
///   splits only (or in none, under [`MmsaOptions::require_labels`]), a
///   non-finite feature under [`NonFinite::Error`], a segment id twice;
/// - [`Error::Invalid`] when the corpus breaks a domain invariant (e.g.
///   feature widths that differ between splits).
pub fn load_mmsa(path: &Path, opts: &MmsaOptions) -> Result<(Corpus, MoseiReport)> {
    let value = pickle::load(path)?;
    mmsa_from_value(path, value, opts)
}

/// Builds the corpus from an already decoded pickle (see [`load_mmsa`]);
/// `path` is only named in errors. The value is consumed so that each
/// split's arrays are freed once its segments are built.
///
/// # Errors
/// As [`load_mmsa`], less the I/O and decoding errors.
pub fn mmsa_from_value(
    path: &Path,
    value: Value,
    opts: &MmsaOptions,
) -> Result<(Corpus, MoseiReport)> {
    let format = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let Value::Dict(pairs) = value else {
        return Err(format(format!(
            "expected a dict with keys train, valid and test (an MMSA feature pickle), found {}",
            value.describe()
        )));
    };
    let mut splits: HashMap<String, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
        .collect();
    let mut assembler = Assembler::new(path, opts.non_finite);
    let mut labelled: Option<(Split, bool)> = None;
    for split in Split::ALL {
        let value = splits.remove(split.as_str()).ok_or_else(|| {
            format(format!(
                "no key \"{split}\" (an MMSA feature pickle is a dict with train, valid and test)"
            ))
        })?;
        let has_labels = read_split(&mut assembler, split, value, opts)?;
        match labelled {
            None => labelled = Some((split, has_labels)),
            Some((first, had)) if had != has_labels => {
                let (with, without) = if had { (first, split) } else { (split, first) };
                return Err(format(format!(
                    "{with} has the label key \"{}\" but {without} has not",
                    opts.labels_key
                )));
            }
            Some(_) => {}
        }
    }
    let labelled = labelled.is_some_and(|(_, l)| l);
    if !labelled && opts.require_labels {
        return Err(format(format!(
            "no split has the label key \"{}\" (MMSA's own MOSEI pickles carry no emotion labels)",
            opts.labels_key
        )));
    }
    assembler.finish(labelled)
}

/// A feature array of one split and how to cut one segment's frames out of it.
struct FeatureArray {
    key: &'static str,
    modality: Modality,
    array: NdArray,
    /// Valid frames per segment, when known.
    lengths: Option<Vec<usize>>,
}

/// Reads one split into the assembler; returns whether it had labels.
fn read_split(
    out: &mut Assembler<'_>,
    split: Split,
    value: Value,
    opts: &MmsaOptions,
) -> Result<bool> {
    let Value::Dict(pairs) = value else {
        return Err(out.format(format!(
            "{split}: expected a dict of arrays, found {}",
            value.describe()
        )));
    };
    let mut keys: HashMap<String, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
        .collect();
    let err = |msg: String| out.format(format!("{split}: {msg}"));

    let Some(ids) = keys.remove("id") else {
        let mut found: Vec<&String> = keys.keys().collect();
        found.sort();
        return Err(err(format!("no key \"id\" (keys: {found:?})")));
    };
    let ids = strings(&ids).map_err(|e| err(format!("id: {e}")))?;
    let n = ids.len();
    let check_len = |key: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(err(format!("{key} has {len} rows, id has {n}")))
        }
    };

    let texts = match keys.remove("raw_text") {
        Some(v) => {
            let texts = strings(&v).map_err(|e| err(format!("raw_text: {e}")))?;
            check_len("raw_text", texts.len())?;
            Some(texts)
        }
        None => None,
    };

    let labels = match keys.remove(opts.labels_key.as_str()) {
        Some(v) => {
            let (rows, width) = matrix(&v).map_err(|e| err(format!("{}: {e}", opts.labels_key)))?;
            check_len(&opts.labels_key, rows.len() / width.max(1))?;
            Some((rows, width))
        }
        None => None,
    };

    // Text lengths from text_bert's attention mask: [N, 3, T], row 1.
    let mask = match keys.remove("text_bert") {
        Some(Value::NdArray(a)) => {
            let [rows, 3, t] = *a.shape.as_slice() else {
                return Err(err(format!(
                    "text_bert: expected shape [N, 3, T] (ids, mask, segment ids), found {:?}",
                    a.shape
                )));
            };
            check_len("text_bert", rows)?;
            let mut lengths = Vec::with_capacity(rows);
            for i in 0..rows {
                let row = numeric(&a, (i * 3 + 1) * t..(i * 3 + 2) * t)
                    .map_err(|e| err(format!("text_bert: {e}")))?;
                lengths.push(row.iter().filter(|&&m| m != 0.0).count());
            }
            Some((t, lengths))
        }
        Some(other) => {
            return Err(err(format!(
                "text_bert: expected an ndarray, found {}",
                other.describe()
            )));
        }
        None => None,
    };

    let mut features = Vec::new();
    for (key, lengths_key, modality) in [
        ("text", None, Modality::Text),
        ("audio", Some("audio_lengths"), Modality::Audio),
        ("vision", Some("vision_lengths"), Modality::Face),
    ] {
        let lengths = match lengths_key.and_then(|k| keys.remove(k).map(|v| (k, v))) {
            Some((k, v)) => {
                let lengths = read_lengths(&v).map_err(|e| err(format!("{k}: {e}")))?;
                check_len(k, lengths.len())?;
                Some((k, lengths))
            }
            None => None,
        };
        let Some(value) = keys.remove(key) else {
            if let Some((k, _)) = lengths {
                return Err(err(format!("{k} is given but {key} is not")));
            }
            continue;
        };
        let Value::NdArray(array) = value else {
            return Err(err(format!(
                "{key}: expected a numeric ndarray, found {}",
                value.describe()
            )));
        };
        if !matches!(
            array.data,
            ArrayData::F32(_) | ArrayData::F64(_) | ArrayData::Int(_) | ArrayData::Bool(_)
        ) {
            return Err(err(format!(
                "{key}: expected a numeric ndarray, found dtype {}",
                array.dtype.descr
            )));
        }
        let t = match *array.shape.as_slice() {
            [rows, _] => {
                check_len(key, rows)?;
                if let Some((k, _)) = lengths {
                    return Err(err(format!(
                        "{k} is given but {key} has shape {:?}, one vector per segment",
                        array.shape
                    )));
                }
                None
            }
            [rows, t, _] => {
                check_len(key, rows)?;
                Some(t)
            }
            _ => {
                return Err(err(format!(
                    "{key}: expected shape [N, T, d] or [N, d], found {:?}",
                    array.shape
                )));
            }
        };
        let lengths = match (t, lengths) {
            (_, _) if !opts.trim_padding => None,
            (Some(t), Some((k, lengths))) => {
                if let Some(i) = lengths.iter().position(|&l| l > t) {
                    return Err(err(format!(
                        "{k}[{i}] = {} for segment {} exceeds the {t} frames of {key}",
                        lengths[i], ids[i]
                    )));
                }
                Some(lengths)
            }
            // Text, and aligned audio/vision: the text mask, when it matches.
            (Some(t), None) => mask
                .as_ref()
                .filter(|(mt, _)| *mt == t)
                .map(|(_, l)| l.clone()),
            (None, _) => None,
        };
        features.push(FeatureArray {
            key,
            modality,
            array,
            lengths,
        });
    }
    if features.is_empty() && mask.is_none() && texts.is_none() {
        return Err(err(
            "no text, audio or vision array and no raw_text: nothing to load".into(),
        ));
    }

    for (i, id) in ids.iter().enumerate() {
        let video = id.split("$_$").next().unwrap_or(id);
        let label = match &labels {
            Some((rows, width)) => {
                let row = &rows[i * width..(i + 1) * width];
                Some(out.label(row, &|| {
                    format!("{split}: {} of segment {id}", opts.labels_key)
                })?)
            }
            None => None,
        };
        let mut u = segment_utterance(id, video, texts.as_ref().map(|t| t[i].clone()), label);
        for f in &features {
            let (frames, dim, data) = segment_frames(f, i, opts.padding)
                .map_err(|e| out.format(format!("{split}: {}: {e}", f.key)))?;
            if frames == 0 {
                out.missing(f.modality);
                continue;
            }
            let what = || format!("{split}: {} of segment {id}", f.key);
            let path = out.path;
            let features = out.features(path, id, f.modality, frames, dim, data, &what)?;
            u.features.insert(f.modality, features);
        }
        out.push(split, u)?;
    }
    Ok(labels.is_some())
}

/// Segment `i`'s valid frames of a feature array: (frames, dim, values).
fn segment_frames(
    f: &FeatureArray,
    i: usize,
    padding: Padding,
) -> std::result::Result<(usize, usize, Vec<f32>), String> {
    match *f.array.shape.as_slice() {
        [_, dim] => Ok((1, dim, numeric(&f.array, i * dim..(i + 1) * dim)?)),
        [_, t, dim] => {
            let len = f.lengths.as_ref().map_or(t, |l| l[i]);
            let frames = match padding {
                Padding::End => 0..len,
                Padding::Start => t - len..t,
            };
            let start = (i * t + frames.start) * dim;
            let data = numeric(&f.array, start..start + len * dim)?;
            Ok((len, dim, data))
        }
        _ => Err(format!("unexpected shape {:?}", f.array.shape)),
    }
}

/// Elements `range` of a numeric array as `f32`, without copying the rest.
fn numeric(a: &NdArray, range: Range<usize>) -> std::result::Result<Vec<f32>, String> {
    let out_of_range = || format!("array of shape {:?} has no elements {range:?}", a.shape);
    Ok(match &a.data {
        ArrayData::F32(v) => v.get(range.clone()).ok_or_else(out_of_range)?.to_vec(),
        ArrayData::F64(v) => v
            .get(range.clone())
            .ok_or_else(out_of_range)?
            .iter()
            .map(|&x| x as f32)
            .collect(),
        ArrayData::Int(v) => v
            .get(range.clone())
            .ok_or_else(out_of_range)?
            .iter()
            .map(|&x| x as f32)
            .collect(),
        ArrayData::Bool(v) => v
            .get(range.clone())
            .ok_or_else(out_of_range)?
            .iter()
            .map(|&b| if b { 1.0 } else { 0.0 })
            .collect(),
        ArrayData::Object(_) | ArrayData::Raw(_) => {
            return Err(format!(
                "expected a numeric array, found dtype {}",
                a.dtype.descr
            ));
        }
    })
}

/// A 2-D numeric array or a list of equal-length number lists, as
/// (row-major `f64` values, width).
fn matrix(v: &Value) -> std::result::Result<(Vec<f64>, usize), String> {
    match v {
        Value::NdArray(a) => {
            let [_, width] = *a.shape.as_slice() else {
                return Err(format!(
                    "expected shape [N, 6] or [N, 7], found {:?}",
                    a.shape
                ));
            };
            let values = a.to_f64().ok_or_else(|| {
                format!("expected a numeric array, found dtype {}", a.dtype.descr)
            })?;
            Ok((values, width))
        }
        other => {
            let rows = other
                .as_seq()
                .ok_or_else(|| format!("expected an array, found {}", other.describe()))?;
            let mut width = None;
            let mut values = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let row: Vec<f64> = match row {
                    Value::NdArray(a) if a.shape.len() == 1 => a.to_f64(),
                    other => other
                        .as_seq()
                        .and_then(|xs| xs.iter().map(Value::as_f64).collect()),
                }
                .ok_or_else(|| format!("row {i} is not a list of numbers"))?;
                if *width.get_or_insert(row.len()) != row.len() {
                    return Err(format!(
                        "row {i} has {} columns, row 0 has {width:?}",
                        row.len()
                    ));
                }
                values.extend(row);
            }
            Ok((values, width.unwrap_or(0)))
        }
    }
}

/// Sequence lengths: a 1-D integer array or a list of ints.
fn read_lengths(v: &Value) -> std::result::Result<Vec<usize>, String> {
    let ints: Vec<i64> = match v {
        Value::NdArray(a) if a.shape.len() == 1 => match &a.data {
            ArrayData::Int(v) => v.clone(),
            ArrayData::F32(_) | ArrayData::F64(_) => a
                .to_f64()
                .unwrap_or_default()
                .into_iter()
                .map(|f| {
                    if f.fract() == 0.0 {
                        Ok(f as i64)
                    } else {
                        Err(format!("length {f} is not a whole number"))
                    }
                })
                .collect::<std::result::Result<_, _>>()?,
            _ => return Err(format!("expected integers, found dtype {}", a.dtype.descr)),
        },
        Value::NdArray(a) => return Err(format!("expected shape [N], found {:?}", a.shape)),
        other => other
            .as_seq()
            .ok_or_else(|| format!("expected a list or array, found {}", other.describe()))?
            .iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| format!("expected an int, found {}", x.describe()))
            })
            .collect::<std::result::Result<_, _>>()?,
    };
    ints.into_iter()
        .enumerate()
        .map(|(i, l)| usize::try_from(l).map_err(|_| format!("length {l} at row {i} is negative")))
        .collect()
}

/// A list of strings: a Python list/tuple, an object array, or a numpy
/// `<U` / `S` string array (which the pickle reader keeps as raw bytes).
pub(crate) fn strings(v: &Value) -> std::result::Result<Vec<String>, String> {
    let item = |(i, s): (usize, &Value)| match s {
        Value::Str(s) => Ok(s.clone()),
        Value::Bytes(b) => {
            String::from_utf8(b.clone()).map_err(|_| format!("item {i} is not UTF-8"))
        }
        other => Err(format!("item {i} is {}, expected a str", other.describe())),
    };
    match v {
        Value::NdArray(a) if a.shape.len() != 1 => {
            Err(format!("expected a 1-D array, found shape {:?}", a.shape))
        }
        Value::NdArray(a) => match &a.data {
            ArrayData::Object(items) => items.iter().enumerate().map(item).collect(),
            ArrayData::Raw(raw) => fixed_width_strings(a, raw),
            _ => Err(format!("expected strings, found dtype {}", a.dtype.descr)),
        },
        other => other
            .as_seq()
            .ok_or_else(|| format!("expected a list of str, found {}", other.describe()))?
            .iter()
            .enumerate()
            .map(item)
            .collect(),
    }
}

/// Decodes numpy's fixed-width `U` (UCS-4) and `S` (bytes) arrays;
/// trailing NULs are padding, as numpy strips them.
fn fixed_width_strings(a: &NdArray, raw: &[u8]) -> std::result::Result<Vec<String>, String> {
    let n = a.shape[0];
    let kind = a.dtype.descr.chars().next();
    if n == 0 {
        return Ok(Vec::new());
    }
    if !raw.len().is_multiple_of(n) {
        return Err(format!(
            "{} bytes do not divide into {n} strings of dtype {}",
            raw.len(),
            a.dtype.descr
        ));
    }
    let width = raw.len() / n;
    raw.chunks_exact(width.max(1))
        .take(n)
        .enumerate()
        .map(|(i, item)| match kind {
            Some('U') if width.is_multiple_of(4) => {
                let mut s = String::with_capacity(width / 4);
                for c in item.chunks_exact(4) {
                    let c = [c[0], c[1], c[2], c[3]];
                    let code = if a.dtype.big_endian {
                        u32::from_be_bytes(c)
                    } else {
                        u32::from_le_bytes(c)
                    };
                    s.push(
                        char::from_u32(code).ok_or_else(|| {
                            format!("item {i} has the invalid code point {code:#x}")
                        })?,
                    );
                }
                Ok(s.trim_end_matches('\0').to_string())
            }
            Some('S') => {
                let end = item.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                String::from_utf8(item[..end].to_vec())
                    .map_err(|_| format!("item {i} is not UTF-8"))
            }
            _ => Err(format!("expected strings, found dtype {}", a.dtype.descr)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mmer_core::Features;

    use super::*;
    use mmer_core::Label;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mosei")
            .join(name)
    }

    fn load(name: &str, opts: &MmsaOptions) -> Result<(Corpus, MoseiReport)> {
        load_mmsa(&fixture(name), opts)
    }

    /// The fixture's value of utterance `i`, frame `t`, column `k`.
    fn pattern(base: f32, i: usize, frames: Range<usize>, dim: usize) -> Vec<f32> {
        frames
            .flat_map(|t| (0..dim).map(move |k| base + (100 * i + 10 * t + k) as f32))
            .collect()
    }

    fn seq(f: &Features) -> (usize, usize) {
        (f.frames, f.dim)
    }

    #[test]
    fn unaligned_pickle_loads_trimmed_with_labels() {
        let (c, report) = load("mmsa_unaligned.pkl", &MmsaOptions::default()).unwrap();
        assert_eq!(c.name, "mosei");
        assert!(c.labels.multi_label && report.labelled);
        let sizes: Vec<usize> = Split::ALL.iter().map(|&s| c.split(s).len()).collect();
        assert_eq!(sizes, [3, 1, 2]);
        let train = c.split(Split::Train);
        assert_eq!(train[0].id, "vidA$_$1");
        let u = &train[0].utterances[0];
        assert_eq!((u.id.as_str(), u.speaker.as_str()), ("vidA$_$1", "vidA"));
        assert_eq!(u.text.as_deref(), Some("it was fine"));
        // [1, 1/3, 0, 0, 0, 0, 0]: sentiment dropped, happiness 1/3 > 0.
        assert_eq!(
            u.label,
            Some(Label::Multi(vec![true, false, false, false, false, false]))
        );
        // Lengths: text from the text_bert mask (6, 4, 3), audio 8/5/2, vision 5/0/3.
        assert_eq!(seq(&u.features[&Modality::Text]), (6, 4));
        assert_eq!(seq(&u.features[&Modality::Audio]), (8, 3));
        assert_eq!(seq(&u.features[&Modality::Face]), (5, 2));
        let u1 = &train[1].utterances[0];
        assert_eq!(u1.features[&Modality::Text].data, pattern(0.0, 1, 0..4, 4));
        assert_eq!(
            u1.features[&Modality::Audio].data,
            pattern(1000.0, 1, 0..5, 3)
        );
        assert!(
            !u1.features.contains_key(&Modality::Face),
            "vision_lengths 0: face missing, not zeros"
        );
        assert_eq!(report.missing.get(&Modality::Face), Some(&1));
        let u2 = &train[2].utterances[0];
        assert_eq!(
            u2.label,
            Some(Label::Multi(vec![false, true, true, false, false, true]))
        );
        assert_eq!(report.above_scale, 1, "the 3 1/3 of vidB$_$0");
        let valid = &c.split(Split::Valid)[0].utterances[0];
        assert_eq!(valid.label, Some(Label::Multi(vec![false; 6])));
        assert_eq!(seq(&valid.features[&Modality::Audio]), (3, 3));
        let test = &c.split(Split::Test)[1].utterances[0];
        assert_eq!(test.id, "vidD$_$3");
        assert_eq!(
            test.features[&Modality::Audio].data,
            pattern(1000.0, 1, 0..1, 3)
        );
        assert!(report.replaced.is_empty() && report.skipped.is_empty());
    }

    #[test]
    fn untrimmed_and_start_padding() {
        let opts = MmsaOptions {
            trim_padding: false,
            ..Default::default()
        };
        let (c, report) = load("mmsa_unaligned.pkl", &opts).unwrap();
        let u = &c.split(Split::Train)[1].utterances[0];
        assert_eq!(seq(&u.features[&Modality::Text]), (6, 4));
        assert_eq!(seq(&u.features[&Modality::Face]), (5, 2));
        assert!(report.missing.is_empty());
        // Read as if padded at the start: the last 5 of 8 audio frames.
        let opts = MmsaOptions {
            padding: Padding::Start,
            ..Default::default()
        };
        let (c, _) = load("mmsa_unaligned.pkl", &opts).unwrap();
        // The fixture pads at the end, so frames 3..8 are 2 data frames and 3 zero ones.
        let audio = &c.split(Split::Train)[1].utterances[0].features[&Modality::Audio];
        assert_eq!(seq(audio), (5, 3));
        assert_eq!(audio.data[..6], pattern(1000.0, 1, 3..5, 3));
        assert!(audio.data[6..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn aligned_pickle_non_finite_is_an_error_or_replaced_and_reported() {
        let err = load("mmsa_aligned.pkl", &MmsaOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mmsa_aligned.pkl")
                && err.contains("train: audio of segment vidB$_$0")
                && err.contains("frame 1, column 2 is -inf")
                && err.contains("non_finite = zero"),
            "{err}"
        );
        let opts = MmsaOptions {
            non_finite: NonFinite::Zero,
            ..Default::default()
        };
        let (c, report) = load("mmsa_aligned.pkl", &opts).unwrap();
        assert!(
            !report.labelled,
            "MMSA's own pickles have no emotion labels"
        );
        assert_eq!(report.values_replaced(), 1);
        assert_eq!(report.replaced[0].utterance, "vidB$_$0");
        assert_eq!(report.replaced[0].modality, Modality::Audio);
        let u = &c.split(Split::Train)[1].utterances[0];
        assert_eq!(u.label, None);
        assert_eq!(u.text.as_deref(), Some("w"));
        // Aligned: no *_lengths; audio and vision take the text mask's length (3).
        for m in [Modality::Text, Modality::Audio, Modality::Face] {
            assert_eq!(u.features[&m].frames, 3, "{m}");
        }
        assert_eq!(
            u.features[&Modality::Audio].data[5],
            0.0,
            "the -inf, replaced"
        );
        assert_eq!(
            c.split(Split::Test)[0].utterances[0].features[&Modality::Face].frames,
            2
        );
        let opts = MmsaOptions {
            non_finite: NonFinite::Zero,
            require_labels: true,
            ..Default::default()
        };
        let err = load("mmsa_aligned.pkl", &opts).unwrap_err().to_string();
        assert!(
            err.contains("\"emotion_labels\"") && err.contains("no split"),
            "{err}"
        );
    }

    #[test]
    fn broken_pickles_name_file_key_and_segment() {
        for (name, wanted) in [
            (
                "mmsa_missing_key.pkl",
                &["valid: no key \"id\"", "\"audio\""][..],
            ),
            (
                "mmsa_length_mismatch.pkl",
                &["train: audio has 2 rows, id has 3"][..],
            ),
            (
                "mmsa_bad_label.pkl",
                &["test: emotion_labels of segment vidD$_$3: surprise: intensity -1 is negative"][..],
            ),
        ] {
            let err = load(name, &MmsaOptions::default()).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{name}: {err}");
            let err = err.to_string();
            assert!(err.contains(name), "{err}");
            for w in wanted {
                assert!(err.contains(w), "{name}: {err}");
            }
        }
    }

    fn array(shape: Vec<usize>, data: ArrayData, descr: &str) -> Value {
        Value::NdArray(NdArray {
            dtype: pickle::DType {
                descr: descr.into(),
                big_endian: false,
            },
            shape,
            data,
        })
    }

    /// A minimal split: two segments with 3-frame audio of width 1.
    fn split(lengths: Vec<i64>, labels: Option<Vec<f64>>) -> Value {
        let mut pairs = vec![
            (
                Value::Str("id".into()),
                Value::List(vec![Value::Str("v$_$0".into()), Value::Str("v$_$1".into())]),
            ),
            (
                Value::Str("audio".into()),
                array(vec![2, 3, 1], ArrayData::F32(vec![1.0; 6]), "f4"),
            ),
            (
                Value::Str("audio_lengths".into()),
                Value::List(lengths.into_iter().map(Value::Int).collect()),
            ),
        ];
        if let Some(labels) = labels {
            pairs.push((
                Value::Str("emotion_labels".into()),
                array(vec![2, labels.len() / 2], ArrayData::F64(labels), "f8"),
            ));
        }
        Value::Dict(pairs)
    }

    fn corpus(train: Value, rest: Value) -> Result<(Corpus, MoseiReport)> {
        // The test split's ids differ from train's: "v$_$0x", "v$_$1x".
        let mut test = rest;
        if let Value::Dict(pairs) = &mut test {
            pairs[0].1 = Value::List(vec![
                Value::Str("v$_$0x".into()),
                Value::Str("v$_$1x".into()),
            ]);
        }
        let top = Value::Dict(vec![
            (Value::Str("train".into()), train),
            (
                Value::Str("valid".into()),
                Value::Dict(vec![
                    (Value::Str("id".into()), Value::List(vec![])),
                    (
                        Value::Str("audio".into()),
                        array(vec![0, 3, 1], ArrayData::F32(vec![]), "f4"),
                    ),
                ]),
            ),
            (Value::Str("test".into()), test),
        ]);
        mmsa_from_value(Path::new("m.pkl"), top, &MmsaOptions::default())
    }

    #[test]
    fn lengths_and_label_rules() {
        let (c, _) = corpus(split(vec![3, 1], None), split(vec![2, 2], None)).unwrap();
        assert_eq!(
            c.split(Split::Train)[1].utterances[0].features[&Modality::Audio].frames,
            1
        );
        let err = corpus(split(vec![4, 1], None), split(vec![2, 2], None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("audio_lengths[0] = 4 for segment v$_$0 exceeds the 3 frames of audio"),
            "{err}"
        );
        let err = corpus(split(vec![-1, 1], None), split(vec![2, 2], None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("audio_lengths: length -1 at row 0 is negative"),
            "{err}"
        );
        let six = |x: f64| {
            Some(vec![
                0.0, x, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ])
        };
        let err = corpus(
            split(vec![3, 3], six(f64::NAN)),
            split(vec![2, 2], six(0.0)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("train: emotion_labels of segment v$_$0: sadness: intensity NaN"),
            "{err}"
        );
        let err = corpus(split(vec![3, 3], six(1.0)), split(vec![2, 2], None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train has the label key \"emotion_labels\" but valid has not"),
            "{err}"
        );
        let err = corpus(
            split(vec![3, 3], Some(vec![1.0; 10])),
            split(vec![2, 2], None),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("5 label columns"), "{err}");
    }
}
