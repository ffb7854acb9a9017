//! MPNet (Masked and Permuted Pre-training for Language Understanding), encoder
//! only, for frozen inference on candle.
//!
//! - [Arxiv](https://arxiv.org/abs/2004.09297) "MPNet: Masked and Permuted
//!   Pre-training for Language Understanding" (Song et al., NeurIPS 2020).
//! - Upstream [GitHub repo](https://github.com/microsoft/MPNet).
//! - Ported from Hugging Face transformers
//!   [`models/mpnet/modeling_mpnet.py`](https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py),
//!   following the conventions of candle-transformers' `models/bert.rs`
//!   (serde `Config` mirroring `config.json`, `load(vb, cfg)` per block, `vb.pp`
//!   names equal to the checkpoint keys). No Rust crate implements MPNet.
//!
//! The encoder is BERT's, with three differences, all reproduced here:
//! 1. attention projections are named `attention.attn.{q,k,v,o}` and the
//!    attention LayerNorm sits at `attention.LayerNorm`;
//! 2. there are no token-type embeddings, and position ids start at
//!    `padding_idx + 1` and skip padding, as in RoBERTa:
//!    `pos = cumsum(id != pad) * (id != pad) + pad`;
//! 3. every layer adds one shared relative-position bias to its attention
//!    scores: `encoder.relative_attention_bias.weight` is `[num_buckets,
//!    num_heads]` (32 × 12 for mpnet-base), indexed by the T5-style
//!    bidirectional bucket of `key_pos − query_pos` with `max_distance` 128
//!    (see [`relative_position_bucket`]).
//!
//! Not reproduced: dropout (inference only), head masks, attention outputs,
//! the pooler and the MLM head (sentence-transformers uses the token states).
//!
//! The same code runs BERT checkpoints (`"model_type": "bert"`, e.g.
//! all-MiniLM-L6-v2) by undoing the three differences: BERT's key names are
//! mapped onto MPNet's when loading, positions count from 0, the (constant)
//! token-type-0 embedding is folded into the position table, and there is no
//! relative bias. That gives BERT this module's vectorised GELU
//! (`crate::gelu`) instead of candle-transformers' element-wise `erf`.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder, embedding};
pub use candle_transformers::models::bert::HiddenAct;
use candle_transformers::models::with_tracing::{LayerNorm, Linear, layer_norm, linear};
use serde::Deserialize;

/// Relative distance beyond which all positions share the outermost bucket.
/// Hard-coded in upstream `MPNetEncoder.relative_position_bucket`
/// (`max_distance=128`); `config.json` does not carry it.
pub const RELATIVE_ATTENTION_MAX_DISTANCE: usize = 128;

fn default_num_buckets() -> usize {
    32
}

/// Which architecture a checkpoint is (`model_type` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    /// MPNet: relative-position bias, RoBERTa-style positions.
    #[default]
    Mpnet,
    /// BERT: absolute positions from 0 and a token-type embedding.
    Bert,
}

