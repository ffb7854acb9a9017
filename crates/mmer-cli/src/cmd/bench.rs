//! `mmer bench`: speed of the three things users wait for — embedding
//! transcripts, one training epoch of the context model, and predicting a
//! conversation once the model is loaded — plus extraction's real-time
//! factor, the EmoDB speaker-independent experiment and speech recognition's
//! word error rate.
//!
//! The workloads live in [`mmer_run::bench`] (and [`mmer_run::emodb`]); this
//! file turns the flags into their configs and prints the report as one
//! JSON object on stdout; progress and logs go to stderr.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use mmer_run::bench::{
    AsrBenchConfig, ExtractBenchConfig, FineTuneStepBenchConfig, PredictBenchConfig,
    SpeakersBenchConfig, TextBenchConfig, TrainEpochBenchConfig,
};
use mmer_text::EncoderKind;

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
    /// Speech recognition: word error rate and real-time factor (decode +
    /// recognition) of each Whisper model on recordings whose words are
    /// known, and agreement with a reference implementation's transcripts.
    Asr(AsrBenchArgs),
    /// Speaker clustering with faces: two-person conversations from real
    /// clips (one CREMA-D actor on camera, each EmoDB speaker off camera),
    /// accuracy with the voice alone, with the on-camera face, and with that
    /// face seen in every turn (a listener on camera). Prints the JSON
    /// report, and a table on stderr.
    Speakers(SpeakersBenchArgs),
    /// Fine-tuning steps of a text encoder (MPNet by default; every layer,
    /// or the top `--layers` from cached states) on batches of MELD
    /// training utterances: forward, mean pooling, a linear head,
    /// cross-entropy, backward, AdamW. `--inputs-out` writes the batches for
    /// the PyTorch side (bench/pytorch_finetune_step.py).
    FinetuneStep(FineTuneStepArgs),
}

/// Arguments of `mmer bench finetune-step`.
#[derive(Debug, Args)]
pub struct FineTuneStepArgs {
    /// Encoder to fine-tune.
    #[arg(long, value_enum, default_value_t = FineTuneStepBenchConfig::default().encoder)]
    pub encoder: EncoderKind,
    /// MELD CSV whose training utterances fill the batches, in file order.
    #[arg(long, default_value_os_t = FineTuneStepBenchConfig::default().meld_csv)]
    pub meld_csv: PathBuf,
    /// Utterances per step.
    #[arg(long, default_value_t = FineTuneStepBenchConfig::default().batch)]
    pub batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = FineTuneStepBenchConfig::default().steps)]
    pub steps: usize,
    /// Untimed steps first, on their own batches.
    #[arg(long, default_value_t = FineTuneStepBenchConfig::default().warmup_steps)]
    pub warmup_steps: usize,
    /// Top layers trained [default: all, with the embeddings].
    #[arg(long)]
    pub layers: Option<usize>,
    /// Write the batches (token ids, labels) and settings here as JSON.
    #[arg(long)]
    pub inputs_out: Option<PathBuf>,
    /// Shards per batch, each forward and backward pass on its own thread
    /// (as `[train] data_parallel`); 2 uses both cores of a 2-core machine.
    #[arg(long, default_value_t = FineTuneStepBenchConfig::default().data_parallel)]
    pub data_parallel: usize,
}

impl FineTuneStepArgs {
    fn into_config(self) -> FineTuneStepBenchConfig {
        FineTuneStepBenchConfig {
            encoder: self.encoder,
            meld_csv: self.meld_csv,
            batch: self.batch,
            steps: self.steps,
            warmup_steps: self.warmup_steps,
            layers: self.layers,
            inputs_out: self.inputs_out,
            data_parallel: self.data_parallel,
        }
    }
}

/// Arguments of `mmer bench speakers`.
#[derive(Debug, Args)]
pub struct SpeakersBenchArgs {
    /// Folder of video clips of the on-camera person.
    #[arg(long, default_value_os_t = SpeakersBenchConfig::default().on_camera)]
    pub on_camera: PathBuf,
    /// EmoDB WAV folder (file names like `03a01Wa.wav`): each speaker is the
    /// off-camera partner of one conversation.
    #[arg(long, default_value_os_t = SpeakersBenchConfig::default().off_camera)]
    pub off_camera: PathBuf,
    /// Clips per person and conversation.
    #[arg(long, default_value_t = SpeakersBenchConfig::default().clips)]
    pub clips: usize,
    /// Seed of the clip draws and turn orders.
    #[arg(long, default_value_t = SpeakersBenchConfig::default().seed)]
    pub seed: u64,
    /// Weight of the face cue against the voice.
    #[arg(long, default_value_t = SpeakersBenchConfig::default().face_weight)]
    pub face_weight: f64,
    /// Keyframes decoded per video clip.
    #[arg(long, default_value_t = SpeakersBenchConfig::default().keyframes)]
    pub keyframes: usize,
    /// Models directory.
    #[arg(long, env = "MMER_MODELS_DIR", default_value_os_t = SpeakersBenchConfig::default().models_dir)]
    pub models_dir: PathBuf,
}

