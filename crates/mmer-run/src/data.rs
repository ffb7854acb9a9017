//! Where a run's data comes from, and how text becomes features.
//!
//! A run config names a dataset and (for text) a frozen sentence encoder;
//! this module loads the corpus with `mmer-data` and attaches cached
//! embeddings from the feature store (`mmer-text`).

use std::path::{Path, PathBuf};

use crate::error::{Context, Result, bail};
use crate::labels::Labels;
use mmer_core::{Corpus, Features, LabelSpace, Modality, Split};
use mmer_data::synthetic::SyntheticConfig;
use mmer_data::synthetic_multi::MultiLabelSyntheticConfig;
use mmer_models::text_encoder::TextEncoder;
use mmer_text::{ContextWindow, EncoderInput, EncoderKind, Output, SentenceEncoder};
use mmer_train::finetune::TurnTokens;
use serde::{Deserialize, Serialize};

/// Dataset formats mmer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    /// Seeded synthetic multi-label multimodal clips (SeMuL-PCD's
    /// benchmark; `mmer_data::synthetic_multi` documents what is planted).
    SyntheticMultiLabel,
    /// ElderReact: a directory with `{train,dev,test}_labels.txt` and
    /// `{train,dev,test}_audio.txt` (6 emotions, multi-label; COVAREP
    /// audio statistics).
    ElderReact,
    /// CMU-MOSEI as MMSA's aligned or unaligned feature pickle (the
    /// emotion labels must have been merged in under `emotion_labels`:
    /// MMSA ships sentiment only; `mmer_data::mosei`).
    MoseiMmsa,
    /// CMU-MOSEI as CMU-MultimodalSDK computational sequences (`.csd`),
    /// named in `[data.mosei_csd]`.
    MoseiCsd,
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
    /// Give the text modality the mean-pooled token states of these encoder
    /// layers (0 = the embedding layer; MPNet's last is 12, MiniLM's 6), one frame per
    /// layer, instead of the sentence vector: MPNet's middle layers carry
    /// more of an utterance's emotion than its last (docs/RESULTS.md).
    #[serde(default)]
    pub text_layers: Option<Vec<usize>>,
    /// Put the conversation into the encoder's input (EmoBERTa-style): each
    /// turn is encoded with its speaker's name and its neighbouring turns,
    /// and only its own tokens are pooled (`mmer_text::context`). Applies to
    /// the sentence vector and to `text_layers`; absent = each turn alone.
    /// `[data.text_context]` with no keys = past 3, future 1, speakers,
    /// 128 tokens.
    #[serde(default)]
    pub text_context: Option<ContextWindow>,
    /// Feature-store directory for cached embeddings.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// A media store written by `mmer extract`: its audio, face and body
    /// frames are attached to the utterances with the same id (a turn whose
    /// face was not found, or whose track is silent, simply lacks that
    /// modality).
    #[serde(default)]
    pub media_store: Option<PathBuf>,
    /// Generator settings for `synthetic`.
    #[serde(default)]
    pub synthetic: Option<SyntheticConfig>,
    /// Generator settings for `synthetic_multi_label`.
    #[serde(default)]
    pub synthetic_multi_label: Option<MultiLabelSyntheticConfig>,
    /// The computational sequences of `mosei_csd`.
    #[serde(default)]
    pub mosei_csd: Option<MoseiCsdConfig>,
    /// CMU-MOSEI (both formats): replace NaN / infinite feature values
    /// (COVAREP and MMSA audio have some) by 0, every segment so touched
    /// logged; `false` refuses them with an error naming file, segment,
    /// frame and column.
    #[serde(default)]
    pub mosei_zero_non_finite: bool,
    /// Label set of `conversations` data: a preset name (`"meld"`, the
    /// default; `"iemocap"`, `"synthetic"`), or a `[data.labels]` table
    /// declaring the classes (`classes = ["calm", "tense"]`, optional
    /// `name`, `multi_label`); see [`Labels`].
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Validate on the train and valid dialogues whose id starts with this
    /// prefix and train on the others, instead of the dataset's own
    /// validation split (IEMOCAP: `"Ses04"` holds out session 4's two
    /// speakers, so validation, like test, has unseen speakers).
    #[serde(default)]
    pub valid_prefix: Option<String>,
    /// Test on the dialogues of any split whose id starts with this prefix
    /// (needs `valid_prefix`): one fold of a leave-one-group-out
    /// cross-validation, e.g. IEMOCAP sessions `"Ses01"` … `"Ses05"`.
    #[serde(default)]
    pub test_prefix: Option<String>,
}

