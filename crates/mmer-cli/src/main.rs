//! `mmer`: multimodal emotion recognition in conversation.
//!
//! Thin: parses arguments, sets up logging, and hands each verb to its
//! module under `cmd/`. The work happens in the library crates.

mod cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Emotion recognition in conversation: train, evaluate and predict the
/// emotion of every utterance from transcripts or precomputed features.
///
/// Start with `mmer demo` (no data needed). Real runs: `mmer train --dataset
/// meld --data ../shared/data/meld`, then `mmer eval` / `mmer predict` on the
/// run directory it prints.
#[derive(Debug, Parser)]
#[command(name = "mmer", version, about, long_about)]
struct Cli {
    /// Log verbosity (error, warn, info, debug, trace); also via RUST_LOG.
    #[arg(long, global = true, default_value = "info", env = "MMER_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train one model per seed, select on validation, report test mean ± std.
    Train(cmd::train::TrainArgs),
    /// Self-supervised pre-training of the modality encoders and MAN with
    /// the cross-modal NCE (no labels); `train --init-from` starts from it.
    Pretrain(cmd::pretrain::PretrainArgs),
    /// Re-evaluate a trained run on a split.
    Eval(cmd::eval::EvalArgs),
    /// Score trained runs with modalities missing at test time: each
    /// modality and pair removed, and a seeded missing-rate sweep (table,
    /// JSON, SVG chart). Single-label runs by weighted F1, multi-label runs
    /// by macro F1 at 0.5.
    Robustness(cmd::robustness::RobustnessArgs),
    /// Predict the emotion of every turn of a conversation file.
    Predict(cmd::predict::PredictArgs),
    /// Serve a trained model over HTTP: POST /v1/emotions (JSON turns in,
    /// per-turn emotions out), /health, /info, Prometheus /metrics; a
    /// bounded queue (429 when full), per-request timeouts, graceful
    /// shutdown on Ctrl-C / SIGTERM.
    Serve(cmd::serve::ServeArgs),
    /// Extract per-utterance Audio, Face and Body feature sequences from
    /// media files (decoded by the ffmpeg program) into a resumable feature
    /// store, with a per-file report.
    Extract(cmd::extract::ExtractArgs),
    /// Media feature stores: merge the shards of `extract --shard` into one.
    Store {
        #[command(subcommand)]
        command: cmd::store::StoreCommand,
    },
    /// Inspect datasets.
    Data {
        #[command(subcommand)]
        command: cmd::data::DataCommand,
    },
    /// What emotion is in each turn of a recording, and why: speech
    /// recognition, speakers, then text, voice and face readings from the
    /// models that ship with mmer, fused per turn.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Speech to text: what is said in a recording and when, as turns
    /// (Whisper tiny.en or base, offline).
    Transcribe(cmd::transcribe::TranscribeArgs),
    /// Benchmarks printing JSON: text embedding, training epoch, prediction
    /// latency, extraction real-time factor, EmoDB leave-one-speaker-out.
    Bench(cmd::bench::BenchArgs),
    /// End-to-end demo on built-in synthetic conversations: train, evaluate,
    /// then predict a sample conversation turn by turn.
    Demo(cmd::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    // The server must never stall on a slow reader of its log (a full
    // pipe would block every handler that logs): its lines go through an
    // in-memory queue, written by a thread of their own, and are dropped
    // when 128k lines are waiting. The other verbs write synchronously, so
    // their lines interleave with progress bars and end before exit.
    let (writer, _flush_on_exit) = if matches!(cli.command, Command::Serve(_)) {
        let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
        (BoxMakeWriter::new(writer), Some(guard))
    } else {
        (BoxMakeWriter::new(std::io::stderr), None)
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Train(args) => cmd::train::run(args),
        Command::Pretrain(args) => cmd::pretrain::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Robustness(args) => cmd::robustness::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Extract(args) => cmd::extract::run(args),
        Command::Store { command } => cmd::store::run(command),
        Command::Data { command } => cmd::data::run(command),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Transcribe(args) => cmd::transcribe::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by `: `, each said once: library errors
/// often end their own message with their cause's, which `{:#}` would
/// print a second time (`x.json: No such file: No such file`).
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if out.ends_with(&format!(": {message}")) || out.ends_with(&format!("({message})")) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let inner = anyhow::Error::new(io).context("x.json: No such file");
        let err = inner.context("loading the run");
        assert_eq!(error_chain(&err), "loading the run: x.json: No such file");
    }
}
