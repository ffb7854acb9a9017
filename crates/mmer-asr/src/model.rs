//! A Whisper model directory as `scripts/setup.sh` installs it, loaded on
//! candle: `model.safetensors` (Hugging Face tensor names, converted from
//! CTranslate2 by `scripts/whisper_ct2_to_safetensors.py`), `config.json`
//! (the Hugging Face fields plus Whisper's suppress lists) and
//! `tokenizer.json`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::mel::MelExtractor;
use crate::net::{NetConfig, WhisperNet};

/// The Whisper models `scripts/setup.sh` installs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AsrModel {
    /// Whisper tiny.en (39 M parameters, English only): the default.
    #[default]
    #[serde(rename = "tiny.en")]
    #[cfg_attr(feature = "clap", value(name = "tiny.en"))]
    TinyEn,
    /// Whisper base (74 M parameters, multilingual).
    #[serde(rename = "base")]
    #[cfg_attr(feature = "clap", value(name = "base"))]
    Base,
}

impl AsrModel {
    /// Every model, in size order.
    pub const ALL: [AsrModel; 2] = [AsrModel::TinyEn, AsrModel::Base];

    /// The model's name as users write it (`tiny.en`, `base`).
    pub fn name(self) -> &'static str {
        match self {
            AsrModel::TinyEn => "tiny.en",
            AsrModel::Base => "base",
        }
    }

    /// Its directory under the models directory.
    pub fn dir(self, models_dir: &Path) -> PathBuf {
        models_dir.join(format!("whisper-{}", self.name()))
    }
}

impl fmt::Display for AsrModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AsrModel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        AsrModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown Whisper model {s:?} (known: tiny.en, base)"))
    }
}

/// The special token ids decoding needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpecialTokens {
    pub sot: u32,
    pub eot: u32,
    pub no_timestamps: u32,
    pub no_speech: u32,
    /// `<|0.00|>`; every id from here to the vocabulary's end is a timestamp.
    pub timestamp_begin: u32,
    /// `<|transcribe|>` (multilingual models only).
    pub transcribe: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct SuppressLists {
    suppress_tokens: Vec<u32>,
    begin_suppress_tokens: Vec<u32>,
}

/// A loaded Whisper model with its tokenizer and mel front end.
pub struct Whisper {
    pub(crate) net: WhisperNet,
    pub(crate) mel: MelExtractor,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) tokens: SpecialTokens,
    pub(crate) suppress: Vec<u32>,
    pub(crate) begin_suppress: Vec<u32>,
    pub(crate) multilingual: bool,
    pub(crate) vocab_size: usize,
    pub(crate) device: Device,
    kind: AsrModel,
}

impl fmt::Debug for Whisper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Whisper")
            .field("model", &self.kind)
            .field("multilingual", &self.multilingual)
            .finish_non_exhaustive()
    }
}

impl Whisper {
    /// Loads `kind` from its directory under `models_dir`.
    ///
    /// # Errors
    /// [`Error::MissingModelFile`] when setup has not installed it,
    /// [`Error::Config`], [`Error::Weights`] or [`Error::Tokenizer`] when a
    /// file is damaged or describes another model.
    pub fn load(kind: AsrModel, models_dir: &Path) -> Result<Self> {
        let dir = kind.dir(models_dir);
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::MissingModelFile { path })
            }
        };
        let (config_path, weights_path, tokenizer_path) = (
            file("config.json")?,
            file("model.safetensors")?,
            file("tokenizer.json")?,
        );
        let text = std::fs::read_to_string(&config_path).map_err(|source| Error::Io {
            path: config_path.clone(),
            source,
        })?;
        let config_err = |message: String| Error::Config {
            path: config_path.clone(),
            message,
        };
        let config: NetConfig =
            serde_json::from_str(&text).map_err(|e| config_err(format!("invalid JSON: {e}")))?;
        let lists: SuppressLists =
            serde_json::from_str(&text).map_err(|e| config_err(format!("invalid JSON: {e}")))?;
        if config.num_mel_bins != 80 {
            return Err(config_err(format!(
                "num_mel_bins {}; mmer's front end computes 80",
                config.num_mel_bins
            )));
        }

        let device = Device::Cpu;
        let weights_err = |source| Error::Weights {
            path: weights_path.clone(),
            source,
        };
        let tensors =
            candle_core::safetensors::load(&weights_path, &device).map_err(weights_err)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let net = WhisperNet::load(vb, &config).map_err(weights_err)?;

        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| Error::Tokenizer {
            path: tokenizer_path.clone(),
            message: e.to_string(),
        })?;
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| Error::Tokenizer {
                    path: tokenizer_path.clone(),
                    message: format!("no {token} token"),
                })
        };
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = ["<|nospeech|>", "<|nocaptions|>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .ok_or_else(|| Error::Tokenizer {
                path: tokenizer_path.clone(),
                message: "no <|nospeech|> or <|nocaptions|> token".into(),
            })?;
        // Multilingual vocabularies have one more token (<|endoftext|> moves).
        let multilingual = config.vocab_size >= 51865;
        let tokens = SpecialTokens {
            sot: id("<|startoftranscript|>")?,
            eot: id("<|endoftext|>")?,
            no_timestamps,
            no_speech,
            timestamp_begin: no_timestamps + 1,
            transcribe: if multilingual {
                Some(id("<|transcribe|>")?)
            } else {
                None
            },
        };
        let vocab_size = config.vocab_size;
        if tokens.timestamp_begin as usize + 1501 > vocab_size {
            return Err(config_err(format!(
                "vocab_size {vocab_size} leaves no room for 1501 timestamp tokens after id {}",
                tokens.timestamp_begin
            )));
        }
        Ok(Self {
            net,
            mel: MelExtractor::new(config.num_mel_bins),
            tokenizer,
            tokens,
            suppress: lists.suppress_tokens,
            begin_suppress: lists.begin_suppress_tokens,
            multilingual,
            vocab_size,
            device,
            kind,
        })
    }

    /// Which model this is.
    pub fn kind(&self) -> AsrModel {
        self.kind
    }

    /// Whether it transcribes other languages than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// The token id of language `code` (`"en"`, `"de"`, …) on a
    /// multilingual model.
    pub(crate) fn language_token(&self, code: &str) -> Result<u32> {
        let err = |reason: &str| Error::Language {
            language: code.to_string(),
            reason: reason.to_string(),
        };
        if !self.multilingual {
            return if code == "en" {
                Err(err("English-only models take no language token"))
            } else {
                Err(err(&format!("{} transcribes English only", self.kind)))
            };
        }
        self.tokenizer
            .token_to_id(&format!("<|{code}|>"))
            .ok_or_else(|| err("not a Whisper language code"))
    }
}