impl SpeakersBenchArgs {
    fn into_config(self) -> SpeakersBenchConfig {
        SpeakersBenchConfig {
            on_camera: self.on_camera,
            off_camera: self.off_camera,
            clips: self.clips,
            seed: self.seed,
            face_weight: self.face_weight,
            keyframes: self.keyframes,
            models_dir: self.models_dir,
        }
    }
}

/// Arguments of `mmer bench asr`.
#[derive(Debug, Args)]
pub struct AsrBenchArgs {
    /// `file,text,source` CSV (scripts/asr_corpus.py writes one).
    #[arg(long, default_value_os_t = AsrBenchConfig::default().manifest)]
    pub manifest: PathBuf,
    /// Whisper models, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tiny.en,base"
    )]
    pub models: Vec<mmer_asr::AsrModel>,
    /// Reference transcripts to compare with (scripts/whisper_reference.py
    /// --segments-only), one file per model; repeatable.
    #[arg(long)]
    pub reference: Vec<PathBuf>,
    /// Models directory.
    #[arg(long, env = "MMER_MODELS_DIR", default_value_os_t = AsrBenchConfig::default().models_dir)]
    pub models_dir: PathBuf,
}

impl AsrBenchArgs {
    fn into_config(self) -> AsrBenchConfig {
        AsrBenchConfig {
            manifest: self.manifest,
            models: self.models,
            references: self.reference,
            models_dir: self.models_dir,
        }
    }
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
    /// Instead of the experiment, train the audio model mmer ships and
    /// write it to this directory (replaced whole; a README.md there is
    /// kept): all speakers, two of them (drawn by the seed) held out to
    /// choose the epoch. Takes one seed (`--seeds 0`); see
    /// scripts/train_shipped_audio.sh.
    #[arg(long)]
    pub save_model: Option<PathBuf>,
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
    #[arg(long, default_value_os_t = ExtractBenchConfig::default().speech)]
    pub speech: PathBuf,
    /// Clip duration, seconds.
    #[arg(long, default_value_t = ExtractBenchConfig::default().seconds)]
    pub seconds: f64,
    /// Clip width, pixels.
    #[arg(long, default_value_t = ExtractBenchConfig::default().width)]
    pub width: u32,
    /// Clip height, pixels.
    #[arg(long, default_value_t = ExtractBenchConfig::default().height)]
    pub height: u32,
    /// Clip frame rate.
    #[arg(long, default_value_t = ExtractBenchConfig::default().fps)]
    pub fps: u32,
    /// Keyframes decoded per clip.
    #[arg(long, default_value_t = ExtractBenchConfig::default().keyframes)]
    pub keyframes: usize,
    /// Timed repetitions after one warm-up (the median is reported).
    #[arg(long, default_value_t = ExtractBenchConfig::default().repeats)]
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

impl ExtractBenchArgs {
    fn into_config(self) -> ExtractBenchConfig {
        ExtractBenchConfig {
            speech: self.speech,
            seconds: self.seconds,
            width: self.width,
            height: self.height,
            fps: self.fps,
            keyframes: self.keyframes,
            repeats: self.repeats,
            picture: self.picture,
        }
    }
}

/// Arguments of `mmer bench text`.
#[derive(Debug, Args)]
pub struct TextArgs {
    /// Sentence encoder to time.
    #[arg(long, value_enum, default_value_t = TextBenchConfig::default().encoder)]
    pub encoder: EncoderKind,
    /// MELD CSV whose utterances are embedded, in file order.
    #[arg(long, default_value_os_t = TextBenchConfig::default().meld_csv)]
    pub meld_csv: PathBuf,
    /// Number of utterances to embed (fewer if the file has fewer).
    #[arg(long, default_value_t = TextBenchConfig::default().n)]
    pub n: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = TextBenchConfig::default().batch_size)]
    pub batch_size: usize,
    /// Batches in flight, one thread each (default: min(2, CPUs)).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Texts embedded once before timing (not counted), to warm caches.
    #[arg(long, default_value_t = TextBenchConfig::default().warmup)]
    pub warmup: usize,
    /// Also write the embedded texts as a JSON array here, so another
    /// implementation can embed exactly the same strings.
    #[arg(long)]
    pub texts_out: Option<PathBuf>,
}

impl TextArgs {
    fn into_config(self) -> TextBenchConfig {
        TextBenchConfig {
            encoder: self.encoder,
            meld_csv: self.meld_csv,
            n: self.n,
            batch_size: self.batch_size,
            workers: self.workers,
            warmup: self.warmup,
            texts_out: self.texts_out,
        }
    }
}

