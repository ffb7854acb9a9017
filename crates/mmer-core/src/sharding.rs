//! Scale-out extraction (issue 19): a deterministic partition of utterances
//! into shards, the plan each shard's store carries (`shard.json`), and the
//! merge of shard stores into one store.
//!
//! # Partition
//! Utterance `id` belongs to shard `u64(sha256(id)[..8]) mod n`: a shard is
//! decided by the id alone, so adding files never moves the others (for the
//! same `n`), two duplicates of an id land in the same shard (which reports
//! the second one, as a single run does), and every machine computes the
//! same partition.
//!
//! # A shard's store
//! `mmer extract --shard i/n` writes an ordinary media store plus
//! [`SHARD_FILE`]: the shard, the extractor fingerprint, the ffmpeg and
//! mmer versions, a digest of *every* input id (so shards given different
//! inputs are found out), the ids this shard owns, and — once the run has
//! ended — `complete: true` with the ids that failed. A shard that was
//! killed keeps `complete: false`; re-running the same command resumes it
//! (records already written are skipped) and completes it.
//!
//! # Merge
//! [`merge`] checks that the stores are the complete, non-overlapping
//! shards of one run (or plain stores, none of them a shard), made with the
//! same manifest, and that every utterance a shard owns has an intact
//! record, unless the shard reported it failed. It then copies the records
//! byte for byte into a new store built beside `out` and swapped into place
//! ([`crate::atomic::publish_dir`]), and rebuilds its index. Records are
//! written deterministically ([`crate::media_store`]), so the merged store's
//! `manifest.json`, `index.json` and `utterances/` are the bytes a single
//! process would have written, whatever the shard count and merge order.
//! The same utterance in two stores must be the same bytes; otherwise the
//! merge fails naming both files and what differs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io_err, store_err};
use crate::media_store::{MediaStore, RecordHeader, SCHEMA_VERSION};
use crate::{Error, Result};

/// File name of a shard's plan inside its store.
pub const SHARD_FILE: &str = "shard.json";
/// File names of a merged store's report (JSON and summary).
pub const MERGE_REPORT: [&str; 2] = ["merge.json", "merge.txt"];

