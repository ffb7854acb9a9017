//! Cross-modal noise-contrastive losses for pre-training MAN (AMuSE §III-E1
//! Eq. 3–4; thesis §3.1.2): the modalities of one utterance are positives,
//! other utterances are negatives.
//!
//! The authors' AVID code used a frozen partition-function estimate `Z`
//! taken from the first batch (methods-detail §1.4 bug 11); here the loss is
//! InfoNCE (van den Oord et al. 2018) — a softmax over the positive and the
//! negatives — which needs no `Z`. Negatives come from a memory bank
//! (Wu et al. 2018) during training, or from the rest of the batch for a
//! deterministic validation score.

use burn::module::Param;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A learned InfoNCE scale `ln(1/τ)`, initialised as CLIP's (τ = 0.07);
/// [`clip_scale`] reads it.
pub fn clip_log_scale(device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![(1.0f32 / 0.07).ln()], [1]),
        device,
    ))
}

/// The scale `1/τ = exp(log_scale)`, clamped at 100 as CLIP does.
pub fn clip_scale(log_scale: &Param<Tensor<1>>) -> Tensor<1> {
    log_scale.val().exp().clamp_max(100.0)
}

/// Rows scaled to unit L2 norm.
///
/// # Shapes
/// `x`: `[n, d]` → `[n, d]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-8); // [n, 1]
    x.div(norm)
}

/// InfoNCE of unit anchors against their positives and shared negatives.
///
/// # Shapes
/// `anchors`, `positives`: `[n, d]`; `negatives`: `[k, d]` → `[1]`
pub fn memory_nce(
    anchors: Tensor<2>,
    positives: Tensor<2>,
    negatives: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    let positive = (anchors.clone() * positives).sum_dim(1); // [n, 1]
    let negative = anchors.matmul(negatives.transpose()); // [n, k]
    let logits = Tensor::cat(vec![positive, negative], 1).div_scalar(temperature as f32);
    let [n, _] = logits.dims();
    log_softmax(logits, 1).slice([0..n, 0..1]).mean().neg()
}

/// InfoNCE where each anchor's positive is the same row of `others` and
/// every other row is a negative.
///
/// # Shapes
/// `anchors`, `others`: `[n, d]` → `[1]`
pub fn in_batch_nce(anchors: Tensor<2>, others: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n, _] = anchors.dims();
    let device = anchors.device();
    let logits = anchors
        .matmul(others.transpose())
        .div_scalar(temperature as f32); // [n, n]
    let diagonal = Tensor::<1, Int>::arange(0..n as i64, &device).unsqueeze_dim::<2>(1);
    log_softmax(logits, 1).gather(1, diagonal).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn aligned_pairs_score_lower_than_shuffled() {
        let device = Device::default();
        let a = l2_normalize(Tensor::<2>::from_floats(
            [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]],
            &device,
        ));
        let shuffled = a
            .clone()
            .select(0, Tensor::<1, Int>::from_ints([1, 2, 0], &device));
        let aligned: f32 = in_batch_nce(a.clone(), a.clone(), 0.07).into_scalar();
        let wrong: f32 = in_batch_nce(a.clone(), shuffled, 0.07).into_scalar();
        assert!(aligned < 0.01 && wrong > 1.0, "{aligned} {wrong}");
        let negatives = Tensor::<2>::from_floats([[0.0, -1.0]], &device);
        let memory: f32 = memory_nce(a.clone(), a, negatives, 0.07).into_scalar();
        assert!(memory.is_finite() && memory >= 0.0);
    }

    #[test]
    fn normalised_rows_have_unit_norm() {
        let device = Device::default();
        let x = l2_normalize(Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 0.0]], &device));
        let v: Vec<f32> = x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![0.6, 0.8, 0.0, 0.0]);
    }
}
