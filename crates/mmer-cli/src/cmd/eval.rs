//! `mmer eval`: re-evaluate every seed of a trained run on one split.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::Split;
use mmer_eval::ReportAggregate;
use mmer_train::Checkpoint;

use crate::cmd::train::RunConfig;

/// Arguments of `mmer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory written by `mmer train` (holds config.toml and seed-*/).
    pub run: PathBuf,
    /// Split to evaluate. Model selection already happened on `valid`.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
}

/// Entry point of `mmer eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let config_path = args.run.join("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config: RunConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", config_path.display()))?;
    let corpus = config.data.load(&config.train.modalities)?;
    let dialogues = corpus.split(args.split);
    anyhow::ensure!(
        !dialogues.is_empty(),
        "{} has no {} split",
        corpus.name,
        args.split
    );

    let mut per_seed = Vec::new();
    for seed in &config.train.seeds {
        let dir = args.run.join(format!("seed-{seed}"));
        let (checkpoint, model) =
            Checkpoint::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
        let report = checkpoint.evaluate(&model, dialogues)?;
        per_seed.push((*seed, report));
    }
    let reports: Vec<_> = per_seed.iter().map(|(_, r)| r.clone()).collect();
    let aggregate = ReportAggregate::from_reports(&reports)?;
    let names: Vec<&str> = corpus.labels.classes.iter().map(String::as_str).collect();
    println!(
        "{} | {} split | {} seed(s)\n",
        corpus.name,
        args.split,
        per_seed.len()
    );
    println!("{}", aggregate.to_table(&names));
    let out = args.run.join(format!("eval-{}.json", args.split));
    let json =
        serde_json::json!({ "split": args.split, "aggregate": aggregate, "per_seed": per_seed });
    std::fs::write(&out, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwritten: {}", out.display());
    Ok(())
}
