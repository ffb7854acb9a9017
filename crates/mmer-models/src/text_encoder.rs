//! MPNet and BERT encoder layers as burn modules: the trainable twin of the
//! frozen candle encoder `mmer_text::mpnet`, so that the text encoder can be
//! fine-tuned in the same graph as the context model (issue 17).
//!
//! Same maths, same checkpoint (the tensors `mmer_text::load_encoder_tensors`
//! reads, under MPNet's names): BERT's post-norm layer
//! `LN(x + Attn(x))`, `LN(h + W₂·GELU(W₁·h))` with the exact (erf) GELU;
//! MPNet adds one relative-position bias `[buckets, heads]`, shared by every
//! layer, to the attention scores, indexed by the T5 bucket of
//! `key − query` (`mmer_text::mpnet::relative_position_bucket`); positions
//! count from `pad + 1` and skip padding (RoBERTa). BERT checkpoints
//! (all-MiniLM-L6-v2) have no relative bias, absolute positions from 0 and
//! the token-type-0 embedding folded into the position table. Pooling is
//! sentence-transformers' masked mean. Dropout (the checkpoints' 0.1 on
//! hidden states and attention weights, as Hugging Face trains) is active
//! in training only.
//!
//! A [`TextEncoder`] holds a contiguous run of layers `from..to` of the
//! checkpoint, with the embedding layer when `from == 0`: fine-tuning the top
//! `k` layers starts from the states of layer `to − k` computed once by the
//! frozen encoder, and trains only these layers.

use std::collections::BTreeMap;
use std::ops::Range;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use mmer_text::mpnet::{
    Config, HostTensor, ModelType, RELATIVE_ATTENTION_MAX_DISTANCE, position_ids,
    relative_position_bucket,
};

use crate::blocks::{dropout, fast_dropout};

/// A checkpoint tensor that is missing, mis-shaped or not supported.
#[derive(Debug, thiserror::Error)]
pub enum TextEncoderError {
    /// No tensor of that name.
    #[error("the checkpoint has no tensor {0}")]
    Missing(String),
    /// A tensor of another shape than the config implies.
    #[error("checkpoint tensor {name} has shape {found:?}, the config implies {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape in the checkpoint.
        found: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// Layers outside the checkpoint, or an empty run.
    #[error("layers {from}..{to} of a {depth}-layer encoder")]
    Layers {
        /// First layer.
        from: usize,
        /// One past the last layer.
        to: usize,
        /// The checkpoint's depth.
        depth: usize,
    },
    /// A hidden activation other than the exact GELU.
    #[error("hidden_act {0}: only the exact GELU (`gelu`) is implemented for training")]
    Activation(String),
}

type LoadResult<T> = std::result::Result<T, TextEncoderError>;

/// Reads tensors by name from a checkpoint map, checking shapes.
struct Weights<'a> {
    tensors: &'a BTreeMap<String, HostTensor>,
    device: &'a Device,
}

