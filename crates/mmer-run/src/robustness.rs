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
//! training split's majority class for every turn, or, for a multi-label
//! run, every label on every turn (the predictor weighted F1 rewards). A
//! missing modality is removed from the turn (it becomes data the model
//! masks; see `mmer_train::batcher`), never replaced by zeros.
//!
//! Single-label runs are scored by weighted F1 and accuracy. Multi-label
//! runs by their fused head decided at 0.5 (the decision their validation
//! selected on): macro F1 (the headline, drawn on the chart), weighted F1
//! and subset accuracy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmer_core::{Dialogue, Label, Modality, Split};
use mmer_eval::multi_label::{MultiLabelReport, MultiLabelScores};
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

/// Metrics over a run's seeds, in percent (mean and sample std).
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// Weighted F1.
    pub weighted_f1: Aggregate,
    /// Accuracy; subset accuracy for a multi-label run.
    pub accuracy: Aggregate,
    /// Macro F1: multi-label runs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<Aggregate>,
}

impl Scores {
    /// Mean and standard deviation of each metric over `seeds` (fractions).
    ///
    /// # Errors
    /// No seeds.
    fn over(seeds: &[SeedScore]) -> Result<Self> {
        let macro_f1 = match seeds.iter().map(|s| s.macro_f1).collect::<Option<Vec<_>>>() {
            Some(values) if !values.is_empty() => Some(percent(values.into_iter())?),
            _ => None,
        };
        Ok(Self {
            weighted_f1: percent(seeds.iter().map(|s| s.weighted_f1))?,
            accuracy: percent(seeds.iter().map(|s| s.accuracy))?,
            macro_f1,
        })
    }

    /// The score a run is judged by: macro F1 for a multi-label run,
    /// weighted F1 otherwise.
    pub fn headline(&self) -> &Aggregate {
        self.macro_f1.as_ref().unwrap_or(&self.weighted_f1)
    }
}

/// One test-time condition's scores over the run's seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionScore {
    /// `full`, `no text`, `no audio + face`, …
    pub name: String,
    /// The modalities removed from every turn.
    pub removed: Vec<Modality>,
    /// The metrics over the seeds.
    #[serde(flatten)]
    pub scores: Scores,
}

/// One rate of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Probability that a modality of a turn is removed.
    pub rate: f64,
    /// Share of (turn, modality) cells actually removed (below `rate` where
    /// a turn's last modality was kept).
    pub removed_share: f64,
    /// The metrics over the seeds, each seed's score the mean over the
    /// draws.
    #[serde(flatten)]
    pub scores: Scores,
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
    /// Whether the run predicts label sets (scored at 0.5 on its fused
    /// head).
    pub multi_label: bool,
    /// Training seeds scored.
    pub seeds: Vec<u64>,
    /// The fixed conditions.
    pub conditions: Vec<ConditionScore>,
    /// Conditions left out because they would leave a turn with nothing.
    pub skipped: Vec<String>,
    /// The random missing-rate sweep.
    pub sweep: Vec<SweepPoint>,
    /// A trivial baseline: the training split's majority class on every
    /// turn, or every label on every turn for a multi-label run.
    pub baseline: ConditionScore,
}

impl RobustnessReport {
    /// What [`Scores::headline`] measures.
    pub fn headline_metric(&self) -> &'static str {
        if self.multi_label {
            "macro F1"
        } else {
            "weighted F1"
        }
    }
}

/// One seed's scores under one condition, as fractions.
#[derive(Debug, Clone, Copy, Default)]
struct SeedScore {
    weighted_f1: f64,
    accuracy: f64,
    /// Multi-label runs only.
    macro_f1: Option<f64>,
}

impl From<&ClassificationReport> for SeedScore {
    fn from(r: &ClassificationReport) -> Self {
        Self {
            weighted_f1: r.weighted_f1,
            accuracy: r.accuracy,
            macro_f1: None,
        }
    }
}

