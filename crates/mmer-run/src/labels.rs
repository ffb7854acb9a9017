//! The label set of a run: a built-in preset by name, or the classes the
//! run declares.
//!
//! In a run config, `[data] labels = "meld"` names a preset (one of
//! [`PRESETS`]), and a table declares a set of one's own:
//!
//! ```toml
//! [data.labels]
//! name = "mine"                        # optional, default "custom"
//! classes = ["calm", "tense", "happy"] # in index order
//! multi_label = false                  # default: one class per turn
//! ```
//!
//! On the command line, `--labels meld` names a preset and
//! `--labels calm,tense,happy` declares classes; `--multi-label` makes the
//! declared classes multi-label. The conversation files name these classes
//! (`mmer_data::conversation`, "Labels"); a checkpoint records the whole
//! set, so `predict` and `eval` show the declared names without the config.

use mmer_core::LabelSpace;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The built-in label sets, by name.
pub const PRESETS: [&str; 3] = ["meld", "iemocap", "synthetic"];

/// The name of a declared set that gives none.
pub const DEFAULT_NAME: &str = "custom";

/// A run's label set, as its config gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    /// A built-in set by name (one of [`PRESETS`]).
    Preset(String),
    /// Classes the run declares (checked by [`Labels::declare`]).
    Declared(LabelSpace),
}

impl Labels {
    /// A preset by name.
    ///
    /// # Errors
    /// A name that is not one of [`PRESETS`], listing them.
    pub fn preset(name: &str) -> Result<Self> {
        preset_space(name)?;
        Ok(Labels::Preset(name.to_string()))
    }

    /// A declared set: `classes` in index order, named `name`.
    ///
    /// # Errors
    /// No classes, a class that is blank, has surrounding whitespace,
    /// contains `;` or is repeated ([`LabelSpace::declared`]); a name that
    /// is a preset's while the classes are not that preset's (MELD's
    /// five-class score, for one, goes by the name).
    pub fn declare(name: &str, classes: Vec<String>, multi_label: bool) -> Result<Self> {
        let space = LabelSpace::declared(name, classes, multi_label)?;
        if PRESETS.contains(&name) && preset_space(name)? != space {
            return Err(Error::Refused(format!(
                "label set {name:?}: {name} is a preset with other classes; give the declared set another name, or use the preset (labels = \"{name}\")"
            )));
        }
        Ok(Labels::Declared(space))
    }

    /// `--labels`: a preset name, or declared classes separated by commas
    /// (surrounding spaces trimmed), multi-label with `--multi-label`.
    ///
    /// # Errors
    /// An unknown preset, a bad class list (as [`Labels::declare`]), or
    /// `multi_label` with a preset (every preset is single-label).
    pub fn from_arg(arg: &str, multi_label: bool) -> Result<Self> {
        if arg.contains(',') {
            let classes = arg.split(',').map(|c| c.trim().to_string()).collect();
            return Self::declare(DEFAULT_NAME, classes, multi_label);
        }
        let labels = Self::preset(arg.trim())?;
        match multi_label {
            true => labels.into_multi_label(),
            false => Ok(labels),
        }
    }

    /// The same classes, several allowed per turn (`--multi-label` on a
    /// config's declared set).
    ///
    /// # Errors
    /// A preset: presets are single-label.
    pub fn into_multi_label(self) -> Result<Self> {
        match self {
            Labels::Declared(space) => Self::declare(&space.name, space.classes, true),
            Labels::Preset(name) => Err(Error::Refused(format!(
                "--multi-label needs declared classes (--labels a,b,c or [data.labels] classes = [...]); the preset {name} is single-label"
            ))),
        }
    }

    /// The label space: the preset's, or the declared one.
    ///
    /// # Errors
    /// A preset name that is not one of [`PRESETS`].
    pub fn space(&self) -> Result<LabelSpace> {
        match self {
            Labels::Preset(name) => preset_space(name),
            Labels::Declared(space) => Ok(space.clone()),
        }
    }
}

impl std::fmt::Display for Labels {
    /// As `--labels` takes it: `meld`, or `calm,tense,happy`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Labels::Preset(name) => f.write_str(name),
            Labels::Declared(space) => f.write_str(&space.classes.join(",")),
        }
    }
}

/// The label space of the preset `name`.
///
/// # Errors
/// A name that is not one of [`PRESETS`], listing them and how to declare
/// classes instead.
pub fn preset_space(name: &str) -> Result<LabelSpace> {
    match name {
        "meld" => Ok(LabelSpace::meld()),
        "iemocap" => Ok(LabelSpace::iemocap()),
        "synthetic" => Ok(mmer_data::synthetic::label_space()),
        other => Err(Error::Refused(format!(
            "unknown label preset {other:?} (presets: {}); to use your own classes, list them: --labels calm,tense,happy, or [data.labels] classes = [\"calm\", \"tense\", \"happy\"] in the config",
            PRESETS.join(", ")
        ))),
    }
}

/// The table form of a declared set in a config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredForm {
    #[serde(default = "default_name")]
    name: String,
    classes: Vec<String>,
    #[serde(default)]
    multi_label: bool,
}

fn default_name() -> String {
    DEFAULT_NAME.to_string()
}

