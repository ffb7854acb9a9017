//! The training loop: Adam, early stopping on the validation weighted F1,
//! keep only the best-validation model. Test data is evaluated once, with
//! the model the validation split selected.

use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use mmer_core::progress::Progress;
use mmer_core::{Corpus, Label, LabelSpace, Split};
use mmer_eval::{ClassificationReport, MELD_FIVE_CLASSES};
use mmer_models::EmotionModel;
use mmer_models::Fusion;
use mmer_models::blocks::{backend_seed, run_shards};
use mmer_models::loss::classification_loss;
use mmer_models::multi_label_loss::{
    bce_with_logits, bernoulli_distillation, calibration_loss, peer_teacher,
};
use mmer_models::multimodal::NceTargets;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batcher::{Batch, EncodedDialogue, FeatureLayout, Targets, encode, make_batch};
use crate::{Error, Result, TrainConfig};

/// A corpus encoded for one input layout.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// Input layout fitted on train.
    pub layout: FeatureLayout,
    /// Label space.
    pub labels: LabelSpace,
    /// Encoded training dialogues.
    pub train: Vec<EncodedDialogue>,
    /// Encoded validation dialogues.
    pub valid: Vec<EncodedDialogue>,
    /// Encoded test dialogues (may be empty).
    pub test: Vec<EncodedDialogue>,
}

impl PreparedData {
    /// Encodes every split of `corpus` with a layout fitted on its train split.
    ///
    /// # Errors
    /// Empty train or valid split, a label of the other kind than the
    /// label set's (a multi-label row in a single-label set or the
    /// reverse), class weighting on a multi-label set, missing modalities.
    pub fn new(corpus: &Corpus, config: &TrainConfig) -> Result<Self> {
        check_label_kinds(corpus)?;
        if corpus.labels.multi_label && config.class_weighting != crate::ClassWeighting::None {
            return Err(Error::Data(format!(
                "class_weighting applies to single-label sets; {} is multi-label (its loss weighs every label alike)",
                corpus.labels.name
            )));
        }
        for split in [Split::Train, Split::Valid] {
            if corpus.split(split).is_empty() {
                return Err(Error::Data(format!(
                    "{}: the {split} split is empty; model selection needs a validation split",
                    corpus.name
                )));
            }
        }
        let layout = FeatureLayout::fit(
            corpus.split(Split::Train),
            &config.modalities,
            config.model.fusion.uses_sequences(),
        )?;
        Ok(Self {
            train: encode(corpus.split(Split::Train), &layout)?,
            valid: encode(corpus.split(Split::Valid), &layout)?,
            test: encode(corpus.split(Split::Test), &layout)?,
            layout,
            labels: corpus.labels.clone(),
        })
    }

    fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.num_classes()];
        for label in self.train.iter().flat_map(|d| d.labels.iter().flatten()) {
            if let Some(n) = label.single().and_then(|c| counts.get_mut(c)) {
                *n += 1;
            }
        }
        counts
    }
}

