//! `mmer bench`: speed of the three things users wait for — embedding
//! transcripts, one training epoch of the context model, and predicting a
//! conversation once the model is loaded.
//!
//! Each workload loads what it needs first and then times only the work, so
//! the numbers compare directly with `bench/pytorch_reference.py`, which does
//! the same work with PyTorch + sentence-transformers (`bench/run.sh` runs
//! both sides back to back and writes `bench/runs/<date>-<machine>/`). The
//! result is one JSON object on stdout; progress and logs go to stderr.
//!
//! Memory: each report carries the resident set before the timed work and
//! the process's peak (`VmHWM`); `bench/run.sh` also records the peak with
//! `/usr/bin/time -v`.
//!
//! Thread counts: the encoder runs [`mmer_features::default_workers`] batches
//! at once, each on one thread; burn's CPU backend uses rayon's global pool.
//! Set `RAYON_NUM_THREADS` (and `--workers`) to pin both, as `bench/run.sh`
//! does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::{Args, Subcommand};
use mmer_core::{Dialogue, Modality, Split};
use mmer_features::EncoderKind;
use mmer_models::Fusion;
use mmer_train::trainer::{
    PreparedData, class_weight_tensor, init_model, train_epoch, training_device,
};
use mmer_train::{Checkpoint, TrainConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use mmer_run::RunConfig;
use mmer_run::data::{DataConfig, DatasetKind, checkpoint_encoder, load_encoder};

/// Arguments of `mmer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which workload to time.
    #[command(subcommand)]
    pub workload: Workload,
}

/// The timed workloads.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Sentence-embedding throughput on the first N utterances of a MELD CSV.
    Text(TextArgs),
    /// Training epochs of the MELD text context model (default model spec:
    /// dialogue + speaker context, d_model 256, d_hidden 100, focal γ = 1,
    /// Adam 5e-4, 16 dialogues per batch) on cached embeddings — or of any
    /// model and data a `--config` names (e.g. AMuSE on the synthetic
    /// multimodal conversations: docs/configs/synthetic-amuse.toml).
    TrainEpoch(TrainEpochArgs),
    /// Latency of text embedding + `Checkpoint::predict` on one conversation,
    /// after the model and encoder are loaded.
    Predict(PredictArgs),
    /// Real-time factor of `mmer extract` on a generated clip (testsrc video,
    /// or `--picture`'s, + EmoDB speech, H.264/AAC MP4), with a per-stage
    /// breakdown: probe, decoding, audio, the visual stage and its parts
    /// (`visual.detect`, `visual.body`, `visual.expression`, `visual.setup`).
    Extract(ExtractBenchArgs),
    /// Speaker-independent EmoDB: leave-one-speaker-out accuracy and
    /// weighted F1 of an audio-only model on mmer's own functionals.
    EmodbLoso(EmoDbArgs),
}

/// Arguments of `mmer bench emodb-loso`.
#[derive(Debug, Args)]
pub struct EmoDbArgs {
    /// EmoDB WAV folder (file names like `03a01Wa.wav`).
    #[arg(long, default_value = "../shared/data/emodb/wav")]
    pub data: PathBuf,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    pub seeds: Vec<u64>,
    /// Maximum epochs per fold.
    #[arg(long, default_value_t = 200)]
    pub max_epochs: usize,
    /// Reference run: read each clip's features from this openSMILE
    /// eGeMAPSv02 functionals CSV (`clip` column + 88 values, e.g.
    /// crates/mmer-audio/tests/fixtures/egemaps_emodb.csv) instead of
    /// computing mmer's own.
    #[arg(long)]
    pub opensmile_csv: Option<PathBuf>,
    /// Z-score every feature within each speaker first (speaker
    /// normalisation, standard in speaker-independent SER). It uses the
    /// test speaker's unlabelled features, never their labels.
    #[arg(long)]
    pub speaker_norm: bool,
    /// Also write every clip's features (before any speaker normalisation)
    /// as CSV — clip, speaker, class, then one column per feature — for
    /// analysis with other tools.
    #[arg(long)]
    pub features_out: Option<PathBuf>,
}

