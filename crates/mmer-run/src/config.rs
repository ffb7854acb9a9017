//! A run's whole definition, as `config.toml` holds it.

use std::path::Path;

use mmer_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::error::{Context, Error, Result};

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

    /// The config with `KEY=VALUE` settings applied, e.g.
    /// `train.model.joint.nce_weight=0` or `train.seeds=[0,1]`: `KEY` is a
    /// dotted path into the TOML layout of a run config (`[train.model]`
    /// → `train.model.…`), `VALUE` a TOML value (a bare word that is not
    /// one, like `same_label`, is read as a string). The result is checked
    /// like a config file, so a misspelt key is an error.
    ///
    /// # Errors
    /// A setting without `=`, a key through something that is not a
    /// table, or a result that is not a run config, naming the setting.
    pub fn with_settings(self, settings: &[String]) -> Result<Self> {
        if settings.is_empty() {
            return Ok(self);
        }
        let mut root = toml::Table::try_from(&self)?;
        for setting in settings {
            let refused = |why: &str| Error::Refused(format!("--set {setting}: {why}"));
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| refused("expected KEY=VALUE"))?;
            let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
                Ok(mut t) => t.remove("v").expect("parsed key"),
                Err(_) => toml::Value::String(value.trim().to_string()),
            };
            let path: Vec<&str> = key.trim().split('.').collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(refused("empty key"));
            }
            let (last, parents) = path.split_last().expect("split yields one part");
            let mut table = &mut root;
            for part in parents {
                table = table
                    .entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| refused(&format!("`{part}` is not a table")))?;
            }
            table.insert(last.to_string(), value);
        }
        toml::Value::Table(root)
            .try_into()
            .with_context(|| format!("applying --set {}", settings.join(" --set ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DatasetKind};

    #[test]
    fn settings_override_nested_keys_and_refuse_unknown_ones() {
        let base = RunConfig {
            data: DataConfig::new(DatasetKind::Synthetic, None),
            train: TrainConfig::default(),
        };
        let set = |s: &[&str]| {
            base.clone()
                .with_settings(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let config = set(&[
            "train.model.joint.nce_weight=0",
            "train.model.joint.positives=same_label",
            "train.seeds=[3, 4]",
            "train.learning_rate = 0.01",
        ])
        .unwrap();
        assert_eq!(config.train.model.joint.nce_weight, 0.0);
        assert_eq!(
            config.train.model.joint.positives,
            mmer_models::multimodal::JointPositives::SameLabel
        );
        assert_eq!(config.train.seeds, vec![3, 4]);
        assert_eq!(config.train.learning_rate, 0.01);
        assert_eq!(set(&[]).unwrap(), base);
        for bad in [
            "train.model.joint.nce_wieght=0",
            "train.seeds",
            "train.seeds.x=1",
            "train..seeds=1",
            "train.model.fusion=nonsense",
        ] {
            let err = set(&[bad]).unwrap_err().to_string();
            assert!(
                err.contains(bad.split('=').next().unwrap()) || err.contains(bad),
                "{bad}: {err}"
            );
        }
    }
}
