//! SeMuL-PCD's multimodal transformer (thesis §3.2; methods-detail §2.2):
//! one token stream per modality with a learned aggregation token, and a
//! fusion stream — one learned token — that cross-attends to every
//! modality's tokens. Each modality's pooled aggregation token feeds its
//! own classifier (a "peer"); the fusion token feeds the student head.
//!
//! Tokens are the modality's encoded frames (features as tokens: text
//! token or layer states, audio windows, face and body frames from the
//! store), each stream `[agg, frame₁ … frame_f]`. One layer, per stream:
//!
//! ```text
//! h = LN(x + SelfAttn(x))           modality m: its own tokens, padding masked
//! h = LN(x_f + Attn(x_f, [x_1 … x_M]))   fusion: every modality's tokens,
//!                                   concatenated, padding and absent modalities masked
//! y = LN(h + FFN(h))
//! ```
//!
//! Fixed against the authors' `models/mmt.py` (methods-detail §2.4): the
//! padding mask is a large negative (they added `1e-9`, masking nothing)
//! and aligned with the prepended aggregation token; the fusion stream's
//! keys are masked too; the pooled token is the aggregation token (index
//! 0), not the last token; `layers` distinct layers by default (the authors
//! applied one layer 25 times — [`PeerSpec::share_layers`] is that option);
//! a second layer norm after the feed-forward block (standard post-norm;
//! theirs had none). A modality a turn lacks is never attended by the
//! fusion token; its stream runs on padding and its peer is masked by the
//! caller.
//!
//! The peers' contrastive alignment projects each aggregation token to a
//! unit embedding (`P_m`); [`PeerTransformer::scale`] is the learned CLIP
//! scale `1/τ` (initialised at `1/0.07`, clamped at 100), not the authors'
//! unclamped `e^0.08`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::gelu;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::attention::MaskedAttention;
use super::encoder::ModalityFrames;
use crate::blocks::fast_dropout;
use crate::nce::{clip_log_scale, clip_scale, l2_normalize};

/// SeMuL-PCD's settings (`[train.model.peers]`), read by the `semul_pcd`
/// fusion only. The loss weights follow the authors' configuration
/// (calibration 1.0, NCE 0.5, distillation 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerSpec {
    /// Transformer layers.
    pub layers: usize,
    /// Apply one layer's weights `layers` times (the authors' code) instead
    /// of `layers` distinct layers.
    pub share_layers: bool,
    /// Width of the peers' contrastive projection.
    pub d_projection: usize,
    /// Weight of the mean of the peers' classification losses.
    pub peer_weight: f64,
    /// Weight of the calibration loss on the fusion head.
    pub calibration_weight: f64,
    /// Weight of the peers' symmetric InfoNCE.
    pub nce_weight: f64,
    /// Weight of the peer-ensemble → fusion distillation.
    pub distill_weight: f64,
    /// Fixed distillation temperature `T` (the loss is scaled by `T²`).
    pub distill_temperature: f64,
}

impl Default for PeerSpec {
    fn default() -> Self {
        Self {
            layers: 2,
            share_layers: false,
            d_projection: 64,
            peer_weight: 1.0,
            calibration_weight: 1.0,
            nce_weight: 0.5,
            distill_weight: 0.5,
            distill_temperature: 2.0,
        }
    }
}

