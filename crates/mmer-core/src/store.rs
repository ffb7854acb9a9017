//! The feature store: cached per-utterance embeddings on disk.
//!
//! Layout: `<root>/<corpus>/<encoder>/<split>.safetensors` holds one tensor
//! `embeddings` of shape `[n, dim]` (f32) — or `[Σ frames, dim]` for
//! sequence rows such as token states, whose frame counts the index lists;
//! `<split>.index.json` beside it names the encoder fingerprint and, per
//! row, the utterance id and the SHA-256 of the text that produced it. A later run reuses every row whose
//! text hash is unchanged and recomputes only the rest; a different encoder
//! fingerprint invalidates the whole file. Extraction of other modalities
//! (issue 4) writes the same format with sequences flattened per row.
//!
//! A damaged table is an error naming the file, never rows handed to the
//! trainer: the index carries the SHA-256 of the tensor file and of its
//! own other fields, so a flipped byte, a truncated file or a tensor from
//! another write (two runs racing, a crash between the two renames) is
//! caught before a row is used, and every count and width is checked
//! before it sizes anything. Indexes written before these checksums are
//! still read, with the structural checks only.

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{io_err, store_err};
use crate::{Error, Result};

const SCHEMA_VERSION: u32 = 1;
const TENSOR_NAME: &str = "embeddings";

/// Identifies one cached table.
#[derive(Debug, Clone)]
pub struct StoreKey {
    /// Store root directory.
    pub root: PathBuf,
    /// Corpus name.
    pub corpus: String,
    /// Encoder name (directory-safe).
    pub encoder: String,
    /// Split or table name.
    pub table: String,
}

impl StoreKey {
    fn dir(&self) -> PathBuf {
        self.root.join(&self.corpus).join(&self.encoder)
    }
    /// Path of the tensor file.
    pub fn tensor_path(&self) -> PathBuf {
        self.dir().join(format!("{}.safetensors", self.table))
    }
    /// Path of the index file.
    pub fn index_path(&self) -> PathBuf {
        self.dir().join(format!("{}.index.json", self.table))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    schema_version: u32,
    encoder_fingerprint: String,
    dim: usize,
    ids: Vec<String>,
    text_sha256: Vec<String>,
    /// Frames (rows of width `dim`) of each entry; absent = one each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frames: Option<Vec<usize>>,
    /// SHA-256 of the tensor file (absent in older indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tensor_sha256: Option<String>,
    /// SHA-256 of this index's JSON with this field absent (absent in
    /// older indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_sha256: Option<String>,
}

impl Index {
    /// SHA-256 of the JSON of this index without its own checksum.
    fn own_sha256(&self) -> String {
        let bare = Index {
            index_sha256: None,
            ..self.clone()
        };
        let json = serde_json::to_vec(&bare).expect("strings and integers serialise to JSON");
        crate::atomic::sha256_hex(&json)
    }
}

/// What [`cached_embeddings`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheReport {
    /// Rows taken from disk.
    pub reused: usize,
    /// Rows computed now.
    pub computed: usize,
}

/// SHA-256 of a text, hex.
pub fn text_hash(text: &str) -> String {
    crate::atomic::sha256_hex(text.as_bytes())
}

/// A stored table: its rows keyed by the SHA-256 of their text, and the
/// (id, hash) sequence it was written for.
#[derive(Default)]
struct StoredTable {
    rows: HashMap<String, Vec<f32>>,
    ids: Vec<String>,
    hashes: Vec<String>,
}

/// The advice that ends every damaged-table message.
fn damaged(what: String, key: &StoreKey) -> String {
    format!(
        "{what}; the table is damaged or was half-rewritten: delete {} and {} to recompute it",
        key.tensor_path().display(),
        key.index_path().display()
    )
}