/// MPNet hyper-parameters, mirroring the keys of Hugging Face `config.json`
/// (`MPNetConfig`, or `BertConfig` for BERT checkpoints); unknown keys are
/// ignored, as in candle's `bert::Config`.
// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/configuration_mpnet.py
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// Vocabulary size (30527 for mpnet-base).
    pub vocab_size: usize,
    /// Model width `d_model` (768).
    pub hidden_size: usize,
    /// Number of encoder layers (12).
    pub num_hidden_layers: usize,
    /// Attention heads per layer (12).
    pub num_attention_heads: usize,
    /// Feed-forward width (3072).
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu` = exact erf GELU).
    pub hidden_act: HiddenAct,
    /// Rows of the absolute position table (514 = 512 + padding_idx + 1).
    pub max_position_embeddings: usize,
    /// LayerNorm epsilon (1e-5).
    pub layer_norm_eps: f64,
    /// Id of `<pad>`; also the `padding_idx` of the position table (1).
    pub pad_token_id: u32,
    /// Buckets of the relative-position bias (32).
    #[serde(default = "default_num_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Dropout on hidden states; unused at inference.
    #[serde(default)]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities; unused at inference.
    #[serde(default)]
    pub attention_probs_dropout_prob: f64,
    /// MPNet (default) or BERT.
    #[serde(default)]
    pub model_type: ModelType,
}

impl Config {
    /// Whether the feed-forward activation is the exact (erf) GELU, the
    /// only one the trainable encoder implements.
    pub fn exact_gelu(&self) -> bool {
        matches!(self.hidden_act, HiddenAct::Gelu)
    }

    fn head_dim(&self) -> Result<usize> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            candle_core::bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        Ok(self.hidden_size / self.num_attention_heads)
    }
}

/// T5-style bidirectional bucket of a relative position, exactly as upstream
/// `MPNetEncoder.relative_position_bucket` computes it (in `f32`, truncating).
///
/// With `half = num_buckets / 2` and `max_exact = half / 2`, for
/// `n = −relative_position` (query − key):
/// `bucket = half·[n < 0] + (|n| if |n| < max_exact else
/// min(half − 1, max_exact + ⌊ln(|n| / max_exact) / ln(max_distance / max_exact) · (half − max_exact)⌋))`.
///
/// `relative_position` is `key_pos − query_pos`. For mpnet-base (32 buckets,
/// max distance 128): keys to the left get buckets 0–15, keys to the right
/// 16–31; distances below 8 are exact, larger ones logarithmic up to 128.
// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L355
pub fn relative_position_bucket(
    relative_position: i64,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let half = (num_buckets / 2) as i64;
    let n = -relative_position;
    let mut bucket = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        bucket += n;
    } else {
        // Same f32 operations in the same order as the PyTorch expression, so the
        // truncation lands on the same side at exact powers (n = 16, 32, 64).
        let log_ratio = (n as f32 / max_exact as f32).ln();
        let log_range = (max_distance as f64 / max_exact as f64).ln() as f32;
        let scaled = log_ratio / log_range * (half - max_exact) as f32;
        let large = max_exact + scaled as i64;
        bucket += large.min(half - 1);
    }
    bucket as usize
}

/// Position ids for right- or left-padded `input_ids`: positions count from
/// `pad + 1` over non-pad tokens, and pad tokens get `pad`
/// (upstream `create_position_ids_from_input_ids`).
// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L1057
pub fn position_ids(input_ids: &[u32], pad: u32) -> Vec<u32> {
    let mut seen = 0u32;
    input_ids
        .iter()
        .map(|&id| {
            if id == pad {
                pad
            } else {
                seen += 1;
                seen + pad
            }
        })
        .collect()
}

fn activation(act: HiddenAct, xs: &Tensor) -> Result<Tensor> {
    match act {
        // https://github.com/huggingface/transformers/blob/cd4584e3c809bb9e1392ccd3fe38b40daba5519a/src/transformers/activations.py#L213
        HiddenAct::Gelu => crate::gelu::gelu_erf(xs),
        HiddenAct::GeluApproximate => xs.gelu(),
        HiddenAct::Relu => xs.relu(),
    }
}

// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L67
struct MpnetEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    layer_norm: LayerNorm,
    pad_token_id: u32,
    max_position_embeddings: usize,
    model_type: ModelType,
    span: tracing::Span,
}

