//! `mmer data ...`: dataset inspection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use mmer_core::{Corpus, Label, Modality, Split};
use serde::Serialize;

use mmer_run::Labels;
use mmer_run::data::{DataConfig, DatasetKind};

/// Dataset subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Counts per split: dialogues, utterances, speakers, classes, modality coverage.
    Stats(StatsArgs),
}

/// Arguments of `mmer data stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Dataset format.
    #[arg(long, value_enum)]
    pub dataset: DatasetKind,
    /// Dataset file or directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Label set of `conversations` data: a preset (meld, iemocap,
    /// synthetic) or your own classes, comma-separated
    /// (`--labels calm,tense,happy`). [default: meld]
    #[arg(long, value_name = "PRESET|CLASSES")]
    pub labels: Option<String>,
    /// The classes of --labels are multi-label: a turn names several
    /// (`"label": ["calm", "happy"]`, or `calm;happy` in CSV), or none
    /// (`[]`, `;`).
    #[arg(long, requires = "labels")]
    pub multi_label: bool,
    /// Media store written by `mmer extract`: its feature sequences are
    /// attached by utterance id, so coverage counts the extracted modalities.
    #[arg(long)]
    pub media_store: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Statistics of one split.
#[derive(Debug, Serialize)]
pub struct SplitStats {
    dialogues: usize,
    utterances: usize,
    speakers: usize,
    max_turns: usize,
    mean_turns: f64,
    single_turn_dialogues: usize,
    empty_texts: usize,
    classes: BTreeMap<String, usize>,
    /// Utterances carrying each modality (coverage). Text counts an
    /// utterance with a non-blank transcript or text features.
    modalities: BTreeMap<Modality, usize>,
}

/// Computes statistics of every split.
pub fn stats(corpus: &Corpus) -> BTreeMap<Split, SplitStats> {
    let mut out = BTreeMap::new();
    for split in Split::ALL {
        let dialogues = corpus.split(split);
        let utterances: Vec<_> = dialogues.iter().flat_map(|d| &d.utterances).collect();
        let mut classes: BTreeMap<String, usize> = corpus
            .labels
            .classes
            .iter()
            .map(|c| (c.clone(), 0))
            .collect();
        let mut modalities = BTreeMap::new();
        for u in &utterances {
            match &u.label {
                Some(Label::Single(c)) => {
                    *classes
                        .entry(corpus.labels.name_of(*c).to_string())
                        .or_default() += 1
                }
                Some(Label::Multi(bits)) => {
                    for (c, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
                        *classes
                            .entry(corpus.labels.name_of(c).to_string())
                            .or_default() += 1;
                    }
                }
                None => {}
            }
            for m in Modality::ALL {
                let has = u.features.contains_key(&m)
                    || (m == Modality::Text
                        && u.text.as_deref().is_some_and(|t| !t.trim().is_empty()));
                if has {
                    *modalities.entry(m).or_default() += 1;
                }
            }
        }
        let speakers: std::collections::BTreeSet<&str> =
            utterances.iter().map(|u| u.speaker.as_str()).collect();
        out.insert(
            split,
            SplitStats {
                dialogues: dialogues.len(),
                utterances: utterances.len(),
                speakers: speakers.len(),
                max_turns: dialogues
                    .iter()
                    .map(|d| d.utterances.len())
                    .max()
                    .unwrap_or(0),
                mean_turns: utterances.len() as f64 / dialogues.len().max(1) as f64,
                single_turn_dialogues: dialogues.iter().filter(|d| d.utterances.len() == 1).count(),
                empty_texts: utterances
                    .iter()
                    .filter(|u| u.text.as_deref().is_some_and(|t| t.trim().is_empty()))
                    .count(),
                classes,
                modalities,
            },
        );
    }
    out
}

/// Entry point of `mmer data`.
pub fn run(command: DataCommand) -> Result<()> {
    let DataCommand::Stats(args) = command;
    let labels = match &args.labels {
        Some(l) => Some(Labels::from_arg(l, args.multi_label)?),
        None => None,
    };
    let config = DataConfig {
        labels,
        media_store: args.media_store,
        ..DataConfig::new(args.dataset, args.data)
    };
    let corpus = config.load(&[])?;
    let stats = stats(&corpus);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!(
        "{} ({} classes)\n",
        corpus.name,
        corpus.labels.num_classes()
    );
    println!("| | {} |", Split::ALL.map(|s| s.as_str()).join(" | "));
    println!("|---|---|---|---|");
    let row = |name: &str, f: &dyn Fn(&SplitStats) -> String| {
        let cells: Vec<String> = Split::ALL
            .iter()
            .map(|s| stats.get(s).map_or("-".into(), f))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("dialogues", &|s| s.dialogues.to_string());
    row("utterances", &|s| s.utterances.to_string());
    row("speakers", &|s| s.speakers.to_string());
    row("turns mean / max", &|s| {
        format!("{:.1} / {}", s.mean_turns, s.max_turns)
    });
    row("one-turn dialogues", &|s| {
        s.single_turn_dialogues.to_string()
    });
    row("empty transcripts", &|s| s.empty_texts.to_string());
    for class in &corpus.labels.classes {
        row(class, &|s| {
            s.classes.get(class).copied().unwrap_or(0).to_string()
        });
    }
    for m in Modality::ALL {
        row(&format!("has {m}"), &|s| {
            s.modalities.get(&m).copied().unwrap_or(0).to_string()
        });
    }
    Ok(())
}