/// Checks an index's own checksum and structure against `dim`; returns
/// the frames of each entry.
fn check_index(index: &Index, key: &StoreKey, dim: usize) -> Result<Vec<usize>> {
    let path = key.index_path();
    let bad = |msg: String| store_err(&path, damaged(msg, key));
    if let Some(claimed) = &index.index_sha256 {
        let actual = index.own_sha256();
        if *claimed != actual {
            return Err(bad(format!(
                "its checksum is {claimed} but its content hashes to {actual}"
            )));
        }
    }
    let n = index.text_sha256.len();
    if index.ids.len() != n {
        return Err(bad(format!("{} ids for {n} text hashes", index.ids.len())));
    }
    if let Some(i) = index
        .text_sha256
        .iter()
        .position(|h| !crate::atomic::is_sha256_hex(h))
    {
        return Err(bad(format!(
            "entry {i} ({:?}) has text hash {:?}, not a SHA-256",
            index.ids[i], index.text_sha256[i]
        )));
    }
    if index.dim != dim {
        return Err(bad(format!(
            "rows of width {} where encoder {:?} makes {dim}",
            index.dim, index.encoder_fingerprint
        )));
    }
    let frames = index.frames.clone().unwrap_or_else(|| vec![1; n]);
    if frames.len() != n {
        return Err(bad(format!(
            "{} frame counts for {n} entries",
            frames.len()
        )));
    }
    if let Some(i) = frames.iter().position(|&f| f == 0) {
        return Err(bad(format!("entry {i} ({:?}) has 0 frames", index.ids[i])));
    }
    Ok(frames)
}

/// A stored table. `None` when the table is absent or was made by another
/// encoder (or schema); an error when it is damaged.
fn load_rows(key: &StoreKey, fingerprint: &str, dim: usize) -> Result<Option<StoredTable>> {
    let index_path = key.index_path();
    let tensor_path = key.tensor_path();
    if !index_path.exists() || !tensor_path.exists() {
        return Ok(None);
    }
    let index: Index =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(io_err(&index_path))?)
            .map_err(|e| store_err(&index_path, damaged(e.to_string(), key)))?;
    if index.schema_version != SCHEMA_VERSION || index.encoder_fingerprint != fingerprint {
        return Ok(None);
    }
    let frames = check_index(&index, key, dim)?;
    let bytes = std::fs::read(&tensor_path).map_err(io_err(&tensor_path))?;
    if let Some(claimed) = &index.tensor_sha256 {
        let actual = crate::atomic::sha256_hex(&bytes);
        if *claimed != actual {
            return Err(store_err(
                &tensor_path,
                damaged(
                    format!("it hashes to {actual}, its index says {claimed}"),
                    key,
                ),
            ));
        }
    }
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| store_err(&tensor_path, damaged(e.to_string(), key)))?;
    let view = tensors
        .tensor(TENSOR_NAME)
        .map_err(|e| store_err(&tensor_path, damaged(e.to_string(), key)))?;
    let n = frames
        .iter()
        .try_fold(0usize, |sum, &f| sum.checked_add(f))
        .ok_or_else(|| {
            store_err(
                &index_path,
                damaged("frame counts overflow".to_string(), key),
            )
        })?;
    if view.dtype() != Dtype::F32 || view.shape() != [n, index.dim] {
        return Err(store_err(
            &tensor_path,
            damaged(
                format!(
                    "expected f32 [{n}, {}] for {} entries, found {:?} {:?}",
                    index.dim,
                    index.text_sha256.len(),
                    view.dtype(),
                    view.shape()
                ),
                key,
            ),
        ));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(store_err(
            &tensor_path,
            damaged(
                format!("value {i} (row {}) is NaN or infinite", i / index.dim),
                key,
            ),
        ));
    }
    let mut offset = 0;
    let rows = index
        .text_sha256
        .iter()
        .zip(frames)
        .map(|(hash, f)| {
            let row = values[offset..offset + f * index.dim].to_vec();
            offset += f * index.dim;
            (hash.clone(), row)
        })
        .collect();
    Ok(Some(StoredTable {
        rows,
        ids: index.ids,
        hashes: index.text_sha256,
    }))
}

