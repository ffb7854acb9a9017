//! Where `scripts/setup.sh` installs model files: one directory shared by the
//! text encoders, the visual models and Whisper.

use std::path::PathBuf;

/// Environment variable that overrides the models directory.
pub const MODELS_DIR_ENV: &str = "MMER_MODELS_DIR";

/// The models directory: `$MMER_MODELS_DIR` if set and non-empty, else
/// `./models` relative to the working directory (where `scripts/setup.sh`
/// installs by default when run from the repository root).
pub fn default_models_dir() -> PathBuf {
    match std::env::var_os(MODELS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("models"),
    }
}