/// Shard `index` of `count` (0-based; `i/n` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, `0 ≤ index < count`.
    pub index: u32,
    /// How many shards the inputs are cut into (≥ 1).
    pub count: u32,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`Error::InvalidShard`] when `count` is 0 or `index ≥ count`.
    pub fn new(index: u32, count: u32) -> Result<Self> {
        if count == 0 {
            return Err(Error::InvalidShard(format!(
                "{index}/{count}: the shard count must be at least 1"
            )));
        }
        if index >= count {
            return Err(Error::InvalidShard(format!(
                "{index}/{count}: shards are numbered 0 to {} (0-based, as Slurm array task ids \
                 and Kubernetes completion indexes are)",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// The shard of `count` that utterance `id` belongs to.
    pub fn index_of(id: &str, count: u32) -> u32 {
        let digest = Sha256::digest(id.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(head) % u64::from(count.max(1))) as u32
    }

    /// Whether utterance `id` belongs to this shard.
    pub fn owns(&self, id: &str) -> bool {
        Self::index_of(id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `i/n`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidShard(format!(
                "{s:?}: expected INDEX/COUNT, e.g. 3/8 (0-based index below the count)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let parse = |x: &str| x.trim().parse::<u32>().map_err(|_| bad());
        Self::new(parse(i)?, parse(n)?)
    }
}

/// SHA-256 of a set of utterance ids (sorted, each length-prefixed), so
/// that shards can check they were given the same inputs.
pub fn ids_sha256<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    }
    crate::atomic::hex(&h.finalize())
}

/// `shard.json`: what one shard of a run was asked to do, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardPlan {
    /// [`SCHEMA_VERSION`] of the store.
    pub schema_version: u32,
    /// This shard.
    pub shard: Shard,
    /// Extractor fingerprint of the store's manifest.
    pub fingerprint: String,
    /// Version of the mmer that extracted.
    pub mmer_version: String,
    /// `ffmpeg -version`'s first line: another decoder may decode other
    /// samples, so shards decoded by different ffmpeg builds do not merge.
    pub ffmpeg_version: String,
    /// How many inputs (utterances) the whole run has, over all shards.
    pub inputs: usize,
    /// [`ids_sha256`] of every input of the run.
    pub inputs_sha256: String,
    /// The utterances this shard owns, in input order.
    pub utterances: Vec<String>,
    /// Whether the run ended (false while it runs, or after it was killed).
    pub complete: bool,
    /// Utterances of this shard that failed, with why (once complete).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, String>,
}

impl ShardPlan {
    /// The plan of `shard` over the run's input ids `all_ids`, not yet
    /// complete.
    pub fn new(shard: Shard, fingerprint: &str, ffmpeg_version: &str, all_ids: &[&str]) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            shard,
            fingerprint: fingerprint.to_string(),
            mmer_version: env!("CARGO_PKG_VERSION").to_string(),
            ffmpeg_version: ffmpeg_version.to_string(),
            inputs: all_ids.len(),
            inputs_sha256: ids_sha256(all_ids.iter().copied()),
            utterances: all_ids
                .iter()
                .filter(|id| shard.owns(id))
                .map(|id| id.to_string())
                .collect(),
            complete: false,
            failed: BTreeMap::new(),
        }
    }

    /// Reads the plan of the store at `root`; `None` when it is not a shard.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Store`] naming `shard.json` (unreadable,
    /// another schema version).
    pub fn read(root: &Path) -> Result<Option<Self>> {
        let path = root.join(SHARD_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let plan: Self =
            serde_json::from_slice(&bytes).map_err(|e| store_err(&path, e.to_string()))?;
        if plan.schema_version != SCHEMA_VERSION {
            return Err(store_err(
                &path,
                format!(
                    "schema version {} (this mmer reads {SCHEMA_VERSION})",
                    plan.schema_version
                ),
            ));
        }
        Ok(Some(plan))
    }

    /// Writes it into the store at `root`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write(&self, root: &Path) -> Result<()> {
        let path = root.join(SHARD_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| store_err(&path, e.to_string()))?;
        crate::atomic::write_file(&path, &json)
    }
}

/// One input store of a merge, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedStore {
    /// Its directory.
    pub store: String,
    /// Its shard, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Current records it holds.
    pub records: usize,
}

/// An utterance a shard reported as failed: not in the merged store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedUtterance {
    /// Utterance id.
    pub id: String,
    /// The shard store that reported it.
    pub store: String,
    /// Why, as the shard's run said.
    pub reason: String,
}

/// What [`merge`] did (`merge.json` in the merged store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The merged store.
    pub out: String,
    /// Extractor fingerprint shared by every input.
    pub fingerprint: String,
    /// The input stores, in the order given.
    pub stores: Vec<MergedStore>,
    /// Records in the merged store.
    pub records: usize,
    /// Utterances found in more than one input, identical in each.
    pub duplicates: usize,
    /// Utterances the shards reported failed (the merged store lacks them,
    /// as a single run's store would).
    pub failed: Vec<FailedUtterance>,
    /// Wall time, seconds.
    pub wall_s: f64,
}

impl MergeReport {
    /// A readable summary: counts, then one line per failed utterance.
    pub fn summary(&self) -> String {
        let shards = self.stores.iter().filter(|s| s.shard.is_some()).count();
        let mut out = format!(
            "{} stores ({} shards) → {} records in {} ({} duplicates identical, {} failed \
             utterances) — {:.1} s\n",
            self.stores.len(),
            shards,
            self.records,
            self.out,
            self.duplicates,
            self.failed.len(),
            self.wall_s
        );
        for f in &self.failed {
            out.push_str(&format!(
                "  FAILED {} (in {}): {}\n",
                f.id, f.store, f.reason
            ));
        }
        out
    }
}

/// One input store, opened and checked.
struct Input {
    store: MediaStore,
    plan: Option<ShardPlan>,
    records: BTreeMap<String, (PathBuf, RecordHeader)>,
}

