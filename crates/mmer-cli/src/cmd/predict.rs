//! `mmer predict`: the emotion of every turn of a user's conversation file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use mmer_train::{Checkpoint, Prediction};

use crate::dataset::checkpoint_encoder;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable table.
    Table,
    /// One JSON object per utterance (JSON Lines).
    Jsonl,
}

/// Arguments of `mmer predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A trained model: a `seed-<k>` directory of a run (checkpoint.json + model.bpk).
    #[arg(long)]
    pub model: PathBuf,
    /// Conversation file (.jsonl or .csv: dialogue, turn, speaker, text[, label]); see docs/examples/.
    pub input: PathBuf,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Renders predictions as an aligned table.
pub fn render_table(predictions: &[Prediction]) -> String {
    let mut out = String::from("turn  speaker     emotion      conf   gold         text\n");
    for p in predictions {
        let text: String = p.text.as_deref().unwrap_or("").chars().take(60).collect();
        out.push_str(&format!(
            "{:>4}  {:<10}  {:<11}  {:.2}   {:<11}  {}\n",
            p.turn,
            p.speaker.chars().take(10).collect::<String>(),
            p.emotion,
            p.confidence,
            p.gold.as_deref().unwrap_or("-"),
            text
        ));
    }
    if predictions.iter().any(|p| p.gold.is_some()) {
        let labelled: Vec<_> = predictions.iter().filter(|p| p.gold.is_some()).collect();
        let correct = labelled
            .iter()
            .filter(|p| p.gold.as_deref() == Some(p.emotion.as_str()))
            .count();
        out.push_str(&format!(
            "\n{correct}/{} labelled turns predicted correctly\n",
            labelled.len()
        ));
    }
    out
}

/// Entry point of `mmer predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let (checkpoint, model) = Checkpoint::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let mut dialogues =
        mmer_data::conversation::load_conversations(&args.input, &checkpoint.labels)?;
    let encoder = checkpoint_encoder(&checkpoint, &args.model)?;
    let started = Instant::now();
    if let Some(encoder) = &encoder {
        encoder.embed(&mut dialogues)?;
    }
    let predictions = checkpoint.predict(&model, &dialogues)?;
    tracing::info!(
        utterances = predictions.len(),
        milliseconds = started.elapsed().as_secs_f64() * 1e3,
        "predicted (after model load)"
    );
    match args.format {
        OutputFormat::Table => print!("{}", render_table(&predictions)),
        OutputFormat::Jsonl => {
            for p in &predictions {
                println!("{}", serde_json::to_string(p)?);
            }
        }
    }
    Ok(())
}
