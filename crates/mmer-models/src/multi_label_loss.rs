//! Multi-label losses: binary cross-entropy on logits, SeMuL-PCD's
//! calibration loss and its peer-to-fusion distillation (thesis §3.2;
//! methods-detail §2.3, with the authors' bugs fixed as listed there).
//!
//! Every function takes logits `[n, C]` and 0/1 targets `[n, C]` as floats.
//!
//! - [`bce_with_logits`]: `mean_{i,c} softplus(z) − y z` — the authors
//!   applied a sigmoid before `BCEWithLogits` (a double sigmoid) and summed
//!   over the batch; this is the plain mean.
//! - [`calibration_loss`]: every positive label's logit against all of that
//!   sample's negatives, `Σ_i (1/|P_i|) Σ_{c∈P_i} −log(e^{z_c} / (e^{z_c} +
//!   Σ_{n∈N_i} e^{z_n}))`, averaged over the samples that have a positive
//!   (the authors summed over samples, and their code failed on a batch
//!   without positives; here such a batch contributes 0).
//! - [`bernoulli_distillation`]: per label, `KL(Bernoulli(p) ‖
//!   Bernoulli(σ(z/T)))` of the student's logits `z` against the teacher's
//!   probabilities `p` (detached: the teacher gets no gradient from this
//!   term), averaged over samples and labels and scaled by `T²` (Hinton et
//!   al. 2015). The authors' term kept only `p log(p/q)`, did not detach the
//!   teacher, learned `T`, and built the teacher from a product of logits;
//!   [`peer_teacher`] is the mean of the peers' tempered probabilities.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid, softplus};

/// Mean binary cross-entropy with logits over every sample and label.
///
/// # Shapes
/// `logits`, `targets`: `[n, C]` → `[1]`
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (softplus(logits.clone(), 1.0) - logits * targets).mean()
}

/// The calibration loss: each positive label's logit against all the
/// sample's negative logits (a softmax over `{c} ∪ N_i`), averaged over
/// the sample's positives, then over the samples that have a positive. A
/// sample with no positive adds nothing; a batch without positives gives 0.
///
/// # Shapes
/// `logits`, `targets`: `[n, C]` → `[1]`
pub fn calibration_loss(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    // log Σ_{n ∈ N_i} e^{z_n}: positives masked to a large negative logit, so
    // a sample without negatives gets ≈ −10⁴ and its terms vanish.
    let negatives_only = logits
        .clone()
        .mask_fill(targets.clone().greater_elem(0.5), -1.0e4);
    let max = negatives_only.clone().max_dim(1).detach(); // [n, 1]
    let log_negatives = (negatives_only - max.clone()).exp().sum_dim(1).log() + max; // [n, 1]
    // −log(e^{z_c} / (e^{z_c} + e^{lse})) = softplus(lse − z_c).
    let per_label = softplus(log_negatives - logits, 1.0); // [n, C]
    let positives = targets.clone().sum_dim(1); // [n, 1]
    let weights = targets / positives.clone().clamp_min(1.0);
    let samples = positives.greater_elem(0.5).float().sum().clamp_min(1.0);
    (per_label * weights).sum() / samples
}

/// The distillation target of the fusion head: the mean over the peers
/// present in each sample of their tempered probabilities `σ(z_m / T)`,
/// detached. `present` (`[n, M]`, 1/0; `None`: all present) leaves a peer
/// out of the samples that lack its modality; a sample with no peer gets
/// 0.5 everywhere (it has no teacher).
///
/// # Shapes
/// `peer_logits[m]`: `[n, C]`, `present`: `[n, M]` → `[n, C]`
///
/// # Panics
/// Without peers.
pub fn peer_teacher(
    peer_logits: &[Tensor<2>],
    present: Option<&Tensor<2>>,
    temperature: f64,
) -> Tensor<2> {
    assert!(!peer_logits.is_empty(), "a teacher needs at least one peer");
    let [n, c] = peer_logits[0].dims();
    let device = peer_logits[0].device();
    let mut sum = Tensor::<2>::zeros([n, c], &device);
    let mut count = Tensor::<2>::zeros([n, 1], &device);
    for (m, logits) in peer_logits.iter().enumerate() {
        let probs = sigmoid(logits.clone().detach().div_scalar(temperature as f32));
        let weight = match present {
            Some(p) => p.clone().narrow(1, m, 1), // [n, 1]
            None => Tensor::ones([n, 1], &device),
        };
        sum = sum + probs * weight.clone();
        count = count + weight;
    }
    let none = count.clone().lower_elem(0.5); // [n, 1]
    (sum / count.clamp_min(1.0)).mask_fill(none.expand([n, c]), 0.5)
}