impl Weights<'_> {
    fn get(&self, name: &str, expected: &[usize]) -> LoadResult<&HostTensor> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| TextEncoderError::Missing(name.to_string()))?;
        if tensor.shape != expected {
            return Err(TextEncoderError::Shape {
                name: name.to_string(),
                found: tensor.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(tensor)
    }

    fn param1(&self, name: &str, n: usize) -> LoadResult<Param<Tensor<1>>> {
        let t = self.get(name, &[n])?;
        Ok(Param::from_data(
            TensorData::new(t.data.clone(), [n]),
            self.device,
        ))
    }

    fn param2(&self, name: &str, rows: usize, cols: usize) -> LoadResult<Param<Tensor<2>>> {
        let t = self.get(name, &[rows, cols])?;
        Ok(Param::from_data(
            TensorData::new(t.data.clone(), [rows, cols]),
            self.device,
        ))
    }

    /// A checkpoint `Linear` (`weight` `[out, in]`, `bias` `[out]`) as
    /// burn's (`[in, out]`).
    fn linear(&self, prefix: &str, d_in: usize, d_out: usize) -> LoadResult<Linear> {
        let t = self.get(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut transposed = vec![0f32; d_in * d_out];
        for o in 0..d_out {
            for i in 0..d_in {
                transposed[i * d_out + o] = t.data[o * d_in + i];
            }
        }
        Ok(Linear {
            weight: Param::from_data(TensorData::new(transposed, [d_in, d_out]), self.device),
            bias: Some(self.param1(&format!("{prefix}.bias"), d_out)?),
        })
    }

    fn layer_norm(&self, prefix: &str, d: usize, eps: f64) -> LoadResult<LayerNorm> {
        let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(self.device);
        norm.gamma = self.param1(&format!("{prefix}.weight"), d)?;
        norm.beta = Some(self.param1(&format!("{prefix}.bias"), d)?);
        Ok(norm)
    }
}

/// Word and position embeddings plus LayerNorm (upstream `MPNetEmbeddings`).
#[derive(Module, Debug)]
pub struct TextEmbeddings {
    word: Embedding,
    position: Embedding,
    norm: LayerNorm,
    dropout: Dropout,
    pad_token_id: u32,
    /// RoBERTa-style positions (MPNet) rather than `0..len` (BERT).
    skip_padding: bool,
}

impl TextEmbeddings {
    /// Token states of the embedding layer and the attention mask of
    /// right-padded `ids` (one row per text).
    ///
    /// # Shapes
    /// `ids`: `b` rows of at most `s` tokens → (`[b, s, d]`, mask `[b, s]`)
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> (Tensor<3>, Tensor<2>) {
        let b = ids.len();
        let s = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let (mut flat, mut positions, mut mask) = (
            Vec::with_capacity(b * s),
            Vec::with_capacity(b * s),
            Vec::with_capacity(b * s),
        );
        for row in ids {
            let mut padded = row.clone();
            padded.resize(s, self.pad_token_id);
            match self.skip_padding {
                true => positions.extend(position_ids(&padded, self.pad_token_id)),
                false => positions.extend(0..s as u32),
            }
            mask.extend((0..s).map(|t| if t < row.len() { 1f32 } else { 0.0 }));
            flat.extend(padded);
        }
        let as_int = |v: Vec<u32>| {
            let v: Vec<i64> = v.into_iter().map(i64::from).collect();
            Tensor::<2, Int>::from_data(TensorData::new(v, [b, s]), device)
        };
        let x = self.word.forward(as_int(flat)) + self.position.forward(as_int(positions)); // [b, s, d]
        let x = dropout(&self.dropout, self.norm.forward(x));
        (x, Tensor::from_data(TensorData::new(mask, [b, s]), device))
    }
}

/// One encoder layer (upstream `MPNetLayer`; BERT's `BertLayer`).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    feed_forward: Linear,
    feed_forward_norm: LayerNorm,
    attention_dropout: Dropout,
    hidden_dropout: Dropout,
    heads: usize,
}

impl EncoderLayer {
    /// `[b, s, d]` → `[b, heads, s, d / heads]`
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, s, d] = x.dims();
        x.reshape([b, s, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// # Shapes
    /// `x`: `[b, s, d]`, `bias`: broadcastable to `[b, heads, s, s]`
    /// (relative bias plus padding mask) → `[b, s, d]`
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let scale = ((d / self.heads) as f64).sqrt();
        let q = self.split_heads(self.query.forward(x.clone()));
        let k = self.split_heads(self.key.forward(x.clone()));
        let v = self.split_heads(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar(scale) + bias; // [b, h, s, s]
        let weights = fast_dropout(&self.attention_dropout, softmax(scores, 3));
        let context = weights.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        let attended = dropout(&self.hidden_dropout, self.output.forward(context));
        let h = self.attention_norm.forward(attended + x); // [b, s, d]
        let ff = gelu(self.intermediate.forward(h.clone())); // [b, s, d_ff]
        let ff = dropout(&self.hidden_dropout, self.feed_forward.forward(ff));
        self.feed_forward_norm.forward(ff + h)
    }
}

/// Layers `from..to` of an MPNet or BERT checkpoint, with its embedding
/// layer when `from == 0` (see the module docs).
#[derive(Module, Debug)]
pub struct TextEncoder {
    embeddings: Option<TextEmbeddings>,
    layers: Vec<EncoderLayer>,
    /// MPNet's relative-position bias `[buckets, heads]`; BERT has none.
    relative_bias: Option<Param<Tensor<2>>>,
    heads: usize,
    buckets: usize,
    first_layer: usize,
}

impl TextEncoder {
    /// Builds layers `layers` of the checkpoint `tensors` (named as
    /// `mmer_text::mpnet::encoder_tensors` names them), plus the embedding
    /// layer when `layers` starts at 0. Parameters are trainable; freeze
    /// with [`TextEncoder::freeze_shared`] or burn's `no_grad`.
    ///
    /// # Errors
    /// A missing or mis-shaped tensor, layers outside the checkpoint, an
    /// activation other than the exact GELU.
    pub fn from_checkpoint(
        config: &Config,
        tensors: &BTreeMap<String, HostTensor>,
        layers: Range<usize>,
        device: &Device,
    ) -> LoadResult<Self> {
        if layers.is_empty() || layers.end > config.num_hidden_layers {
            return Err(TextEncoderError::Layers {
                from: layers.start,
                to: layers.end,
                depth: config.num_hidden_layers,
            });
        }
        if !config.exact_gelu() {
            return Err(TextEncoderError::Activation(format!(
                "{:?}",
                config.hidden_act
            )));
        }
        let w = Weights { tensors, device };
        let (d, ff, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let heads = config.num_attention_heads;
        let hidden_dropout = DropoutConfig::new(config.hidden_dropout_prob);
        let embeddings = match layers.start {
            0 => Some(TextEmbeddings {
                word: Embedding {
                    weight: w.param2("embeddings.word_embeddings.weight", config.vocab_size, d)?,
                },
                position: Embedding {
                    weight: w.param2(
                        "embeddings.position_embeddings.weight",
                        config.max_position_embeddings,
                        d,
                    )?,
                },
                norm: w.layer_norm("embeddings.LayerNorm", d, eps)?,
                dropout: hidden_dropout.init(),
                pad_token_id: config.pad_token_id,
                skip_padding: config.model_type == ModelType::Mpnet,
            }),
            _ => None,
        };
        let layer = |i: usize| -> LoadResult<EncoderLayer> {
            let p = format!("encoder.layer.{i}");
            Ok(EncoderLayer {
                query: w.linear(&format!("{p}.attention.attn.q"), d, d)?,
                key: w.linear(&format!("{p}.attention.attn.k"), d, d)?,
                value: w.linear(&format!("{p}.attention.attn.v"), d, d)?,
                output: w.linear(&format!("{p}.attention.attn.o"), d, d)?,
                attention_norm: w.layer_norm(&format!("{p}.attention.LayerNorm"), d, eps)?,
                intermediate: w.linear(&format!("{p}.intermediate.dense"), d, ff)?,
                feed_forward: w.linear(&format!("{p}.output.dense"), ff, d)?,
                feed_forward_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), d, eps)?,
                attention_dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
                hidden_dropout: hidden_dropout.init(),
                heads,
            })
        };
        let relative_bias = match config.model_type {
            ModelType::Mpnet => Some(w.param2(
                "encoder.relative_attention_bias.weight",
                config.relative_attention_num_buckets,
                heads,
            )?),
            ModelType::Bert => None,
        };
        Ok(Self {
            embeddings,
            layers: layers.clone().map(layer).collect::<LoadResult<_>>()?,
            relative_bias,
            heads,
            buckets: config.relative_attention_num_buckets,
            first_layer: layers.start,
        })
    }

    /// Freezes what these layers share with the layers below them — the
    /// relative-position bias, which the frozen layers under a top-`k` run
    /// also read — so that the cached states below stay valid. A run that
    /// starts at the embeddings keeps it trainable.
    pub fn freeze_shared(mut self) -> Self {
        if self.first_layer > 0 {
            self.relative_bias = self.relative_bias.map(|p| p.set_require_grad(false));
        }
        self
    }

    /// Number of layers held.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The layers, lowest first.
    pub fn layers(&self) -> &[EncoderLayer] {
        &self.layers
    }

    /// The layers, lowest first (for per-layer learning rates).
    pub fn layers_mut(&mut self) -> &mut Vec<EncoderLayer> {
        &mut self.layers
    }

    /// The relative bias plus the padding mask, broadcastable to
    /// `[b, heads, s, s]`
    /// (upstream `compute_position_bias` + `get_extended_attention_mask`).
    fn attention_bias(&self, mask: &Tensor<2>) -> Tensor<4> {
        let [b, s] = mask.dims();
        let device = mask.device();
        // (1 − mask) · f32::MIN, as upstream and the candle encoder.
        let padding = mask
            .clone()
            .neg()
            .add_scalar(1.0)
            .mul_scalar(f32::MIN)
            .reshape([b, 1, 1, s]);
        let Some(bias) = &self.relative_bias else {
            return padding; // broadcast over heads and queries
        };
        let buckets: Vec<i64> = (0..s as i64)
            .flat_map(|q| {
                (0..s as i64).map(move |k| {
                    relative_position_bucket(k - q, self.buckets, RELATIVE_ATTENTION_MAX_DISTANCE)
                        as i64
                })
            })
            .collect();
        let buckets = Tensor::<1, Int>::from_data(TensorData::new(buckets, [s * s]), &device);
        let relative = bias
            .val()
            .select(0, buckets) // [s·s, h]
            .reshape([s, s, self.heads])
            .permute([2, 0, 1])
            .unsqueeze_dim::<4>(0); // [1, h, s, s]
        relative + padding
    }

    /// Runs the layers over `states`, the token states of layer `from`.
    ///
    /// # Shapes
    /// `states`: `[b, s, d]`, `mask`: `[b, s]` (1 token, 0 padding) →
    /// `[b, s, d]`
    pub fn forward_states(&self, states: Tensor<3>, mask: &Tensor<2>) -> Tensor<3> {
        let bias = self.attention_bias(mask);
        self.layers
            .iter()
            .fold(states, |x, layer| layer.forward(x, bias.clone()))
    }

    /// Token states of the last layer for token ids (needs the embedding
    /// layer, `from == 0`; `None` otherwise), with the mask.
    ///
    /// # Shapes
    /// `ids`: `b` rows → (`[b, s, d]`, `[b, s]`)
    pub fn forward_ids(&self, ids: &[Vec<u32>], device: &Device) -> Option<(Tensor<3>, Tensor<2>)> {
        let (states, mask) = self.embeddings.as_ref()?.forward(ids, device);
        Some((self.forward_states(states, &mask), mask))
    }
}

/// Masked mean over tokens (sentence-transformers `Pooling`, mean mode).
///
/// # Shapes
/// `states`: `[b, s, d]`, `mask`: `[b, s]` → `[b, d]`
pub fn mean_pool(states: Tensor<3>, mask: &Tensor<2>) -> Tensor<2> {
    let mask = mask.clone().unsqueeze_dim::<3>(2); // [b, s, 1]
    let summed = (states * mask.clone()).sum_dim(1).squeeze_dim::<2>(1); // [b, d]
    let counts = mask.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9); // [b, 1]
    summed / counts
}

