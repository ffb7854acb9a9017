//! The speed benchmarks behind `mmer bench`: the three things users wait
//! for — embedding transcripts ([`run_text`]), one training epoch of a
//! model ([`run_train_epoch`]) and predicting a conversation once the model
//! is loaded ([`run_predict`]) — plus the real-time factor of media
//! extraction ([`run_extract`]).
//!
//! Each workload loads what it needs first and then times only the work, so
//! the numbers compare directly with `bench/pytorch_reference.py`, which does
//! the same work with PyTorch + sentence-transformers (`bench/run.sh` runs
//! both sides back to back and writes `bench/runs/<date>-<machine>/`). Each
//! returns one report, which `mmer bench` prints as one JSON object.
//!
//! Memory: each report carries the resident set before the timed work and
//! the process's peak (`VmHWM`) in its [`Environment`]; `bench/run.sh` also
//! records the peak with `/usr/bin/time -v`.
//!
//! Thread counts: the encoder runs [`mmer_text::default_workers`] batches
//! at once, each on one thread; burn's CPU backend uses rayon's global pool.
//! Set `RAYON_NUM_THREADS` (and [`TextBenchConfig::workers`]) to pin both, as
//! `bench/run.sh` does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use mmer_core::{Dialogue, Modality, Split};
use mmer_media::bench::{BenchReport, ClipSpec};
use mmer_media::extract::StreamExtractor;
use mmer_models::Fusion;
use mmer_text::EncoderKind;
use mmer_train::trainer::{
    PreparedData, class_weight_tensor, init_model, train_epoch, training_device,
};
use mmer_train::{Checkpoint, TrainConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::RunConfig;
use crate::data::{DataConfig, DatasetKind, checkpoint_encoder, load_encoder};
use crate::error::{Context, Result, bail, ensure};

/// Where and how a benchmark ran.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// CPUs the process may use.
    pub available_parallelism: usize,
    /// `RAYON_NUM_THREADS`, if set.
    pub rayon_num_threads: Option<String>,
    /// Resident set right before the timed work (what loading left), MiB;
    /// Linux only.
    pub rss_before_work_mib: Option<f64>,
    /// Peak resident set of the whole process (`VmHWM`), MiB; Linux only.
    pub peak_rss_mib: Option<f64>,
    /// mmer version.
    pub mmer_version: &'static str,
}

/// Memory readings around the timed work. The high-water mark is only read,
/// never reset: resetting it (`/proc/self/clear_refs`) would also reset the
/// `ru_maxrss` that `/usr/bin/time -v` reports for the process.
#[derive(Debug)]
struct MemoryProbe {
    rss_before_work_mib: Option<f64>,
}

impl MemoryProbe {
    /// Reads the resident set; call right before the timed work.
    fn start() -> Self {
        Self {
            rss_before_work_mib: proc_status_mib("VmRSS:"),
        }
    }

    /// The environment with the process's peak so far; call right after the work.
    fn finish(&self) -> Environment {
        Environment {
            available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rayon_num_threads: std::env::var("RAYON_NUM_THREADS").ok(),
            rss_before_work_mib: self.rss_before_work_mib,
            peak_rss_mib: proc_status_mib("VmHWM:"),
            mmer_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A `kB` field of `/proc/self/status` (`VmHWM:`, `VmRSS:`) in MiB; `None`
/// where there is no procfs.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Median of a non-empty sample (the upper one for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Settings of [`run_text`]: sentence-embedding throughput on the first
/// `n` utterances of a MELD CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextBenchConfig {
    /// Sentence encoder to time (default: MiniLM).
    pub encoder: EncoderKind,
    /// MELD CSV whose utterances are embedded, in file order (default: the
    /// MELD training split under `../shared/data/meld`).
    pub meld_csv: PathBuf,
    /// Number of utterances to embed, fewer if the file has fewer
    /// (default: 2000).
    pub n: usize,
    /// Texts per forward pass (default:
    /// [`mmer_text::DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Batches in flight, one thread each (default `None`:
    /// [`mmer_text::default_workers`]).
    pub workers: Option<usize>,
    /// Texts embedded once before timing (not counted), to warm caches
    /// (default: 32).
    pub warmup: usize,
    /// Also write the embedded texts as a JSON array here, so another
    /// implementation can embed exactly the same strings (default: none).
    pub texts_out: Option<PathBuf>,
}

impl Default for TextBenchConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderKind::MiniLm,
            meld_csv: "../shared/data/meld/train_sent_emo.csv".into(),
            n: 2000,
            batch_size: mmer_text::DEFAULT_BATCH_SIZE,
            workers: None,
            warmup: 32,
            texts_out: None,
        }
    }
}

/// Result of [`run_text`].
#[derive(Debug, Clone, Serialize)]
pub struct TextReport {
    /// `"text"`.
    pub workload: &'static str,
    /// The encoder timed.
    pub encoder: EncoderKind,
    /// Texts embedded.
    pub texts: usize,
    /// Tokens the model saw, special tokens included.
    pub tokens: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Batches in flight.
    pub workers: usize,
    /// Wall-clock seconds of `SentenceEncoder::embed` on all texts.
    pub seconds: f64,
    /// `texts / seconds`.
    pub texts_per_second: f64,
    /// `tokens / seconds`.
    pub tokens_per_second: f64,
    /// Sum of every embedding element: a cheap check that another
    /// implementation computed the same vectors.
    pub checksum: f64,
    /// Where it ran, and its memory.
    pub environment: Environment,
}