impl MpnetEmbeddings {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let (rows, d) = (config.max_position_embeddings, config.hidden_size);
        let positions = vb.pp("position_embeddings").get((rows, d), "weight")?;
        let positions = match config.model_type {
            ModelType::Mpnet => positions,
            // Every input is token type 0: its embedding is a constant,
            // added to every position.
            ModelType::Bert => {
                let token_type = vb
                    .pp("token_type_embeddings")
                    .get_unchecked("weight")?
                    .get(0)?; // [d]
                positions.broadcast_add(&token_type)?
            }
        };
        Ok(Self {
            word_embeddings: embedding(
                config.vocab_size,
                config.hidden_size,
                vb.pp("word_embeddings"),
            )?,
            position_embeddings: Embedding::new(positions, d),
            layer_norm: layer_norm(
                config.hidden_size,
                config.layer_norm_eps,
                vb.pp("LayerNorm"),
            )?,
            pad_token_id: config.pad_token_id,
            max_position_embeddings: config.max_position_embeddings,
            model_type: config.model_type,
            span: tracing::span!(tracing::Level::TRACE, "embeddings"),
        })
    }

    fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let _enter = self.span.enter();
        let (batch, seq_len) = input_ids.dims2()?;
        let ids = input_ids
            .to_dtype(DType::U32)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let mut positions = Vec::with_capacity(ids.len());
        for row in ids.chunks(seq_len.max(1)) {
            match self.model_type {
                ModelType::Mpnet => positions.extend(position_ids(row, self.pad_token_id)),
                ModelType::Bert => positions.extend(0..row.len() as u32),
            }
        }
        if let Some(&max) = positions.iter().max()
            && max as usize >= self.max_position_embeddings
        {
            candle_core::bail!(
                "sequence of {seq_len} tokens needs position {max}, but the table has {} rows",
                self.max_position_embeddings
            );
        }
        let positions = Tensor::from_vec(positions, (batch, seq_len), input_ids.device())?;
        let embeddings = (self.word_embeddings.forward(input_ids)?
            + self.position_embeddings.forward(&positions)?)?; // [b, s, d]
        self.layer_norm.forward(&embeddings)
    }
}

// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L118
struct MpnetSelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    num_heads: usize,
    head_dim: usize,
    span: tracing::Span,
    span_softmax: tracing::Span,
}

impl MpnetSelfAttention {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let d = config.hidden_size;
        Ok(Self {
            q: linear(d, d, vb.pp("q"))?,
            k: linear(d, d, vb.pp("k"))?,
            v: linear(d, d, vb.pp("v"))?,
            o: linear(d, d, vb.pp("o"))?,
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim()?,
            span: tracing::span!(tracing::Level::TRACE, "self-attn"),
            span_softmax: tracing::span!(tracing::Level::TRACE, "softmax"),
        })
    }

    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, s, _) = xs.dims3()?;
        xs.reshape((b, s, self.num_heads, self.head_dim))? // [b, s, h, d_head]
            .transpose(1, 2)? // [b, h, s, d_head]
            .contiguous()
    }

    /// `attention_bias` is the relative-position bias plus the padding mask,
    /// `[b, h, s, s]`.
    fn forward(&self, hidden_states: &Tensor, attention_bias: &Tensor) -> Result<Tensor> {
        let _enter = self.span.enter();
        let q = self.split_heads(&self.q.forward(hidden_states)?)?;
        let k = self.split_heads(&self.k.forward(hidden_states)?)?;
        let v = self.split_heads(&self.v.forward(hidden_states)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?; // [b, h, s, s]
        let scores = (scores + attention_bias)?;
        let probs = {
            let _enter_sm = self.span_softmax.enter();
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let context = probs
            .matmul(&v)? // [b, h, s, d_head]
            .transpose(1, 2)? // [b, s, h, d_head]
            .contiguous()?
            .flatten_from(D::Minus2)?; // [b, s, d]
        self.o.forward(&context)
    }
}

// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L194
struct MpnetAttention {
    attn: MpnetSelfAttention,
    layer_norm: LayerNorm,
    span: tracing::Span,
}

impl MpnetAttention {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        Ok(Self {
            attn: MpnetSelfAttention::load(vb.pp("attn"), config)?,
            layer_norm: layer_norm(
                config.hidden_size,
                config.layer_norm_eps,
                vb.pp("LayerNorm"),
            )?,
            span: tracing::span!(tracing::Level::TRACE, "attn"),
        })
    }

    fn forward(&self, hidden_states: &Tensor, attention_bias: &Tensor) -> Result<Tensor> {
        let _enter = self.span.enter();
        let attended = self.attn.forward(hidden_states, attention_bias)?;
        self.layer_norm.forward(&(attended + hidden_states)?)
    }
}

// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L245
struct MpnetLayer {
    attention: MpnetAttention,
    intermediate: Linear,
    output: Linear,
    output_layer_norm: LayerNorm,
    hidden_act: HiddenAct,
    span: tracing::Span,
}