impl std::fmt::Display for DatasetKind {
    /// The name `--dataset` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatasetKind::Meld => "meld",
            DatasetKind::Iemocap => "iemocap",
            DatasetKind::FeaturePickle => "feature-pickle",
            DatasetKind::Conversations => "conversations",
            DatasetKind::Synthetic => "synthetic",
            DatasetKind::SyntheticMultiLabel => "synthetic-multi-label",
            DatasetKind::ElderReact => "elder-react",
            DatasetKind::MoseiMmsa => "mosei-mmsa",
            DatasetKind::MoseiCsd => "mosei-csd",
        })
    }
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
            text_layers: None,
            text_context: None,
            store: default_store(),
            media_store: None,
            synthetic: None,
            synthetic_multi_label: None,
            mosei_csd: None,
            mosei_zero_non_finite: false,
            labels: None,
            valid_prefix: None,
            test_prefix: None,
        }
    }

    /// Which encoder states become the text modality.
    ///
    /// # Errors
    /// Both `text_tokens` and `text_layers`, or an empty layer list.
    pub fn text_view(&self) -> Result<TextView> {
        match (&self.text_layers, self.text_tokens) {
            (Some(_), true) => bail!("choose text_tokens or text_layers, not both"),
            (Some(layers), false) if layers.is_empty() => {
                bail!("text_layers is empty: list encoder layers, e.g. [8]")
            }
            (Some(layers), false) => Ok(TextView::Layers(layers.clone())),
            (None, true) => Ok(TextView::Tokens),
            (None, false) => Ok(TextView::Sentence),
        }
    }

    /// The text feature source a checkpoint records: the encoder name, with
    /// the text view's and the context's suffixes (see
    /// [`TextView::parse_source`]).
    pub fn text_source(&self) -> Option<String> {
        let suffix = self.text_view().map(|v| v.suffix()).unwrap_or_default();
        let context = context_suffix(self.text_context.as_ref());
        self.text_encoder
            .map(|e| format!("{}{suffix}{context}", e.as_str()))
    }

    fn path(&self) -> Result<&Path> {
        self.path
            .as_deref()
            .with_context(|| format!("dataset {} needs a path (--data)", self.dataset))
    }

    /// Settings that contradict each other or the dataset, found before
    /// any data is read: a label space on a dataset that has its own, text
    /// from transcripts without an encoder to embed them.
    ///
    /// # Errors
    /// The first contradiction, with the flag that resolves it.
    pub fn check(&self, modalities: &[Modality]) -> Result<()> {
        if let Some(labels) = &self.labels
            && self.dataset != DatasetKind::Conversations
        {
            bail!(
                "--labels {labels} applies to conversations data only; {} has its own label space",
                self.dataset
            );
        }
        let transcripts = matches!(
            self.dataset,
            DatasetKind::Meld | DatasetKind::Iemocap | DatasetKind::Conversations
        );
        if transcripts && modalities.contains(&Modality::Text) && self.text_encoder.is_none() {
            bail!(
                "{} data is transcripts: choose the text encoder that embeds them (--encoder minilm or --encoder mpnet)",
                self.dataset
            );
        }
        if self.text_context.is_some() {
            if !transcripts {
                bail!(
                    "text_context reads transcripts; {} data has none to put in context",
                    self.dataset
                );
            }
            if self.text_view()? == TextView::Tokens {
                bail!(
                    "text_context pools the turn's own tokens: use it with the sentence vector or text_layers, not text_tokens"
                );
            }
        }
        self.text_view()?;
        self.label_space()?;
        Ok(())
    }

    fn mosei_non_finite(&self) -> mmer_data::mosei::NonFinite {
        match self.mosei_zero_non_finite {
            true => mmer_data::mosei::NonFinite::Zero,
            false => mmer_data::mosei::NonFinite::Error,
        }
    }

    /// Whether the dataset has a multi-label set of its own (ElderReact,
    /// the synthetic multi-label clips), whatever `labels` says.
    pub fn is_multi_label_dataset(&self) -> bool {
        matches!(
            self.dataset,
            DatasetKind::ElderReact
                | DatasetKind::SyntheticMultiLabel
                | DatasetKind::MoseiMmsa
                | DatasetKind::MoseiCsd
        )
    }

    /// The label space of the data's conversation files: the configured
    /// set, MELD's when none is.
    ///
    /// # Errors
    /// A preset name that does not exist.
    pub fn label_space(&self) -> Result<LabelSpace> {
        match &self.labels {
            Some(labels) => labels.space(),
            None => Ok(LabelSpace::meld()),
        }
    }

    /// Loads the corpus and attaches the features the given modalities need.
    pub fn load(&self, modalities: &[Modality]) -> Result<Corpus> {
        self.check(modalities)?;
        let mut corpus = match self.dataset {
            DatasetKind::Meld => mmer_data::meld::load_meld(self.path()?)?,
            DatasetKind::Iemocap => mmer_data::iemocap::load_iemocap_pickle(self.path()?)?,
            DatasetKind::FeaturePickle => mmer_data::feature_pickle::load_feature_pickle(
                self.path()?,
                &mmer_data::feature_pickle::FeaturePickleOptions::default(),
            )?,
            DatasetKind::Conversations => load_conversation_dir(self.path()?, self.label_space()?)?,
            DatasetKind::Synthetic => {
                mmer_data::synthetic::generate(&self.synthetic.clone().unwrap_or_default())
            }
            DatasetKind::SyntheticMultiLabel => mmer_data::synthetic_multi::generate(
                &self.synthetic_multi_label.clone().unwrap_or_default(),
            ),
            DatasetKind::ElderReact => {
                let (corpus, report) = mmer_data::elderreact::load_with_report(self.path()?)?;
                if !report.imputed.is_empty() {
                    tracing::warn!(
                        clips = report.imputed.len(),
                        "ElderReact: non-finite audio statistics replaced by the train-split column means"
                    );
                }
                corpus
            }
            DatasetKind::MoseiMmsa => {
                let options = mmer_data::mosei::MmsaOptions {
                    require_labels: true,
                    non_finite: self.mosei_non_finite(),
                    ..Default::default()
                };
                report_mosei(mmer_data::mosei::load_mmsa(self.path()?, &options)?)
            }
            DatasetKind::MoseiCsd => {
                let csd = self.mosei_csd.as_ref().with_context(|| {
                    "mosei_csd data needs a [data.mosei_csd] table naming its labels, features and folds files".to_string()
                })?;
                let sources = mmer_data::mosei::CsdSources {
                    labels: csd.labels.clone(),
                    features: csd.features.iter().map(|(m, p)| (*m, p.clone())).collect(),
                    words: csd.words.clone(),
                    folds: mmer_data::mosei::read_folds(&csd.folds)?,
                };
                report_mosei(mmer_data::mosei::load_csd(
                    &sources,
                    self.mosei_non_finite(),
                )?)
            }
        };
        if let Some(dir) = &self.media_store {
            attach_media(&mut corpus, dir)?;
        }
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
            attach_text_embeddings(
                &mut corpus,
                &encoder,
                &self.store,
                &self.text_view()?,
                self.text_context.as_ref(),
            )?;
        }
        // After the text features: the store caches them per original split.
        match (&self.valid_prefix, &self.test_prefix) {
            (Some(valid), test) => {
                corpus.hold_out(valid, test.as_deref())?;
                tracing::info!(
                    "re-split by dialogue id: train {} dialogues, valid {} ({valid:?}), test {} ({})",
                    corpus.split(Split::Train).len(),
                    corpus.split(Split::Valid).len(),
                    corpus.split(Split::Test).len(),
                    test.as_deref().unwrap_or("the dataset's own"),
                );
            }
            (None, Some(_)) => bail!(
                "test_prefix needs valid_prefix: the dataset's own validation dialogues may be in the new test split"
            ),
            (None, None) => {}
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

/// The files of CMU-MOSEI as CMU-MultimodalSDK computational sequences
/// (`[data.mosei_csd]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoseiCsdConfig {
    /// `CMU_MOSEI_Labels.csd`.
    pub labels: PathBuf,
    /// One feature sequence per modality, e.g. `audio =
    /// "CMU_MOSEI_COVAREP.csd"`, `face = "CMU_MOSEI_VisualFacet42.csd"`.
    pub features: std::collections::BTreeMap<Modality, PathBuf>,
    /// `CMU_MOSEI_TimestampedWords.csd`, for the transcripts.
    #[serde(default)]
    pub words: Option<PathBuf>,
    /// The standard folds: the SDK's `cmu_mosei_std_folds.py`, or JSON
    /// `{"train": [...], "valid": [...], "test": [...]}` of video ids.
    pub folds: PathBuf,
}