/// Times the sentence encoder on the first [`TextBenchConfig::n`]
/// utterance texts of a MELD CSV, after a warm-up.
///
/// # Errors
/// [`Error::Refused`](crate::Error::Refused) (`n` is 0, the file has no
/// texts), a MELD file that does not load, an encoder that is not
/// installed, or a `texts_out` that cannot be written.
pub fn run_text(config: &TextBenchConfig) -> Result<TextReport> {
    ensure!(config.n > 0, "n (texts to embed) must be at least 1");
    // The loader's errors name the file.
    let dialogues = mmer_data::meld::load_meld_split(&config.meld_csv, Split::Train)?;
    let texts: Vec<String> = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter_map(|u| u.text.clone())
        .take(config.n)
        .collect();
    ensure!(
        !texts.is_empty(),
        "{} has no utterance texts",
        config.meld_csv.display()
    );
    if let Some(path) = &config.texts_out {
        std::fs::write(path, serde_json::to_vec(&texts)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut encoder = load_encoder(config.encoder)?.with_batch_size(config.batch_size);
    if let Some(w) = config.workers {
        encoder = encoder.with_workers(w);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = encoder.count_tokens(&refs)?.iter().sum();
    if config.warmup > 0 {
        let warm = &refs[..config.warmup.min(refs.len())];
        encoder.embed(warm)?;
    }
    tracing::info!(encoder = %config.encoder, texts = refs.len(), "timing embed");
    let memory = MemoryProbe::start();
    let started = Instant::now();
    let vectors = encoder.embed(&refs)?;
    let seconds = started.elapsed().as_secs_f64();
    let environment = memory.finish();
    let checksum = vectors.iter().flatten().map(|&v| f64::from(v)).sum();
    Ok(TextReport {
        workload: "text",
        encoder: config.encoder,
        texts: refs.len(),
        tokens,
        batch_size: encoder.batch_size(),
        workers: encoder.workers(),
        seconds,
        texts_per_second: refs.len() as f64 / seconds,
        tokens_per_second: tokens as f64 / seconds,
        checksum,
        environment,
    })
}

/// Settings of [`run_train_epoch`]: training epochs of the MELD text
/// context model (default model spec: dialogue + speaker context, d_model
/// 256, d_hidden 100, focal γ = 1, Adam 5e-4) on cached embeddings — or of
/// any model and data a [`run_config`](Self::run_config) names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainEpochBenchConfig {
    /// Sentence encoder whose cached MELD embeddings are the input, embedded
    /// and cached first if the store lacks them (not timed) (default:
    /// MiniLM).
    pub encoder: EncoderKind,
    /// MELD directory with train/dev/test_sent_emo.csv (default:
    /// `../shared/data/meld`).
    pub data: PathBuf,
    /// Feature-store directory (default: `store`).
    pub store: PathBuf,
    /// Epochs to time (default: 1).
    pub epochs: usize,
    /// Seed of the initialisation, dropout and the shuffle (default: 0).
    pub seed: u64,
    /// Dialogues per batch (default: 16).
    pub batch_size: usize,
    /// Shards per batch, one thread each (`[train] data_parallel`; default
    /// `None`: the run config's, else 1).
    pub data_parallel: Option<usize>,
    /// Save the trained model here as a checkpoint (not timed), e.g. for
    /// [`run_predict`] (default: none).
    pub save_checkpoint: Option<PathBuf>,
    /// Also write the dialogue ids of every epoch in training order (a JSON
    /// array of arrays), so another implementation can batch identically
    /// (default: none).
    pub order_out: Option<PathBuf>,
    /// Run config (TOML, as `mmer train --config`): its data and `[train]`
    /// settings replace the MELD defaults; `batch_size`, `epochs` and `seed`
    /// still apply (default: none).
    pub run_config: Option<PathBuf>,
    /// Also write the prepared (z-scored) training inputs and the model
    /// settings to this directory (`train.safetensors` + `train.json`), so
    /// another implementation trains on exactly the same numbers (default:
    /// none).
    pub export: Option<PathBuf>,
}

impl Default for TrainEpochBenchConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderKind::MiniLm,
            data: "../shared/data/meld".into(),
            store: "store".into(),
            epochs: 1,
            seed: 0,
            batch_size: 16,
            data_parallel: None,
            save_checkpoint: None,
            order_out: None,
            run_config: None,
            export: None,
        }
    }
}

/// Result of [`run_train_epoch`].
#[derive(Debug, Clone, Serialize)]
pub struct TrainEpochReport {
    /// `"train_epoch"`.
    pub workload: &'static str,
    /// Corpus name.
    pub corpus: String,
    /// Sentence encoder of the text modality, if any.
    pub encoder: Option<EncoderKind>,
    /// Modalities and their widths.
    pub modalities: Vec<(Modality, usize)>,
    /// Fusion of the model.
    pub fusion: Fusion,
    /// Trainable parameters of the model.
    pub parameters: usize,
    /// Width of a pooled utterance input.
    pub d_input: usize,
    /// Training dialogues.
    pub dialogues: usize,
    /// Labelled training utterances per epoch.
    pub utterances: usize,
    /// Dialogues per batch.
    pub batch_size: usize,
    /// Shards per batch, one thread each.
    pub data_parallel: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Epochs timed.
    pub epochs: usize,
    /// Wall-clock seconds of all timed epochs.
    pub seconds: f64,
    /// Seconds of each epoch.
    pub epoch_seconds: Vec<f64>,
    /// Mean training loss of each epoch.
    pub epoch_loss: Vec<f64>,
    /// Labelled utterances trained on per second, over all epochs.
    pub utterances_per_second: f64,
    /// Where it ran, and its memory.
    pub environment: Environment,
}

/// The data and training settings of [`run_train_epoch`]: a run config's,
/// or the MELD text context model's.
fn train_epoch_setup(config: &TrainEpochBenchConfig) -> Result<(DataConfig, TrainConfig)> {
    let (data, train) = match &config.run_config {
        Some(path) => {
            let run = RunConfig::read(path)?;
            (run.data, run.train)
        }
        None => (
            DataConfig {
                text_encoder: Some(config.encoder),
                store: config.store.clone(),
                ..DataConfig::new(DatasetKind::Meld, Some(config.data.clone()))
            },
            TrainConfig::default(),
        ),
    };
    Ok((
        data,
        TrainConfig {
            batch_size: config.batch_size,
            seeds: vec![config.seed],
            data_parallel: config.data_parallel.unwrap_or(train.data_parallel),
            ..train
        },
    ))
}