impl MpnetLayer {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        Ok(Self {
            attention: MpnetAttention::load(vb.pp("attention"), config)?,
            intermediate: linear(
                config.hidden_size,
                config.intermediate_size,
                vb.pp("intermediate").pp("dense"),
            )?,
            output: linear(
                config.intermediate_size,
                config.hidden_size,
                vb.pp("output").pp("dense"),
            )?,
            output_layer_norm: layer_norm(
                config.hidden_size,
                config.layer_norm_eps,
                vb.pp("output").pp("LayerNorm"),
            )?,
            hidden_act: config.hidden_act,
            span: tracing::span!(tracing::Level::TRACE, "layer"),
        })
    }

    fn forward(&self, hidden_states: &Tensor, attention_bias: &Tensor) -> Result<Tensor> {
        let _enter = self.span.enter();
        let attention_output = self.attention.forward(hidden_states, attention_bias)?;
        let intermediate = activation(
            self.hidden_act,
            &self.intermediate.forward(&attention_output)?,
        )?; // [b, s, d_ff]
        let output = self.output.forward(&intermediate)?; // [b, s, d]
        self.output_layer_norm
            .forward(&(output + attention_output)?)
    }
}

// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L276
struct MpnetEncoder {
    layers: Vec<MpnetLayer>,
    /// MPNet's relative-position bias; BERT has none.
    relative_attention_bias: Option<Embedding>,
    num_buckets: usize,
    num_heads: usize,
    span: tracing::Span,
}

impl MpnetEncoder {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|index| MpnetLayer::load(vb.pp(format!("layer.{index}")), config))
            .collect::<Result<Vec<_>>>()?;
        let relative_attention_bias = match config.model_type {
            ModelType::Mpnet => Some(embedding(
                config.relative_attention_num_buckets,
                config.num_attention_heads,
                vb.pp("relative_attention_bias"),
            )?),
            ModelType::Bert => None,
        };
        Ok(Self {
            layers,
            relative_attention_bias,
            num_buckets: config.relative_attention_num_buckets,
            num_heads: config.num_attention_heads,
            span: tracing::span!(tracing::Level::TRACE, "encoder"),
        })
    }

    /// Relative-position bias shared by all layers, `[1, h, s, s]`
    /// (upstream `compute_position_bias`); zeros for BERT.
    fn position_bias(&self, seq_len: usize, device: &Device) -> Result<Tensor> {
        let Some(bias) = &self.relative_attention_bias else {
            return Tensor::zeros((1, self.num_heads, seq_len, seq_len), DType::F32, device);
        };
        let mut buckets = Vec::with_capacity(seq_len * seq_len);
        for query in 0..seq_len as i64 {
            for key in 0..seq_len as i64 {
                let bucket = relative_position_bucket(
                    key - query,
                    self.num_buckets,
                    RELATIVE_ATTENTION_MAX_DISTANCE,
                );
                buckets.push(bucket as u32);
            }
        }
        let buckets = Tensor::from_vec(buckets, (seq_len, seq_len), device)?;
        bias.forward(&buckets)? // [s, s, h]
            .permute((2, 0, 1))? // [h, s, s]
            .unsqueeze(0) // [1, h, s, s]
    }

    /// Runs the first `depth` layers; returns the input and every layer's
    /// output, or (`all_layers == false`) the last one's only.
    fn forward(
        &self,
        hidden_states: &Tensor,
        extended_mask: &Tensor,
        depth: usize,
        all_layers: bool,
    ) -> Result<Vec<Tensor>> {
        let _enter = self.span.enter();
        let (_b, seq_len, _d) = hidden_states.dims3()?;
        // Upstream adds the bias and then the mask to the scores in every layer;
        // adding them together once is the same sum (the mask is 0 or the
        // dtype's minimum) and saves a broadcast per layer.
        let attention_bias = self
            .position_bias(seq_len, hidden_states.device())?
            .broadcast_add(extended_mask)? // [b, h, s, s]
            .contiguous()?;
        let mut states = vec![hidden_states.clone()];
        for layer in self.layers.iter().take(depth) {
            let next = layer.forward(states.last().unwrap_or(hidden_states), &attention_bias)?;
            if !all_layers {
                states.clear();
            }
            states.push(next);
        }
        Ok(states)
    }
}

