//! Adaptive Fusion, AF (AMuSE §III-C Eq. 2; thesis §3.1.3):
//!
//! `A(u) = ⊕_m mean_{m' ≠ m} [ α_{m,m'} ⊙ f_{m'} + (1 − α_{m,m'}) ⊙ f_m ]`
//!
//! with `α = σ(θ)` a per-dimension gate per ordered modality pair, learned by
//! backpropagation. Not reproduced: the paper's ALFA-Mix closed form, which
//! adds validation samples to training (a protocol leak), and the code's
//! unconstrained α (methods-detail §1.4 bugs 7–8); the sigmoid keeps
//! 0 ≤ α ≤ 1 as the paper requires.

use super::model::fuse_present;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// Configuration of [`AdaptiveFusion`].
#[derive(Config, Debug)]
pub struct AdaptiveFusionConfig {
    /// Number of modalities.
    pub modalities: usize,
    /// Width of each modality's descriptor.
    pub d_model: usize,
}

/// Gated pairwise mixing of modality descriptors, then concatenation.
#[derive(Module, Debug)]
pub struct AdaptiveFusion {
    /// θ for every ordered pair (m, m'), m ≠ m', row `m * (M − 1) + k`.
    /// Absent with a single modality (AF is then the identity).
    gates: Option<Param<Tensor<2>>>,
    modalities: usize,
}

impl AdaptiveFusionConfig {
    /// Builds the module; α starts at σ(0) = 0.5, an even mix.
    pub fn init(&self, device: &Device) -> AdaptiveFusion {
        let pairs = self.modalities * self.modalities.saturating_sub(1);
        AdaptiveFusion {
            gates: (pairs > 0).then(|| Initializer::Zeros.init([pairs, self.d_model], device)),
            modalities: self.modalities,
        }
    }
}

impl AdaptiveFusion {
    /// The gate values α, `[M (M − 1), d]` (for inspection and tests).
    pub fn alpha(&self) -> Option<Tensor<2>> {
        self.gates.as_ref().map(|g| sigmoid(g.val()))
    }

    /// With `present` (`[n, M]`, 1/0; `None`: all present), each present
    /// modality mixes with the *present* others only (itself alone when
    /// none is), and the result goes through [`fuse_present`]: absent
    /// slots zeroed, present ones rescaled.
    ///
    /// # Shapes
    /// `descriptors[m]`: `[n, d]`, `present`: `[n, M]` → `[n, M · d]`
    ///
    /// # Panics
    /// If the number of descriptors differs from the configured modalities.
    pub fn forward(&self, descriptors: Vec<Tensor<2>>, present: Option<&Tensor<2>>) -> Tensor<2> {
        assert_eq!(
            descriptors.len(),
            self.modalities,
            "one descriptor per modality"
        );
        let Some(alpha) = self.alpha() else {
            return match present {
                None => Tensor::cat(descriptors, 1),
                Some(_) => fuse_present(Tensor::stack(descriptors, 1), present),
            };
        };
        if let Some(present) = present {
            return fuse_present(
                self.mix_present(&descriptors, &alpha, present),
                Some(present),
            );
        }
        let others = (self.modalities - 1) as f32;
        let [_, d] = alpha.dims();
        let mut fused = Vec::with_capacity(self.modalities);
        let mut row = 0;
        for (m, own) in descriptors.iter().enumerate() {
            let mut sum: Option<Tensor<2>> = None;
            for (_, other) in descriptors.iter().enumerate().filter(|(k, _)| *k != m) {
                let a = alpha.clone().slice([row..row + 1, 0..d]); // [1, d]
                row += 1;
                let mixed = other.clone() * a.clone() + own.clone() * (a.neg() + 1.0);
                sum = Some(match sum {
                    Some(s) => s + mixed,
                    None => mixed,
                });
            }
            fused.push(sum.map_or_else(|| own.clone(), |s| s.div_scalar(others)));
        }
        Tensor::cat(fused, 1)
    }

    /// The AF mix of [`AdaptiveFusion::forward`] over the present others of
    /// each row.
    ///
    /// # Shapes
    /// `descriptors[m]`: `[n, d]`, `alpha`: `[M (M − 1), d]`, `present`:
    /// `[n, M]` → `[n, M, d]`
    fn mix_present(
        &self,
        descriptors: &[Tensor<2>],
        alpha: &Tensor<2>,
        present: &Tensor<2>,
    ) -> Tensor<3> {
        let [n, d] = descriptors[0].dims();
        let mut fused = Vec::with_capacity(self.modalities);
        let mut row = 0;
        for (m, own) in descriptors.iter().enumerate() {
            let mut sum = own.zeros_like();
            let mut count: Tensor<2> = Tensor::zeros([n, 1], &own.device());
            for (k, other) in descriptors.iter().enumerate().filter(|(k, _)| *k != m) {
                let a = alpha.clone().slice([row..row + 1, 0..d]); // [1, d]
                row += 1;
                let w = present.clone().narrow(1, k, 1); // [n, 1]
                let mixed = other.clone() * a.clone() + own.clone() * (a.neg() + 1.0);
                // An absent other's descriptor is padding: select, never
                // multiply (0 · anything would still carry its gradient).
                sum = sum + mixed.mask_fill(w.clone().lower_elem(0.5).expand([n, d]), 0.0);
                count = count + w;
            }
            let none = count.clone().lower_elem(0.5).expand([n, d]);
            let mean = sum / count.clamp_min(1.0);
            fused.push(mean.mask_where(none, own.clone()));
        }
        Tensor::stack(fused, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_gates_average_each_pair() {
        let device = Device::default();
        let af = AdaptiveFusionConfig::new(2, 2).init(&device);
        let a = Tensor::<2>::from_floats([[0.0, 2.0]], &device);
        let b = Tensor::<2>::from_floats([[4.0, 6.0]], &device);
        let out: Vec<f32> = af
            .forward(vec![a, b], None)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // α = 0.5: both halves are the midpoint of the pair.
        assert_eq!(out, vec![2.0, 4.0, 2.0, 4.0]);
    }

    #[test]
    fn single_modality_is_identity() {
        let device = Device::default();
        let af = AdaptiveFusionConfig::new(1, 3).init(&device);
        assert!(af.alpha().is_none());
        let a = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
        let out: Vec<f32> = af
            .forward(vec![a], None)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out, vec![1.0, 2.0, 3.0]);
    }
}