/// Times [`TrainEpochBenchConfig::epochs`] training epochs (seeded
/// shuffle, then [`train_epoch`]) after the data is loaded and prepared.
///
/// # Errors
/// [`Error::Refused`](crate::Error::Refused) (`epochs` or `batch_size` is
/// 0), a run config or data that does not load, or an output (export,
/// order, checkpoint) that cannot be written.
pub fn run_train_epoch(config: &TrainEpochBenchConfig) -> Result<TrainEpochReport> {
    ensure!(config.epochs > 0, "epochs must be at least 1");
    ensure!(config.batch_size > 0, "batch_size must be at least 1");
    let (data_config, train_config) = train_epoch_setup(config)?;
    let corpus = data_config.load(&train_config.modalities)?;
    let data = PreparedData::new(&corpus, &train_config)?;
    if let Some(dir) = &config.export {
        export_training_data(dir, &data, &train_config)?;
    }
    let device = training_device();
    device.seed(config.seed);
    let (mut model, mut optim) = init_model(&data, &train_config, &device);
    let parameters = model.num_params();
    let class_weights = class_weight_tensor(&data, &train_config, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let utterances = data
        .train
        .iter()
        .flat_map(|d| d.labels.iter().flatten())
        .count();

    tracing::info!(
        dialogues = data.train.len(),
        utterances,
        epochs = config.epochs,
        "timing training epochs"
    );
    let (mut epoch_seconds, mut epoch_loss, mut epoch_orders) =
        (Vec::new(), Vec::new(), Vec::new());
    let memory = MemoryProbe::start();
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        epoch_orders.push(
            order
                .iter()
                .map(|&i| data.train[i].id.as_str())
                .collect::<Vec<_>>(),
        );
        let started = Instant::now();
        let (trained, loss) = train_epoch(
            model,
            &mut optim,
            &data,
            &order,
            &train_config,
            class_weights.as_ref(),
            &device,
        );
        epoch_seconds.push(started.elapsed().as_secs_f64());
        epoch_loss.push(loss);
        model = trained;
    }
    let environment = memory.finish();
    let seconds: f64 = epoch_seconds.iter().sum();
    if let Some(path) = &config.order_out {
        std::fs::write(path, serde_json::to_vec(&epoch_orders)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &config.save_checkpoint {
        Checkpoint::new(
            &corpus.name,
            data_config.text_source(),
            &train_config,
            config.seed,
            config.epochs,
            data.layout.clone(),
            data.labels.clone(),
        )
        .save(&model.valid(), dir)
        .with_context(|| format!("saving the checkpoint to {}", dir.display()))?;
    }
    Ok(TrainEpochReport {
        workload: "train_epoch",
        corpus: corpus.name.clone(),
        encoder: data_config.text_encoder,
        modalities: data.layout.modalities.clone(),
        fusion: train_config.model.fusion,
        parameters,
        d_input: data.layout.d_input(),
        dialogues: data.train.len(),
        utterances,
        batch_size: train_config.batch_size,
        data_parallel: train_config.data_parallel,
        batches_per_epoch: data.train.len().div_ceil(train_config.batch_size),
        epochs: config.epochs,
        seconds,
        epoch_seconds,
        epoch_loss,
        utterances_per_second: (utterances * config.epochs) as f64 / seconds,
        environment,
    })
}

/// What [`TrainEpochBenchConfig::export`] writes beside the tensors: enough
/// for another implementation to build the same model and batches.
#[derive(Debug, Serialize)]
struct TrainingExport<'a> {
    classes: &'a [String],
    modalities: &'a [(Modality, usize)],
    sequences: bool,
    train: &'a TrainConfig,
    /// Training dialogues in the order of the tensors' utterances.
    dialogues: Vec<ExportedDialogue<'a>>,
}

/// One training dialogue of a [`TrainingExport`].
#[derive(Debug, Serialize)]
struct ExportedDialogue<'a> {
    id: &'a str,
    speakers: &'a [usize],
    /// A class index per labelled turn, or (multi-label) a list of 0/1 bits.
    labels: Vec<Option<serde_json::Value>>,
}

/// Writes the z-scored training inputs as `train.safetensors` — per modality
/// `frames.<m>` `[total frames, width]` and `lengths.<m>` (frames per
/// utterance), or `inputs` `[utterances, d_input]` for pooled layouts — and
/// the dialogues and settings as `train.json`.
fn export_training_data(dir: &Path, data: &PreparedData, config: &TrainConfig) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let layout = &data.layout;
    let utterances: usize = data.train.iter().map(|d| d.len()).sum();
    let mut buffers: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = Vec::new();
    let bytes_f32 = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    if layout.sequences {
        for (k, &(modality, width)) in layout.modalities.iter().enumerate() {
            let frames: Vec<f32> = data
                .train
                .iter()
                .flat_map(|d| d.frames.iter().flat_map(|u| u[k].iter().copied()))
                .collect();
            let lengths: Vec<u8> = data
                .train
                .iter()
                .flat_map(|d| d.frames.iter().map(|u| (u[k].len() / width) as i64))
                .flat_map(i64::to_le_bytes)
                .collect();
            let total = frames.len() / width;
            buffers.push((
                format!("frames.{modality}"),
                bytes_f32(&frames),
                vec![total, width],
                Dtype::F32,
            ));
            buffers.push((
                format!("lengths.{modality}"),
                lengths,
                vec![utterances],
                Dtype::I64,
            ));
        }
    } else {
        let inputs: Vec<f32> = data
            .train
            .iter()
            .flat_map(|d| d.inputs.iter().copied())
            .collect();
        buffers.push((
            "inputs".into(),
            bytes_f32(&inputs),
            vec![utterances, layout.d_input()],
            Dtype::F32,
        ));
    }
    let tensors = dir.join("train.safetensors");
    let views = buffers
        .iter()
        .map(|(name, bytes, shape, dtype)| {
            Ok((
                name.as_str(),
                TensorView::new(*dtype, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .with_context(|| format!("writing {}", tensors.display()))?;
    safetensors::serialize_to_file(views, None, &tensors)
        .with_context(|| format!("writing {}", tensors.display()))?;
    let export = TrainingExport {
        classes: &data.labels.classes,
        modalities: &layout.modalities,
        sequences: layout.sequences,
        train: config,
        dialogues: data
            .train
            .iter()
            .map(|d| ExportedDialogue {
                id: &d.id,
                speakers: &d.speakers,
                labels: d
                    .labels
                    .iter()
                    .map(|label| {
                        label.as_ref().map(|label| match label {
                            mmer_core::Label::Single(c) => serde_json::json!(c),
                            mmer_core::Label::Multi(bits) => {
                                serde_json::json!(
                                    bits.iter().map(|&b| u8::from(b)).collect::<Vec<_>>()
                                )
                            }
                        })
                    })
                    .collect(),
            })
            .collect(),
    };
    let json = dir.join("train.json");
    std::fs::write(&json, serde_json::to_vec(&export)?)
        .with_context(|| format!("writing {}", json.display()))
}

/// Settings of [`run_predict`]: latency of text embedding +
/// `Checkpoint::predict` on one conversation, after the model and encoder
/// are loaded.
///
/// There is no `Default`: [`model`](Self::model) has none. Build it with
/// [`PredictBenchConfig::new`], which sets every other setting to its
/// default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictBenchConfig {
    /// A trained model: a `seed-<k>` directory (checkpoint.json + model.bpk).
    pub model: PathBuf,
    /// Conversation file (.jsonl or .csv, see docs/examples/); without it the
    /// first dialogue of [`meld_csv`](Self::meld_csv) with at least
    /// [`turns`](Self::turns) turns is used (default: none).
    #[serde(default)]
    pub input: Option<PathBuf>,
    /// MELD CSV to draw the conversation from when there is no `input` (a
    /// model of the synthetic conversations uses a synthetic one) (default:
    /// the MELD test split under `../shared/data/meld`).
    #[serde(default = "default_predict_meld_csv")]
    pub meld_csv: PathBuf,
    /// Turns of the drawn conversation (it is cut to this length) (default:
    /// 20).
    #[serde(default = "default_predict_turns")]
    pub turns: usize,
    /// Timed repetitions; the first is reported separately as
    /// [`PredictReport::first_seconds`] (default: 5).
    #[serde(default = "default_predict_repeats")]
    pub repeats: usize,
}

fn default_predict_meld_csv() -> PathBuf {
    "../shared/data/meld/test_sent_emo.csv".into()
}

fn default_predict_turns() -> usize {
    20
}

fn default_predict_repeats() -> usize {
    5
}

impl PredictBenchConfig {
    /// Times `model`, every other setting at its default.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            input: None,
            meld_csv: default_predict_meld_csv(),
            turns: default_predict_turns(),
            repeats: default_predict_repeats(),
        }
    }
}

/// Result of [`run_predict`].
#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    /// `"predict"`.
    pub workload: &'static str,
    /// Where the conversation came from.
    pub conversation: String,
    /// Turns predicted per repetition.
    pub turns: usize,
    /// Seconds to load the checkpoint and the encoder (not part of the latency).
    pub load_seconds: f64,
    /// Latency of the first call: embed every turn + `Checkpoint::predict`.
    pub first_seconds: f64,
    /// Median latency over all repetitions.
    pub median_seconds: f64,
    /// Median of the text-embedding part.
    pub median_embed_seconds: f64,
    /// Median of the model part (`Checkpoint::predict`: batching, forward, softmax).
    pub median_model_seconds: f64,
    /// Every repetition, in order.
    pub repeat_seconds: Vec<f64>,
    /// Where it ran, and its memory.
    pub environment: Environment,
}

