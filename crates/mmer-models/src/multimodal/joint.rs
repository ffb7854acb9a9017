//! AM²-EmoJE's fusion (thesis §3.3, §5.3; ICME 2024): a joint embedding of
//! the modality descriptors, imputation of missing modalities from it, and
//! query-adaptive fusion.
//!
//! The paper's text states the two ideas — "multimodal joint embedding
//! learning", which aligns the cross-attended mode-specific descriptors
//! pairwise in a joint space and so compensates for missing modalities, and
//! "query adaptive fusion", which learns the relative importance of the
//! modalities per query — but no equations and no code. What follows is
//! mmer's design (methods-detail §3.2, marked there as inferred), not the
//! authors':
//!
//! - **Joint embedding.** Per-modality heads `P_m: R^d → R^k`,
//!   L2-normalised: `z_m = P_m(f_m) / ‖P_m(f_m)‖`. A CLIP-style symmetric
//!   InfoNCE (Radford et al. 2021) over every pair of modalities present in
//!   the same turns of the batch, with a learned temperature (CLIP's
//!   initialisation `1/0.07` and clamp at 100): [`joint_nce`]. Variants
//!   ([`JointPositives`]): positives are the same turn (CLIP), every turn
//!   with the same label (supervised contrastive, Khosla et al. 2020), or
//!   only the face is pulled towards the (detached) body of the same turn
//!   — two readings of the paper's "guided NCE"; it does not say which.
//!   By default the projections read the descriptors through a
//!   stop-gradient ([`JointSpec::align_descriptors`] = false): the NCE and
//!   the imputation error train `P_m` and `G_m` only, because letting them
//!   shape the descriptors cost 3–4 points of test wF1 each on the redundant
//!   synthetic setting (docs/RESULTS.md, "Missing modalities").
//! - **Imputation.** `G_m: R^k → R^d` maps a joint embedding back into
//!   modality `m`'s descriptor space. A turn that lacks `m` gets the mean of
//!   `G_m(z_n)` over the modalities `n` it has; training fits
//!   `G_m(z_n) ≈ f_m` (squared error against the detached real descriptor)
//!   wherever both exist — including modalities hidden by modality dropout
//!   (`ModelSpec::modality_dropout`), whose real descriptor is known.
//! - **Query-adaptive fusion.** Per-turn weights over the modalities,
//!   `w = softmax_m(MLP([f_1; …; f_M; p]) + log a_m)` with `p` the turn's
//!   presence mask (1 for a real descriptor, 0 for an imputed or absent
//!   one, so the weights can tell an imputed slot from a real one), `a` its
//!   availability mask (present, or imputed), and
//!   `z = ⊕_m M·w_m f_m` (the weighted slots concatenated; at even weights
//!   plain concatenation): each turn decides how much each modality counts,
//!   in place of AMuSE's global gates. Concatenated, not summed: the paper
//!   keeps "mode-exclusive" details beside the shared ones, and a weighted
//!   sum into one `d`-wide vector measured 5–8 points of validation wF1
//!   below AMuSE on the redundant synthetic setting (3 seeds; the first
//!   version of this module). An unavailable slot enters the MLP as zeros
//!   *with its flag at 0*, and gets weight 0.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{gelu, log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nce::{clip_log_scale, clip_scale, l2_normalize};

/// What counts as a positive in the joint-embedding NCE (the paper's
/// "guided NCE" is one of the latter two, unstated which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum JointPositives {
    /// The other modality of the same turn (CLIP).
    #[default]
    SameTurn,
    /// The other modality of every turn in the batch with the same gold
    /// label (supervised contrastive); unlabelled turns count only
    /// themselves.
    SameLabel,
    /// Only face against body: the face embedding is pulled towards the
    /// detached body embedding of its turn (body guides face).
    BodyGuidedFace,
}

