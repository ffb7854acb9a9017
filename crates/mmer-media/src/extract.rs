//! The extraction stage: media files → per-utterance records in the media
//! store ([`mmer_core::media_store`]), in parallel, resumable, with a
//! per-file report.
//!
//! Each file is one unit of work and of failure: it is probed, decoded
//! once (audio and/or keyframes, whatever the extractors need), handed to
//! every [`StreamExtractor`], and its record is written atomically. A file
//! that fails is reported with its reason and the batch goes on; a file
//! whose current record already exists (same extractor fingerprint, same
//! source size and mtime) is skipped, so an interrupted run loses at most
//! the files that were in flight. `--shard i/n` runs one shard of the
//! inputs into its own store, for clusters ([`mmer_core::sharding`]).
//!
//! Extractors are pluggable so the visual ones (mmer-vision: faces, body)
//! join the same pass without this crate depending on them: they consume
//! the [`RgbFrame`] keyframes decoded here.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mmer_core::Modality;
use mmer_core::media_store::{
    Manifest, MediaStore, Presence, Record, RecordHeader, SCHEMA_VERSION, SourceStamp, Stream,
    StreamInfo, StreamKey,
};
use mmer_core::sharding::{Shard, ShardPlan};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audio::DecodedAudio;
use crate::error::{Error, Result};
use crate::ffmpeg::Ffmpeg;
use crate::frames::{KeyframeOptions, RgbFrame};
use crate::inputs::Job;
use crate::probe::MediaInfo;

/// Everything decoded from one file, as extractors see it.
#[derive(Debug, Clone, Copy)]
pub struct MediaInput<'a> {
    /// What the file holds.
    pub info: &'a MediaInfo,
    /// Its audio, when an extractor asked for it (`None` otherwise).
    pub audio: Option<&'a DecodedAudio>,
    /// Its keyframes, when an extractor asked and the file has video.
    pub keyframes: Option<&'a [RgbFrame]>,
}

/// What one extractor produced for one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Presence of the modalities this extractor owns.
    pub presence: BTreeMap<Modality, Presence>,
    /// Streams (only for present modalities).
    pub streams: BTreeMap<StreamKey, Stream>,
    /// Optional finer timings inside this extractor, milliseconds, merged
    /// into [`FileReport::stages_ms`] as `<name>.<part>` (e.g.
    /// `visual.detect`), so `mmer bench extract` can say where an
    /// extractor's time goes without this crate knowing its internals.
    pub parts_ms: BTreeMap<String, f64>,
}

impl Extracted {
    /// A modality recorded as missing, with no streams.
    pub fn missing(modality: Modality, presence: Presence) -> Self {
        Self {
            presence: BTreeMap::from([(modality, presence)]),
            ..Self::default()
        }
    }
}

/// A producer of feature streams from decoded media.
pub trait StreamExtractor: Send + Sync {
    /// Short name for reports and timings (`audio`, `face`).
    fn name(&self) -> &'static str;
    /// Changes whenever the output for the same input would change.
    fn fingerprint(&self) -> String;
    /// The streams it writes, with their descriptions (go into the manifest).
    fn streams(&self) -> Vec<(StreamKey, StreamInfo)>;
    /// Whether it needs the decoded audio.
    fn needs_audio(&self) -> bool {
        false
    }
    /// The keyframes it needs, if any.
    fn needs_keyframes(&self) -> Option<KeyframeOptions> {
        None
    }
    /// Extracts one file. A missing stream is an `Ok` with a [`Presence`],
    /// not an error.
    ///
    /// # Errors
    /// Whatever makes this file unusable; it is reported and skipped.
    fn extract(&self, input: &MediaInput<'_>) -> Result<Extracted>;
}

/// How a file fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Extracted and written now.
    Ok,
    /// Already in the store with the same fingerprint and source stamp.
    Skipped,
    /// Not extracted; `reason` says why.
    Failed,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// Utterance id.
    pub id: String,
    /// Source file (lossy UTF-8).
    pub path: String,
    /// Ok, skipped or failed.
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Presence of each modality (for extracted files).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub presence: BTreeMap<Modality, Presence>,
    /// Media duration, seconds, when known.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Wall time per stage, milliseconds (`probe`, `decode_audio`,
    /// `decode_frames`, one per extractor, `<extractor>.<part>` for the
    /// parts an extractor reports, `write`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages_ms: BTreeMap<String, f64>,
}

