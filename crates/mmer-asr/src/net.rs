//! Whisper's transformer on candle, written to match the reference runtime
//! (OpenAI's model as CTranslate2 runs it) rather than candle-transformers'
//! port: exact (erf) GELU where that port uses the tanh approximation, the
//! stored encoder positions, queries scaled by 1/√d_head, fused q/k/v
//! projections, and a key/value cache for the decoder's self-attention so each
//! step feeds one token. Radford et al. 2022, "Robust Speech Recognition via
//! Large-Scale Weak Supervision", §2.2 and Fig. 1.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, Module, VarBuilder};
use serde::Deserialize;

/// The Hugging Face configuration fields the network needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct NetConfig {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub num_mel_bins: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
    pub vocab_size: usize,
}

fn linear(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
    Ok(Linear::new(
        vb.get((outputs, inputs), "weight")?,
        Some(vb.get(outputs, "bias")?),
    ))
}

fn layer_norm(vb: VarBuilder, size: usize) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(size, "weight")?,
        vb.get(size, "bias")?,
        1e-5,
    ))
}

/// Multi-head attention with the projections fused: self-attention holds
/// one `[q; k; v]` matrix, cross-attention a query matrix and a `[k; v]` one.
#[derive(Debug, Clone)]
struct Attention {
    /// Self: `[3d, d]`; cross: `[d, d]` (queries only).
    query_side: Linear,
    /// Cross-attention only: `[2d, d]` applied to the encoder output.
    key_value: Option<Linear>,
    out: Linear,
    heads: usize,
    d_model: usize,
}

impl Attention {
    fn load(vb: VarBuilder, d: usize, heads: usize, cross: bool) -> candle_core::Result<Self> {
        let q_w = vb.get((d, d), "q_proj.weight")?;
        let q_b = vb.get(d, "q_proj.bias")?;
        let k_w = vb.get((d, d), "k_proj.weight")?;
        let v_w = vb.get((d, d), "v_proj.weight")?;
        let v_b = vb.get(d, "v_proj.bias")?;
        let k_b = Tensor::zeros(d, q_b.dtype(), q_b.device())?;
        let (query_side, key_value) = if cross {
            (
                Linear::new(q_w, Some(q_b)),
                Some(Linear::new(
                    Tensor::cat(&[&k_w, &v_w], 0)?,
                    Some(Tensor::cat(&[&k_b, &v_b], 0)?),
                )),
            )
        } else {
            (
                Linear::new(
                    Tensor::cat(&[&q_w, &k_w, &v_w], 0)?,
                    Some(Tensor::cat(&[&q_b, &k_b, &v_b], 0)?),
                ),
                None,
            )
        };
        Ok(Self {
            query_side,
            key_value,
            out: linear(vb.pp("out_proj"), d, d)?,
            heads,
            d_model: d,
        })
    }

