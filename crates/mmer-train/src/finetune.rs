//! Fine-tuning the top layers of the text encoder together with the context
//! model (issue 17), as `[train.finetune]` asks.
//!
//! The frozen candle encoder computes, once per run, the token states of
//! every utterance under the trained layers (`TokenStates`, layer
//! `pooled − k`). Each step then runs the `k` trained layers
//! ([`mmer_models::text_encoder::TextEncoder`], burn, the same weights) over
//! the batch's utterances — sorted by length and cut into chunks, so little
//! is padding — mean-pools them, standardises them with the frozen
//! features' training statistics (the run's
//! [`FeatureLayout`](crate::batcher::FeatureLayout)) and hands
//! them to the model in place of the frozen vectors. With a learning rate
//! of 0 the inputs are the frozen ones (up to float rounding): fine-tuning
//! starts from exactly what the foundation model reads.
//!
//! Optimisation, as BERT fine-tuning does it (Sun et al. 2019, "How to
//! Fine-Tune BERT for Text Classification"; EmoBERTa): AdamW per encoder
//! layer with layer-wise learning-rate decay, linear warm-up then linear
//! decay to 0 at `max_epochs`, gradient clipping, gradient accumulation.
//! The model above keeps the foundation's Adam and constant rate. Model
//! selection is the foundation's: early stopping on the validation
//! weighted F1, test scored once with the selected epoch. `data_parallel`
//! shards each batch's dialogues over threads, as the foundation does.

use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mmer_models::blocks::{backend_seed, run_shards};
use mmer_models::text_encoder::{EncoderLayer, TextEncoder, mean_pool};
use mmer_models::{EmotionModel, Fusion, UtteranceInput};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::batcher::{Batch, EncodedDialogue, make_batch};
use crate::config::FineTuneSpec;
use crate::trainer::{
    BestEpoch, EpochRecord, PreparedData, SeedOutcome, batch_loss, class_weight_tensor,
    ensure_single_label, epoch_bar, report, scatter, shard_shares, training_device,
};
use crate::{Error, Result, TrainConfig};

/// One turn's token states under the trained layers: the encoder input's
/// every token (the turn's own, then any conversation context), of which
/// the first `pooled` are the turn's and are pooled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnTokens {
    /// `[tokens · d]`.
    pub states: Vec<f32>,
    /// Leading tokens that pooling averages (all of them without context).
    pub pooled: usize,
}

/// Token states of every turn under the trained layers, aligned with
/// [`PreparedData`]'s dialogues: `split[dialogue][turn]`.
#[derive(Debug, Clone, Default)]
pub struct TokenStates {
    /// Width `d` of a token state.
    pub width: usize,
    /// Training dialogues.
    pub train: Vec<Vec<TurnTokens>>,
    /// Validation dialogues.
    pub valid: Vec<Vec<TurnTokens>>,
    /// Test dialogues.
    pub test: Vec<Vec<TurnTokens>>,
}

