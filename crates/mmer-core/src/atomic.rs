//! Writes that never leave a half-written artefact behind.
//!
//! A file is written to a temporary sibling, flushed to disk, and renamed
//! over its destination ([`write_file`]); a directory is built under a
//! temporary sibling name and swapped into place ([`publish_dir`]). A crash
//! or a kill at any moment leaves either the old artefact or the new one,
//! never a mix, plus at worst a temporary sibling whose name says what it
//! is (`.<name>.partial-<pid>`). Renames are atomic within one filesystem,
//! which siblings always share.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Result;
use crate::error::io_err;

/// The temporary sibling of `path` that this process writes before renaming:
/// `.<name>.partial-<pid>` in the same directory.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary sibling, `fsync`, rename.
///
/// # Errors
/// [`crate::Error::Io`] naming the file that failed; `path` is then untouched.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = partial_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Moves the finished directory `staging` to `target`, replacing whatever
/// `target` held. The old `target` is first renamed aside and removed only
/// after the new one is in place, so an interruption leaves one of the two
/// complete directories at `target` (or, between the two renames, the old
/// one under its aside name `.<name>.old-<pid>`).
///
/// # Errors
/// [`crate::Error::Io`] naming the directory a rename failed on.
pub fn publish_dir(staging: &Path, target: &Path) -> Result<()> {
    let aside = {
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        target.with_file_name(format!(".{name}.old-{}", std::process::id()))
    };
    let had_old = target.exists();
    if had_old {
        std::fs::rename(target, &aside).map_err(io_err(target))?;
    }
    if let Err(e) = std::fs::rename(staging, target) {
        if had_old {
            let _ = std::fs::rename(&aside, target);
        }
        return Err(io_err(target)(e));
    }
    if had_old {
        std::fs::remove_dir_all(&aside).map_err(io_err(&aside))?;
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether `s` is a SHA-256 as [`sha256_hex`] writes it: 64 lower-case
/// hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lower-case hex SHA-256 of the file at `path`.
///
/// # Errors
/// [`crate::Error::Io`] when it cannot be read.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_err(path))?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_file(&path, b"old").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn write_file_into_a_missing_directory_fails_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("x.json");
        let err = write_file(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn publish_dir_swaps_in_the_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("seed-0");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("stale"), b"old").unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("model"), b"new").unwrap();
        publish_dir(&staging, &target).unwrap();
        assert!(!target.join("stale").exists(), "the old contents survived");
        assert_eq!(std::fs::read(target.join("model")).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        assert!(is_sha256_hex(abc));
        assert!(!is_sha256_hex(&abc.to_uppercase()) && !is_sha256_hex(&abc[1..]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(file_sha256(&path).unwrap(), abc);
    }
}
