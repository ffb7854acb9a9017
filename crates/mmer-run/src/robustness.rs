//! How a trained run holds up when modalities go missing at test time
//! (`mmer robustness`): every seed's checkpoint on one split under
//!
//! - **conditions**: all modalities; each single modality removed; each pair
//!   removed (with three or more modalities) — the thesis's "T+A", "No
//!   Face", … rows (thesis §5.3, Table 5.6). A condition that would leave a
//!   turn with no modality is skipped for the whole run (with one modality,
//!   only "full" remains);
//! - **a sweep**: each modality of each turn removed independently with
//!   probability `rate` (0.0, 0.1, …, 0.7 by default), seeded; when a draw
//!   would remove a turn's last modality, one of its modalities (drawn
//!   uniformly) stays. Every rate is scored over several draws of the
//!   removal and every training seed.
//!
//! Beside them, a trivial baseline that no missing modality can hurt: the
//! training split's majority class for every turn. A missing modality is
//! removed from the turn (it becomes data the model masks; see
//! `mmer_train::batcher`), never replaced by zeros.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmer_core::{Dialogue, Label, Modality, Split};
use mmer_eval::{Aggregate, ClassificationReport};
use mmer_train::Checkpoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::{Context, Result, bail, ensure};
use crate::evaluate::{check_complete, seed_inputs};

/// Settings of `mmer robustness`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobustnessConfig {
    /// The split scored.
    pub split: Split,
    /// Missing rates of the sweep, each in [0, 1).
    pub rates: Vec<f64>,
    /// Draws of the random removal per rate (each scored on every seed).
    pub draws: usize,
    /// Seed of the removal draws.
    pub seed: u64,
}

impl Default for RobustnessConfig {
    fn default() -> Self {
        Self {
            split: Split::Test,
            rates: (0..=7).map(|i| f64::from(i) / 10.0).collect(),
            draws: 3,
            seed: 0,
        }
    }
}

/// One test-time condition's scores over the run's seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionScore {
    /// `full`, `no text`, `no audio + face`, …
    pub name: String,
    /// The modalities removed from every turn.
    pub removed: Vec<Modality>,
    /// Weighted F1 (percent) over the seeds.
    pub weighted_f1: Aggregate,
    /// Accuracy (percent) over the seeds.
    pub accuracy: Aggregate,
}

/// One rate of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Probability that a modality of a turn is removed.
    pub rate: f64,
    /// Share of (turn, modality) cells actually removed (below `rate` where
    /// a turn's last modality was kept).
    pub removed_share: f64,
    /// Weighted F1 (percent) over the seeds, each seed's score the mean
    /// over the draws.
    pub weighted_f1: Aggregate,
    /// Accuracy (percent), as `weighted_f1`.
    pub accuracy: Aggregate,
}

/// What `mmer robustness` reports for one run.
#[derive(Debug, Clone, Serialize)]
pub struct RobustnessReport {
    /// The run directory.
    pub run: PathBuf,
    /// The settings.
    pub config: RobustnessConfig,
    /// The model's modalities.
    pub modalities: Vec<Modality>,
    /// Training seeds scored.
    pub seeds: Vec<u64>,
    /// The fixed conditions.
    pub conditions: Vec<ConditionScore>,
    /// Conditions left out because they would leave a turn with nothing.
    pub skipped: Vec<String>,
    /// The random missing-rate sweep.
    pub sweep: Vec<SweepPoint>,
    /// The training split's majority class on every turn.
    pub majority_baseline: ConditionScore,
}

