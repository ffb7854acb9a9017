//! A run's whole definition, as `config.toml` holds it.

use std::path::Path;

use mmer_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::error::{Context, Result};

/// A complete, reproducible run: what data, how to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Data source.
    pub data: DataConfig,
    /// Training settings.
    #[serde(default)]
    pub train: TrainConfig,
}

impl RunConfig {
    /// Reads a run config (a `config.toml` of a run, or one under
    /// `docs/configs/`).
    ///
    /// # Errors
    /// An unreadable file, or TOML that is not a run config (unknown keys
    /// included), naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}