impl Serialize for Labels {
    /// A preset as its name, a declared set as the table of the module doc,
    /// so that a run's saved config reads back to the same value.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Labels::Preset(name) => serializer.serialize_str(name),
            Labels::Declared(space) => space.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// A string names a preset, a table declares classes; both are checked
    /// here, so a bad set fails where the config is read.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Labels;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a preset name (meld, iemocap, synthetic) or a table with classes = [...]",
                )
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> std::result::Result<Labels, E> {
                Labels::preset(name).map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Labels, A::Error> {
                let form =
                    DeclaredForm::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Labels::declare(&form.name, form.classes, form.multi_label)
                    .map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DatasetKind};

    fn data(toml_labels: &str) -> Result<DataConfig> {
        let text = format!("dataset = \"conversations\"\npath = \"mine\"\n{toml_labels}");
        Ok(toml::from_str(&text)?)
    }

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn presets_keep_their_old_form_and_declared_sets_round_trip() {
        // Every existing config (and saved run config) reads the same.
        let config = data("labels = \"iemocap\"").unwrap();
        assert_eq!(config.labels, Some(Labels::Preset("iemocap".into())));
        assert_eq!(config.label_space().unwrap(), LabelSpace::iemocap());
        assert!(
            toml::to_string(&config)
                .unwrap()
                .contains("labels = \"iemocap\"")
        );
        assert_eq!(data("").unwrap().label_space().unwrap(), LabelSpace::meld());

        let config = data(
            "[labels]\nname = \"mine\"\nclasses = [\"calm\", \"tense\", \"happy\"]\nmulti_label = true\n",
        )
        .unwrap();
        let space = config.label_space().unwrap();
        assert_eq!(
            (
                space.name.as_str(),
                space.classes.clone(),
                space.multi_label
            ),
            ("mine", classes(&["calm", "tense", "happy"]), true)
        );
        // The saved config.toml and results.json read back to the same.
        let back: DataConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<DataConfig>(&json).unwrap(), config);

        let config = data("labels = { classes = [\"calm\", \"tense\"] }").unwrap();
        let space = config.label_space().unwrap();
        assert_eq!(
            (space.name.as_str(), space.multi_label),
            (DEFAULT_NAME, false)
        );
    }

    #[test]
    fn bad_label_sets_fail_where_the_config_is_read() {
        for (labels, problem) in [
            (
                "labels = \"memld\"",
                "unknown label preset \"memld\" (presets: meld, iemocap, synthetic)",
            ),
            ("[labels]\nclasses = []", "no classes declared"),
            ("[labels]\nclasses = [\"calm\"]", "at least two classes"),
            (
                "[labels]\nclasses = [\"calm\", \"calm\"]",
                "\"calm\" is declared twice",
            ),
            (
                "[labels]\nclasses = [\"calm\", \"\"]",
                "class 2 has an empty name",
            ),
            (
                "[labels]\nclasses = [\"calm\", \"tense \"]",
                "\"tense \" starts or ends with whitespace",
            ),
            ("[labels]\nclasses = [\"calm\", \"a;b\"]", "contains ';'"),
            (
                "[labels]\nclases = [\"calm\", \"tense\"]",
                "unknown field `clases`",
            ),
            ("[labels]\nmulti_label = true", "missing field `classes`"),
            (
                "[labels]\nname = \"meld\"\nclasses = [\"calm\", \"tense\"]",
                "meld is a preset with other classes",
            ),
            (
                "labels = 3",
                "a preset name (meld, iemocap, synthetic) or a table",
            ),
        ] {
            let err = data(labels).unwrap_err().to_string();
            assert!(err.contains(problem), "{labels}: {err}");
        }
        // A declared set may take a preset's name only with its classes.
        let meld = LabelSpace::meld();
        assert_eq!(
            Labels::declare("meld", meld.classes.clone(), false).unwrap(),
            Labels::Declared(meld)
        );
    }

    #[test]
    fn the_flag_takes_a_preset_or_a_class_list() {
        assert_eq!(
            Labels::from_arg("synthetic", false).unwrap(),
            Labels::Preset("synthetic".into())
        );
        let labels = Labels::from_arg("calm, tense,happy", false).unwrap();
        assert_eq!(labels.to_string(), "calm,tense,happy");
        let space = labels.space().unwrap();
        assert_eq!(space.classes, classes(&["calm", "tense", "happy"]));
        assert!(!space.multi_label);
        assert!(
            Labels::from_arg("joy,fear", true)
                .unwrap()
                .space()
                .unwrap()
                .multi_label
        );
        for (arg, multi, problem) in [
            ("calm", false, "unknown label preset \"calm\""),
            ("calm", false, "--labels calm,tense,happy"),
            ("calm,,tense", false, "class 2 has an empty name"),
            ("calm,tense,", false, "class 3 has an empty name"),
            ("calm,Calm", false, "differ only in case"),
            ("meld", true, "the preset meld is single-label"),
        ] {
            let err = Labels::from_arg(arg, multi).unwrap_err().to_string();
            assert!(err.contains(problem), "{arg}: {err}");
        }
        let declared = Labels::from_arg("a,b", false)
            .unwrap()
            .into_multi_label()
            .unwrap();
        assert!(declared.space().unwrap().multi_label);
    }

    #[test]
    fn labels_belong_to_conversations_data() {
        let config = DataConfig {
            labels: Some(Labels::from_arg("calm,tense", false).unwrap()),
            ..DataConfig::new(DatasetKind::Meld, None)
        };
        let err = config.check(&[]).unwrap_err().to_string();
        assert!(
            err.contains("--labels calm,tense applies to conversations data only"),
            "{err}"
        );
    }
}