/// Scores every seed of the finished run in `run` under the conditions and
/// the sweep of [`RobustnessConfig`].
///
/// # Errors
/// An unreadable, unfinished or inconsistent run, a damaged checkpoint, data
/// that cannot be loaded, an empty split, a rate outside [0, 1), no draws.
pub fn evaluate_robustness(run: &Path, config: &RobustnessConfig) -> Result<RobustnessReport> {
    ensure!(config.draws >= 1, "draws must be at least 1");
    if let Some(r) = config.rates.iter().find(|r| !(0.0..1.0).contains(*r)) {
        bail!("missing rate {r} is outside [0, 1)");
    }
    let run_config = RunConfig::read(&run.join("config.toml"))?;
    check_complete(run, &run_config)?;
    let modalities = run_config.train.modalities.clone();
    ensure!(
        !run_config.data.label_space()?.multi_label && !run_config.data.is_multi_label_dataset(),
        "{}: robustness scores single-label runs for now; this run is multi-label (`mmer eval` re-scores it)",
        run.display()
    );
    let corpus = run_config.data.load(&modalities)?;
    let dialogues = corpus.split(config.split);
    ensure!(
        !dialogues.is_empty(),
        "{} has no {} split",
        corpus.name,
        config.split
    );
    // Each seed with the inputs it reads: a fine-tuned seed's text features
    // come from its own encoder layers (the store holds the frozen ones).
    // Conditions remove modalities from those inputs, so every seed sees
    // the same turns without the same modalities.
    let mut models = Vec::new();
    for seed in &run_config.train.seeds {
        let dir = run.join(format!("seed-{seed}"));
        let (checkpoint, model) =
            Checkpoint::load_model(&dir).with_context(|| format!("loading {}", dir.display()))?;
        ensure!(
            checkpoint.seed == *seed && checkpoint.config.same_settings(&run_config.train),
            "{} was not trained by this run's config.toml; the run directory is inconsistent",
            dir.display()
        );
        let inputs = seed_inputs(&checkpoint, &dir, dialogues)?;
        models.push((checkpoint, model, inputs));
    }
    let score = |condition: &dyn Fn(&[Dialogue]) -> Vec<Dialogue>| {
        models
            .iter()
            .map(|(checkpoint, model, inputs)| Ok(checkpoint.evaluate(model, &condition(inputs))?))
            .collect::<Result<Vec<ClassificationReport>>>()
    };
    let summarise = |name: String,
                     removed: Vec<Modality>,
                     reports: &[ClassificationReport]|
     -> Result<ConditionScore> {
        Ok(ConditionScore {
            name,
            removed,
            weighted_f1: percent(reports.iter().map(|r| r.weighted_f1))?,
            accuracy: percent(reports.iter().map(|r| r.accuracy))?,
        })
    };

    let mut conditions = Vec::new();
    let mut skipped = Vec::new();
    for removed in removal_sets(&modalities) {
        let name = condition_name(&removed);
        let kept = without(dialogues, &removed);
        if kept
            .iter()
            .flat_map(|d| &d.utterances)
            .any(|u| !modalities.iter().any(|m| u.features.contains_key(m)))
        {
            tracing::info!(condition = %name, "skipped: it would leave a turn with no modality");
            skipped.push(name);
            continue;
        }
        tracing::info!(condition = %name, "scoring");
        let reports = score(&|inputs| without(inputs, &removed))?;
        conditions.push(summarise(name, removed, &reports)?);
    }

    let mut sweep = Vec::new();
    for &rate in &config.rates {
        // Per seed: summed weighted F1 and accuracy over the draws.
        let mut sums = vec![(0.0, 0.0); models.len()];
        let (mut removed_cells, mut cells) = (0usize, 0usize);
        for draw in 0..config.draws {
            // The same draw for every seed: the masks depend on which
            // modalities each turn has, the same in every seed's inputs.
            let draw_seed =
                config.seed ^ (draw as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rate.to_bits();
            let mask = |inputs: &[Dialogue]| {
                let mut rng = ChaCha8Rng::seed_from_u64(draw_seed);
                drop_at_random(inputs, &modalities, rate, &mut rng)
            };
            let (_, removed, total) = mask(dialogues);
            removed_cells += removed;
            cells += total;
            for (sum, report) in sums.iter_mut().zip(score(&|inputs| mask(inputs).0)?) {
                sum.0 += report.weighted_f1;
                sum.1 += report.accuracy;
            }
        }
        tracing::info!(rate, "sweep point scored");
        let draws = config.draws as f64;
        sweep.push(SweepPoint {
            rate,
            removed_share: removed_cells as f64 / cells.max(1) as f64,
            weighted_f1: percent(sums.iter().map(|s| s.0 / draws))?,
            accuracy: percent(sums.iter().map(|s| s.1 / draws))?,
        });
    }

    let majority = majority_report(
        corpus.split(Split::Train),
        dialogues,
        corpus.labels.num_classes(),
    )?;
    Ok(RobustnessReport {
        run: run.to_path_buf(),
        config: config.clone(),
        modalities,
        seeds: run_config.train.seeds.clone(),
        conditions,
        skipped,
        sweep,
        majority_baseline: summarise("majority class".into(), Vec::new(), &[majority])?,
    })
}

/// A metric's values over seeds (fractions) as percent: mean and sample
/// standard deviation.
///
/// # Errors
/// No values (a run without seeds).
fn percent(values: impl Iterator<Item = f64>) -> Result<Aggregate> {
    let values: Vec<f64> = values.map(|v| 100.0 * v).collect();
    Ok(Aggregate::from_values(&values)?)
}

/// `mean ± std` with two decimals, `± n/a` for one seed.
fn mean_std(a: &Aggregate) -> String {
    match a.std {
        Some(std) => format!("{:.2} ± {std:.2}", a.mean),
        None => format!("{:.2} ± n/a", a.mean),
    }
}

/// The fixed conditions: nothing removed, each single modality, and each
/// pair when there are at least three.
fn removal_sets(modalities: &[Modality]) -> Vec<Vec<Modality>> {
    let mut sets = vec![Vec::new()];
    sets.extend(modalities.iter().map(|&m| vec![m]));
    if modalities.len() >= 3 {
        for (i, &a) in modalities.iter().enumerate() {
            for &b in &modalities[i + 1..] {
                sets.push(vec![a, b]);
            }
        }
    }
    sets
}

fn condition_name(removed: &[Modality]) -> String {
    if removed.is_empty() {
        return "full".into();
    }
    format!(
        "no {}",
        removed
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    )
}

/// `dialogues` with `removed` taken out of every turn.
fn without(dialogues: &[Dialogue], removed: &[Modality]) -> Vec<Dialogue> {
    let mut out = dialogues.to_vec();
    for u in out.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
        for m in removed {
            u.features.remove(m);
        }
    }
    out
}

