//! Where a run's data comes from, and how text becomes features.
//!
//! A run config names a dataset and (for text) a frozen sentence encoder;
//! this module loads the corpus with `mmer-data` and attaches cached
//! embeddings from the feature store (`mmer-features`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mmer_core::{Corpus, Features, LabelSpace, Modality, Split};
use mmer_data::synthetic::SyntheticConfig;
use mmer_features::{EncoderKind, SentenceEncoder};
use serde::{Deserialize, Serialize};

/// Dataset formats mmer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// MELD transcripts: a directory with train/dev/test_sent_emo.csv.
    Meld,
    /// IEMOCAP transcripts pickle (speakers, labels, sentences, split ids).
    Iemocap,
    /// DialogueRNN/MMGCN feature pickle (IEMOCAP_features.pkl, MELD_features_raw.pkl).
    FeaturePickle,
    /// A user's own labelled conversations: a directory with train, valid
    /// and (optionally) test files in the conversation format (.jsonl or .csv).
    Conversations,
    /// Seeded synthetic multimodal conversations (the demo's data).
    Synthetic,
}

/// The data half of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset format.
    pub dataset: DatasetKind,
    /// File or directory of the dataset (not needed for `synthetic`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Frozen sentence encoder that turns transcripts into the text modality.
    /// For feature pickles, `None` keeps the pickle's own text features.
    #[serde(default)]
    pub text_encoder: Option<EncoderKind>,
    /// Give the text modality every token's state from the encoder (a
    /// sequence, for trainable pooling) instead of its sentence vector.
    #[serde(default)]
    pub text_tokens: bool,
    /// Feature-store directory for cached embeddings.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// Generator settings for `synthetic`.
    #[serde(default)]
    pub synthetic: Option<SyntheticConfig>,
    /// Label space of `conversations` data: meld, iemocap or synthetic.
    #[serde(default)]
    pub labels: Option<String>,
}

fn default_store() -> PathBuf {
    PathBuf::from("store")
}

impl DataConfig {
    /// A config for `dataset` at `path` with every other field at its default.
    pub fn new(dataset: DatasetKind, path: Option<PathBuf>) -> Self {
        Self {
            dataset,
            path,
            text_encoder: None,
            text_tokens: false,
            store: default_store(),
            synthetic: None,
            labels: None,
        }
    }

    /// The text feature source a checkpoint records: the encoder name, with
    /// `-tokens` when the model reads token states.
    pub fn text_source(&self) -> Option<String> {
        let suffix = if self.text_tokens { TOKENS_SUFFIX } else { "" };
        self.text_encoder.map(|e| format!("{}{suffix}", e.as_str()))
    }

    fn path(&self) -> Result<&Path> {
        self.path
            .as_deref()
            .with_context(|| format!("dataset {:?} needs a path (--data)", self.dataset))
    }