/// Arguments of `mmer bench train-epoch`.
#[derive(Debug, Args)]
pub struct TrainEpochArgs {
    /// Sentence encoder whose cached MELD embeddings are the input (embedded
    /// and cached first if the store lacks them; that is not timed).
    #[arg(long, value_enum, default_value_t = TrainEpochBenchConfig::default().encoder)]
    pub encoder: EncoderKind,
    /// MELD directory (train/dev/test_sent_emo.csv).
    #[arg(long, default_value_os_t = TrainEpochBenchConfig::default().data)]
    pub data: PathBuf,
    /// Feature-store directory.
    #[arg(long, default_value_os_t = TrainEpochBenchConfig::default().store)]
    pub store: PathBuf,
    /// Epochs to time.
    #[arg(long, default_value_t = TrainEpochBenchConfig::default().epochs)]
    pub epochs: usize,
    /// Seed of the initialisation, dropout and the shuffle.
    #[arg(long, default_value_t = TrainEpochBenchConfig::default().seed)]
    pub seed: u64,
    /// Dialogues per batch.
    #[arg(long, default_value_t = TrainEpochBenchConfig::default().batch_size)]
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

impl TrainEpochArgs {
    fn into_config(self) -> TrainEpochBenchConfig {
        TrainEpochBenchConfig {
            encoder: self.encoder,
            data: self.data,
            store: self.store,
            epochs: self.epochs,
            seed: self.seed,
            batch_size: self.batch_size,
            data_parallel: self.data_parallel,
            save_checkpoint: self.save_checkpoint,
            order_out: self.order_out,
            run_config: self.config,
            export: self.export,
        }
    }
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
    #[arg(long, default_value_os_t = PredictBenchConfig::new("").meld_csv)]
    pub meld_csv: PathBuf,
    /// Turns of the MELD conversation (it is cut to this length).
    #[arg(long, default_value_t = PredictBenchConfig::new("").turns)]
    pub turns: usize,
    /// Timed repetitions; the first is reported separately as `first_seconds`.
    #[arg(long, default_value_t = PredictBenchConfig::new("").repeats)]
    pub repeats: usize,
}

impl PredictArgs {
    fn into_config(self) -> PredictBenchConfig {
        PredictBenchConfig {
            model: self.model,
            input: self.input,
            meld_csv: self.meld_csv,
            turns: self.turns,
            repeats: self.repeats,
        }
    }
}

/// Entry point of `mmer bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let report = match args.workload {
        Workload::Text(a) => serde_json::to_string(&mmer_run::bench::run_text(&a.into_config())?)?,
        Workload::TrainEpoch(a) => {
            serde_json::to_string(&mmer_run::bench::run_train_epoch(&a.into_config())?)?
        }
        Workload::FinetuneStep(a) => {
            serde_json::to_string(&mmer_run::bench::run_finetune_step(&a.into_config())?)?
        }
        Workload::Predict(a) => {
            serde_json::to_string(&mmer_run::bench::run_predict(&a.into_config())?)?
        }
        Workload::Extract(a) => serde_json::to_string(&bench_extract(a)?)?,
        Workload::EmodbLoso(mut a) => match a.save_model.take() {
            Some(dir) => {
                serde_json::to_string(&mmer_run::emodb::train_shipped(&a.into_config(), &dir)?)?
            }
            None => serde_json::to_string(&mmer_run::emodb::run_loso(&a.into_config())?)?,
        },
        Workload::Asr(a) => serde_json::to_string(&mmer_run::bench::run_asr(&a.into_config())?)?,
        Workload::Speakers(a) => {
            let report = mmer_run::bench::run_speakers(&a.into_config())?;
            eprintln!(
                "| condition | speakers | n | accuracy | conversations with 1 / 2 / 3 / 4 speakers found |\n|---|---|---|---|---|"
            );
            for r in &report.rows {
                eprintln!(
                    "| {} | {} | {} | {:.3} ± {:.3} | {} |",
                    r.condition,
                    r.count,
                    r.n,
                    r.accuracy_mean,
                    r.accuracy_std,
                    r.speakers_found[1..]
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(" / ")
                );
            }
            serde_json::to_string(&report)?
        }
    };
    println!("{report}");
    Ok(())
}

/// `mmer bench extract`. The Face/Body models are loaded here, as `mmer
/// extract` loads them ([`crate::cmd::extract::visual_streams`]), and
/// passed in.
fn bench_extract(args: ExtractBenchArgs) -> Result<mmer_media::bench::BenchReport> {
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
    let config = args.into_config();
    Ok(mmer_run::bench::run_extract(
        &config,
        visual
            .as_ref()
            .map(|v| v as &dyn mmer_media::extract::StreamExtractor),
    )?)
}