impl TokenStates {
    /// Checks that every split has one entry per dialogue and turn of
    /// `data`, each a whole number (≥ 1) of `width`-wide tokens of which
    /// 1 to all are pooled.
    fn check(&self, data: &PreparedData) -> Result<()> {
        let splits = [
            ("train", &self.train, &data.train),
            ("valid", &self.valid, &data.valid),
            ("test", &self.test, &data.test),
        ];
        for (name, states, dialogues) in splits {
            if states.len() != dialogues.len() {
                return Err(Error::Data(format!(
                    "{name}: token states for {} dialogues, the split has {}",
                    states.len(),
                    dialogues.len()
                )));
            }
            for (turns, d) in states.iter().zip(dialogues) {
                if turns.len() != d.len() {
                    return Err(Error::Data(format!(
                        "dialogue {}: token states for {} turns, it has {}",
                        d.id,
                        turns.len(),
                        d.len()
                    )));
                }
                let bad = |t: &TurnTokens| {
                    let tokens = t.states.len() / self.width.max(1);
                    t.states.is_empty()
                        || !t.states.len().is_multiple_of(self.width)
                        || !(1..=tokens).contains(&t.pooled)
                };
                if let Some(t) = turns.iter().position(bad) {
                    return Err(Error::Data(format!(
                        "dialogue {} turn {t}: {} values pooling {} are not whole tokens of width {} with 1 to all pooled",
                        d.id,
                        turns[t].states.len(),
                        turns[t].pooled,
                        self.width
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The fine-tuned layers and the model above them.
#[derive(Debug, Clone)]
pub struct FineTuned {
    /// The trained encoder layers.
    pub encoder: TextEncoder,
    /// The emotion model reading their pooled output.
    pub model: EmotionModel,
}

/// Refuses configurations this loop does not train: inputs other than text
/// alone through early fusion, no layer, a chunk or accumulation of 0.
fn check_spec(config: &TrainConfig, spec: &FineTuneSpec, encoder: &TextEncoder) -> Result<()> {
    if config.modalities != [mmer_core::Modality::Text] || config.model.fusion != Fusion::Early {
        return Err(Error::Data(
            "[train.finetune] trains text alone through `fusion = \"early\"` for now".into(),
        ));
    }
    if spec.layers == 0 || spec.layers != encoder.num_layers() {
        return Err(Error::Data(format!(
            "[train.finetune] layers = {}, the encoder holds {} layers",
            spec.layers,
            encoder.num_layers()
        )));
    }
    if spec.chunk == 0 || spec.accumulate == 0 {
        return Err(Error::Data(
            "[train.finetune] chunk and accumulate must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The trained layers' output for `texts`, each the token states of the
/// layer under them, mean-pooled over each text's `pooled` leading tokens
/// (attention sees them all), in input order. The texts run in
/// length-sorted chunks of `chunk`, so little is padding.
///
/// # Shapes
/// → `[texts, width]`
pub fn pool_texts(
    encoder: &TextEncoder,
    texts: &[&TurnTokens],
    width: usize,
    chunk: usize,
    device: &Device,
) -> Tensor<2> {
    let n = texts.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| texts[i].states.len());
    let pooled: Vec<Tensor<2>> = order
        .chunks(chunk.max(1))
        .map(|rows| {
            let s = rows
                .iter()
                .map(|&i| texts[i].states.len() / width)
                .max()
                .unwrap_or(1);
            let mut flat = vec![0f32; rows.len() * s * width];
            let mut mask = vec![0f32; rows.len() * s];
            let mut pool = vec![0f32; rows.len() * s];
            for (r, &i) in rows.iter().enumerate() {
                let text = texts[i];
                let tokens = text.states.len() / width;
                flat[r * s * width..r * s * width + text.states.len()]
                    .copy_from_slice(&text.states);
                mask[r * s..r * s + tokens].fill(1.0);
                pool[r * s..r * s + text.pooled.min(tokens)].fill(1.0);
            }
            let x = Tensor::<3>::from_data(TensorData::new(flat, [rows.len(), s, width]), device);
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows.len(), s]), device);
            let pool = Tensor::<2>::from_data(TensorData::new(pool, [rows.len(), s]), device);
            mean_pool(encoder.forward_states(x, &mask), &pool) // [c, d]
        })
        .collect();
    // Back to input order: row i of the result is sorted row position[i].
    let mut position = vec![0i64; n];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p as i64;
    }
    let position = Tensor::<1, Int>::from_data(TensorData::new(position, [n]), device);
    Tensor::cat(pooled, 0).select(0, position)
}

/// The trained layers' pooled, standardised output for the turns of
/// `dialogues` (`states[i]` the token states of dialogue `i`), laid out as
/// the padded `[batch, turns, d]` grid [`make_batch`] builds.
///
/// # Shapes
/// → `[dialogues, max turns, d]`
fn tuned_grid(
    encoder: &TextEncoder,
    dialogues: &[&EncodedDialogue],
    states: &[&Vec<TurnTokens>],
    width: usize,
    (mean, std): (&Tensor<1>, &Tensor<1>),
    chunk: usize,
    device: &Device,
) -> Tensor<3> {
    let turns = dialogues.iter().map(|d| d.len()).max().unwrap_or(1).max(1);
    let texts: Vec<&TurnTokens> = states.iter().flat_map(|d| d.iter()).collect();
    let n = texts.len();
    let pooled = pool_texts(encoder, &texts, width, chunk, device); // [n, d]
    let standardised =
        (pooled - mean.clone().unsqueeze_dim::<2>(0)) / std.clone().unsqueeze_dim::<2>(0);
    // Row of each grid cell: its turn, or `n` (a zero row) for padding.
    let mut grid = Vec::with_capacity(dialogues.len() * turns);
    let mut next = 0i64;
    for d in dialogues {
        for t in 0..turns {
            if t < d.len() {
                grid.push(next);
                next += 1;
            } else {
                grid.push(n as i64);
            }
        }
    }
    let padded = Tensor::cat(vec![standardised, Tensor::zeros([1, width], device)], 0); // [n + 1, d]
    let grid =
        Tensor::<1, Int>::from_data(TensorData::new(grid, [dialogues.len() * turns]), device);
    padded
        .select(0, grid)
        .reshape([dialogues.len(), turns, width])
}

/// A batch of `members` whose input is the trained layers' output.
#[allow(clippy::too_many_arguments)]
fn tuned_batch(
    encoder: &TextEncoder,
    members: &[&EncodedDialogue],
    states: &[&Vec<TurnTokens>],
    data: &PreparedData,
    width: usize,
    stats: (&Tensor<1>, &Tensor<1>),
    chunk: usize,
    device: &Device,
) -> Batch {
    let mut batch = make_batch(members, &data.layout, device);
    batch.input.input = UtteranceInput::Pooled(tuned_grid(
        encoder, members, states, width, stats, chunk, device,
    ));
    batch
}

/// The layout's training mean and standard deviation as tensors.
fn layout_stats(data: &PreparedData, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let d = data.layout.mean.len();
    (
        Tensor::from_data(TensorData::new(data.layout.mean.clone(), [d]), device),
        Tensor::from_data(TensorData::new(data.layout.std.clone(), [d]), device),
    )
}

/// Class probabilities of every turn of `dialogues` (inference mode).
fn probabilities(
    tuned: &FineTuned,
    dialogues: &[EncodedDialogue],
    states: &[Vec<TurnTokens>],
    data: &PreparedData,
    width: usize,
    chunk: usize,
    device: &Device,
) -> Vec<Vec<Vec<f32>>> {
    let stats = layout_stats(data, device);
    let mut order: Vec<usize> = (0..dialogues.len()).collect();
    order.sort_by_key(|&i| dialogues[i].len());
    let mut out = vec![Vec::new(); dialogues.len()];
    for batch in order.chunks(16) {
        let members: Vec<&EncodedDialogue> = batch.iter().map(|&i| &dialogues[i]).collect();
        let turn_states: Vec<&Vec<TurnTokens>> = batch.iter().map(|&i| &states[i]).collect();
        let input = tuned_batch(
            &tuned.encoder,
            &members,
            &turn_states,
            data,
            width,
            (&stats.0, &stats.1),
            chunk,
            device,
        );
        let probs = softmax(tuned.model.forward(&input.input), 2);
        scatter(&probs, batch, dialogues, &mut out);
    }
    out
}

/// What every batch (and every shard of one) of a fine-tuning run reads.
struct StepInputs<'a> {
    data: &'a PreparedData,
    states: &'a TokenStates,
    config: &'a TrainConfig,
    class_weights: Option<&'a Tensor<1>>,
    /// The frozen features' training mean and standard deviation.
    stats: (&'a Tensor<1>, &'a Tensor<1>),
    /// Utterances per encoder pass.
    chunk: usize,
    /// Batches per optimiser step.
    accumulate: usize,
    /// The training (autodiff) device.
    device: &'a Device,
}

/// The gradients of one batch, or of one shard of it.
struct StepGradients {
    /// The loss, undivided by the accumulation steps.
    loss: f64,
    /// The model's gradients.
    model: GradientsParams,
    /// Each encoder layer's, lowest first.
    layers: Vec<GradientsParams>,
}

/// The loss of the training dialogues `dialogues` — divided by the
/// accumulation steps and, for a shard, scaled by its `share` of the
/// batch — and its gradients; `None` without labelled turns.
fn step_gradients(
    encoder: &TextEncoder,
    model: &EmotionModel,
    dialogues: &[usize],
    share: Option<f64>,
    inputs: &StepInputs,
) -> Option<StepGradients> {
    let members: Vec<&EncodedDialogue> = dialogues.iter().map(|&i| &inputs.data.train[i]).collect();
    let turn_states: Vec<&Vec<TurnTokens>> =
        dialogues.iter().map(|&i| &inputs.states.train[i]).collect();
    let batch = tuned_batch(
        encoder,
        &members,
        &turn_states,
        inputs.data,
        inputs.states.width,
        inputs.stats,
        inputs.chunk,
        inputs.device,
    );
    if batch.num_labelled == 0 {
        return None;
    }
    let mut loss = batch_loss(model, &batch, inputs.config, inputs.class_weights)
        .div_scalar(inputs.accumulate as f32);
    if let Some(share) = share {
        loss = loss.mul_scalar(share as f32);
    }
    let value = f64::from(loss.clone().into_scalar::<f32>()) * inputs.accumulate as f64;
    let mut grads = loss.backward();
    Some(StepGradients {
        loss: value,
        model: GradientsParams::from_module(&mut grads, model),
        layers: encoder
            .layers()
            .iter()
            .map(|layer| GradientsParams::from_module(&mut grads, layer))
            .collect(),
    })
}

/// [`step_gradients`] of the batch `chunk` cut into `shards` shards of
/// dialogues, each on its own thread with its own fork of the encoder
/// layers and the model — the foundation's data parallelism
/// (`sharded_gradients` in the trainer): each shard's loss is scaled by its
/// share of the batch's labelled turns, so the shards' gradients sum to the
/// batch's up to float order (the encoder reads each utterance on its own,
/// the context model each dialogue); each shard draws its dropout masks
/// from its own stream, so a run is deterministic under its seed.
fn sharded_step_gradients(
    encoder: &TextEncoder,
    model: &EmotionModel,
    chunk: &[usize],
    shards: usize,
    inputs: &StepInputs,
) -> Option<Vec<StepGradients>> {
    let parts: Vec<&[usize]> = chunk.chunks(chunk.len().div_ceil(shards)).collect();
    let shares = shard_shares(inputs.data, &parts, inputs.class_weights)?;
    let stream = backend_seed(inputs.device);
    let jobs: Vec<_> = parts
        .iter()
        .zip(shares)
        .map(|(part, share)| {
            let encoder = encoder.clone().fork(inputs.device);
            let model = model.clone().fork(inputs.device);
            move || step_gradients(&encoder, &model, part, Some(share), inputs)
        })
        .collect();
    let results = run_shards(stream, jobs);
    Some(results.into_iter().flatten().collect())
}

/// The encoder's learning-rate factor at optimiser step `step` (from 0) of
/// `total`: linear warm-up from 0 over the first `warmup` share, then linear
/// decay to 0 — Hugging Face's `get_linear_schedule_with_warmup`.
pub fn schedule(step: usize, total: usize, warmup: f64) -> f64 {
    let warm = (warmup * total as f64).round() as usize;
    if step < warm {
        step as f64 / warm as f64
    } else {
        let left = total.saturating_sub(step) as f64;
        (left / total.saturating_sub(warm).max(1) as f64).clamp(0.0, 1.0)
    }
}

/// One optimiser per encoder layer (lowest first) and its accumulated
/// gradients.
struct LayerOptimisers {
    optimisers: Vec<ModuleOptimizer>,
    accumulated: Vec<GradientsAccumulator<EncoderLayer>>,
}

impl LayerOptimisers {
    fn new(spec: &FineTuneSpec, layers: usize) -> Self {
        let clipping =
            (spec.clip_norm > 0.0).then_some(GradientClippingConfig::Norm(spec.clip_norm as f32));
        Self {
            optimisers: (0..layers)
                .map(|_| {
                    AdamWConfig::new()
                        .with_weight_decay(spec.weight_decay as f32)
                        .with_grad_clipping(clipping.clone())
                        .init()
                })
                .collect(),
            accumulated: (0..layers).map(|_| GradientsAccumulator::new()).collect(),
        }
    }
}

/// Trains one seed: the foundation loop of [`crate::train_seed`] with the
/// top `spec.layers` encoder layers (`encoder`, built on any device, moved
/// to the training device) trained too, reading `states`.
///
/// # Errors
/// A multi-label set; inputs other than text alone through early fusion,
/// no layer, a chunk or accumulation of 0; token states
/// that do not match the data, a split without labelled turns.
pub fn train_seed_finetuned(
    data: &PreparedData,
    states: &TokenStates,
    encoder: TextEncoder,
    config: &TrainConfig,
    seed: u64,
    show_progress: bool,
) -> Result<(SeedOutcome, FineTuned)> {
    ensure_single_label(&data.labels)?;
    let spec = config.finetune.clone().unwrap_or_default();
    check_spec(config, &spec, &encoder)?;
    states.check(data)?;
    let started = Instant::now();
    let device = training_device();
    device.seed(seed);
    let (mut model, mut head_optim) = crate::trainer::init_model(data, config, &device);
    // A module built off the autodiff device tracks gradients only after
    // `train` (burn's `fork` keeps the source's inference mode).
    let mut encoder = encoder.fork(&device).train().freeze_shared();
    let mut layer_optims = LayerOptimisers::new(&spec, encoder.num_layers());
    let mut head_accumulated = GradientsAccumulator::<EmotionModel>::new();
    let class_weights = class_weight_tensor(data, config, &device);
    let stats = layout_stats(data, &device);
    let inputs = StepInputs {
        data,
        states,
        config,
        class_weights: class_weights.as_ref(),
        stats: (&stats.0, &stats.1),
        chunk: spec.chunk,
        accumulate: spec.accumulate,
        device: &device,
    };
    let eval_device = device.clone().inner();
    let batches_per_epoch = data.train.len().div_ceil(config.batch_size.max(1));
    let total_steps = config.max_epochs * batches_per_epoch.div_ceil(spec.accumulate);
    let top = encoder.num_layers() - 1;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let bar = epoch_bar(show_progress, config.max_epochs, "seed", seed);
    let (mut step, mut pending) = (0usize, 0usize);
    let mut best = BestEpoch::default();
    let mut history = Vec::new();
    for epoch in 1..=config.max_epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut loss_batches) = (0.0f64, 0usize);
        for chunk in order.chunks(config.batch_size.max(1)) {
            let gradients = match config.data_parallel {
                0 | 1 => step_gradients(&encoder, &model, chunk, None, &inputs).map(|g| vec![g]),
                shards => sharded_step_gradients(&encoder, &model, chunk, shards, &inputs),
            };
            let Some(shards) = gradients else {
                continue; // no labelled turn in this batch
            };
            loss_batches += 1;
            for shard in shards {
                loss_sum += shard.loss;
                head_accumulated.accumulate(&model, shard.model);
                for ((layer, acc), grads) in encoder
                    .layers()
                    .iter()
                    .zip(layer_optims.accumulated.iter_mut())
                    .zip(shard.layers)
                {
                    acc.accumulate(layer, grads);
                }
            }
            pending += 1;
            if pending < spec.accumulate {
                continue;
            }
            pending = 0;
            model = head_optim.step(config.learning_rate, model, head_accumulated.grads());
            let factor = schedule(step, total_steps, spec.warmup);
            let layers = std::mem::take(encoder.layers_mut());
            *encoder.layers_mut() = layers
                .into_iter()
                .enumerate()
                .map(|(i, layer)| {
                    let lr = spec.learning_rate * factor * spec.layer_decay.powi((top - i) as i32);
                    let grads = layer_optims.accumulated[i].grads();
                    layer_optims.optimisers[i].step(lr, layer, grads)
                })
                .collect();
            step += 1;
        }
        let snapshot = FineTuned {
            encoder: encoder.valid(),
            model: model.valid(),
        };
        let probs = probabilities(
            &snapshot,
            &data.valid,
            &states.valid,
            data,
            states.width,
            spec.chunk,
            &eval_device,
        );
        let valid = report(&data.valid, &probs, &data.labels)?.weighted_f1;
        let train_loss = loss_sum / loss_batches.max(1) as f64;
        history.push(EpochRecord {
            epoch,
            train_loss,
            valid_weighted_f1: valid,
        });
        tracing::info!(seed, epoch, train_loss, valid, "fine-tuning epoch");
        bar.set_message(format!("valid wF1 {valid:.4}"));
        bar.inc(1);
        if best.record(epoch, valid, snapshot, config) {
            break;
        }
    }
    bar.finish();
    let (best_epoch, tuned) = best.into_best()?;
    let score = |dialogues: &[EncodedDialogue], split: &[Vec<TurnTokens>]| {
        let probs = probabilities(
            &tuned,
            dialogues,
            split,
            data,
            states.width,
            spec.chunk,
            &eval_device,
        );
        report(dialogues, &probs, &data.labels)
    };
    let valid = score(&data.valid, &states.valid)?;
    let test = match data.test.is_empty() {
        true => None,
        false => Some(score(&data.test, &states.test)?),
    };
    tracing::info!(
        seed,
        best_epoch,
        valid_wf1 = valid.weighted_f1,
        "seed finished"
    );
    let outcome = SeedOutcome {
        seed,
        best_epoch,
        valid,
        test,
        history,
        train_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((outcome, tuned))
}

#[cfg(test)]
mod tests {
    use mmer_core::{Features, Label, Modality, Split};
    use mmer_data::synthetic::{SyntheticConfig, generate};
    use mmer_models::text_encoder::{random_checkpoint, tiny_config};

    use super::*;
    use crate::FineTuneSpec;

    /// A synthetic text-only corpus whose text vectors are a tiny random
    /// MPNet's pooled output for token ids that depend on the label, the
    /// token states of its layer 1 for each turn, and its layer 2 (the one
    /// fine-tuned). Turns after the first carry two context tokens after
    /// their own, attended to but not pooled.
    fn tiny_text() -> (PreparedData, TokenStates, TextEncoder, TrainConfig) {
        tiny_text_with(0.1)
    }

    /// [`tiny_text`] with encoder dropout `dropout` (hidden and attention).
    fn tiny_text_with(dropout: f64) -> (PreparedData, TokenStates, TextEncoder, TrainConfig) {
        let mut corpus = generate(&SyntheticConfig {
            dialogues: [12, 6, 6],
            ..Default::default()
        });
        let mut config = tiny_config();
        config.hidden_dropout_prob = dropout;
        config.attention_probs_dropout_prob = dropout;
        let tensors = random_checkpoint(&config, 3);
        let device = Device::default();
        let lower = TextEncoder::from_checkpoint(&config, &tensors, 0..1, &device).expect("loads");
        let whole = TextEncoder::from_checkpoint(&config, &tensors, 0..2, &device).expect("loads");
        let upper = TextEncoder::from_checkpoint(&config, &tensors, 1..2, &device).expect("loads");
        let mut states = TokenStates {
            width: 8,
            ..TokenStates::default()
        };
        for (split, out) in [Split::Train, Split::Valid, Split::Test].into_iter().zip([
            &mut states.train,
            &mut states.valid,
            &mut states.test,
        ]) {
            for d in corpus.splits.get_mut(&split).expect("generated split") {
                let mut turns = Vec::new();
                for (t, u) in d.utterances.iter_mut().enumerate() {
                    let class = u.label.as_ref().and_then(Label::single).unwrap_or(0) as u32;
                    let own = [0, 2 + class % 8, 2 + (t as u32 % 3), 10];
                    let own = &own[..2 + t % 3];
                    let context: &[u32] = if t == 0 { &[] } else { &[3, 4] };
                    let ids = [own, context].concat();
                    let (below, _) = lower
                        .forward_ids(std::slice::from_ref(&ids), &device)
                        .expect("embeddings");
                    let (top, _) = whole
                        .forward_ids(std::slice::from_ref(&ids), &device)
                        .expect("embeddings");
                    let pool: Vec<f32> = (0..ids.len())
                        .map(|i| f32::from(u8::from(i < own.len())))
                        .collect();
                    let pool =
                        Tensor::<2>::from_data(TensorData::new(pool, [1, ids.len()]), &device);
                    let pooled = mean_pool(top, &pool)
                        .into_data()
                        .try_to_vec::<f32>()
                        .expect("f32");
                    u.features = [(Modality::Text, Features::vector(pooled))].into();
                    turns.push(TurnTokens {
                        states: below.into_data().try_to_vec::<f32>().expect("f32"),
                        pooled: own.len(),
                    });
                }
                out.push(turns);
            }
        }
        let train = TrainConfig {
            modalities: vec![Modality::Text],
            max_epochs: 3,
            patience: 3,
            batch_size: 4,
            finetune: Some(FineTuneSpec {
                layers: 1,
                learning_rate: 1e-2,
                chunk: 5,
                ..FineTuneSpec::default()
            }),
            ..TrainConfig::default()
        };
        let data = PreparedData::new(&corpus, &train).expect("prepares");
        (data, states, upper, train)
    }

    /// The standardised inputs the trained layers give the model for every
    /// turn of `dialogues` (inference mode), `[dialogue][turn] → [d]`: with
    /// untouched layers, the frozen features the layout standardised.
    fn tuned_inputs(
        encoder: &TextEncoder,
        dialogues: &[EncodedDialogue],
        states: &[Vec<TurnTokens>],
        data: &PreparedData,
        width: usize,
        device: &Device,
    ) -> Vec<Vec<Vec<f32>>> {
        let stats = layout_stats(data, device);
        let mut out = vec![Vec::new(); dialogues.len()];
        let all: Vec<usize> = (0..dialogues.len()).collect();
        for batch in all.chunks(16) {
            let members: Vec<&EncodedDialogue> = batch.iter().map(|&i| &dialogues[i]).collect();
            let turn_states: Vec<&Vec<TurnTokens>> = batch.iter().map(|&i| &states[i]).collect();
            let grid = tuned_grid(
                encoder,
                &members,
                &turn_states,
                width,
                (&stats.0, &stats.1),
                32,
                device,
            );
            scatter(&grid, batch, dialogues, &mut out);
        }
        out
    }

    fn max_diff(a: &[Vec<Vec<f32>>], b: &[EncodedDialogue]) -> f32 {
        a.iter()
            .zip(b)
            .flat_map(|(turns, d)| turns.concat().into_iter().zip(d.inputs.clone()))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn untrained_layers_give_the_model_the_frozen_features() {
        let (data, states, upper, _) = tiny_text();
        let tuned = tuned_inputs(
            &upper,
            &data.valid,
            &states.valid,
            &data,
            8,
            &Device::default(),
        );
        let diff = max_diff(&tuned, &data.valid);
        assert!(
            diff < 1e-4,
            "tuned inputs differ from the frozen ones by {diff}"
        );
    }

    #[test]
    fn fine_tuning_moves_the_layers_and_a_zero_rate_does_not() {
        let _lock = crate::training_lock();
        let (data, states, upper, config) = tiny_text();
        let device = Device::default();
        let (outcome, tuned) =
            train_seed_finetuned(&data, &states, upper.clone(), &config, 0, false).expect("trains");
        assert_eq!(outcome.history.len(), 3);
        assert!(outcome.test.is_some());
        let moved = tuned_inputs(
            &tuned.encoder,
            &data.valid,
            &states.valid,
            &data,
            8,
            &device,
        );
        assert!(
            max_diff(&moved, &data.valid) > 1e-3,
            "a rate of 1e-2 changes the layers"
        );
        let frozen = TrainConfig {
            finetune: Some(FineTuneSpec {
                learning_rate: 0.0,
                ..config.finetune.clone().expect("set")
            }),
            ..config.clone()
        };
        let (_, still) =
            train_seed_finetuned(&data, &states, upper.clone(), &frozen, 0, false).expect("trains");
        let same = tuned_inputs(
            &still.encoder,
            &data.valid,
            &states.valid,
            &data,
            8,
            &device,
        );
        assert!(
            max_diff(&same, &data.valid) < 1e-4,
            "a zero rate leaves the layers alone"
        );
        let (again, _) =
            train_seed_finetuned(&data, &states, upper.clone(), &config, 0, false).expect("trains");
        assert_eq!(
            again.valid.weighted_f1, outcome.valid.weighted_f1,
            "the same seed trains the same model"
        );
        let wrong = TrainConfig {
            modalities: vec![Modality::Audio],
            ..config.clone()
        };
        let err = train_seed_finetuned(&data, &states, upper.clone(), &wrong, 0, false)
            .expect_err("text only");
        assert!(err.to_string().contains("text alone"), "{err}");
        let mut short = states.clone();
        short.valid.pop();
        let err = train_seed_finetuned(&data, &short, upper.clone(), &config, 0, false)
            .expect_err("misaligned states");
        assert!(
            err.to_string()
                .contains("valid: token states for 5 dialogues"),
            "{err}"
        );
        let mut unpooled = states.clone();
        unpooled.test[1][1].pooled = 0;
        let err = train_seed_finetuned(&data, &unpooled, upper, &config, 0, false)
            .expect_err("nothing pooled");
        assert!(
            err.to_string().contains("turn 1") && err.to_string().contains("pooling 0"),
            "{err}"
        );
    }

    /// Every parameter's gradient in `grads`, flattened, in `module`'s
    /// visiting order.
    fn gradient_values<M: Module>(module: &M, grads: &GradientsParams) -> Vec<f32> {
        struct Collect<'a>(&'a GradientsParams, Vec<f32>);
        impl burn::module::ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                if let Some(grad) = self.0.get::<D>(param.id) {
                    self.1.extend(grad.into_data().iter::<f32>());
                }
            }
        }
        let mut collect = Collect(grads, Vec::new());
        module.visit(&mut collect);
        collect.1
    }

    #[test]
    fn shards_sum_to_the_whole_batch_loss_and_gradient() {
        let _lock = crate::training_lock();
        // Without dropout, shards differ from the whole batch by float order only.
        let (data, states, upper, mut config) = tiny_text_with(0.0);
        config.model.dropout = 0.0;
        let device = training_device();
        device.seed(0);
        let (model, _) = crate::trainer::init_model(&data, &config, &device);
        let encoder = upper.clone().fork(&device).train().freeze_shared();
        let stats = layout_stats(&data, &device);
        let inputs = StepInputs {
            data: &data,
            states: &states,
            config: &config,
            class_weights: None,
            stats: (&stats.0, &stats.1),
            chunk: 5,
            accumulate: 2,
            device: &device,
        };
        let batch = [2, 8, 6, 1, 0];
        let whole = step_gradients(&encoder, &model, &batch, None, &inputs).expect("labelled");
        let shards =
            sharded_step_gradients(&encoder, &model, &batch, 2, &inputs).expect("labelled");
        assert_eq!(shards.len(), 2);
        let loss: f64 = shards.iter().map(|s| s.loss).sum();
        assert!(
            (loss - whole.loss).abs() < 1e-5,
            "shard losses sum to {loss}, the batch's is {}",
            whole.loss
        );
        let mut model_sum = GradientsAccumulator::<EmotionModel>::new();
        let mut layer_sum = GradientsAccumulator::<EncoderLayer>::new();
        let layer = &encoder.layers()[0];
        for shard in shards {
            model_sum.accumulate(&model, shard.model);
            let [grads] = <[GradientsParams; 1]>::try_from(shard.layers).expect("one layer");
            layer_sum.accumulate(layer, grads);
        }
        for (what, a, b) in [
            (
                "model",
                gradient_values(&model, &whole.model),
                gradient_values(&model, &model_sum.grads()),
            ),
            (
                "encoder layer",
                gradient_values(layer, &whole.layers[0]),
                gradient_values(layer, &layer_sum.grads()),
            ),
        ] {
            assert!(
                !a.is_empty() && a.len() == b.len(),
                "{what}: {} and {}",
                a.len(),
                b.len()
            );
            let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let diff = a
                .iter()
                .zip(&b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                scale > 1e-3 && diff < 1e-5 * scale.max(1.0),
                "{what}: gradients differ by {diff} (largest {scale})"
            );
        }
        // A sharded run trains and reproduces itself.
        let sharded = TrainConfig {
            data_parallel: 2,
            ..config.clone()
        };
        let (a, _) = train_seed_finetuned(&data, &states, upper.clone(), &sharded, 0, false)
            .expect("trains");
        let (b, _) =
            train_seed_finetuned(&data, &states, upper, &sharded, 0, false).expect("trains");
        assert_eq!(a.history, b.history);
        assert_eq!(a.test, b.test);
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let f: Vec<f64> = (0..10).map(|s| schedule(s, 10, 0.2)).collect();
        assert_eq!((f[0], f[1], f[2]), (0.0, 0.5, 1.0), "{f:?}");
        assert!(f.windows(2).skip(2).all(|w| w[1] < w[0]), "{f:?}");
        assert!((f[9] - 0.125).abs() < 1e-12, "{f:?}");
        assert_eq!(schedule(10, 10, 0.2), 0.0);
        assert_eq!(
            schedule(0, 10, 0.0),
            1.0,
            "no warm-up starts at the full rate"
        );
    }
}
