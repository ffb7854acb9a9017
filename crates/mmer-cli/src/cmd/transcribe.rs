//! `mmer transcribe`: what is said in a recording, and when, as turns.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use mmer_asr::{AsrModel, DecodeOptions, TurnOptions};
use mmer_run::transcribe::{FileTranscript, TranscribeConfig, Transcriber};

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TranscriptFormat {
    /// One row per turn: file, start, end, text.
    Table,
    /// One JSON object per file (JSON Lines): audio state, segments with
    /// confidence, turns, seconds per stage.
    Jsonl,
    /// CSV, one row per turn: file,turn,start_s,end_s,text.
    Csv,
}

/// Arguments of `mmer transcribe`.
#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Recordings (any format ffmpeg reads) or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Whisper model (installed by scripts/setup.sh).
    #[arg(long, value_enum, default_value_t = AsrModel::TinyEn)]
    pub model: AsrModel,
    /// Language code for multilingual models (base); tiny.en is English only.
    #[arg(long, default_value_t = DecodeOptions::default().language)]
    pub language: String,
    /// A pause at least this long (seconds) ends a turn.
    #[arg(long, default_value_t = TurnOptions::default().max_pause_s)]
    pub max_pause: f64,
    /// Turns are not extended past this length (seconds).
    #[arg(long, default_value_t = TurnOptions::default().max_turn_s)]
    pub max_turn: f64,
    /// Re-decode a window that looks like a repetition loop or is unlikely
    /// at higher temperatures, sampled (faster-whisper's default; seeded,
    /// off by default: see docs/RESULTS.md for what it does and costs).
    #[arg(long)]
    pub temperature_fallback: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TranscriptFormat,
    /// Write the output here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Models directory.
    #[arg(long, env = "MMER_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

/// Runs `mmer transcribe`: every file is tried; failures are reported by
/// name at the end and make the exit status non-zero.
pub fn run(args: TranscribeArgs) -> Result<()> {
    let config = TranscribeConfig {
        model: args.model,
        decode: {
            let decode = DecodeOptions {
                language: args.language.clone(),
                ..DecodeOptions::default()
            };
            if args.temperature_fallback {
                decode.with_fallback()
            } else {
                decode
            }
        },
        turns: TurnOptions {
            max_pause_s: args.max_pause,
            max_turn_s: args.max_turn,
        },
    };
    let transcriber = Transcriber::new(config, &args.models_dir, mmer_media::Ffmpeg::from_env())?;
    let files = mmer_media::inputs::media_files(&args.inputs)?;
    let mut out = super::open_output(args.out.as_deref())?;
    match args.format {
        TranscriptFormat::Csv => writeln!(out, "file,turn,start_s,end_s,text")?,
        TranscriptFormat::Table => {
            writeln!(out, "{:<28} {:>7} {:>7}  text", "file", "start", "end")?
        }
        TranscriptFormat::Jsonl => {}
    }
    let result = super::each_file(
        &files,
        |file| Ok(transcriber.transcribe_file(file, true)?),
        |transcript| {
            write_transcript(&mut out, &transcript, args.format)?;
            Ok(out.flush()?)
        },
    );
    out.flush()?;
    result
}

fn write_transcript(
    out: &mut dyn Write,
    t: &FileTranscript,
    format: TranscriptFormat,
) -> Result<()> {
    let name = t
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| t.file.display().to_string());
    match format {
        TranscriptFormat::Jsonl => writeln!(out, "{}", serde_json::to_string(t)?)?,
        TranscriptFormat::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            for (i, turn) in t.speech.turns.iter().enumerate() {
                w.serialize((
                    t.file.display().to_string(),
                    i,
                    format!("{:.2}", turn.start_s),
                    format!("{:.2}", turn.end_s),
                    &turn.text,
                ))?;
            }
            w.flush()?;
        }
        TranscriptFormat::Table => {
            if t.speech.turns.is_empty() {
                writeln!(
                    out,
                    "{name:<28} {:>7} {:>7}  ({:?} audio: no speech)",
                    "-", "-", t.audio
                )?;
            }
            for turn in &t.speech.turns {
                writeln!(
                    out,
                    "{name:<28} {:>7.2} {:>7.2}  {}",
                    turn.start_s, turn.end_s, turn.text
                )?;
            }
        }
    }
    Ok(())
}
