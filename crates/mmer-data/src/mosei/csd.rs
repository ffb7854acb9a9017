//! CMU-MultimodalSDK computational sequences (`.csd`) of CMU-MOSEI.
//!
//! # Layout
//! A `.csd` file is HDF5, written by the SDK's `write_CSD`
//! (`mmsdk/mmdatasdk/computational_sequence/file_ops.py`) with h5py:
//!
//! ```text
//! <root name>/                       e.g. "All Labels", "COVAREP", "FACET 4.2"
//!   data/<entry>/features            [T, d] float (or [T, 1] byte strings: words)
//!   data/<entry>/intervals           [T, 2] float: start and end, seconds
//!   metadata/<key>                   [1] JSON string ("root name", "dimension names", ...)
//! ```
//!
//! The SDK reads the first top-level group; so does this loader (the first
//! that has `data`, in HDF5 name order). An `<entry>` is a video id in the
//! released files, or `<video>[<i>]` after the SDK's `align` (one entry per
//! labelled segment: its `final_aligned` output). The SDK's `deploy`
//! writes gzip-compressed datasets, one chunk each; both that and
//! uncompressed files are read, with the pure-Rust reader `hdf5-pure`.
//! Metadata is not read.
//!
//! # Segments and labels
//! `CMU_MOSEI_Labels.csd` ("All Labels") has one row per labelled segment
//! of a video: `[sentiment, happy, sad, anger, surprise, disgust, fear]`
//! (the SDK's MOSEI README), and the segment's interval. Six columns are
//! read as the emotions alone (the older "Emotion Labels" sequence). Row
//! `i` of entry `vid` is segment `vid[i]`, as the SDK's `align` names it;
//! an entry already named `vid[i]` with one row is that segment. Segments
//! whose interval is shorter than [`EPSILON`] are skipped, as the SDK's
//! alignment skips them ([`SkipReason::ZeroLength`]).
//!
//! # Features
//! For each segment and each feature sequence: the entry named like the
//! segment (an aligned file) gives all its frames; otherwise the video's
//! entry gives the frames whose interval overlaps the segment's by more
//! than [`EPSILON`] (the SDK's `__intersect_and_copy`), in stored order.
//! No entry or no overlapping frame: the modality is missing for that
//! segment ([`MoseiReport::missing`]). Words (`CMU_MOSEI_TimestampedWords`)
//! are selected the same way and joined with spaces into
//! [`mmer_core::Utterance::text`], without the SDK's silence token `sp`.
//!
//! # Folds
//! The standard folds are lists of video ids in the SDK's
//! `mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSEI/cmu_mosei_std_folds.py`
//! (2,249 / 300 / 678 videos). They are not shipped with mmer: the user
//! points [`read_folds`] at that file, or at a JSON file
//! `{"train": [...], "valid": [...], "test": [...]}`. A labelled video in
//! no fold is skipped ([`SkipReason::NoFold`]), as the SDK's `get_tensors`
//! skips it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use mmer_core::{Corpus, Modality, Split};

use super::{Assembler, MoseiReport, NonFinite, SkipReason, segment_utterance};
use crate::{Error, Result};

/// The SDK's tolerance for interval ends (`epsilon=10e-6` in its `dataset.py`).
pub const EPSILON: f64 = 1e-5;

/// Deflate's largest expansion (1032:1, rounded): a dataset's values, at
/// 8 bytes each, never exceed this many times the file's size.
const MAX_INFLATE: u64 = 1032;

/// The SDK's token for silence in `TimestampedWords`.
pub const SILENCE: &str = "sp";

/// The files of one CMU-MOSEI load.
#[derive(Debug, Clone, PartialEq)]
pub struct CsdSources {
    /// `CMU_MOSEI_Labels.csd` (or an aligned labels sequence).
    pub labels: PathBuf,
    /// Feature sequences and the modality each becomes, e.g.
    /// `(Modality::Audio, "CMU_MOSEI_COVAREP.csd")`,
    /// `(Modality::Face, "CMU_MOSEI_VisualFacet42.csd")`,
    /// `(Modality::Text, "CMU_MOSEI_TimestampedWordVectors.csd")`; one file
    /// per modality.
    pub features: Vec<(Modality, PathBuf)>,
    /// `CMU_MOSEI_TimestampedWords.csd`, for the transcripts.
    pub words: Option<PathBuf>,
    /// The folds (see [`read_folds`]).
    pub folds: Folds,
}