/// AM²-EmoJE's settings (`[train.model.joint]`), read by the `am2_emoje`
/// fusion only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointSpec {
    /// Width of the joint embedding space.
    pub d_joint: usize,
    /// Hidden width of the query-adaptive weighting MLP.
    pub d_query: usize,
    /// Per-turn (query-adaptive) modality weights; `false` learns one global
    /// weight per modality instead (the ablation against AMuSE-style
    /// global gating), still renormalised over what a turn has.
    pub query_adaptive: bool,
    /// Impute missing modalities from the joint space (else they are left
    /// out of the fusion).
    pub impute: bool,
    /// Positives of the joint-embedding NCE.
    pub positives: JointPositives,
    /// Weight of the joint-embedding NCE in the training loss.
    pub nce_weight: f64,
    /// Weight of the imputation error in the training loss.
    pub imputation_weight: f64,
    /// Let the joint space's losses (NCE, imputation error) and the
    /// gradient through imputed slots reach the modality descriptors, so
    /// that they train the encoders and MAN too (the paper's reading: the
    /// joint embedding shapes the descriptors). `false` puts a stop-gradient
    /// between the descriptors and the projections `P_m`: the joint space
    /// learns to align and impute from descriptors that only the
    /// classification losses shape.
    pub align_descriptors: bool,
}

impl Default for JointSpec {
    fn default() -> Self {
        Self {
            d_joint: 64,
            d_query: 64,
            query_adaptive: true,
            impute: true,
            positives: JointPositives::SameTurn,
            nce_weight: 0.5,
            imputation_weight: 0.5,
            align_descriptors: false,
        }
    }
}

/// Configuration of [`JointFusion`].
#[derive(Config, Debug)]
pub struct JointFusionConfig {
    /// Number of modalities.
    pub modalities: usize,
    /// Width of each modality's descriptor.
    pub d_model: usize,
    /// Width of the joint space.
    #[config(default = 64)]
    pub d_joint: usize,
    /// Hidden width of the query-adaptive weighting MLP.
    #[config(default = 64)]
    pub d_query: usize,
    /// Impute missing modalities from the joint space.
    #[config(default = true)]
    pub impute: bool,
    /// Per-turn weights (else one learned weight per modality).
    #[config(default = true)]
    pub query_adaptive: bool,
    /// Gradients from the joint space reach the descriptors
    /// ([`JointSpec::align_descriptors`]).
    #[config(default = false)]
    pub align_descriptors: bool,
}

/// Joint embedding, imputation and query-adaptive fusion.
#[derive(Module, Debug)]
pub struct JointFusion {
    /// `P_m`, one per modality.
    projections: Vec<Linear>,
    /// `G_m`, one per modality (empty without imputation).
    imputers: Vec<Linear>,
    /// The weighting MLP (`None` for one modality, whose weight is 1, and
    /// with global weights).
    query: Option<QueryWeights>,
    /// Global weight logits, `[M]` (without query-adaptive weights).
    global: Option<Param<Tensor<1>>>,
    /// `ln(1/τ)` of the NCE, CLIP-initialised (`None` for one modality:
    /// nothing to align, and no projections either).
    log_scale: Option<Param<Tensor<1>>>,
    /// [`JointSpec::align_descriptors`] (a constant of the module).
    align_descriptors: bool,
}

/// The query-adaptive weighting MLP.
#[derive(Module, Debug)]
struct QueryWeights {
    hidden: Linear,
    scores: Linear,
}

/// What [`JointFusion::forward`] returns.
#[derive(Debug, Clone)]
pub struct JointOutput {
    /// The fused descriptor of every turn, `[n, M · d]`.
    pub fused: Tensor<2>,
    /// Unit joint embeddings per modality, `[n, k]` each (rows of absent
    /// modalities are computed from padding: mask them).
    pub joint: Vec<Tensor<2>>,
    /// Per-turn modality weights, `[n, M]`.
    pub weights: Tensor<2>,
    /// Mean squared imputation error over (turn, target, source) triples
    /// whose target is real; `None` without imputation or such triple.
    pub imputation_loss: Option<Tensor<1>>,
}

impl JointFusionConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> JointFusion {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        JointFusion {
            projections: if self.modalities > 1 {
                (0..self.modalities)
                    .map(|_| linear(self.d_model, self.d_joint))
                    .collect()
            } else {
                Vec::new()
            },
            imputers: if self.impute && self.modalities > 1 {
                (0..self.modalities)
                    .map(|_| linear(self.d_joint, self.d_model))
                    .collect()
            } else {
                Vec::new()
            },
            global: (self.modalities > 1 && !self.query_adaptive)
                .then(|| Initializer::Zeros.init([self.modalities], device)),
            query: (self.modalities > 1 && self.query_adaptive).then(|| QueryWeights {
                hidden: linear(self.modalities * (self.d_model + 1), self.d_query),
                // Zero init: every available modality starts with the same
                // weight.
                scores: LinearConfig::new(self.d_query, self.modalities)
                    .with_initializer(Initializer::Zeros)
                    .init(device),
            }),
            log_scale: (self.modalities > 1).then(|| clip_log_scale(device)),
            align_descriptors: self.align_descriptors,
        }
    }
}