/// Merges the media stores `stores` into a new store at `out` (replacing a
/// store already there, e.g. an earlier merge): see the module doc.
///
/// # Errors
/// [`Error::Store`] naming the store (and utterance) at fault: no store
/// given; another manifest; a mix of shard and plain stores; shards of
/// different runs (count, inputs, fingerprint, ffmpeg or mmer version); a
/// shard given twice or missing; a shard that did not complete or lacks
/// the record of an utterance it owns; a record in the wrong shard; a
/// damaged record; the same utterance with different bytes in two stores;
/// `out` being one of the inputs or a non-empty directory that is not a
/// store. [`Error::Io`] when reading or writing fails.
pub fn merge(stores: &[PathBuf], out: &Path) -> Result<MergeReport> {
    let started = Instant::now();
    let Some(first) = stores.first() else {
        return Err(store_err(out, "nothing to merge: no input store given"));
    };
    for (i, root) in stores.iter().enumerate() {
        if let Some(earlier) = stores[..i].iter().find(|e| same_dir(e, root)) {
            return Err(store_err(
                root,
                format!("is given twice (also as {})", earlier.display()),
            ));
        }
    }
    let inputs = stores
        .iter()
        .map(|root| open_input(root, out))
        .collect::<Result<Vec<_>>>()?;
    check_compatible(&inputs, first)?;
    for input in &inputs {
        check_complete(input)?;
    }
    // Every utterance once, from the first store that has it; later copies
    // must be the same bytes.
    let mut chosen: BTreeMap<&str, &Path> = BTreeMap::new();
    let mut duplicates = 0;
    for input in &inputs {
        for (id, (path, _)) in &input.records {
            match chosen.get(id.as_str()) {
                None => {
                    chosen.insert(id, path);
                }
                Some(earlier) => {
                    same_record(earlier, path, id)?;
                    duplicates += 1;
                }
            }
        }
    }
    check_out(out)?;
    let staging = staging_dir(out);
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        let merged = MediaStore::create(&staging, inputs[0].store.manifest().clone())?;
        for (id, source) in &chosen {
            let bytes = std::fs::read(source).map_err(io_err(source))?;
            let target = merged.record_path(id);
            std::fs::write(&target, &bytes).map_err(io_err(&target))?;
        }
        // Reads every copy back through the store (checksum, id and file
        // name, streams against the manifest) as it lists them.
        merged.rebuild_index()?;
        let mut failed: Vec<FailedUtterance> = inputs
            .iter()
            .filter_map(|input| Some((input, input.plan.as_ref()?)))
            .flat_map(|(input, plan)| {
                plan.failed.iter().map(|(id, reason)| FailedUtterance {
                    id: id.clone(),
                    store: input.store.root().display().to_string(),
                    reason: reason.clone(),
                })
            })
            .collect();
        failed.sort_by(|a, b| a.id.cmp(&b.id));
        let report = MergeReport {
            schema_version: SCHEMA_VERSION,
            out: out.display().to_string(),
            fingerprint: inputs[0].store.manifest().fingerprint.clone(),
            stores: inputs
                .iter()
                .map(|input| MergedStore {
                    store: input.store.root().display().to_string(),
                    shard: input.plan.as_ref().map(|p| p.shard),
                    records: input.records.len(),
                })
                .collect(),
            records: chosen.len(),
            duplicates,
            failed,
            wall_s: started.elapsed().as_secs_f64(),
        };
        let [json, txt] = MERGE_REPORT;
        let bytes = serde_json::to_vec_pretty(&report)
            .map_err(|e| store_err(&staging.join(json), e.to_string()))?;
        crate::atomic::write_file(&staging.join(json), &bytes)?;
        crate::atomic::write_file(&staging.join(txt), report.summary().as_bytes())?;
        crate::atomic::publish_dir(&staging, out)?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// The directory a merge builds `out` in before swapping it into place.
fn staging_dir(out: &Path) -> PathBuf {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!(".{name}.merging-{}", std::process::id()))
}

