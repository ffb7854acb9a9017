//! Content hash of a weights file, cached in a sidecar so it is cheap.
//!
//! Feature stores record which encoder produced them; the fingerprint
//! `"<kind>:<sha256 of model.safetensors>"` changes whenever the weights do.
//! Hashing 438 MB on every load would cost about a second, so the digest is
//! kept in `<weights>.sha256.json` next to the file, keyed by the file's size
//! and modification time: a stale or corrupt sidecar is recomputed, and a
//! read-only models directory only costs the recomputation.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the sidecar stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    /// File size in bytes when hashed.
    size: u64,
    /// Modification time when hashed: seconds since the Unix epoch.
    mtime_secs: u64,
    /// Sub-second part of the modification time.
    mtime_nanos: u32,
    /// Lower-case hex SHA-256 of the file.
    sha256: String,
}

/// Path of the sidecar for `weights`.
pub(crate) fn sidecar_path(weights: &Path) -> PathBuf {
    let mut name = weights.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256.json");
    weights.with_file_name(name)
}

/// SHA-256 (lower-case hex) of `weights`, from the sidecar when it is fresh.
///
/// # Errors
/// [`Error::Io`] when `weights` cannot be read. Failing to write the sidecar is
/// not an error (it is logged).
pub(crate) fn weights_sha256(weights: &Path) -> Result<String> {
    let io_err = |source| Error::Io {
        path: weights.to_path_buf(),
        source,
    };
    let meta = fs::metadata(weights).map_err(io_err)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let key = Sidecar {
        size: meta.len(),
        mtime_secs: mtime.as_secs(),
        mtime_nanos: mtime.subsec_nanos(),
        sha256: String::new(),
    };
    let sidecar = sidecar_path(weights);
    if let Some(cached) = read_sidecar(&sidecar)
        && cached.size == key.size
        && cached.mtime_secs == key.mtime_secs
        && cached.mtime_nanos == key.mtime_nanos
        && mmer_core::atomic::is_sha256_hex(&cached.sha256)
    {
        return Ok(cached.sha256);
    }
    let sha256 = hash_file(weights)?;
    let fresh = Sidecar { sha256, ..key };
    if let Err(err) = write_sidecar(&sidecar, &fresh) {
        tracing::warn!(path = %sidecar.display(), %err, "cannot cache the weights digest");
    }
    Ok(fresh.sha256)
}

/// Streams `path` through SHA-256.
pub(crate) fn hash_file(path: &Path) -> Result<String> {
    mmer_core::atomic::file_sha256(path).map_err(|e| match e {
        mmer_core::Error::Io { path, source } => Error::Io { path, source },
        other => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

fn read_sidecar(path: &Path) -> Option<Sidecar> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the sidecar atomically (a concurrent reader never sees half a
/// file); the error is only logged by the caller.
fn write_sidecar(path: &Path, sidecar: &Sidecar) -> std::result::Result<(), String> {
    let json = serde_json::to_string_pretty(sidecar).map_err(|e| e.to_string())?;
    mmer_core::atomic::write_file(path, (json + "\n").as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // sha256("abc"), FIPS 180-2 appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_and_caches_in_a_sidecar() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("model.safetensors");
        fs::write(&weights, b"abc").expect("write");
        assert_eq!(weights_sha256(&weights).expect("hash"), ABC);
        let sidecar = sidecar_path(&weights);
        assert!(sidecar.ends_with("model.safetensors.sha256.json"));
        let cached = read_sidecar(&sidecar).expect("sidecar written");
        assert_eq!(cached.sha256, ABC);
        assert_eq!(cached.size, 3);

        // A sidecar that matches size and mtime is trusted as is.
        let planted = Sidecar {
            sha256: "0".repeat(64),
            ..cached.clone()
        };
        write_sidecar(&sidecar, &planted).expect("plant");
        assert_eq!(weights_sha256(&weights).expect("cached"), "0".repeat(64));

        // A changed file (different size) is hashed again.
        fs::write(&weights, b"abcd").expect("rewrite");
        let digest = weights_sha256(&weights).expect("rehash");
        assert_ne!(digest, "0".repeat(64));
        assert_eq!(digest, hash_file(&weights).expect("direct"));
    }

    #[test]
    fn corrupt_sidecar_is_recomputed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("w.safetensors");
        fs::write(&weights, b"abc").expect("write");
        fs::write(sidecar_path(&weights), "not json").expect("write");
        assert_eq!(weights_sha256(&weights).expect("hash"), ABC);
    }

    #[test]
    fn missing_weights_name_the_file() {
        let err = weights_sha256(Path::new("/nonexistent/model.safetensors")).expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/model.safetensors"),
            "{err}"
        );
    }
}