/// The MPNet encoder (`MPNetModel` without its pooler).
// https://github.com/huggingface/transformers/blob/ade3d756fc1af824c0f1ced44fa5f98335b6394b/src/transformers/models/mpnet/modeling_mpnet.py#L443
pub struct MpnetModel {
    embeddings: MpnetEmbeddings,
    encoder: MpnetEncoder,
    span: tracing::Span,
}

impl MpnetModel {
    /// Loads the weights under `vb` (keys `embeddings.*`, `encoder.*`, or the
    /// same under `mpnet.` as in `MPNetForMaskedLM` checkpoints).
    ///
    /// # Errors
    /// candle's error naming the first missing or mis-shaped tensor, or a
    /// config whose width is not divisible by its head count.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        config.head_dim()?;
        let (vb, prefix) = match config.model_type {
            ModelType::Mpnet => (vb, "mpnet"),
            ModelType::Bert => (vb.rename_f(bert_key), "bert"),
        };
        let vb = if vb.contains_tensor(&format!("{prefix}.embeddings.word_embeddings.weight")) {
            vb.pp(prefix)
        } else {
            vb
        };
        Ok(Self {
            embeddings: MpnetEmbeddings::load(vb.pp("embeddings"), config)?,
            encoder: MpnetEncoder::load(vb.pp("encoder"), config)?,
            span: tracing::span!(tracing::Level::TRACE, "model"),
        })
    }

    /// Token states of the last layer.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq_len]`, integer ids (pad with `pad_token_id`)
    /// - `attention_mask`: `[batch, seq_len]`, 1 for tokens and 0 for padding
    /// - returns `[batch, seq_len, hidden_size]`
    ///
    /// # Errors
    /// Rank or shape mismatches, and sequences longer than the position table.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        self.forward_depth(input_ids, attention_mask, self.num_layers())
    }

    /// Token states after the first `depth` encoder layers (0 = the
    /// embedding layer; capped at [`MpnetModel::num_layers`]).
    ///
    /// # Shapes
    /// As [`MpnetModel::forward`].
    ///
    /// # Errors
    /// As [`MpnetModel::forward`].
    pub fn forward_depth(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        depth: usize,
    ) -> Result<Tensor> {
        let mut states = self.run(input_ids, attention_mask, depth, false)?;
        states
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("MPNet returned no states".into()))
    }

    /// Number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.encoder.layers.len()
    }

    /// Token states of the embedding layer and of the first `depth` encoder
    /// layers, in order (`depth + 1` tensors; `depth` is capped at
    /// [`MpnetModel::num_layers`], and layers past it are not run):
    /// intermediate layers carry more of an utterance's affect than the
    /// last (docs/RESULTS.md).
    ///
    /// # Shapes
    /// As [`MpnetModel::forward`], one `[batch, seq_len, hidden_size]` per layer.
    ///
    /// # Errors
    /// As [`MpnetModel::forward`].
    pub fn forward_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        depth: usize,
    ) -> Result<Vec<Tensor>> {
        self.run(input_ids, attention_mask, depth, true)
    }

    fn run(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        depth: usize,
        all: bool,
    ) -> Result<Vec<Tensor>> {
        let _enter = self.span.enter();
        let (batch, seq_len) = input_ids.dims2()?;
        let (mask_batch, mask_len) = attention_mask.dims2()?;
        if (mask_batch, mask_len) != (batch, seq_len) {
            candle_core::bail!(
                "attention_mask has shape [{mask_batch}, {mask_len}], input_ids [{batch}, {seq_len}]"
            );
        }
        let embeddings = self.embeddings.forward(input_ids)?; // [b, s, d]
        let extended_mask = extended_attention_mask(attention_mask, embeddings.dtype())?; // [b, 1, 1, s]
        self.encoder
            .forward(&embeddings, &extended_mask, depth, all)
    }
}