/// The report of one run (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`SCHEMA_VERSION`] of the store.
    pub schema_version: u32,
    /// Store directory.
    pub store: String,
    /// Extractor fingerprint.
    pub fingerprint: String,
    /// Parallel jobs.
    pub jobs: usize,
    /// The shard this run extracted, and of how many inputs in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardOf>,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// Files extracted now.
    pub ok: usize,
    /// Files already current.
    pub skipped: usize,
    /// Files that failed.
    pub failed: usize,
    /// Why `index.json` could not be rebuilt (a damaged record in the
    /// store), when it could not: the store is then unusable until the
    /// named record is deleted and extracted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_error: Option<String>,
    /// One entry per input file, in input order.
    pub files: Vec<FileReport>,
}

impl RunReport {
    /// A readable summary: counts, then one line per failure.
    pub fn summary(&self) -> String {
        let media_s: f64 = self
            .files
            .iter()
            .filter(|f| f.outcome == Outcome::Ok)
            .filter_map(|f| f.duration_s)
            .sum();
        let mut out = format!(
            "{} files: {} ok, {} skipped (already extracted), {} failed — {:.1} s wall, {} jobs",
            self.files.len(),
            self.ok,
            self.skipped,
            self.failed,
            self.wall_s,
            self.jobs
        );
        if self.ok > 0 && media_s > 0.0 {
            out.push_str(&format!(
                "; {media_s:.1} s of media (real-time factor {:.3})",
                self.wall_s / media_s
            ));
        }
        if let Some(ShardOf { shard, inputs }) = &self.shard {
            out.push_str(&format!(" (shard {shard} of {inputs} inputs)"));
        }
        out.push('\n');
        let mut missing: BTreeMap<(Modality, Presence), usize> = BTreeMap::new();
        for f in &self.files {
            for (m, p) in &f.presence {
                if *p != Presence::Present {
                    *missing.entry((*m, *p)).or_default() += 1;
                }
            }
        }
        for ((m, p), n) in missing {
            out.push_str(&format!("  {n} file(s): {m} {p:?}\n"));
        }
        for f in self.files.iter().filter(|f| f.outcome == Outcome::Failed) {
            out.push_str(&format!(
                "  FAILED {}: {}\n",
                f.path,
                f.reason.as_deref().unwrap_or("?")
            ));
        }
        if let Some(reason) = &self.index_error {
            out.push_str(&format!("  INDEX NOT REBUILT: {reason}\n"));
        }
        out
    }

    /// Writes `report.json` and `report.txt` (the summary) into `dir`.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write(&self, dir: &Path) -> Result<()> {
        let io = |path: PathBuf| move |source| Error::Io { path, source };
        let json_path = dir.join("report.json");
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Io {
            path: json_path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&json_path, json).map_err(io(json_path.clone()))?;
        let txt = dir.join("report.txt");
        std::fs::write(&txt, self.summary()).map_err(io(txt.clone()))
    }
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Store directory.
    pub out: PathBuf,
    /// Files processed at once (≥ 1).
    pub jobs: usize,
    /// Re-extract files even when their record is current.
    pub force: bool,
    /// Extract only this shard of the inputs, and record its plan and
    /// outcome in the store's `shard.json` ([`mmer_core::sharding`]).
    pub shard: Option<Shard>,
}

/// Combined fingerprint of a set of extractors (order-independent).
pub fn fingerprint(extractors: &[&dyn StreamExtractor]) -> String {
    let mut parts: Vec<String> = extractors
        .iter()
        .map(|e| format!("{}={}", e.name(), e.fingerprint()))
        .collect();
    parts.sort();
    let digest = Sha256::digest(parts.join(";").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest the extractors describe.
pub fn manifest(extractors: &[&dyn StreamExtractor]) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        fingerprint: fingerprint(extractors),
        streams: extractors
            .iter()
            .flat_map(|e| e.streams())
            .map(|(k, info)| (k.name(), info))
            .collect(),
    }
}

