//! Multi-label training and evaluation (ElderReact, CMU-MOSEI, a user's
//! own multi-label set): the same loop as single-label runs
//! ([`crate::trainer`]'s `fit`), with binary cross-entropy per label and,
//! for SeMuL-PCD, its calibration, NCE and distillation terms
//! (`trainer::batch_loss`).
//!
//! Model selection: the validation **macro F1** of the fused head at the
//! fixed threshold 0.5 — not the weighted F1, which a model maximises by
//! predicting every label (methods-detail §2; issue 16). After training,
//! each head's per-label thresholds are tuned on validation
//! ([`mmer_eval::multi_label::tune_thresholds`]) and every split is scored
//! both at 0.5 and at the tuned thresholds. With mode heads (SeMuL-PCD's
//! peers) each modality's head is scored too, on the turns that have that
//! modality.

use std::time::Instant;

use burn::tensor::activation::sigmoid;
use mmer_core::{Label, Modality};
use mmer_eval::multi_label::{MultiLabelScores, decide, macro_f1, tune_thresholds};
use mmer_models::EmotionModel;
use serde::{Deserialize, Serialize};

use crate::batcher::EncodedDialogue;
use crate::trainer::{PreparedData, fit, predict_with, scatter, training_device};
use crate::{Error, Result, TrainConfig};

/// One epoch of a multi-label learning curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation macro F1 of the fused head at threshold 0.5.
    pub valid_macro_f1: f64,
}

/// One head's scores on one split, at 0.5 and at tuned thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadScores {
    /// Every label decided at probability ≥ 0.5.
    pub at_half: MultiLabelScores,
    /// Every label decided at its threshold tuned on validation.
    pub tuned: MultiLabelScores,
}

/// A peer's (mode head's) scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerScores {
    /// The peer's modality.
    pub modality: Modality,
    /// On the validation turns that have the modality.
    pub valid: HeadScores,
    /// On the test turns that have the modality.
    pub test: Option<HeadScores>,
}

/// What one seed of a multi-label run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultiLabelOutcome {
    /// The seed.
    pub seed: u64,
    /// Epoch whose model was kept (best validation macro F1 at 0.5).
    pub best_epoch: usize,
    /// The fused head's per-label thresholds, tuned on validation.
    pub thresholds: Vec<f32>,
    /// The fused head on validation.
    pub valid: HeadScores,
    /// The fused head on test (absent without a test split).
    pub test: Option<HeadScores>,
    /// Each mode head (SeMuL-PCD's peers), in model modality order; empty
    /// without mode heads.
    pub peers: Vec<PeerScores>,
    /// Learning curve.
    pub history: Vec<MultiLabelEpoch>,
    /// Wall-clock training time in seconds.
    pub train_seconds: f64,
}

/// Gold bits and one head's probabilities, a row per labelled turn.
#[derive(Debug, Clone, Default)]
struct Scored {
    gold: Vec<Vec<bool>>,
    probs: Vec<Vec<f32>>,
}

/// The labelled turns of a split, scored by every head.
struct SplitProbabilities {
    /// The fused head on every labelled turn.
    fused: Scored,
    /// Each mode head on the labelled turns that have its modality.
    peers: Vec<Scored>,
}