/// Video ids of the three standard folds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folds {
    /// `standard_train_fold`.
    pub train: Vec<String>,
    /// `standard_valid_fold`.
    pub valid: Vec<String>,
    /// `standard_test_fold`.
    pub test: Vec<String>,
}

impl Folds {
    /// The split of each video, or the first video listed twice.
    fn by_video(&self) -> std::result::Result<HashMap<&str, Split>, String> {
        let mut map = HashMap::new();
        for (split, ids) in [
            (Split::Train, &self.train),
            (Split::Valid, &self.valid),
            (Split::Test, &self.test),
        ] {
            for id in ids {
                if let Some(first) = map.insert(id.as_str(), split) {
                    return Err(format!("video {id} is in the {first} and the {split} fold"));
                }
            }
        }
        Ok(map)
    }
}

/// Reads the standard folds from the SDK's `cmu_mosei_std_folds.py`
/// (`standard_train_fold=[...]`, `standard_valid_fold`,
/// `standard_test_fold`; read as text, never run) or, for any other
/// extension, from JSON `{"train": [...], "valid": [...], "test": [...]}`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming the
/// file for a missing fold or key, a malformed list, or a video in two folds.
pub fn read_folds(path: &Path) -> Result<Folds> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let folds = if path.extension().is_some_and(|e| e == "py") {
        let list = |name: &str| python_list(&text, name).map_err(format);
        Folds {
            train: list("standard_train_fold")?,
            valid: list("standard_valid_fold")?,
            test: list("standard_test_fold")?,
        }
    } else {
        let mut json: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).map_err(|e| {
            format(format!(
                "{e} (expected {{\"train\": [video ids], \"valid\": [...], \"test\": [...]}})"
            ))
        })?;
        let mut take = |key: &str| {
            json.remove(key)
                .ok_or_else(|| format(format!("no key \"{key}\"")))
        };
        let folds = Folds {
            train: take("train")?,
            valid: take("valid")?,
            test: take("test")?,
        };
        if let Some(extra) = json.keys().next() {
            return Err(format(format!(
                "unexpected key \"{extra}\" (the keys are train, valid and test)"
            )));
        }
        folds
    };
    folds.by_video().map_err(format)?;
    Ok(folds)
}

/// The quoted strings of `name=[...]` in Python source.
fn python_list(text: &str, name: &str) -> std::result::Result<Vec<String>, String> {
    let mut rest = None;
    for (at, _) in text.match_indices(name) {
        let after = text[at + name.len()..].trim_start();
        let preceded = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if let Some(value) = after.strip_prefix('=').filter(|_| preceded) {
            rest = Some(value.trim_start());
            break;
        }
    }
    let list = rest.ok_or_else(|| format!("no assignment {name}=[...]"))?;
    let mut chars = list
        .strip_prefix('[')
        .ok_or_else(|| format!("{name} is not a list"))?
        .chars();
    let mut ids = Vec::new();
    loop {
        match chars.next() {
            Some(']') => return Ok(ids),
            Some(c) if c.is_whitespace() || c == ',' => {}
            Some(quote @ ('\'' | '"')) => {
                let mut id = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == quote => break,
                        Some('\\') | None => {
                            return Err(format!(
                                "{name}: unterminated or escaped string after {id:?}"
                            ));
                        }
                        Some(c) => id.push(c),
                    }
                }
                ids.push(id);
            }
            Some(c) => return Err(format!("{name}: unexpected {c:?} after {} ids", ids.len())),
            None => return Err(format!("{name}: the list is not closed")),
        }
    }
}