/// This module's name fragments and BERT's for the attention block.
const BERT_RENAMES: [(&str, &str); 5] = [
    (".attention.attn.q.", ".attention.self.query."),
    (".attention.attn.k.", ".attention.self.key."),
    (".attention.attn.v.", ".attention.self.value."),
    (".attention.attn.o.", ".attention.output.dense."),
    (".attention.LayerNorm.", ".attention.output.LayerNorm."),
];

/// BERT's key for the tensor this module names `name` (the attention blocks
/// are named differently; everything else matches).
fn bert_key(name: &str) -> String {
    BERT_RENAMES
        .iter()
        .fold(name.to_string(), |n, (from, to)| n.replace(from, to))
}

/// One tensor of a checkpoint as plain host data (row-major `f32`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, as in the checkpoint (`Linear` weights are `[out, in]`).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// The encoder's tensors of `tensors` (a loaded checkpoint) under this
/// module's names — `embeddings.{word_embeddings,position_embeddings,LayerNorm}.*`,
/// `encoder.layer.{i}.…` and, for MPNet, `encoder.relative_attention_bias.weight`
/// — with what [`MpnetModel::load`] does to a checkpoint done here too: the
/// `mpnet.`/`bert.` prefix dropped, BERT's attention keys renamed and its
/// token-type-0 embedding folded into the position table. The pooler, heads
/// and anything else are left out. For a second implementation of the
/// encoder (burn, to fine-tune it) that must read the same weights.
///
/// # Errors
/// A tensor that is not `f32`-convertible, or a BERT checkpoint without
/// `token_type_embeddings`.
pub fn encoder_tensors(
    tensors: std::collections::HashMap<String, Tensor>,
    config: &Config,
) -> Result<std::collections::BTreeMap<String, HostTensor>> {
    let prefix = match config.model_type {
        ModelType::Mpnet => "mpnet.",
        ModelType::Bert => "bert.",
    };
    let ours = |name: &str| -> String {
        let name = name.strip_prefix(prefix).unwrap_or(name);
        match config.model_type {
            ModelType::Mpnet => name.to_string(),
            ModelType::Bert => BERT_RENAMES
                .iter()
                .fold(name.to_string(), |n, (to, from)| n.replace(from, to)),
        }
    };
    let host = |t: &Tensor| -> Result<HostTensor> {
        Ok(HostTensor {
            shape: t.dims().to_vec(),
            data: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        })
    };
    let mut out = std::collections::BTreeMap::new();
    let mut token_type = None;
    for (name, tensor) in &tensors {
        let name = ours(name);
        if name == "embeddings.token_type_embeddings.weight" {
            token_type = Some(tensor.get(0)?); // [d]
        } else if name.starts_with("embeddings.") || name.starts_with("encoder.") {
            out.insert(name, tensor.clone());
        }
    }
    if config.model_type == ModelType::Bert {
        let token_type = token_type.ok_or_else(|| {
            candle_core::Error::Msg("BERT checkpoint without token_type_embeddings".into())
        })?;
        let key = "embeddings.position_embeddings.weight".to_string();
        if let Some(positions) = out.get(&key) {
            let folded = positions.broadcast_add(&token_type)?;
            out.insert(key, folded);
        }
    }
    out.iter().map(|(k, t)| Ok((k.clone(), host(t)?))).collect()
}

