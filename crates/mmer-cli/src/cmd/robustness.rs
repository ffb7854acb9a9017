//! `mmer robustness`: trained runs with modalities missing at test time.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::Split;
use mmer_run::robustness::{RobustnessConfig, evaluate_robustness, plot_sweeps, table};

/// Arguments of `mmer robustness`.
#[derive(Debug, Args)]
pub struct RobustnessArgs {
    /// Run directories written by `mmer train` (each holds config.toml and
    /// seed-*/); several runs share one chart.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Split to score. Model selection already happened on `valid`.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// Missing rates of the sweep, comma-separated, each in [0, 1).
    #[arg(long, value_delimiter = ',', default_values_t = RobustnessConfig::default().rates)]
    pub rates: Vec<f64>,
    /// Random removals drawn per rate (each scored on every seed).
    #[arg(long, default_value_t = RobustnessConfig::default().draws)]
    pub draws: usize,
    /// Seed of the removal draws.
    #[arg(long, default_value_t = RobustnessConfig::default().seed)]
    pub seed: u64,
    /// Write every run's report as one JSON array here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Draw the runs' sweeps on one chart (SVG) here.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Entry point of `mmer robustness`.
pub fn run(args: RobustnessArgs) -> Result<()> {
    let config = RobustnessConfig {
        split: args.split,
        rates: args.rates,
        draws: args.draws,
        seed: args.seed,
    };
    let mut reports = Vec::with_capacity(args.runs.len());
    for run in &args.runs {
        let report = evaluate_robustness(run, &config)
            .with_context(|| format!("robustness of {}", run.display()))?;
        println!("{}", table(&report));
        reports.push(report);
    }
    if let Some(path) = &args.out {
        mmer_core::atomic::write_file(path, &serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("written: {}", path.display());
    }
    if let Some(path) = &args.plot {
        plot_sweeps(&reports, path)?;
        println!("chart: {}", path.display());
    }
    Ok(())
}