impl JointFusion {
    /// The NCE scale `1/τ`, clamped at 100 (CLIP); `None` for one modality.
    pub fn scale(&self) -> Option<Tensor<1>> {
        self.log_scale.as_ref().map(clip_scale)
    }

    /// Fuses the descriptors of `n` turns.
    ///
    /// `present` (`[n, M]`, 1/0; `None`: all present) says which
    /// descriptors are real; `truth` (`[n, M]`, default `present`) which
    /// ones exist at all — wider than `present` when modality dropout hid
    /// some in training: their real descriptors are imputation targets.
    ///
    /// # Shapes
    /// `descriptors[m]`: `[n, d]`, `present`, `truth`: `[n, M]` →
    /// [`JointOutput`]
    pub fn forward(
        &self,
        descriptors: Vec<Tensor<2>>,
        present: Option<&Tensor<2>>,
        truth: Option<&Tensor<2>>,
    ) -> JointOutput {
        let modalities = descriptors.len();
        let [n, d] = descriptors[0].dims();
        let device = descriptors[0].device();
        let present = present
            .cloned()
            .unwrap_or_else(|| Tensor::ones([n, modalities], &device));
        let truth = truth.cloned().unwrap_or_else(|| present.clone());
        let column = |mask: &Tensor<2>, m: usize| mask.clone().narrow(1, m, 1); // [n, 1]
        let joint: Vec<Tensor<2>> = self
            .projections
            .iter()
            .zip(&descriptors)
            .map(|(p, f)| {
                let f = if self.align_descriptors {
                    f.clone()
                } else {
                    f.clone().detach()
                };
                l2_normalize(p.forward(f))
            })
            .collect();
        // Imputation: the mean of G_m(z_n) over the present n ≠ m.
        let (slots, available, imputation_loss) = if self.imputers.is_empty() {
            let slots = descriptors
                .iter()
                .enumerate()
                .map(|(m, f)| {
                    f.clone()
                        .mask_fill(column(&present, m).lower_elem(0.5).expand([n, d]), 0.0)
                })
                .collect::<Vec<_>>();
            (slots, present.clone(), None)
        } else {
            let mut slots = Vec::with_capacity(modalities);
            let (mut error_sum, mut error_count): (Option<Tensor<1>>, Option<Tensor<1>>) =
                (None, None);
            for (m, (g, f)) in self.imputers.iter().zip(&descriptors).enumerate() {
                let mut sum: Tensor<2> = Tensor::zeros([n, d], &device);
                let mut count: Tensor<2> = Tensor::zeros([n, 1], &device);
                let target = f.clone().detach();
                for (k, z) in joint.iter().enumerate().filter(|(k, _)| *k != m) {
                    let from = column(&present, k);
                    let guess = g.forward(z.clone()); // [n, d]
                    // Errors where the source is present and the target real.
                    let w = from.clone() * column(&truth, m);
                    let error =
                        (guess.clone() - target.clone()).powi_scalar(2).mean_dim(1) * w.clone();
                    error_sum = Some(match error_sum {
                        Some(s) => s + error.sum(),
                        None => error.sum(),
                    });
                    error_count = Some(match error_count {
                        Some(c) => c + w.sum(),
                        None => w.sum(),
                    });
                    sum = sum + guess.mask_fill(from.clone().lower_elem(0.5).expand([n, d]), 0.0);
                    count = count + from;
                }
                let imputed = sum / count.clone().clamp_min(1.0);
                let own = column(&present, m);
                let slot = f
                    .clone()
                    .mask_where(own.clone().lower_elem(0.5).expand([n, d]), imputed);
                slots.push(slot);
            }
            // Available: present, or imputable from another present one.
            let any = present.clone().sum_dim(1).greater_elem(0.5).float(); // [n, 1]
            let available = any.expand([n, modalities]);
            let loss = match (error_sum, error_count) {
                (Some(s), Some(c)) => Some(s / c.clamp_min(1.0)),
                _ => None,
            };
            (slots, available, loss)
        };
        // Query-adaptive weights over the available slots.
        let weights = match (&self.query, &self.global) {
            (_, Some(global)) => {
                let [rows, m] = available.dims();
                let scores = global
                    .val()
                    .reshape([1, m])
                    .expand([rows, m])
                    .mask_fill(available.clone().lower_elem(0.5), -1.0e4);
                softmax(scores, 1)
            }
            (Some(query), None) => {
                let mut input = slots.clone();
                input.push(present.clone());
                let hidden = gelu(query.hidden.forward(Tensor::cat(input, 1)));
                let scores = query
                    .scores
                    .forward(hidden)
                    .mask_fill(available.clone().lower_elem(0.5), -1.0e4);
                softmax(scores, 1) // [n, M]
            }
            (None, None) => available.clone(),
        };
        let stacked = Tensor::stack::<3>(slots, 1); // [n, M, d]
        let fused = (stacked
            * weights
                .clone()
                .mul_scalar(modalities as f32)
                .unsqueeze_dim::<3>(2))
        .reshape([n, modalities * d]);
        JointOutput {
            fused,
            joint,
            weights,
            imputation_loss,
        }
    }
}