impl From<&MultiLabelReport> for SeedScore {
    fn from(r: &MultiLabelReport) -> Self {
        Self {
            weighted_f1: r.weighted_f1,
            accuracy: r.subset_accuracy,
            macro_f1: Some(r.macro_f1),
        }
    }
}

impl SeedScore {
    /// `self + other`, field by field.
    fn add(self, other: Self) -> Self {
        Self {
            weighted_f1: self.weighted_f1 + other.weighted_f1,
            accuracy: self.accuracy + other.accuracy,
            macro_f1: other.macro_f1.map(|m| self.macro_f1.unwrap_or(0.0) + m),
        }
    }

    /// `self / n`, field by field.
    fn mean_of(self, n: f64) -> Self {
        Self {
            weighted_f1: self.weighted_f1 / n,
            accuracy: self.accuracy / n,
            macro_f1: self.macro_f1.map(|m| m / n),
        }
    }
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
    let multi_label = corpus.labels.multi_label;
    let score = |condition: &dyn Fn(&[Dialogue]) -> Vec<Dialogue>| {
        models
            .iter()
            .map(|(checkpoint, model, inputs)| {
                let inputs = condition(inputs);
                Ok(if multi_label {
                    SeedScore::from(
                        &checkpoint
                            .evaluate_multi_label(model, &inputs)?
                            .at_half
                            .report,
                    )
                } else {
                    SeedScore::from(&checkpoint.evaluate(model, &inputs)?)
                })
            })
            .collect::<Result<Vec<SeedScore>>>()
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
        let scores = Scores::over(&score(&|inputs| without(inputs, &removed))?)?;
        conditions.push(ConditionScore {
            name,
            removed,
            scores,
        });
    }

