//! `results.json` and the table printed after a run.

use std::collections::BTreeMap;

use crate::error::Result;
use mmer_core::{Corpus, Modality, Split};
use mmer_eval::{ClassificationReport, ReportAggregate};
use mmer_train::SeedOutcome;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;

pub(crate) const SCHEMA_VERSION: u32 = 1;

/// One seed's metrics in the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedResult {
    /// Seed.
    pub seed: u64,
    /// Epoch selected on validation.
    pub best_epoch: usize,
    /// Training wall time, seconds.
    pub train_seconds: f64,
    /// Validation metrics of the selected model.
    pub valid: ClassificationReport,
    /// Test metrics of the selected model.
    pub test: Option<ClassificationReport>,
}

/// Everything a run reports: config, provenance, per-seed and aggregate metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// Format version.
    pub schema_version: u32,
    /// Corpus name.
    pub dataset: String,
    /// Split the headline metrics are on.
    pub split: Split,
    /// Input modalities.
    pub modalities: Vec<Modality>,
    /// Text encoder, when transcripts were embedded.
    pub encoder: Option<String>,
    /// Model family and context mode.
    pub model: String,
    /// Seeds trained.
    pub seeds: Vec<u64>,
    /// `git rev-parse HEAD` of the code, plus `-dirty` with local changes.
    pub git_revision: String,
    /// Utterances per split.
    pub split_sizes: BTreeMap<Split, usize>,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Test metrics over seeds: mean, sample std, per-seed values.
    pub test: Option<ReportAggregate>,
    /// Validation metrics over seeds.
    pub valid: ReportAggregate,
    /// Per-seed detail, with confusion matrices.
    pub per_seed: Vec<SeedResult>,
    /// The exact configuration.
    pub config: RunConfig,
}

/// The code revision, for provenance.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".to_string(),
    }
}

/// The model family and context of `config`: `erc-context-<context>` for
/// early fusion, `<fusion>-context-<context>` otherwise.
pub(crate) fn model_name(config: &RunConfig) -> String {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let context = name(serde_json::to_value(config.train.model.context));
    match config.train.model.fusion {
        mmer_models::Fusion::Early => format!("erc-context-{context}"),
        fusion => format!("{}-context-{context}", name(serde_json::to_value(fusion))),
    }
}

impl RunResults {
    /// Collects a finished run.
    pub fn new(
        corpus: &Corpus,
        config: &RunConfig,
        encoder: Option<String>,
        outcomes: &[SeedOutcome],
    ) -> Result<Self> {
        let valid: Vec<ClassificationReport> = outcomes.iter().map(|o| o.valid.clone()).collect();
        let test: Vec<ClassificationReport> =
            outcomes.iter().filter_map(|o| o.test.clone()).collect();
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            dataset: corpus.name.clone(),
            split: Split::Test,
            modalities: config.train.modalities.clone(),
            encoder,
            model: model_name(config),
            seeds: outcomes.iter().map(|o| o.seed).collect(),
            git_revision: git_revision(),
            split_sizes: Split::ALL
                .iter()
                .map(|&s| (s, corpus.num_utterances(s)))
                .collect(),
            classes: corpus.labels.classes.clone(),
            test: if test.is_empty() {
                None
            } else {
                Some(ReportAggregate::from_reports(&test)?)
            },
            valid: ReportAggregate::from_reports(&valid)?,
            per_seed: outcomes
                .iter()
                .map(|o| SeedResult {
                    seed: o.seed,
                    best_epoch: o.best_epoch,
                    train_seconds: o.train_seconds,
                    valid: o.valid.clone(),
                    test: o.test.clone(),
                })
                .collect(),
            config: config.clone(),
        })
    }

    /// A readable table: one row per metric, validation and test mean ± std.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} | {} | {} | {} seed(s)\n\n| metric | valid | test |\n|---|---|---|\n",
            self.dataset,
            self.encoder.as_deref().unwrap_or("features"),
            self.model,
            self.seeds.len()
        );
        let names: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        let test_rows = self
            .test
            .as_ref()
            .map(|t| t.rows(&names))
            .unwrap_or_default();
        for (k, (name, valid)) in self.valid.rows(&names).into_iter().enumerate() {
            let test = test_rows
                .get(k)
                .map_or("—".to_string(), |(_, a)| a.display_percent());
            out.push_str(&format!(
                "| {name} | {} | {test} |\n",
                valid.display_percent()
            ));
        }
        out.push_str("\n(percent, mean ± sample std over seeds; model selected on valid)\n");
        out
    }
}