/// Per-label Bernoulli KL of the student's tempered probabilities from the
/// teacher's, averaged over samples and labels, times `T²`. The teacher is
/// detached here whatever the caller passes.
///
/// # Shapes
/// `student_logits`, `teacher_probs`: `[n, C]` → `[1]`
pub fn bernoulli_distillation(
    student_logits: Tensor<2>,
    teacher_probs: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    let t = temperature as f32;
    let p = teacher_probs.detach().clamp(1.0e-7, 1.0 - 1.0e-7);
    let z = student_logits.div_scalar(t);
    let log_q = log_sigmoid(z.clone());
    let log_not_q = log_sigmoid(z.neg());
    let not_p = p.clone().neg().add_scalar(1.0);
    let kl = p.clone() * (p.log() - log_q) + not_p.clone() * (not_p.log() - log_not_q);
    kl.mean().mul_scalar(t * t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn value(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    fn softplus_f(x: f64) -> f64 {
        (1.0 + x.exp()).ln()
    }

    fn sigmoid_f(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn bce_matches_the_hand_computed_mean() {
        let device = Device::default();
        let z = [[2.0, -1.0], [0.5, 3.0]];
        let y = [[1.0, 0.0], [0.0, 1.0]];
        let expected =
            (softplus_f(2.0) - 2.0 + softplus_f(-1.0) + softplus_f(0.5) + softplus_f(3.0) - 3.0)
                / 4.0;
        let got = bce_with_logits(
            Tensor::from_floats(z, &device),
            Tensor::from_floats(y, &device),
        );
        close(value(got), expected);
    }

    #[test]
    fn calibration_ranks_each_positive_against_the_negatives() {
        let device = Device::default();
        // Sample 0: positives {0, 2}, negatives {1, 3}. Sample 1: no
        // positive (skipped). Sample 2: positive {1}, negatives {0, 2, 3}.
        let z = [
            [2.0, 0.5, -1.0, 1.0],
            [9.0, 9.0, 9.0, 9.0],
            [0.0, 1.5, -0.5, 0.25],
        ];
        let y = [
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
        ];
        let term = |c: f64, negatives: &[f64]| {
            let denominator = c.exp() + negatives.iter().map(|n| n.exp()).sum::<f64>();
            -(c.exp() / denominator).ln()
        };
        let sample0 = (term(2.0, &[0.5, 1.0]) + term(-1.0, &[0.5, 1.0])) / 2.0;
        let sample2 = term(1.5, &[0.0, -0.5, 0.25]);
        let got = calibration_loss(
            Tensor::from_floats(z, &device),
            Tensor::from_floats(y, &device),
        );
        close(value(got), (sample0 + sample2) / 2.0);
    }

    #[test]
    fn calibration_of_a_batch_without_positives_or_negatives_is_zero() {
        let device = Device::default();
        let z = Tensor::<2>::from_floats([[1.0, -2.0], [0.3, 0.1]], &device);
        let none = Tensor::<2>::zeros([2, 2], &device);
        close(value(calibration_loss(z.clone(), none)), 0.0);
        // All labels positive: nothing to rank against.
        let all = Tensor::<2>::ones([2, 2], &device);
        close(value(calibration_loss(z, all)), 0.0);
    }

    #[test]
    fn distillation_is_the_bernoulli_kl_times_t_squared() {
        let device = Device::default();
        let t = 2.0;
        let z = [[1.0, -3.0]];
        let p = [[0.8, 0.1]];
        let kl = |p: f64, z: f64| {
            let q = sigmoid_f(z / t);
            p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
        };
        let expected = (kl(0.8, 1.0) + kl(0.1, -3.0)) / 2.0 * t * t;
        let got = bernoulli_distillation(
            Tensor::from_floats(z, &device),
            Tensor::from_floats(p, &device),
            t,
        );
        close(value(got), expected);
        // Zero when the student already agrees with the teacher.
        let agree = bernoulli_distillation(
            Tensor::from_floats([[0.4 * t as f32]], &device),
            Tensor::from_floats([[sigmoid_f(0.4) as f32]], &device),
            t,
        );
        close(value(agree), 0.0);
    }

    #[test]
    fn the_teacher_gets_no_gradient_from_distillation() {
        let device = Device::default().autodiff();
        let peer = Tensor::<2>::from_floats([[0.5, -1.0], [2.0, 0.0]], &device).require_grad();
        let student = Tensor::<2>::from_floats([[0.1, 0.2], [-0.3, 0.4]], &device).require_grad();
        let teacher = peer_teacher(std::slice::from_ref(&peer), None, 2.0);
        let loss = bernoulli_distillation(student.clone(), teacher, 2.0);
        let grads = loss.backward();
        assert!(
            peer.grad(&grads).is_none(),
            "the teacher received a gradient"
        );
        let student_grad = student.grad(&grads).expect("the student learns");
        assert!(
            student_grad
                .into_data()
                .iter::<f32>()
                .any(|g| g.abs() > 1e-6)
        );
    }

    #[test]
    fn the_teacher_averages_the_present_peers_only() {
        let device = Device::default();
        let a = Tensor::<2>::from_floats([[0.0], [2.0], [1.0]], &device);
        let b = Tensor::<2>::from_floats([[4.0], [-2.0], [3.0]], &device);
        let present = Tensor::<2>::from_floats([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]], &device);
        let got = peer_teacher(&[a, b], Some(&present), 1.0);
        let expected = [
            (sigmoid_f(0.0) + sigmoid_f(4.0)) / 2.0,
            sigmoid_f(-2.0),
            0.5,
        ];
        got.into_data().assert_approx_eq::<f32>(
            &TensorData::new(expected.iter().map(|&x| x as f32).collect(), [3, 1]),
            Default::default(),
        );
    }
}
