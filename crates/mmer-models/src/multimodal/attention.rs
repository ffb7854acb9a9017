//! Multimodal Attention Network, MAN (AMuSE §III-B Eq. 1; thesis §3.1.2).
//!
//! For each modality m a "central" stack of layers; each layer is
//!
//! ```text
//! g₁ = LN(g + SelfAttn(g))                                   self-attention on m
//! g₂ = LN(g₁ + Σ_{p ≠ m} w_p · CrossAttn_p(q = g₁, k = v = f_p))   injection
//! g₃ = LN(g₂ + FFN(g₂))
//! ```
//!
//! where `f_p` are the encoded frames of each "peripheral" modality and
//! `w_p = σ(θ_p) / (M − 1)` are learned injection weights (Eq. 1 averages the
//! peripherals with 1/|M|; the gates let training re-weight them). Every
//! attention is within one utterance and masks padded frames — unlike the
//! authors' code, which attended across every utterance of the batch,
//! padding included (methods-detail §1.4 bug 2). The feed-forward block and
//! layer norms follow the standard transformer layer (Vaswani et al. 2017);
//! the paper leaves them implicit.
//!
//! [`ManResidual::Rezero`] replaces each `LN(x + branch)` by `x + s · branch`
//! with a learned scalar `s` that starts at 0 (ReZero, Bachlechner et al.
//! 2021): the whole network starts as the identity and each layer adds only
//! what training finds useful. With one modality MAN has nothing to
//! cross-attend, and the post-norm stack is four extra layers in front of the
//! context model; ReZero lets that case start from the plain encoder.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::{Bool, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::encoder::ModalityFrames;
use crate::blocks::fast_dropout;

/// Multi-head scaled dot-product attention with a key padding mask
/// (Vaswani et al. 2017). The same computation and initialisation as burn's
/// `MultiHeadAttention`, with the attention-weight dropout drawn by
/// [`fast_dropout`] — burn's mask sampling dominated MAN's training step.
#[derive(Module, Debug)]
pub struct MaskedAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    dropout: Dropout,
    heads: usize,
}

impl MaskedAttention {
    pub(crate) fn init(d_model: usize, heads: usize, dropout: f64, device: &Device) -> Self {
        assert!(
            heads > 0 && d_model.is_multiple_of(heads),
            "{heads} heads must divide the width {d_model}"
        );
        let linear =
            LinearConfig::new(d_model, d_model).with_initializer(Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            });
        Self {
            query: linear.init(device),
            key: linear.init(device),
            value: linear.init(device),
            output: linear.init(device),
            dropout: DropoutConfig::new(dropout).init(),
            heads,
        }
    }

    /// `[n, f, d]` → `[n, heads, f, d / heads]`
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [n, f, d] = x.dims();
        x.reshape([n, f, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// # Shapes
    /// `query`: `[n, f_q, d]`, `key_value`: `[n, f_k, d]`,
    /// `key_padding`: `[n, f_k]` (true = padded, never attended) →
    /// `[n, f_q, d]`
    pub fn forward(
        &self,
        query: Tensor<3>,
        key_value: Tensor<3>,
        key_padding: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let [n, f_q, d] = query.dims();
        let [_, f_k] = key_padding.dims();
        // Scaling the queries rather than the scores: fewer elements.
        let scale = ((d / self.heads) as f32).sqrt();
        let q = self.split_heads(self.query.forward(query).div_scalar(scale));
        let k = self.split_heads(self.key.forward(key_value.clone()));
        let v = self.split_heads(self.value.forward(key_value));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mask_fill(key_padding.reshape([n, 1, 1, f_k]), -1.0e4);
        let weights = fast_dropout(&self.dropout, softmax(scores, 3));
        let context = weights.matmul(v).swap_dims(1, 2).reshape([n, f_q, d]);
        self.output.forward(context)
    }
}

/// How each MAN sub-layer's output joins its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ManResidual {
    /// `LN(x + branch)`: the standard (post-norm) transformer layer.
    #[default]
    #[cfg_attr(feature = "clap", value(alias = "post_norm"))]
    PostNorm,
    /// `x + s · branch`, `s` a learned scalar starting at 0 (ReZero).
    Rezero,
}