/// A 2-layer MPNet of width 8 (2 heads, 32 buckets, vocabulary 11, 12
/// positions, pad id 1, dropout 0.1): a model small enough for tests.
pub fn tiny_config() -> Config {
    Config {
        vocab_size: 11,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        hidden_act: mmer_text::mpnet::HiddenAct::Gelu,
        max_position_embeddings: 12,
        layer_norm_eps: 1e-5,
        pad_token_id: 1,
        relative_attention_num_buckets: 32,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        model_type: ModelType::Mpnet,
    }
}

/// Random weights (uniform in ±0.75, from `seed`) for every tensor an
/// encoder of `config` reads, under the names `encoder_tensors` gives: for
/// tests and benchmarks that need no installed model.
pub fn random_checkpoint(config: &Config, seed: u64) -> BTreeMap<String, HostTensor> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut tensors = BTreeMap::new();
    let mut put = |name: String, shape: &[usize]| {
        let data = (0..shape.iter().product::<usize>())
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1.5
            })
            .collect();
        let shape = shape.to_vec();
        tensors.insert(name, HostTensor { shape, data });
    };
    let (d, ff) = (config.hidden_size, config.intermediate_size);
    put(
        "embeddings.word_embeddings.weight".into(),
        &[config.vocab_size, d],
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        &[config.max_position_embeddings, d],
    );
    put("embeddings.LayerNorm.weight".into(), &[d]);
    put("embeddings.LayerNorm.bias".into(), &[d]);
    if config.model_type == ModelType::Mpnet {
        put(
            "encoder.relative_attention_bias.weight".into(),
            &[
                config.relative_attention_num_buckets,
                config.num_attention_heads,
            ],
        );
    }
    for layer in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        for proj in ["q", "k", "v", "o"] {
            put(format!("{p}.attention.attn.{proj}.weight"), &[d, d]);
            put(format!("{p}.attention.attn.{proj}.bias"), &[d]);
        }
        put(format!("{p}.attention.LayerNorm.weight"), &[d]);
        put(format!("{p}.attention.LayerNorm.bias"), &[d]);
        put(format!("{p}.intermediate.dense.weight"), &[ff, d]);
        put(format!("{p}.intermediate.dense.bias"), &[ff]);
        put(format!("{p}.output.dense.weight"), &[d, ff]);
        put(format!("{p}.output.dense.bias"), &[d]);
        put(format!("{p}.output.LayerNorm.weight"), &[d]);
        put(format!("{p}.output.LayerNorm.bias"), &[d]);
    }
    tensors
}