/// Writes a table whose rows are one or more frames of width `dim`.
///
/// # Errors
/// A row that is empty or not whole frames; I/O or serialisation failures,
/// naming the file.
pub fn save_table(
    key: &StoreKey,
    fingerprint: &str,
    dim: usize,
    ids: &[String],
    hashes: &[String],
    rows: &[Vec<f32>],
) -> Result<()> {
    let dir = key.dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tensor_path = key.tensor_path();
    let mut flat: Vec<u8> = Vec::with_capacity(rows.iter().map(Vec::len).sum::<usize>() * 4);
    let mut frames = Vec::with_capacity(rows.len());
    for (id, row) in ids.iter().zip(rows) {
        if dim == 0 || row.is_empty() || row.len() % dim != 0 {
            return Err(store_err(
                &tensor_path,
                format!(
                    "{id}: row of {} values is not whole frames of {dim}",
                    row.len()
                ),
            ));
        }
        frames.push(row.len() / dim);
        flat.extend(row.iter().flat_map(|v| v.to_le_bytes()));
    }
    let total: usize = frames.iter().sum();
    let view = TensorView::new(Dtype::F32, vec![total, dim], &flat)
        .map_err(|e| store_err(&tensor_path, e.to_string()))?;
    let bytes = safetensors::serialize([(TENSOR_NAME, view)], None)
        .map_err(|e| store_err(&tensor_path, e.to_string()))?;
    // Each file goes to a temporary name first (see [`crate::atomic::write_file`]) so an
    // interrupted run never leaves a half-written file that the next run
    // would trust.
    // The index, written second, holds the tensor file's checksum: a crash
    // between the two renames (or another run renaming its own pair in
    // between) leaves a pair whose checksums disagree, which the next read
    // reports instead of using.
    let index_path = key.index_path();
    let mut index = Index {
        schema_version: SCHEMA_VERSION,
        encoder_fingerprint: fingerprint.to_string(),
        dim,
        ids: ids.to_vec(),
        text_sha256: hashes.to_vec(),
        frames: frames.iter().any(|&f| f != 1).then_some(frames),
        tensor_sha256: Some(crate::atomic::sha256_hex(&bytes)),
        index_sha256: None,
    };
    index.index_sha256 = Some(index.own_sha256());
    let json = serde_json::to_vec(&index).map_err(|e| store_err(&index_path, e.to_string()))?;
    crate::atomic::write_file(&tensor_path, &bytes)?;
    crate::atomic::write_file(&index_path, &json)?;
    Ok(())
}