/// Loads CMU-MOSEI from computational sequences into a validated `mosei`
/// corpus: one single-utterance dialogue per labelled segment, in labels
/// entry order (HDF5 name order) and row order within an entry.
///
/// # Errors
/// - [`Error::Io`] when a file cannot be opened;
/// - [`Error::Hdf5`] naming the file and object for a file that is not
///   HDF5, has no `<root>/data` group, or an entry without `features` or
///   `intervals`, or that cannot be decoded;
/// - [`Error::Format`] naming the file, entry and segment: `features` and
///   `intervals` of different lengths, intervals not `[T, 2]`, labels
///   with other than 6 or 7 columns, an intensity that is negative or not
///   a number, a non-finite feature under [`NonFinite::Error`], two
///   feature files for one modality, a segment id twice;
/// - [`Error::Invalid`] when the corpus breaks a domain invariant (e.g. a
///   feature width that differs between entries).
pub fn load_csd(sources: &CsdSources, non_finite: NonFinite) -> Result<(Corpus, MoseiReport)> {
    let labels_path = sources.labels.as_path();
    let folds = sources.folds.by_video().map_err(|msg| Error::Format {
        path: labels_path.to_path_buf(),
        msg: format!("folds: {msg}"),
    })?;
    let labels = Csd::open(labels_path)?;
    let mut features = Vec::with_capacity(sources.features.len());
    for (modality, path) in &sources.features {
        if features.iter().any(|(m, _)| m == modality) {
            return Err(Error::Format {
                path: path.clone(),
                msg: format!("a second feature file for {modality}"),
            });
        }
        features.push((*modality, Csd::open(path)?));
    }
    let words = sources.words.as_deref().map(Csd::open).transpose()?;

    let mut out = Assembler::new(labels_path, non_finite);
    for entry in &labels.entries {
        let video = entry.split('[').next().unwrap_or(entry);
        let Some(&split) = folds.get(video) else {
            out.skip(entry.clone(), SkipReason::NoFold);
            continue;
        };
        let rows = labels.read(entry)?;
        let width = rows.dim;
        let aligned = rows.len() == 1 && entry.ends_with(']') && entry.contains('[');
        // The video's sequences, read once for all its segments.
        let mut cache: HashMap<usize, Option<Sequence>> = HashMap::new();
        let mut words_cache: Option<Option<Words>> = None;
        for i in 0..rows.len() {
            let id = if aligned {
                entry.clone()
            } else {
                format!("{entry}[{i}]")
            };
            let [start, end] = rows.intervals[i];
            if (end - start).abs() < EPSILON {
                out.skip(id, SkipReason::ZeroLength);
                continue;
            }
            let what = || {
                format!(
                    "{}/data/{entry}/features row {i} (segment {id})",
                    labels.root
                )
            };
            let label = out.label(&rows.values[i * width..(i + 1) * width], &what)?;
            let text = match &words {
                Some(w) if w.has(&id) => Some(w.words(&id)?.text(start, end, true)),
                Some(w) => {
                    if words_cache.is_none() {
                        words_cache = Some(if w.has(video) {
                            Some(w.words(video)?)
                        } else {
                            None
                        });
                    }
                    words_cache
                        .as_ref()
                        .and_then(Option::as_ref)
                        .map(|ws| ws.text(start, end, false))
                }
                None => None,
            };
            let mut u = segment_utterance(&id, video, text, Some(label));
            for (k, (modality, csd)) in features.iter().enumerate() {
                let whole = csd.has(&id);
                if !whole && !cache.contains_key(&k) {
                    let seq = if csd.has(video) {
                        Some(csd.read(video)?)
                    } else {
                        None
                    };
                    cache.insert(k, seq);
                }
                let own;
                let (seq, name) = if whole {
                    own = csd.read(&id)?;
                    (Some(&own), id.as_str())
                } else {
                    (cache.get(&k).and_then(Option::as_ref), video)
                };
                let Some(seq) = seq else {
                    out.missing(*modality);
                    continue;
                };
                let picked: Vec<usize> = (0..seq.len())
                    .filter(|&r| whole || overlaps(seq.intervals[r], start, end))
                    .collect();
                let (Some(&first), Some(&last)) = (picked.first(), picked.last()) else {
                    out.missing(*modality);
                    continue;
                };
                let dim = seq.dim;
                let data: Vec<f32> = picked
                    .iter()
                    .flat_map(|&r| seq.values[r * dim..(r + 1) * dim].iter().map(|&v| v as f32))
                    .collect();
                let what = || {
                    format!(
                        "{}/data/{name}/features rows {first}..={last} (segment {id})",
                        csd.root
                    )
                };
                let f = out.features(&csd.path, &id, *modality, picked.len(), dim, data, &what)?;
                u.features.insert(*modality, f);
            }
            out.push(split, u)?;
        }
    }
    out.finish(true)
}

