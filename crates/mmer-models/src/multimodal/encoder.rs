//! Per-modality temporal encoder (AMuSE §III-A, thesis §3.1.1): frames of
//! one modality → a sequence of width `d` shared by every modality, so the
//! attention network can compare them.
//!
//! `x = LayerNorm(W f + BiLSTM(W f)) + time(τ)`, `f` the frames after an
//! optional input dropout (the foundation model's regulariser on frozen
//! features, which the encoder would otherwise skip): a projection, a residual
//! length-aware Bi-LSTM over the frames (skipped for one-vector-per-utterance
//! inputs such as sentence embeddings), and a fixed sinusoidal code of each
//! frame's relative time τ ∈ (0, 1) within its utterance. The time code is
//! the same function for every modality, so cross-attention can align "the
//! face at the moment of the vocal peak" even when modalities have different
//! frame counts (Vaswani et al. 2017 use the same kind of code for token
//! positions).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::blocks::{MaskedBiLstm, MaskedBiLstmConfig, SequenceIndex, dropout};

/// Frames of one modality for the real (unpadded) utterances of a batch.
#[derive(Debug, Clone)]
pub struct ModalityFrames {
    /// Right-padded frames. Shape `[utterances, max_frames, d_input]`.
    pub frames: Tensor<3>,
    /// Frame counts and the within-length reversal for the Bi-LSTM.
    pub index: SequenceIndex,
    /// True at padded frames. Shape `[utterances, max_frames]`.
    pub padding: Tensor<2, Bool>,
    /// Relative time of each frame, `(f + 0.5) / len`; 0 at padding.
    /// Shape `[utterances, max_frames]`.
    pub time: Tensor<2>,
}

impl ModalityFrames {
    /// Builds the tensors from per-utterance frames, each flattened
    /// `[frames * d_input]`. An empty slice is an utterance that lacks this
    /// modality: a row of padding only, which the fusions mask out (the
    /// batch's presence mask says so; see [`UtteranceInput`](crate::UtteranceInput)).
    ///
    /// # Panics
    /// If a sequence is not a multiple of `d_input` long; the batcher checks
    /// that against the data first.
    pub fn new(utterances: &[&[f32]], d_input: usize, device: &Device) -> Self {
        let lengths: Vec<usize> = utterances.iter().map(|u| u.len() / d_input).collect();
        assert!(
            utterances.iter().all(|u| u.len() % d_input == 0),
            "every utterance needs whole frames"
        );
        let n = utterances.len();
        let max_frames = lengths.iter().copied().max().unwrap_or(1).max(1);
        let mut frames = vec![0f32; n * max_frames * d_input];
        let mut padding = vec![true; n * max_frames];
        let mut time = vec![0f32; n * max_frames];
        for (i, (u, &len)) in utterances.iter().zip(&lengths).enumerate() {
            let start = i * max_frames * d_input;
            frames[start..start + u.len()].copy_from_slice(u);
            for f in 0..len {
                padding[i * max_frames + f] = false;
                time[i * max_frames + f] = (f as f32 + 0.5) / len as f32;
            }
        }
        Self {
            frames: Tensor::from_data(TensorData::new(frames, [n, max_frames, d_input]), device),
            index: SequenceIndex::new(&lengths, max_frames, device),
            padding: Tensor::from_data(TensorData::new(padding, [n, max_frames]), device),
            time: Tensor::from_data(TensorData::new(time, [n, max_frames]), device),
        }
    }

    /// Number of utterances.
    pub fn len(&self) -> usize {
        self.index.lengths.len()
    }

    /// True for a batch without utterances.
    pub fn is_empty(&self) -> bool {
        self.index.lengths.is_empty()
    }

    /// Mean over each utterance's real frames.
    ///
    /// # Shapes
    /// `x`: `[utterances, max_frames, d]` → `[utterances, d]`
    pub fn masked_mean(&self, x: Tensor<3>) -> Tensor<2> {
        let keep = self
            .padding
            .clone()
            .bool_not()
            .float()
            .unsqueeze_dim::<3>(2); // [n, f, 1]
        let count = keep.clone().sum_dim(1).clamp_min(1.0); // [n, 1, 1]
        (x * keep).sum_dim(1).div(count).squeeze_dim::<2>(1)
    }
}

/// How an utterance's encoded frames become one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the real frames.
    #[default]
    Mean,
    /// A learned softmax weighting of the real frames ([`AttentionPooling`]).
    Attention,
}

/// Attention pooling: `Σ_f softmax_f(w · x_f + b) x_f` over the real frames
/// (Bahdanau-style additive scoring reduced to one linear score, as in
/// hierarchical attention networks, Yang et al. 2016). Lets the model weight
/// the frames — or tokens — that carry the emotion instead of averaging
/// them all. The scorer starts at zero, so training starts from the mean.
#[derive(Module, Debug)]
pub struct AttentionPooling {
    score: Linear,
}