#[cfg(test)]
mod tests {
    use burn::module::ModuleVisitor;
    use burn::optim::GradientsParams;

    use super::*;

    /// A 2-layer MPNet of width 8 with random weights.
    fn tiny() -> (Config, BTreeMap<String, HostTensor>) {
        let config = tiny_config();
        let tensors = random_checkpoint(&config, 7);
        (config, tensors)
    }

    /// The candle encoder's last-layer states for the same weights.
    fn candle_states(
        config: &Config,
        tensors: &BTreeMap<String, HostTensor>,
        ids: &[Vec<u32>],
    ) -> Vec<f32> {
        use candle_core::{DType, Device as CDevice, Tensor as CTensor};
        let device = CDevice::Cpu;
        let map = tensors
            .iter()
            .map(|(k, t)| {
                let tensor = CTensor::from_vec(t.data.clone(), t.shape.as_slice(), &device)
                    .expect("shape matches data");
                (k.clone(), tensor)
            })
            .collect();
        let vb = candle_nn::VarBuilder::from_tensors(map, DType::F32, &device);
        let model = mmer_text::mpnet::MpnetModel::load(vb, config).expect("loads");
        let s = ids.iter().map(Vec::len).max().unwrap_or(0);
        let (mut flat, mut mask) = (Vec::new(), Vec::new());
        for row in ids {
            let mut padded = row.clone();
            padded.resize(s, config.pad_token_id);
            flat.extend(padded);
            mask.extend((0..s).map(|t| u32::from(t < row.len())));
        }
        let flat = CTensor::from_vec(flat, (ids.len(), s), &device).expect("ids");
        let mask = CTensor::from_vec(mask, (ids.len(), s), &device).expect("mask");
        model
            .forward(&flat, &mask)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("forward")
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32 tensor")
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn ids() -> Vec<Vec<u32>> {
        vec![
            vec![0, 5, 6, 7, 2],
            vec![0, 8, 9, 2],
            vec![0, 10, 4, 3, 6, 2],
        ]
    }

    #[test]
    fn the_burn_encoder_matches_the_candle_encoder_on_the_same_weights() {
        let (config, tensors) = tiny();
        let device = Device::default();
        let encoder =
            TextEncoder::from_checkpoint(&config, &tensors, 0..2, &device).expect("loads");
        let (states, _) = encoder
            .forward_ids(&ids(), &device)
            .expect("has embeddings");
        let diff = max_diff(&values(states), &candle_states(&config, &tensors, &ids()));
        assert!(diff < 1e-4, "burn and candle differ by {diff}");
    }

    #[test]
    fn upper_layers_continue_from_the_lower_layers_states() {
        let (config, tensors) = tiny();
        let device = Device::default();
        let whole = TextEncoder::from_checkpoint(&config, &tensors, 0..2, &device).expect("loads");
        let lower = TextEncoder::from_checkpoint(&config, &tensors, 0..1, &device).expect("loads");
        let upper = TextEncoder::from_checkpoint(&config, &tensors, 1..2, &device).expect("loads");
        assert_eq!((whole.num_layers(), upper.num_layers()), (2, 1));
        let (full, mask) = whole.forward_ids(&ids(), &device).expect("embeddings");
        let (below, _) = lower.forward_ids(&ids(), &device).expect("embeddings");
        assert!(
            upper.forward_ids(&ids(), &device).is_none(),
            "no embeddings above layer 0"
        );
        let split = upper.forward_states(below, &mask);
        assert!(max_diff(&values(full.clone()), &values(split)) < 1e-6);
        // Padding changes no real token: the first text alone.
        let (alone, _) = whole.forward_ids(&ids()[..1], &device).expect("embeddings");
        let padded = full.narrow(0, 0, 1).narrow(1, 0, 5);
        assert!(max_diff(&values(alone), &values(padded)) < 1e-5);
    }

    #[test]
    fn bad_checkpoints_are_errors() {
        let (config, mut tensors) = tiny();
        let device = Device::default();
        let err = TextEncoder::from_checkpoint(&config, &tensors, 1..3, &device)
            .expect_err("layer 2 does not exist");
        assert!(err.to_string().contains("1..3 of a 2-layer"), "{err}");
        tensors
            .get_mut("encoder.layer.1.output.dense.weight")
            .expect("present")
            .shape = vec![16, 8];
        let err = TextEncoder::from_checkpoint(&config, &tensors, 1..2, &device)
            .expect_err("transposed weight");
        assert!(
            err.to_string()
                .contains("encoder.layer.1.output.dense.weight"),
            "{err}"
        );
        tensors.remove("encoder.relative_attention_bias.weight");
        let err =
            TextEncoder::from_checkpoint(&config, &tensors, 0..1, &device).expect_err("no bias");
        assert!(err.to_string().contains("relative_attention_bias"), "{err}");
    }

    /// Parameters with a non-zero gradient, and those without one.
    struct Alive<'a> {
        grads: &'a GradientsParams,
        alive: usize,
        dead: usize,
    }