/// Embeddings for `(id, text)` items, reusing the stored rows whose text is
/// unchanged and calling `compute` on the rest (in one call, in item order).
/// The table is rewritten to match `items` exactly.
///
/// # Errors
/// Store I/O errors, or whatever `compute` returns (converted by the caller's `E`).
pub fn cached_embeddings<E: From<Error>>(
    key: &StoreKey,
    fingerprint: &str,
    dim: usize,
    items: &[(String, String)],
    compute: impl FnOnce(&[&str]) -> std::result::Result<Vec<Vec<f32>>, E>,
) -> std::result::Result<(Vec<Vec<f32>>, CacheReport), E> {
    let hashes: Vec<String> = items.iter().map(|(_, t)| text_hash(t)).collect();
    let stored = load_rows(key, fingerprint, dim)?.unwrap_or_default();
    let missing: Vec<usize> = (0..items.len())
        .filter(|&i| !stored.rows.contains_key(&hashes[i]))
        .collect();
    let texts: Vec<&str> = missing.iter().map(|&i| items[i].1.as_str()).collect();
    let computed = if texts.is_empty() {
        Vec::new()
    } else {
        compute(&texts)?
    };
    if computed.len() != missing.len() {
        return Err(store_err(
            &key.tensor_path(),
            format!(
                "encoder returned {} rows for {} texts",
                computed.len(),
                missing.len()
            ),
        )
        .into());
    }
    let mut fresh: HashMap<&str, Vec<f32>> = HashMap::new();
    for (&i, row) in missing.iter().zip(computed) {
        fresh.insert(hashes[i].as_str(), row);
    }
    let rows: Vec<Vec<f32>> = hashes
        .iter()
        .map(|h| {
            stored
                .rows
                .get(h)
                .or_else(|| fresh.get(h.as_str()))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
    // Rewrite only when the table would change: a run that reuses every row
    // of an identical table (the usual case) leaves the files alone.
    if !missing.is_empty() || stored.ids != ids || stored.hashes != hashes {
        save_table(key, fingerprint, dim, &ids, &hashes, &rows)?;
    }
    let report = CacheReport {
        reused: items.len() - missing.len(),
        computed: missing.len(),
    };
    Ok((rows, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn key(root: &Path) -> StoreKey {
        StoreKey {
            root: root.into(),
            corpus: "c".into(),
            encoder: "e".into(),
            table: "train".into(),
        }
    }

    fn fake_encoder(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
    }

    #[test]
    fn second_run_reuses_and_changed_text_recomputes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let mut items = vec![
            ("a".to_string(), "hello".to_string()),
            ("b".to_string(), "hi".to_string()),
        ];
        let (rows, r) = cached_embeddings(&k, "fp1", 2, &items, fake_encoder).unwrap();
        assert_eq!(
            r,
            CacheReport {
                reused: 0,
                computed: 2
            }
        );
        assert_eq!(rows[0], vec![5.0, 1.0]);
        let (_, r) = cached_embeddings(&k, "fp1", 2, &items, fake_encoder).unwrap();
        assert_eq!(
            r,
            CacheReport {
                reused: 2,
                computed: 0
            }
        );
        items[1].1 = "hey there".into();
        let (rows, r) = cached_embeddings(&k, "fp1", 2, &items, fake_encoder).unwrap();
        assert_eq!(
            r,
            CacheReport {
                reused: 1,
                computed: 1
            }
        );
        assert_eq!(rows[1], vec![9.0, 1.0]);
        let (_, r) = cached_embeddings(&k, "fp2", 2, &items, fake_encoder).unwrap();
        assert_eq!(
            r,
            CacheReport {
                reused: 0,
                computed: 2
            },
            "a new encoder invalidates everything"
        );
    }

    #[test]
    fn sequence_rows_round_trip_and_ragged_rows_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        // One frame of width 2 per character: rows of 2, 6 and 4 values.
        let frames = |texts: &[&str]| -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| (0..2 * t.len()).map(|i| i as f32).collect())
                .collect())
        };
        let items: Vec<(String, String)> = ["a", "abc", "ab"]
            .iter()
            .map(|t| (format!("id-{t}"), t.to_string()))
            .collect();
        let (first, _) = cached_embeddings(&k, "fp", 2, &items, frames).unwrap();
        let (again, r) = cached_embeddings(&k, "fp", 2, &items, frames).unwrap();
        assert_eq!(r.reused, 3);
        assert_eq!(first, again);
        assert_eq!(again[1], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

        let ragged = |texts: &[&str]| -> Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|_| vec![1.0; 3]).collect())
        };
        let items = vec![("odd".to_string(), "new text".to_string())];
        let err = cached_embeddings(&k, "fp", 2, &items, ragged)
            .unwrap_err()
            .to_string();
        assert!(err.contains("odd") && err.contains("whole frames"), "{err}");
    }

    /// Repeated texts (MELD has hundreds of "Yeah.") share one cached row;
    /// an unchanged table is not rewritten, so concurrent runs can share it.
    #[cfg(unix)]
    #[test]
    fn unchanged_table_with_repeated_texts_is_not_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let items: Vec<(String, String)> = ["Yeah.", "No!", "Yeah."]
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("u{i}"), t.to_string()))
            .collect();
        cached_embeddings(&k, "fp", 2, &items, fake_encoder).unwrap();
        let inode = std::fs::metadata(k.tensor_path()).unwrap().ino();
        let (rows, r) = cached_embeddings(&k, "fp", 2, &items, fake_encoder).unwrap();
        assert_eq!(r.reused, 3);
        assert_eq!(rows[0], rows[2]);
        assert_eq!(std::fs::metadata(k.tensor_path()).unwrap().ino(), inode);
    }

    /// A byte flipped inside a stored value keeps the safetensors file
    /// valid; only the checksum tells. The same for an index whose frame
    /// counts were swapped (same total), which would hand rows to the wrong
    /// texts.
    #[test]
    fn silent_damage_is_caught_by_the_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let frames = |texts: &[&str]| -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| vec![t.len() as f32; 2 * t.len()])
                .collect())
        };
        let items: Vec<(String, String)> = ["a", "abc"]
            .iter()
            .map(|t| (format!("id-{t}"), t.to_string()))
            .collect();
        cached_embeddings(&k, "fp", 2, &items, frames).unwrap();
        let tensor = std::fs::read(k.tensor_path()).unwrap();
        let mut flipped = tensor.clone();
        *flipped.last_mut().unwrap() ^= 0x01;
        std::fs::write(k.tensor_path(), &flipped).unwrap();
        let err = cached_embeddings(&k, "fp", 2, &items, frames)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.safetensors")
                && err.contains("hashes to")
                && err.contains("delete"),
            "{err}"
        );
        std::fs::write(k.tensor_path(), &tensor).unwrap();
        let index = std::fs::read_to_string(k.index_path()).unwrap();
        assert!(index.contains(r#""frames":[1,3]"#), "{index}");
        std::fs::write(k.index_path(), index.replace("[1,3]", "[3,1]")).unwrap();
        let err = cached_embeddings(&k, "fp", 2, &items, frames)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.index.json") && err.contains("checksum"),
            "{err}"
        );
        // An index from before the checksums is still read.
        let mut old: serde_json::Value = serde_json::from_str(&index).unwrap();
        let fields = old.as_object_mut().unwrap();
        fields.remove("tensor_sha256");
        fields.remove("index_sha256");
        std::fs::write(k.index_path(), old.to_string()).unwrap();
        let (rows, r) = cached_embeddings(&k, "fp", 2, &items, frames).unwrap();
        assert_eq!((r.reused, rows[1].len()), (2, 6));
    }

    /// A crash between the two renames of a rewrite (or another run
    /// renaming its pair in between) leaves a new tensor beside the old
    /// index: same shape, other texts.
    #[test]
    fn a_tensor_from_another_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let items = |t: &str| vec![("a".to_string(), t.to_string())];
        cached_embeddings(&k, "fp", 2, &items("old"), fake_encoder).unwrap();
        let old_index = std::fs::read(k.index_path()).unwrap();
        cached_embeddings(&k, "fp", 2, &items("newer"), fake_encoder).unwrap();
        std::fs::write(k.index_path(), old_index).unwrap();
        let err = cached_embeddings(&k, "fp", 2, &items("old"), fake_encoder)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.safetensors") && err.contains("hashes to"),
            "{err}"
        );
    }

    #[test]
    fn inconsistent_index_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let items = vec![("a".to_string(), "x".to_string())];
        cached_embeddings(&k, "fp", 2, &items, fake_encoder).unwrap();
        let good: serde_json::Value =
            serde_json::from_slice(&std::fs::read(k.index_path()).unwrap()).unwrap();
        for (field, value, want) in [
            ("ids", serde_json::json!([]), "0 ids for 1 text hashes"),
            ("dim", serde_json::json!(3), "width 3"),
            ("text_sha256", serde_json::json!(["xyz"]), "not a SHA-256"),
            ("frames", serde_json::json!([0]), "0 frames"),
            ("frames", serde_json::json!([1, 1]), "2 frame counts"),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            // Without the index checksum, so each structural check is reached.
            bad.as_object_mut().unwrap().remove("index_sha256");
            std::fs::write(k.index_path(), bad.to_string()).unwrap();
            let err = cached_embeddings(&k, "fp", 2, &items, fake_encoder)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("train.index.json") && err.contains(want),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn corrupt_table_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path());
        let items = vec![("a".to_string(), "x".to_string())];
        cached_embeddings(&k, "fp", 2, &items, fake_encoder).unwrap();
        std::fs::write(k.tensor_path(), b"garbage").unwrap();
        let err = cached_embeddings(&k, "fp", 2, &items, fake_encoder)
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.safetensors"), "{err}");
    }
}