impl AttentionPooling {
    /// A pooler over frames of width `d`.
    pub fn init(d: usize, device: &Device) -> Self {
        Self {
            score: LinearConfig::new(d, 1)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// # Shapes
    /// `x`: `[n, frames, d]` → `[n, d]`
    pub fn forward(&self, x: Tensor<3>, frames: &ModalityFrames) -> Tensor<2> {
        let [n, f, _] = x.dims();
        let scores = self
            .score
            .forward(x.clone())
            .reshape([n, f])
            .mask_fill(frames.padding.clone(), -1.0e4);
        let weights = softmax(scores, 1).unsqueeze_dim::<3>(2); // [n, f, 1]
        (x * weights).sum_dim(1).squeeze_dim::<2>(1)
    }
}

/// The fixed time code: `[sin(π k τ), cos(π k τ)]` for `k = 1..=d/2`.
///
/// # Shapes
/// `time`: `[n, frames]` → `[n, frames, d]` (`d` even)
pub fn time_code(time: Tensor<2>, d: usize) -> Tensor<3> {
    let device = time.device();
    let half = d / 2;
    let freqs: Vec<f32> = (1..=half)
        .map(|k| std::f32::consts::PI * k as f32)
        .collect();
    let freqs =
        Tensor::<1>::from_data(TensorData::new(freqs, [half]), &device).reshape([1, 1, half]);
    let angle = time.unsqueeze_dim::<3>(2) * freqs; // [n, f, half]
    Tensor::cat(vec![angle.clone().sin(), angle.cos()], 2)
}

/// Configuration of [`ModalityEncoder`].
#[derive(Config, Debug)]
pub struct ModalityEncoderConfig {
    /// Width of the modality's raw frames.
    pub d_input: usize,
    /// Common width of every modality after encoding (even).
    pub d_model: usize,
    /// Run the Bi-LSTM over frames (off for one vector per utterance).
    #[config(default = true)]
    pub temporal: bool,
    /// Dropout on the raw frames, before the projection.
    #[config(default = 0.0)]
    pub input_dropout: f64,
}

/// Projection + optional Bi-LSTM + time code for one modality.
#[derive(Module, Debug)]
pub struct ModalityEncoder {
    input_dropout: Dropout,
    projection: Linear,
    lstm: Option<MaskedBiLstm>,
    norm: LayerNorm,
    d_model: usize,
}

impl ModalityEncoderConfig {
    /// Builds the encoder.
    pub fn init(&self, device: &Device) -> ModalityEncoder {
        ModalityEncoder {
            input_dropout: DropoutConfig::new(self.input_dropout).init(),
            projection: LinearConfig::new(self.d_input, self.d_model).init(device),
            lstm: self
                .temporal
                .then(|| MaskedBiLstmConfig::new(self.d_model, self.d_model / 2).init(device)),
            norm: LayerNormConfig::new(self.d_model).init(device),
            d_model: self.d_model,
        }
    }
}

impl ModalityEncoder {
    /// Encoded frames; positions past each length are meaningless and are
    /// masked downstream.
    ///
    /// # Shapes
    /// `input.frames`: `[n, frames, d_input]` → `[n, frames, d_model]`
    pub fn forward(&self, input: &ModalityFrames) -> Tensor<3> {
        let x = self
            .projection
            .forward(dropout(&self.input_dropout, input.frames.clone()));
        let x = match &self.lstm {
            Some(lstm) => x.clone() + lstm.forward(x, &input.index),
            None => x,
        };
        self.norm.forward(x) + time_code(input.time.clone(), self.d_model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_mean_ignores_padding() {
        let device = Device::default();
        let a = [1.0f32, 2.0, 3.0, 4.0]; // two frames of width 2
        let b = [10.0f32, 20.0]; // one frame
        let frames = ModalityFrames::new(&[&a, &b], 2, &device);
        let garbage = frames.frames.clone().slice_assign(
            [1..2, 1..2, 0..2],
            Tensor::<3>::from_floats([[[99.0, 99.0]]], &device),
        );
        let mean: Vec<f32> = frames
            .masked_mean(garbage)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(mean, vec![2.0, 3.0, 10.0, 20.0]);
    }

    #[test]
    fn attention_pooling_starts_at_the_mean_and_ignores_padding() {
        let device = Device::default();
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [10.0f32, 20.0];
        let frames = ModalityFrames::new(&[&a, &b], 2, &device);
        let garbage = frames.frames.clone().slice_assign(
            [1..2, 1..2, 0..2],
            Tensor::<3>::from_floats([[[99.0, 99.0]]], &device),
        );
        let pooled = AttentionPooling::init(2, &device).forward(garbage, &frames);
        pooled.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[2.0f32, 3.0], [10.0, 20.0]]),
            Default::default(),
        );
    }

    #[test]
    fn time_code_is_shared_across_frame_rates() {
        // The middle of a 1-frame and of a 3-frame utterance get the same code.
        let device = Device::default();
        let t = Tensor::<2>::from_floats([[0.5, 0.0, 0.0], [1.0 / 6.0, 0.5, 5.0 / 6.0]], &device);
        let code = time_code(t, 8);
        let a = code.clone().slice([0..1, 0..1, 0..8]).into_data();
        let b = code.slice([1..2, 1..2, 0..8]).into_data();
        a.assert_approx_eq::<f32>(&b, Default::default());
    }
}