impl EmoDbArgs {
    fn into_config(self) -> mmer_run::emodb::EmoDbConfig {
        mmer_run::emodb::EmoDbConfig {
            data: self.data,
            seeds: self.seeds,
            max_epochs: self.max_epochs,
            opensmile_csv: self.opensmile_csv,
            speaker_norm: self.speaker_norm,
            features_out: self.features_out,
        }
    }
}

/// Arguments of `mmer bench extract`.
#[derive(Debug, Args)]
pub struct ExtractBenchArgs {
    /// Folder of speech WAV files; the first few, concatenated, are the
    /// clip's sound track.
    #[arg(long, default_value = "../shared/data/emodb/wav")]
    pub speech: PathBuf,
    /// Clip duration, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Clip width, pixels.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Clip height, pixels.
    #[arg(long, default_value_t = 360)]
    pub height: u32,
    /// Clip frame rate.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Keyframes decoded per clip.
    #[arg(long, default_value_t = 8)]
    pub keyframes: usize,
    /// Timed repetitions after one warm-up (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Video whose pictures, looped and scaled to the clip size, replace
    /// the face-less `testsrc` pattern (e.g. a CREMA-D clip, so the
    /// expression model runs too).
    #[arg(long)]
    pub picture: Option<PathBuf>,
    /// Time only audio and the keyframe decode, without the Face/Body
    /// models.
    #[arg(long)]
    pub no_visual: bool,
}

/// Arguments of `mmer bench text`.
#[derive(Debug, Args)]
pub struct TextArgs {
    /// Sentence encoder to time.
    #[arg(long, value_enum, default_value = "minilm")]
    pub encoder: EncoderKind,
    /// MELD CSV whose utterances are embedded, in file order.
    #[arg(long, default_value = "../shared/data/meld/train_sent_emo.csv")]
    pub meld_csv: PathBuf,
    /// Number of utterances to embed (fewer if the file has fewer).
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = mmer_features::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Batches in flight, one thread each (default: min(2, CPUs)).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Texts embedded once before timing (not counted), to warm caches.
    #[arg(long, default_value_t = 32)]
    pub warmup: usize,
    /// Also write the embedded texts as a JSON array here, so another
    /// implementation can embed exactly the same strings.
    #[arg(long)]
    pub texts_out: Option<PathBuf>,
}

/// Arguments of `mmer bench train-epoch`.
#[derive(Debug, Args)]
pub struct TrainEpochArgs {
    /// Sentence encoder whose cached MELD embeddings are the input (embedded
    /// and cached first if the store lacks them; that is not timed).
    #[arg(long, value_enum, default_value = "minilm")]
    pub encoder: EncoderKind,
    /// MELD directory (train/dev/test_sent_emo.csv).
    #[arg(long, default_value = "../shared/data/meld")]
    pub data: PathBuf,
    /// Feature-store directory.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Epochs to time.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Seed of the initialisation, dropout and the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dialogues per batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Shards per batch, one thread each (`[train] data_parallel`; default:
    /// the config's, else 1).
    #[arg(long, value_name = "N")]
    pub data_parallel: Option<usize>,
    /// Save the trained model here as a checkpoint (not timed), e.g. for
    /// `mmer bench predict --model`.
    #[arg(long)]
    pub save_checkpoint: Option<PathBuf>,
    /// Also write the dialogue ids of every epoch in training order (a JSON
    /// array of arrays), so another implementation can batch identically.
    #[arg(long)]
    pub order_out: Option<PathBuf>,
    /// Run config (TOML, as `mmer train --config`): its data and `[train]`
    /// settings replace the MELD defaults; `--batch-size`, `--epochs` and
    /// `--seed` still apply.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write the prepared (z-scored) training inputs and the model
    /// settings to this directory (`train.safetensors` + `train.json`), so
    /// another implementation trains on exactly the same numbers.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

/// Arguments of `mmer bench predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A trained model: a `seed-<k>` directory (checkpoint.json + model.bpk).
    #[arg(long)]
    pub model: PathBuf,
    /// Conversation file (.jsonl or .csv, see docs/examples/); without it the
    /// first dialogue of `--meld-csv` with at least `--turns` turns is used.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// MELD CSV to draw the conversation from when no `--input` is given
    /// (a model of the synthetic conversations uses a synthetic one).
    #[arg(long, default_value = "../shared/data/meld/test_sent_emo.csv")]
    pub meld_csv: PathBuf,
    /// Turns of the MELD conversation (it is cut to this length).
    #[arg(long, default_value_t = 20)]
    pub turns: usize,
    /// Timed repetitions; the first is reported separately as `first_seconds`.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

/// Entry point of `mmer bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let report = match args.workload {
        Workload::Text(a) => serde_json::to_string(&bench_text(a)?)?,
        Workload::TrainEpoch(a) => serde_json::to_string(&bench_train_epoch(a)?)?,
        Workload::Predict(a) => serde_json::to_string(&bench_predict(a)?)?,
        Workload::Extract(a) => serde_json::to_string(&bench_extract(a)?)?,
        Workload::EmodbLoso(a) => {
            serde_json::to_string(&mmer_run::emodb::run_loso(&a.into_config())?)?
        }
    };
    println!("{report}");
    Ok(())
}

