//! `mmer extract`: media files → per-utterance feature sequences in the
//! media store. Thin: resolves the inputs, builds the extractors and a
//! progress bar, and hands over to `mmer_media::extract::run`. The Face
//! and Body streams come from `mmer_vision::VisualStreams` unless
//! `--no-visual`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use mmer_core::sharding::Shard;
use mmer_media::audio_features::{AudioFeatures, AudioFeaturesConfig};
use mmer_media::extract::{self, ExtractOptions, Outcome, StreamExtractor};
use mmer_media::{DEFAULT_SCENE_THRESHOLD, Ffmpeg, KeyframeMode, KeyframeOptions};
use mmer_vision::{VisualExtractorConfig, VisualStreams};

use mmer_run::Labels;

/// Arguments of `mmer extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Media files, folders of media (searched recursively), or conversation
    /// files (.jsonl/.csv) whose `video`/`audio` columns name each turn's clip.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Store directory (created; a re-run resumes it).
    #[arg(long)]
    pub out: PathBuf,
    /// Files processed in parallel (default: number of CPUs).
    #[arg(long, env = "MMER_JOBS")]
    pub jobs: Option<usize>,
    /// Audio frame sequence resolution: 10 ms LLDs averaged over windows of
    /// this length (a multiple of 10; 10 keeps the raw frames).
    #[arg(long, default_value_t = 100)]
    pub audio_window_ms: usize,
    /// Trim leading and trailing silence before audio analysis.
    #[arg(long)]
    pub trim_silence: bool,
    /// Keyframes per video for the Face and Body streams.
    #[arg(long, default_value_t = KeyframeOptions::default().count)]
    pub keyframes: usize,
    /// Where the keyframes are taken: `uniform` (centres of K equal slices
    /// of the clip) or `scene` (the K strongest shot changes, topped up with
    /// uniform ones when there are fewer; one more decoding pass).
    #[arg(long, value_enum, default_value_t = KeyframeModeArg::Uniform)]
    pub keyframe_mode: KeyframeModeArg,
    /// ffmpeg scene score (0–1) above which a frame counts as a shot change,
    /// for `--keyframe-mode scene`.
    #[arg(long, default_value_t = DEFAULT_SCENE_THRESHOLD)]
    pub scene_threshold: f64,
    /// Skip the Face and Body streams (no keyframe decoding, no models
    /// needed); they are recorded as not extracted.
    #[arg(long)]
    pub no_visual: bool,
    /// Re-extract files whose record is already current.
    #[arg(long)]
    pub force: bool,
    /// Extract only shard INDEX of COUNT (0-based, e.g. `--shard
    /// $SLURM_ARRAY_TASK_ID/8`) into its own --out: an utterance's shard is a
    /// hash of its id, so every shard must be given the same inputs. Then
    /// `mmer store merge` joins the shard stores into the store one process
    /// would have written. Re-running a shard resumes it.
    #[arg(long, value_name = "INDEX/COUNT", env = "MMER_SHARD")]
    pub shard: Option<Shard>,
    /// Label set that conversation files' labels are checked against: a
    /// preset (meld, iemocap, synthetic) or your own classes,
    /// comma-separated (`--labels calm,tense,happy`).
    #[arg(long, default_value = "meld", value_name = "PRESET|CLASSES")]
    pub labels: String,
    /// The classes of --labels are multi-label (several per turn).
    #[arg(long)]
    pub multi_label: bool,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `--keyframe-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyframeModeArg {
    /// Centres of K equal slices.
    Uniform,
    /// Strongest shot changes, topped up uniformly.
    Scene,
}

impl ExtractArgs {
    /// The keyframe options the flags ask for.
    fn keyframe_options(&self) -> KeyframeOptions {
        KeyframeOptions {
            count: self.keyframes,
            mode: match self.keyframe_mode {
                KeyframeModeArg::Uniform => KeyframeMode::Uniform,
                KeyframeModeArg::Scene => KeyframeMode::Scene {
                    threshold: self.scene_threshold,
                },
            },
            ..KeyframeOptions::default()
        }
    }
}

/// Entry point of `mmer extract`.
pub fn run(args: ExtractArgs) -> Result<()> {
    if args.audio_window_ms == 0 || !args.audio_window_ms.is_multiple_of(10) {
        bail!(
            "--audio-window-ms must be a positive multiple of 10 (got {})",
            args.audio_window_ms
        );
    }
    let labels = Labels::from_arg(&args.labels, args.multi_label)?.space()?;
    // Models first: a missing one is a setup problem, reported before any
    // file is touched.
    let visual = if args.no_visual {
        None
    } else {
        Some(visual_streams(args.keyframe_options())?)
    };
    let ffmpeg = Ffmpeg::from_env();
    let version = ffmpeg.version()?;
    tracing::debug!(%version, "decoding with ffmpeg");
    let inputs = mmer_media::inputs::collect(&args.inputs, &labels)?;
    if !inputs.without_media.is_empty() {
        tracing::warn!(
            count = inputs.without_media.len(),
            first = %inputs.without_media[0],
            "conversation turns without a media path are not extracted"
        );
    }
    let audio = AudioFeatures::new(AudioFeaturesConfig {
        window_frames: args.audio_window_ms / 10,
        trim_silence: args.trim_silence,
    })?;
    let mut extractors: Vec<&dyn StreamExtractor> = vec![&audio];
    if let Some(visual) = &visual {
        extractors.push(visual);
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let opts = ExtractOptions {
        out: args.out.clone(),
        jobs,
        force: args.force,
        shard: args.shard,
    };
    let owned = match args.shard {
        Some(shard) => inputs.jobs.iter().filter(|j| shard.owns(&j.id)).count(),
        None => inputs.jobs.len(),
    };
    let bar = mmer_core::progress::Progress::new("extracting", "files", owned as u64, true);
    let report = extract::run(&ffmpeg, &extractors, &inputs.jobs, &opts, &|file| {
        if file.outcome == Outcome::Failed {
            let reason = file.reason.as_deref().unwrap_or(&file.path);
            bar.bar().suspend(|| tracing::warn!("failed: {reason}"));
        }
        bar.set_message(file.id.clone());
        bar.inc(1);
    })?;
    bar.finish();
    report
        .write(&args.out)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
        println!(
            "store: {} (report.json, report.txt, index.json)",
            args.out.display()
        );
    }
    if let Some(reason) = &report.index_error {
        bail!(
            "the store's index could not be rebuilt: {reason} (the per-file report is in {})",
            args.out.join("report.txt").display()
        );
    }
    if report.failed > 0 {
        bail!(
            "{} of {} files failed (see {})",
            report.failed,
            report.files.len(),
            args.out.join("report.txt").display()
        );
    }
    Ok(())
}

/// Loads the Face/Body models from `$MMER_MODELS_DIR` (else `./models`).
///
/// # Errors
/// A missing model names `scripts/setup.sh` (from mmer-vision) and this
/// adds how to do without: `--no-visual`.
pub fn visual_streams(keyframes: KeyframeOptions) -> Result<VisualStreams> {
    if keyframes.count == 0 {
        bail!("--keyframes must be ≥ 1");
    }
    if let KeyframeMode::Scene { threshold } = keyframes.mode
        && !(threshold > 0.0 && threshold < 1.0)
    {
        bail!("--scene-threshold must be in (0, 1), got {threshold}");
    }
    let models = mmer_vision::default_models_dir();
    VisualStreams::from_models_dir(
        &models,
        VisualExtractorConfig::default(),
        keyframes,
        &burn::tensor::Device::default(),
    )
    .with_context(|| {
        format!(
            "loading the face models from {} for the Face and Body streams \
             (--no-visual extracts audio only)",
            models.display()
        )
    })
}
