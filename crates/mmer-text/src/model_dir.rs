//! Where the installed encoder files live, and what their sentence-transformers
//! configuration says.
//!
//! `scripts/setup.sh` installs each model in the sentence-transformers layout:
//! `config.json` and `model.safetensors` for the transformer, `tokenizer.json`,
//! `modules.json` (the module stack), `sentence_bert_config.json`
//! (`max_seq_length`) and `1_Pooling/config.json` (the pooling mode). This
//! module reads the last three so the Rust pipeline does what the Python one
//! would, and refuses a stack it does not implement instead of guessing.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{EncoderKind, Error, Result};

/// The files of one installed encoder.
#[derive(Debug, Clone)]
pub(crate) struct ModelDir {
    kind: EncoderKind,
    root: PathBuf,
}

/// What the sentence-transformers files ask for after the transformer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    /// Inputs are truncated to this many tokens, special tokens included.
    pub max_seq_length: usize,
    /// Lower-case the text before tokenizing (sentence-transformers' own flag,
    /// separate from the tokenizer's normaliser).
    pub do_lower_case: bool,
    /// Width the pooling module expects.
    pub word_embedding_dimension: usize,
    /// A `Normalize` module follows pooling (L2 normalisation).
    pub normalize: bool,
}

#[derive(Debug, Deserialize)]
struct ModuleEntry {
    path: String,
    #[serde(rename = "type")]
    module_type: String,
}

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
    #[serde(default)]
    do_lower_case: bool,
}

// https://github.com/UKPLab/sentence-transformers/blob/v2.2.2/sentence_transformers/models/Pooling.py
#[derive(Debug, Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

impl ModelDir {
    /// The directory of `kind` under `models_dir`.
    pub fn new(kind: EncoderKind, models_dir: &Path) -> Self {
        Self {
            kind,
            root: models_dir.join(kind.dir_name()),
        }
    }

    /// The encoder's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn weights(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }

    fn modules(&self) -> PathBuf {
        self.root.join("modules.json")
    }

    fn sentence_bert_config(&self) -> PathBuf {
        self.root.join("sentence_bert_config.json")
    }

    /// Every file `load` reads, in the order it reads them.
    fn required(&self) -> [PathBuf; 5] {
        [
            self.config(),
            self.tokenizer(),
            self.modules(),
            self.sentence_bert_config(),
            self.weights(),
        ]
    }

    /// First required file that is missing, if any.
    pub fn first_missing(&self) -> Option<PathBuf> {
        self.required().into_iter().find(|path| !path.is_file())
    }

    /// Fails with [`Error::MissingModelFile`] naming the first missing file.
    pub fn check_installed(&self) -> Result<()> {
        match self.first_missing() {
            Some(path) => Err(Error::MissingModelFile {
                kind: self.kind,
                path,
            }),
            None => Ok(()),
        }
    }

    /// Reads `modules.json`, the pooling config and `sentence_bert_config.json`.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Json`] for unreadable files and
    /// [`Error::UnsupportedPipeline`] for anything but
    /// Transformer → mean Pooling → optional Normalize.
    pub fn pipeline(&self) -> Result<Pipeline> {
        let modules_path = self.modules();
        let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
        let unsupported = |reason: String| Error::UnsupportedPipeline {
            path: modules_path.clone(),
            reason,
        };
        let types: Vec<&str> = modules
            .iter()
            .map(|m| m.module_type.rsplit('.').next().unwrap_or_default())
            .collect();
        let normalize = match types.as_slice() {
            ["Transformer", "Pooling"] => false,
            ["Transformer", "Pooling", "Normalize"] => true,
            other => {
                return Err(unsupported(format!(
                    "module stack {other:?}, expected [Transformer, Pooling, Normalize?]"
                )));
            }
        };
        let pooling_path = self.root.join(&modules[1].path).join("config.json");
        let pooling: PoolingConfig = read_json(&pooling_path)?;
        let only_mean = pooling.pooling_mode_mean_tokens
            && !(pooling.pooling_mode_cls_token
                || pooling.pooling_mode_max_tokens
                || pooling.pooling_mode_mean_sqrt_len_tokens
                || pooling.pooling_mode_weightedmean_tokens
                || pooling.pooling_mode_lasttoken);
        if !only_mean {
            return Err(Error::UnsupportedPipeline {
                path: pooling_path,
                reason: "only pooling_mode_mean_tokens is implemented".to_string(),
            });
        }
        let st: SentenceBertConfig = read_json(&self.sentence_bert_config())?;
        if st.max_seq_length == 0 {
            return Err(Error::UnsupportedPipeline {
                path: self.sentence_bert_config(),
                reason: "max_seq_length is 0".to_string(),
            });
        }
        Ok(Pipeline {
            max_seq_length: st.max_seq_length,
            do_lower_case: st.do_lower_case,
            word_embedding_dimension: pooling.word_embedding_dimension,
            normalize,
        })
    }
}

/// Reads and parses a JSON file, naming it in any error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("joined path has a parent")).expect("mkdir");
        fs::write(path, text).expect("write fixture");
    }

    fn st_layout(modules: &str, pooling: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join(EncoderKind::MiniLm.dir_name());
        write(&root, "modules.json", modules);
        write(&root, "1_Pooling/config.json", pooling);
        write(
            &root,
            "sentence_bert_config.json",
            r#"{"max_seq_length": 256, "do_lower_case": false}"#,
        );
        tmp
    }

    const STACK: &str = r#"[
      {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
      {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]"#;
    const MEAN: &str = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
      "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
      "pooling_mode_mean_sqrt_len_tokens": false}"#;

    #[test]
    fn reads_the_all_minilm_pipeline() {
        let tmp = st_layout(STACK, MEAN);
        let dir = ModelDir::new(EncoderKind::MiniLm, tmp.path());
        let pipeline = dir.pipeline().expect("valid layout");
        assert_eq!(
            pipeline,
            Pipeline {
                max_seq_length: 256,
                do_lower_case: false,
                word_embedding_dimension: 384,
                normalize: true
            }
        );
    }

    #[test]
    fn refuses_cls_pooling() {
        let tmp = st_layout(
            STACK,
            &MEAN.replace(
                "\"pooling_mode_cls_token\": false",
                "\"pooling_mode_cls_token\": true",
            ),
        );
        let err = ModelDir::new(EncoderKind::MiniLm, tmp.path())
            .pipeline()
            .expect_err("cls pooling is not implemented");
        assert!(matches!(err, Error::UnsupportedPipeline { .. }), "{err}");
        assert!(err.to_string().contains("1_Pooling"), "{err}");
    }

    #[test]
    fn missing_files_name_the_path_and_the_setup_script() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ModelDir::new(EncoderKind::Mpnet, tmp.path());
        let err = dir.check_installed().expect_err("nothing installed");
        let message = err.to_string();
        assert!(message.contains("scripts/setup.sh"), "{message}");
        assert!(
            message.contains("all-mpnet-base-v2/config.json"),
            "{message}"
        );
    }
}