/// The first MELD dialogue with at least `turns` turns, cut to `turns`.
fn meld_conversation(path: &Path, turns: usize) -> Result<Dialogue> {
    let dialogues = mmer_data::meld::load_meld_split(path, Split::Test)?;
    let mut dialogue = dialogues
        .into_iter()
        .find(|d| d.utterances.len() >= turns)
        .with_context(|| format!("{} has no dialogue with {turns} turns", path.display()))?;
    dialogue.utterances.truncate(turns);
    Ok(dialogue)
}

/// Loads the model and its encoder, then times
/// [`PredictBenchConfig::repeats`] predictions of one conversation: its
/// `input` file, else a synthetic test dialogue for a model of the
/// synthetic conversations, else a MELD dialogue.
///
/// # Errors
/// [`Error::Refused`](crate::Error::Refused) (`repeats` is 0, no dialogue
/// with `turns` turns), a model or conversation that does not load, or a
/// failed prediction.
pub fn run_predict(config: &PredictBenchConfig) -> Result<PredictReport> {
    ensure!(config.repeats > 0, "repeats must be at least 1");
    let loading = Instant::now();
    let (checkpoint, model) = Checkpoint::load_model(&config.model)
        .with_context(|| format!("loading model {}", config.model.display()))?;
    let synthetic = config.input.is_none() && checkpoint.corpus == "synthetic";
    let (dialogues, conversation) = match &config.input {
        Some(path) => (
            mmer_data::conversation::load_conversations(path, &checkpoint.labels)?,
            path.display().to_string(),
        ),
        // A model of the synthetic multimodal conversations (AMuSE) reads
        // their Text/Audio/Face/Body features: time it on one of them.
        None if synthetic => {
            let corpus = mmer_data::synthetic::generate(&Default::default());
            let mut dialogue = corpus
                .split(Split::Test)
                .iter()
                .find(|d| d.utterances.len() >= config.turns)
                .cloned()
                .with_context(|| {
                    format!("no synthetic test dialogue has {} turns", config.turns)
                })?;
            dialogue.utterances.truncate(config.turns);
            let name = format!("synthetic {}", dialogue.id);
            (vec![dialogue], name)
        }
        None => {
            let dialogue = meld_conversation(&config.meld_csv, config.turns)?;
            let name = format!("{} {}", config.meld_csv.display(), dialogue.id);
            (vec![dialogue], name)
        }
    };
    // Synthetic dialogues carry their features; anything else is embedded.
    let encoder = if synthetic {
        None
    } else {
        checkpoint_encoder(&checkpoint, &config.model, &mmer_text::default_models_dir())?
    };
    let load_seconds = loading.elapsed().as_secs_f64();
    let turns = dialogues.iter().map(|d| d.utterances.len()).sum();

    let (mut repeat_seconds, mut embed_seconds) = (
        Vec::with_capacity(config.repeats),
        Vec::with_capacity(config.repeats),
    );
    let memory = MemoryProbe::start();
    for _ in 0..config.repeats {
        let mut input = dialogues.clone();
        let started = Instant::now();
        if let Some(encoder) = &encoder {
            encoder.embed(&mut input)?;
        }
        embed_seconds.push(started.elapsed().as_secs_f64());
        let predictions = checkpoint.predict(&model, &input)?;
        repeat_seconds.push(started.elapsed().as_secs_f64());
        if predictions.len() != turns {
            bail!("predicted {} of {turns} turns", predictions.len());
        }
    }
    let environment = memory.finish();
    let model_seconds: Vec<f64> = repeat_seconds
        .iter()
        .zip(&embed_seconds)
        .map(|(total, embed)| total - embed)
        .collect();
    Ok(PredictReport {
        workload: "predict",
        conversation,
        turns,
        load_seconds,
        first_seconds: repeat_seconds[0],
        median_seconds: median(&repeat_seconds),
        median_embed_seconds: median(&embed_seconds),
        median_model_seconds: median(&model_seconds),
        repeat_seconds,
        environment,
    })
}

/// Settings of [`run_extract`]: the real-time factor of media extraction
/// on a generated clip (`testsrc` video, or [`picture`](Self::picture)'s,
/// + speech, H.264/AAC MP4). The clip defaults are [`ClipSpec`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractBenchConfig {
    /// Folder of speech WAV files; the first few, in name order and
    /// concatenated, are the clip's sound track (default: the EmoDB clips
    /// under `../shared/data/emodb/wav`).
    pub speech: PathBuf,
    /// Clip duration, seconds (default: 10).
    pub seconds: f64,
    /// Clip width, pixels (default: 640).
    pub width: u32,
    /// Clip height, pixels (default: 360).
    pub height: u32,
    /// Clip frame rate (default: 25).
    pub fps: u32,
    /// Keyframes decoded per clip (default: 8).
    pub keyframes: usize,
    /// Timed repetitions after one warm-up; the median is reported
    /// (default: 5).
    pub repeats: usize,
    /// Video whose pictures, looped and scaled to the clip size, replace
    /// the face-less `testsrc` pattern, e.g. a CREMA-D clip, so the
    /// expression model runs too (default: none).
    pub picture: Option<PathBuf>,
}

