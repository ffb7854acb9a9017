//! `mmer analyze`: the emotion of every turn of a recording, with evidence,
//! from the models that ship with mmer.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_asr::{AsrModel, DecodeOptions, TurnOptions};
use mmer_run::analysis_output::{AnalysisFormat, write_analysis, write_header};
use mmer_run::analyze::{AnalyzeConfig, Analyzer, FusionWeights};
use mmer_run::explain::ExplainConfig;
use mmer_run::transcribe::TranscribeConfig;

/// Arguments of `mmer analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Recordings (video or audio, any format ffmpeg reads) or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Use this transcript instead of speech recognition and speaker
    /// clustering: a .jsonl or .csv conversation file (dialogue, turn,
    /// speaker, text, video or audio = the recording, start, end;
    /// docs/examples/) with one dialogue, times in seconds into the
    /// recording. Needs exactly one input recording.
    #[arg(long)]
    pub transcript: Option<PathBuf>,
    /// Number of speakers (default: estimated, up to --max-speakers).
    #[arg(long)]
    pub speakers: Option<usize>,
    /// Most speakers the estimate considers.
    #[arg(long, default_value_t = AnalyzeConfig::default().max_speakers)]
    pub max_speakers: usize,
    /// Weight of the faces seen during a turn against its voice when
    /// telling speakers apart (0: voice only). A face binds the turns it is
    /// seen in; one face seen throughout hardly changes the voice's split.
    #[arg(long, default_value_t = AnalyzeConfig::default().face_speaker_weight)]
    pub face_speaker_weight: f64,
    /// Whisper model for the transcript.
    #[arg(long, value_enum, default_value_t = AsrModel::TinyEn)]
    pub asr_model: AsrModel,
    /// Re-decode a window that looks like a repetition loop or is unlikely
    /// at higher temperatures, sampled (faster-whisper's default; seeded,
    /// off by default: see docs/RESULTS.md for what it does and costs).
    #[arg(long)]
    pub temperature_fallback: bool,
    /// A pause at least this long (seconds) ends a turn.
    #[arg(long, default_value_t = TurnOptions::default().max_pause_s)]
    pub max_pause: f64,
    /// Text model: a `seed-<k>` directory of a run.
    #[arg(long, default_value_os_t = AnalyzeConfig::default().text_model)]
    pub text_model: PathBuf,
    /// Speech model directory.
    #[arg(long, default_value_os_t = AnalyzeConfig::default().audio_model)]
    pub audio_model: PathBuf,
    /// Do not read faces.
    #[arg(long)]
    pub no_face: bool,
    /// Keyframes decoded per second of a turn for the face reading (2 to 16
    /// per turn).
    #[arg(long, default_value_t = AnalyzeConfig::default().keyframes_per_second)]
    pub keyframes_per_second: f64,
    /// Late-fusion weights text,audio,face (renormalised over the readings a
    /// turn has).
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [
        FusionWeights::default().text, FusionWeights::default().audio, FusionWeights::default().face,
    ])]
    pub weights: Vec<f32>,
    /// Explain every turn: LIME over its words (which words pushed the
    /// predicted class), each modality's drop-one contribution, and the face
    /// keyframes and audio stretches that carried the class.
    #[arg(long)]
    pub explain: bool,
    /// Perturbed transcripts LIME scores per turn (with --explain).
    #[arg(long, default_value_t = ExplainConfig::default().samples)]
    pub explain_samples: usize,
    /// Seed of LIME's perturbations (with --explain).
    #[arg(long, default_value_t = ExplainConfig::default().seed)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: AnalysisFormat,
    /// Write the output here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write a self-contained HTML report here: a timeline coloured by
    /// emotion, per-turn cards (transcript, face, what each modality said;
    /// word weights with --explain) and the emotion mix per speaker.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Models directory (Whisper, text encoder, face models).
    #[arg(long, env = "MMER_MODELS_DIR", default_value_os_t = AnalyzeConfig::default().models_dir)]
    pub models_dir: PathBuf,
}

impl AnalyzeArgs {
    fn config(&self) -> AnalyzeConfig {
        AnalyzeConfig {
            transcribe: TranscribeConfig {
                model: self.asr_model,
                decode: if self.temperature_fallback {
                    DecodeOptions::default().with_fallback()
                } else {
                    DecodeOptions::default()
                },
                turns: TurnOptions {
                    max_pause_s: self.max_pause,
                    ..TurnOptions::default()
                },
            },
            speakers: self.speakers,
            max_speakers: self.max_speakers,
            face_speaker_weight: self.face_speaker_weight,
            text_model: self.text_model.clone(),
            audio_model: self.audio_model.clone(),
            face: !self.no_face,
            keyframes_per_second: self.keyframes_per_second,
            weights: FusionWeights {
                text: self.weights[0],
                audio: self.weights[1],
                face: self.weights[2],
            },
            explain: self.explain.then(|| ExplainConfig {
                samples: self.explain_samples,
                seed: self.seed,
                ..ExplainConfig::default()
            }),
            models_dir: self.models_dir.clone(),
        }
    }
}

/// Runs `mmer analyze`: every file is tried; failures are named at the end
/// and make the exit status non-zero.
pub fn run(args: AnalyzeArgs) -> Result<()> {
    let analyzer = Analyzer::new(args.config(), mmer_media::Ffmpeg::from_env())?;
    let files = mmer_media::inputs::media_files(&args.inputs)?;
    let mut out = super::open_output(args.out.as_deref())?;
    let classes = analyzer.classes().to_vec();
    write_header(&mut out, args.format, &classes)?;
    let given = match &args.transcript {
        Some(path) => {
            anyhow::ensure!(
                files.len() == 1,
                "--transcript describes one recording; {} inputs were given",
                files.len()
            );
            Some(analyzer.read_transcript(path, &files[0])?)
        }
        None => None,
    };
    let mut analyses = Vec::new();
    let result = super::each_file(
        &files,
        |file| Ok(analyzer.analyze_with(file, given.as_deref(), true)?),
        |analysis| {
            let t = analysis.seconds;
            let total = t.decode_s + t.asr_s + t.speakers_s + t.text_s + t.audio_s + t.face_s;
            tracing::info!(
                "analysed {}: {:.1} s in {total:.2} s (real-time factor {:.3}); seconds per stage: \
             decode {:.2}, speech recognition {:.2}, speakers {:.2}, text {:.2}, voice {:.2}, face {:.2}, \
             explanations {:.2}",
                analysis.file.display(),
                analysis.duration_s,
                total / analysis.duration_s.max(1e-9),
                t.decode_s,
                t.asr_s,
                t.speakers_s,
                t.text_s,
                t.audio_s,
                t.face_s,
                t.explain_s
            );
            write_analysis(&mut out, &analysis, args.format)?;
            out.flush()?;
            if args.report.is_some() {
                analyses.push(analysis);
            }
            Ok(())
        },
    );
    out.flush()?;
    if let Some(path) = &args.report {
        let html = mmer_run::report_html::analysis_report(&analyses, analyzer.classes());
        mmer_core::atomic::write_file(path, html.as_bytes())
            .with_context(|| format!("writing the report {}", path.display()))?;
        tracing::info!("report: {}", path.display());
    }
    result
}