/// Configuration of [`PeerTransformer`].
#[derive(Config, Debug)]
pub struct PeerTransformerConfig {
    /// Number of modalities.
    pub modalities: usize,
    /// Token width (the encoders' common width).
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    #[config(default = 4)]
    pub heads: usize,
    /// Layers.
    #[config(default = 2)]
    pub layers: usize,
    /// One layer applied `layers` times.
    #[config(default = false)]
    pub share_layers: bool,
    /// Width of the contrastive projection.
    #[config(default = 64)]
    pub d_projection: usize,
    /// Dropout on attention weights and residual branches.
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// One stream's attention + feed-forward block (post-norm).
#[derive(Module, Debug)]
struct StreamBlock {
    attention: MaskedAttention,
    attention_norm: LayerNorm,
    feed_forward_in: Linear,
    feed_forward_out: Linear,
    feed_forward_norm: LayerNorm,
    dropout: Dropout,
}

impl StreamBlock {
    fn init(d: usize, heads: usize, dropout: f64, device: &Device) -> Self {
        Self {
            attention: MaskedAttention::init(d, heads, dropout, device),
            attention_norm: LayerNormConfig::new(d).init(device),
            feed_forward_in: LinearConfig::new(d, 4 * d).init(device),
            feed_forward_out: LinearConfig::new(4 * d, d).init(device),
            feed_forward_norm: LayerNormConfig::new(d).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// # Shapes
    /// `query`: `[n, f_q, d]`, `key_value`: `[n, f_k, d]`, `key_padding`:
    /// `[n, f_k]` → `[n, f_q, d]`
    fn forward(
        &self,
        query: Tensor<3>,
        key_value: Tensor<3>,
        key_padding: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let attended = self
            .attention
            .forward(query.clone(), key_value, key_padding);
        let h = self
            .attention_norm
            .forward(query + fast_dropout(&self.dropout, attended));
        let f = self
            .feed_forward_out
            .forward(gelu(self.feed_forward_in.forward(h.clone())));
        self.feed_forward_norm
            .forward(h + fast_dropout(&self.dropout, f))
    }
}

/// One layer: a block per modality stream and one for the fusion stream.
#[derive(Module, Debug)]
struct PeerLayer {
    streams: Vec<StreamBlock>,
    fusion: StreamBlock,
}

/// The multi-stream transformer of SeMuL-PCD.
#[derive(Module, Debug)]
pub struct PeerTransformer {
    /// The aggregation token of each modality, `[1, d]`.
    aggregation: Vec<Param<Tensor<2>>>,
    /// The fusion stream's token, `[1, d]`.
    fusion_token: Param<Tensor<2>>,
    /// Distinct layers, or one shared layer.
    layers: Vec<PeerLayer>,
    /// How many times the layers are applied in all ([`PeerSpec::layers`]).
    depth: usize,
    /// `P_m`, the contrastive projection of each modality's aggregation
    /// token (empty for one modality: nothing to align).
    projections: Vec<Linear>,
    /// `ln(1/τ)` of the NCE (`None` for one modality).
    log_scale: Option<Param<Tensor<1>>>,
}

/// What [`PeerTransformer::forward`] returns.
#[derive(Debug, Clone)]
pub struct PeerOutput {
    /// Each modality's pooled aggregation token, `[n, d]` (a modality the
    /// turn lacks gives a vector computed from padding: mask it).
    pub peers: Vec<Tensor<2>>,
    /// The pooled fusion token, `[n, d]`.
    pub fused: Tensor<2>,
    /// Unit contrastive embeddings per modality, `[n, d_projection]`
    /// (empty for one modality).
    pub embeddings: Vec<Tensor<2>>,
}

impl PeerTransformerConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> PeerTransformer {
        let d = self.d_model;
        let token = || {
            Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([1, d], device)
        };
        let distinct = if self.share_layers { 1 } else { self.layers };
        PeerTransformer {
            aggregation: (0..self.modalities).map(|_| token()).collect(),
            fusion_token: token(),
            layers: (0..distinct)
                .map(|_| PeerLayer {
                    streams: (0..self.modalities)
                        .map(|_| StreamBlock::init(d, self.heads, self.dropout, device))
                        .collect(),
                    fusion: StreamBlock::init(d, self.heads, self.dropout, device),
                })
                .collect(),
            depth: self.layers,
            projections: if self.modalities > 1 {
                (0..self.modalities)
                    .map(|_| LinearConfig::new(d, self.d_projection).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            log_scale: (self.modalities > 1).then(|| clip_log_scale(device)),
        }
    }
}

impl PeerTransformer {
    /// The NCE scale `1/τ`, clamped at 100 (CLIP); `None` for one modality.
    pub fn scale(&self) -> Option<Tensor<1>> {
        self.log_scale.as_ref().map(clip_scale)
    }

    /// Runs the streams over the encoded frames of `n` turns.
    ///
    /// `present` (`[n, M]`, 1/0; `None`: all present): the fusion token
    /// never attends to a modality the turn lacks.
    ///
    /// # Shapes
    /// `encoded[m]`: `[n, f_m, d]`, `present`: `[n, M]` → [`PeerOutput`]
    ///
    /// # Panics
    /// If `encoded` and `frames` do not have one entry per modality.
    pub fn forward(
        &self,
        encoded: Vec<Tensor<3>>,
        frames: &[ModalityFrames],
        present: Option<&Tensor<2>>,
    ) -> PeerOutput {
        assert_eq!(
            encoded.len(),
            self.aggregation.len(),
            "one input per modality"
        );
        assert_eq!(frames.len(), encoded.len(), "one frame set per modality");
        let [n, _, d] = encoded[0].dims();
        let device = encoded[0].device();
        let unmasked =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false; n], [n, 1]), &device);
        // Each stream: [agg, frames…]; its own padding, and the fusion
        // token's view of it (also masked where the turn lacks it).
        let mut streams = Vec::with_capacity(encoded.len());
        let mut own_padding = Vec::with_capacity(encoded.len());
        let mut fusion_padding = Vec::with_capacity(encoded.len());
        for (m, (x, frames)) in encoded.into_iter().zip(frames).enumerate() {
            let agg = self.aggregation[m]
                .val()
                .unsqueeze_dim::<3>(0)
                .expand([n, 1, d]);
            streams.push(Tensor::cat(vec![agg, x], 1));
            let padding = Tensor::cat(vec![unmasked.clone(), frames.padding.clone()], 1);
            let [_, f] = padding.dims();
            fusion_padding.push(match present {
                Some(p) => {
                    let absent = p.clone().narrow(1, m, 1).lower_elem(0.5).expand([n, f]);
                    padding.clone().bool_or(absent)
                }
                None => padding.clone(),
            });
            own_padding.push(padding);
        }
        let fusion_padding = Tensor::cat(fusion_padding, 1);
        let mut fused = self
            .fusion_token
            .val()
            .unsqueeze_dim::<3>(0)
            .expand([n, 1, d]);
        for k in 0..self.depth {
            let layer = &self.layers[k % self.layers.len()];
            let keys = Tensor::cat(streams.clone(), 1);
            fused = layer.fusion.forward(fused, keys, fusion_padding.clone());
            streams = streams
                .into_iter()
                .zip(&layer.streams)
                .zip(&own_padding)
                .map(|((x, block), padding)| block.forward(x.clone(), x, padding.clone()))
                .collect();
        }
        let pool = |x: Tensor<3>| x.narrow(1, 0, 1).reshape([n, d]);
        let peers: Vec<Tensor<2>> = streams.into_iter().map(pool).collect();
        let embeddings = self
            .projections
            .iter()
            .zip(&peers)
            .map(|(projection, peer)| l2_normalize(projection.forward(peer.clone())))
            .collect();
        PeerOutput {
            peers,
            fused: pool(fused),
            embeddings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(lengths: &[usize], width: usize, offset: f32, device: &Device) -> ModalityFrames {
        let data: Vec<Vec<f32>> = lengths
            .iter()
            .enumerate()
            .map(|(u, &len)| {
                (0..len * width)
                    .map(|i| ((u * 31 + i) as f32 * 0.37 + offset).sin())
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        ModalityFrames::new(&refs, width, device)
    }

    #[test]
    fn padding_and_absent_modalities_are_never_attended() {
        let device = Device::default();
        let d = 8;
        let model = PeerTransformerConfig::new(2, d).with_heads(2).init(&device);
        let a = frames(&[3, 1], d, 0.0, &device);
        let b = frames(&[2, 2], d, 1.0, &device);
        let present = Tensor::<2>::from_floats([[1.0, 1.0], [1.0, 0.0]], &device);
        let run = |a: &ModalityFrames, b: &ModalityFrames| {
            let out = model.forward(
                vec![a.frames.clone(), b.frames.clone()],
                &[a.clone(), b.clone()],
                Some(&present),
            );
            (out.peers[0].clone(), out.fused)
        };
        let (peer, fused) = run(&a, &b);
        // Garbage in a's padding (turn 1 has one frame of three) and in the
        // whole of b for turn 1, which lacks it.
        let noisy_a = ModalityFrames {
            frames: a.frames.clone().slice_assign(
                [1..2, 1..3, 0..d],
                Tensor::<3>::full([1, 2, d], 50.0, &device),
            ),
            ..a.clone()
        };
        let noisy_b = ModalityFrames {
            frames: b.frames.clone().slice_assign(
                [1..2, 0..2, 0..d],
                Tensor::<3>::full([1, 2, d], -50.0, &device),
            ),
            ..b.clone()
        };
        let (noisy_peer, noisy_fused) = run(&noisy_a, &noisy_b);
        let row = |x: Tensor<2>| x.narrow(0, 1, 1).into_data();
        row(peer).assert_approx_eq::<f32>(&row(noisy_peer), Default::default());
        row(fused.clone()).assert_approx_eq::<f32>(&row(noisy_fused.clone()), Default::default());
        // Turn 0 has both modalities: changing b's real frames changes it.
        let moved_b = ModalityFrames {
            frames: b.frames.clone().slice_assign(
                [0..1, 0..1, 0..d],
                Tensor::<3>::full([1, 1, d], 3.0, &device),
            ),
            ..b.clone()
        };
        let (_, moved) = run(&a, &moved_b);
        let first = |x: Tensor<2>| x.narrow(0, 0, 1).into_data().try_to_vec::<f32>().unwrap();
        let diff: f32 = first(fused)
            .iter()
            .zip(first(moved))
            .map(|(x, y)| (x - y).abs())
            .sum();
        assert!(diff > 1e-3, "the fusion token ignores a present modality");
    }

    #[test]
    fn shared_layers_have_one_layer_of_weights() {
        let device = Device::default();
        let distinct = PeerTransformerConfig::new(3, 8)
            .with_layers(4)
            .init(&device);
        let shared = PeerTransformerConfig::new(3, 8)
            .with_layers(4)
            .with_share_layers(true)
            .init(&device);
        assert_eq!(distinct.layers.len(), 4);
        assert_eq!(shared.layers.len(), 1);
        let layer = shared.layers[0].num_params();
        assert_eq!(distinct.num_params() - shared.num_params(), 3 * layer);
    }
}