impl Default for ExtractBenchConfig {
    fn default() -> Self {
        let clip = ClipSpec::default();
        Self {
            speech: "../shared/data/emodb/wav".into(),
            seconds: clip.seconds,
            width: clip.width,
            height: clip.height,
            fps: clip.fps,
            keyframes: clip.keyframes,
            repeats: 5,
            picture: clip.picture,
        }
    }
}

impl ExtractBenchConfig {
    /// The clip these settings describe.
    pub fn clip(&self) -> ClipSpec {
        ClipSpec {
            seconds: self.seconds,
            width: self.width,
            height: self.height,
            fps: self.fps,
            keyframes: self.keyframes,
            picture: self.picture.clone(),
        }
    }
}

/// Makes the benchmark clip in a temporary folder (removed afterwards) and
/// times its extraction with [`mmer_media::bench::run`].
///
/// `visual` is the Face/Body extractor, built by the caller with
/// [`ExtractBenchConfig::keyframes`] keyframes (mmer-vision's, as `mmer
/// extract` loads it); `None` times only audio and the keyframe decode.
///
/// # Errors
/// [`Error::Refused`](crate::Error::Refused) (no WAV file in `speech`), a
/// speech folder that cannot be read, and [`Error::Media`](crate::Error::Media)
/// from making or extracting the clip (ffmpeg missing, 0 repeats, …).
pub fn run_extract(
    config: &ExtractBenchConfig,
    visual: Option<&dyn StreamExtractor>,
) -> Result<BenchReport> {
    let ffmpeg = mmer_media::Ffmpeg::from_env();
    let mut speech: Vec<PathBuf> = std::fs::read_dir(&config.speech)
        .with_context(|| format!("reading speech folder {}", config.speech.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    speech.sort();
    // EmoDB clips are 2 s: enough of them to cover the clip without looping.
    speech.truncate((config.seconds / 2.0).ceil().max(1.0) as usize);
    ensure!(
        !speech.is_empty(),
        "no .wav file in {}",
        config.speech.display()
    );
    let spec = config.clip();
    let work = std::env::temp_dir().join(format!("mmer-bench-extract-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let clip = work.join("clip.mp4");
    let result = mmer_media::bench::make_clip(&ffmpeg, &spec, &speech, &clip).and_then(|()| {
        tracing::info!(clip = %clip.display(), "timing extraction");
        mmer_media::bench::run(&ffmpeg, &spec, &clip, &work, config.repeats, visual)
    });
    let _ = std::fs::remove_dir_all(&work);
    Ok(result?)
}

/// Settings of the speech-recognition benchmark (`mmer bench asr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsrBenchConfig {
    /// `file,text,source` CSV of recordings whose words are known
    /// (`scripts/asr_corpus.py` writes one).
    pub manifest: PathBuf,
    /// Whisper models to measure.
    pub models: Vec<mmer_asr::AsrModel>,
    /// Reference transcripts (`scripts/whisper_reference.py
    /// --segments-only`) to compare with, one file per model.
    pub references: Vec<PathBuf>,
    /// Models directory.
    pub models_dir: PathBuf,
}

impl Default for AsrBenchConfig {
    fn default() -> Self {
        Self {
            manifest: PathBuf::from("target/asr-corpus/manifest.csv"),
            models: mmer_asr::AsrModel::ALL.to_vec(),
            references: Vec::new(),
            models_dir: PathBuf::from("models"),
        }
    }
}

/// What `mmer bench asr` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AsrReport {
    /// Word error rate, speed and agreement with the reference, per model
    /// and source; every file's hypothesis.
    #[serde(flatten)]
    pub wer: crate::transcribe::WerReport,
    /// Where it ran; the peak memory covers all models.
    pub environment: Environment,
}

/// Word error rate and real-time factor of each Whisper model on a manifest.
///
/// # Errors
/// The manifest or a reference does not read, a model does not load, a
/// recording does not decode.
pub fn run_asr(config: &AsrBenchConfig) -> Result<AsrReport> {
    ensure!(
        !config.models.is_empty(),
        "models: name at least one Whisper model"
    );
    let entries = crate::transcribe::read_manifest(&config.manifest)?;
    let references = config
        .references
        .iter()
        .map(|p| crate::transcribe::ReferenceTranscripts::read(p))
        .collect::<Result<Vec<_>>>()?;
    let memory = MemoryProbe::start();
    let wer = crate::transcribe::wer_benchmark(
        &entries,
        &config.models,
        &references,
        &config.models_dir,
        &mmer_media::Ffmpeg::from_env(),
        true,
    )?;
    Ok(AsrReport {
        wer,
        environment: memory.finish(),
    })
}

/// Settings of the speaker-clustering benchmark with faces (`mmer bench
/// speakers`): two-person conversations built from real clips, one person
/// on camera (CREMA-D video) and one off camera (EmoDB speech).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeakersBenchConfig {
    /// Folder of video clips of the on-camera person (`*.flv`, `*.mp4`, …;
    /// CREMA-D's actor 1001 under `../shared/data/crema-d`).
    pub on_camera: PathBuf,
    /// EmoDB WAV folder: each of its speakers is the off-camera partner of
    /// one conversation.
    pub off_camera: PathBuf,
    /// Clips per person and conversation (drawn with the seed).
    pub clips: usize,
    /// Seed of the clip draws and of each conversation's turn order.
    pub seed: u64,
    /// Weight of the face cue against the voice
    /// (`mmer_audio::speakers::assign_speakers_with_faces`).
    pub face_weight: f64,
    /// Keyframes decoded per video clip.
    pub keyframes: usize,
    /// Models directory (face detector and expression model).
    pub models_dir: PathBuf,
}

impl Default for SpeakersBenchConfig {
    fn default() -> Self {
        Self {
            on_camera: "../shared/data/crema-d".into(),
            off_camera: "../shared/data/emodb/wav".into(),
            clips: 6,
            seed: 0,
            face_weight: mmer_audio::speakers::DEFAULT_FACE_WEIGHT,
            keyframes: 8,
            models_dir: PathBuf::from("models"),
        }
    }
}

/// One condition × speaker-count row of `mmer bench speakers`.
#[derive(Debug, Clone, Serialize)]
pub struct SpeakersRow {
    /// What the clustering saw.
    pub condition: String,
    /// `"given 2"` or `"estimated (≤ 4)"`.
    pub count: String,
    /// Conversations.
    pub n: usize,
    /// Mean and population standard deviation of the speaker accuracy over
    /// the conversations.
    pub accuracy_mean: f64,
    /// See `accuracy_mean`.
    pub accuracy_std: f64,
    /// `speakers_found[k]`: conversations where `k` speakers were found.
    pub speakers_found: Vec<usize>,
}

/// What `mmer bench speakers` reports.
#[derive(Debug, Clone, Serialize)]
pub struct SpeakersReport {
    /// The settings it ran with.
    pub config: SpeakersBenchConfig,
    /// One row per condition and speaker count.
    pub rows: Vec<SpeakersRow>,
    /// Off-camera speakers, one conversation each.
    pub partners: Vec<String>,
    /// Where it ran.
    pub environment: Environment,
}

/// Speaker accuracy on two-person conversations from real clips, with and
/// without faces. For each EmoDB speaker, one conversation: `clips` video
/// clips of the on-camera person and `clips` of that speaker, in a seeded
/// order. Three conditions, each with 2 speakers given and estimated:
///
/// - **voice only**;
/// - **voice + face, partner off camera**: the on-camera person's turns
///   carry the face print of the faces in their clip (even keyframes), the
///   partner's turns none (an interviewer behind the camera);
/// - **voice + face, the on-camera person seen in every turn**: the
///   partner's turns carry the on-camera person's face too, from the odd
///   keyframes of one of their clips in turn (a listener on camera), so the
///   face says nothing about who speaks.
///
/// A clip with too little voiced speech for a voice print stays in the
/// conversation without one (as `mmer analyze` keeps such a turn): it gets
/// a speaker only from its face, and counts as wrong when it gets none.
///
/// # Errors
/// A folder that does not read, fewer than `clips` clips of the on-camera
/// person or of any EmoDB speaker, a video clip without a face in its even
/// or its odd keyframes, the face models missing, ffmpeg failing.
pub fn run_speakers(config: &SpeakersBenchConfig) -> Result<SpeakersReport> {
    use mmer_audio::speakers::{SpeakerCount, VoicePrint, assign_speakers_with_faces};
    ensure!(config.clips >= 1, "clips must be at least 1");
    ensure!(config.keyframes >= 2, "keyframes must be at least 2");
    let ffmpeg = mmer_media::Ffmpeg::from_env();
    let seeta = mmer_vision::SeetaModel::from_models_dir(&config.models_dir)?;
    let fer = mmer_vision::ExpressionModel::from_models_dir(
        &config.models_dir,
        &burn::tensor::Device::default(),
    )?;
    let mut extractor = mmer_vision::VisualExtractor::new(
        &seeta,
        fer,
        &mmer_vision::VisualExtractorConfig::default(),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let memory = MemoryProbe::start();

    // The on-camera person: voice print, speaking face, listening face.
    let mut videos = mmer_media::inputs::media_files(std::slice::from_ref(&config.on_camera))?;
    videos.sort();
    ensure!(
        videos.len() >= config.clips,
        "{}: {} clips, {} needed",
        config.on_camera.display(),
        videos.len(),
        config.clips
    );
    videos.shuffle(&mut rng);
    videos.truncate(config.clips);
    struct OnCamera {
        voice: Option<VoicePrint>,
        speaking: Vec<f32>,
        listening: Vec<f32>,
    }
    let mut on_camera = Vec::new();
    for path in &videos {
        let info = ffmpeg.probe(path)?;
        let audio = ffmpeg.decode_audio(&info)?;
        let voice = mmer_audio::speakers::voice_print(&audio.samples)?;
        let options = mmer_media::KeyframeOptions {
            count: config.keyframes,
            max_side: Some(640),
            mode: mmer_media::KeyframeMode::Uniform,
        };
        let frames = ffmpeg.keyframes(&info, &options)?;
        let views = frames
            .iter()
            .map(|f| mmer_vision::RgbFrame::new(f.width as usize, f.height as usize, &f.data))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (mut speaking, mut listening) = (Vec::new(), Vec::new());
        for (i, keyframe) in extractor.extract(&views)?.iter().enumerate() {
            let print = keyframe
                .face
                .as_ref()
                .and_then(|f| mmer_vision::face_print(&f.crop.image));
            if let Some(print) = print {
                if i % 2 == 0 {
                    &mut speaking
                } else {
                    &mut listening
                }
                .push(print);
            }
        }
        let (Some(speaking), Some(listening)) = (
            mmer_vision::mean_face_print(&speaking),
            mmer_vision::mean_face_print(&listening),
        ) else {
            bail!(
                "{}: no face in the even or the odd keyframes",
                path.display()
            );
        };
        on_camera.push(OnCamera {
            voice,
            speaking,
            listening,
        });
    }

    // The off-camera partners: EmoDB speakers (the first two characters
    // of a file name).
    let mut by_speaker: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for path in mmer_media::inputs::media_files(std::slice::from_ref(&config.off_camera))? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(speaker) = name.as_deref().and_then(|n| n.get(..2)) {
            by_speaker
                .entry(speaker.to_string())
                .or_default()
                .push(path);
        }
    }
    ensure!(
        !by_speaker.is_empty(),
        "{}: no EmoDB clips",
        config.off_camera.display()
    );
    let conditions = [
        "voice only",
        "voice + face, partner off camera",
        "voice + face, on-camera person seen in every turn",
    ];
    let counts = [
        ("given 2", SpeakerCount::Given(2)),
        ("estimated (≤ 4)", SpeakerCount::Estimate { max: 4 }),
    ];
    let mut accuracies = vec![Vec::new(); conditions.len() * counts.len()];
    let mut found = vec![vec![0usize; 5]; conditions.len() * counts.len()];
    for (speaker, mut clips) in by_speaker.clone() {
        clips.sort();
        ensure!(
            clips.len() >= config.clips,
            "EmoDB speaker {speaker}: {} clips, {} needed",
            clips.len(),
            config.clips
        );
        clips.shuffle(&mut rng);
        let mut turns: Vec<(usize, usize)> =
            (0..config.clips).flat_map(|i| [(0, i), (1, i)]).collect();
        turns.shuffle(&mut rng);
        let mut voices = Vec::with_capacity(turns.len());
        for &(who, i) in &turns {
            voices.push(if who == 0 {
                on_camera[i].voice.clone()
            } else {
                mmer_audio::speakers::voice_print(&mmer_audio::load_16k_mono(&clips[i])?)?
            });
        }
        let truth: Vec<usize> = turns.iter().map(|&(who, _)| who).collect();
        let faces: [Vec<Option<&[f32]>>; 3] = [
            vec![None; turns.len()],
            turns
                .iter()
                .map(|&(who, i)| (who == 0).then(|| on_camera[i].speaking.as_slice()))
                .collect(),
            turns
                .iter()
                .map(|&(who, i)| {
                    Some(if who == 0 {
                        on_camera[i].speaking.as_slice()
                    } else {
                        on_camera[i].listening.as_slice()
                    })
                })
                .collect(),
        ];
        for (c, faces) in faces.iter().enumerate() {
            let weight = if c == 0 { 0.0 } else { config.face_weight };
            for (k, (_, count)) in counts.iter().enumerate() {
                let ids = assign_speakers_with_faces(&voices, faces, weight, *count)?;
                let speakers = ids.iter().flatten().max().map_or(0, |m| m + 1);
                // A turn without a speaker is wrong whatever the mapping.
                let ids: Vec<usize> = ids.into_iter().map(|id| id.unwrap_or(usize::MAX)).collect();
                let row = c * counts.len() + k;
                accuracies[row].push(mmer_audio::speaker_accuracy(&truth, &ids)?);
                found[row][speakers.min(4)] += 1;
            }
        }
    }
    let rows = conditions
        .iter()
        .enumerate()
        .flat_map(|(c, condition)| {
            let (accuracies, found) = (&accuracies, &found);
            counts.iter().enumerate().map(move |(k, (count, _))| {
                let a = &accuracies[c * counts.len() + k];
                let mean = a.iter().sum::<f64>() / a.len() as f64;
                let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / a.len() as f64;
                SpeakersRow {
                    condition: condition.to_string(),
                    count: count.to_string(),
                    n: a.len(),
                    accuracy_mean: mean,
                    accuracy_std: var.sqrt(),
                    speakers_found: found[c * counts.len() + k].clone(),
                }
            })
        })
        .collect();
    Ok(SpeakersReport {
        config: config.clone(),
        rows,
        partners: by_speaker.into_keys().collect(),
        environment: memory.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 4.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let env = MemoryProbe::start().finish();
            let (before, peak) = (env.rss_before_work_mib.unwrap(), env.peak_rss_mib.unwrap());
            assert!(before > 0.0 && peak >= before, "{before} {peak}");
        }
    }

    #[test]
    fn configs_read_with_defaults() {
        let text: TextBenchConfig = toml::from_str("n = 10").unwrap();
        assert_eq!(
            text,
            TextBenchConfig {
                n: 10,
                ..TextBenchConfig::default()
            }
        );
        let predict: PredictBenchConfig = toml::from_str("model = \"m\"").unwrap();
        assert_eq!(predict, PredictBenchConfig::new("m"));
        assert!(toml::from_str::<ExtractBenchConfig>("second = 2.0").is_err());
    }
}

/// Settings of [`run_finetune_step`]: fine-tuning steps of a text encoder
/// on batches of MELD utterances (issue 17's speed target: MPNet, 16
/// utterances of MELD length, against PyTorch doing the same step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuneStepBenchConfig {
    /// Encoder to fine-tune (default: MPNet).
    pub encoder: EncoderKind,
    /// MELD CSV whose training utterances fill the batches, in file order.
    pub meld_csv: PathBuf,
    /// Utterances per step (default: 16).
    pub batch: usize,
    /// Timed steps (default: 5).
    pub steps: usize,
    /// Untimed steps first, on their own batches (default: 1).
    pub warmup_steps: usize,
    /// Top layers trained (default `None`: all, with the embeddings); with
    /// fewer, the states under them are computed once, untimed.
    pub layers: Option<usize>,
    /// Write the batches (token ids, labels) and settings here as JSON, so
    /// that another implementation runs exactly the same steps.
    pub inputs_out: Option<PathBuf>,
    /// Shards of each batch, each forward and backward on its own thread
    /// (`[train] data_parallel`; default 1). Shards of cached states pad to
    /// the batch's longest utterance, as one batch does; with every layer
    /// trained, each shard pads to its own longest.
    pub data_parallel: usize,
}