    impl ModuleVisitor for Alive<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let alive = self
                .grads
                .get::<D>(param.id)
                .is_some_and(|g| g.abs().sum().into_scalar::<f32>() > 0.0);
            match alive {
                true => self.alive += 1,
                false => self.dead += 1,
            }
        }
    }

    #[test]
    fn every_trained_layer_parameter_gets_a_gradient_and_the_shared_bias_none() {
        let (config, tensors) = tiny();
        let device = Device::default().autodiff();
        let lower = TextEncoder::from_checkpoint(&config, &tensors, 0..1, &device).expect("loads");
        let upper = TextEncoder::from_checkpoint(&config, &tensors, 1..2, &device)
            .expect("loads")
            .freeze_shared();
        let (below, mask) = lower.forward_ids(&ids(), &device).expect("embeddings");
        let below = below.detach(); // cached states: no graph below layer 1
        let pooled = mean_pool(upper.forward_states(below, &mask), &mask); // [3, 8]
        let loss = (pooled.clone() * pooled).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &upper);
        let mut visitor = Alive {
            grads: &grads,
            alive: 0,
            dead: 0,
        };
        upper.visit(&mut visitor);
        // 4 attention Linear (2 each) + 2 FFN Linear (2 each) + 2 LayerNorm (2 each) = 16.
        assert_eq!(visitor.alive, 16, "every layer parameter learns");
        assert_eq!(visitor.dead, 1, "the frozen relative bias gets no gradient");
    }

    #[test]
    fn mean_pool_ignores_padding() {
        let device = Device::default();
        let states = Tensor::<3>::from_floats(
            [
                [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                [[2.0, 0.0], [4.0, 2.0], [1e3, -1e3]],
            ],
            &device,
        );
        let mask = Tensor::<2>::from_floats([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &device);
        assert_eq!(values(mean_pool(states, &mask)), vec![3.0, 4.0, 3.0, 1.0]);
    }

    /// The installed checkpoints through the burn encoder (every layer from
    /// the embeddings, mean pooling, L2 normalisation) against the frozen
    /// candle encoder and the sentence-transformers vectors of
    /// `mmer-text/tests/fixtures/st_reference.json`. Skips when the weights
    /// are not installed (`scripts/setup.sh`).
    #[test]
    fn installed_encoders_match_candle_and_sentence_transformers() {
        use mmer_text::{EncoderKind, SentenceEncoder};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let models = match std::env::var_os(mmer_text::MODELS_DIR_ENV) {
            Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
            _ => root.join("models"),
        };
        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                root.join("crates/mmer-text/tests/fixtures/st_reference.json"),
            )
            .expect("fixture"),
        )
        .expect("fixture JSON");
        let sentences: Vec<&str> = fixture["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        for kind in [EncoderKind::MiniLm, EncoderKind::Mpnet] {
            if !SentenceEncoder::is_installed(kind, &models) {
                eprintln!("skipping {kind}: not installed under {}", models.display());
                continue;
            }
            let frozen = SentenceEncoder::load(kind, &models).expect("loads");
            let (config, tensors) =
                mmer_text::load_encoder_tensors(kind, &models).expect("tensors");
            let device = Device::default();
            let encoder = TextEncoder::from_checkpoint(
                &config,
                &tensors,
                0..config.num_hidden_layers,
                &device,
            )
            .expect("burn encoder");
            // One sentence per pass: the fixture's longest are 384 tokens,
            // and padding the short ones to that would only cost time.
            let ours: Vec<f32> = frozen
                .token_ids(&sentences)
                .expect("tokenizes")
                .into_iter()
                .flat_map(|ids| {
                    let (states, mask) = encoder.forward_ids(&[ids], &device).expect("embeddings");
                    let pooled = mean_pool(states, &mask);
                    let norms = pooled.clone().powf_scalar(2.0).sum_dim(1).sqrt();
                    values(pooled / norms)
                })
                .collect();
            let candle: Vec<f32> = frozen.embed(&sentences).expect("embeds").concat();
            let diff = max_diff(&ours, &candle);
            assert!(diff < 1e-4, "{kind}: burn and candle differ by {diff}");
            let reference = fixture["models"][kind.as_str()]["vectors"]
                .as_array()
                .expect("vectors");
            let dim = kind.dim();
            for (i, expected) in reference.iter().enumerate() {
                let expected: Vec<f32> = expected
                    .as_array()
                    .expect("vector")
                    .iter()
                    .map(|x| x.as_f64().expect("number") as f32)
                    .collect();
                let got = &ours[i * dim..(i + 1) * dim];
                let dot: f32 = got.iter().zip(&expected).map(|(a, b)| a * b).sum();
                let norm: f32 = expected.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!(
                    dot / norm > 0.9999,
                    "{kind} sentence {i}: cosine {}",
                    dot / norm
                );
            }
        }
    }
}
