//! Classification losses.
//!
//! Focal loss (Lin et al. 2017): `FL(p_t) = −w_t (1 − p_t)^γ log p_t`, the
//! AMuSE training loss with γ = 1 (thesis §3.1, AMuSE Eq. 5 read with its
//! missing `log`). γ = 0 is weighted cross-entropy. Unlike the authors'
//! `losses/focal.py`, `p_t` is not detached, so the modulating factor is
//! differentiated as in the original paper.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Which classification loss to train with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LossKind {
    /// Focal loss with focusing parameter γ (AMuSE: 1.0).
    Focal {
        /// Focusing parameter γ ≥ 0.
        gamma: f64,
    },
    /// Plain cross-entropy.
    CrossEntropy,
}

impl Default for LossKind {
    fn default() -> Self {
        LossKind::Focal { gamma: 1.0 }
    }
}

impl LossKind {
    fn gamma(self) -> f64 {
        match self {
            LossKind::Focal { gamma } => gamma,
            LossKind::CrossEntropy => 0.0,
        }
    }
}

/// Mean (class-weighted) focal / cross-entropy loss over rows.
///
/// With `class_weights`, the mean is `Σ w_t ℓ / Σ w_t` (PyTorch's weighted
/// cross-entropy convention).
///
/// # Shapes
/// `logits`: `[n, classes]`, `targets`: `[n]`, `class_weights`: `[classes]` → `[1]`
pub fn classification_loss(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    class_weights: Option<Tensor<1>>,
    kind: LossKind,
) -> Tensor<1> {
    let log_probs = log_softmax(logits, 1); // [n, c]
    let log_p_t = log_probs
        .gather(1, targets.clone().unsqueeze_dim(1))
        .squeeze_dim::<1>(1); // [n]
    let gamma = kind.gamma();
    let per_row = if gamma == 0.0 {
        -log_p_t
    } else {
        let modulator = log_p_t
            .clone()
            .exp()
            .neg()
            .add_scalar(1.0)
            .clamp_min(0.0)
            .powf_scalar(gamma);
        -(modulator * log_p_t)
    }; // [n]
    match class_weights {
        Some(weights) => {
            let w_t = weights.select(0, targets); // [n]
            (per_row * w_t.clone()).sum() / w_t.sum()
        }
        None => per_row.mean(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn setup() -> (Tensor<2>, Tensor<1, Int>) {
        let device = Device::default();
        let logits = Tensor::<2>::from_floats([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
        (logits, targets)
    }

    #[test]
    fn gamma_zero_is_cross_entropy() {
        let (logits, targets) = setup();
        let focal0 = classification_loss(
            logits.clone(),
            targets.clone(),
            None,
            LossKind::Focal { gamma: 0.0 },
        );
        let ce = classification_loss(logits, targets, None, LossKind::CrossEntropy);
        // Hand-computed: mean(−log softmax) = mean(0.24131, 1.00194) = 0.62162
        let v: f32 = ce.into_scalar();
        assert!((v - 0.621_62).abs() < 1e-4, "{v}");
        assert!((focal0.into_scalar::<f32>() - v).abs() < 1e-6);
    }

    #[test]
    fn focal_down_weights_easy_rows() {
        let (logits, targets) = setup();
        let ce: f32 = classification_loss(
            logits.clone(),
            targets.clone(),
            None,
            LossKind::CrossEntropy,
        )
        .into_scalar();
        let focal: f32 = classification_loss(logits, targets, None, LossKind::Focal { gamma: 1.0 })
            .into_scalar();
        // (1 − p)·(−log p) per row: p = 0.78565 → 0.05172; p = 0.36718 → 0.63406.
        assert!((focal - 0.342_89).abs() < 1e-4, "{focal}");
        assert!(focal < ce);
    }

    #[test]
    fn class_weights_use_weighted_mean() {
        let (logits, targets) = setup();
        let device = Device::default();
        let w = Tensor::<1>::from_floats([1.0, 1.0, 3.0], &device);
        let v: f32 =
            classification_loss(logits, targets, Some(w), LossKind::CrossEntropy).into_scalar();
        let expected = (0.24131 + 3.0 * 1.00194) / 4.0;
        assert!((v - expected).abs() < 1e-3, "{v} vs {expected}");
    }
}