impl Default for FineTuneStepBenchConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderKind::Mpnet,
            meld_csv: "../shared/data/meld/train_sent_emo.csv".into(),
            batch: 16,
            steps: 5,
            warmup_steps: 1,
            layers: None,
            inputs_out: None,
            data_parallel: 1,
        }
    }
}

/// Result of [`run_finetune_step`].
#[derive(Debug, Clone, Serialize)]
pub struct FineTuneStepReport {
    /// `"finetune-step"`.
    pub workload: &'static str,
    /// The encoder.
    pub encoder: EncoderKind,
    /// Utterances per step.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// Layers trained.
    pub layers: usize,
    /// Shards per batch, one thread each.
    pub data_parallel: usize,
    /// Tokens of each timed batch, special tokens included (no padding).
    pub tokens_per_batch: Vec<usize>,
    /// Wall-clock seconds of each timed step (forward, backward, AdamW).
    pub seconds_per_step: Vec<f64>,
    /// Their median.
    pub median_seconds: f64,
    /// Their mean.
    pub mean_seconds: f64,
    /// Loss of each timed step.
    pub loss_per_step: Vec<f64>,
    /// Sum of the losses of the timed steps.
    pub checksum: f64,
    /// Parameters the optimiser updates (encoder and head).
    pub trained_parameters: usize,
    /// Where it ran, and its memory.
    pub environment: Environment,
}

