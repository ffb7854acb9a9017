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
//!
//! # Damage
//! A damaged file is an error naming it, never features handed on. Each
//! record's metadata carries the SHA-256 of its header and tensors
//! ([`RECORD_SHA256`]), checked whenever the record is read or asked
//! whether it is current (so a damaged record is re-extracted, not
//! skipped), and of its header alone ([`RECORD_HEADER_SHA256`]), checked
//! whenever only headers are read; a record whose header names
//! another utterance than its file, two records of one utterance, streams
//! whose rows, times and mask disagree or that the manifest does not
//! describe are all refused. [`MediaStore::read_index`] checks `index.json`
//! against the records before anyone trusts it. Records written before the
//! checksum are still read, with the structural checks only.

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
/// Metadata key of a record's [`RecordHeader`] (JSON).
const RECORD_HEADER: &str = "mmer";
/// Metadata key of a record's checksum: the SHA-256 of its header JSON and
/// then of each tensor in name order, its name, dtype, shape and
/// little-endian bytes (each part preceded by its length).
pub const RECORD_SHA256: &str = "mmer.sha256";
/// Metadata key of the SHA-256 of a record's header JSON alone, so that
/// reading only the headers ([`MediaStore::headers`]) is checked too.
pub const RECORD_HEADER_SHA256: &str = "mmer.header_sha256";

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
    let hash = crate::atomic::hex(&digest[..6]);
    format!("{}-{hash}", prefix.trim_start_matches('.'))
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
            crate::atomic::write_file(&path, &json)?;
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
        let sha256 = record_sha256(
            &header,
            buffers
                .iter()
                .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
        );
        let metadata = HashMap::from([
            (
                RECORD_HEADER_SHA256.to_string(),
                crate::atomic::sha256_hex(header.as_bytes()),
            ),
            (RECORD_HEADER.to_string(), header),
            (RECORD_SHA256.to_string(), sha256),
        ]);
        let bytes = safetensors::serialize(views, Some(metadata))
            .and_then(with_sorted_metadata)
            .map_err(|e| store_err(&path, e.to_string()))?;
        crate::atomic::write_file(&path, &bytes)
    }

    /// The header of the record of `id`; `None` when there is no record.
    /// The whole record is read and checked, so that a damaged record is
    /// an error here (and never [`MediaStore::is_current`]).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] (not a record, or damaged).
    pub fn read_header(&self, id: &str) -> Result<Option<RecordHeader>> {
        Ok(self.read(id)?.map(|record| record.header))
    }

    /// Whether the record of `id` is current: intact, and made with this
    /// store's fingerprint from a source with the same stamp. A damaged
    /// record is not current, so a run re-extracts it.
    pub fn is_current(&self, id: &str, stamp: SourceStamp) -> bool {
        matches!(self.read_header(id), Ok(Some(h))
            if h.fingerprint == self.manifest.fingerprint && h.stamp == stamp && h.id == id)
    }

    /// Reads the record of `id`; `None` when there is none.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] (damaged file: see the module doc).
    pub fn read(&self, id: &str) -> Result<Option<Record>> {
        let path = self.record_path(id);
        if !path.exists() {
            return Ok(None);
        }
        let record = self.read_checked(&path)?;
        if record.header.id != id {
            return Err(store_err(
                &path,
                format!(
                    "holds the record of utterance {:?}, not {id:?}",
                    record.header.id
                ),
            ));
        }
        Ok(Some(record))
    }

    /// Reads a record, and checks a current one's streams against the
    /// manifest (a stale record may have other streams).
    fn read_checked(&self, path: &Path) -> Result<Record> {
        let record = read_record_at(path)?;
        if record.header.fingerprint != self.manifest.fingerprint {
            return Ok(record);
        }
        for (key, stream) in &record.streams {
            let name = key.name();
            match self.manifest.streams.get(&name) {
                Some(info) if info.dim == stream.features.dim => {}
                Some(info) => {
                    return Err(store_err(
                        path,
                        format!(
                            "stream {name} has width {}, the manifest says {}",
                            stream.features.dim, info.dim
                        ),
                    ));
                }
                None => {
                    return Err(store_err(
                        path,
                        format!("stream {name} is not in the manifest"),
                    ));
                }
            }
        }
        Ok(record)
    }

    /// Record headers of every current record (this fingerprint), by id.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`].
    pub fn headers(&self) -> Result<BTreeMap<String, (PathBuf, RecordHeader)>> {
        let dir = self.root.join(RECORDS);
        let mut out: BTreeMap<String, (PathBuf, RecordHeader)> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().is_none_or(|e| e != "safetensors") {
                continue;
            }
            let header = read_header_at(&path)?;
            if header.fingerprint == self.manifest.fingerprint {
                // Unreachable for files named by `file_key` (checked on
                // read), but a map insert would hide the second one.
                if let Some((first, _)) = out.get(&header.id) {
                    return Err(store_err(
                        &path,
                        format!(
                            "a second record of utterance {:?} (the first is {})",
                            header.id,
                            first.display()
                        ),
                    ));
                }
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
            let record = self.read_checked(&path)?;
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
        crate::atomic::write_file(&path, &json)?;
        Ok(index)
    }

    /// Reads `index.json` and checks it against the records: schema and
    /// fingerprint, one entry per current record in id order, each naming
    /// its record's file (nothing outside the store), source and presence,
    /// and the rows of each stream as the record's tensor shapes give them.
    /// The records' tensors are checked when read ([`MediaStore::read`]).
    ///
    /// # Errors
    /// [`Error::Io`] (no index), [`Error::Store`] naming `index.json`
    /// (damaged, truncated, or stale: [`MediaStore::rebuild_index`] makes
    /// it current) or a damaged record.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.root.join(INDEX);
        let index: Index = read_json(&path)?;
        let stale = |msg: String| {
            store_err(
                &path,
                format!(
                    "{msg}; rebuild it (`MediaStore::rebuild_index`, or re-run `mmer extract`)"
                ),
            )
        };
        if index.schema_version != SCHEMA_VERSION {
            return Err(stale(format!(
                "schema version {} (this mmer reads {SCHEMA_VERSION})",
                index.schema_version
            )));
        }
        if index.fingerprint != self.manifest.fingerprint {
            return Err(stale(format!(
                "lists records of fingerprint {:?}, the manifest's is {:?}",
                index.fingerprint, self.manifest.fingerprint
            )));
        }
        let mut records = self.raw_headers()?;
        let mut previous: Option<&str> = None;
        for entry in &index.utterances {
            if previous.is_some_and(|p| p >= entry.id.as_str()) {
                return Err(stale(format!(
                    "entry {:?} is out of order or repeated",
                    entry.id
                )));
            }
            previous = Some(&entry.id);
            let expected = format!("{RECORDS}/{}.safetensors", file_key(&entry.id));
            if entry.file != expected {
                return Err(stale(format!(
                    "entry {:?} names file {:?}, its record is {expected:?}",
                    entry.id, entry.file
                )));
            }
            let Some(raw) = records.remove(&entry.id) else {
                return Err(stale(format!("entry {:?} has no current record", entry.id)));
            };
            if raw.header.source != entry.source
                || raw.header.presence != entry.presence
                || raw.frames != entry.frames
            {
                // The record may be the damaged one (its shapes are not in
                // the header checksum): then that is the error.
                read_record_at(&self.root.join(&expected))?;
                return Err(stale(format!(
                    "entry {:?} does not match its record (source {:?}, presence {:?}, \
                     frames {:?})",
                    entry.id, raw.header.source, raw.header.presence, raw.frames
                )));
            }
        }
        if let Some(id) = records.keys().next() {
            return Err(stale(format!(
                "record {id:?} is missing ({} record(s) unlisted)",
                records.len()
            )));
        }
        Ok(index)
    }

    /// Raw headers of every current record, by id.
    fn raw_headers(&self) -> Result<BTreeMap<String, RawHeader>> {
        let headers = self.headers()?;
        let mut out = BTreeMap::new();
        for (id, (path, _)) in headers {
            out.insert(id, read_raw_header(&path)?);
        }
        Ok(out)
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
                let record = self.read_checked(path)?;
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

/// `file` (a safetensors serialisation) with the `__metadata__` entries of
/// its header in key order. safetensors writes them from a `HashMap`, whose
/// order changes from one process to the next: without this, two runs
/// extracting the same file would write different bytes, and a store merged
/// from shards ([`crate::sharding::merge`]) could not be compared with a
/// single run's byte for byte. Tensor offsets are relative to the end of
/// the header, so they stay valid when its length changes.
fn with_sorted_metadata(
    file: Vec<u8>,
) -> std::result::Result<Vec<u8>, safetensors::SafeTensorError> {
    use safetensors::SafeTensorError;
    let (len, rest) = file
        .split_first_chunk::<8>()
        .ok_or(SafeTensorError::HeaderTooSmall)?;
    let n = usize::try_from(u64::from_le_bytes(*len))
        .map_err(|_| SafeTensorError::InvalidHeaderLength)?;
    let header = rest.get(..n).ok_or(SafeTensorError::InvalidHeaderLength)?;
    let mut header: serde_json::Value = serde_json::from_slice(header)?;
    if let Some(serde_json::Value::Object(metadata)) = header.get_mut("__metadata__") {
        metadata.sort_keys();
    }
    let mut header = serde_json::to_vec(&header)?;
    // safetensors aligns the data to 8 bytes with spaces after the JSON.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + rest.len() - n);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&rest[n..]);
    Ok(out)
}

/// [`RECORD_SHA256`] of a header's JSON and tensors given as (name, dtype,
/// shape, bytes).
fn record_sha256<'a>(
    header_json: &str,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    h.update((header_json.len() as u64).to_le_bytes());
    h.update(header_json.as_bytes());
    for (name, dtype, shape, bytes) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(format!("{dtype:?}").as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    crate::atomic::hex(&h.finalize())
}

/// A record's metadata, read without its tensors.
struct RawHeader {
    header: RecordHeader,
    /// The header's JSON as stored.
    header_json: String,
    /// [`RECORD_SHA256`], when the record has one.
    sha256: Option<String>,
    /// Rows of each stream, from the tensor shapes.
    frames: BTreeMap<String, usize>,
}

fn read_raw_header(path: &Path) -> Result<RawHeader> {
    let truncated = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            store_err(path, "truncated record (the file ends inside its header)")
        } else {
            io_err(path)(e)
        }
    };
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(truncated)?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(store_err(path, format!("header of {n} bytes")));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(truncated)?;
    let value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| store_err(path, e.to_string()))?;
    let metadata = value.get("__metadata__");
    let header = metadata
        .and_then(|m| m.get(RECORD_HEADER))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| store_err(path, "no mmer record header"))?;
    let header_json = header.to_string();
    if let Some(claimed) = metadata
        .and_then(|m| m.get(RECORD_HEADER_SHA256))
        .and_then(serde_json::Value::as_str)
    {
        let actual = crate::atomic::sha256_hex(header_json.as_bytes());
        if claimed != actual {
            return Err(store_err(
                path,
                format!(
                    "damaged: its header hashes to {actual}, its checksum says {claimed}; \
                     delete it and re-run `mmer extract`"
                ),
            ));
        }
    }
    let header: RecordHeader =
        serde_json::from_str(&header_json).map_err(|e| store_err(path, e.to_string()))?;
    let expected = format!("{}.safetensors", file_key(&header.id));
    if path
        .file_name()
        .is_none_or(|name| name != expected.as_str())
    {
        return Err(store_err(
            path,
            format!(
                "holds the record of utterance {:?}, whose file is {expected}",
                header.id
            ),
        ));
    }
    let sha256 = metadata
        .and_then(|m| m.get(RECORD_SHA256))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let mut frames = BTreeMap::new();
    if let Some(tensors) = value.as_object() {
        for (name, info) in tensors {
            let Some(stream) = name.strip_suffix(".data") else {
                continue;
            };
            let rows = info
                .get("shape")
                .and_then(|s| s.get(0))
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| store_err(path, format!("{name}: no shape")))?;
            frames.insert(stream.to_string(), rows as usize);
        }
    }
    Ok(RawHeader {
        header,
        header_json,
        sha256,
        frames,
    })
}