/// Every label of `corpus` is of its label set's kind: one class in a
/// single-label set, a bit per class in a multi-label one.
///
/// # Errors
/// [`Error::Data`] naming the first utterance of the other kind.
fn check_label_kinds(corpus: &Corpus) -> Result<()> {
    let multi = corpus.labels.multi_label;
    for (split, dialogues) in &corpus.splits {
        for u in dialogues.iter().flat_map(|d| &d.utterances) {
            match (&u.label, multi) {
                (Some(Label::Multi(_)), false) => {
                    return Err(Error::Data(format!(
                        "{split} utterance {}: several classes in the single-label set {} (declare it multi-label to train on several classes per turn)",
                        u.id, corpus.labels.name
                    )));
                }
                (Some(Label::Single(_)), true) => {
                    return Err(Error::Data(format!(
                        "{split} utterance {}: one class index in the multi-label set {}",
                        u.id, corpus.labels.name
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// One epoch of the learning curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation weighted F1.
    pub valid_weighted_f1: f64,
}

/// What one seed produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Epoch whose model was kept (best validation weighted F1).
    pub best_epoch: usize,
    /// Validation metrics of the kept model.
    pub valid: ClassificationReport,
    /// Test metrics of the kept model (absent without a test split).
    pub test: Option<ClassificationReport>,
    /// Learning curve.
    pub history: Vec<EpochRecord>,
    /// Wall-clock training time in seconds.
    pub train_seconds: f64,
}

/// The CPU device models train on.
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// Class probabilities for every turn of every dialogue, in input order.
pub fn predict_probabilities(
    model: &EmotionModel,
    dialogues: &[EncodedDialogue],
    layout: &FeatureLayout,
    batch_size: usize,
    device: &Device,
) -> Vec<Vec<Vec<f32>>> {
    let mut out = vec![Vec::new(); dialogues.len()];
    predict_with(dialogues, layout, batch_size, device, |batch, chunk| {
        let probs = softmax(model.forward(&batch.input), 2); // [b, t, c]
        scatter(&probs, chunk, dialogues, &mut out);
    });
    out
}

/// Runs `step` on length-sorted batches of `dialogues` (less padding),
/// with the dialogue indices of each batch.
pub(crate) fn predict_with(
    dialogues: &[EncodedDialogue],
    layout: &FeatureLayout,
    batch_size: usize,
    device: &Device,
    mut step: impl FnMut(&Batch, &[usize]),
) {
    let mut order: Vec<usize> = (0..dialogues.len()).collect();
    order.sort_by_key(|&i| dialogues[i].len());
    for chunk in order.chunks(batch_size.max(1)) {
        let members: Vec<&EncodedDialogue> = chunk.iter().map(|&i| &dialogues[i]).collect();
        step(&make_batch(&members, layout, device), chunk);
    }
}

/// Puts the per-turn rows of `values` (`[b, t, c]`, batch `chunk`) back in
/// input order: `out[dialogue][turn]`.
pub(crate) fn scatter(
    values: &Tensor<3>,
    chunk: &[usize],
    dialogues: &[EncodedDialogue],
    out: &mut [Vec<Vec<f32>>],
) {
    let [b, t, c] = values.dims();
    let flat: Vec<f32> = values
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .expect("the CPU backend computes in f32");
    debug_assert_eq!(flat.len(), b * t * c);
    for (k, &i) in chunk.iter().enumerate() {
        out[i] = (0..dialogues[i].len())
            .map(|turn| flat[(k * t + turn) * c..(k * t + turn + 1) * c].to_vec())
            .collect();
    }
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Metrics of a model on labelled dialogues.
///
/// # Errors
/// A split without labelled turns.
pub fn evaluate(
    model: &EmotionModel,
    dialogues: &[EncodedDialogue],
    labels: &LabelSpace,
    layout: &FeatureLayout,
    device: &Device,
) -> Result<ClassificationReport> {
    let probs = predict_probabilities(model, dialogues, layout, 32, device);
    report(dialogues, &probs, labels)
}

/// The metrics of per-utterance probabilities `probs` against the gold
/// labels of `dialogues` (argmax decision).
pub(crate) fn report(
    dialogues: &[EncodedDialogue],
    probs: &[Vec<Vec<f32>>],
    labels: &LabelSpace,
) -> Result<ClassificationReport> {
    let (mut gold, mut pred) = (Vec::new(), Vec::new());
    for (d, p) in dialogues.iter().zip(probs) {
        for (label, turn) in d.labels.iter().zip(p) {
            if let Some(c) = label.as_ref().and_then(Label::single) {
                gold.push(c);
                pred.push(argmax(turn));
            }
        }
    }
    let report = ClassificationReport::new(&gold, &pred, labels.num_classes())?;
    // MELD also reports the 5-class weighted F1 of DESIGN §4.
    if labels.name == "meld" {
        return Ok(report.with_five_class(&MELD_FIVE_CLASSES)?);
    }
    Ok(report)
}

/// The training loss of one batch.
///
/// Single-label: the focal (or cross-entropy) loss of the fused head, plus,
/// with mode heads, the mean of the per-modality heads' losses (AMuSE
/// Eq. 5). Multi-label: binary cross-entropy on the fused head plus the
/// mean over the mode heads; SeMuL-PCD (thesis §3.2) weighs the peers'
/// mean by `peer_weight` and adds the calibration loss of the fused head
/// and the peer-ensemble → fusion distillation, each with its weight.
/// Either way the fusion's NCE (AM²-EmoJE's or SeMuL-PCD's) and
/// AM²-EmoJE's imputation error are added with their weights.
pub(crate) fn batch_loss(
    model: &EmotionModel,
    batch: &Batch,
    config: &TrainConfig,
    class_weights: Option<&Tensor<1>>,
) -> Tensor<1> {
    let spec = &config.model;
    let semul = spec.fusion == Fusion::SemulPcd;
    let out = model.forward_train(
        &batch.input,
        NceTargets {
            positives: spec.joint.positives,
            labels: &batch.turn_labels,
            face_body: face_body(&config.modalities),
        },
    );
    let (logits, mode_logits) = (out.logits, out.modes); // [b, t, c]
    let [b, t, c] = logits.dims();
    let rows_of = |logits: Tensor<3>, rows: &Tensor<1, Int>| {
        logits.reshape([b * t, c]).select(0, rows.clone()) // [n, c]
    };
    let score = |rows: Tensor<2>, targets: &Targets| match targets {
        Targets::Classes(classes) => {
            classification_loss(rows, classes.clone(), class_weights.cloned(), config.loss)
        }
        Targets::Bits(bits) => bce_with_logits(rows, bits.clone()),
    };
    let fused = rows_of(logits, &batch.labelled_rows);
    let mut loss = score(fused.clone(), &batch.targets);
    // Each modality's head is scored on the labelled turns that have that
    // modality; a head without such a turn in the batch adds nothing.
    let mut peers = Vec::new();
    let terms: Vec<Tensor<1>> = mode_logits
        .into_iter()
        .enumerate()
        .filter_map(|(m, logits)| {
            if semul {
                peers.push(rows_of(logits.clone(), &batch.labelled_rows));
            }
            match &batch.labelled_by_modality {
                None => Some(score(rows_of(logits, &batch.labelled_rows), &batch.targets)),
                Some(by_modality) => {
                    let (rows, targets) = &by_modality[m];
                    (rows.dims()[0] > 0).then(|| score(rows_of(logits, rows), targets))
                }
            }
        })
        .collect();
    let modes = terms.len();
    if let Some(sum) = terms.into_iter().reduce(|a, b| a + b) {
        let weight = if semul { spec.peers.peer_weight } else { 1.0 };
        loss = loss + sum.div_scalar(modes as f32).mul_scalar(weight as f32);
    }
    let mut extra = vec![
        (out.imputation, spec.joint.imputation_weight),
        (
            out.nce,
            if semul {
                spec.peers.nce_weight
            } else {
                spec.joint.nce_weight
            },
        ),
    ];
    if let (true, Targets::Bits(bits)) = (semul, &batch.targets) {
        let temperature = spec.peers.distill_temperature;
        let teacher = peer_teacher(&peers, batch.labelled_present.as_ref(), temperature);
        extra.push((
            Some(calibration_loss(fused.clone(), bits.clone())),
            spec.peers.calibration_weight,
        ));
        extra.push((
            Some(bernoulli_distillation(fused, teacher, temperature)),
            spec.peers.distill_weight,
        ));
    }
    extra
        .into_iter()
        .fold(loss, |loss, (term, weight)| match term {
            Some(term) if weight > 0.0 => loss + term.mul_scalar(weight as f32),
            _ => loss,
        })
}

/// The model indices of Face and Body when the model reads both.
fn face_body(modalities: &[mmer_core::Modality]) -> Option<(usize, usize)> {
    let at = |m| modalities.iter().position(|&x| x == m);
    Some((
        at(mmer_core::Modality::Face)?,
        at(mmer_core::Modality::Body)?,
    ))
}

/// One pass over the training dialogues in `order`, batched by
/// `config.batch_size`; returns the updated model and the mean batch loss.
///
/// With `config.data_parallel` = k > 1 each batch is cut into k shards whose
/// gradients are computed on their own threads (see `sharded_gradients`).
pub fn train_epoch(
    mut model: EmotionModel,
    optim: &mut ModuleOptimizer,
    data: &PreparedData,
    order: &[usize],
    config: &TrainConfig,
    class_weights: Option<&Tensor<1>>,
    device: &Device,
) -> (EmotionModel, f64) {
    let (mut loss_sum, mut loss_batches) = (0.0f64, 0usize);
    for chunk in order.chunks(config.batch_size.max(1)) {
        let step = match config.data_parallel {
            0 | 1 => batch_gradients(&model, data, chunk, None, config, class_weights, device),
            shards => sharded_gradients(&model, data, chunk, shards, config, class_weights, device),
        };
        let Some((loss, grads)) = step else {
            continue; // no labelled turn in this batch
        };
        loss_sum += loss;
        loss_batches += 1;
        model = optim.step(config.learning_rate, model, grads);
    }
    (model, loss_sum / loss_batches.max(1) as f64)
}

/// The loss of the batch of `dialogues` (scaled by `share`, if given) and
/// its gradients; `None` without labelled turns.
fn batch_gradients(
    model: &EmotionModel,
    data: &PreparedData,
    dialogues: &[usize],
    share: Option<f64>,
    config: &TrainConfig,
    class_weights: Option<&Tensor<1>>,
    device: &Device,
) -> Option<(f64, GradientsParams)> {
    let members: Vec<&EncodedDialogue> = dialogues.iter().map(|&i| &data.train[i]).collect();
    let batch = make_batch(&members, &data.layout, device);
    if batch.num_labelled == 0 {
        return None;
    }
    let mut loss = batch_loss(model, &batch, config, class_weights);
    if let Some(share) = share {
        loss = loss.mul_scalar(share as f32);
    }
    let value = loss.clone().into_scalar::<f32>() as f64;
    Some((value, GradientsParams::from_grads(loss.backward(), model)))
}

/// Refuses a multi-label set where a single-label model is asked for
/// ([`train_seed`], single-label evaluation).
///
/// # Errors
/// [`Error::Data`] naming the set.
pub(crate) fn ensure_single_label(labels: &LabelSpace) -> Result<()> {
    if labels.multi_label {
        return Err(Error::Data(format!(
            "the label set {} is multi-label; this step handles single-label sets only (multi-label runs train with `mmer train` and report multi-label metrics)",
            labels.name
        )));
    }
    Ok(())
}

/// [`batch_gradients`] of the batch `chunk`, computed as `shards` shards on
/// their own threads and summed in shard order.
///
/// Each shard's loss is scaled by its share of the batch's labelled turns
/// (class-weighted, as the loss's mean is), so the sum is the batch
/// gradient up to float summation order — for losses that are means over
/// turns. Batch-level terms are not: AM²-EmoJE's NCE contrasts the turns of
/// one shard only (fewer negatives) and its imputation error is averaged
/// per shard, so with it `data_parallel` changes the objective slightly,
/// not only the dropout masks. Each thread works on a fork of the
/// model — a fork has its own autodiff graph, so the backward passes do not
/// serialise on one graph's lock — and draws its dropout masks from its own
/// stream, seeded per batch from the backend generator: deterministic under
/// the seed, whatever the thread schedule.
fn sharded_gradients(
    model: &EmotionModel,
    data: &PreparedData,
    chunk: &[usize],
    shards: usize,
    config: &TrainConfig,
    class_weights: Option<&Tensor<1>>,
    device: &Device,
) -> Option<(f64, GradientsParams)> {
    let parts: Vec<&[usize]> = chunk.chunks(chunk.len().div_ceil(shards)).collect();
    let shares = shard_shares(data, &parts, class_weights)?;
    let stream = backend_seed(device);
    let jobs: Vec<_> = parts
        .iter()
        .zip(shares)
        .map(|(part, share)| {
            let worker = model.clone().fork(device);
            move || {
                batch_gradients(
                    &worker,
                    data,
                    part,
                    Some(share),
                    config,
                    class_weights,
                    device,
                )
            }
        })
        .collect();
    let results = run_shards(stream, jobs);
    let mut summed = GradientsAccumulator::<EmotionModel>::new();
    let mut loss = 0.0;
    for (value, grads) in results.into_iter().flatten() {
        loss += value;
        summed.accumulate(model, grads);
    }
    Some((loss, summed.grads()))
}

/// Each of `parts`' share of the labelled turns of the training dialogues
/// they hold, counted with the class weights as the loss's mean counts
/// them; `None` when they hold no labelled turn. Scaling each shard's loss
/// by its share makes the shards' gradients sum to the whole batch's.
pub(crate) fn shard_shares(
    data: &PreparedData,
    parts: &[&[usize]],
    class_weights: Option<&Tensor<1>>,
) -> Option<Vec<f64>> {
    let weights: Option<Vec<f32>> =
        class_weights.and_then(|w| w.to_data().try_to_vec::<f32>().ok());
    let mass = |dialogues: &mut dyn Iterator<Item = &usize>| -> f64 {
        dialogues
            .flat_map(|&i| data.train[i].labels.iter().flatten())
            .map(|label| match (label.single(), &weights) {
                (Some(c), Some(w)) => f64::from(w.get(c).copied().unwrap_or(0.0)),
                _ => 1.0,
            })
            .sum()
    };
    // The total is summed turn by turn, not from the parts' sums.
    let total = mass(&mut parts.iter().flat_map(|part| part.iter()));
    (total > 0.0).then(|| {
        parts
            .iter()
            .map(|part| mass(&mut part.iter()) / total)
            .collect()
    })
}

/// A fresh model and optimizer for `seed`, on the training device.
pub fn init_model(
    data: &PreparedData,
    config: &TrainConfig,
    device: &Device,
) -> (EmotionModel, ModuleOptimizer) {
    let model = config
        .model
        .model_config(data.layout.widths(), data.labels.num_classes())
        .init(device);
    let optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
        .init();
    (model, optim)
}

/// Class weights of the loss as a tensor, if configured.
pub fn class_weight_tensor(
    data: &PreparedData,
    config: &TrainConfig,
    device: &Device,
) -> Option<Tensor<1>> {
    config
        .class_weighting
        .weights(&data.class_counts())
        .map(|w| Tensor::<1>::from_floats(w.as_slice(), device))
}

/// Epoch progress labelled `<what> <seed>`: a bar on a terminal, periodic
/// log lines otherwise, nothing when not shown.
pub(crate) fn epoch_bar(show: bool, epochs: usize, what: &str, seed: u64) -> Progress {
    Progress::new(format!("{what} {seed}"), "epochs", epochs as u64, show)
}

/// The best-validation snapshot so far, and the early-stopping rule of the
/// training loops: stop once `patience` epochs (and at least `min_epochs`)
/// have passed without a better validation score.
pub(crate) struct BestEpoch<M> {
    best: Option<(f64, usize, M)>,
}

impl<M> Default for BestEpoch<M> {
    fn default() -> Self {
        Self { best: None }
    }
}

impl<M> BestEpoch<M> {
    /// Keeps `snapshot` when `score` beats every earlier epoch; returns
    /// whether training should stop.
    pub(crate) fn record(
        &mut self,
        epoch: usize,
        score: f64,
        snapshot: M,
        config: &TrainConfig,
    ) -> bool {
        if self.best.as_ref().is_none_or(|(best, _, _)| score > *best) {
            self.best = Some((score, epoch, snapshot));
            return false;
        }
        self.best
            .as_ref()
            .is_some_and(|(_, e, _)| epoch >= config.min_epochs && epoch - e >= config.patience)
    }

    /// The selected epoch (from 1) and its snapshot.
    ///
    /// # Errors
    /// No epoch was recorded (`max_epochs` is 0).
    pub(crate) fn into_best(self) -> Result<(usize, M)> {
        self.best
            .map(|(_, epoch, snapshot)| (epoch, snapshot))
            .ok_or_else(|| Error::Data("max_epochs is 0: nothing was trained".into()))
    }
}

/// The model validation selected, and how training went.
pub(crate) struct Fitted {
    /// The best-validation model (inference device).
    pub model: EmotionModel,
    /// Its epoch, from 1.
    pub best_epoch: usize,
    /// `(epoch, mean training loss, validation score)` per epoch.
    pub history: Vec<(usize, f64, f64)>,
}

/// Trains with `seed`, scoring each epoch's model on validation with
/// `score` (higher is better; its name labels the progress), and keeps the
/// best: early stopping after `patience` epochs without improvement, never
/// before `min_epochs`.
///
/// # Errors
/// `max_epochs` 0, pre-trained weights that do not load, and whatever
/// `score` reports.
pub(crate) fn fit(
    data: &PreparedData,
    config: &TrainConfig,
    seed: u64,
    show_progress: bool,
    score_name: &str,
    mut score: impl FnMut(&EmotionModel) -> Result<f64>,
) -> Result<Fitted> {
    let device = training_device();
    device.seed(seed);
    let (mut model, mut optim) = init_model(data, config, &device);
    if let Some(dir) = &config.init_from {
        let dir = dir.join(format!("seed-{seed}"));
        model = crate::Checkpoint::load_weights_into(&dir, model, &data.layout, &config.model)?;
        tracing::info!(seed, from = %dir.display(), "starting from pre-trained weights");
    }
    let class_weights = class_weight_tensor(data, config, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();

    let bar = epoch_bar(show_progress, config.max_epochs, "seed", seed);

    let mut best = BestEpoch::default();
    let mut history = Vec::new();
    for epoch in 1..=config.max_epochs {
        order.shuffle(&mut rng);
        let (trained, train_loss) = train_epoch(
            model,
            &mut optim,
            data,
            &order,
            config,
            class_weights.as_ref(),
            &device,
        );
        model = trained;
        let snapshot = model.valid();
        let valid = score(&snapshot)?;
        history.push((epoch, train_loss, valid));
        tracing::debug!(seed, epoch, train_loss, valid, score = score_name, "epoch");
        bar.set_message(format!("valid {score_name} {valid:.4}"));
        bar.inc(1);
        if best.record(epoch, valid, snapshot, config) {
            break;
        }
    }
    bar.finish();
    let (best_epoch, model) = best.into_best()?;
    Ok(Fitted {
        model,
        best_epoch,
        history,
    })
}

/// Trains one model with `seed`, selected on the validation weighted F1;
/// returns its outcome and the best-validation model.
///
/// # Errors
/// A multi-label set (see [`crate::multi_label::train_seed_multi_label`]),
/// data problems found while batching or scoring.
pub fn train_seed(
    data: &PreparedData,
    config: &TrainConfig,
    seed: u64,
    show_progress: bool,
) -> Result<(SeedOutcome, EmotionModel)> {
    ensure_single_label(&data.labels)?;
    let started = Instant::now();
    let layout = &data.layout;
    let eval_device = training_device().inner();
    let evaluate_on = |model: &EmotionModel, dialogues: &[EncodedDialogue]| {
        evaluate(model, dialogues, &data.labels, layout, &eval_device)
    };
    let fitted = fit(data, config, seed, show_progress, "wF1", |model| {
        Ok(evaluate_on(model, &data.valid)?.weighted_f1)
    })?;
    let valid = evaluate_on(&fitted.model, &data.valid)?;
    let test = match data.test.is_empty() {
        true => None,
        false => Some(evaluate_on(&fitted.model, &data.test)?),
    };
    tracing::info!(
        seed,
        best_epoch = fitted.best_epoch,
        valid_wf1 = valid.weighted_f1,
        "seed finished"
    );
    let outcome = SeedOutcome {
        seed,
        best_epoch: fitted.best_epoch,
        valid,
        test,
        history: fitted
            .history
            .into_iter()
            .map(|(epoch, train_loss, valid_weighted_f1)| EpochRecord {
                epoch,
                train_loss,
                valid_weighted_f1,
            })
            .collect(),
        train_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((outcome, fitted.model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmer_core::Modality;
    use mmer_data::synthetic::{SyntheticConfig, generate};

    fn tiny() -> (PreparedData, TrainConfig) {
        let corpus = generate(&SyntheticConfig {
            dialogues: [24, 8, 8],
            ..Default::default()
        });
        let config = TrainConfig {
            modalities: vec![Modality::Audio, Modality::Face],
            max_epochs: 4,
            patience: 2,
            batch_size: 8,
            ..TrainConfig::default()
        };
        (PreparedData::new(&corpus, &config).unwrap(), config)
    }

    fn tiny_amuse() -> (PreparedData, TrainConfig) {
        let corpus = generate(&SyntheticConfig {
            dialogues: [16, 6, 6],
            frames: (3, 6),
            ..Default::default()
        });
        let mut config = TrainConfig {
            modalities: vec![Modality::Text, Modality::Audio, Modality::Face],
            max_epochs: 2,
            patience: 2,
            batch_size: 8,
            ..TrainConfig::default()
        };
        config.model.fusion = mmer_models::Fusion::ManAf;
        config.model.d_modality = 8;
        config.model.man_layers = 1;
        config.model.man_heads = 2;
        config.model.d_model = 16;
        config.model.d_hidden = 8;
        config.pretrain.max_epochs = 2;
        config.pretrain.negatives = 32;
        (PreparedData::new(&corpus, &config).unwrap(), config)
    }

    /// One test (not several) because every seeded run shares the device's
    /// RNG: parallel tests would interleave their draws. It also checks
    /// data-parallel training.
    #[test]
    fn same_seed_same_model_and_selection_on_valid() {
        let _serial = crate::training_lock();
        // AMuSE: pre-train, then train from the pre-trained weights, twice.
        let (data, mut config) = tiny_amuse();
        let (pre, model) = crate::pretrain::pretrain_seed(&data, &config, 3, false).unwrap();
        assert!(pre.valid_loss.is_finite() && pre.history.len() == 2);
        let dir = tempfile::tempdir().unwrap();
        crate::Checkpoint::new(
            "synthetic",
            None,
            &config,
            3,
            1,
            data.layout.clone(),
            data.labels.clone(),
        )
        .save(&model, &dir.path().join("seed-3"))
        .unwrap();
        config.init_from = Some(dir.path().to_path_buf());
        let (a, _) = train_seed(&data, &config, 3, false).unwrap();
        let (b, _) = train_seed(&data, &config, 3, false).unwrap();
        assert_eq!(a.valid, b.valid);
        // Per-modality heads start fresh on top of the pre-trained weights.
        config.model.mode_heads = true;
        let (with_heads, _) = train_seed(&data, &config, 3, false).unwrap();
        assert_ne!(with_heads.history, a.history);
        config.model.mode_heads = false;
        // A different architecture cannot start from these weights.
        config.model.man_layers = 2;
        let err = train_seed(&data, &config, 3, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checkpoint.json") && err.contains("[model]"),
            "{err}"
        );

        let (data, mut config) = tiny();
        let (a, _) = train_seed(&data, &config, 7, false).unwrap();
        let (b, _) = train_seed(&data, &config, 7, false).unwrap();
        assert_eq!(a.valid, b.valid);
        assert_eq!(a.test, b.test);
        // Data-parallel shards draw their own dropout streams: reproducible too.
        config.data_parallel = 2;
        let (c, _) = train_seed(&data, &config, 7, false).unwrap();
        let (d, _) = train_seed(&data, &config, 7, false).unwrap();
        assert_eq!(c.history, d.history);
        assert_eq!(c.test, d.test);
        config.data_parallel = 1;
        // The kept model is the epoch with the best validation weighted F1 ...
        let best = a
            .history
            .iter()
            .max_by(|x, y| {
                x.valid_weighted_f1
                    .total_cmp(&y.valid_weighted_f1)
                    .then(y.epoch.cmp(&x.epoch))
            })
            .unwrap();
        assert_eq!(best.epoch, a.best_epoch);
        // ... and re-scoring it reproduces that epoch's number exactly.
        assert_eq!(best.valid_weighted_f1, a.valid.weighted_f1);

        assert_shards_sum_to_the_batch_gradient();
        assert_missing_modalities_train_and_predict();
    }

    /// Removes modalities from turns of every split: turn `k` (counted over
    /// the corpus) loses Face when `k % 3 == 0`, else Text + Audio when
    /// `k % 5 == 1`, so some turns keep only Face of the three.
    fn with_gaps(mut corpus: mmer_core::Corpus) -> mmer_core::Corpus {
        let mut k = 0;
        for dialogues in corpus.splits.values_mut() {
            for u in dialogues.iter_mut().flat_map(|d| d.utterances.iter_mut()) {
                if k % 3 == 0 {
                    u.features.remove(&Modality::Face);
                }
                if k % 5 == 1 && k % 3 != 0 {
                    u.features.remove(&Modality::Text);
                    u.features.remove(&Modality::Audio);
                }
                k += 1;
            }
        }
        corpus
    }

    /// Turns that lack modalities train every fusion (its mode heads too),
    /// and a trained model predicts turns that lack a modality it was
    /// trained with: finite distributions, for complete and gappy training.
    fn assert_missing_modalities_train_and_predict() {
        let (_, base) = tiny_amuse();
        let corpus = with_gaps(generate(&SyntheticConfig {
            dialogues: [16, 6, 6],
            frames: (3, 6),
            ..Default::default()
        }));
        let mut no_face = corpus.split(Split::Test).to_vec();
        no_face
            .iter_mut()
            .flat_map(|d| d.utterances.iter_mut())
            // Face goes wherever the turn keeps another modality.
            .filter(|u| {
                u.features.contains_key(&Modality::Text)
                    || u.features.contains_key(&Modality::Audio)
            })
            .for_each(|u| {
                u.features.remove(&Modality::Face);
            });
        for fusion in [
            mmer_models::Fusion::Early,
            mmer_models::Fusion::Concat,
            mmer_models::Fusion::ManAf,
            mmer_models::Fusion::Am2EmoJe,
        ] {
            let mut config = base.clone();
            config.model.fusion = fusion;
            config.model.mode_heads = fusion.uses_sequences();
            let data = PreparedData::new(&corpus, &config).unwrap();
            assert!(data.train.iter().any(|d| d.present.contains(&false)));
            let (outcome, model) = train_seed(&data, &config, 2, false).unwrap();
            let test = outcome.test.expect("a test split");
            assert!(test.weighted_f1.is_finite(), "{fusion:?}");
            let encoded = encode(&no_face, &data.layout).unwrap();
            let probs = predict_probabilities(&model, &encoded, &data.layout, 4, &Device::flex());
            for p in probs.iter().flatten() {
                let sum: f32 = p.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-4 && p.iter().all(|v| v.is_finite()),
                    "{fusion:?}: {p:?}"
                );
            }
        }
    }

    /// Without dropout, an epoch of k shards per batch takes the same steps
    /// as one thread: the shards' gradients sum to the batch gradient.
    fn assert_shards_sum_to_the_batch_gradient() {
        for (data, mut config) in [tiny(), tiny_amuse()] {
            config.model.dropout = 0.0;
            config.model.context_dropout = 0.0;
            config.model.mode_heads = config.model.fusion.uses_sequences();
            let device = training_device();
            let (model, _) = init_model(&data, &config, &device);
            let order: Vec<usize> = (0..data.train.len()).rev().collect();
            let logits = |shards: usize| {
                let config = TrainConfig {
                    data_parallel: shards,
                    ..config.clone()
                };
                let (_, mut optim) = init_model(&data, &config, &device);
                let (trained, loss) = train_epoch(
                    model.clone(),
                    &mut optim,
                    &data,
                    &order,
                    &config,
                    None,
                    &device,
                );
                let probs = predict_probabilities(
                    &trained.valid(),
                    &data.valid,
                    &data.layout,
                    8,
                    &device.clone().inner(),
                );
                (
                    loss,
                    probs.into_iter().flatten().flatten().collect::<Vec<f32>>(),
                )
            };
            let (loss_1, one) = logits(1);
            let (loss_3, three) = logits(3);
            assert!((loss_1 - loss_3).abs() < 1e-5, "{loss_1} vs {loss_3}");
            let max_diff = one
                .iter()
                .zip(&three)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(max_diff < 1e-4, "probabilities differ by {max_diff}");
        }
    }

    #[test]
    fn bad_sequences_are_errors_naming_the_utterance() {
        let corpus = generate(&SyntheticConfig {
            dialogues: [2, 1, 1],
            ..Default::default()
        });
        let (_, mut config) = tiny_amuse();
        config.modalities = vec![Modality::Audio, Modality::Face];
        let broken = |edit: &dyn Fn(&mut mmer_core::Utterance)| {
            let mut c = corpus.clone();
            let u = &mut c.splits.get_mut(&Split::Train).unwrap()[0].utterances[1];
            edit(u);
            let id = u.id.clone();
            (PreparedData::new(&c, &config).unwrap_err().to_string(), id)
        };
        let (err, id) = broken(&|u| {
            u.features.get_mut(&Modality::Face).unwrap().data[5] = f32::NAN;
        });
        assert!(
            err.contains(&id) && err.contains("face") && err.contains("NaN"),
            "{err}"
        );
        let (err, id) = broken(&|u| {
            u.features.insert(
                Modality::Audio,
                mmer_core::Features {
                    frames: 0,
                    dim: 24,
                    data: vec![],
                },
            );
        });
        assert!(err.contains(&id) && err.contains("empty"), "{err}");
        let (err, id) = broken(&|u| {
            u.features
                .insert(Modality::Face, mmer_core::Features::vector(vec![0.0; 3]));
        });
        assert!(err.contains(&id) && err.contains("3-d"), "{err}");
    }

    #[test]
    fn a_turn_without_any_modality_is_an_error_naming_it() {
        let mut corpus = generate(&SyntheticConfig {
            dialogues: [2, 1, 1],
            ..Default::default()
        });
        let train = corpus.splits.get_mut(&Split::Train).unwrap();
        let dialogue = train[0].id.clone();
        let u = &mut train[0].utterances[1];
        u.features.remove(&Modality::Face);
        let id = u.id.clone();
        let config = TrainConfig {
            modalities: vec![Modality::Face],
            ..TrainConfig::default()
        };
        let err = PreparedData::new(&corpus, &config).unwrap_err().to_string();
        assert!(
            err.contains(&id)
                && err.contains(&dialogue)
                && err.contains("turn 1")
                && err.contains("face"),
            "{err}"
        );
        // With a second modality the same turn is data, not an error.
        let config = TrainConfig {
            modalities: vec![Modality::Face, Modality::Audio],
            ..TrainConfig::default()
        };
        let data = PreparedData::new(&corpus, &config).unwrap();
        assert_eq!(data.train[0].present[2..4], [false, true]);
    }
}