/// `dialogues` with each of `modalities` removed from each turn with
/// probability `rate`, a turn's last one kept (drawn uniformly among those
/// it had); returns the copies, the cells removed and the cells there were.
fn drop_at_random(
    dialogues: &[Dialogue],
    modalities: &[Modality],
    rate: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<Dialogue>, usize, usize) {
    let mut out = dialogues.to_vec();
    let (mut removed, mut total) = (0, 0);
    for u in out.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
        let had: Vec<Modality> = modalities
            .iter()
            .copied()
            .filter(|m| u.features.contains_key(m))
            .collect();
        total += had.len();
        let drop: Vec<bool> = had.iter().map(|_| rng.random_bool(rate)).collect();
        let keep_one =
            (!had.is_empty() && drop.iter().all(|&d| d)).then(|| rng.random_range(0..had.len()));
        for (i, m) in had.iter().enumerate() {
            if drop[i] && keep_one != Some(i) {
                u.features.remove(m);
                removed += 1;
            }
        }
    }
    (out, removed, total)
}

/// The report of predicting the training split's most frequent class for
/// every labelled turn of `dialogues`.
fn majority_report(
    train: &[Dialogue],
    dialogues: &[Dialogue],
    num_classes: usize,
) -> Result<ClassificationReport> {
    let single = |u: &mmer_core::Utterance| match &u.label {
        Some(Label::Single(c)) => Some(*c),
        _ => None,
    };
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for u in train.iter().flat_map(|d| &d.utterances) {
        if let Some(c) = single(u) {
            *counts.entry(c).or_default() += 1;
        }
    }
    let Some((&majority, _)) = counts
        .iter()
        .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
    else {
        bail!("the training split has no single-label turn");
    };
    let gold: Vec<usize> = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter_map(single)
        .collect();
    let predicted = vec![majority; gold.len()];
    Ok(ClassificationReport::new(&gold, &predicted, num_classes)?)
}

/// A readable table of one report: conditions, the sweep, the baseline.
pub fn table(report: &RobustnessReport) -> String {
    let mut out = format!(
        "{} on {} ({} seeds; weighted F1 / accuracy, %, mean ± std)\n",
        report.run.display(),
        report.config.split,
        report.seeds.len()
    );
    out.push_str("| condition | weighted F1 | accuracy |\n|---|---|---|\n");
    let row = |c: &ConditionScore| {
        format!(
            "| {} | {} | {} |\n",
            c.name,
            mean_std(&c.weighted_f1),
            mean_std(&c.accuracy)
        )
    };
    for c in &report.conditions {
        out.push_str(&row(c));
    }
    out.push_str(&row(&report.majority_baseline));
    for s in &report.skipped {
        out.push_str(&format!(
            "| {s} | skipped: a turn would have no modality | |\n"
        ));
    }
    out.push_str(
        "\n| missing rate | cells removed | weighted F1 | accuracy |\n|---|---|---|---|\n",
    );
    for p in &report.sweep {
        out.push_str(&format!(
            "| {:.2} | {:.3} | {} | {} |\n",
            p.rate,
            p.removed_share,
            mean_std(&p.weighted_f1),
            mean_std(&p.accuracy)
        ));
    }
    out
}