/// Whether a frame's interval overlaps `[start, end]` by more than [`EPSILON`].
fn overlaps([a, b]: [f64; 2], start: f64, end: f64) -> bool {
    b.min(end) - a.max(start) > EPSILON
}

/// One entry's numeric features: `len × dim` values and their intervals.
#[derive(Debug, Clone)]
struct Sequence {
    dim: usize,
    values: Vec<f64>,
    intervals: Vec<[f64; 2]>,
}

impl Sequence {
    fn len(&self) -> usize {
        self.intervals.len()
    }
}

/// One entry's words and their intervals.
struct Words {
    words: Vec<String>,
    intervals: Vec<[f64; 2]>,
}

impl Words {
    /// The words inside `[start, end]` (all of them when `whole`), without
    /// silences, joined with spaces.
    fn text(&self, start: f64, end: f64, whole: bool) -> String {
        self.words
            .iter()
            .zip(&self.intervals)
            .filter(|(w, iv)| w.as_str() != SILENCE && (whole || overlaps(**iv, start, end)))
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An open computational sequence.
struct Csd {
    path: PathBuf,
    /// The file's size in bytes.
    len: u64,
    file: hdf5_pure::File,
    /// The top-level group (the sequence's root name).
    root: String,
    /// The entries of `<root>/data`.
    entries: BTreeSet<String>,
}

impl Csd {
    fn open(path: &Path) -> Result<Self> {
        // Opening first gives a missing file the crate's usual I/O error.
        let len = std::fs::File::open(path)
            .and_then(|f| f.metadata())
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let hdf5 = |object: &str, e: hdf5_pure::Error| Error::Hdf5 {
            path: path.to_path_buf(),
            object: object.to_string(),
            msg: e.to_string(),
        };
        let file = hdf5_pure::File::open_streaming(path).map_err(|e| hdf5("/", e))?;
        let tops = file.root().groups().map_err(|e| hdf5("/", e))?;
        let mut root = None;
        for top in &tops {
            let children = file
                .group(top)
                .and_then(|g| g.groups())
                .map_err(|e| hdf5(top, e))?;
            if children.iter().any(|c| c == "data") {
                root = Some(top.clone());
                break;
            }
        }
        let root = root.ok_or_else(|| Error::Hdf5 {
            path: path.to_path_buf(),
            object: "/".into(),
            msg: format!(
                "no computational sequence: no top-level group has a \"data\" group (top-level groups: {tops:?})"
            ),
        })?;
        let data = format!("{root}/data");
        let entries = file
            .group(&data)
            .and_then(|g| g.groups())
            .map_err(|e| hdf5(&data, e))?
            .into_iter()
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            len,
            file,
            root,
            entries,
        })
    }

    fn has(&self, entry: &str) -> bool {
        self.entries.contains(entry)
    }

    fn hdf5_err(&self, object: &str, msg: String) -> Error {
        Error::Hdf5 {
            path: self.path.clone(),
            object: object.to_string(),
            msg,
        }
    }