    let mut sweep = Vec::new();
    for &rate in &config.rates {
        // Per seed: the scores summed over the draws.
        let mut sums = vec![SeedScore::default(); models.len()];
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
            for (sum, scored) in sums.iter_mut().zip(score(&|inputs| mask(inputs).0)?) {
                *sum = sum.add(scored);
            }
        }
        tracing::info!(rate, "sweep point scored");
        let means: Vec<SeedScore> = sums
            .iter()
            .map(|s| s.mean_of(config.draws as f64))
            .collect();
        sweep.push(SweepPoint {
            rate,
            removed_share: removed_cells as f64 / cells.max(1) as f64,
            scores: Scores::over(&means)?,
        });
    }

    let num_classes = corpus.labels.num_classes();
    let (name, trivial) = if multi_label {
        let every = every_label(dialogues, num_classes)?;
        ("every label", SeedScore::from(&every.report))
    } else {
        let majority = majority_report(corpus.split(Split::Train), dialogues, num_classes)?;
        ("majority class", SeedScore::from(&majority))
    };
    let baseline = ConditionScore {
        name: name.into(),
        removed: Vec::new(),
        scores: Scores::over(&[trivial])?,
    };
    Ok(RobustnessReport {
        run: run.to_path_buf(),
        config: config.clone(),
        modalities,
        multi_label,
        seeds: run_config.train.seeds.clone(),
        conditions,
        skipped,
        sweep,
        baseline,
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

/// The scores of predicting every label on every labelled turn of
/// `dialogues` (multi-label).
fn every_label(dialogues: &[Dialogue], num_labels: usize) -> Result<MultiLabelScores> {
    let gold: Vec<&[bool]> = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter_map(|u| match &u.label {
            Some(Label::Multi(bits)) => Some(bits.as_slice()),
            _ => None,
        })
        .collect();
    Ok(MultiLabelScores::all_positive(&gold, num_labels)?)
}

/// A readable table of one report: conditions, the sweep, the baseline.
pub fn table(report: &RobustnessReport) -> String {
    let multi = report.multi_label;
    let mut out = format!(
        "{} on {} ({} seeds; {}, %, mean ± std{})\n",
        report.run.display(),
        report.config.split,
        report.seeds.len(),
        if multi {
            "macro F1 / weighted F1 / subset accuracy"
        } else {
            "weighted F1 / accuracy"
        },
        if multi { "; labels decided at 0.5" } else { "" }
    );
    let columns = |scores: &Scores| {
        let mut cells = scores
            .macro_f1
            .as_ref()
            .map(mean_std)
            .into_iter()
            .collect::<Vec<_>>();
        cells.push(mean_std(&scores.weighted_f1));
        cells.push(mean_std(&scores.accuracy));
        cells.join(" | ")
    };
    let (names, rules) = if multi {
        ("macro F1 | weighted F1 | subset accuracy", "|---|---|---")
    } else {
        ("weighted F1 | accuracy", "|---|---")
    };
    out.push_str(&format!("| condition | {names} |\n|---{rules}|\n"));
    let row = |c: &ConditionScore| format!("| {} | {} |\n", c.name, columns(&c.scores));
    for c in &report.conditions {
        out.push_str(&row(c));
    }
    out.push_str(&row(&report.baseline));
    for s in &report.skipped {
        out.push_str(&format!(
            "| {s} | skipped: a turn would have no modality |\n"
        ));
    }
    out.push_str(&format!(
        "\n| missing rate | cells removed | {names} |\n|---|---{rules}|\n"
    ));
    for p in &report.sweep {
        out.push_str(&format!(
            "| {:.2} | {:.3} | {} |\n",
            p.rate,
            p.removed_share,
            columns(&p.scores)
        ));
    }
    out
}

/// Draws the sweeps of several runs on one chart (the headline metric —
/// weighted F1, or macro F1 for multi-label runs — against the missing
/// rate, ± one standard deviation as error bars, the trivial baseline
/// dashed, once per distinct value) and writes it as SVG.
///
/// # Errors
/// No reports, single- and multi-label runs together (their metrics differ),
/// or the file cannot be written.
pub fn plot_sweeps(reports: &[RobustnessReport], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    ensure!(!reports.is_empty(), "nothing to plot");
    let metric = reports[0].headline_metric();
    if let Some(other) = reports.iter().find(|r| r.headline_metric() != metric) {
        bail!(
            "{} is scored by {} and {} by {}: draw single- and multi-label runs on separate charts",
            reports[0].run.display(),
            metric,
            other.run.display(),
            other.headline_metric()
        );
    }
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
                .map(|p| p.scores.headline().mean + p.scores.headline().std.unwrap_or(0.0))
        })
        .fold(0.0f64, f64::max);
    let y_max = (top / 10.0).ceil() * 10.0 + 5.0;
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{metric} as modalities go missing at test time"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.02..max_rate + 0.02, 0.0..y_max.min(100.0))?;
        chart
            .configure_mesh()
            .x_desc("probability that a turn's modality is missing")
            .y_desc(format!("{metric} (%)"))
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
                .map(|p| (p.rate, p.scores.headline().mean))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            chart.draw_series(report.sweep.iter().map(|p| {
                let (mean, std) = (
                    p.scores.headline().mean,
                    p.scores.headline().std.unwrap_or(0.0),
                );
                ErrorBar::new_vertical(p.rate, mean - std, mean, mean + std, colour, 6)
            }))?;
        }
        // The trivial baseline, once per distinct value (runs on the same
        // data share it).
        let mut baselines: Vec<(f64, &str)> = reports
            .iter()
            .map(|r| (r.baseline.scores.headline().mean, r.baseline.name.as_str()))
            .collect();
        baselines.sort_by(|a, b| a.0.total_cmp(&b.0));
        baselines.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-9);
        for (baseline, name) in baselines {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, baseline), (max_rate, baseline)],
                    6,
                    4,
                    BLACK.mix(0.6).stroke_width(1),
                ))?
                .label(format!("{name} ({baseline:.1})"))
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

    /// The conditions of a text, audio and face run, in report order.
    const THREE_MODALITY_CONDITIONS: [&str; 7] = [
        "full",
        "no text",
        "no audio",
        "no face",
        "no text + audio",
        "no text + face",
        "no audio + face",
    ];

    #[test]
    fn conditions_cover_singles_and_pairs() {
        let names: Vec<String> = removal_sets(&[Modality::Text, Modality::Audio, Modality::Face])
            .iter()
            .map(|r| condition_name(r))
            .collect();
        assert_eq!(names, THREE_MODALITY_CONDITIONS);
        assert_eq!(removal_sets(&[Modality::Text, Modality::Audio]).len(), 3);
    }

    /// A multi-label run (SeMuL-PCD over three modalities) is scored like a
    /// single-label one, by its fused head at 0.5: macro F1 leads, the full
    /// condition is what `mmer eval` measures, every label is the baseline,
    /// and its chart cannot mix with a single-label run's.
    #[test]
    fn a_multi_label_run_is_scored_by_macro_f1() {
        use mmer_data::synthetic_multi::MultiLabelSyntheticConfig;
        let dir =
            std::env::temp_dir().join(format!("mmer-robustness-multi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = crate::DataConfig {
            synthetic_multi_label: Some(MultiLabelSyntheticConfig {
                clips: [48, 16, 24],
                speakers: [8, 4, 4],
                ..Default::default()
            }),
            ..crate::DataConfig::new(crate::DatasetKind::SyntheticMultiLabel, None)
        };
        let mut train = mmer_train::TrainConfig {
            modalities: vec![Modality::Text, Modality::Audio, Modality::Face],
            max_epochs: 2,
            batch_size: 8,
            seeds: vec![0, 1],
            ..Default::default()
        };
        train.model.fusion = mmer_models::Fusion::SemulPcd;
        train.model.context = mmer_models::ContextMode::None;
        train.model.temporal = false;
        train.model.d_modality = 16;
        train.model.d_model = 16;
        train.model.d_hidden = 16;
        let run = dir.join("run");
        crate::train_run(
            &RunConfig { data, train },
            &run,
            false,
            crate::Existing::Refuse,
        )
        .unwrap();
        let config = RobustnessConfig {
            rates: vec![0.0, 0.5],
            draws: 1,
            ..Default::default()
        };
        let report = evaluate_robustness(&run, &config).unwrap();
        assert!(report.multi_label && report.headline_metric() == "macro F1");
        let names: Vec<&str> = report.conditions.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, THREE_MODALITY_CONDITIONS);
        let eval = crate::evaluate::evaluate_multi_label_run(&run, Split::Test).unwrap();
        let full = &report.conditions[0];
        for (ours, theirs) in [
            (full.scores.headline(), &eval.at_half.report.macro_f1),
            (&full.scores.weighted_f1, &eval.at_half.report.weighted_f1),
            (&full.scores.accuracy, &eval.at_half.report.subset_accuracy),
        ] {
            assert!(
                (ours.mean - 100.0 * theirs.mean).abs() < 1e-9,
                "{ours:?} {theirs:?}"
            );
        }
        assert_eq!(
            report.sweep[0].scores.headline().mean,
            full.scores.headline().mean
        );
        assert!(report.sweep[1].removed_share > 0.3);
        // Predicting every label recalls everything: its weighted F1 is
        // what the headline must not be judged by.
        assert_eq!(report.baseline.name, "every label");
        let every = &report.baseline.scores;
        assert!(every.headline().mean > 0.0 && every.weighted_f1.mean >= every.headline().mean);
        let text = table(&report);
        assert!(
            text.contains("| condition | macro F1 | weighted F1 | subset accuracy |")
                && text.contains("| every label | "),
            "{text}"
        );
        let chart = dir.join("multi.svg");
        plot_sweeps(std::slice::from_ref(&report), &chart).unwrap();
        assert!(
            std::fs::read_to_string(&chart)
                .unwrap()
                .contains("macro F1")
        );
        let mut single = report.clone();
        single.multi_label = false;
        let err = plot_sweeps(&[report, single], &chart)
            .unwrap_err()
            .to_string();
        assert!(err.contains("separate charts"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
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
