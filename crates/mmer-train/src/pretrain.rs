//! Self-supervised pre-training of the modality encoders and MAN with the
//! cross-modal NCE (AMuSE §III-E1 Eq. 3–4; thesis §3.1.2): the modalities of
//! one utterance are positives, other utterances' memory-bank entries are
//! negatives. Labels are never read.
//!
//! Fixes relative to the authors' AVID code (methods-detail §1.4): negatives
//! are drawn from real training utterances only, never from padding slots
//! (bug 9); descriptors are normalised over the feature axis (bug 10); the
//! memory is updated only by training batches, indexed by a training-split
//! id, so validation never writes into it (bug 12); InfoNCE needs no frozen
//! `Z` (bug 11). Model selection uses the validation split's in-batch NCE.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use mmer_models::nce::{in_batch_nce, l2_normalize, memory_nce};
use mmer_models::{EmotionModel, UtteranceInput};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batcher::{EncodedDialogue, make_batch};
use crate::trainer::{PreparedData, epoch_bar, init_model, training_device};
use crate::{Error, Result, TrainConfig};

/// One pre-training epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean memory-bank NCE loss over training batches.
    pub train_loss: f64,
    /// Mean in-batch cross-modal NCE loss on the validation split.
    pub valid_loss: f64,
}

/// What pre-training one seed produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainOutcome {
    /// The seed.
    pub seed: u64,
    /// Epoch kept (lowest validation loss).
    pub best_epoch: usize,
    /// Its validation loss.
    pub valid_loss: f64,
    /// Learning curve.
    pub history: Vec<PretrainEpoch>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Per-modality memory bank of unit vectors, one row per training utterance.
struct MemoryBank {
    rows: usize,
    dim: usize,
    /// `[modality][row * dim + k]`.
    banks: Vec<Vec<f32>>,
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    v.iter_mut().for_each(|x| *x /= norm);
}

impl MemoryBank {
    fn new(modalities: usize, rows: usize, dim: usize, rng: &mut ChaCha8Rng) -> Self {
        let banks = (0..modalities)
            .map(|_| {
                let mut bank: Vec<f32> =
                    (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
                bank.chunks_mut(dim).for_each(normalise);
                bank
            })
            .collect();
        Self { rows, dim, banks }
    }

    fn gather(&self, modality: usize, ids: &[usize], device: &Device) -> Tensor<2> {
        let mut data = Vec::with_capacity(ids.len() * self.dim);
        for &i in ids {
            data.extend_from_slice(&self.banks[modality][i * self.dim..(i + 1) * self.dim]);
        }
        Tensor::from_data(TensorData::new(data, [ids.len(), self.dim]), device)
    }

    fn update(&mut self, modality: usize, ids: &[usize], z: &[f32], momentum: f32) {
        for (k, &i) in ids.iter().enumerate() {
            let row = &mut self.banks[modality][i * self.dim..(i + 1) * self.dim];
            for (m, v) in row.iter_mut().zip(&z[k * self.dim..(k + 1) * self.dim]) {
                *m = momentum * *m + (1.0 - momentum) * v;
            }
            normalise(row);
        }
    }

    /// `k` distinct-from-batch training rows, uniformly.
    fn sample_negatives(&self, k: usize, exclude: &[usize], rng: &mut ChaCha8Rng) -> Vec<usize> {
        let mut taken = vec![false; self.rows];
        exclude.iter().for_each(|&i| taken[i] = true);
        let free = self.rows - exclude.len().min(self.rows);
        let k = k.min(free);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let i = rng.random_range(0..self.rows);
            if !taken[i] {
                out.push(i);
            }
        }
        out
    }
}

fn frames(input: &UtteranceInput) -> &[mmer_models::multimodal::ModalityFrames] {
    match input {
        UtteranceInput::Sequences { modalities, .. } => modalities,
        UtteranceInput::Pooled(_) => &[],
    }
}

/// Mean in-batch cross-modal NCE over ordered modality pairs.
fn validation_loss(model: &EmotionModel, data: &PreparedData, config: &TrainConfig) -> f64 {
    let device = Device::flex();
    let (mut sum, mut batches) = (0.0, 0usize);
    let members: Vec<&EncodedDialogue> = data.valid.iter().collect();
    for chunk in members.chunks(config.batch_size.max(1)) {
        let batch = make_batch(chunk, &data.layout, &device);
        let z: Vec<Tensor<2>> = model
            .descriptors(frames(&batch.input.input), None)
            .into_iter()
            .map(l2_normalize)
            .collect();
        let mut loss = 0.0;
        let mut pairs = 0;
        for a in 0..z.len() {
            for b in (0..z.len()).filter(|&b| b != a) {
                loss += in_batch_nce(z[a].clone(), z[b].clone(), config.pretrain.temperature)
                    .into_scalar::<f32>() as f64;
                pairs += 1;
            }
        }
        sum += loss / pairs.max(1) as f64;
        batches += 1;
    }
    sum / batches.max(1) as f64
}