/// The corpus of a MOSEI load, with what the loader replaced or skipped
/// logged.
fn report_mosei((corpus, report): (Corpus, mmer_data::mosei::MoseiReport)) -> Corpus {
    if !report.replaced.is_empty() {
        tracing::warn!(
            segments = report.replaced.len(),
            values = report.values_replaced(),
            "CMU-MOSEI: non-finite feature values replaced by 0"
        );
    }
    if !report.skipped.is_empty() || report.above_scale > 0 {
        tracing::warn!(
            skipped = report.skipped.len(),
            above_scale = report.above_scale,
            "CMU-MOSEI: segments skipped (zero length or in no fold) and intensities above 3 kept as present"
        );
    }
    corpus
}

/// Attaches the frames of the media store in `dir` to `corpus` by utterance
/// id.
///
/// # Errors
/// A store that does not open or holds a damaged record, or one that
/// shares no utterance id with the corpus (the wrong store).
fn attach_media(corpus: &mut Corpus, dir: &Path) -> Result<()> {
    use mmer_core::media_store::{Level, MediaStore};
    let store = MediaStore::open(dir)
        .with_context(|| format!("opening the media store {}", dir.display()))?;
    let report = store
        .attach(corpus, Level::Frames)
        .with_context(|| format!("reading the media store {}", dir.display()))?;
    if report.matched == 0 {
        bail!(
            "the media store {} holds none of the {} utterance ids of {} (extract it from the same conversation files)",
            dir.display(),
            report.unmatched,
            corpus.name
        );
    }
    tracing::info!(
        store = %dir.display(),
        matched = report.matched,
        unmatched = report.unmatched,
        attached = ?report.attached,
        "media features attached by utterance id"
    );
    Ok(())
}

