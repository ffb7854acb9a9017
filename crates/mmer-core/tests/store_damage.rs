//! Damaged feature stores ("Nothing lost, nothing silent: strict inputs"):
//! a property-test harness over the text-embedding tables
//! ([`mmer_core::store`]) and the media store's records and `index.json`
//! ([`mmer_core::media_store`]).
//!
//! A store is written, one of its files is damaged (truncated, a bit
//! flipped, bytes appended, or a JSON field of an index set to another
//! value), and every reader is run. Each must not panic, and must either
//! fail naming the damaged file or return exactly what was written: a
//! damaged file is never used.
//!
//! The harness runs [`DEFAULT_CASES`] cases per property (about a second);
//! `PROPTEST_CASES=20000 cargo test -p mmer-core --test store_damage`
//! searches longer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmer_core::media_store::{
    Level, Manifest, MediaStore, Presence, Record, RecordHeader, SCHEMA_VERSION, SourceStamp,
    Stream, StreamInfo, StreamKey,
};
use mmer_core::store::{StoreKey, cached_embeddings};
use mmer_core::{Corpus, Dialogue, Features, LabelSpace, Modality, Split, Utterance};
use proptest::prelude::*;
use serde_json::Value;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Damage {
    /// Keep the first `at` bytes (modulo the length).
    Truncate(usize),
    /// Flip one bit.
    Flip(usize, u8),
    /// Append bytes.
    Append(Vec<u8>),
    /// Parse the file as JSON (or a safetensors file's header as JSON) and
    /// set the `pick`-th value found (depth first, modulo the count) to
    /// `value`; bytes unchanged if there is no JSON.
    SetJson(usize, Value),
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..8).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(-1)),
        Just(Value::from(0.5)),
        "[a-z0-9./_]{0,12}".prop_map(Value::from),
        proptest::collection::vec(0u64..5, 0..4).prop_map(Value::from),
        Just(Value::Array(vec![])),
        Just(Value::Object(Default::default())),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => any::<usize>().prop_map(Damage::Truncate),
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Damage::Append),
        3 => (any::<usize>(), json_value()).prop_map(|(pick, v)| Damage::SetJson(pick, v)),
    ]
}

/// JSON pointers of every value below the root of `value`, depth first.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        let pointer = format!("{at}/{key}");
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

fn apply(bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    let mut bytes = bytes;
    match damage {
        Damage::Truncate(at) => bytes.truncate(at % bytes.len().max(1)),
        Damage::Flip(at, bit) => {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= 1 << bit;
            }
        }
        Damage::Append(extra) => bytes.extend(extra),
        Damage::SetJson(pick, new) => {
            if let Some(doc) = set_json(&bytes, *pick, new) {
                bytes = doc;
            } else if let Some(n) = bytes
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
                && let Some(header) = bytes.get(8..8usize.saturating_add(n))
                && let Some(header) = set_json(header, *pick, new)
            {
                let mut out = (header.len() as u64).to_le_bytes().to_vec();
                out.extend(header);
                out.extend(&bytes[8 + n..]);
                bytes = out;
            }
        }
    }
    bytes
}

/// `json` with its `pick`-th value set to `new`; `None` if it is not JSON.
fn set_json(json: &[u8], pick: usize, new: &Value) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(json).ok()?;
    let mut all = Vec::new();
    pointers(&doc, "", &mut all);
    if !all.is_empty()
        && let Some(slot) = doc.pointer_mut(&all[pick % all.len()])
    {
        *slot = new.clone();
    }
    Some(serde_json::to_vec(&doc).expect("a JSON value serialises"))
}

/// Damages `path` and returns its file name, or `None` when the damage
/// left the bytes as they were.
fn damage_file(path: &Path, damage: &Damage) -> Option<String> {
    let before = std::fs::read(path).expect("read the file to damage");
    let after = apply(before.clone(), damage);
    if after == before {
        return None;
    }
    std::fs::write(path, after).expect("write the damaged file");
    Some(path.file_name()?.to_string_lossy().into_owned())
}