/// Pre-trains one model with `seed`; returns its outcome and the model with
/// the lowest validation NCE loss.
///
/// # Errors
/// A pooled (early-fusion) layout or fewer than two modalities: there is
/// nothing cross-modal to learn.
pub fn pretrain_seed(
    data: &PreparedData,
    config: &TrainConfig,
    seed: u64,
    show_progress: bool,
) -> Result<(PretrainOutcome, EmotionModel)> {
    if !data.layout.sequences || data.layout.modalities.len() < 2 {
        return Err(Error::Data(
            "pre-training needs a sequence fusion (concat, man_concat, man_af) and at least two modalities"
                .into(),
        ));
    }
    // The memory-bank NCE pairs every modality of every turn; turns that
    // lack one are not supported here yet.
    if let Some(d) = data
        .train
        .iter()
        .chain(&data.valid)
        .find(|d| d.present.contains(&false))
    {
        return Err(Error::Data(format!(
            "pre-training needs every modality in every turn; dialogue {} lacks some",
            d.id
        )));
    }
    if data.train.len() <= config.batch_size {
        return Err(Error::Data(format!(
            "pre-training draws negatives from outside the batch: it needs more than \
             batch_size = {} training dialogues (the train split has {})",
            config.batch_size,
            data.train.len()
        )));
    }
    let spec = &config.pretrain;
    let started = Instant::now();
    let device = training_device();
    device.seed(seed);
    let (mut model, mut optim) = init_model(data, config, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_9e7a);
    // Training utterance ids: dialogue offset + turn, the order in which
    // the batcher lays out real turns.
    let offsets: Vec<usize> = data
        .train
        .iter()
        .scan(0, |next, d| {
            let first = *next;
            *next += d.len();
            Some(first)
        })
        .collect();
    let total: usize = data.train.iter().map(EncodedDialogue::len).sum();
    let modalities = data.layout.modalities.len();
    let mut memory = MemoryBank::new(modalities, total, config.model.d_modality, &mut rng);
    let mut order: Vec<usize> = (0..data.train.len()).collect();

    let bar = epoch_bar(show_progress, spec.max_epochs, "pretrain seed", seed);
    let mut best: Option<(f64, usize, EmotionModel)> = None;
    let mut history = Vec::new();
    for epoch in 1..=spec.max_epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut batches) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size.max(1)) {
            let members: Vec<&EncodedDialogue> = chunk.iter().map(|&i| &data.train[i]).collect();
            let ids: Vec<usize> = chunk
                .iter()
                .flat_map(|&i| offsets[i]..offsets[i] + data.train[i].len())
                .collect();
            let batch = make_batch(&members, &data.layout, &device);
            let z: Vec<Tensor<2>> = model
                .descriptors(frames(&batch.input.input), None)
                .into_iter()
                .map(l2_normalize)
                .collect();
            let negative_ids = memory.sample_negatives(spec.negatives, &ids, &mut rng);
            // Inter-modal pairs (a ≠ b) and intra-modal pairs (a = b), each
            // averaged, weighted 0.5 / 0.5 as in AVID.
            let (mut inter, mut intra): (Option<Tensor<1>>, Option<Tensor<1>>) = (None, None);
            for b in 0..modalities {
                let positives = memory.gather(b, &ids, &device);
                let negatives = memory.gather(b, &negative_ids, &device);
                for (a, anchor) in z.iter().enumerate() {
                    let loss = memory_nce(
                        anchor.clone(),
                        positives.clone(),
                        negatives.clone(),
                        spec.temperature,
                    );
                    let slot = if a == b { &mut intra } else { &mut inter };
                    *slot = Some(match slot.take() {
                        Some(s) => s + loss,
                        None => loss,
                    });
                }
            }
            let m = modalities as f32;
            let loss = match (inter, intra) {
                (Some(inter), Some(intra)) => {
                    inter.div_scalar(m * (m - 1.0)).mul_scalar(0.5)
                        + intra.div_scalar(m).mul_scalar(0.5)
                }
                _ => unreachable!("at least two modalities give both kinds of pair"),
            };
            loss_sum += loss.clone().into_scalar::<f32>() as f64;
            batches += 1;
            for (b, zb) in z.iter().enumerate() {
                let values: Vec<f32> = zb
                    .clone()
                    .inner()
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| Error::Data(format!("reading descriptors: {e:?}")))?;
                memory.update(b, &ids, &values, spec.momentum as f32);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.learning_rate, model, grads);
        }
        let snapshot = model.valid();
        let valid_loss = validation_loss(&snapshot, data, config);
        let train_loss = loss_sum / batches.max(1) as f64;
        history.push(PretrainEpoch {
            epoch,
            train_loss,
            valid_loss,
        });
        tracing::debug!(seed, epoch, train_loss, valid_loss, "pretrain epoch");
        bar.set_message(format!("valid NCE {valid_loss:.4}"));
        bar.inc(1);
        if best.as_ref().is_none_or(|(l, _, _)| valid_loss < *l) {
            best = Some((valid_loss, epoch, snapshot));
        } else if best
            .as_ref()
            .is_some_and(|(_, e, _)| epoch - e >= spec.patience)
        {
            break;
        }
    }
    bar.finish();
    let (valid_loss, best_epoch, model) =
        best.ok_or_else(|| Error::Data("pretrain.max_epochs is 0: nothing was trained".into()))?;
    tracing::info!(seed, best_epoch, valid_loss, "pre-training finished");
    Ok((
        PretrainOutcome {
            seed,
            best_epoch,
            valid_loss,
            history,
            seconds: started.elapsed().as_secs_f64(),
        },
        model,
    ))
}