    /// `[b, t, d]` → `[b, heads, t, d_head]`.
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.d_model / self.heads))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values of the encoder output for cross-attention.
    ///
    /// # Shapes
    /// `memory: [b, s, d]` → two `[b, heads, s, d_head]`.
    fn memory_kv(&self, memory: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let kv = self
            .key_value
            .as_ref()
            .expect("memory_kv is only called on cross-attention")
            .forward(memory)?;
        let k = kv.narrow(D::Minus1, 0, self.d_model)?;
        let v = kv.narrow(D::Minus1, self.d_model, self.d_model)?;
        Ok((self.split_heads(&k)?, self.split_heads(&v)?))
    }

    /// # Shapes
    /// `q, k, v: [b, heads, t|s, d_head]`, `mask: [t, s]` → `[b, t, d]`.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let scale = 1.0 / ((self.d_model / self.heads) as f64).sqrt();
        let mut scores = (q * scale)?.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let (b, _, t, _) = q.dims4()?;
        let context = weights
            .matmul(v)?
            .transpose(1, 2)?
            .reshape((b, t, self.d_model))?;
        self.out.forward(&context)
    }

    /// Self-attention over `x`, appending its keys and values to `cache`.
    ///
    /// # Shapes
    /// `x: [b, t, d]` → `[b, t, d]`; the cache grows by `t` positions.
    fn self_attend(
        &self,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let qkv = self.query_side.forward(x)?;
        let d = self.d_model;
        let q = self.split_heads(&qkv.narrow(D::Minus1, 0, d)?)?;
        let mut k = self.split_heads(&qkv.narrow(D::Minus1, d, d)?)?;
        let mut v = self.split_heads(&qkv.narrow(D::Minus1, 2 * d, d)?)?;
        if let Some((past_k, past_v)) = cache.as_ref() {
            k = Tensor::cat(&[past_k, &k], 2)?;
            v = Tensor::cat(&[past_v, &v], 2)?;
        }
        let out = self.attend(&q, &k, &v, mask)?;
        *cache = Some((k, v));
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(vb: VarBuilder, d: usize, hidden: usize) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: linear(vb.pp("fc1"), d, hidden)?,
            fc2: linear(vb.pp("fc2"), hidden, d)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attn_ln: LayerNorm,
    attn: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    attn_ln: LayerNorm,
    attn: Attention,
    cross_ln: LayerNorm,
    cross: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

/// Per-window decoder state: cross-attention keys/values of the encoder
/// output and the self-attention cache of the tokens fed so far. A clone
/// shares the tensors (feeding replaces them), so it is cheap and the two
/// states go on independently.
#[derive(Debug, Clone)]
pub(crate) struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    cache: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

/// The network: encoder and decoder.
#[derive(Debug, Clone)]
pub(crate) struct WhisperNet {
    conv1: Conv1d,
    conv2: Conv1d,
    encoder_positions: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    encoder_ln: LayerNorm,
    token_embedding: Tensor,
    decoder_positions: Tensor,
    decoder_layers: Vec<DecoderLayer>,
    decoder_ln: LayerNorm,
    pub(crate) config: NetConfig,
}

impl WhisperNet {
    /// Loads the Hugging Face–named weights under `model.`.
    pub(crate) fn load(vb: VarBuilder, config: &NetConfig) -> candle_core::Result<Self> {
        let c = config;
        let (d, e) = (c.d_model, vb.pp("model.encoder"));
        let conv = |vb: VarBuilder, inputs: usize, stride: usize| -> candle_core::Result<Conv1d> {
            Ok(Conv1d::new(
                vb.get((d, inputs, 3), "weight")?,
                Some(vb.get(d, "bias")?),
                Conv1dConfig {
                    padding: 1,
                    stride,
                    ..Conv1dConfig::default()
                },
            ))
        };
        let encoder_layers = (0..c.encoder_layers)
            .map(|i| {
                let l = e.pp(format!("layers.{i}"));
                Ok(EncoderLayer {
                    attn_ln: layer_norm(l.pp("self_attn_layer_norm"), d)?,
                    attn: Attention::load(l.pp("self_attn"), d, c.encoder_attention_heads, false)?,
                    mlp_ln: layer_norm(l.pp("final_layer_norm"), d)?,
                    mlp: Mlp::load(l.clone(), d, c.encoder_ffn_dim)?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        let dv = vb.pp("model.decoder");
        let decoder_layers = (0..c.decoder_layers)
            .map(|i| {
                let l = dv.pp(format!("layers.{i}"));
                Ok(DecoderLayer {
                    attn_ln: layer_norm(l.pp("self_attn_layer_norm"), d)?,
                    attn: Attention::load(l.pp("self_attn"), d, c.decoder_attention_heads, false)?,
                    cross_ln: layer_norm(l.pp("encoder_attn_layer_norm"), d)?,
                    cross: Attention::load(
                        l.pp("encoder_attn"),
                        d,
                        c.decoder_attention_heads,
                        true,
                    )?,
                    mlp_ln: layer_norm(l.pp("final_layer_norm"), d)?,
                    mlp: Mlp::load(l.clone(), d, c.decoder_ffn_dim)?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            conv1: conv(e.pp("conv1"), c.num_mel_bins, 1)?,
            conv2: conv(e.pp("conv2"), d, 2)?,
            encoder_positions: e.get((c.max_source_positions, d), "embed_positions.weight")?,
            encoder_layers,
            encoder_ln: layer_norm(e.pp("layer_norm"), d)?,
            token_embedding: dv.get((c.vocab_size, d), "embed_tokens.weight")?,
            decoder_positions: dv.get((c.max_target_positions, d), "embed_positions.weight")?,
            decoder_layers,
            decoder_ln: layer_norm(dv.pp("layer_norm"), d)?,
            config: config.clone(),
        })
    }

    /// # Shapes
    /// `mel: [1, n_mels, 3000]` → `[1, 1500, d]`.
    pub(crate) fn encode(&self, mel: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?.transpose(1, 2)?;
        let positions = self.encoder_positions.narrow(0, 0, x.dim(1)?)?;
        let mut x = x.broadcast_add(&positions)?;
        for layer in &self.encoder_layers {
            let h = layer.attn_ln.forward(&x)?;
            x = (x + layer.attn.self_attend(&h, &mut None, None)?)?;
            x = (&x + layer.mlp.forward(&layer.mlp_ln.forward(&x)?)?)?;
        }
        self.encoder_ln.forward(&x)
    }

    /// A fresh decoder state for one encoded window.
    pub(crate) fn start(&self, audio: &Tensor) -> candle_core::Result<DecoderState> {
        Ok(DecoderState {
            cross: self
                .decoder_layers
                .iter()
                .map(|l| l.cross.memory_kv(audio))
                .collect::<candle_core::Result<_>>()?,
            cache: vec![None; self.decoder_layers.len()],
            len: 0,
        })
    }

    /// Feeds `tokens` after those already in `state`; returns the final
    /// hidden states of the new positions.
    ///
    /// # Shapes
    /// `tokens: [t]` → `[1, t, d]`.
    pub(crate) fn decode(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
    ) -> candle_core::Result<Tensor> {
        let device = self.token_embedding.device();
        let t = tokens.len();
        let ids = Tensor::new(tokens, device)?;
        let x = self.token_embedding.index_select(&ids, 0)?;
        let positions = self.decoder_positions.narrow(0, state.len, t)?;
        let mut x = (x + positions)?.unsqueeze(0)?;
        // New positions see the cache and themselves causally.
        let mask = (t > 1)
            .then(|| causal_mask(t, state.len, device))
            .transpose()?;
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            let h = layer.attn_ln.forward(&x)?;
            x = (x + layer
                .attn
                .self_attend(&h, &mut state.cache[i], mask.as_ref())?)?;
            let h = layer.cross_ln.forward(&x)?;
            let q = layer
                .cross
                .split_heads(&layer.cross.query_side.forward(&h)?)?;
            let (k, v) = &state.cross[i];
            x = (&x + layer.cross.attend(&q, k, v, None)?)?;
            x = (&x + layer.mlp.forward(&layer.mlp_ln.forward(&x)?)?)?;
        }
        state.len += t;
        self.decoder_ln.forward(&x)
    }

    /// Logits of hidden states (the output projection is the token embedding).
    ///
    /// # Shapes
    /// `hidden: [t, d]` → `[t, vocab]`.
    pub(crate) fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        hidden.matmul(&self.token_embedding.t()?)
    }
}

/// `[t, past + t]`: 0 where query i may see key j (j ≤ past + i), −∞ elsewhere.
fn causal_mask(t: usize, past: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..past + t).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
        })
        .collect();
    Tensor::from_vec(values, (t, past + t), device)?.to_dtype(DType::F32)
}