/// Reads `train`, `valid` and optional `test` conversation files from `dir`.
fn load_conversation_dir(dir: &Path, labels: LabelSpace) -> Result<Corpus> {
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
    check_splits_disjoint(&splits, dir)?;
    let name = dir
        .file_name()
        .map_or("conversations".into(), |n| n.to_string_lossy().into_owned());
    Ok(Corpus {
        name,
        labels,
        splits,
    })
}

/// A conversation in two splits makes validation or test scores measure
/// memory. Two split files with the same conversations (a copied file), or
/// one conversation of three or more turns in two splits (the same speakers
/// saying the same texts in the same order), is an error naming both.
/// Shorter dialogues may recur legitimately ("Hi." / "Bye.").
fn check_splits_disjoint(
    splits: &std::collections::BTreeMap<Split, Vec<mmer_core::Dialogue>>,
    dir: &Path,
) -> Result<()> {
    type Content<'a> = Vec<(&'a str, Option<&'a str>)>;
    fn content(d: &mmer_core::Dialogue) -> Content<'_> {
        d.utterances
            .iter()
            .map(|u| (u.speaker.as_str(), u.text.as_deref()))
            .collect()
    }
    let unprefixed = |id: &str| id.split_once('/').map_or(id, |(_, rest)| rest).to_string();
    let per_split: Vec<(Split, Vec<Content<'_>>)> = splits
        .iter()
        .map(|(&split, dialogues)| (split, dialogues.iter().map(content).collect()))
        .collect();
    for (k, (split, dialogues)) in per_split.iter().enumerate() {
        if let Some((other, _)) = per_split[..k].iter().find(|(_, d)| d == dialogues) {
            bail!(
                "{}: the {split} file holds the same conversations as the {other} file: a conversation must be in one split only",
                dir.display()
            );
        }
    }
    let mut seen: std::collections::HashMap<Content<'_>, (Split, &str)> =
        std::collections::HashMap::new();
    for (&split, dialogues) in splits {
        for d in dialogues.iter().filter(|d| d.utterances.len() >= 3) {
            let key = content(d);
            match seen.get(&key) {
                Some(&(other, id)) if other != split => bail!(
                    "{}: dialogue {} of {other} appears again as {} of {split}: a conversation must be in one split only",
                    dir.display(),
                    unprefixed(id),
                    unprefixed(&d.id),
                ),
                Some(_) => {}
                None => {
                    seen.insert(key, (split, d.id.as_str()));
                }
            }
        }
    }
    Ok(())
}

/// Loads a frozen sentence encoder from the installed weights
/// (`$MMER_MODELS_DIR`, else `./models`).
pub fn load_encoder(kind: EncoderKind) -> Result<SentenceEncoder> {
    load_encoder_from(kind, &mmer_text::default_models_dir())
}

/// Loads a frozen sentence encoder from the models directory `models_dir`.
pub fn load_encoder_from(kind: EncoderKind, models_dir: &Path) -> Result<SentenceEncoder> {
    SentenceEncoder::load(kind, models_dir).with_context(|| {
        format!(
            "loading the {kind:?} text encoder from {}",
            models_dir.display()
        )
    })
}

