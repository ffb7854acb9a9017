//! The media feature store: per-utterance feature *sequences* extracted from
//! media files (issue 4), keyed by utterance id, beside the text-embedding
//! tables of [`crate::store`].
//!
//! # Layout
//! ```text
//! <root>/manifest.json                  extractor fingerprint + one StreamInfo per stream
//! <root>/utterances/<key>.safetensors   one file per utterance (key = file_key(id))
//! <root>/index.json                     every utterance: id, file, source, presence
//! ```
//! Each utterance file holds, per stream `s` (e.g. `audio`,
//! `audio.utterance`), three tensors: `s.data` f32 `[T, dim]`, `s.times`
//! f32 `[T, 2]` (start, end in seconds of the source file) and `s.mask` u8
//! `[T]` (1 = the frame holds an observation, 0 = a gap such as digital
//! silence or a keyframe without a face). Its safetensors `__metadata__`
//! carries the [`RecordHeader`]: id, source path, the source's size and
//! mtime, the extractor fingerprint and the presence of every modality.
//!
//! # Why one file per utterance
//! Extraction runs file by file in parallel and must be resumable: an
//! interrupted run loses only the files in flight, because each record is
//! written to a temporary name and renamed into place. A re-run reads just
//! the header of each record to decide whether to skip it. `index.json` is a
//! convenience rebuilt from the records at the end of every run; readers
//! that find it stale can call [`MediaStore::rebuild_index`].
//!
//! A modality that is missing is recorded as such ([`Presence`]) and has no
//! tensors — never a zero array (DESIGN §1).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io_err, store_err};
use crate::{Corpus, Error, Features, Modality, Result};

/// Format version of manifest, index and records.
pub const SCHEMA_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const INDEX: &str = "index.json";
const RECORDS: &str = "utterances";
/// Largest safetensors header accepted when reading a record's metadata.
const MAX_HEADER_BYTES: u64 = 64 << 20;

/// Time resolution of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A sequence of frames or windows (`T ≥ 1` rows).
    Frames,
    /// One utterance-level vector (`T = 1`).
    Utterance,
}

/// Names one stream of a record: a modality at a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamKey {
    /// The modality.
    pub modality: Modality,
    /// Its time resolution.
    pub level: Level,
}

impl StreamKey {
    /// The frame-sequence stream of `modality`.
    pub fn frames(modality: Modality) -> Self {
        Self {
            modality,
            level: Level::Frames,
        }
    }

    /// The utterance-level stream of `modality`.
    pub fn utterance(modality: Modality) -> Self {
        Self {
            modality,
            level: Level::Utterance,
        }
    }

    /// Tensor-name prefix: `audio` for frames, `audio.utterance` for vectors.
    pub fn name(self) -> String {
        match self.level {
            Level::Frames => self.modality.as_str().to_string(),
            Level::Utterance => format!("{}.utterance", self.modality),
        }
    }

    /// Inverse of [`StreamKey::name`].
    pub fn parse(name: &str) -> Option<Self> {
        let (m, level) = match name.split_once('.') {
            Some((m, "utterance")) => (m, Level::Utterance),
            Some(_) => return None,
            None => (name, Level::Frames),
        };
        let modality = Modality::ALL.into_iter().find(|x| x.as_str() == m)?;
        Some(Self { modality, level })
    }
}

/// Whether a modality of an utterance holds data, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Extracted; its streams are in the record.
    Present,
    /// The source has no such stream (a video without sound).
    Absent,
    /// The stream exists but holds nothing usable (empty or digital silence).
    Silent,
    /// The stream exists but the detector found nothing (e.g. no face).
    NotDetected,
    /// Not extracted by this run's extractors.
    NotExtracted,
}

/// Description of one stream, shared by every record (in the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Width of a row.
    pub dim: usize,
    /// Name of each column, `dim` of them.
    pub names: Vec<String>,
    /// What a row is (e.g. "mean of 10 ms LLDs over 100 ms windows").
    pub description: String,
}

/// What the store holds, written once per extraction configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Fingerprint of the extractor configuration; records made with
    /// another fingerprint are stale.
    pub fingerprint: String,
    /// Streams by [`StreamKey::name`].
    pub streams: BTreeMap<String, StreamInfo>,
}