    /// `features` and `intervals` of an entry: the datasets, their shapes
    /// and the intervals, checked against each other.
    fn datasets(&self, entry: &str) -> Result<(hdf5_pure::Dataset, Vec<usize>, Vec<[f64; 2]>)> {
        let group = format!("{}/data/{entry}", self.root);
        let names = self
            .file
            .group(&group)
            .and_then(|g| g.datasets())
            .map_err(|e| self.hdf5_err(&group, e.to_string()))?;
        for key in ["features", "intervals"] {
            if !names.iter().any(|n| n == key) {
                return Err(self.hdf5_err(
                    &group,
                    format!("no \"{key}\" dataset (entry {entry} has {names:?})"),
                ));
            }
        }
        let open = |key: &str| {
            let object = format!("{group}/{key}");
            let ds = self
                .file
                .dataset(&object)
                .map_err(|e| self.hdf5_err(&object, e.to_string()))?;
            let shape = ds
                .shape()
                .map_err(|e| self.hdf5_err(&object, e.to_string()))?
                .into_iter()
                .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
                .collect::<Vec<_>>();
            // A damaged header can claim terabytes, which the reader would
            // try to allocate (and abort on). Deflate expands at most about
            // 1032-fold, so no dataset of this file can hold more.
            let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
            if elements.is_none_or(|n| n.saturating_mul(8) > self.len.saturating_mul(MAX_INFLATE)) {
                return Err(self.hdf5_err(
                    &object,
                    format!(
                        "shape {shape:?} is too large for a file of {} bytes",
                        self.len
                    ),
                ));
            }
            Ok::<_, Error>((object, ds, shape))
        };
        let (iv_object, iv, iv_shape) = open("intervals")?;
        let (_, features, shape) = open("features")?;
        let format = |msg: String| Error::Format {
            path: self.path.clone(),
            msg: format!("{group}: {msg}"),
        };
        let [rows, 2] = *iv_shape.as_slice() else {
            return Err(format(format!(
                "intervals has shape {iv_shape:?}, expected [T, 2]"
            )));
        };
        if shape.len() < 2 && !(shape.len() == 1 && rows == shape[0]) {
            return Err(format(format!(
                "features has shape {shape:?}, expected [T, d]"
            )));
        }
        if shape.first() != Some(&rows) {
            return Err(format(format!(
                "features has {} rows, intervals has {rows}",
                shape.first().copied().unwrap_or(0)
            )));
        }
        let values = iv
            .read_f64()
            .map_err(|e| self.hdf5_err(&iv_object, e.to_string()))?;
        let intervals = values.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        Ok((features, shape, intervals))
    }

    /// An entry's numeric features.
    fn read(&self, entry: &str) -> Result<Sequence> {
        let (features, shape, intervals) = self.datasets(entry)?;
        let object = format!("{}/data/{entry}/features", self.root);
        let values = features
            .read_f64()
            .map_err(|e| self.hdf5_err(&object, e.to_string()))?;
        let dim = shape[1..].iter().product::<usize>();
        if dim == 0 {
            return Err(self.hdf5_err(
                &object,
                format!("features of shape {shape:?} have no columns"),
            ));
        }
        Ok(Sequence {
            dim,
            values,
            intervals,
        })
    }

    /// An entry's words (`features` of byte strings).
    fn words(&self, entry: &str) -> Result<Words> {
        let (features, _, intervals) = self.datasets(entry)?;
        let object = format!("{}/data/{entry}/features", self.root);
        let words = features
            .read_string()
            .map_err(|e| self.hdf5_err(&object, e.to_string()))?;
        if words.len() != intervals.len() {
            return Err(self.hdf5_err(
                &object,
                format!(
                    "{} words for {} intervals: expected [T, 1] strings",
                    words.len(),
                    intervals.len()
                ),
            ));
        }
        Ok(Words { words, intervals })
    }
}