/// `(1 − mask) · dtype::MIN`, shaped `[b, 1, 1, s]` to broadcast over heads and
/// queries (upstream `get_extended_attention_mask`).
fn extended_attention_mask(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let mask = attention_mask.to_dtype(dtype)?.unsqueeze(1)?.unsqueeze(1)?; // [b, 1, 1, s]
    let min = Tensor::new(f32::MIN, mask.device())?.to_dtype(dtype)?;
    (mask.ones_like()? - &mask)?.broadcast_mul(&min)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Hand-evaluated upstream formula for 32 buckets, max distance 128:
    /// half = 16, max_exact = 8; for |n| ≥ 8 the bucket is
    /// 8 + trunc(ln(|n|/8) / ln 16 · 8), capped at 15; +16 when the key is
    /// to the right of the query (relative_position > 0).
    #[test]
    fn relative_position_bucket_matches_hand_computed_values() {
        let cases: &[(i64, usize)] = &[
            (0, 0),
            (-1, 1),
            (-7, 7),
            (-8, 8),   // ln 1 = 0
            (-11, 8),  // ln(1.375)/ln16·8 = 0.918
            (-12, 9),  // ln(1.5)/ln16·8 = 1.170
            (-15, 9),  // 1.813
            (-16, 10), // ln 2/ln 16·8 = 2 exactly
            (-22, 10), // 2.919
            (-23, 11), // 3.046
            (-32, 12), // 4 exactly
            (-45, 12), // 4.983
            (-46, 13), // 5.047
            (-64, 14), // 6 exactly
            (-90, 14), // 6.984
            (-91, 15), // 7.016
            (-127, 15),
            (-128, 15), // 8, capped at 15
            (-1000, 15),
            (1, 17),
            (7, 23),
            (8, 24),
            (16, 26),
            (64, 30),
            (91, 31),
            (1000, 31),
        ];
        for &(relative, expected) in cases {
            assert_eq!(
                relative_position_bucket(relative, 32, 128),
                expected,
                "relative position {relative}"
            );
        }
    }

    #[test]
    fn position_ids_start_after_padding_idx_and_skip_pads() {
        // <s> a b </s> <pad> <pad>, pad = 1
        assert_eq!(
            position_ids(&[0, 10, 11, 2, 1, 1], 1),
            vec![2, 3, 4, 5, 1, 1]
        );
        // A literal <pad> inside the text gets the padding position, as upstream.
        assert_eq!(position_ids(&[0, 1, 11, 2], 1), vec![2, 1, 3, 4]);
        assert_eq!(position_ids(&[], 1), Vec::<u32>::new());
    }

    fn tiny_config() -> Config {
        Config {
            vocab_size: 11,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            hidden_act: HiddenAct::Gelu,
            max_position_embeddings: 12,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            relative_attention_num_buckets: 32,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            model_type: ModelType::Mpnet,
        }
    }

    #[test]
    fn bert_keys_rename_only_the_attention_block() {
        let layer = "encoder.layer.3";
        for (ours, bert) in [
            ("attention.attn.q.weight", "attention.self.query.weight"),
            ("attention.attn.o.bias", "attention.output.dense.bias"),
            (
                "attention.LayerNorm.weight",
                "attention.output.LayerNorm.weight",
            ),
            ("output.LayerNorm.weight", "output.LayerNorm.weight"),
            ("intermediate.dense.weight", "intermediate.dense.weight"),
        ] {
            assert_eq!(
                bert_key(&format!("{layer}.{ours}")),
                format!("{layer}.{bert}")
            );
        }
        assert_eq!(
            bert_key("embeddings.word_embeddings.weight"),
            "embeddings.word_embeddings.weight"
        );
    }

    /// Random weights under the checkpoint's key names.
    fn tiny_model(config: &Config) -> Result<MpnetModel> {
        let device = Device::Cpu;
        let d = config.hidden_size;
        let ff = config.intermediate_size;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        let mut put = |name: String, shape: &[usize]| -> Result<()> {
            tensors.insert(name, Tensor::randn(0f32, 0.5, shape, &device)?);
            Ok(())
        };
        put(
            "embeddings.word_embeddings.weight".into(),
            &[config.vocab_size, d],
        )?;
        put(
            "embeddings.position_embeddings.weight".into(),
            &[config.max_position_embeddings, d],
        )?;
        put("embeddings.LayerNorm.weight".into(), &[d])?;
        put("embeddings.LayerNorm.bias".into(), &[d])?;
        put(
            "encoder.relative_attention_bias.weight".into(),
            &[
                config.relative_attention_num_buckets,
                config.num_attention_heads,
            ],
        )?;
        for layer in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{layer}");
            for proj in ["q", "k", "v", "o"] {
                put(format!("{p}.attention.attn.{proj}.weight"), &[d, d])?;
                put(format!("{p}.attention.attn.{proj}.bias"), &[d])?;
            }
            put(format!("{p}.attention.LayerNorm.weight"), &[d])?;
            put(format!("{p}.attention.LayerNorm.bias"), &[d])?;
            put(format!("{p}.intermediate.dense.weight"), &[ff, d])?;
            put(format!("{p}.intermediate.dense.bias"), &[ff])?;
            put(format!("{p}.output.dense.weight"), &[d, ff])?;
            put(format!("{p}.output.dense.bias"), &[d])?;
            put(format!("{p}.output.LayerNorm.weight"), &[d])?;
            put(format!("{p}.output.LayerNorm.bias"), &[d])?;
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        MpnetModel::load(vb, config)
    }

    /// Largest element-wise difference of two same-shaped tensors.
    fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    #[test]
    fn all_layers_end_with_the_last_layer() -> Result<()> {
        let config = tiny_config();
        let model = tiny_model(&config)?;
        let device = Device::Cpu;
        let ids = Tensor::new(&[[0u32, 5, 6, 7, 2]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1]], &device)?;
        let layers = model.forward_layers(&ids, &mask, 99)?;
        assert_eq!(layers.len(), config.num_hidden_layers + 1);
        let first = model.forward_layers(&ids, &mask, 1)?;
        assert_eq!(first.len(), 2);
        assert_eq!(
            max_abs_diff(&first[1], &layers[1])?,
            0.0,
            "a shallower pass stops, it does not change layers"
        );
        let last = model.forward(&ids, &mask)?;
        assert_eq!(max_abs_diff(&layers[2], &last)?, 0.0);
        let moved = max_abs_diff(&layers[1], &layers[0])?;
        assert!(moved > 0.0, "each layer transforms its input");
        Ok(())
    }

    #[test]
    fn forward_shape_and_padding_invariance() -> Result<()> {
        let config = tiny_config();
        let model = tiny_model(&config)?;
        let device = Device::Cpu;
        // Sequence alone vs. the same sequence right-padded in a batch.
        let alone = Tensor::new(&[[0u32, 5, 6, 7, 2]], &device)?;
        let alone_mask = Tensor::new(&[[1u32, 1, 1, 1, 1]], &device)?;
        let batch = Tensor::new(&[[0u32, 5, 6, 7, 2, 1, 1], [0, 8, 9, 10, 4, 3, 2]], &device)?;
        let batch_mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]], &device)?;
        let out_alone = model.forward(&alone, &alone_mask)?;
        assert_eq!(out_alone.dims(), &[1, 5, 8]);
        let out_batch = model.forward(&batch, &batch_mask)?;
        assert_eq!(out_batch.dims(), &[2, 7, 8]);
        // Padding must not change the real tokens' states: positions skip pads,
        // the mask hides them, and the relative bias depends only on i − j.
        let diff = max_abs_diff(&out_batch.narrow(0, 0, 1)?.narrow(1, 0, 5)?, &out_alone)?;
        assert!(diff < 1e-5, "padding changed the output by {diff}");
        Ok(())
    }

    #[test]
    fn mismatched_mask_is_an_error() -> Result<()> {
        let model = tiny_model(&tiny_config())?;
        let ids = Tensor::new(&[[0u32, 5, 2]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1u32, 1]], &Device::Cpu)?;
        assert!(model.forward(&ids, &mask).is_err());
        Ok(())
    }

    #[test]
    fn too_long_sequence_is_an_error_not_a_panic() -> Result<()> {
        let config = tiny_config();
        let model = tiny_model(&config)?;
        let ids = Tensor::from_vec(vec![5u32; 12], (1, 12), &Device::Cpu)?;
        let mask = Tensor::from_vec(vec![1u32; 12], (1, 12), &Device::Cpu)?;
        let err = model
            .forward(&ids, &mask)
            .expect_err("12 tokens need position 13");
        assert!(err.to_string().contains("position"), "{err}");
        Ok(())
    }
}