/// Identity of a source file when it was extracted: a re-run re-extracts a
/// file whose size or modification time changed, or an utterance whose time
/// range in it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStamp {
    /// Size, bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 if unknown).
    pub mtime_ns: u128,
    /// The utterance's `[start, end)` in the file, milliseconds (absent:
    /// the whole file; older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_ms: Option<(u64, u64)>,
}

impl SourceStamp {
    /// The stamp of `path` now.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            size: meta.len(),
            mtime_ns,
            range_ms: None,
        })
    }

    /// This stamp for the part `range_ms` of the file.
    pub fn with_range(self, range_ms: Option<(u64, u64)>) -> Self {
        Self { range_ms, ..self }
    }
}

/// Everything about a record except its tensors (the safetensors metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordHeader {
    /// Utterance id.
    pub id: String,
    /// Source media file, as given (lossy UTF-8 for display).
    pub source: String,
    /// The source's stamp at extraction time.
    pub stamp: SourceStamp,
    /// Extractor fingerprint ([`Manifest::fingerprint`]).
    pub fingerprint: String,
    /// Presence of each modality the extractors handle.
    pub presence: BTreeMap<Modality, Presence>,
    /// Source duration, seconds, when known.
    pub duration_s: Option<f64>,
}

/// One stream of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// `[T, dim]` values.
    pub features: Features,
    /// `[T]` (start, end) seconds in the source.
    pub times: Vec<[f32; 2]>,
    /// `[T]` true where the row is an observation.
    pub mask: Vec<bool>,
}

impl Stream {
    /// Checks that times and mask have one entry per row and values are finite.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::NonFinite`].
    pub fn validate(&self, id: &str, name: &str) -> Result<()> {
        let t = self.features.frames;
        for (what, got) in [("times", self.times.len()), ("mask", self.mask.len())] {
            if got != t {
                return Err(Error::ShapeMismatch {
                    what: format!("utterance {id}: stream {name} {what}"),
                    shape: vec![t],
                    expected: t,
                    got,
                });
            }
        }
        if let Some(index) = self.features.first_non_finite() {
            return Err(Error::NonFinite {
                utterance: id.to_string(),
                modality: name.to_string(),
                index,
            });
        }
        Ok(())
    }

    /// The rows whose mask is set, as a feature array (`None` if none is).
    pub fn observed(&self) -> Option<Features> {
        let dim = self.features.dim;
        let data: Vec<f32> = self
            .features
            .data
            .chunks_exact(dim.max(1))
            .zip(&self.mask)
            .filter(|(_, m)| **m)
            .flat_map(|(row, _)| row.iter().copied())
            .collect();
        let frames = self.mask.iter().filter(|m| **m).count();
        (frames > 0).then_some(Features { frames, dim, data })
    }
}

/// One utterance's record: header plus streams by key.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Identity, provenance and presence.
    pub header: RecordHeader,
    /// The extracted streams.
    pub streams: BTreeMap<StreamKey, Stream>,
}

/// One row of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Utterance id.
    pub id: String,
    /// Record file, relative to the store root.
    pub file: String,
    /// Source media file.
    pub source: String,
    /// Presence of each modality.
    pub presence: BTreeMap<Modality, Presence>,
    /// Rows of each stream.
    pub frames: BTreeMap<String, usize>,
}

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Fingerprint of the records listed (stale ones are left out).
    pub fingerprint: String,
    /// Records in id order.
    pub utterances: Vec<IndexEntry>,
}

/// What [`MediaStore::attach`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachReport {
    /// Utterances of the corpus found in the store.
    pub matched: usize,
    /// Utterances of the corpus not in the store.
    pub unmatched: usize,
    /// Features attached, per modality.
    pub attached: BTreeMap<Modality, usize>,
}

/// File-system-safe record name of an utterance id: the id itself when it
/// is plain (`[A-Za-z0-9._-]`, ≤ 96 bytes, not starting with `.`), else a
/// sanitised prefix plus 12 hex digits of its SHA-256, so distinct ids never
/// share a file.
pub fn file_key(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 96
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        return id.to_string();
    }
    let prefix: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let digest = Sha256::digest(id.as_bytes());
    let hash = crate::store::hex(&digest[..6]);
    format!("{}-{hash}", prefix.trim_start_matches('.'))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader (or a resumed run) never sees a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| store_err(path, e.to_string()))
}

/// A media feature store rooted at a directory.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
    manifest: Manifest,
}

