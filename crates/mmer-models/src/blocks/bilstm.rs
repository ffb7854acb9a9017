//! A bidirectional LSTM over right-padded sequences of different lengths.
//!
//! burn's `BiLstm` runs the backward direction over the padding first, so a
//! short sequence's backward state starts from pad steps. Here the backward
//! direction reads each sequence reversed *within its own length* (a gather),
//! so padding never leaks into real positions — the packed-sequence
//! behaviour of PyTorch. The cell also projects all inputs in one matmul
//! before the time loop, leaving only the recurrent matmul per step.
//!
//! LSTM: Hochreiter & Schmidhuber 1997; bidirectional: Graves & Schmidhuber 2005.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Per-batch index that reverses each sequence within its length.
///
/// Built once per batch on the CPU and shared by every [`MaskedBiLstm`] that
/// reads sequences of these lengths.
#[derive(Debug, Clone)]
pub struct SequenceIndex {
    /// `[n * max_len]` flat gather index; an involution.
    reverse: Tensor<1, Int>,
    /// Real length of each sequence.
    pub lengths: Vec<usize>,
    /// Padded length.
    pub max_len: usize,
}

impl SequenceIndex {
    /// Index for sequences of the given lengths, padded to `max_len`.
    pub fn new(lengths: &[usize], max_len: usize, device: &Device) -> Self {
        let mut reverse = Vec::with_capacity(lengths.len() * max_len);
        for (n, &len) in lengths.iter().enumerate() {
            let base = (n * max_len) as i64;
            for t in 0..max_len {
                let src = if t < len { len - 1 - t } else { t };
                reverse.push(base + src as i64);
            }
        }
        let count = reverse.len();
        Self {
            reverse: Tensor::from_data(TensorData::new(reverse, [count]), device),
            lengths: lengths.to_vec(),
            max_len,
        }
    }

    /// Reverses every sequence of `x` within its length; padding stays in place.
    ///
    /// # Shapes
    /// `x`: `[n, max_len, d]` → `[n, max_len, d]`
    pub fn reverse(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, len, d] = x.dims();
        x.reshape([n * len, d])
            .select(0, self.reverse.clone())
            .reshape([n, len, d])
    }
}

/// Configuration of [`MaskedBiLstm`].
#[derive(Config, Debug)]
pub struct MaskedBiLstmConfig {
    /// Input width.
    pub d_input: usize,
    /// Hidden width per direction; the output is `2 * d_hidden` wide.
    pub d_hidden: usize,
}

/// One-direction LSTM cell with the input projection hoisted out of the loop.
#[derive(Module, Debug)]
struct LstmCell {
    /// W_x for the four gates (i, f, g, o), with bias.
    input: Linear,
    /// W_h for the four gates, no bias.
    recurrent: Linear,
    d_hidden: usize,
}

impl LstmCell {
    fn init(d_input: usize, d_hidden: usize, device: &Device) -> Self {
        Self {
            input: LinearConfig::new(d_input, 4 * d_hidden).init(device),
            recurrent: LinearConfig::new(d_hidden, 4 * d_hidden)
                .with_bias(false)
                .init(device),
            d_hidden,
        }
    }

    /// # Shapes
    /// `x`: `[n, len, d_input]` → `[n, len, d_hidden]`
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, len, _] = x.dims();
        let device = x.device();
        let projected = self.input.forward(x); // [n, len, 4h]
        let mut h = Tensor::<2>::zeros([n, self.d_hidden], &device);
        let mut c = Tensor::<2>::zeros([n, self.d_hidden], &device);
        let mut outputs = Vec::with_capacity(len);
        for step in projected.iter_dim(1) {
            let gates = step.squeeze_dim::<2>(1) + self.recurrent.forward(h.clone()); // [n, 4h]
            let [i, f, g, o]: [Tensor<2>; 4] = gates
                .chunk(4, 1)
                .try_into()
                .expect("chunk(4) of a 4h-wide tensor yields four parts");
            c = sigmoid(f) * c + sigmoid(i) * tanh(g);
            h = sigmoid(o) * tanh(c.clone());
            outputs.push(h.clone());
        }
        Tensor::stack(outputs, 1) // [n, len, h]
    }
}

/// Bidirectional LSTM that respects each sequence's length.
#[derive(Module, Debug)]
pub struct MaskedBiLstm {
    forward_cell: LstmCell,
    backward_cell: LstmCell,
}

impl MaskedBiLstmConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> MaskedBiLstm {
        MaskedBiLstm {
            forward_cell: LstmCell::init(self.d_input, self.d_hidden, device),
            backward_cell: LstmCell::init(self.d_input, self.d_hidden, device),
        }
    }
}

impl MaskedBiLstm {
    /// Runs both directions; outputs at padded positions are meaningless and
    /// must be masked by the caller.
    ///
    /// # Shapes
    /// `x`: `[n, max_len, d_input]` → `[n, max_len, 2 * d_hidden]`
    pub fn forward(&self, x: Tensor<3>, index: &SequenceIndex) -> Tensor<3> {
        let forward = self.forward_cell.forward(x.clone()); // [n, len, h]
        let backward = self.backward_cell.forward(index.reverse(x)); // reversed time
        let backward = index.reverse(backward); // back to real time
        Tensor::cat(vec![forward, backward], 2) // [n, len, 2h]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn padding_does_not_change_real_positions() {
        let device = Device::default();
        device.seed(0);
        let lstm = MaskedBiLstmConfig::new(3, 4).init(&device);
        let x = Tensor::<3>::random([1, 2, 3], Distribution::Normal(0.0, 1.0), &device);
        let short = lstm.forward(x.clone(), &SequenceIndex::new(&[2], 2, &device));
        // The same sequence padded with garbage to length 5.
        let pad = Tensor::<3>::random([1, 3, 3], Distribution::Normal(5.0, 1.0), &device);
        let padded = Tensor::cat(vec![x, pad], 1);
        let long = lstm.forward(padded, &SequenceIndex::new(&[2], 5, &device));
        let long = long.slice([0..1, 0..2, 0..8]);
        short
            .into_data()
            .assert_approx_eq::<f32>(&long.into_data(), Default::default());
    }

    #[test]
    fn reverse_is_within_length() {
        let device = Device::default();
        let idx = SequenceIndex::new(&[3, 1], 3, &device);
        let x = Tensor::<3>::from_floats([[[0.0], [1.0], [2.0]], [[3.0], [4.0], [5.0]]], &device);
        let r: Vec<f32> = idx.reverse(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(r, vec![2.0, 1.0, 0.0, 3.0, 4.0, 5.0]);
    }
}