/// Draws the sweeps of several runs on one chart (weighted F1 against the
/// missing rate, ± one standard deviation as error bars, the majority
/// baseline dashed, once per distinct value) and writes it as SVG.
///
/// # Errors
/// No reports, or the file cannot be written.
pub fn plot_sweeps(reports: &[RobustnessReport], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    ensure!(!reports.is_empty(), "nothing to plot");
    let max_rate = reports
        .iter()
        .flat_map(|r| r.sweep.iter().map(|p| p.rate))
        .fold(0.0f64, f64::max)
        .max(0.1);
    let top = reports
        .iter()
        .flat_map(|r| {
            r.sweep
                .iter()
                .map(|p| p.weighted_f1.mean + p.weighted_f1.std.unwrap_or(0.0))
        })
        .fold(0.0f64, f64::max);
    let y_max = (top / 10.0).ceil() * 10.0 + 5.0;
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Weighted F1 as modalities go missing at test time",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.02..max_rate + 0.02, 0.0..y_max.min(100.0))?;
        chart
            .configure_mesh()
            .x_desc("probability that a turn's modality is missing")
            .y_desc("weighted F1 (%)")
            .draw()?;
        for (i, report) in reports.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let name = report.run.file_name().map_or_else(
                || report.run.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let points: Vec<(f64, f64)> = report
                .sweep
                .iter()
                .map(|p| (p.rate, p.weighted_f1.mean))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            chart.draw_series(report.sweep.iter().map(|p| {
                ErrorBar::new_vertical(
                    p.rate,
                    p.weighted_f1.mean - p.weighted_f1.std.unwrap_or(0.0),
                    p.weighted_f1.mean,
                    p.weighted_f1.mean + p.weighted_f1.std.unwrap_or(0.0),
                    colour,
                    6,
                )
            }))?;
        }
        // The majority-class baseline, once per distinct value (runs on the
        // same data share it).
        let mut baselines: Vec<f64> = reports
            .iter()
            .map(|r| r.majority_baseline.weighted_f1.mean)
            .collect();
        baselines.sort_by(f64::total_cmp);
        baselines.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        for baseline in baselines {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, baseline), (max_rate, baseline)],
                    6,
                    4,
                    BLACK.mix(0.6).stroke_width(1),
                ))?
                .label(format!("majority class ({baseline:.1})"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6).stroke_width(1))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| crate::Error::Plot(format!("{}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmer_data::synthetic::{SyntheticConfig, generate};

    #[test]
    fn conditions_cover_singles_and_pairs() {
        let names: Vec<String> = removal_sets(&[Modality::Text, Modality::Audio, Modality::Face])
            .iter()
            .map(|r| condition_name(r))
            .collect();
        assert_eq!(
            names,
            [
                "full",
                "no text",
                "no audio",
                "no face",
                "no text + audio",
                "no text + face",
                "no audio + face"
            ]
        );
        assert_eq!(removal_sets(&[Modality::Text, Modality::Audio]).len(), 3);
    }

    #[test]
    fn random_removal_keeps_a_modality_and_follows_the_rate() {
        let corpus = generate(&SyntheticConfig {
            dialogues: [0, 0, 30],
            ..Default::default()
        });
        let test = corpus.split(Split::Test);
        let modalities = [Modality::Text, Modality::Audio, Modality::Face];
        for rate in [0.0, 0.3, 0.9] {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let (masked, removed, total) = drop_at_random(test, &modalities, rate, &mut rng);
            assert!(
                masked
                    .iter()
                    .flat_map(|d| &d.utterances)
                    .all(|u| { modalities.iter().any(|m| u.features.contains_key(m)) })
            );
            let share = removed as f64 / total as f64;
            // At most `rate`; close to it until last modalities are kept.
            assert!(share <= rate + 0.05, "{rate}: {share}");
            if rate <= 0.3 {
                assert!((share - rate).abs() < 0.06, "{rate}: {share}");
            }
            // Seeded: the same draw again.
            let mut again = ChaCha8Rng::seed_from_u64(1);
            assert_eq!(
                drop_at_random(test, &modalities, rate, &mut again).1,
                removed
            );
        }
    }
}