impl MediaStore {
    /// Opens the store at `root`, creating it, or replacing the manifest
    /// when its fingerprint differs (old records then count as stale and are
    /// re-extracted; they are not deleted).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`].
    pub fn create(root: &Path, manifest: Manifest) -> Result<Self> {
        let records = root.join(RECORDS);
        std::fs::create_dir_all(&records).map_err(io_err(&records))?;
        let path = root.join(MANIFEST);
        let current: Option<Manifest> = if path.exists() {
            read_json(&path).ok()
        } else {
            None
        };
        if current.as_ref() != Some(&manifest) {
            let json = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| store_err(&path, e.to_string()))?;
            write_atomic(&path, &json)?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            manifest,
        })
    }

    /// Opens an existing store.
    ///
    /// # Errors
    /// [`Error::Io`] (no manifest), [`Error::Store`] (unreadable or another
    /// schema version).
    pub fn open(root: &Path) -> Result<Self> {
        let path = root.join(MANIFEST);
        let manifest: Manifest = read_json(&path)?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(store_err(
                &path,
                format!(
                    "schema version {} (this mmer reads {SCHEMA_VERSION})",
                    manifest.schema_version
                ),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            manifest,
        })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Path of the record of utterance `id`.
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.root
            .join(RECORDS)
            .join(format!("{}.safetensors", file_key(id)))
    }

    /// Writes one record atomically.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] / [`Error::NonFinite`] (invalid stream),
    /// [`Error::Store`] (a stream the manifest does not describe, or of
    /// another width), [`Error::Io`].
    pub fn write(&self, record: &Record) -> Result<()> {
        let path = self.record_path(&record.header.id);
        let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (key, stream) in &record.streams {
            let name = key.name();
            stream.validate(&record.header.id, &name)?;
            match self.manifest.streams.get(&name) {
                Some(info) if info.dim == stream.features.dim => {}
                Some(info) => {
                    return Err(store_err(
                        &path,
                        format!(
                            "stream {name} has width {}, the manifest says {}",
                            stream.features.dim, info.dim
                        ),
                    ));
                }
                None => {
                    return Err(store_err(
                        &path,
                        format!("stream {name} is not in the manifest"),
                    ));
                }
            }
            let t = stream.features.frames;
            let data: Vec<u8> = stream
                .features
                .data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            let times: Vec<u8> = stream
                .times
                .iter()
                .flat_map(|[a, b]| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                .collect();
            let mask: Vec<u8> = stream.mask.iter().map(|&m| u8::from(m)).collect();
            buffers.push((
                format!("{name}.data"),
                Dtype::F32,
                vec![t, stream.features.dim],
                data,
            ));
            buffers.push((format!("{name}.times"), Dtype::F32, vec![t, 2], times));
            buffers.push((format!("{name}.mask"), Dtype::U8, vec![t], mask));
        }
        let mut views = Vec::with_capacity(buffers.len());
        for (name, dtype, shape, bytes) in &buffers {
            let view = TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| store_err(&path, e.to_string()))?;
            views.push((name.as_str(), view));
        }
        let header =
            serde_json::to_string(&record.header).map_err(|e| store_err(&path, e.to_string()))?;
        let metadata = HashMap::from([("mmer".to_string(), header)]);
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| store_err(&path, e.to_string()))?;
        write_atomic(&path, &bytes)
    }

    /// The header of the record of `id`, reading only the file's header;
    /// `None` when there is no record.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] (not a record).
    pub fn read_header(&self, id: &str) -> Result<Option<RecordHeader>> {
        let path = self.record_path(id);
        if !path.exists() {
            return Ok(None);
        }
        read_header_at(&path).map(Some)
    }

    /// Whether the record of `id` is current: made with this store's
    /// fingerprint from a source with the same stamp.
    pub fn is_current(&self, id: &str, stamp: SourceStamp) -> bool {
        matches!(self.read_header(id), Ok(Some(h))
            if h.fingerprint == self.manifest.fingerprint && h.stamp == stamp && h.id == id)
    }

    /// Reads the record of `id`; `None` when there is none.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] (corrupt file or bad shapes).
    pub fn read(&self, id: &str) -> Result<Option<Record>> {
        let path = self.record_path(id);
        if !path.exists() {
            return Ok(None);
        }
        read_record_at(&path).map(Some)
    }

    /// Record headers of every current record (this fingerprint), by id.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`].
    pub fn headers(&self) -> Result<BTreeMap<String, (PathBuf, RecordHeader)>> {
        let dir = self.root.join(RECORDS);
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().is_none_or(|e| e != "safetensors") {
                continue;
            }
            let header = read_header_at(&path)?;
            if header.fingerprint == self.manifest.fingerprint {
                out.insert(header.id.clone(), (path, header));
            }
        }
        Ok(out)
    }

    /// Rewrites `index.json` from the current records and returns it.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`].
    pub fn rebuild_index(&self) -> Result<Index> {
        let mut utterances = Vec::new();
        for (id, (path, header)) in self.headers()? {
            let record = read_record_at(&path)?;
            utterances.push(IndexEntry {
                id,
                file: format!(
                    "{RECORDS}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                source: header.source,
                presence: header.presence,
                frames: record
                    .streams
                    .iter()
                    .map(|(k, s)| (k.name(), s.features.frames))
                    .collect(),
            });
        }
        let index = Index {
            schema_version: SCHEMA_VERSION,
            fingerprint: self.manifest.fingerprint.clone(),
            utterances,
        };
        let path = self.root.join(INDEX);
        let json =
            serde_json::to_vec_pretty(&index).map_err(|e| store_err(&path, e.to_string()))?;
        write_atomic(&path, &json)?;
        Ok(index)
    }

    /// Attaches the observed rows of each `level` stream to the corpus
    /// utterances with the same id (`Utterance::features[modality]`).
    /// Masked rows are dropped; a stream with no observed row stays missing.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`].
    pub fn attach(&self, corpus: &mut Corpus, level: Level) -> Result<AttachReport> {
        let headers = self.headers()?;
        let mut report = AttachReport::default();
        for dialogues in corpus.splits.values_mut() {
            for u in dialogues.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
                let Some((path, _)) = headers.get(&u.id) else {
                    report.unmatched += 1;
                    continue;
                };
                report.matched += 1;
                let record = read_record_at(path)?;
                for (key, stream) in &record.streams {
                    if key.level != level {
                        continue;
                    }
                    if let Some(features) = stream.observed() {
                        u.features.insert(key.modality, features);
                        *report.attached.entry(key.modality).or_default() += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

fn read_header_at(path: &Path) -> Result<RecordHeader> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io_err(path))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(store_err(path, format!("header of {n} bytes")));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(io_err(path))?;
    let value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| store_err(path, e.to_string()))?;
    let header = value
        .get("__metadata__")
        .and_then(|m| m.get("mmer"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| store_err(path, "no mmer record header"))?;
    serde_json::from_str(header).map_err(|e| store_err(path, e.to_string()))
}

fn read_record_at(path: &Path) -> Result<Record> {
    let header = read_header_at(path)?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| store_err(path, e.to_string()))?;
    let mut streams = BTreeMap::new();
    for name in tensors.names() {
        let Some(stream_name) = name.strip_suffix(".data") else {
            continue;
        };
        let key = StreamKey::parse(stream_name)
            .ok_or_else(|| store_err(path, format!("unknown stream {stream_name:?}")))?;
        let get = |suffix: &str, dtype: Dtype| {
            let full = format!("{stream_name}.{suffix}");
            let view = tensors
                .tensor(&full)
                .map_err(|e| store_err(path, format!("{full}: {e}")))?;
            if view.dtype() != dtype {
                return Err(store_err(path, format!("{full}: dtype {:?}", view.dtype())));
            }
            Ok(view)
        };
        let data = get("data", Dtype::F32)?;
        let times = get("times", Dtype::F32)?;
        let mask = get("mask", Dtype::U8)?;
        let (t, dim) = match data.shape() {
            [t, dim] => (*t, *dim),
            other => return Err(store_err(path, format!("{name}: shape {other:?}"))),
        };
        if times.shape() != [t, 2] || mask.shape() != [t] {
            return Err(store_err(
                path,
                format!(
                    "{stream_name}: times {:?} / mask {:?} do not match {t} rows",
                    times.shape(),
                    mask.shape()
                ),
            ));
        }
        let floats = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let flat_times = floats(times.data());
        streams.insert(
            key,
            Stream {
                features: Features::sequence(t, dim, floats(data.data()))?,
                times: flat_times.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
                mask: mask.data().iter().map(|&m| m != 0).collect(),
            },
        );
    }
    Ok(Record { header, streams })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialogue, LabelSpace, Split, Utterance};

    fn manifest(fp: &str) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            fingerprint: fp.into(),
            streams: BTreeMap::from([
                (
                    "audio".to_string(),
                    StreamInfo {
                        dim: 2,
                        names: vec!["a".into(), "b".into()],
                        description: "test".into(),
                    },
                ),
                (
                    "audio.utterance".to_string(),
                    StreamInfo {
                        dim: 1,
                        names: vec!["f".into()],
                        description: "test".into(),
                    },
                ),
            ]),
        }
    }

    fn record(id: &str, fp: &str) -> Record {
        let stream = Stream {
            features: Features::sequence(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
            times: vec![[0.0, 0.1], [0.1, 0.2], [0.2, 0.3]],
            mask: vec![true, false, true],
        };
        let vector = Stream {
            features: Features::vector(vec![7.0]),
            times: vec![[0.0, 0.3]],
            mask: vec![true],
        };
        Record {
            header: RecordHeader {
                id: id.into(),
                source: "clip.mp4".into(),
                stamp: SourceStamp {
                    size: 10,
                    mtime_ns: 5,
                    range_ms: None,
                },
                fingerprint: fp.into(),
                presence: BTreeMap::from([
                    (Modality::Audio, Presence::Present),
                    (Modality::Face, Presence::NotExtracted),
                ]),
                duration_s: Some(0.3),
            },
            streams: BTreeMap::from([
                (StreamKey::frames(Modality::Audio), stream),
                (StreamKey::utterance(Modality::Audio), vector),
            ]),
        }
    }

    #[test]
    fn record_round_trips_and_resume_checks_fingerprint_and_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp1")).unwrap();
        let rec = record("dia 1/utt 0", "fp1");
        store.write(&rec).unwrap();
        assert_eq!(store.read("dia 1/utt 0").unwrap().unwrap(), rec);
        let stamp = rec.header.stamp;
        assert!(store.is_current("dia 1/utt 0", stamp));
        assert!(!store.is_current("dia 1/utt 0", SourceStamp { size: 11, ..stamp }));
        assert!(!store.is_current("other", stamp));
        let reopened = MediaStore::create(dir.path(), manifest("fp2")).unwrap();
        assert!(!reopened.is_current("dia 1/utt 0", stamp));
        let index = MediaStore::open(dir.path())
            .unwrap()
            .rebuild_index()
            .unwrap();
        assert!(index.utterances.is_empty(), "stale records are not listed");
        let store = MediaStore::create(dir.path(), manifest("fp1")).unwrap();
        let index = store.rebuild_index().unwrap();
        assert_eq!(index.utterances.len(), 1);
        assert_eq!(index.utterances[0].frames["audio"], 3);
    }

    #[test]
    fn attach_keeps_observed_rows_and_counts_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp")).unwrap();
        store.write(&record("u0", "fp")).unwrap();
        let mut corpus = Corpus {
            name: "c".into(),
            labels: LabelSpace::meld(),
            splits: BTreeMap::from([(
                Split::Test,
                vec![Dialogue {
                    id: "d".into(),
                    utterances: vec![Utterance::new("u0", 0, "A"), Utterance::new("u1", 1, "B")],
                }],
            )]),
        };
        let report = store.attach(&mut corpus, Level::Frames).unwrap();
        assert_eq!((report.matched, report.unmatched), (1, 1));
        let u = &corpus.splits[&Split::Test][0].utterances;
        assert_eq!(
            u[0].features[&Modality::Audio],
            Features::sequence(2, 2, vec![1.0, 2.0, 5.0, 6.0]).unwrap()
        );
        assert!(u[1].features.is_empty());
    }

    #[test]
    fn unknown_stream_or_width_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest("fp");
        m.streams.get_mut("audio").unwrap().dim = 5;
        let store = MediaStore::create(dir.path(), m).unwrap();
        let err = store.write(&record("u", "fp")).unwrap_err().to_string();
        assert!(err.contains("width 2"), "{err}");
    }

    #[test]
    fn file_keys_are_safe_and_distinct() {
        assert_eq!(file_key("1001_DFA_ANG_XX"), "1001_DFA_ANG_XX");
        let a = file_key("dia/1");
        let b = file_key("dia_1");
        assert_ne!(a, b);
        assert!(!a.contains('/'));
        assert!(!file_key("..").starts_with('.'));
        assert!(StreamKey::parse("audio.utterance").is_some());
        assert_eq!(
            StreamKey::parse("face").unwrap(),
            StreamKey::frames(Modality::Face)
        );
        assert!(StreamKey::parse("audio.bogus").is_none());
    }
}