/// The joint-embedding NCE of a batch: the mean over modality pairs `(a, b)`
/// of the symmetric InfoNCE between `joint[a]` and `joint[b]` over the turns
/// that have both (pairs with fewer than two such turns are skipped).
/// `None` when no pair qualifies.
///
/// `labels` (one per turn, `None` for unlabelled) is needed by
/// [`JointPositives::SameLabel`]; `face_body` (the face and body indices)
/// by [`JointPositives::BodyGuidedFace`], which scores that pair only, face
/// → body with the body detached.
///
/// # Shapes
/// `joint[m]`: `[n, k]` unit rows; `present`: `[n, M]` (`None`: all);
/// `scale`: `[1]` → `[1]`
pub fn joint_nce(
    joint: &[Tensor<2>],
    present: Option<&Tensor<2>>,
    scale: Tensor<1>,
    positives: JointPositives,
    labels: &[Option<usize>],
    face_body: Option<(usize, usize)>,
) -> Option<Tensor<1>> {
    let modalities = joint.len();
    let [n, _] = joint.first()?.dims();
    let device = joint[0].device();
    let present: Vec<f32> = match present {
        Some(p) => p.clone().into_data().try_to_vec::<f32>().ok()?,
        None => vec![1.0; n * modalities],
    };
    let has = |i: usize, m: usize| present[i * modalities + m] > 0.5;
    let pairs: Vec<(usize, usize)> = match positives {
        JointPositives::BodyGuidedFace => vec![face_body?],
        _ => (0..modalities)
            .flat_map(|a| (a + 1..modalities).map(move |b| (a, b)))
            .collect(),
    };
    let mut total: Option<Tensor<1>> = None;
    let mut count = 0usize;
    for (a, b) in pairs {
        let rows: Vec<usize> = (0..n).filter(|&i| has(i, a) && has(i, b)).collect();
        if rows.len() < 2 {
            continue;
        }
        let r = rows.len();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(rows.iter().map(|&i| i as i64).collect::<Vec<_>>(), [r]),
            &device,
        );
        let za = joint[a].clone().select(0, index.clone());
        let mut zb = joint[b].clone().select(0, index);
        if positives == JointPositives::BodyGuidedFace {
            zb = zb.detach();
        }
        let logits = za.matmul(zb.transpose()) * scale.clone().reshape([1, 1]); // [r, r]
        // Positive mask: the diagonal, or same-label pairs.
        let mut target = vec![0f32; r * r];
        for (i, &ri) in rows.iter().enumerate() {
            for (j, &rj) in rows.iter().enumerate() {
                let positive = i == j
                    || (positives == JointPositives::SameLabel
                        && labels.get(ri).copied().flatten().is_some()
                        && labels.get(ri) == labels.get(rj));
                if positive {
                    target[i * r + j] = 1.0;
                }
            }
        }
        let target = Tensor::<2>::from_data(TensorData::new(target, [r, r]), &device);
        let per_pos = target.clone().sum_dim(1); // [r, 1]
        // −mean over positives of log softmax, both directions.
        let direction = |logits: Tensor<2>, target: Tensor<2>| {
            (log_softmax(logits, 1) * target)
                .sum_dim(1)
                .div(per_pos.clone())
                .mean()
                .neg()
        };
        let loss = if positives == JointPositives::BodyGuidedFace {
            direction(logits, target)
        } else {
            (direction(logits.clone(), target.clone())
                + direction(logits.transpose(), target.transpose()))
            .div_scalar(2.0)
        };
        total = Some(match total {
            Some(t) => t + loss,
            None => loss,
        });
        count += 1;
    }
    total.map(|t| t.div_scalar(count as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn descriptors(n: usize, m: usize, d: usize, device: &Device) -> Vec<Tensor<2>> {
        (0..m)
            .map(|_| Tensor::random([n, d], Distribution::Normal(0.0, 1.0), device))
            .collect()
    }

    #[test]
    fn weights_cover_the_available_modalities_and_absent_slots_are_not_read() {
        let device = Device::default();
        device.seed(3);
        let fusion = JointFusionConfig::new(3, 8)
            .with_impute(false)
            .init(&device);
        let mut f = descriptors(4, 3, 8, &device);
        let present = Tensor::<2>::from_data(
            TensorData::new(
                vec![1f32, 1., 1., 1., 0., 1., 0., 0., 1., 1., 1., 0.],
                [4, 3],
            ),
            &device,
        );
        let out = fusion.forward(f.clone(), Some(&present), None);
        let w: Vec<f32> = out.weights.clone().into_data().try_to_vec().unwrap();
        // Zero-initialised scores: even weights over what is there.
        let expect = [
            1. / 3.,
            1. / 3.,
            1. / 3.,
            0.5,
            0.,
            0.5,
            0.,
            0.,
            1.,
            0.5,
            0.5,
            0.,
        ];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-5, "{w:?}");
        }
        // Garbage in an absent slot changes nothing.
        let before: Vec<f32> = out.fused.into_data().try_to_vec().unwrap();
        f[1] = f[1].clone().add_scalar(1e3);
        let after: Vec<f32> = fusion
            .forward(f, Some(&present), None)
            .fused
            .into_data()
            .try_to_vec()
            .unwrap();
        // Rows 1 and 2 lack modality 1 (fused rows are 3 × 8 wide).
        for row in 1..3 {
            for k in 0..24 {
                assert!((before[row * 24 + k] - after[row * 24 + k]).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn imputation_fills_every_slot_and_has_a_loss_where_the_truth_exists() {
        let device = Device::default();
        device.seed(4);
        let fusion = JointFusionConfig::new(3, 8).init(&device);
        let f = descriptors(5, 3, 8, &device);
        let present = Tensor::<2>::from_data(
            TensorData::new(
                vec![1f32, 1., 1., 1., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0., 1.],
                [5, 3],
            ),
            &device,
        );
        let out = fusion.forward(f, Some(&present), None);
        let w: Vec<f32> = out.weights.into_data().try_to_vec().unwrap();
        assert!(w.iter().all(|&x| (x - 1.0 / 3.0).abs() < 1e-5), "{w:?}");
        let loss = out
            .imputation_loss
            .expect("pairs exist")
            .into_scalar::<f32>();
        assert!(loss.is_finite() && loss > 0.0);
    }

    /// With `align_descriptors = false` the joint space's own losses train
    /// the projections and imputers and never reach the descriptors; with
    /// it they do.
    #[test]
    fn joint_losses_reach_the_descriptors_only_when_asked() {
        let device = Device::default().autodiff();
        let present = Tensor::<2>::from_data(
            TensorData::new(
                vec![1f32, 1., 1., 1., 0., 1., 1., 1., 0., 1., 1., 1.],
                [4, 3],
            ),
            &device,
        );
        for align in [false, true] {
            device.seed(6);
            let fusion = JointFusionConfig::new(3, 8)
                .with_align_descriptors(align)
                .init(&device);
            let f: Vec<Tensor<2>> = descriptors(4, 3, 8, &device)
                .into_iter()
                .map(Tensor::require_grad)
                .collect();
            let out = fusion.forward(f.clone(), Some(&present), None);
            let nce = joint_nce(
                &out.joint,
                Some(&present),
                fusion.scale().expect("three modalities"),
                JointPositives::SameTurn,
                &[],
                None,
            )
            .expect("pairs exist");
            let grads = (nce + out.imputation_loss.expect("targets exist")).backward();
            let reached: f32 = f
                .iter()
                .map(|f| {
                    f.grad(&grads)
                        .map_or(0.0, |g| g.abs().sum().into_scalar::<f32>())
                })
                .sum();
            assert_eq!(reached > 0.0, align, "align {align}: |grad| {reached}");
            let projection = fusion.projections[0].weight.grad(&grads);
            assert!(projection.is_some_and(|g| g.abs().sum().into_scalar::<f32>() > 0.0));
        }
    }

    /// The same-turn NCE equals the hand-computed symmetric InfoNCE: the
    /// mean of the row-wise (a → b) and column-wise (b → a) cross-entropy
    /// of `scale · a bᵀ` with the diagonal as targets. The similarities
    /// are asymmetric, so one direction counted twice (the authors' bug,
    /// methods-detail §2.3) would give another value.
    #[test]
    fn nce_is_the_symmetric_infonce_both_directions() {
        let device = Device::default();
        let a = [[1.0f32, 0.0], [0.6, 0.8], [0.0, 1.0]];
        let b = [[0.8f32, 0.6], [0.0, 1.0], [-0.6, 0.8]];
        let scale = 3.0f64;
        let sim = |i: usize, j: usize| {
            scale * (a[i][0] as f64 * b[j][0] as f64 + a[i][1] as f64 * b[j][1] as f64)
        };
        let ce = |logit: &dyn Fn(usize, usize) -> f64| {
            (0..3)
                .map(|i| {
                    let lse = (0..3).map(|j| logit(i, j).exp()).sum::<f64>().ln();
                    lse - logit(i, i)
                })
                .sum::<f64>()
                / 3.0
        };
        let a_to_b = ce(&|i, j| sim(i, j));
        let b_to_a = ce(&|i, j| sim(j, i));
        assert!((a_to_b - b_to_a).abs() > 1e-3, "pick asymmetric pairs");
        let got = joint_nce(
            &[
                Tensor::<2>::from_floats(a, &device),
                Tensor::<2>::from_floats(b, &device),
            ],
            None,
            Tensor::<1>::from_floats([scale as f32], &device),
            JointPositives::SameTurn,
            &[],
            None,
        )
        .unwrap()
        .into_scalar::<f32>() as f64;
        let expected = (a_to_b + b_to_a) / 2.0;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    }

    #[test]
    fn nce_is_low_for_aligned_pairs_and_follows_its_variant() {
        let device = Device::default();
        device.seed(5);
        let a = l2_normalize(Tensor::<2>::random(
            [6, 4],
            Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let scale = Tensor::<1>::from_floats([10.0], &device);
        let aligned = joint_nce(
            &[a.clone(), a.clone()],
            None,
            scale.clone(),
            JointPositives::SameTurn,
            &[],
            None,
        )
        .unwrap()
        .into_scalar::<f32>();
        let shuffled = a
            .clone()
            .select(0, Tensor::<1, Int>::from_ints([1, 2, 3, 4, 5, 0], &device));
        let misaligned = joint_nce(
            &[a.clone(), shuffled],
            None,
            scale.clone(),
            JointPositives::SameTurn,
            &[],
            None,
        )
        .unwrap()
        .into_scalar::<f32>();
        assert!(aligned < misaligned, "{aligned} vs {misaligned}");
        // Fewer than two turns with both: nothing to contrast.
        let present = Tensor::<2>::from_data(
            TensorData::new(
                vec![1f32, 1., 1., 0., 0., 1., 1., 0., 1., 0., 0., 1.],
                [6, 2],
            ),
            &device,
        );
        assert!(
            joint_nce(
                &[a.clone(), a.clone()],
                Some(&present),
                scale.clone(),
                JointPositives::SameTurn,
                &[],
                None
            )
            .is_none()
        );
        // Same-label positives: distinct labels are CLIP's diagonal; one
        // shared label makes every turn a positive.
        let same_label = |labels: &[Option<usize>]| {
            joint_nce(
                &[a.clone(), a.clone()],
                None,
                scale.clone(),
                JointPositives::SameLabel,
                labels,
                None,
            )
            .unwrap()
            .into_scalar::<f32>()
        };
        let distinct: Vec<Option<usize>> = (0..6).map(Some).collect();
        assert!((same_label(&distinct) - aligned).abs() < 1e-6);
        assert!((same_label(&[Some(2); 6]) - aligned).abs() > 1e-3);
        // Body-guided face needs both streams.
        assert!(
            joint_nce(
                &[a.clone(), a.clone()],
                None,
                scale.clone(),
                JointPositives::BodyGuidedFace,
                &[],
                None
            )
            .is_none()
        );
        assert!(
            joint_nce(
                &[a.clone(), a],
                None,
                scale,
                JointPositives::BodyGuidedFace,
                &[],
                Some((0, 1))
            )
            .is_some()
        );
    }
}
