//! `results.json` and the table of a multi-label run: the fused head at
//! threshold 0.5 and at per-label thresholds tuned on validation, each
//! peer (mode head), and — in the same table — the two trivial baselines
//! a multi-label metric needs beside it: predict every label (weighted F1
//! rewards it) and predict each label's training prior.

use std::collections::BTreeMap;

use mmer_core::{Corpus, Modality, Split};
use mmer_eval::MultiLabelScoresAggregate;
use mmer_eval::multi_label::{MultiLabelScores, label_prior};
use mmer_train::MultiLabelOutcome;
use mmer_train::multi_label::{HeadScores, gold_bits};
use mmer_train::trainer::PreparedData;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::Result;
use crate::results::{SCHEMA_VERSION, git_revision, model_name};

/// One head over seeds, at 0.5 and at tuned thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadAggregate {
    /// Every label decided at probability ≥ 0.5.
    pub at_half: MultiLabelScoresAggregate,
    /// Every label decided at its threshold tuned on validation.
    pub tuned: MultiLabelScoresAggregate,
}

impl HeadAggregate {
    fn new<'a>(heads: impl Iterator<Item = &'a HeadScores>) -> Result<Self> {
        let (at_half, tuned): (Vec<_>, Vec<_>) =
            heads.map(|h| (h.at_half.clone(), h.tuned.clone())).unzip();
        Ok(Self {
            at_half: MultiLabelScoresAggregate::from_scores(&at_half)?,
            tuned: MultiLabelScoresAggregate::from_scores(&tuned)?,
        })
    }
}

/// A peer (mode head) over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerAggregate {
    /// The peer's modality.
    pub modality: Modality,
    /// On validation turns that have the modality.
    pub valid: HeadAggregate,
    /// On test turns that have the modality.
    pub test: Option<HeadAggregate>,
}

/// The trivial baselines, scored on the headline split (no seeds: they
/// are deterministic).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    /// The split they are scored on.
    pub split: Split,
    /// Every label predicted (probability 1).
    pub all_positive: MultiLabelScores,
    /// Each label's training-split frequency as its probability,
    /// thresholded at 0.5.
    pub prior: MultiLabelScores,
    /// That frequency, per label.
    pub train_prior: Vec<f64>,
}

/// Everything a multi-label run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultiLabelRunResults {
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
    /// How the model was selected.
    pub selection: String,
    /// Seeds trained.
    pub seeds: Vec<u64>,
    /// `git rev-parse HEAD` of the code, plus `-dirty` with local changes.
    pub git_revision: String,
    /// Utterances per split.
    pub split_sizes: BTreeMap<Split, usize>,
    /// Label names, in label order.
    pub classes: Vec<String>,
    /// The fused head on test over seeds.
    pub test: Option<HeadAggregate>,
    /// The fused head on validation over seeds.
    pub valid: HeadAggregate,
    /// Each peer over seeds (empty without mode heads).
    pub peers: Vec<PeerAggregate>,
    /// The trivial baselines on the headline split.
    pub baselines: Baselines,
    /// Per-seed detail.
    pub per_seed: Vec<MultiLabelOutcome>,
    /// The exact configuration.
    pub config: RunConfig,
}