#[cfg(test)]
mod tests {
    use mmer_core::Label;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mosei")
            .join(name)
    }

    fn sources() -> CsdSources {
        CsdSources {
            labels: fixture("labels.csd"),
            features: vec![
                (Modality::Audio, fixture("covarep.csd")),
                (Modality::Face, fixture("facet_aligned.csd")),
            ],
            words: Some(fixture("words.csd")),
            folds: read_folds(&fixture("folds.json")).unwrap(),
        }
    }

    /// Covarep's frame `t` of video number `v`: `100 v + 10 t + k`.
    fn covarep(v: usize, frames: std::ops::Range<usize>) -> Vec<f32> {
        frames
            .flat_map(|t| (0..3).map(move |k| (100 * v + 10 * t + k) as f32))
            .collect()
    }

    #[test]
    fn folds_read_from_the_sdk_file_and_from_json() {
        let py = read_folds(&fixture("cmu_mosei_std_folds.py")).unwrap();
        assert_eq!(py, read_folds(&fixture("folds.json")).unwrap());
        assert_eq!(py.train, ["vidA", "vidB"]);
        assert_eq!(
            (py.valid.as_slice(), py.test.as_slice()),
            (&["vidC".to_string()][..], &["vidD".to_string()][..])
        );
        let list = |text: &str| python_list(text, "standard_test_fold");
        assert_eq!(
            list("x_standard_test_fold=['no']\nstandard_test_fold = [\n 'a', \"b\",\n]").unwrap(),
            ["a", "b"]
        );
        assert!(
            list("standard_test_fold=['a', b]")
                .unwrap_err()
                .contains("unexpected 'b'")
        );
        assert!(
            list("standard_test_fold=['a'")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(
            list("standard_train_fold=[]")
                .unwrap_err()
                .contains("no assignment")
        );
        let dup = Folds {
            train: vec!["a".into()],
            valid: vec![],
            test: vec!["a".into()],
        };
        assert!(
            dup.by_video()
                .unwrap_err()
                .contains("video a is in the train and the test fold")
        );
    }

    #[test]
    fn computational_sequences_load_as_segments() {
        let err = load_csd(&sources(), NonFinite::Error)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("covarep.csd")
                && err.contains("COVAREP/data/vidB/features rows 6..=8 (segment vidB[0])")
                && err.contains("frame 1, column 1 is NaN"),
            "{err}"
        );
        let (c, report) = load_csd(&sources(), NonFinite::Zero).unwrap();
        assert!(report.labelled);
        let ids = |s| c.split(s).iter().map(|d| d.id.as_str()).collect::<Vec<_>>();
        assert_eq!(
            ids(Split::Train),
            ["vidA[0]", "vidA[1]", "vidB[0]", "vidB[1]"]
        );
        assert_eq!(ids(Split::Valid), ["vidC[0]"]);
        assert_eq!(ids(Split::Test), ["vidD[0]"]);
        assert_eq!(
            report.skipped,
            [
                super::super::Skipped {
                    id: "vidA[2]".into(),
                    reason: SkipReason::ZeroLength
                },
                super::super::Skipped {
                    id: "vidX".into(),
                    reason: SkipReason::NoFold
                },
            ]
        );
        let utt = |s, i: usize| &c.split(s)[i].utterances[0];
        let a0 = utt(Split::Train, 0);
        assert_eq!(a0.speaker, "vidA");
        assert_eq!(a0.text.as_deref(), Some("it was fine"));
        assert_eq!(
            a0.label,
            Some(Label::Multi(vec![true, false, false, false, false, false]))
        );
        // [0, 2] s: covarep frames 0..4 of 0.5 s; facet's aligned vidA[0] has 2 frames.
        assert_eq!(a0.features[&Modality::Audio].data, covarep(0, 0..4));
        assert_eq!(a0.features[&Modality::Face].frames, 2);
        assert_eq!(
            a0.features[&Modality::Face].data,
            [5000.0, 0.0, 5001.0, -1.0]
        );
        let a1 = utt(Split::Train, 1);
        assert_eq!(a1.text.as_deref(), Some("really good"));
        assert_eq!(a1.features[&Modality::Audio].data, covarep(0, 4..8));
        assert_eq!(a1.features[&Modality::Face].frames, 3);
        // vidB[0] is [3, 4.5]: frames 6, 7, 8, with frame 7's NaN replaced; all silence.
        let b0 = utt(Split::Train, 2);
        assert_eq!(b0.text, None);
        let mut expected = covarep(1, 6..9);
        expected[4] = 0.0;
        assert_eq!(b0.features[&Modality::Audio].data, expected);
        assert_eq!(
            b0.label,
            Some(Label::Multi(vec![false, true, true, false, false, true]))
        );
        assert_eq!(report.above_scale, 1);
        assert_eq!(report.values_replaced(), 1);
        assert_eq!(report.replaced[0].utterance, "vidB[0]");
        assert_eq!(utt(Split::Train, 3).text.as_deref(), Some("hmm so"));
        // vidC has no facet entry: face missing.
        let c0 = utt(Split::Valid, 0);
        assert!(!c0.features.contains_key(&Modality::Face));
        assert_eq!(report.missing, BTreeMap::from([(Modality::Face, 1)]));
        assert_eq!(c0.text.as_deref(), Some("then"));
        assert_eq!(c0.features[&Modality::Audio].data, covarep(2, 2..6));
        assert_eq!(
            c0.label,
            Some(Label::Multi(vec![false, false, false, false, true, false]))
        );
        let d0 = utt(Split::Test, 0);
        assert_eq!(d0.text.as_deref(), Some("no way"));
        assert_eq!(d0.features[&Modality::Audio].frames, 2);
    }

    #[test]
    fn broken_sequences_name_file_object_and_entry() {
        let with = |labels: &str, covarep: &str| CsdSources {
            labels: fixture(labels),
            features: vec![(Modality::Audio, fixture(covarep))],
            ..sources()
        };
        let err = load_csd(&with("labels_negative.csd", "covarep.csd"), NonFinite::Zero)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("labels_negative.csd")
                && err.contains(
                    "All Labels/data/vidC/features row 0 (segment vidC[0]): anger: intensity"
                )
                && err.contains("is negative"),
            "{err}"
        );
        let err = load_csd(
            &with("labels_missing_intervals.csd", "covarep.csd"),
            NonFinite::Zero,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Hdf5 { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("labels_missing_intervals.csd")
                && err.contains("\"All Labels/data/vidB\"")
                && err.contains("no \"intervals\" dataset"),
            "{err}"
        );
        let err = load_csd(&with("labels.csd", "covarep_mismatch.csd"), NonFinite::Zero)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("covarep_mismatch.csd")
                && err.contains("COVAREP/data/vidD: features has 10 rows, intervals has 9"),
            "{err}"
        );
        let err = load_csd(&with("labels.csd", "missing.csd"), NonFinite::Zero).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let err = load_csd(&with("labels.csd", "folds.json"), NonFinite::Zero).unwrap_err();
        assert!(
            matches!(err, Error::Hdf5 { .. }) && err.to_string().contains("folds.json"),
            "{err}"
        );
    }

    #[test]
    fn damaged_sequences_fail_without_panicking() {
        // Byte flips and truncations of the labels and the gzip sequence:
        // every load returns, Ok or Err; none panics or aborts on a huge
        // claimed shape.
        let dir = tempfile::tempdir().unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (name, damaged) in [("labels.csd", true), ("covarep.csd", false)] {
            let bytes = std::fs::read(fixture(name)).unwrap();
            let mut errors = 0;
            for round in 0..150 {
                let mut b = bytes.clone();
                for _ in 0..1 + round % 4 {
                    let i = next() as usize % b.len();
                    b[i] = next() as u8;
                }
                if round % 10 == 0 {
                    b.truncate(next() as usize % b.len());
                }
                let path = dir.path().join(name);
                std::fs::write(&path, &b).unwrap();
                let mut s = sources();
                if damaged {
                    s.labels = path;
                } else {
                    s.features[0].1 = path;
                }
                errors += usize::from(load_csd(&s, NonFinite::Zero).is_err());
            }
            assert!(errors > 0, "{name}: some damage is detected");
        }
    }
}