/// Where and how a benchmark ran.
#[derive(Debug, Serialize)]
struct Environment {
    /// CPUs the process may use.
    available_parallelism: usize,
    /// `RAYON_NUM_THREADS`, if set.
    rayon_num_threads: Option<String>,
    /// Resident set right before the timed work (what loading left), MiB;
    /// Linux only.
    rss_before_work_mib: Option<f64>,
    /// Peak resident set of the whole process (`VmHWM`), MiB; Linux only.
    peak_rss_mib: Option<f64>,
    /// mmer version.
    mmer_version: &'static str,
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

/// Result of `mmer bench text`.
#[derive(Debug, Serialize)]
struct TextReport {
    workload: &'static str,
    encoder: EncoderKind,
    texts: usize,
    /// Tokens the model saw, special tokens included.
    tokens: usize,
    batch_size: usize,
    workers: usize,
    /// Wall-clock seconds of `SentenceEncoder::embed` on all texts.
    seconds: f64,
    texts_per_second: f64,
    tokens_per_second: f64,
    /// Sum of every embedding element: a cheap check that another
    /// implementation computed the same vectors.
    checksum: f64,
    environment: Environment,
}

fn bench_text(args: TextArgs) -> Result<TextReport> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    // The loader's errors name the file.
    let dialogues = mmer_data::meld::load_meld_split(&args.meld_csv, Split::Train)?;
    let texts: Vec<String> = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter_map(|u| u.text.clone())
        .take(args.n)
        .collect();
    if texts.is_empty() {
        bail!("{} has no utterance texts", args.meld_csv.display());
    }
    if let Some(path) = &args.texts_out {
        std::fs::write(path, serde_json::to_vec(&texts)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut encoder = load_encoder(args.encoder)?.with_batch_size(args.batch_size);
    if let Some(w) = args.workers {
        encoder = encoder.with_workers(w);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = encoder.count_tokens(&refs)?.iter().sum();
    if args.warmup > 0 {
        let warm = &refs[..args.warmup.min(refs.len())];
        encoder.embed(warm)?;
    }
    tracing::info!(encoder = %args.encoder, texts = refs.len(), "timing embed");
    let memory = MemoryProbe::start();
    let started = Instant::now();
    let vectors = encoder.embed(&refs)?;
    let seconds = started.elapsed().as_secs_f64();
    let environment = memory.finish();
    let checksum = vectors.iter().flatten().map(|&v| f64::from(v)).sum();
    Ok(TextReport {
        workload: "text",
        encoder: args.encoder,
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

/// Result of `mmer bench train-epoch`.
#[derive(Debug, Serialize)]
struct TrainEpochReport {
    workload: &'static str,
    corpus: String,
    encoder: Option<EncoderKind>,
    modalities: Vec<(Modality, usize)>,
    fusion: Fusion,
    /// Trainable parameters of the model.
    parameters: usize,
    d_input: usize,
    dialogues: usize,
    /// Labelled training utterances per epoch.
    utterances: usize,
    batch_size: usize,
    /// Shards per batch, one thread each.
    data_parallel: usize,
    batches_per_epoch: usize,
    epochs: usize,
    /// Wall-clock seconds of all timed epochs.
    seconds: f64,
    /// Seconds of each epoch.
    epoch_seconds: Vec<f64>,
    /// Mean training loss of each epoch.
    epoch_loss: Vec<f64>,
    utterances_per_second: f64,
    environment: Environment,
}

/// The data and training settings of `bench train-epoch`: a run config's,
/// or the MELD text context model's.
fn train_epoch_setup(args: &TrainEpochArgs) -> Result<(DataConfig, TrainConfig)> {
    let (data, train) = match &args.config {
        Some(path) => {
            let run = RunConfig::read(path)?;
            (run.data, run.train)
        }
        None => (
            DataConfig {
                text_encoder: Some(args.encoder),
                store: args.store.clone(),
                ..DataConfig::new(DatasetKind::Meld, Some(args.data.clone()))
            },
            TrainConfig::default(),
        ),
    };
    Ok((
        data,
        TrainConfig {
            batch_size: args.batch_size,
            seeds: vec![args.seed],
            data_parallel: args.data_parallel.unwrap_or(train.data_parallel),
            ..train
        },
    ))
}

fn bench_train_epoch(args: TrainEpochArgs) -> Result<TrainEpochReport> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let (data_config, config) = train_epoch_setup(&args)?;
    let corpus = data_config.load(&config.modalities)?;
    let data = PreparedData::new(&corpus, &config)?;
    if let Some(dir) = &args.export {
        export_training_data(dir, &data, &config)?;
    }
    let device = training_device();
    device.seed(args.seed);
    let (mut model, mut optim) = init_model(&data, &config, &device);
    let parameters = model.num_params();
    let class_weights = class_weight_tensor(&data, &config, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let utterances = data
        .train
        .iter()
        .flat_map(|d| d.labels.iter().flatten())
        .count();

    tracing::info!(
        dialogues = data.train.len(),
        utterances,
        epochs = args.epochs,
        "timing training epochs"
    );
    let (mut epoch_seconds, mut epoch_loss, mut epoch_orders) =
        (Vec::new(), Vec::new(), Vec::new());
    let memory = MemoryProbe::start();
    for _ in 0..args.epochs {
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
            &config,
            class_weights.as_ref(),
            &device,
        );
        epoch_seconds.push(started.elapsed().as_secs_f64());
        epoch_loss.push(loss);
        model = trained;
    }
    let environment = memory.finish();
    let seconds: f64 = epoch_seconds.iter().sum();
    if let Some(path) = &args.order_out {
        std::fs::write(path, serde_json::to_vec(&epoch_orders)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &args.save_checkpoint {
        Checkpoint::new(
            &corpus.name,
            data_config.text_source(),
            &config,
            args.seed,
            args.epochs,
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
        fusion: config.model.fusion,
        parameters,
        d_input: data.layout.d_input(),
        dialogues: data.train.len(),
        utterances,
        batch_size: config.batch_size,
        data_parallel: config.data_parallel,
        batches_per_epoch: data.train.len().div_ceil(config.batch_size),
        epochs: args.epochs,
        seconds,
        epoch_seconds,
        epoch_loss,
        utterances_per_second: (utterances * args.epochs) as f64 / seconds,
        environment,
    })
}

/// What `--export` writes beside the tensors: enough for another
/// implementation to build the same model and batches.
#[derive(Debug, Serialize)]
struct TrainingExport<'a> {
    classes: &'a [String],
    modalities: &'a [(Modality, usize)],
    sequences: bool,
    train: &'a TrainConfig,
    /// Training dialogues in the order of the tensors' utterances.
    dialogues: Vec<ExportedDialogue<'a>>,
}

#[derive(Debug, Serialize)]
struct ExportedDialogue<'a> {
    id: &'a str,
    speakers: &'a [usize],
    labels: &'a [Option<usize>],
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
    let views = buffers
        .iter()
        .map(|(name, bytes, shape, dtype)| {
            Ok((
                name.as_str(),
                TensorView::new(*dtype, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let tensors = dir.join("train.safetensors");
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
                labels: &d.labels,
            })
            .collect(),
    };
    let json = dir.join("train.json");
    std::fs::write(&json, serde_json::to_vec(&export)?)
        .with_context(|| format!("writing {}", json.display()))
}

/// Result of `mmer bench predict`.
#[derive(Debug, Serialize)]
struct PredictReport {
    workload: &'static str,
    /// Where the conversation came from.
    conversation: String,
    turns: usize,
    /// Seconds to load the checkpoint and the encoder (not part of the latency).
    load_seconds: f64,
    /// Latency of the first call: embed every turn + `Checkpoint::predict`.
    first_seconds: f64,
    /// Median latency over all repetitions.
    median_seconds: f64,
    /// Median of the text-embedding part.
    median_embed_seconds: f64,
    /// Median of the model part (`Checkpoint::predict`: batching, forward, softmax).
    median_model_seconds: f64,
    /// Every repetition, in order.
    repeat_seconds: Vec<f64>,
    environment: Environment,
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

fn bench_predict(args: PredictArgs) -> Result<PredictReport> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let loading = Instant::now();
    let (checkpoint, model) = Checkpoint::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let synthetic = args.input.is_none() && checkpoint.corpus == "synthetic";
    let (dialogues, conversation) = match &args.input {
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
                .find(|d| d.utterances.len() >= args.turns)
                .cloned()
                .with_context(|| format!("no synthetic test dialogue has {} turns", args.turns))?;
            dialogue.utterances.truncate(args.turns);
            let name = format!("synthetic {}", dialogue.id);
            (vec![dialogue], name)
        }
        None => {
            let dialogue = meld_conversation(&args.meld_csv, args.turns)?;
            let name = format!("{} {}", args.meld_csv.display(), dialogue.id);
            (vec![dialogue], name)
        }
    };
    // Synthetic dialogues carry their features; anything else is embedded.
    let encoder = if synthetic {
        None
    } else {
        checkpoint_encoder(&checkpoint, &args.model)?
    };
    let load_seconds = loading.elapsed().as_secs_f64();
    let turns = dialogues.iter().map(|d| d.utterances.len()).sum();

    let (mut repeat_seconds, mut embed_seconds) = (
        Vec::with_capacity(args.repeats),
        Vec::with_capacity(args.repeats),
    );
    let memory = MemoryProbe::start();
    for _ in 0..args.repeats {
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

/// Median of a non-empty sample (the upper one for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `mmer bench extract`: see [`mmer_media::bench`].
fn bench_extract(args: ExtractBenchArgs) -> Result<mmer_media::bench::BenchReport> {
    let ffmpeg = mmer_media::Ffmpeg::from_env();
    let mut speech: Vec<PathBuf> = std::fs::read_dir(&args.speech)
        .with_context(|| format!("reading speech folder {}", args.speech.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    speech.sort();
    // EmoDB clips are 2 s: enough of them to cover the clip without looping.
    speech.truncate((args.seconds / 2.0).ceil().max(1.0) as usize);
    if speech.is_empty() {
        bail!("no .wav file in {}", args.speech.display());
    }
    let spec = mmer_media::bench::ClipSpec {
        seconds: args.seconds,
        width: args.width,
        height: args.height,
        fps: args.fps,
        keyframes: args.keyframes,
        picture: args.picture.clone(),
    };
    let visual = if args.no_visual {
        None
    } else {
        Some(crate::cmd::extract::visual_streams(
            mmer_media::KeyframeOptions {
                count: args.keyframes,
                ..mmer_media::KeyframeOptions::default()
            },
        )?)
    };
    let work = std::env::temp_dir().join(format!("mmer-bench-extract-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let clip = work.join("clip.mp4");
    let result = mmer_media::bench::make_clip(&ffmpeg, &spec, &speech, &clip)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            tracing::info!(clip = %clip.display(), "timing extraction");
            Ok(mmer_media::bench::run(
                &ffmpeg,
                &spec,
                &clip,
                &work,
                args.repeats,
                visual
                    .as_ref()
                    .map(|v| v as &dyn mmer_media::extract::StreamExtractor),
            )?)
        });
    let _ = std::fs::remove_dir_all(&work);
    result
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
}