fn open_input(root: &Path, out: &Path) -> Result<Input> {
    if same_dir(root, out) {
        return Err(store_err(
            root,
            "is also the merge's output; merge into a new directory",
        ));
    }
    let store = MediaStore::open(root)?;
    let plan = ShardPlan::read(root)?;
    let records = store.headers()?;
    Ok(Input {
        store,
        plan,
        records,
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// One manifest; all shards of one run, each once, or no shard at all.
fn check_compatible(inputs: &[Input], first: &Path) -> Result<()> {
    let manifest = inputs[0].store.manifest();
    for input in &inputs[1..] {
        let other = input.store.manifest();
        if other != manifest {
            let what = if other.fingerprint == manifest.fingerprint {
                "the same fingerprint but other streams".to_string()
            } else {
                format!(
                    "fingerprint {} where {} has {}",
                    other.fingerprint,
                    first.display(),
                    manifest.fingerprint
                )
            };
            return Err(store_err(
                input.store.root(),
                format!(
                    "was extracted with other settings or models ({what}); only stores made with \
                     the same `mmer extract` options and models merge"
                ),
            ));
        }
    }
    let shards: Vec<(&Input, &ShardPlan)> = inputs
        .iter()
        .filter_map(|i| Some((i, i.plan.as_ref()?)))
        .collect();
    let Some(&(lead, plan)) = shards.first() else {
        return Ok(());
    };
    if let Some(plain) = inputs.iter().find(|i| i.plan.is_none()) {
        return Err(store_err(
            plain.store.root(),
            format!(
                "is not a shard, but {} is (shard {}): merge the shards of a run on their own \
                 first, then merge the result with other stores",
                lead.store.root().display(),
                plan.shard
            ),
        ));
    }
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for &(input, other) in &shards {
        let root = input.store.root();
        let differs = |what: &str, a: &dyn fmt::Display, b: &dyn fmt::Display| {
            store_err(
                root,
                format!(
                    "is shard {} of another run: its {what} is {a}, {}'s is {b}",
                    other.shard,
                    lead.store.root().display()
                ),
            )
        };
        if other.shard.count != plan.shard.count {
            return Err(differs(
                "shard count (overlapping partitions)",
                &other.shard.count,
                &plan.shard.count,
            ));
        }
        if other.inputs_sha256 != plan.inputs_sha256 {
            return Err(differs(
                "set of inputs",
                &format!("{} inputs ({})", other.inputs, &other.inputs_sha256[..12]),
                &format!("{} inputs ({})", plan.inputs, &plan.inputs_sha256[..12]),
            ));
        }
        if other.fingerprint != manifest.fingerprint {
            return Err(differs(
                "extractor fingerprint",
                &other.fingerprint,
                &manifest.fingerprint,
            ));
        }
        if other.ffmpeg_version != plan.ffmpeg_version {
            return Err(differs(
                "ffmpeg",
                &other.ffmpeg_version,
                &plan.ffmpeg_version,
            ));
        }
        if other.mmer_version != plan.mmer_version {
            return Err(differs(
                "mmer version",
                &other.mmer_version,
                &plan.mmer_version,
            ));
        }
        if let Some(earlier) = seen.insert(other.shard.index, root) {
            return Err(store_err(
                root,
                format!(
                    "is shard {}, and so is {}: each shard once",
                    other.shard,
                    earlier.display()
                ),
            ));
        }
    }
    let missing: Vec<String> = (0..plan.shard.count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", plan.shard.count))
        .collect();
    if !missing.is_empty() {
        return Err(store_err(
            lead.store.root(),
            format!(
                "is one of {} shards, but shard(s) {} were not given",
                plan.shard.count,
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A shard's run ended, and every utterance it owns has a current record
/// unless it failed; no record belongs to another shard.
fn check_complete(input: &Input) -> Result<()> {
    let Some(plan) = &input.plan else {
        return Ok(());
    };
    let root = input.store.root();
    let rerun = "re-run the same `mmer extract … --shard` command; it resumes where it stopped";
    if !plan.complete {
        return Err(store_err(
            &root.join(SHARD_FILE),
            format!(
                "shard {} did not finish (killed, or still running): {rerun}",
                plan.shard
            ),
        ));
    }
    let owned: BTreeSet<&str> = plan.utterances.iter().map(String::as_str).collect();
    for id in &plan.utterances {
        if !input.records.contains_key(id) && !plan.failed.contains_key(id) {
            return Err(store_err(
                root,
                format!(
                    "shard {} owns utterance {id:?} but has no current record of it (deleted \
                     or re-extracted with other settings since): {rerun}",
                    plan.shard
                ),
            ));
        }
    }
    for (id, (path, _)) in &input.records {
        if !owned.contains(id.as_str()) {
            return Err(store_err(
                path,
                format!(
                    "holds utterance {id:?}, which shard {} does not own (it is shard {}'s): \
                     was this store written by another shard or run?",
                    plan.shard,
                    Shard::index_of(id, plan.shard.count)
                ),
            ));
        }
    }
    Ok(())
}

/// Two stores' records of `id` are the same bytes; if not, says what
/// differs, naming both files.
fn same_record(a: &Path, b: &Path, id: &str) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).map_err(io_err(p));
    if read(a)? == read(b)? {
        return Ok(());
    }
    let header = |p: &Path| -> Result<RecordHeader> {
        let store = p
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| store_err(p, "not inside a store"))?;
        MediaStore::open(store)?
            .read_header(id)?
            .ok_or_else(|| store_err(p, "vanished during the merge"))
    };
    let (ha, hb) = (header(a)?, header(b)?);
    let what = if ha.source != hb.source {
        format!("sources {:?} and {:?}", ha.source, hb.source)
    } else if ha.stamp != hb.stamp {
        format!(
            "the source changed between the runs (size/mtime {:?} and {:?})",
            ha.stamp, hb.stamp
        )
    } else {
        "the same source but different features (another machine or decoder?)".to_string()
    };
    Err(store_err(
        b,
        format!(
            "conflicts with {} for utterance {id:?}: {what}",
            a.display()
        ),
    ))
}

/// `out` is absent, empty, or a media store (an earlier merge) to replace.
fn check_out(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(out)
        .map_err(io_err(out))?
        .next()
        .is_none();
    if empty || MediaStore::open(out).is_ok() {
        return Ok(());
    }
    Err(store_err(
        out,
        "exists and is not a media store; the merge replaces its output, so name a new directory",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_store::{
        Manifest, Presence, Record, SourceStamp, Stream, StreamInfo, StreamKey,
    };
    use crate::{Features, Modality};

    fn manifest(fingerprint: &str) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            fingerprint: fingerprint.into(),
            streams: BTreeMap::from([(
                "audio".to_string(),
                StreamInfo {
                    dim: 2,
                    names: vec!["a".into(), "b".into()],
                    description: "test".into(),
                },
            )]),
        }
    }

    /// A record whose features depend on `id` and `variant`.
    fn record(id: &str, variant: f32) -> Record {
        let seed = id.len() as f32 + variant;
        Record {
            header: RecordHeader {
                id: id.into(),
                source: format!("media/{id}.mp4"),
                stamp: SourceStamp {
                    size: 100,
                    mtime_ns: 7,
                    range_ms: None,
                },
                fingerprint: "fp".into(),
                presence: BTreeMap::from([(Modality::Audio, Presence::Present)]),
                duration_s: Some(1.0),
            },
            streams: BTreeMap::from([(
                StreamKey::frames(Modality::Audio),
                Stream {
                    features: Features::sequence(2, 2, vec![seed, 1.0, 2.0, seed * 0.5]).unwrap(),
                    times: vec![[0.0, 0.5], [0.5, 1.0]],
                    mask: vec![true, true],
                },
            )]),
        }
    }

    fn ids() -> Vec<String> {
        (0..40)
            .map(|i| format!("dia{}_utt{}", i / 5, i % 5))
            .collect()
    }

    /// What `mmer extract` leaves: every record of `ids`, an index.
    fn single_store(root: &Path, ids: &[String]) {
        let store = MediaStore::create(root, manifest("fp")).unwrap();
        for id in ids {
            store.write(&record(id, 0.0)).unwrap();
        }
        store.rebuild_index().unwrap();
    }

    /// What `mmer extract --shard i/n` leaves: the shard's records and a
    /// complete plan.
    fn shard_store(root: &Path, ids: &[String], shard: Shard) -> ShardPlan {
        let all: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut plan = ShardPlan::new(shard, "fp", "ffmpeg version 5.1", &all);
        let owned: Vec<String> = plan.utterances.clone();
        single_store(root, &owned);
        plan.complete = true;
        plan.write(root).unwrap();
        plan
    }

    /// The files a store's identity is made of, with their bytes.
    fn contents(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for name in ["manifest.json", "index.json"] {
            out.insert(name.to_string(), std::fs::read(root.join(name)).unwrap());
        }
        for entry in std::fs::read_dir(root.join("utterances")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(&path).unwrap());
        }
        out
    }

    /// Every file under `root`, recursively.
    fn walk(root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    fn err(result: Result<MergeReport>) -> String {
        result.expect_err("the merge must fail").to_string()
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            "3/8".parse::<Shard>().unwrap(),
            Shard { index: 3, count: 8 }
        );
        assert_eq!("0/1".parse::<Shard>().unwrap().to_string(), "0/1");
        for (spec, says) in [
            ("3/2", "numbered 0 to 1"),
            ("2/2", "numbered 0 to 1"),
            ("0/0", "at least 1"),
            ("1", "INDEX/COUNT"),
            ("a/4", "INDEX/COUNT"),
            ("-1/4", "INDEX/COUNT"),
            ("1/4/2", "INDEX/COUNT"),
        ] {
            let e = spec.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    /// The partition is a function of the id alone (pinned, so that a
    /// change of hash cannot silently mix the shards of two versions), and
    /// spreads ids evenly.
    #[test]
    fn the_partition_is_pinned_and_balanced() {
        // Python: int.from_bytes(hashlib.sha256(id.encode()).digest()[:8], "big") % n
        let of = |n: u32| -> Vec<u32> {
            ["a", "dia0_utt0", "1001_DFA_ANG_XX", "é/ü"]
                .iter()
                .map(|id| Shard::index_of(id, n))
                .collect()
        };
        assert_eq!(of(8), [2, 3, 1, 7]);
        assert_eq!(of(3), [1, 2, 1, 2]);
        let ids: Vec<String> = (0..8000).map(|i| format!("clip{i}")).collect();
        for count in 1..=8u32 {
            let mut sizes = vec![0usize; count as usize];
            for id in &ids {
                let owners: Vec<u32> = (0..count)
                    .filter(|&i| Shard::new(i, count).unwrap().owns(id))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} has owners {owners:?} of {count}");
                sizes[owners[0] as usize] += 1;
            }
            let expected = ids.len() / count as usize;
            for size in sizes {
                assert!(
                    size.abs_diff(expected) < expected / 10,
                    "{count}: {size} vs {expected}"
                );
            }
        }
    }

    /// Issue 19's target: the merged store is the single store's bytes for
    /// every shard count 1–8, in any merge order.
    #[test]
    fn merged_shards_are_the_single_store_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids();
        single_store(&dir.path().join("single"), &ids);
        let expected = contents(&dir.path().join("single"));
        for count in 1..=8u32 {
            let mut roots: Vec<PathBuf> = (0..count)
                .map(|i| {
                    let root = dir.path().join(format!("n{count}-s{i}"));
                    shard_store(&root, &ids, Shard::new(i, count).unwrap());
                    root
                })
                .collect();
            roots.rotate_left((count / 2) as usize);
            roots.reverse();
            let out = dir.path().join(format!("merged-{count}"));
            let report = merge(&roots, &out).unwrap();
            assert_eq!(report.records, ids.len());
            assert_eq!(contents(&out), expected, "{count} shards");
            // A second merge into the same place replaces it, same bytes.
            merge(&roots, &out).unwrap();
            assert_eq!(contents(&out), expected, "{count} shards, merged again");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    }

    #[test]
    fn shards_of_different_runs_missing_or_repeated_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids();
        let root = |name: &str| dir.path().join(name);
        for i in 0..3 {
            shard_store(&root(&format!("s{i}")), &ids, Shard::new(i, 3).unwrap());
        }
        let out = root("out");
        let e = err(merge(&[root("s0"), root("s2")], &out));
        assert!(e.contains("shard(s) 1/3 were not given"), "{e}");
        let e = err(merge(
            &[root("s0"), root("s1"), root("s1"), root("s2")],
            &out,
        ));
        assert!(e.contains("given twice") && e.contains("s1"), "{e}");
        // The same shard in two directories.
        let copy = root("s1-copy");
        std::fs::create_dir_all(copy.join("utterances")).unwrap();
        for entry in walk(&root("s1")) {
            let to = copy.join(entry.strip_prefix(root("s1")).unwrap());
            std::fs::copy(&entry, to).unwrap();
        }
        let e = err(merge(&[root("s0"), root("s1"), copy, root("s2")], &out));
        assert!(e.contains("and so is") && e.contains("s1-copy"), "{e}");
        // Another count: overlapping partitions.
        shard_store(&root("t0"), &ids, Shard::new(0, 2).unwrap());
        let e = err(merge(
            &[root("s0"), root("s1"), root("s2"), root("t0")],
            &out,
        ));
        assert!(e.contains("shard count") && e.contains("t0"), "{e}");
        // Other inputs.
        let fewer = &ids[..30];
        shard_store(&root("u1"), fewer, Shard::new(1, 3).unwrap());
        let e = err(merge(&[root("s0"), root("u1"), root("s2")], &out));
        assert!(
            e.contains("set of inputs") && e.contains("30 inputs"),
            "{e}"
        );
        // Another ffmpeg.
        let mut plan = ShardPlan::read(&root("s1")).unwrap().unwrap();
        plan.ffmpeg_version = "ffmpeg version 7.0".into();
        plan.write(&root("s1")).unwrap();
        let e = err(merge(&[root("s0"), root("s1"), root("s2")], &out));
        assert!(e.contains("ffmpeg version 7.0"), "{e}");
        // A plain store among shards.
        single_store(&root("plain"), &ids);
        let e = err(merge(&[root("s0"), root("plain")], &out));
        assert!(e.contains("plain") && e.contains("is not a shard"), "{e}");
        // Another manifest.
        MediaStore::create(&root("other"), manifest("fp2")).unwrap();
        let e = err(merge(&[root("plain"), root("other")], &out));
        assert!(e.contains("other settings") && e.contains("fp2"), "{e}");
        assert!(!out.exists(), "a refused merge wrote its output");
    }

    /// A killed shard (plan not complete), a lost record, a record of
    /// another shard and a damaged record stop the merge, naming the store
    /// and utterance; a failed utterance is reported, not an error.
    #[test]
    fn incomplete_or_damaged_shards_are_refused_and_failures_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids();
        let roots: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("s{i}"))).collect();
        let plans: Vec<ShardPlan> = (0..2)
            .map(|i| shard_store(&roots[i as usize], &ids, Shard::new(i, 2).unwrap()))
            .collect();
        let out = dir.path().join("out");
        let store = MediaStore::open(&roots[0]).unwrap();
        let victim = plans[0].utterances[0].clone();

        let mut running = plans[0].clone();
        running.complete = false;
        running.write(&roots[0]).unwrap();
        let e = err(merge(&roots, &out));
        assert!(
            e.contains("shard.json") && e.contains("did not finish"),
            "{e}"
        );
        plans[0].write(&roots[0]).unwrap();

        let bytes = std::fs::read(store.record_path(&victim)).unwrap();
        std::fs::remove_file(store.record_path(&victim)).unwrap();
        let e = err(merge(&roots, &out));
        assert!(
            e.contains(&format!("{victim:?}")) && e.contains("no current record"),
            "{e}"
        );

        // The shard says it failed: merged without it, and reported.
        let mut failed = plans[0].clone();
        failed.failed.insert(victim.clone(), "unreadable".into());
        failed.write(&roots[0]).unwrap();
        let report = merge(&roots, &out).unwrap();
        assert_eq!(report.records, ids.len() - 1);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].id, victim);
        assert!(report.summary().contains("FAILED"), "{}", report.summary());
        plans[0].write(&roots[0]).unwrap();

        // A flipped byte in the tensors.
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        std::fs::write(store.record_path(&victim), &damaged).unwrap();
        let e = err(merge(&roots, &out));
        assert!(
            e.contains(&crate::media_store::file_key(&victim)) && e.contains("damaged"),
            "{e}"
        );
        std::fs::write(store.record_path(&victim), &bytes).unwrap();

        // A record the other shard owns.
        let stray = plans[1].utterances[0].clone();
        store.write(&record(&stray, 0.0)).unwrap();
        let e = err(merge(&roots, &out));
        assert!(
            e.contains(&format!("{stray:?}")) && e.contains("does not own"),
            "{e}"
        );
        std::fs::remove_file(store.record_path(&stray)).unwrap();

        merge(&roots, &out).unwrap();
    }

    /// Plain stores merge into their union; an utterance in two of them
    /// must be the same bytes, else both files are named.
    #[test]
    fn plain_stores_merge_and_conflicts_name_both_records() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        single_store(&a, &ids[..25]);
        single_store(&b, &ids[20..]);
        let out = dir.path().join("out");
        let report = merge(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!((report.records, report.duplicates), (ids.len(), 5));
        single_store(&dir.path().join("all"), &ids);
        assert_eq!(contents(&out), contents(&dir.path().join("all")));

        let clash = &ids[22];
        MediaStore::open(&b)
            .unwrap()
            .write(&record(clash, 1.0))
            .unwrap();
        let e = err(merge(&[a.clone(), b.clone()], &out));
        assert!(
            e.contains(&format!("{clash:?}")) && e.contains("different features"),
            "{e}"
        );
        assert!(
            e.contains(&a.display().to_string()) && e.contains(&b.display().to_string()),
            "{e}"
        );
        let e = err(merge(std::slice::from_ref(&a), &a));
        assert!(e.contains("output"), "{e}");
    }
}
