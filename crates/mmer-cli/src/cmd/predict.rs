//! `mmer predict`: the emotion of every turn of a user's conversation file.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use mmer_run::predict::Predictor;
use mmer_train::Prediction;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable table.
    Table,
    /// One JSON object per utterance (JSON Lines), probabilities by class name.
    Jsonl,
    /// CSV with a header: the input's dialogue, turn and speaker, then the
    /// prediction and one `p_<class>` column per class.
    Csv,
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

/// Renders predictions as an aligned table, one row per turn, keyed by the
/// input's own dialogue id and turn number.
pub fn render_table(predictions: &[Prediction]) -> String {
    let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let dialogue_width = predictions
        .iter()
        .map(|p| p.dialogue.chars().count().min(24))
        .max()
        .unwrap_or(0)
        .max("dialogue".len());
    let mut out = format!(
        "{:<dialogue_width$}  turn  speaker     emotion      conf   gold         text\n",
        "dialogue"
    );
    for p in predictions {
        let text = clip(p.text.as_deref().unwrap_or(""), 60);
        out.push_str(&format!(
            "{:<dialogue_width$}  {:>4}  {:<10}  {:<11}  {:.2}   {:<11}  {}\n",
            clip(&p.dialogue, 24),
            p.turn,
            clip(&p.speaker, 10),
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

/// Writes predictions as CSV: `dialogue, turn, speaker, utterance, emotion,
/// confidence, gold, p_<class>…, text`.
pub fn write_csv(predictions: &[Prediction], out: impl std::io::Write) -> Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let classes: Vec<&str> = predictions
        .first()
        .map(|p| p.probabilities.0.iter().map(|(c, _)| c.as_str()).collect())
        .unwrap_or_default();
    let mut header = vec![
        "dialogue".to_string(),
        "turn".into(),
        "speaker".into(),
        "utterance".into(),
        "emotion".into(),
        "confidence".into(),
        "gold".into(),
    ];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    header.push("text".into());
    writer.write_record(&header)?;
    for p in predictions {
        let mut row = vec![
            p.dialogue.clone(),
            p.turn.to_string(),
            p.speaker.clone(),
            p.utterance.clone(),
            p.emotion.clone(),
            format!("{:.6}", p.confidence),
            p.gold.clone().unwrap_or_default(),
        ];
        row.extend(p.probabilities.0.iter().map(|(_, x)| format!("{x:.6}")));
        row.push(p.text.clone().unwrap_or_default());
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Entry point of `mmer predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let predictor = Predictor::load(&args.model)?;
    let predictions = predictor.predict_file(&args.input)?;
    match args.format {
        OutputFormat::Table => print!("{}", render_table(&predictions)),
        OutputFormat::Jsonl => {
            for p in &predictions {
                println!("{}", serde_json::to_string(p)?);
            }
        }
        OutputFormat::Csv => write_csv(&predictions, std::io::stdout().lock())?,
    }
    Ok(())
}