/// Label probabilities (sigmoid of each head's logits) of every labelled
/// turn of `dialogues`.
///
/// # Errors
/// A single-label turn (the batcher's kind check makes this unreachable
/// from [`PreparedData`]).
fn probabilities(
    model: &EmotionModel,
    dialogues: &[EncodedDialogue],
    data: &PreparedData,
    with_peers: bool,
) -> Result<SplitProbabilities> {
    let device = training_device().inner();
    let modalities = data.layout.modalities.len();
    let mut fused = vec![Vec::new(); dialogues.len()];
    let mut peers: Vec<Vec<Vec<Vec<f32>>>> = Vec::new();
    predict_with(dialogues, &data.layout, 32, &device, |batch, chunk| {
        let (logits, modes) = match with_peers {
            true => model.forward_with_modes(&batch.input),
            false => (model.forward(&batch.input), Vec::new()),
        };
        scatter(&sigmoid(logits), chunk, dialogues, &mut fused);
        peers.resize(modes.len(), vec![Vec::new(); dialogues.len()]);
        for (m, logits) in modes.into_iter().enumerate() {
            scatter(&sigmoid(logits), chunk, dialogues, &mut peers[m]);
        }
    });
    let mut out = SplitProbabilities {
        fused: Scored::default(),
        peers: vec![Scored::default(); peers.len()],
    };
    for (i, d) in dialogues.iter().enumerate() {
        for (t, label) in d.labels.iter().enumerate() {
            let bits = match label {
                None => continue,
                Some(Label::Multi(bits)) => bits,
                Some(Label::Single(_)) => {
                    return Err(Error::Data(format!(
                        "dialogue {} turn {t}: a single-label target in a multi-label evaluation",
                        d.id
                    )));
                }
            };
            out.fused.gold.push(bits.clone());
            out.fused.probs.push(fused[i][t].clone());
            for (m, peer) in out.peers.iter_mut().enumerate() {
                if d.present[t * modalities + m] {
                    peer.gold.push(bits.clone());
                    peer.probs.push(peers[m][i][t].clone());
                }
            }
        }
    }
    Ok(out)
}

/// The scores of a head at 0.5 and at `thresholds`.
fn head_scores(head: &Scored, num_labels: usize, thresholds: &[f32]) -> Result<HeadScores> {
    score_head(&head.gold, &head.probs, num_labels, thresholds)
}

/// A head's scores: `probs` (a row of label probabilities per turn)
/// against the gold bits, decided at 0.5 and at `thresholds`.
///
/// # Errors
/// Mismatched rows or widths, a probability outside [0, 1], no turns.
pub fn score_head(
    gold: &[Vec<bool>],
    probs: &[Vec<f32>],
    num_labels: usize,
    thresholds: &[f32],
) -> Result<HeadScores> {
    Ok(HeadScores {
        at_half: MultiLabelScores::new(gold, probs, num_labels, &vec![0.5; num_labels])?,
        tuned: MultiLabelScores::new(gold, probs, num_labels, thresholds)?,
    })
}

/// Validation macro F1 of the fused head at 0.5: the selection score.
fn selection_score(model: &EmotionModel, data: &PreparedData) -> Result<f64> {
    let fused = probabilities(model, &data.valid, data, false)?.fused;
    let n = data.labels.num_classes();
    let decided = decide(&fused.probs, &vec![0.5; n])?;
    Ok(macro_f1(&fused.gold, &decided, n)?)
}

/// Trains one multi-label model with `seed`, selected on the validation
/// macro F1 at 0.5; returns its outcome and the model.
///
/// # Errors
/// A single-label set, data problems found while batching or scoring.
pub fn train_seed_multi_label(
    data: &PreparedData,
    config: &TrainConfig,
    seed: u64,
    show_progress: bool,
) -> Result<(MultiLabelOutcome, EmotionModel)> {
    if !data.labels.multi_label {
        return Err(Error::Data(format!(
            "the label set {} is single-label: train it with train_seed",
            data.labels.name
        )));
    }
    let started = Instant::now();
    let n = data.labels.num_classes();
    let fitted = fit(data, config, seed, show_progress, "macro F1", |model| {
        selection_score(model, data)
    })?;
    let model = fitted.model;
    let valid = probabilities(&model, &data.valid, data, true)?;
    let test = match data.test.is_empty() {
        true => None,
        false => Some(probabilities(&model, &data.test, data, true)?),
    };
    let thresholds = tune_thresholds(&valid.fused.gold, &valid.fused.probs, n)?;
    let mut peers = Vec::new();
    for (m, peer) in valid.peers.iter().enumerate() {
        let tuned = tune_thresholds(&peer.gold, &peer.probs, n)?;
        peers.push(PeerScores {
            modality: data.layout.modalities[m].0,
            valid: head_scores(peer, n, &tuned)?,
            test: match &test {
                Some(test) => Some(head_scores(&test.peers[m], n, &tuned)?),
                None => None,
            },
        });
    }
    let outcome = MultiLabelOutcome {
        seed,
        best_epoch: fitted.best_epoch,
        valid: head_scores(&valid.fused, n, &thresholds)?,
        test: match &test {
            Some(test) => Some(head_scores(&test.fused, n, &thresholds)?),
            None => None,
        },
        thresholds,
        peers,
        history: fitted
            .history
            .into_iter()
            .map(|(epoch, train_loss, valid_macro_f1)| MultiLabelEpoch {
                epoch,
                train_loss,
                valid_macro_f1,
            })
            .collect(),
        train_seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        seed,
        best_epoch = outcome.best_epoch,
        valid_macro_f1 = outcome.valid.at_half.report.macro_f1,
        "seed finished"
    );
    Ok((outcome, model))
}