/// `Ok(v)` must be `expected`; `Err(e)` must name `damaged`.
fn check<T: PartialEq + std::fmt::Debug, E: std::fmt::Display>(
    what: &str,
    got: Result<T, E>,
    expected: &T,
    damaged: &str,
) -> Result<(), TestCaseError> {
    match got {
        Ok(v) => prop_assert_eq!(&v, expected, "{} returned damaged data", what),
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.contains(damaged),
                "{}: {} does not name {}",
                what,
                msg,
                damaged
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Text-embedding tables.

/// The encoder: one to three frames of width `DIM` per text, from its bytes.
const DIM: usize = 3;

fn encode(texts: &[&str]) -> mmer_core::Result<Vec<Vec<f32>>> {
    Ok(texts.iter().map(|t| encode_one(t)).collect())
}

fn encode_one(text: &str) -> Vec<f32> {
    let frames = 1 + text.len() % 3;
    (0..frames * DIM)
        .map(|i| text.bytes().map(f32::from).sum::<f32>() + i as f32)
        .collect()
}

fn table_items() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec("[a-z ]{0,6}", 1..6).prop_map(|texts| {
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| (format!("utt{i}"), t))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Media store.

fn manifest() -> Manifest {
    let info = |dim: usize| StreamInfo {
        dim,
        names: (0..dim).map(|i| format!("f{i}")).collect(),
        description: "test".into(),
    };
    Manifest {
        schema_version: SCHEMA_VERSION,
        fingerprint: "fp".into(),
        streams: BTreeMap::from([
            ("audio".to_string(), info(2)),
            ("audio.utterance".to_string(), info(3)),
            ("face".to_string(), info(1)),
        ]),
    }
}

/// Ids, some of which `file_key` hashes.
const IDS: [&str; 4] = ["d0_utt0", "d0_utt1", "dia 1/utt 2", "..odd"];

fn record(id: &str, rows: usize, face: bool, seed: u8) -> Record {
    let stream = |t: usize, dim: usize| Stream {
        features: Features::sequence(
            t,
            dim,
            (0..t * dim)
                .map(|i| f32::from(seed) + i as f32 * 0.25)
                .collect(),
        )
        .expect("shape"),
        times: (0..t)
            .map(|i| [i as f32 * 0.1, i as f32 * 0.1 + 0.1])
            .collect(),
        mask: (0..t).map(|i| (i + usize::from(seed)) % 3 != 0).collect(),
    };
    let mut streams = BTreeMap::from([
        (StreamKey::frames(Modality::Audio), stream(rows, 2)),
        (StreamKey::utterance(Modality::Audio), stream(1, 3)),
    ]);
    let mut presence = BTreeMap::from([(Modality::Audio, Presence::Present)]);
    if face {
        streams.insert(StreamKey::frames(Modality::Face), stream(rows, 1));
        presence.insert(Modality::Face, Presence::Present);
    } else {
        presence.insert(Modality::Face, Presence::NotDetected);
    }
    Record {
        header: RecordHeader {
            id: id.into(),
            source: format!("{id}.mp4"),
            stamp: SourceStamp {
                size: 100 + u64::from(seed),
                mtime_ns: 7,
                range_ms: None,
            },
            fingerprint: "fp".into(),
            presence,
            duration_s: Some(rows as f64 * 0.1),
        },
        streams,
    }
}

fn corpus() -> Corpus {
    Corpus {
        name: "c".into(),
        labels: LabelSpace::meld(),
        splits: BTreeMap::from([(
            Split::Test,
            vec![Dialogue {
                id: "d".into(),
                utterances: IDS
                    .iter()
                    .enumerate()
                    .map(|(i, id)| Utterance::new(*id, i, "A"))
                    .collect(),
            }],
        )]),
    }
}

/// The features `attach` gives each utterance, by id.
fn attached(corpus: &Corpus) -> BTreeMap<String, BTreeMap<Modality, Features>> {
    corpus
        .splits
        .values()
        .flatten()
        .flat_map(|d| &d.utterances)
        .map(|u| (u.id.clone(), u.features.clone()))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// A damaged table is reported naming its file, or (when the damage
    /// only makes rows stale, e.g. a changed text hash) recomputed: the
    /// rows returned are always the encoder's.
    #[test]
    fn damaged_text_tables_are_refused_or_recomputed(
        items in table_items(),
        tensor in any::<bool>(),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = StoreKey {
            root: dir.path().into(),
            corpus: "c".into(),
            encoder: "e".into(),
            table: "train".into(),
        };
        let (rows, _) = cached_embeddings(&key, "fp", DIM, &items, encode).expect("first write");
        let expected: Vec<Vec<f32>> = items.iter().map(|(_, t)| encode_one(t)).collect();
        prop_assert_eq!(&rows, &expected);
        let path: PathBuf = if tensor { key.tensor_path() } else { key.index_path() };
        let Some(name) = damage_file(&path, &damage) else {
            return Ok(());
        };
        let got = cached_embeddings(&key, "fp", DIM, &items, encode).map(|(rows, _)| rows);
        check("cached_embeddings", got, &expected, &name)?;
    }

    /// A damaged record or `index.json` is reported naming its file by
    /// every reader that touches it, or read back exactly as written.
    #[test]
    fn damaged_media_stores_are_refused_or_intact(
        shapes in proptest::collection::vec((1usize..5, any::<bool>()), 1..=IDS.len()),
        target in any::<usize>(),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MediaStore::create(dir.path(), manifest()).expect("create");
        let records: BTreeMap<String, Record> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(rows, face))| (IDS[i].to_string(), record(IDS[i], rows, face, i as u8)))
            .collect();
        for r in records.values() {
            store.write(r).expect("write");
        }
        let index = store.rebuild_index().expect("index");
        let mut clean = corpus();
        store.attach(&mut clean, Level::Frames).expect("attach");
        let clean = attached(&clean);

        // Damage index.json or one of the records.
        let ids: Vec<&String> = records.keys().collect();
        let pick = target % (ids.len() + 1);
        let path = match ids.get(pick) {
            Some(id) => store.record_path(id),
            None => dir.path().join("index.json"),
        };
        let Some(name) = damage_file(&path, &damage) else {
            return Ok(());
        };

        let store = MediaStore::open(dir.path()).expect("the manifest is intact");
        for (id, r) in &records {
            check("read", store.read(id), &Some(r.clone()), &name)?;
            let header = store.read_header(id);
            check("read_header", header, &Some(r.header.clone()), &name)?;
            if !store.is_current(id, r.header.stamp) {
                // Only the damaged record may stop being current.
                prop_assert_eq!(store.record_path(id), path.clone());
            }
        }
        let headers = store
            .headers()
            .map(|h| h.into_iter().map(|(id, (_, header))| (id, header)).collect::<BTreeMap<_, _>>());
        let want: BTreeMap<String, RecordHeader> =
            records.iter().map(|(id, r)| (id.clone(), r.header.clone())).collect();
        check("headers", headers, &want, &name)?;
        check("read_index", store.read_index(), &index, &name)?;
        let mut c = corpus();
        let got = store.attach(&mut c, Level::Frames).map(|_| attached(&c));
        check("attach", got, &clean, &name)?;
    }
}