/// The encoder layers trained and a linear head on their pooled output.
#[derive(burn::module::Module, Debug)]
struct StepModel {
    encoder: mmer_models::text_encoder::TextEncoder,
    head: burn::nn::Linear,
}

/// The learning rate and weight decay of the benchmarked AdamW step.
const STEP_LEARNING_RATE: f64 = 2e-5;
const STEP_WEIGHT_DECAY: f32 = 0.01;

/// Times fine-tuning steps: per batch, the trained layers' forward pass
/// (from token ids with every layer; from cached states with the top
/// `layers`), mean pooling, a linear head over MELD's 7 classes,
/// cross-entropy, backward and an AdamW step (lr 2e-5, decay 0.01). With
/// `data_parallel` = k > 1, k threads each run the forward and backward
/// pass of a shard of the batch on a fork of the model, their losses
/// weighted by their share of the batch, and the summed gradients make one
/// step.
///
/// # Errors
/// [`Error::Refused`](crate::Error::Refused) for 0 steps or batch, too few
/// utterances or layers outside the encoder; a MELD file that does not
/// load, an encoder that is not installed, an unwritable `inputs_out`.
pub fn run_finetune_step(config: &FineTuneStepBenchConfig) -> Result<FineTuneStepReport> {
    use burn::nn::LinearConfig;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{Int, Tensor, TensorData};
    use mmer_models::text_encoder::{TextEncoder, mean_pool};

    ensure!(
        config.batch > 0 && config.steps > 0 && config.data_parallel > 0,
        "batch, steps and data_parallel must be at least 1"
    );
    let dialogues = mmer_data::meld::load_meld_split(&config.meld_csv, Split::Train)?;
    let rows: Vec<(String, usize)> = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter_map(|u| Some((u.text.clone()?, u.label.as_ref()?.single()?)))
        .collect();
    let batches = config.warmup_steps + config.steps;
    ensure!(
        rows.len() >= batches * config.batch,
        "{} has {} labelled utterances, {batches} batches of {} need more",
        config.meld_csv.display(),
        rows.len(),
        config.batch
    );
    let frozen = load_encoder(config.encoder)?;
    let (checkpoint, tensors) =
        mmer_text::load_encoder_tensors(config.encoder, &mmer_text::default_models_dir())?;
    let depth = checkpoint.num_hidden_layers;
    let layers = config.layers.unwrap_or(depth);
    ensure!(
        (1..=depth).contains(&layers),
        "layers = {layers}: the encoder has 1 to {depth}"
    );
    let rows = &rows[..batches * config.batch];
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let ids = frozen.token_ids(&texts)?;
    if let Some(path) = &config.inputs_out {
        let batches: Vec<serde_json::Value> = ids
            .chunks(config.batch)
            .zip(rows.chunks(config.batch))
            .map(|(ids, rows)| {
                serde_json::json!({
                    "ids": ids,
                    "labels": rows.iter().map(|(_, c)| c).collect::<Vec<_>>(),
                })
            })
            .collect();
        let inputs = serde_json::json!({
            "encoder": config.encoder,
            "layers": layers,
            "num_classes": 7,
            "learning_rate": STEP_LEARNING_RATE,
            "weight_decay": STEP_WEIGHT_DECAY,
            "warmup_steps": config.warmup_steps,
            "batches": batches,
        });
        std::fs::write(path, serde_json::to_vec(&inputs)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // With fewer than every layer, the states under them are inputs.
    let below = depth - layers;
    let cached = match below {
        0 => None,
        _ => Some(frozen.embed_layer_tokens_with_progress(&texts, below, |_, _| {})?),
    };
    drop(frozen);
    let device = mmer_train::trainer::training_device();
    device.seed(0);
    let mut model = StepModel {
        encoder: TextEncoder::from_checkpoint(&checkpoint, &tensors, below..depth, &device)?
            .freeze_shared(),
        head: LinearConfig::new(checkpoint.hidden_size, 7).init(&device),
    };
    drop(tensors);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(STEP_WEIGHT_DECAY)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let width = checkpoint.hidden_size;
    let memory = MemoryProbe::start();
    // The relative-position bias is frozen under a top-k run (freeze_shared).
    let frozen_bias = match (below, checkpoint.model_type) {
        (1.., mmer_text::mpnet::ModelType::Mpnet) => {
            checkpoint.relative_attention_num_buckets * checkpoint.num_attention_heads
        }
        _ => 0,
    };
    let trained_parameters = model.num_params() - frozen_bias;
    let (mut seconds, mut tokens, mut losses) = (Vec::new(), Vec::new(), Vec::new());
    for (k, (batch_ids, batch_rows)) in ids
        .chunks(config.batch)
        .zip(rows.chunks(config.batch))
        .enumerate()
    {
        let started = Instant::now();
        let s = batch_ids.iter().map(Vec::len).max().unwrap_or(1);
        // The loss of rows `rows` of the batch, weighted by their share of it.
        let shard_loss = |model: &StepModel, rows: std::ops::Range<usize>| -> Result<Tensor<1>> {
            let (states, mask) = match &cached {
                None => model
                    .encoder
                    .forward_ids(&batch_ids[rows.clone()], &device)
                    .context("the encoder has its embeddings")?,
                Some(cached) => {
                    let start = k * config.batch + rows.start;
                    let states = &cached[start..start + rows.len()];
                    let mut flat = vec![0f32; rows.len() * s * width];
                    let mut mask = vec![0f32; rows.len() * s];
                    for (r, state) in states.iter().enumerate() {
                        flat[r * s * width..r * s * width + state.len()].copy_from_slice(state);
                        mask[r * s..r * s + state.len() / width].fill(1.0);
                    }
                    let n = rows.len();
                    let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, s]), &device);
                    let x = Tensor::<3>::from_data(TensorData::new(flat, [n, s, width]), &device);
                    (model.encoder.forward_states(x, &mask), mask)
                }
            };
            let logits = model.head.forward(mean_pool(states, &mask)); // [rows, 7]
            let targets: Vec<i64> = batch_rows[rows.clone()]
                .iter()
                .map(|(_, c)| *c as i64)
                .collect();
            let n = targets.len();
            let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &device);
            let loss = loss_fn.forward(logits, targets);
            Ok(match n == batch_ids.len() {
                true => loss,
                false => loss.mul_scalar(n as f32 / batch_ids.len() as f32),
            })
        };
        let (value, grads) = if config.data_parallel == 1 {
            let loss = shard_loss(&model, 0..batch_ids.len())?;
            let value = f64::from(loss.clone().into_scalar::<f32>());
            (value, GradientsParams::from_grads(loss.backward(), &model))
        } else {
            let per_shard = batch_ids.len().div_ceil(config.data_parallel);
            let stream = mmer_models::blocks::backend_seed(&device);
            let jobs: Vec<_> = (0..batch_ids.len())
                .step_by(per_shard)
                .map(|start| {
                    let worker = model.clone().fork(&device);
                    let rows = start..(start + per_shard).min(batch_ids.len());
                    let shard_loss = &shard_loss;
                    move || -> Result<(f64, GradientsParams)> {
                        let loss = shard_loss(&worker, rows)?;
                        let value = f64::from(loss.clone().into_scalar::<f32>());
                        Ok((value, GradientsParams::from_grads(loss.backward(), &worker)))
                    }
                })
                .collect();
            let shards = mmer_models::blocks::run_shards(stream, jobs);
            let mut summed = burn::optim::GradientsAccumulator::<StepModel>::new();
            let mut value = 0.0;
            for shard in shards {
                let (loss, grads) = shard?;
                value += loss;
                summed.accumulate(&model, grads);
            }
            (value, summed.grads())
        };
        model = optim.step(STEP_LEARNING_RATE, model, grads);
        if k >= config.warmup_steps {
            seconds.push(started.elapsed().as_secs_f64());
            tokens.push(batch_ids.iter().map(Vec::len).sum());
            losses.push(value);
        }
    }
    let environment = memory.finish();
    Ok(FineTuneStepReport {
        workload: "finetune-step",
        encoder: config.encoder,
        batch: config.batch,
        steps: config.steps,
        layers,
        data_parallel: config.data_parallel,
        tokens_per_batch: tokens,
        median_seconds: median(&seconds),
        mean_seconds: seconds.iter().sum::<f64>() / seconds.len() as f64,
        seconds_per_step: seconds,
        checksum: losses.iter().sum(),
        loss_per_step: losses,
        trained_parameters,
        environment,
    })
}