/// The gold bits of every labelled turn of `dialogues` (for the trivial
/// baselines: the training prior, every label predicted).
pub fn gold_bits(dialogues: &[EncodedDialogue]) -> Vec<Vec<bool>> {
    dialogues
        .iter()
        .flat_map(|d| d.labels.iter().flatten())
        .filter_map(|label| match label {
            Label::Multi(bits) => Some(bits.clone()),
            Label::Single(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmer_core::{Corpus, Split};
    use mmer_data::synthetic_multi::{MultiLabelSyntheticConfig, generate};
    use mmer_models::{ContextMode, Fusion};

    fn corpus() -> Corpus {
        generate(&MultiLabelSyntheticConfig {
            clips: [96, 48, 48],
            speakers: [8, 4, 4],
            ..Default::default()
        })
    }

    fn config(fusion: Fusion) -> TrainConfig {
        let mut config = TrainConfig {
            modalities: vec![Modality::Text, Modality::Audio, Modality::Face],
            max_epochs: 3,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let model = &mut config.model;
        model.fusion = fusion;
        model.context = ContextMode::None;
        model.temporal = false;
        model.d_modality = 16;
        model.man_heads = 2;
        model.d_model = 32;
        model.peers.layers = 1;
        config
    }

    /// SeMuL-PCD trains on multi-label clips and reports the fused head and
    /// every peer on both splits, deterministically under the seed; the
    /// thresholds come from validation.
    #[test]
    fn semul_pcd_trains_and_reports_the_fused_head_and_every_peer() {
        let _serial = crate::training_lock();
        let corpus = corpus();
        let config = config(Fusion::SemulPcd);
        let data = PreparedData::new(&corpus, &config).unwrap();
        let (outcome, _) = train_seed_multi_label(&data, &config, 3, false).unwrap();
        assert_eq!(outcome.thresholds.len(), 6);
        assert_eq!(outcome.history.len(), 3);
        assert!(outcome.history.iter().all(|e| e.train_loss.is_finite()));
        let test = outcome.test.as_ref().expect("a test split");
        assert_eq!(
            test.at_half.report.num_samples,
            corpus.num_utterances(Split::Test)
        );
        assert_eq!(test.tuned.thresholds, outcome.thresholds);
        let modalities: Vec<Modality> = outcome.peers.iter().map(|p| p.modality).collect();
        assert_eq!(modalities, config.modalities);
        // The kept epoch is the one with the best validation macro F1.
        let best = outcome.history[outcome.best_epoch - 1].valid_macro_f1;
        assert!(outcome.history.iter().all(|e| e.valid_macro_f1 <= best));
        assert_eq!(outcome.valid.at_half.report.macro_f1, best);
        let (again, _) = train_seed_multi_label(&data, &config, 3, false).unwrap();
        assert_eq!(
            serde_json::to_value(&again.test).unwrap(),
            serde_json::to_value(&outcome.test).unwrap()
        );
    }

    /// The BCE baseline: any fusion trains on a multi-label set; without
    /// mode heads there are no peers.
    #[test]
    fn a_concat_model_trains_with_binary_cross_entropy() {
        let _serial = crate::training_lock();
        let corpus = corpus();
        let config = config(Fusion::Concat);
        let data = PreparedData::new(&corpus, &config).unwrap();
        let (outcome, _) = train_seed_multi_label(&data, &config, 0, false).unwrap();
        assert!(outcome.peers.is_empty());
        assert!(outcome.valid.at_half.report.macro_f1 > 0.0);
        let err = crate::train_seed(&data, &config, 0, false).unwrap_err();
        assert!(err.to_string().contains("multi-label"), "{err}");
    }

    /// A multi-label checkpoint predicts the set of labels at or above
    /// their thresholds, with the probability of exactly that set.
    #[test]
    fn a_checkpoint_predicts_label_sets_at_its_thresholds() {
        let _serial = crate::training_lock();
        let corpus = corpus();
        let mut config = config(Fusion::Concat);
        config.max_epochs = 1;
        let data = PreparedData::new(&corpus, &config).unwrap();
        let (outcome, model) = train_seed_multi_label(&data, &config, 0, false).unwrap();
        let checkpoint = crate::Checkpoint::new(
            &corpus.name,
            None,
            &config,
            0,
            outcome.best_epoch,
            data.layout.clone(),
            data.labels.clone(),
        )
        .with_thresholds(Some(vec![0.3, 0.4, 0.5, 0.5, 0.6, 0.7]));
        let test = corpus.split(Split::Test);
        let predictions = checkpoint.predict(&model, test).unwrap();
        assert_eq!(predictions.len(), test.len());
        for (p, d) in predictions.iter().zip(test) {
            let probs: Vec<f32> = p.probabilities.0.iter().map(|(_, x)| *x).collect();
            let thresholds = checkpoint.thresholds.as_ref().unwrap();
            let expected: Vec<&str> = mmer_data::synthetic_multi::CLASSES
                .iter()
                .zip(probs.iter().zip(thresholds))
                .filter_map(|(c, (p, t))| (p >= t).then_some(*c))
                .collect();
            assert_eq!(p.emotion, expected.join(";"));
            let exact: f32 = probs
                .iter()
                .zip(thresholds)
                .map(|(&p, t)| if p >= *t { p } else { 1.0 - p })
                .product();
            assert!((p.confidence - exact).abs() < 1e-6);
            let Some(Label::Multi(bits)) = &d.utterances[0].label else {
                panic!("multi-label gold expected");
            };
            assert_eq!(
                p.gold
                    .as_deref()
                    .map(|g| g.split(';').filter(|c| !c.is_empty()).count()),
                Some(bits.iter().filter(|&&b| b).count())
            );
        }
    }

    /// A label of the other kind than the set's is an error naming the
    /// utterance, both ways round.
    #[test]
    fn a_label_of_the_wrong_kind_names_the_utterance() {
        let mut multi = corpus();
        let u = &mut multi.splits.get_mut(&Split::Valid).unwrap()[2].utterances[0];
        u.label = Some(Label::Single(1));
        let id = u.id.clone();
        let err = PreparedData::new(&multi, &config(Fusion::Concat)).unwrap_err();
        assert!(err.to_string().contains(&id), "{err}");

        let mut single = mmer_data::synthetic::generate(&Default::default());
        let u = &mut single.splits.get_mut(&Split::Train).unwrap()[0].utterances[1];
        u.label = Some(Label::Multi(vec![true; 6]));
        let id = u.id.clone();
        let err = PreparedData::new(&single, &config(Fusion::Concat))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&id) && err.contains("single-label"), "{err}");
    }
}