/// Extracts `jobs` into the store at `opts.out`, calling `on_file` as each
/// file finishes (from worker threads; for a progress bar). Rebuilds the
/// store index at the end. Per-file failures are in the report, not `Err`.
/// With [`ExtractOptions::shard`], only the jobs of that shard are run, and
/// the store's `shard.json` says which (written first, marked complete at
/// the end: see [`mmer_core::sharding`]).
///
/// # Errors
/// [`Error::InvalidOption`] (no extractor, 0 jobs), store errors creating
/// the store or writing `shard.json`, ffmpeg's version not readable (for a
/// shard).
pub fn run(
    ffmpeg: &Ffmpeg,
    extractors: &[&dyn StreamExtractor],
    jobs: &[Job],
    opts: &ExtractOptions,
    on_file: &(dyn Fn(&FileReport) + Sync),
) -> Result<RunReport> {
    if extractors.is_empty() {
        return Err(Error::InvalidOption("no extractor selected".into()));
    }
    if opts.jobs == 0 {
        return Err(Error::InvalidOption("--jobs must be ≥ 1".into()));
    }
    let started = Instant::now();
    let store = MediaStore::create(&opts.out, manifest(extractors))?;
    let (jobs, mut plan): (Vec<&Job>, _) = match opts.shard {
        None => (jobs.iter().collect(), None),
        Some(shard) => {
            let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
            let plan = ShardPlan::new(
                shard,
                &store.manifest().fingerprint,
                &ffmpeg.version()?,
                &ids,
            );
            // Written before any record: a shard killed from here on is
            // found incomplete by the merge.
            plan.write(&opts.out)?;
            let owned = jobs.iter().filter(|j| shard.owns(&j.id)).collect();
            (owned, Some(plan))
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .thread_name(|i| format!("mmer-extract-{i}"))
        .build()
        .map_err(|e| Error::InvalidOption(format!("thread pool: {e}")))?;
    // Later duplicates of an id would overwrite the first file's record.
    let mut seen = HashSet::new();
    let duplicate: Vec<bool> = jobs.iter().map(|j| !seen.insert(j.id.clone())).collect();
    let files: Vec<FileReport> = pool.install(|| {
        jobs.par_iter()
            .zip(duplicate.par_iter())
            .map(|(job, &dup)| {
                let report = if let Some(problem) = &job.problem {
                    failed(job, problem.clone())
                } else if dup {
                    failed(job, format!("duplicate utterance id {:?}", job.id))
                } else {
                    extract_one(ffmpeg, extractors, &store, job, opts.force)
                };
                on_file(&report);
                report
            })
            .collect()
    });
    // A damaged record (of this run or an earlier one) fails the index, but
    // not the run: the report of every file is still returned and written.
    let index_error = store.rebuild_index().err().map(|e| e.to_string());
    let shard = plan.as_mut().map(|plan| {
        plan.complete = true;
        plan.failed = files
            .iter()
            .filter(|f| f.outcome == Outcome::Failed)
            .map(|f| (f.id.clone(), f.reason.clone().unwrap_or_default()))
            .collect();
        ShardOf {
            shard: plan.shard,
            inputs: plan.inputs,
        }
    });
    if let Some(plan) = &plan {
        plan.write(&opts.out)?;
    }
    let count = |o: Outcome| files.iter().filter(|f| f.outcome == o).count();
    Ok(RunReport {
        schema_version: SCHEMA_VERSION,
        store: opts.out.display().to_string(),
        fingerprint: store.manifest().fingerprint.clone(),
        jobs: opts.jobs,
        shard,
        wall_s: started.elapsed().as_secs_f64(),
        ok: count(Outcome::Ok),
        skipped: count(Outcome::Skipped),
        failed: count(Outcome::Failed),
        index_error,
        files,
    })
}

/// The shard a run extracted ([`RunReport::shard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOf {
    /// Which shard.
    pub shard: Shard,
    /// Inputs of the whole run (all shards).
    pub inputs: usize,
}

fn failed(job: &Job, reason: String) -> FileReport {
    FileReport {
        id: job.id.clone(),
        path: job.path.display().to_string(),
        outcome: Outcome::Failed,
        reason: Some(reason),
        presence: BTreeMap::new(),
        duration_s: None,
        stages_ms: BTreeMap::new(),
    }
}

fn extract_one(
    ffmpeg: &Ffmpeg,
    extractors: &[&dyn StreamExtractor],
    store: &MediaStore,
    job: &Job,
    force: bool,
) -> FileReport {
    let span = tracing::debug_span!("extract", id = %job.id);
    let _enter = span.enter();
    match try_extract(ffmpeg, extractors, store, job, force) {
        Ok(report) => report,
        Err(err) => {
            // A conversation turn's failure names the file, line and turn.
            let err = match &job.turn {
                Some(at) => Error::Turn {
                    at: at.clone(),
                    source: Box::new(err),
                },
                None => err,
            };
            tracing::debug!(path = %job.path.display(), %err, "extraction failed");
            failed(job, err.to_string())
        }
    }
}

fn try_extract(
    ffmpeg: &Ffmpeg,
    extractors: &[&dyn StreamExtractor],
    store: &MediaStore,
    job: &Job,
    force: bool,
) -> Result<FileReport> {
    let mut stages = BTreeMap::new();
    let timed = |stages: &mut BTreeMap<String, f64>, name: &str, since: Instant| {
        stages.insert(name.to_string(), since.elapsed().as_secs_f64() * 1e3);
    };
    // A changed time range makes the stored record stale like a changed file.
    let stamp = SourceStamp::of(&job.path)?.with_range(job.segment.map(|s| s.millis()));
    let mut report = FileReport {
        id: job.id.clone(),
        path: job.path.display().to_string(),
        outcome: Outcome::Skipped,
        reason: None,
        presence: BTreeMap::new(),
        duration_s: None,
        stages_ms: BTreeMap::new(),
    };
    if !force
        && store.is_current(&job.id, stamp)
        && let Ok(Some(header)) = store.read_header(&job.id)
    {
        report.presence = header.presence;
        report.duration_s = header.duration_s;
        return Ok(report);
    }
    let t = Instant::now();
    let mut info = ffmpeg.probe(&job.path)?;
    if let Some(segment) = job.segment {
        info = info.cut(segment)?;
    }
    timed(&mut stages, "probe", t);
    if info.audio.is_none() && info.video.is_none() {
        return Err(Error::NoStream {
            path: job.path.clone(),
            kind: "audio or video",
        });
    }
    let audio = if extractors.iter().any(|e| e.needs_audio()) {
        let t = Instant::now();
        let a = ffmpeg.decode_audio(&info)?;
        timed(&mut stages, "decode_audio", t);
        Some(a)
    } else {
        None
    };
    let frame_opts = extractors
        .iter()
        .filter_map(|e| e.needs_keyframes())
        .max_by_key(|o| o.count);
    let keyframes = match (frame_opts, &info.video) {
        (Some(opts), Some(_)) => {
            let t = Instant::now();
            let f = ffmpeg.keyframes(&info, &opts)?;
            timed(&mut stages, "decode_frames", t);
            Some(f)
        }
        _ => None,
    };
    let input = MediaInput {
        info: &info,
        audio: audio.as_ref(),
        keyframes: keyframes.as_deref(),
    };
    let mut presence = BTreeMap::new();
    let mut streams = BTreeMap::new();
    for e in extractors {
        let t = Instant::now();
        let out = e.extract(&input)?;
        timed(&mut stages, e.name(), t);
        for (part, ms) in out.parts_ms {
            stages.insert(format!("{}.{part}", e.name()), ms);
        }
        presence.extend(out.presence);
        streams.extend(out.streams);
    }
    let duration_s = info
        .duration_s
        .or_else(|| audio.as_ref().map(DecodedAudio::duration_s));
    let record = Record {
        header: RecordHeader {
            id: job.id.clone(),
            source: job.path.display().to_string(),
            stamp,
            fingerprint: store.manifest().fingerprint.clone(),
            presence: presence.clone(),
            duration_s,
        },
        streams,
    };
    let t = Instant::now();
    store.write(&record)?;
    timed(&mut stages, "write", t);
    report.outcome = Outcome::Ok;
    report.presence = presence;
    report.duration_s = duration_s;
    report.stages_ms = stages;
    Ok(report)
}