/// Configuration of [`MultimodalAttention`].
#[derive(Config, Debug)]
pub struct MultimodalAttentionConfig {
    /// Number of modalities (1–4); with one there is no peripheral and each
    /// layer is a plain transformer layer.
    pub modalities: usize,
    /// Common width of every modality.
    pub d_model: usize,
    /// Layers per central stack (AMuSE Table V: 4 is best).
    #[config(default = 4)]
    pub layers: usize,
    /// Attention heads (must divide `d_model`).
    #[config(default = 4)]
    pub heads: usize,
    /// Dropout on attention weights and residual branches.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// How sub-layer outputs join the residual stream.
    #[config(default = "ManResidual::PostNorm")]
    pub residual: ManResidual,
}

/// One layer of a central stack.
#[derive(Module, Debug)]
pub struct ManLayer {
    self_attention: MaskedAttention,
    /// One cross-attention per peripheral modality.
    cross_attention: Vec<MaskedAttention>,
    /// Injection gate logits θ_p, one per peripheral (absent without any).
    injection: Option<Param<Tensor<1>>>,
    feed_forward_in: Linear,
    feed_forward_out: Linear,
    /// Post-norm: the layer norms after self-attention, injection (with
    /// peripherals) and the feed-forward block.
    self_norm: Option<LayerNorm>,
    cross_norm: Option<LayerNorm>,
    feed_forward_norm: Option<LayerNorm>,
    /// ReZero: the scales of the same three branches, starting at 0.
    rezero: Option<Param<Tensor<1>>>,
    dropout: Dropout,
}

/// The three residual joins of a [`ManLayer`], indexing its ReZero scales.
#[derive(Clone, Copy)]
enum Branch {
    SelfAttention = 0,
    Injection = 1,
    FeedForward = 2,
}

/// The central stack of one modality.
#[derive(Module, Debug)]
pub struct CentralStack {
    layers: Vec<ManLayer>,
}

/// MAN over `M` modalities: one `CentralStack` per modality.
#[derive(Module, Debug)]
pub struct MultimodalAttention {
    stacks: Vec<CentralStack>,
}