fn read_header_at(path: &Path) -> Result<RecordHeader> {
    read_raw_header(path).map(|raw| raw.header)
}

fn read_record_at(path: &Path) -> Result<Record> {
    let RawHeader {
        header,
        header_json,
        sha256,
        ..
    } = read_raw_header(path)?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| store_err(path, e.to_string()))?;
    if let Some(claimed) = sha256 {
        let all = tensors.tensors();
        let actual = record_sha256(
            &header_json,
            all.iter()
                .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
        );
        if claimed != actual {
            return Err(store_err(
                path,
                format!(
                    "damaged: its content hashes to {actual}, its checksum says {claimed}; \
                     delete it and re-run `mmer extract` to re-extract {:?}",
                    header.id
                ),
            ));
        }
    }
    let mut streams = BTreeMap::new();
    for name in tensors.names() {
        let (stream_name, part) = name.rsplit_once('.').unwrap_or((name, ""));
        if !matches!(part, "data" | "times" | "mask") {
            return Err(store_err(path, format!("unexpected tensor {name:?}")));
        }
        if part != "data" {
            let data_name = format!("{stream_name}.data");
            if !tensors.names().contains(&data_name.as_str()) {
                return Err(store_err(
                    path,
                    format!("tensor {name:?} without {stream_name}.data"),
                ));
            }
            continue;
        }
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
        if let Some(i) = mask.data().iter().position(|&m| m > 1) {
            return Err(store_err(
                path,
                format!(
                    "{stream_name}: mask value {} at row {i} is not 0 or 1",
                    mask.data()[i]
                ),
            ));
        }
        let floats = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let flat_times = floats(times.data());
        if let Some(i) = flat_times.iter().position(|v| !v.is_finite()) {
            return Err(store_err(
                path,
                format!("{stream_name}: time of row {} is NaN or infinite", i / 2),
            ));
        }
        let stream = Stream {
            features: Features::sequence(t, dim, floats(data.data()))
                .map_err(|e| store_err(path, e.to_string()))?,
            times: flat_times.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
            mask: mask.data().iter().map(|&m| m != 0).collect(),
        };
        stream
            .validate(&header.id, stream_name)
            .map_err(|e| store_err(path, e.to_string()))?;
        streams.insert(key, stream);
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

    /// safetensors writes its metadata from a `HashMap` (a new order per
    /// map): the store sorts it, so the same record is the same bytes.
    #[test]
    fn the_same_record_is_written_as_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp1")).unwrap();
        let rec = record("u1", "fp1");
        let mut written = std::collections::BTreeSet::new();
        for _ in 0..16 {
            store.write(&rec).unwrap();
            written.insert(std::fs::read(store.record_path("u1")).unwrap());
        }
        assert_eq!(written.len(), 1, "the bytes changed between writes");
        let bytes = written.pop_first().unwrap();
        let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
        let keys: Vec<&String> = metadata.metadata().as_ref().unwrap().keys().collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(store.read("u1").unwrap().unwrap(), rec);
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let at = |key: &str| header.find(&format!("\"{key}\"")).unwrap();
        assert!(
            at(RECORD_HEADER) < at(RECORD_HEADER_SHA256)
                && at(RECORD_HEADER_SHA256) < at(RECORD_SHA256)
        );
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

    /// A flipped byte in a stored value or in the header keeps the file a
    /// valid safetensors file; the checksum catches it, the record is no
    /// longer current (so a run re-extracts it) and every reader names it.
    #[test]
    fn damaged_records_are_refused_and_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp")).unwrap();
        let rec = record("u0", "fp");
        store.write(&rec).unwrap();
        let path = store.record_path("u0");
        let good = std::fs::read(&path).unwrap();
        let header_at = good
            .windows(8)
            .position(|w| w == b"clip.mp4")
            .expect("source in the header");
        for at in [good.len() - 1, header_at] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let err = store.read("u0").unwrap_err().to_string();
            assert!(
                err.contains("u0.safetensors") && err.contains("damaged"),
                "{err}"
            );
            assert!(!store.is_current("u0", rec.header.stamp));
            assert!(store.rebuild_index().is_err());
        }
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(store.read("u0").is_err());
        std::fs::write(&path, &good[..20]).unwrap();
        let err = store.read("u0").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&path, &good).unwrap();
        assert_eq!(store.read("u0").unwrap().unwrap(), rec);
        assert!(store.is_current("u0", rec.header.stamp));
    }

    /// A record copied under another utterance's file name would give that
    /// utterance its features.
    #[test]
    fn a_record_under_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp")).unwrap();
        store.write(&record("u0", "fp")).unwrap();
        std::fs::copy(store.record_path("u0"), store.record_path("u1")).unwrap();
        let err = store.read("u1").unwrap_err().to_string();
        assert!(
            err.contains("u1.safetensors") && err.contains("\"u0\""),
            "{err}"
        );
        assert!(store.headers().is_err());
    }

    #[test]
    fn index_is_checked_against_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::create(dir.path(), manifest("fp")).unwrap();
        store.write(&record("u0", "fp")).unwrap();
        store.write(&record("u1", "fp")).unwrap();
        let index = store.rebuild_index().unwrap();
        assert_eq!(store.read_index().unwrap(), index);
        let path = dir.path().join(INDEX);
        let good = std::fs::read_to_string(&path).unwrap();
        for (bad, want) in [
            (
                good.replace(r#""audio": 3"#, r#""audio": 2"#),
                "does not match",
            ),
            (
                good.replace("u1.safetensors", "../u1.safetensors"),
                "names file",
            ),
            (good.replace(r#""id": "u1""#, r#""id": "u2""#), "names file"),
            (
                good.replace(r#""fingerprint": "fp""#, r#""fingerprint": "xx""#),
                "fingerprint",
            ),
            (good[..good.len() / 2].to_string(), "EOF"),
        ] {
            assert_ne!(bad, good);
            std::fs::write(&path, bad).unwrap();
            let err = store.read_index().unwrap_err().to_string();
            assert!(err.contains("index.json") && err.contains(want), "{err}");
        }
        std::fs::write(&path, &good).unwrap();
        store.write(&record("u2", "fp")).unwrap();
        let err = store.read_index().unwrap_err().to_string();
        assert!(err.contains("\"u2\" is missing"), "{err}");
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