impl MultiLabelRunResults {
    /// Collects a finished run.
    ///
    /// # Errors
    /// No outcomes, or outcomes that disagree on the labels or the peers.
    pub fn new(
        corpus: &Corpus,
        data: &PreparedData,
        config: &RunConfig,
        encoder: Option<String>,
        outcomes: &[MultiLabelOutcome],
    ) -> Result<Self> {
        let num_labels = data.labels.num_classes();
        let has_test = outcomes.iter().all(|o| o.test.is_some()) && !outcomes.is_empty();
        let (split, headline) = match has_test {
            true => (Split::Test, &data.test),
            false => (Split::Valid, &data.valid),
        };
        let train_prior = label_prior(&gold_bits(&data.train), num_labels)?;
        let gold = gold_bits(headline);
        let peers = match outcomes.first() {
            Some(first) => (0..first.peers.len())
                .map(|m| {
                    let of = |o: &MultiLabelOutcome| o.peers.get(m).cloned();
                    let peer: Vec<_> = outcomes.iter().filter_map(of).collect();
                    Ok(PeerAggregate {
                        modality: first.peers[m].modality,
                        valid: HeadAggregate::new(peer.iter().map(|p| &p.valid))?,
                        test: match has_test {
                            true => Some(HeadAggregate::new(
                                peer.iter().filter_map(|p| p.test.as_ref()),
                            )?),
                            false => None,
                        },
                    })
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            dataset: corpus.name.clone(),
            split,
            modalities: config.train.modalities.clone(),
            encoder,
            model: model_name(config),
            selection: "validation macro F1 of the fused head at threshold 0.5; per-label thresholds tuned on validation".into(),
            seeds: outcomes.iter().map(|o| o.seed).collect(),
            git_revision: git_revision(),
            split_sizes: Split::ALL
                .iter()
                .map(|&s| (s, corpus.num_utterances(s)))
                .collect(),
            classes: corpus.labels.classes.clone(),
            test: match has_test {
                true => Some(HeadAggregate::new(
                    outcomes.iter().filter_map(|o| o.test.as_ref()),
                )?),
                false => None,
            },
            valid: HeadAggregate::new(outcomes.iter().map(|o| &o.valid))?,
            peers,
            baselines: Baselines {
                split,
                all_positive: MultiLabelScores::all_positive(&gold, num_labels)?,
                prior: MultiLabelScores::prior(&gold, num_labels, &train_prior)?,
                train_prior,
            },
            per_seed: outcomes.to_vec(),
            config: config.clone(),
        })
    }

    /// A readable table on the headline split: one row per metric, one
    /// column per head (fused and each peer, at 0.5 and tuned) and per
    /// trivial baseline.
    pub fn table(&self) -> String {
        let names: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        let mut columns: Vec<(String, MultiLabelScoresAggregate)> = Vec::new();
        let fused = self.test.as_ref().unwrap_or(&self.valid).clone();
        columns.push(("fused @0.5".into(), fused.at_half));
        columns.push(("fused tuned".into(), fused.tuned));
        for peer in &self.peers {
            let head = match (&peer.test, self.split) {
                (Some(test), Split::Test) => test.clone(),
                _ => peer.valid.clone(),
            };
            let m = peer.modality.as_str();
            columns.push((format!("{m} peer @0.5"), head.at_half));
            columns.push((format!("{m} peer tuned"), head.tuned));
        }
        let baseline =
            |s: &MultiLabelScores| MultiLabelScoresAggregate::from_scores(std::slice::from_ref(s));
        for (name, scores) in [
            ("all labels", &self.baselines.all_positive),
            ("train prior", &self.baselines.prior),
        ] {
            if let Ok(aggregate) = baseline(scores) {
                columns.push((name.into(), aggregate));
            }
        }
        let mut out = format!(
            "{} | {} | {} | {} seed(s) | {} split\n\n| metric |",
            self.dataset,
            self.encoder.as_deref().unwrap_or("features"),
            self.model,
            self.seeds.len(),
            self.split
        );
        for (name, _) in &columns {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(columns.len()));
        out.push('\n');
        let rows: Vec<Vec<(String, String)>> = columns
            .iter()
            .map(|(_, a)| {
                a.rows(&names)
                    .into_iter()
                    .map(|(metric, value)| {
                        let shown = match value.per_seed.len() {
                            1 => format!("{:.2}", 100.0 * value.mean),
                            _ => value.display_percent(),
                        };
                        (metric, shown)
                    })
                    .collect()
            })
            .collect();
        for (metric, _) in &rows[0] {
            out.push_str(&format!("| {metric} |"));
            for column in &rows {
                let cell = column
                    .iter()
                    .find(|(m, _)| m == metric)
                    .map_or("—", |(_, v)| v.as_str());
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out.push_str(
            "\n(percent; models: mean ± sample std over seeds, selected on validation macro F1 at 0.5; baselines are deterministic)\n",
        );
        out
    }
}