    /// Loads the corpus and attaches the features the given modalities need.
    pub fn load(&self, modalities: &[Modality]) -> Result<Corpus> {
        let mut corpus = match self.dataset {
            DatasetKind::Meld => mmer_data::meld::load_meld(self.path()?)?,
            DatasetKind::Iemocap => mmer_data::iemocap::load_iemocap_pickle(self.path()?)?,
            DatasetKind::FeaturePickle => mmer_data::feature_pickle::load_feature_pickle(
                self.path()?,
                &mmer_data::feature_pickle::FeaturePickleOptions::default(),
            )?,
            DatasetKind::Conversations => {
                load_conversation_dir(self.path()?, self.labels.as_deref().unwrap_or("meld"))?
            }
            DatasetKind::Synthetic => {
                mmer_data::synthetic::generate(&self.synthetic.clone().unwrap_or_default())
            }
        };
        let needs_text = modalities.contains(&Modality::Text);
        let has_text = corpus.modalities().contains(&Modality::Text);
        if needs_text && (self.text_encoder.is_some() || !has_text) {
            let kind = self.text_encoder.with_context(|| {
                format!(
                    "{} has no text features: choose a text encoder (--encoder minilm|mpnet)",
                    corpus.name
                )
            })?;
            let encoder = load_encoder(kind)?;
            attach_text_embeddings(&mut corpus, &encoder, &self.store, self.text_tokens)?;
        }
        for m in modalities {
            if !corpus.modalities().contains(m) {
                bail!(
                    "{} has no {m} features (it has: {})",
                    corpus.name,
                    corpus
                        .modalities()
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(corpus)
    }
}

/// Reads `train`, `valid` and optional `test` conversation files from `dir`.
fn load_conversation_dir(dir: &Path, labels: &str) -> Result<Corpus> {
    let labels = label_space(labels)?;
    let mut splits = std::collections::BTreeMap::new();
    for split in Split::ALL {
        let found = ["jsonl", "csv"]
            .iter()
            .map(|ext| dir.join(format!("{split}.{ext}")))
            .find(|p| p.exists());
        match found {
            Some(path) => {
                let mut dialogues = mmer_data::conversation::load_conversations(&path, &labels)?;
                for d in &mut dialogues {
                    // Dialogue ids must stay unique across splits.
                    d.id = format!("{split}/{}", d.id);
                }
                splits.insert(split, dialogues);
            }
            None if split == Split::Test => {}
            None => bail!("{}: missing {split}.jsonl or {split}.csv", dir.display()),
        }
    }
    let name = dir
        .file_name()
        .map_or("conversations".into(), |n| n.to_string_lossy().into_owned());
    Ok(Corpus {
        name,
        labels,
        splits,
    })
}

/// Loads a frozen sentence encoder from the installed weights.
pub fn load_encoder(kind: EncoderKind) -> Result<SentenceEncoder> {
    let dir = mmer_features::default_models_dir();
    SentenceEncoder::load(kind, &dir)
        .with_context(|| format!("loading the {kind:?} text encoder from {}", dir.display()))
}

/// Embeds every transcript of `corpus` (cached per split in the store) into
/// the text modality. An utterance without text is an error naming it.
pub fn attach_text_embeddings(
    corpus: &mut Corpus,
    encoder: &SentenceEncoder,
    store: &Path,
    tokens: bool,
) -> Result<()> {
    let corpus_name = corpus.name.clone();
    let (table, fingerprint) = if tokens {
        (
            format!("{}{TOKENS_SUFFIX}", encoder.name()),
            format!("{}+tokens", encoder.fingerprint()),
        )
    } else {
        (
            encoder.name().to_string(),
            encoder.fingerprint().to_string(),
        )
    };
    for split in Split::ALL {
        let Some(dialogues) = corpus.splits.get_mut(&split) else {
            continue;
        };
        let items = dialogues
            .iter()
            .flat_map(|d| &d.utterances)
            .map(|u| {
                let text = u
                    .text
                    .clone()
                    .with_context(|| format!("utterance {} has no transcript", u.id))?;
                Ok((u.id.clone(), text))
            })
            .collect::<Result<Vec<_>>>()?;
        if items.is_empty() {
            continue;
        }
        let key = mmer_core::store::StoreKey {
            root: store.to_path_buf(),
            corpus: corpus_name.clone(),
            encoder: table.clone(),
            table: split.as_str().to_string(),
        };
        let dim = encoder.dim();
        let (rows, report) =
            mmer_core::store::cached_embeddings(&key, &fingerprint, dim, &items, |texts| {
                let bar = indicatif::ProgressBar::new(texts.len() as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "embedding {msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_message(format!("{corpus_name}/{split} ({table})"));
                let progress = |done, _| bar.set_position(done as u64);
                let rows = if tokens {
                    encoder.embed_tokens_with_progress(texts, progress)
                } else {
                    encoder.embed_with_progress(texts, progress)
                };
                bar.finish_and_clear();
                rows.map_err(anyhow::Error::from)
            })?;
        tracing::info!(corpus = %corpus_name, %split, reused = report.reused, computed = report.computed, "text embeddings");
        let mut rows = rows.into_iter();
        for u in dialogues.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
            if let Some(row) = rows.next() {
                let features = Features::sequence(row.len() / dim, dim, row)
                    .with_context(|| format!("text features of {}", u.id))?;
                u.features.insert(Modality::Text, features);
            }
        }
    }
    Ok(())
}

/// Label space by name, for user conversation files.
pub fn label_space(name: &str) -> Result<LabelSpace> {
    match name {
        "meld" => Ok(LabelSpace::meld()),
        "iemocap" => Ok(LabelSpace::iemocap()),
        "synthetic" => Ok(mmer_data::synthetic::label_space()),
        other => bail!("unknown label space {other:?} (meld, iemocap, synthetic)"),
    }
}

/// Suffix of a checkpoint's text source when the model reads token states.
const TOKENS_SUFFIX: &str = "-tokens";

/// Turns raw transcripts into the text modality a model was trained on:
/// sentence vectors, or token states for trainable pooling.
#[derive(Debug)]
pub struct TextFeaturizer {
    encoder: SentenceEncoder,
    tokens: bool,
}

impl TextFeaturizer {
    /// Embeds every transcript of `dialogues` into the text modality (no
    /// cache: the online path of `predict`).
    pub fn embed(&self, dialogues: &mut [mmer_core::Dialogue]) -> Result<()> {
        let dim = self.encoder.dim();
        for d in dialogues {
            let texts: Vec<&str> = d
                .utterances
                .iter()
                .map(|u| u.text.as_deref().unwrap_or(""))
                .collect();
            let rows = if self.tokens {
                self.encoder.embed_tokens_with_progress(&texts, |_, _| {})?
            } else {
                self.encoder.embed(&texts)?
            };
            for (u, row) in d.utterances.iter_mut().zip(rows) {
                let features = Features::sequence(row.len() / dim, dim, row)?;
                u.features.insert(Modality::Text, features);
            }
        }
        Ok(())
    }
}

/// What a checkpoint needs to read raw transcripts, if it reads text.
///
/// A model trained on a pickle's precomputed text features cannot embed
/// new text: that is an error naming the model.
pub fn checkpoint_encoder(
    checkpoint: &mmer_train::Checkpoint,
    model: &Path,
) -> Result<Option<TextFeaturizer>> {
    let uses_text = checkpoint
        .layout
        .modalities
        .iter()
        .any(|(m, _)| *m == Modality::Text);
    match (&checkpoint.text_encoder, uses_text) {
        (Some(source), true) => {
            let (name, tokens) = match source.strip_suffix(TOKENS_SUFFIX) {
                Some(name) => (name, true),
                None => (source.as_str(), false),
            };
            Ok(Some(TextFeaturizer {
                encoder: load_encoder(name.parse()?)?,
                tokens,
            }))
        }
        (None, true) => bail!(
            "model {} reads precomputed text features (e.g. from a feature pickle); it cannot embed raw text",
            model.display()
        ),
        _ => Ok(None),
    }
}