/// Embeds every transcript of `corpus` (cached per split in the store) into
/// the text modality, each turn alone or, with `context`, with its
/// neighbours in the input. A turn without a transcript gets no text
/// modality.
pub fn attach_text_embeddings(
    corpus: &mut Corpus,
    encoder: &SentenceEncoder,
    store: &Path,
    view: &TextView,
    context: Option<&ContextWindow>,
) -> Result<()> {
    let corpus_name = corpus.name.clone();
    view.check(encoder)?;
    // Every layer is cached whichever layers a run reads.
    let (table, fingerprint) = match view {
        TextView::Sentence => (
            encoder.name().to_string(),
            encoder.fingerprint().to_string(),
        ),
        TextView::Tokens => (
            format!("{}{TOKENS_SUFFIX}", encoder.name()),
            format!("{}+tokens", encoder.fingerprint()),
        ),
        TextView::Layers(_) => (
            format!("{}{LAYERS_SUFFIX}", encoder.name()),
            format!("{}+layers", encoder.fingerprint()),
        ),
    };
    let suffix = context_suffix(context);
    let (table, fingerprint) = (format!("{table}{suffix}"), format!("{fingerprint}{suffix}"));
    for split in Split::ALL {
        let Some(dialogues) = corpus.splits.get_mut(&split) else {
            continue;
        };
        // A turn without a transcript has no text modality (missing is
        // data: the batcher masks it), never an embedding of "".
        // Without context the store keys rows by the text, as it always
        // has, and only texts it lacks are tokenized; with context by the
        // whole input, built for every turn.
        let mut items: Vec<(String, String)> = Vec::new();
        let mut inputs: std::collections::HashMap<String, EncoderInput> = Default::default();
        for d in dialogues.iter() {
            let Some(window) = context else {
                items.extend(
                    d.utterances
                        .iter()
                        .filter_map(|u| Some((u.id.clone(), u.text.clone()?))),
                );
                continue;
            };
            let turn_inputs = turn_inputs(encoder, d, Some(window))
                .with_context(|| format!("{corpus_name}: dialogue {}", d.id))?;
            for (u, input) in d.utterances.iter().zip(turn_inputs) {
                if let Some(input) = input {
                    let key = input.key();
                    inputs.entry(key.clone()).or_insert(input);
                    items.push((u.id.clone(), key));
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        if let Some(window) = context {
            let tokens: usize = inputs.values().map(|i| i.ids.len()).sum();
            let pooled: usize = inputs.values().map(|i| i.pooled).sum();
            tracing::info!(
                corpus = %corpus_name,
                %split,
                %window,
                mean_tokens = tokens as f64 / inputs.len() as f64,
                mean_own_tokens = pooled as f64 / inputs.len() as f64,
                "conversation context in the input"
            );
        }
        let key = mmer_core::store::StoreKey {
            root: store.to_path_buf(),
            corpus: corpus_name.clone(),
            encoder: table.clone(),
            table: split.as_str().to_string(),
        };
        let dim = encoder.dim();
        let (rows, report) =
            mmer_core::store::cached_embeddings(&key, &fingerprint, dim, &items, |keys| {
                let bar = mmer_core::progress::Progress::new(
                    format!("embedding {corpus_name}/{split} ({table})"),
                    "texts",
                    keys.len() as u64,
                    true,
                );
                let progress = |done, _| bar.set_position(done as u64);
                let rows = match context {
                    None => encoder
                        .inputs(keys)
                        .map_err(crate::Error::from)
                        .and_then(|missing| view.embed(encoder, &missing, true, progress)),
                    Some(_) => {
                        let missing: Vec<EncoderInput> =
                            keys.iter().map(|k| inputs[*k].clone()).collect();
                        view.embed(encoder, &missing, true, progress)
                    }
                };
                bar.finish();
                rows
            })?;
        tracing::info!(corpus = %corpus_name, %split, reused = report.reused, computed = report.computed, "text embeddings");
        let mut rows = rows.into_iter();
        for u in dialogues.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
            if u.text.is_none() {
                continue;
            }
            if let Some(row) = rows.next() {
                let features = view
                    .features(row, dim)
                    .with_context(|| format!("text features of {}", u.id))?;
                u.features.insert(Modality::Text, features);
            }
        }
    }
    Ok(())
}

/// The encoder input of every turn of `dialogue` (`None` without a
/// transcript): the turn alone, or with its neighbours as `context` says.
pub(crate) fn turn_inputs(
    encoder: &SentenceEncoder,
    dialogue: &mmer_core::Dialogue,
    context: Option<&ContextWindow>,
) -> Result<Vec<Option<EncoderInput>>> {
    Ok(match context {
        Some(window) => {
            let turns: Vec<(&str, Option<&str>)> = dialogue
                .utterances
                .iter()
                .map(|u| (u.speaker.as_str(), u.text.as_deref()))
                .collect();
            encoder.inputs_in_context(&turns, window)?
        }
        None => {
            let texts: Vec<&str> = dialogue
                .utterances
                .iter()
                .filter_map(|u| u.text.as_deref())
                .collect();
            let mut plain = encoder.inputs(&texts)?.into_iter();
            dialogue
                .utterances
                .iter()
                .map(|u| u.text.as_ref().and_then(|_| plain.next()))
                .collect()
        }
    })
}

/// The frozen encoder's token states of layer `below` for every input, each
/// with its count of pooled tokens: what fine-tuned layers above `below`
/// read, in training ([`crate::run`]) and in prediction alike.
pub(crate) fn turn_tokens(
    encoder: &SentenceEncoder,
    inputs: &[EncoderInput],
    below: usize,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<TurnTokens>> {
    let states = encoder.embed_inputs(inputs, Output::Tokens(below), progress)?;
    Ok(states
        .into_iter()
        .zip(inputs)
        .map(|(states, input)| TurnTokens {
            states,
            pooled: input.pooled,
        })
        .collect())
}

/// Suffix of a store table and of a checkpoint's text source when the
/// conversation is in the input: `+context-<window>`.
const CONTEXT_SUFFIX: &str = "+context-";

fn context_suffix(context: Option<&ContextWindow>) -> String {
    context.map_or(String::new(), |w| format!("{CONTEXT_SUFFIX}{w}"))
}

/// Suffix of a checkpoint's text source when the model reads token states.
const TOKENS_SUFFIX: &str = "-tokens";
/// Suffix of the store table of per-layer states, and (followed by the
/// layers, dash-separated) of a checkpoint's text source.
const LAYERS_SUFFIX: &str = "-layers";

/// Which encoder states become the text modality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextView {
    /// The sentence vector, as sentence-transformers' `encode` returns it.
    Sentence,
    /// Every token's last-layer state (for trainable pooling).
    Tokens,
    /// The mean-pooled token states of these layers, one frame each.
    Layers(Vec<usize>),
}

impl TextView {
    /// `""`, `-tokens`, or `-layers-<l>-<l>…`.
    fn suffix(&self) -> String {
        match self {
            TextView::Sentence => String::new(),
            TextView::Tokens => TOKENS_SUFFIX.to_string(),
            TextView::Layers(layers) => {
                let list: Vec<String> = layers.iter().map(usize::to_string).collect();
                format!("{LAYERS_SUFFIX}-{}", list.join("-"))
            }
        }
    }

    /// Splits a checkpoint's text source into the encoder name, the view
    /// and the context window (if the conversation was in the input).
    ///
    /// # Errors
    /// A `-layers-` suffix that is not a dash-separated list of numbers, or
    /// a `+context-` suffix that is not a window.
    pub fn parse_source(source: &str) -> Result<(&str, TextView, Option<ContextWindow>)> {
        let (rest, context) = match source.split_once(CONTEXT_SUFFIX) {
            Some((rest, window)) => {
                let window = ContextWindow::parse(window)
                    .with_context(|| format!("text source {source:?}: bad context window"))?;
                (rest, Some(window))
            }
            None => (source, None),
        };
        if let Some(name) = rest.strip_suffix(TOKENS_SUFFIX) {
            return Ok((name, TextView::Tokens, context));
        }
        if let Some((name, layers)) = rest.split_once(&format!("{LAYERS_SUFFIX}-")) {
            let layers = layers
                .split('-')
                .map(str::parse)
                .collect::<std::result::Result<Vec<usize>, _>>()
                .ok()
                .with_context(|| format!("text source {source:?}: bad layer list"))?;
            return Ok((name, TextView::Layers(layers), context));
        }
        Ok((rest, TextView::Sentence, context))
    }

    /// An error unless `encoder` has the states this view reads.
    fn check(&self, encoder: &SentenceEncoder) -> Result<()> {
        if let TextView::Layers(layers) = self {
            let available = encoder.num_layer_states();
            if let Some(bad) = layers.iter().find(|&&l| l >= available) {
                bail!(
                    "text_layers: {} has layers 0..={} (0 = embeddings), not {bad}",
                    encoder.name(),
                    available - 1
                );
            }
        }
        Ok(())
    }

    /// Sentence vectors, token states, or pooled layer states of `inputs`:
    /// every layer's (`all_layers`, what the store caches for any later
    /// choice of layers) or only as deep as this view reads (online).
    fn embed(
        &self,
        encoder: &SentenceEncoder,
        inputs: &[EncoderInput],
        all_layers: bool,
        progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Vec<f32>>> {
        let output = match self {
            TextView::Sentence => Output::Sentence,
            TextView::Tokens => Output::Tokens(encoder.num_layer_states() - 1),
            TextView::Layers(layers) => Output::Layers(match all_layers {
                true => usize::MAX,
                false => layers.iter().copied().max().unwrap_or(0),
            }),
        };
        Ok(encoder.embed_inputs(inputs, output, progress)?)
    }

    /// The text features of one cached row (frames of width `dim`): the
    /// listed layers' frames for [`TextView::Layers`], the whole row otherwise.
    fn features(&self, row: Vec<f32>, dim: usize) -> Result<Features> {
        let frames = row.len() / dim;
        match self {
            TextView::Layers(layers) => {
                let mut picked = Vec::with_capacity(layers.len() * dim);
                for &l in layers {
                    let frame = row.get(l * dim..(l + 1) * dim).with_context(|| {
                        format!("layer {l} is not among the {frames} cached layers")
                    })?;
                    picked.extend_from_slice(frame);
                }
                Ok(Features::sequence(layers.len(), dim, picked)?)
            }
            _ => Ok(Features::sequence(frames, dim, row)?),
        }
    }
}

/// Turns raw transcripts into the text modality a model was trained on:
/// sentence vectors, token states, or per-layer states, of each turn alone
/// or with the conversation in the input.
#[derive(Debug)]
pub struct TextFeaturizer {
    encoder: SentenceEncoder,
    view: TextView,
    context: Option<ContextWindow>,
    tuned: Option<TunedLayers>,
}

/// A fine-tuned model's encoder layers and the layer whose token states
/// they read.
#[derive(Debug)]
struct TunedLayers {
    layers: TextEncoder,
    below: usize,
    /// Utterances per forward pass, as in training (`finetune.chunk`).
    chunk: usize,
}

impl TextFeaturizer {
    /// Embeds every transcript of `dialogues` into the text modality (no
    /// cache: the online path of `predict`). A turn without a transcript
    /// gets no text modality. The turns of all dialogues go through the
    /// encoder together (sorted into length-matched batches, the batches
    /// shared among its workers), not one dialogue at a time.
    pub fn embed(&self, dialogues: &mut [mmer_core::Dialogue]) -> Result<()> {
        let turns = dialogues.iter().map(|d| 0..d.utterances.len()).collect();
        self.embed_chosen(dialogues, turns)
    }

    /// Embeds the transcripts of the turns `turns` of `dialogue` and leaves
    /// the others as they are (a live conversation embeds each new turn
    /// once). With the conversation in the input, the turns present around
    /// them are their context: a turn embedded before its following turns
    /// exist reads none.
    pub fn embed_turns(
        &self,
        dialogue: &mut mmer_core::Dialogue,
        turns: std::ops::Range<usize>,
    ) -> Result<()> {
        self.embed_chosen(std::slice::from_mut(dialogue), vec![turns])
    }

    /// Embeds the turns `turns[d]` of each dialogue `d`, all in one pass
    /// of the encoder.
    fn embed_chosen(
        &self,
        dialogues: &mut [mmer_core::Dialogue],
        turns: Vec<std::ops::Range<usize>>,
    ) -> Result<()> {
        let dim = self.encoder.dim();
        let mut places = Vec::new();
        let mut inputs = Vec::new();
        for (d, (dialogue, chosen)) in dialogues.iter().zip(&turns).enumerate() {
            let dialogue_inputs = turn_inputs(&self.encoder, dialogue, self.context.as_ref())?;
            for (i, input) in dialogue_inputs.into_iter().enumerate() {
                if let Some(input) = input.filter(|_| chosen.contains(&i)) {
                    places.push((d, i));
                    inputs.push(input);
                }
            }
        }
        let rows = match &self.tuned {
            None => self.view.embed(&self.encoder, &inputs, false, |_, _| {})?,
            Some(tuned) => self.tuned_rows(tuned, &inputs)?,
        };
        for ((d, i), row) in places.into_iter().zip(rows) {
            // The fine-tuned layers give the pooled vector itself.
            let features = match self.tuned {
                Some(_) => Features::vector(row),
                None => self.view.features(row, dim)?,
            };
            dialogues[d].utterances[i]
                .features
                .insert(Modality::Text, features);
        }
        Ok(())
    }

    /// The fine-tuned layers' pooled output for `inputs`: what the model
    /// trained on in place of the frozen layer's pooled states.
    fn tuned_rows(&self, tuned: &TunedLayers, inputs: &[EncoderInput]) -> Result<Vec<Vec<f32>>> {
        let dim = self.encoder.dim();
        let turns = turn_tokens(&self.encoder, inputs, tuned.below, |_, _| {})?;
        let refs: Vec<&TurnTokens> = turns.iter().collect();
        let device = burn::tensor::Device::flex();
        let pooled =
            mmer_train::finetune::pool_texts(&tuned.layers, &refs, dim, tuned.chunk, &device);
        let flat = pooled
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| crate::Error::Refused(format!("reading pooled text states: {e:?}")))?;
        Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect())
    }
}

/// What a checkpoint needs to read raw transcripts, if it reads text.
///
/// A model trained on a pickle's precomputed text features cannot embed
/// new text: that is an error naming the model.
pub fn checkpoint_encoder(
    checkpoint: &mmer_train::Checkpoint,
    model: &Path,
    models_dir: &Path,
) -> Result<Option<TextFeaturizer>> {
    let uses_text = checkpoint
        .layout
        .modalities
        .iter()
        .any(|(m, _)| *m == Modality::Text);
    match (&checkpoint.text_encoder, uses_text) {
        (Some(source), true) => {
            let (name, view, context) = TextView::parse_source(source)?;
            let kind: EncoderKind = name.parse()?;
            let encoder = load_encoder_from(kind, models_dir)?;
            view.check(&encoder)?;
            let tuned = match (&checkpoint.config.finetune, &view) {
                (None, _) => None,
                (Some(spec), TextView::Layers(layers)) if layers.len() == 1 => {
                    let pooled = layers[0];
                    let below = pooled.checked_sub(spec.layers).with_context(|| {
                        format!(
                            "model {}: fine-tunes {} layers under layer {pooled}",
                            model.display(),
                            spec.layers
                        )
                    })?;
                    let (config, tensors) = mmer_text::load_encoder_tensors(kind, models_dir)?;
                    let skeleton = TextEncoder::from_checkpoint(
                        &config,
                        &tensors,
                        below..pooled,
                        &burn::tensor::Device::flex(),
                    )?;
                    let layers = checkpoint
                        .load_encoder_into(model, skeleton)
                        .with_context(|| format!("loading model {}", model.display()))?;
                    Some(TunedLayers {
                        layers,
                        below,
                        chunk: spec.chunk,
                    })
                }
                (Some(_), _) => bail!(
                    "model {}: a fine-tuned model pools one layer, its text source is {source:?}",
                    model.display()
                ),
            };
            Ok(Some(TextFeaturizer {
                encoder,
                view,
                context,
                tuned,
            }))
        }
        (None, true) => bail!(
            "model {} reads precomputed text features (e.g. from a feature pickle); it cannot embed raw text",
            model.display()
        ),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_views_round_trip_through_the_checkpoint_source() {
        let mut config = DataConfig::new(DatasetKind::Meld, None);
        config.text_encoder = Some(EncoderKind::Mpnet);
        for (tokens, layers, source) in [
            (false, None, "mpnet"),
            (true, None, "mpnet-tokens"),
            (false, Some(vec![8]), "mpnet-layers-8"),
            (false, Some(vec![0, 5, 12]), "mpnet-layers-0-5-12"),
        ] {
            config.text_tokens = tokens;
            config.text_layers = layers;
            assert_eq!(config.text_source().as_deref(), Some(source));
            let (name, view, context) = TextView::parse_source(source).unwrap();
            assert_eq!((name, view), ("mpnet", config.text_view().unwrap()));
            assert_eq!(context, None);
        }
        assert!(TextView::parse_source("mpnet-layers-8-x").is_err());
        config.text_layers = Some(vec![]);
        assert!(config.text_view().is_err());
        config.text_layers = Some(vec![8]);
        config.text_tokens = true;
        assert!(
            config
                .text_view()
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        // The conversation in the input: recorded after the view.
        config.text_tokens = false;
        config.text_context = Some(ContextWindow::default());
        let source = config.text_source().unwrap();
        assert_eq!(source, "mpnet-layers-8+context-p3-f1-n128-speakers");
        let (name, view, context) = TextView::parse_source(&source).unwrap();
        assert_eq!(
            (name, view, context),
            ("mpnet", TextView::Layers(vec![8]), config.text_context)
        );
        assert!(TextView::parse_source("mpnet+context-p3").is_err());
        config.check(&[Modality::Text]).unwrap();
        // Token states pool every token; a pickle has no transcripts.
        config.text_layers = None;
        config.text_tokens = true;
        let err = config.check(&[Modality::Text]).unwrap_err().to_string();
        assert!(err.contains("text_tokens"), "{err}");
        config.text_tokens = false;
        config.dataset = DatasetKind::FeaturePickle;
        let err = config.check(&[Modality::Text]).unwrap_err().to_string();
        assert!(err.contains("transcripts"), "{err}");
    }

    /// The multi-label datasets load through a run's `[data]` table, from
    /// the MOSEI fixtures `mmer-data` commits (generated in both formats).
    #[test]
    fn mosei_loads_from_a_run_config_in_both_formats() {
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../mmer-data/tests/fixtures/mosei");
        let text = format!(
            r#"
            dataset = "mosei_csd"
            [mosei_csd]
            labels = "{dir}/labels.csd"
            features = {{ audio = "{dir}/covarep.csd" }}
            folds = "{dir}/folds.json"
            "#,
            dir = fixtures.display()
        );
        let mut config: DataConfig = toml::from_str(&text).unwrap();
        assert!(config.is_multi_label_dataset());
        // The fixture's COVAREP holds a NaN: refused unless asked.
        let err = config.load(&[Modality::Audio]).unwrap_err().to_string();
        assert!(err.contains("covarep.csd") && err.contains("NaN"), "{err}");
        config.mosei_zero_non_finite = true;
        let corpus = config.load(&[Modality::Audio]).unwrap();
        assert!(corpus.labels.multi_label && corpus.num_utterances(Split::Train) > 0);
        // MMSA's own pickles have no emotion labels: training refuses them.
        let mmsa = |file: &str| {
            let mut config = DataConfig::new(DatasetKind::MoseiMmsa, Some(fixtures.join(file)));
            config.mosei_zero_non_finite = true;
            config.load(&[Modality::Audio, Modality::Face])
        };
        let err = mmsa("mmsa_aligned.pkl").unwrap_err().to_string();
        assert!(err.contains("no emotion labels"), "{err}");
        assert_eq!(mmsa("mmsa_unaligned.pkl").unwrap().labels.name, "mosei");
        // A [data] table without the files it needs says which.
        let bare = DataConfig::new(DatasetKind::MoseiCsd, None);
        let err = bare.load(&[Modality::Audio]).unwrap_err().to_string();
        assert!(err.contains("[data.mosei_csd]"), "{err}");
    }

    #[test]
    fn a_layer_view_picks_its_frames_from_the_cached_row() {
        let row: Vec<f32> = (0..12).map(|v| v as f32).collect(); // 4 layers of width 3
        let f = TextView::Layers(vec![3, 1])
            .features(row.clone(), 3)
            .unwrap();
        assert_eq!((f.frames, f.dim), (2, 3));
        assert_eq!(f.data, vec![9.0, 10.0, 11.0, 3.0, 4.0, 5.0]);
        let err = TextView::Layers(vec![4]).features(row, 3).unwrap_err();
        assert!(err.to_string().contains("layer 4"), "{err}");
    }
}
