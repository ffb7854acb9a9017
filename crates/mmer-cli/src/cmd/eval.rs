//! `mmer eval`: re-evaluate every seed of a trained run on one split.

use std::path::{Path, PathBuf};

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

/// A run is complete when `results.json` exists and lists exactly the seeds
/// of `config.toml`, and no other `seed-<k>` directory lies beside them.
fn check_complete(run: &Path, config: &RunConfig) -> Result<()> {
    let path = run.join("results.json");
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "reading {}: the run is unfinished; `mmer train --config {} --out {} --resume` completes it",
            path.display(),
            run.join("config.toml").display(),
            run.display()
        )
    })?;
    let results: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let listed: Vec<u64> = results["seeds"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        listed == config.train.seeds,
        "{} lists seeds {listed:?} but config.toml has {:?}; the run directory is inconsistent",
        path.display(),
        config.train.seeds
    );
    for entry in std::fs::read_dir(run).with_context(|| format!("reading {}", run.display()))? {
        let name = entry?.file_name();
        let seed = name
            .to_str()
            .and_then(|n| n.strip_prefix("seed-"))
            .and_then(|k| k.parse::<u64>().ok());
        if let Some(seed) = seed {
            anyhow::ensure!(
                listed.contains(&seed),
                "{} holds seed-{seed}, which results.json does not list; the run directory is inconsistent",
                run.display()
            );
        }
    }
    Ok(())
}

/// Entry point of `mmer eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let config_path = args.run.join("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config: RunConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", config_path.display()))?;
    check_complete(&args.run, &config)?;
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
        anyhow::ensure!(
            checkpoint.seed == *seed
                && checkpoint.corpus == corpus.name
                && checkpoint.config.same_settings(&config.train),
            "{} was not trained by this run's config.toml (seed {}, corpus {}); the run directory is inconsistent",
            dir.display(),
            checkpoint.seed,
            checkpoint.corpus
        );
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
    mmer_core::atomic::write_file(&out, &serde_json::to_vec_pretty(&json)?)?;
    println!("\nwritten: {}", out.display());
    Ok(())
}
