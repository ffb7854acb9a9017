//! A run's whole definition, as `config.toml` holds it.

use mmer_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::data::DataConfig;

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