impl MultimodalAttentionConfig {
    fn layer(&self, device: &Device) -> ManLayer {
        let d = self.d_model;
        let mha = || MaskedAttention::init(d, self.heads, self.dropout, device);
        let peripherals = self.modalities.saturating_sub(1);
        let post_norm = self.residual == ManResidual::PostNorm;
        let norm =
            |present: bool| (post_norm && present).then(|| LayerNormConfig::new(d).init(device));
        ManLayer {
            self_attention: mha(),
            cross_attention: (0..peripherals).map(|_| mha()).collect(),
            // σ(0) = 0.5: every peripheral starts equally injected.
            injection: (peripherals > 0).then(|| Initializer::Zeros.init([peripherals], device)),
            feed_forward_in: LinearConfig::new(d, 2 * d).init(device),
            feed_forward_out: LinearConfig::new(2 * d, d).init(device),
            self_norm: norm(true),
            cross_norm: norm(peripherals > 0),
            feed_forward_norm: norm(true),
            rezero: (!post_norm).then(|| Initializer::Zeros.init([3], device)),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> MultimodalAttention {
        MultimodalAttention {
            stacks: (0..self.modalities)
                .map(|_| CentralStack {
                    layers: (0..self.layers).map(|_| self.layer(device)).collect(),
                })
                .collect(),
        }
    }
}

impl ManLayer {
    /// `peripheral_present` (`[n, P]`, 1/0; `None`: all present): each row
    /// injects only the peripherals it has, their weights `σ(θ_p) / P'`
    /// over its `P'` present ones; a row with none keeps its self-attended
    /// frames (no injection join at all).
    ///
    /// # Shapes
    /// `central`: `[n, f_m, d]`, each peripheral `[n, f_p, d]` → `[n, f_m, d]`
    fn forward(
        &self,
        central: Tensor<3>,
        central_frames: &ModalityFrames,
        peripherals: &[(&Tensor<3>, &ModalityFrames)],
        peripheral_present: Option<&Tensor<2>>,
    ) -> Tensor<3> {
        let attended = self.self_attention.forward(
            central.clone(),
            central.clone(),
            central_frames.padding.clone(),
        );
        let g = self.join(Branch::SelfAttention, central, attended, &self.self_norm);
        let Some(injection) = &self.injection else {
            return self.feed_forward(g);
        };
        if let Some(present) = peripheral_present {
            return self.feed_forward(self.inject_present(g, injection, peripherals, present));
        }
        let weights = sigmoid(injection.val()).div_scalar(peripherals.len() as f32); // [P]
        let mut injected: Option<Tensor<3>> = None;
        for (p, ((features, frames), attention)) in
            peripherals.iter().zip(&self.cross_attention).enumerate()
        {
            let context = attention.forward(g.clone(), (*features).clone(), frames.padding.clone()); // [n, f_m, d]
            let weighted = context * weights.clone().narrow(0, p, 1).reshape([1, 1, 1]);
            injected = Some(match injected {
                Some(sum) => sum + weighted,
                None => weighted,
            });
        }
        let g = match injected {
            Some(sum) => self.join(Branch::Injection, g, sum, &self.cross_norm),
            None => g,
        };
        self.feed_forward(g)
    }

    /// The injection join of [`ManLayer::forward`] when some rows lack
    /// peripherals.
    ///
    /// # Shapes
    /// `g`: `[n, f_m, d]`, `present`: `[n, P]` → `[n, f_m, d]`
    fn inject_present(
        &self,
        g: Tensor<3>,
        injection: &Param<Tensor<1>>,
        peripherals: &[(&Tensor<3>, &ModalityFrames)],
        present: &Tensor<2>,
    ) -> Tensor<3> {
        let [n, f, d] = g.dims();
        let p = peripherals.len();
        let count = present.clone().sum_dim(1); // [n, 1]
        let weights = sigmoid(injection.val()).reshape([1, p]) * present.clone()
            / count.clone().clamp_min(1.0); // [n, P]
        let mut sum = g.zeros_like();
        for (k, ((features, frames), attention)) in
            peripherals.iter().zip(&self.cross_attention).enumerate()
        {
            let context = attention.forward(g.clone(), (*features).clone(), frames.padding.clone()); // [n, f_m, d]
            // An absent peripheral attends over padding only: select it
            // away rather than multiplying it by a zero weight.
            let absent = present
                .clone()
                .narrow(1, k, 1)
                .lower_elem(0.5)
                .reshape([n, 1, 1])
                .expand([n, f, d]);
            let w = weights.clone().narrow(1, k, 1).reshape([n, 1, 1]);
            sum = sum + (context * w).mask_fill(absent, 0.0);
        }
        let none = count.lower_elem(0.5).reshape([n, 1, 1]).expand([n, f, d]);
        self.join(Branch::Injection, g.clone(), sum, &self.cross_norm)
            .mask_where(none, g)
    }

    fn feed_forward(&self, g: Tensor<3>) -> Tensor<3> {
        let h = self
            .feed_forward_out
            .forward(gelu(self.feed_forward_in.forward(g.clone())));
        self.join(Branch::FeedForward, g, h, &self.feed_forward_norm)
    }

    /// `x` plus the (dropped-out) `branch`: layer-normed after the sum
    /// (post-norm) or scaled by the branch's ReZero scale.
    fn join(
        &self,
        which: Branch,
        x: Tensor<3>,
        branch: Tensor<3>,
        norm: &Option<LayerNorm>,
    ) -> Tensor<3> {
        let branch = fast_dropout(&self.dropout, branch);
        match (&self.rezero, norm) {
            (Some(scales), _) => {
                let i = which as usize;
                x + branch * scales.val().narrow(0, i, 1).reshape([1, 1, 1])
            }
            (None, Some(norm)) => norm.forward(x + branch),
            (None, None) => unreachable!("a post-norm layer has a norm for every branch"),
        }
    }
}

impl MultimodalAttention {
    /// Cross-attended frames of every modality, in input order.
    ///
    /// `present` (`[n, M]`, 1/0; `None`: all present) masks absent
    /// peripherals (see `ManLayer`); the output of an absent central
    /// modality is computed from padding and must be masked by the caller.
    ///
    /// # Shapes
    /// `encoded[m]`: `[n, f_m, d]`, `present`: `[n, M]` → `[n, f_m, d]` per modality
    ///
    /// # Panics
    /// If `encoded` and `frames` do not have one entry per modality.
    pub fn forward(
        &self,
        encoded: &[Tensor<3>],
        frames: &[ModalityFrames],
        present: Option<&Tensor<2>>,
    ) -> Vec<Tensor<3>> {
        assert_eq!(encoded.len(), self.stacks.len(), "one input per modality");
        assert_eq!(
            frames.len(),
            self.stacks.len(),
            "one frame index per modality"
        );
        self.stacks
            .iter()
            .enumerate()
            .map(|(m, stack)| {
                let peripherals: Vec<(&Tensor<3>, &ModalityFrames)> = encoded
                    .iter()
                    .zip(frames)
                    .enumerate()
                    .filter(|(p, _)| *p != m)
                    .map(|(_, pair)| pair)
                    .collect();
                let peripheral_present = present.filter(|_| self.stacks.len() > 1).map(|present| {
                    let others: Vec<Tensor<2>> = (0..self.stacks.len())
                        .filter(|&p| p != m)
                        .map(|p| present.clone().narrow(1, p, 1))
                        .collect();
                    Tensor::cat(others, 1)
                });
                stack.layers.iter().fold(encoded[m].clone(), |g, layer| {
                    layer.forward(g, &frames[m], &peripherals, peripheral_present.as_ref())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::attention::{MhaInput, MultiHeadAttentionConfig};
    use burn::tensor::{Distribution, TensorData, Tolerance};

    /// Same weights, same outputs as burn's `MultiHeadAttention` with a key
    /// padding mask — and padded keys do not matter.
    #[test]
    fn matches_burns_multi_head_attention_and_ignores_padded_keys() {
        let device = Device::default();
        device.seed(3);
        let reference = MultiHeadAttentionConfig::new(8, 2)
            .with_dropout(0.0)
            .init(&device);
        let ours = MaskedAttention {
            query: reference.query.clone(),
            key: reference.key.clone(),
            value: reference.value.clone(),
            output: reference.output.clone(),
            dropout: DropoutConfig::new(0.0).init(),
            heads: 2,
        };
        let query = Tensor::<3>::random([2, 3, 8], Distribution::Normal(0.0, 1.0), &device);
        let keys = Tensor::<3>::random([2, 4, 8], Distribution::Normal(0.0, 1.0), &device);
        let padding = Tensor::<2, Bool>::from_data(
            TensorData::from([[false, false, true, true], [false, false, false, false]]),
            &device,
        );
        let expected = reference
            .forward(
                MhaInput::new(query.clone(), keys.clone(), keys.clone()).mask_pad(padding.clone()),
            )
            .context;
        let got = ours.forward(query.clone(), keys.clone(), padding.clone());
        got.clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));

        let garbage = keys.slice_assign(
            [0..1, 2..4, 0..8],
            Tensor::<3>::full([1, 2, 8], 50.0, &device),
        );
        ours.forward(query, garbage, padding)
            .into_data()
            .assert_approx_eq::<f32>(&got.into_data(), Tolerance::absolute(1e-6));
    }
}
