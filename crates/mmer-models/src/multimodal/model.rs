//! The full utterance → emotion model: modality fusion (one of the thesis's
//! ablation rows, [`Fusion`]) in front of the foundation's [`ErcModel`]
//! (utterance layer, dialogue + speaker context, classifier).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::adaptive::{AdaptiveFusion, AdaptiveFusionConfig};
use super::attention::{ManResidual, MultimodalAttention, MultimodalAttentionConfig};
use super::encoder::{
    AttentionPooling, ModalityEncoder, ModalityEncoderConfig, ModalityFrames, Pooling,
};
use super::joint::{JointFusion, JointFusionConfig, JointPositives, JointSpec, joint_nce};
use super::peers::{PeerSpec, PeerTransformer, PeerTransformerConfig};
use crate::blocks::{SequenceIndex, SpeakerIndex, dropout};
use crate::erc::{ContextMode, ErcModel, ErcModelConfig};

/// How the modalities of an utterance are combined (AMuSE Table II rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Mean-pooled raw features concatenated at the input (the foundation
    /// model; no per-modality encoder).
    #[default]
    Early,
    /// Per-modality temporal encoders, pooled, concatenated ("feature
    /// concatenation" baseline).
    Concat,
    /// Encoders → MAN → pooled, concatenated ("MAN + concat").
    #[cfg_attr(feature = "clap", value(alias = "man_concat"))]
    ManConcat,
    /// Encoders → MAN → pooled → Adaptive Fusion (AMuSE).
    #[cfg_attr(feature = "clap", value(alias = "man_af"))]
    ManAf,
    /// Encoders → MAN → pooled → joint embedding, imputation of missing
    /// modalities, query-adaptive fusion (AM²-EmoJE; see `multimodal::joint`).
    #[cfg_attr(feature = "clap", value(name = "am2-emoje", alias = "am2_emoje"))]
    #[serde(rename = "am2_emoje")]
    Am2EmoJe,
    /// Encoders → SeMuL-PCD's multimodal transformer: a token stream per
    /// modality with an aggregation token whose peer head classifies it
    /// alone, and a fusion token that cross-attends to every modality's
    /// tokens (the student; see `multimodal::peers`). Made for multi-label
    /// sets, where the peers are distilled into the fusion head.
    #[cfg_attr(feature = "clap", value(name = "semul-pcd", alias = "semul_pcd"))]
    SemulPcd,
}

impl Fusion {
    /// True when the model reads per-modality frame sequences.
    pub fn uses_sequences(self) -> bool {
        self != Fusion::Early
    }

    fn uses_man(self) -> bool {
        matches!(self, Fusion::ManConcat | Fusion::ManAf | Fusion::Am2EmoJe)
    }
}

/// The utterance features of a batch.
// One value per batch: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum UtteranceInput {
    /// One vector per turn, right-padded. Shape `[batch, turns, d_input]`.
    Pooled(Tensor<3>),
    /// Frame sequences per modality for the real turns, plus where each
    /// padded grid cell `[batch * turns]` reads from: a real turn's row, or
    /// `num_utterances` (an all-zero row) for padding.
    Sequences {
        /// One entry per modality, in model order. A turn that lacks a
        /// modality has no frames there (a row of padding).
        modalities: Vec<ModalityFrames>,
        /// `[batch * turns]` gather index into the fused utterances.
        grid_rows: Tensor<1, Int>,
        /// Which modalities each real turn has, `[utterances, M]`, 1.0 or
        /// 0.0; `None` when every turn has every modality. Every fusion
        /// reads it ([`EmotionModel::descriptors`], [`fuse_present`]): an
        /// absent modality is masked out, never read as values.
        present: Option<Tensor<2>>,
    },
}

/// Concatenates per-modality blocks `x` (`[n, M, d]`) into `[n, M · d]`,
/// with the blocks of absent modalities zeroed and the present ones scaled
/// by `M / (number present)` — the rescaling of inverted dropout, so a turn
/// with fewer modalities keeps the scale the next layer was trained on.
/// `present` (`[n, M]`, 1/0) `None` is plain concatenation. A row with no
/// modality at all comes out zero (the batcher refuses such turns).
///
/// # Shapes
/// `x`: `[n, M, d]`, `present`: `[n, M]` → `[n, M · d]`
pub fn fuse_present(x: Tensor<3>, present: Option<&Tensor<2>>) -> Tensor<2> {
    let [n, m, d] = x.dims();
    let Some(present) = present else {
        return x.reshape([n, m * d]);
    };
    let count = present.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
    let scale = count.recip().mul_scalar(m as f32).unsqueeze_dim::<3>(2); // [n, 1, 1]
    let absent = present
        .clone()
        .lower_elem(0.5)
        .unsqueeze_dim::<3>(2)
        .expand([n, m, d]);
    (x.mask_fill(absent, 0.0) * scale).reshape([n, m * d])
}

/// A padded batch of dialogues, ready for the model.
#[derive(Debug, Clone)]
pub struct DialogueBatch {
    /// Utterance features.
    pub input: UtteranceInput,
    /// Dialogue lengths and the within-length reversal.
    pub turns: SequenceIndex,
    /// Speaker sequences for the speaker-level stream.
    pub speakers: SpeakerIndex,
}

/// The model's hyper-parameters, declared once: a run's `[train.model]`
/// table (serde, every field optional) and the part of
/// [`EmotionModelConfig`] that does not come from the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// Modality fusion: `early` (pooled features concatenated at the input),
    /// `concat` (per-modality encoders, concatenated), `man_concat`, or
    /// `man_af` (AMuSE: MAN + Adaptive Fusion).
    pub fusion: Fusion,
    /// Bi-LSTM over each modality's frames (sequence fusions only).
    pub temporal: bool,
    /// Per-utterance pooling of each modality's encoded frames: `mean` or
    /// `attention` (learned weights; sequence fusions only).
    pub pooling: Pooling,
    /// A classifier per modality whose focal loss is averaged into the
    /// training loss (AMuSE Eq. 5; sequence fusions only).
    pub mode_heads: bool,
    /// Common width of the modality encoders (even; sequence fusions only).
    pub d_modality: usize,
    /// MAN layers per central stack (AMuSE: 4).
    pub man_layers: usize,
    /// MAN attention heads (must divide `d_modality`).
    pub man_heads: usize,
    /// How MAN's sub-layers join the residual stream: `post_norm` (the
    /// transformer layer) or `rezero` (learned scales from 0: MAN starts as
    /// the identity).
    pub man_residual: ManResidual,
    /// Context streams: `none` (utterance MLP), `dialogue`, `dialogue_speaker` (AMuSE).
    pub context: ContextMode,
    /// Width of the utterance representation and of the head's hidden layer.
    pub d_model: usize,
    /// Context LSTM hidden width per direction (thesis: 100).
    pub d_hidden: usize,
    /// Dropout.
    pub dropout: f64,
    /// Dropout on each modality's raw frames in the sequence fusions (early
    /// fusion drops its input at `dropout`). 0 = the recorded AMuSE runs;
    /// frozen text embeddings want the foundation's 0.3.
    pub input_dropout: f64,
    /// Dropout on the context streams' output (0 = the foundation model).
    pub context_dropout: f64,
    /// Training only, sequence fusions: probability that a present
    /// modality of a turn is hidden from the model (never all of a turn's;
    /// AM²-EmoJE's "drop the entire modality", thesis §3.3). 0 = off.
    pub modality_dropout: f64,
    /// Training only, sequence fusions: probability that a frame (time
    /// step) of a present modality is zeroed, survivors rescaled (thesis
    /// §3.3's "randomly dropping representation tensors within a
    /// modality"). 0 = off.
    pub frame_dropout: f64,
    /// AM²-EmoJE's joint embedding, imputation, fusion and losses
    /// (`fusion = "am2_emoje"` only).
    pub joint: JointSpec,
    /// SeMuL-PCD's transformer and losses (`fusion = "semul_pcd"` only).
    pub peers: PeerSpec,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            fusion: Fusion::Early,
            temporal: true,
            pooling: Pooling::Mean,
            mode_heads: false,
            d_modality: 64,
            man_layers: 4,
            man_heads: 4,
            man_residual: ManResidual::PostNorm,
            context: ContextMode::DialogueSpeaker,
            d_model: 256,
            d_hidden: 100,
            dropout: 0.3,
            input_dropout: 0.0,
            context_dropout: 0.0,
            modality_dropout: 0.0,
            frame_dropout: 0.0,
            joint: JointSpec::default(),
            peers: PeerSpec::default(),
        }
    }
}

impl ModelSpec {
    /// The burn config for given modality widths and classes.
    pub fn model_config(
        &self,
        modality_widths: Vec<usize>,
        num_classes: usize,
    ) -> EmotionModelConfig {
        EmotionModelConfig::new(modality_widths, num_classes).with_spec(self.clone())
    }
}

/// Configuration of [`EmotionModel`]: the data's widths and classes plus
/// the hyper-parameters of [`ModelSpec`].
#[derive(Config, Debug)]
pub struct EmotionModelConfig {
    /// Width of each input modality, in model order.
    pub modality_widths: Vec<usize>,
    /// Number of classes.
    pub num_classes: usize,
    /// Hyper-parameters.
    #[config(default = "ModelSpec::default()")]
    pub spec: ModelSpec,
}

/// Fusion in front of the context model.
#[derive(Module, Debug)]
pub struct EmotionModel {
    encoders: Vec<ModalityEncoder>,
    /// One per modality with attention pooling; empty with mean pooling.
    poolers: Vec<AttentionPooling>,
    /// One classifier per modality descriptor; empty without mode heads.
    mode_heads: Vec<Linear>,
    attention: Option<MultimodalAttention>,
    adaptive_fusion: Option<AdaptiveFusion>,
    joint_fusion: Option<JointFusion>,
    peer_transformer: Option<PeerTransformer>,
    erc: ErcModel,
    /// [`ModelSpec::modality_dropout`] (a constant of the module).
    modality_dropout: f64,
    /// [`ModelSpec::frame_dropout`] (a constant of the module).
    frame_dropout: f64,
}

/// The training-time outputs of [`EmotionModel::forward_train`].
#[derive(Debug, Clone)]
pub struct TrainForward {
    /// Class logits, `[batch, turns, classes]`.
    pub logits: Tensor<3>,
    /// Per-modality logits with mode heads (else empty).
    pub modes: Vec<Tensor<3>>,
    /// The fusion's cross-modal NCE (unweighted), when it has one:
    /// AM²-EmoJE's joint embedding, or SeMuL-PCD's peers.
    pub nce: Option<Tensor<1>>,
    /// AM²-EmoJE's imputation error (unweighted), when it has one.
    pub imputation: Option<Tensor<1>>,
}

/// What the joint-embedding NCE needs besides the batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct NceTargets<'a> {
    /// What counts as a positive.
    pub positives: JointPositives,
    /// The real turns' gold classes in batch order (for same-label
    /// positives).
    pub labels: &'a [Option<usize>],
    /// The model indices of Face and Body, when it reads both (for
    /// body-guided face).
    pub face_body: Option<(usize, usize)>,
}

impl EmotionModelConfig {
    /// Width of the fused utterance vector the context model reads.
    pub fn d_fused(&self) -> usize {
        if self.spec.fusion == Fusion::SemulPcd {
            self.spec.d_modality
        } else if self.spec.fusion.uses_sequences() {
            self.modality_widths.len() * self.spec.d_modality
        } else {
            self.modality_widths.iter().sum()
        }
    }

    /// Builds the model.
    pub fn init(&self, device: &Device) -> EmotionModel {
        let modalities = self.modality_widths.len();
        let encoders = if self.spec.fusion.uses_sequences() {
            self.modality_widths
                .iter()
                .map(|&w| {
                    ModalityEncoderConfig::new(w, self.spec.d_modality)
                        .with_temporal(self.spec.temporal)
                        .with_input_dropout(self.spec.input_dropout)
                        .init(device)
                })
                .collect()
        } else {
            Vec::new()
        };
        let poolers =
            if self.spec.fusion.uses_sequences() && self.spec.pooling == Pooling::Attention {
                (0..modalities)
                    .map(|_| AttentionPooling::init(self.spec.d_modality, device))
                    .collect()
            } else {
                Vec::new()
            };
        // SeMuL-PCD's peers are mode heads it cannot do without.
        let mode_heads = if self.spec.fusion == Fusion::SemulPcd
            || (self.spec.fusion.uses_sequences() && self.spec.mode_heads)
        {
            (0..modalities)
                .map(|_| LinearConfig::new(self.spec.d_modality, self.num_classes).init(device))
                .collect()
        } else {
            Vec::new()
        };
        EmotionModel {
            encoders,
            poolers,
            mode_heads,
            // Attention dropout is capped at 0.1, the transformer default;
            // the model-wide rate is meant for the dense layers.
            attention: self.spec.fusion.uses_man().then(|| {
                MultimodalAttentionConfig::new(modalities, self.spec.d_modality)
                    .with_layers(self.spec.man_layers)
                    .with_heads(self.spec.man_heads)
                    .with_residual(self.spec.man_residual)
                    .with_dropout(self.spec.dropout.min(0.1))
                    .init(device)
            }),
            adaptive_fusion: (self.spec.fusion == Fusion::ManAf)
                .then(|| AdaptiveFusionConfig::new(modalities, self.spec.d_modality).init(device)),
            joint_fusion: (self.spec.fusion == Fusion::Am2EmoJe).then(|| {
                let joint = &self.spec.joint;
                JointFusionConfig::new(modalities, self.spec.d_modality)
                    .with_d_joint(joint.d_joint)
                    .with_d_query(joint.d_query)
                    .with_impute(joint.impute)
                    .with_query_adaptive(joint.query_adaptive)
                    .with_align_descriptors(joint.align_descriptors)
                    .init(device)
            }),
            peer_transformer: (self.spec.fusion == Fusion::SemulPcd).then(|| {
                let peers = &self.spec.peers;
                PeerTransformerConfig::new(modalities, self.spec.d_modality)
                    .with_heads(self.spec.man_heads)
                    .with_layers(peers.layers)
                    .with_share_layers(peers.share_layers)
                    .with_d_projection(peers.d_projection)
                    .with_dropout(self.spec.dropout.min(0.1))
                    .init(device)
            }),
            modality_dropout: self.spec.modality_dropout,
            frame_dropout: self.spec.frame_dropout,
            erc: ErcModelConfig::new(self.d_fused(), self.num_classes)
                .with_context(self.spec.context)
                .with_d_model(self.spec.d_model)
                .with_d_hidden(self.spec.d_hidden)
                .with_dropout(self.spec.dropout)
                .with_context_dropout(self.spec.context_dropout)
                .init(device),
        }
    }
}

impl EmotionModel {
    /// Per-modality utterance descriptors (pooled encoder or MAN outputs),
    /// the representations the cross-modal NCE aligns.
    ///
    /// `present` (`[n, M]`, 1/0; `None`: all present) keeps MAN from
    /// injecting an absent peripheral; the descriptor of an absent modality
    /// is computed from padding only and must be masked by the caller.
    ///
    /// # Shapes
    /// `modalities[m].frames`: `[n, f_m, d_m]` → `[n, d_modality]` per modality
    ///
    /// # Panics
    /// On an early-fusion model (it has no per-modality descriptors) or a
    /// modality count that differs from the configuration.
    pub fn descriptors(
        &self,
        modalities: &[ModalityFrames],
        present: Option<&Tensor<2>>,
    ) -> Vec<Tensor<2>> {
        assert!(
            !self.encoders.is_empty(),
            "early fusion has no per-modality descriptors"
        );
        assert_eq!(
            modalities.len(),
            self.encoders.len(),
            "one input per modality"
        );
        let encoded: Vec<Tensor<3>> = self
            .encoders
            .iter()
            .zip(modalities)
            .map(|(encoder, frames)| encoder.forward(frames))
            .collect();
        let encoded = match &self.attention {
            Some(man) => man.forward(&encoded, modalities, present),
            None => encoded,
        };
        encoded
            .into_iter()
            .zip(modalities)
            .enumerate()
            .map(|(m, (x, frames))| match self.poolers.get(m) {
                Some(pooler) => pooler.forward(x, frames),
                None => frames.masked_mean(x),
            })
            .collect()
    }

    /// Class logits for every turn (padded turns included; mask them).
    ///
    /// # Shapes
    /// → `[batch, turns, num_classes]`
    pub fn forward(&self, batch: &DialogueBatch) -> Tensor<3> {
        self.forward_parts(batch, false, NceTargets::default())
            .logits
    }

    /// [`EmotionModel::forward`] plus, with mode heads, each modality's own
    /// logits laid out on the same grid (AMuSE Eq. 5: the focal loss is also
    /// averaged over the mode-specific networks' predictions). Empty without
    /// mode heads.
    ///
    /// # Shapes
    /// → `[batch, turns, num_classes]`, and `[batch, turns, num_classes]` per modality
    pub fn forward_with_modes(&self, batch: &DialogueBatch) -> (Tensor<3>, Vec<Tensor<3>>) {
        let out = self.forward_train(batch, NceTargets::default());
        (out.logits, out.modes)
    }

    /// Everything the training loss needs: the logits, the mode heads'
    /// logits, and AM²-EmoJE's own loss terms (its modality and frame
    /// dropout act here, in training only).
    ///
    /// # Shapes
    /// → logits `[batch, turns, classes]`
    pub fn forward_train(&self, batch: &DialogueBatch, nce: NceTargets<'_>) -> TrainForward {
        self.forward_parts(batch, true, nce)
    }

    fn forward_parts(
        &self,
        batch: &DialogueBatch,
        modes: bool,
        nce: NceTargets<'_>,
    ) -> TrainForward {
        let (b, t) = (batch.turns.lengths.len(), batch.turns.max_len);
        // `[n, w]` rows of real utterances → the padded `[b, t, w]` grid.
        let to_grid = |rows: Tensor<2>, grid_rows: &Tensor<1, Int>| {
            let [_, w] = rows.dims();
            let device = rows.device();
            Tensor::cat(vec![rows, Tensor::zeros([1, w], &device)], 0)
                .select(0, grid_rows.clone())
                .reshape([b, t, w])
        };
        let (mut nce_loss, mut imputation) = (None, None);
        let (grid, mode_logits) = match &batch.input {
            UtteranceInput::Pooled(x) => (x.clone(), Vec::new()),
            UtteranceInput::Sequences {
                modalities,
                grid_rows,
                present,
            } => {
                // Training-time dropout of whole modalities and of frames;
                // `truth` keeps what the data had (imputation targets).
                let hidden = self.drop_modalities(modalities, present.as_ref());
                let truth = present
                    .clone()
                    .or_else(|| hidden.as_ref().map(Tensor::ones_like));
                let present = hidden.as_ref().or(present.as_ref());
                let dropped = self.drop_frames(modalities);
                let modalities = dropped.as_deref().unwrap_or(modalities);
                let mut peer_fused = None;
                let descriptors = match &self.peer_transformer {
                    Some(peers) => {
                        let encoded = self
                            .encoders
                            .iter()
                            .zip(modalities)
                            .map(|(encoder, frames)| encoder.forward(frames))
                            .collect();
                        let out = peers.forward(encoded, modalities, present);
                        if modes {
                            nce_loss = peers.scale().and_then(|scale| {
                                joint_nce(
                                    &out.embeddings,
                                    present,
                                    scale,
                                    JointPositives::SameTurn,
                                    &[],
                                    None,
                                )
                            });
                        }
                        peer_fused = Some(out.fused);
                        out.peers
                    }
                    None => self.descriptors(modalities, present),
                };
                let mode_logits = if modes {
                    self.mode_heads
                        .iter()
                        .zip(&descriptors)
                        .map(|(head, d)| to_grid(head.forward(d.clone()), grid_rows))
                        .collect()
                } else {
                    Vec::new()
                };
                let fused = match (
                    peer_fused,
                    &self.joint_fusion,
                    &self.adaptive_fusion,
                    present,
                ) {
                    (Some(fused), ..) => fused,
                    (None, Some(joint), _, _) => {
                        let out = joint.forward(descriptors, present, truth.as_ref());
                        if modes {
                            nce_loss = joint.scale().and_then(|scale| {
                                joint_nce(
                                    &out.joint,
                                    present,
                                    scale,
                                    nce.positives,
                                    nce.labels,
                                    nce.face_body,
                                )
                            });
                            imputation = out.imputation_loss;
                        }
                        out.fused
                    }
                    (None, None, Some(af), _) => af.forward(descriptors, present),
                    (None, None, None, None) => Tensor::cat(descriptors, 1),
                    (None, None, None, Some(_)) => {
                        fuse_present(Tensor::stack(descriptors, 1), present)
                    }
                }; // [n, d]
                (to_grid(fused, grid_rows), mode_logits)
            }
        };
        TrainForward {
            logits: self.erc.forward(grid, &batch.turns, &batch.speakers),
            modes: mode_logits,
            nce: nce_loss,
            imputation,
        }
    }

    /// Training only ([`ModelSpec::modality_dropout`] > 0 on an autodiff
    /// device): the presence mask with each present modality of each turn
    /// hidden with that probability, a turn that would lose all keeping its
    /// own. `None` when nothing is dropped.
    ///
    /// # Shapes
    /// `present`: `[n, M]` (`None`: all present) → `[n, M]`
    fn drop_modalities(
        &self,
        modalities: &[ModalityFrames],
        present: Option<&Tensor<2>>,
    ) -> Option<Tensor<2>> {
        let device = modalities.first()?.frames.device();
        if self.modality_dropout <= 0.0 || !device.is_autodiff() {
            return None;
        }
        let (n, m) = (modalities[0].len(), modalities.len());
        let present = present
            .cloned()
            .unwrap_or_else(|| Tensor::ones([n, m], &device));
        let rate = DropoutConfig::new(self.modality_dropout).init();
        let kept = dropout(&rate, present.ones_like())
            .greater_elem(0.0)
            .float()
            * present.clone();
        let none = kept.clone().sum_dim(1).lower_elem(0.5).expand([n, m]);
        Some(kept.mask_where(none, present))
    }

    /// Training only ([`ModelSpec::frame_dropout`] > 0 on an autodiff
    /// device): every modality's frames with whole frames zeroed at that
    /// rate, survivors rescaled. A modality with one frame per turn (a
    /// sentence vector) is left alone: dropping its only frame would hide
    /// the modality while the mask says it is there — that is modality
    /// dropout's job. `None` when nothing is dropped.
    fn drop_frames(&self, modalities: &[ModalityFrames]) -> Option<Vec<ModalityFrames>> {
        let device = modalities.first()?.frames.device();
        if self.frame_dropout <= 0.0 || !device.is_autodiff() {
            return None;
        }
        let rate = DropoutConfig::new(self.frame_dropout).init();
        Some(
            modalities
                .iter()
                .map(|frames| {
                    let [n, f, d] = frames.frames.dims();
                    if f == 1 {
                        return frames.clone();
                    }
                    let mask = dropout(&rate, Tensor::<3>::ones([n, f, 1], &device));
                    ModalityFrames {
                        frames: frames.frames.clone() * mask.expand([n, f, d]),
                        ..frames.clone()
                    }
                })
                .collect(),
        )
    }

    /// The model without its per-modality heads, and the heads: pre-trained
    /// weights (which have no heads) load into the rest.
    pub fn split_mode_heads(mut self) -> (Self, Vec<Linear>) {
        let heads = std::mem::take(&mut self.mode_heads);
        (self, heads)
    }

    /// The model with `heads` as its per-modality heads.
    pub fn with_mode_heads(self, heads: Vec<Linear>) -> Self {
        Self {
            mode_heads: heads,
            ..self
        }
    }

    /// The Adaptive Fusion gates α, when the model has them.
    pub fn fusion_gates(&self) -> Option<Tensor<2>> {
        self.adaptive_fusion
            .as_ref()
            .and_then(AdaptiveFusion::alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{LossKind, classification_loss};
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, TensorData};

    const WIDTHS: [usize; 4] = [6, 5, 4, 3];
    const FUSIONS: [Fusion; 6] = [
        Fusion::Early,
        Fusion::Concat,
        Fusion::ManConcat,
        Fusion::ManAf,
        Fusion::Am2EmoJe,
        Fusion::SemulPcd,
    ];

    /// Two dialogues (5 and 3 turns, 8 real utterances); modality `m` of
    /// utterance `u` has `1 + (u + m) % 3` frames.
    fn batch(fusion: Fusion, modalities: usize, device: &Device) -> DialogueBatch {
        let lengths = [5usize, 3];
        let speakers = vec![vec![0, 1, 0, 1, 1], vec![3, 3, 2]];
        let turns = SequenceIndex::new(&lengths, 5, device);
        let speakers = SpeakerIndex::new(&speakers, 5, device);
        let widths = &WIDTHS[..modalities];
        let input = if fusion.uses_sequences() {
            let frames = widths
                .iter()
                .enumerate()
                .map(|(m, &w)| {
                    let data: Vec<Vec<f32>> = (0..8)
                        .map(|u| {
                            let n = (1 + (u + m) % 3) * w;
                            (0..n).map(|i| ((u * 7 + m * 3 + i) as f32).sin()).collect()
                        })
                        .collect();
                    let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
                    ModalityFrames::new(&refs, w, device)
                })
                .collect();
            let rows: Vec<i64> = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 8];
            UtteranceInput::Sequences {
                modalities: frames,
                grid_rows: Tensor::from_data(TensorData::new(rows, [10]), device),
                present: None,
            }
        } else {
            let d: usize = widths.iter().sum();
            UtteranceInput::Pooled(Tensor::random(
                [2, 5, d],
                Distribution::Normal(0.0, 1.0),
                device,
            ))
        };
        DialogueBatch {
            input,
            turns,
            speakers,
        }
    }

    fn config(fusion: Fusion, modalities: usize) -> EmotionModelConfig {
        config_with(fusion, modalities, |_| {})
    }

    /// A small model of `fusion` over `modalities`, with `edit` applied.
    fn config_with(
        fusion: Fusion,
        modalities: usize,
        edit: impl FnOnce(&mut ModelSpec),
    ) -> EmotionModelConfig {
        let mut spec = ModelSpec {
            fusion,
            d_modality: 8,
            man_layers: 2,
            man_heads: 2,
            d_model: 12,
            d_hidden: 5,
            dropout: 0.0,
            ..ModelSpec::default()
        };
        edit(&mut spec);
        spec.model_config(WIDTHS[..modalities].to_vec(), 4)
    }

    #[test]
    fn shapes_for_one_to_four_modalities_every_context_and_length_one() {
        let device = Device::default();
        for fusion in FUSIONS {
            for m in 1..=4 {
                for context in [
                    ContextMode::None,
                    ContextMode::Dialogue,
                    ContextMode::DialogueSpeaker,
                ] {
                    let model = config_with(fusion, m, |s| s.context = context).init(&device);
                    assert_eq!(model.forward(&batch(fusion, m, &device)).dims(), [2, 5, 4]);
                }
            }
            // A one-turn dialogue whose modalities have one frame each.
            let model = config(fusion, 2).init(&device);
            let input = if fusion.uses_sequences() {
                UtteranceInput::Sequences {
                    modalities: WIDTHS[..2]
                        .iter()
                        .map(|&w| ModalityFrames::new(&[&vec![0.5; w]], w, &device))
                        .collect(),
                    grid_rows: Tensor::from_data(TensorData::new(vec![0i64], [1]), &device),
                    present: None,
                }
            } else {
                UtteranceInput::Pooled(Tensor::ones([1, 1, 11], &device))
            };
            let single = DialogueBatch {
                input,
                turns: SequenceIndex::new(&[1], 1, &device),
                speakers: SpeakerIndex::new(&[vec![0]], 1, &device),
            };
            assert_eq!(model.forward(&single).dims(), [1, 1, 4]);
        }
    }

    /// Collects parameters whose gradient is missing or all zero.
    struct DeadParams<'a> {
        grads: &'a GradientsParams,
        dead: Vec<String>,
        seen: usize,
    }

    impl DeadParams<'_> {
        /// `(parameters seen, dead ones)` of `model` after `loss.backward()`.
        fn after(model: &EmotionModel, loss: Tensor<1>) -> (usize, Vec<String>) {
            let grads = GradientsParams::from_grads(loss.backward(), model);
            let mut visitor = DeadParams {
                grads: &grads,
                dead: Vec::new(),
                seen: 0,
            };
            model.visit(&mut visitor);
            (visitor.seen, visitor.dead)
        }
    }

    /// Focal loss of `[2, 5, 4]` logits over the 8 real turns of [`batch`].
    fn batch_loss(logits: Tensor<3>, device: &Device) -> Tensor<1> {
        assert_eq!(logits.dims(), [2, 5, 4]);
        let valid = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], device);
        let targets = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], device);
        classification_loss(
            logits.reshape([10, 4]).select(0, valid),
            targets,
            None,
            LossKind::default(),
        )
    }

    impl ModuleVisitor for DeadParams<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.seen += 1;
            let alive = self
                .grads
                .get::<D>(param.id)
                .map(|g| g.abs().sum().into_scalar::<f32>() > 0.0)
                .unwrap_or(false);
            if !alive {
                self.dead
                    .push(format!("{:?} {:?}", param.id, param.shape()));
            }
        }
    }

    /// Every parameter — encoders, MAN layers, injection gates, AF α, both
    /// context LSTMs (methods-detail §1.4 bug 1: the authors' speaker stream
    /// never got data) — receives a non-zero gradient.
    #[test]
    fn every_parameter_receives_gradient() {
        let device = Device::default().autodiff();
        for fusion in FUSIONS {
            for m in 1..=4 {
                device.seed(3);
                let mut model = config(fusion, m).init(&device);
                let input = batch(fusion, m, &device);
                // The full training loss: the mode heads (SeMuL-PCD's
                // peers), and AM²-EmoJE's or SeMuL-PCD's NCE and
                // AM²-EmoJE's imputation terms.
                let loss = |model: &EmotionModel| {
                    let out = model.forward_train(&input, NceTargets::default());
                    out.modes
                        .into_iter()
                        .map(|logits| batch_loss(logits, &device))
                        .chain([out.nce, out.imputation].into_iter().flatten())
                        .fold(batch_loss(out.logits, &device), |a, b| a + b)
                };
                if fusion == Fusion::Am2EmoJe {
                    // Its query MLP's output layer starts at zero (even
                    // weights), so the layer before learns from step 2 on.
                    use burn::optim::AdamConfig;
                    let grads = GradientsParams::from_grads(loss(&model).backward(), &model);
                    model = AdamConfig::new().init().step(1e-2, model, grads);
                }
                let (seen, dead) = DeadParams::after(&model, loss(&model));
                assert!(seen >= 12, "{fusion:?}/{m}: {seen} parameters");
                assert!(
                    dead.is_empty(),
                    "{fusion:?} with {m} modalities: no gradient for {dead:?}"
                );
            }
        }
    }

    /// ReZero MAN starts as the identity: the model's output equals the same
    /// model without MAN. After one optimiser step every parameter trains.
    #[test]
    fn rezero_man_starts_as_the_identity_then_every_parameter_trains() {
        use burn::optim::AdamConfig;
        let device = Device::default().autodiff();
        for fusion in [Fusion::ManConcat, Fusion::ManAf] {
            for m in [1, 3] {
                device.seed(6);
                let cfg = config_with(fusion, m, |s| s.man_residual = ManResidual::Rezero);
                let mut model = cfg.init(&device);
                let input = batch(fusion, m, &device);
                let without_man = EmotionModel {
                    attention: None,
                    ..model.clone()
                };
                model.forward(&input).into_data().assert_approx_eq::<f32>(
                    &without_man.forward(&input).into_data(),
                    burn::tensor::Tolerance::absolute(1e-6),
                );
                let mut optim = AdamConfig::new().init();
                let loss = batch_loss(model.forward(&input), &device);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-2, model, grads);
                let loss = batch_loss(model.forward(&input), &device);
                let (_, dead) = DeadParams::after(&model, loss);
                assert!(
                    dead.is_empty(),
                    "{fusion:?}/{m}, ReZero after a step: no gradient for {dead:?}"
                );
            }
        }
    }

    /// With mode heads every modality gets its own grid of logits, and the
    /// Eq. 5 loss (fused + mean of the per-mode terms) reaches every
    /// parameter, the heads included; without them there are none.
    #[test]
    fn mode_heads_give_per_modality_logits_that_train() {
        let device = Device::default().autodiff();
        for fusion in [Fusion::Concat, Fusion::ManConcat, Fusion::ManAf] {
            device.seed(4);
            let plain = config(fusion, 3).init(&device);
            assert!(
                plain
                    .forward_with_modes(&batch(fusion, 3, &device))
                    .1
                    .is_empty()
            );
            let model = config_with(fusion, 3, |s| s.mode_heads = true).init(&device);
            let (logits, modes) = model.forward_with_modes(&batch(fusion, 3, &device));
            assert_eq!(modes.len(), 3);
            let term = |l: Tensor<3>| batch_loss(l, &device);
            let loss = modes.into_iter().map(term).fold(term(logits), |a, b| a + b);
            let (_, dead) = DeadParams::after(&model, loss);
            assert!(dead.is_empty(), "{fusion:?}: no gradient for {dead:?}");
        }
    }

    /// Turns that lack modalities in [`batch`]'s layout (3 modalities): `(utterance, modality)`.
    const ABSENT: [(usize, usize); 5] = [(0, 0), (2, 2), (4, 1), (7, 0), (7, 1)];

    /// [`batch`] over 3 modalities where the [`ABSENT`] cells hold `fill`
    /// (`None`: no frames; `Some(v)`: 4 frames of `v`), with the presence
    /// mask when `masked` (else every modality is declared present).
    fn batch_missing(
        fusion: Fusion,
        fill: Option<f32>,
        masked: bool,
        device: &Device,
    ) -> DialogueBatch {
        let mut out = batch(fusion, 3, device);
        let frames = WIDTHS[..3]
            .iter()
            .enumerate()
            .map(|(m, &w)| {
                let data: Vec<Vec<f32>> = (0..8)
                    .map(|u| {
                        if ABSENT.contains(&(u, m)) {
                            return fill.map_or_else(Vec::new, |v| vec![v; 4 * w]);
                        }
                        let n = (1 + (u + m) % 3) * w;
                        (0..n).map(|i| ((u * 7 + m * 3 + i) as f32).sin()).collect()
                    })
                    .collect();
                let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
                ModalityFrames::new(&refs, w, device)
            })
            .collect();
        let present: Vec<f32> = (0..8)
            .flat_map(|u| (0..3).map(move |m| if ABSENT.contains(&(u, m)) { 0.0 } else { 1.0 }))
            .collect();
        if let UtteranceInput::Sequences { grid_rows, .. } = &out.input {
            out.input = UtteranceInput::Sequences {
                modalities: frames,
                grid_rows: grid_rows.clone(),
                present: masked
                    .then(|| Tensor::from_data(TensorData::new(present, [8, 3]), device)),
            };
        }
        out
    }

    /// The logits of the real turns, `[8 * 4]` values.
    fn real_turns(model: &EmotionModel, input: &DialogueBatch) -> Vec<f32> {
        let logits = model.forward(input).reshape([10, 4]).slice([0..8, 0..4]);
        logits.into_data().try_to_vec::<f32>().expect("f32")
    }

    /// A masked-out modality is never read: whatever its frames hold (none,
    /// or garbage), the output is the same and finite; declared present,
    /// the same garbage — or zeros — changes it.
    #[test]
    fn absent_modalities_are_never_read() {
        let device = Device::default();
        for fusion in [
            Fusion::Concat,
            Fusion::ManConcat,
            Fusion::ManAf,
            Fusion::Am2EmoJe,
            Fusion::SemulPcd,
        ] {
            device.seed(8);
            let model = config(fusion, 3).init(&device);
            let empty = real_turns(&model, &batch_missing(fusion, None, true, &device));
            assert!(empty.iter().all(|v| v.is_finite()), "{fusion:?}: {empty:?}");
            let garbage = real_turns(&model, &batch_missing(fusion, Some(50.0), true, &device));
            for (a, b) in empty.iter().zip(&garbage) {
                assert!((a - b).abs() < 1e-4, "{fusion:?}: {a} vs {b}");
            }
            let differs = |other: &[f32]| {
                // Turns 0, 2, 4 and 7 lack something; their logits move.
                [0usize, 2, 4, 7]
                    .iter()
                    .all(|&t| (0..4).any(|c| (empty[t * 4 + c] - other[t * 4 + c]).abs() > 1e-4))
            };
            let read = real_turns(&model, &batch_missing(fusion, Some(50.0), false, &device));
            assert!(
                differs(&read),
                "{fusion:?}: declared present, garbage is read"
            );
            let zeros = real_turns(&model, &batch_missing(fusion, Some(0.0), false, &device));
            assert!(
                differs(&zeros),
                "{fusion:?}: absent is not the same as zeros"
            );
        }
    }

    /// Modality and frame dropout act in training only; what they hide is
    /// still an imputation target. Global (not query-adaptive) weights
    /// train too.
    #[test]
    fn am2_emoje_dropout_is_for_training_only_and_hidden_modalities_train_imputation() {
        let device = Device::default().autodiff();
        device.seed(12);
        let model = config_with(Fusion::Am2EmoJe, 3, |s| {
            s.modality_dropout = 0.5;
            s.frame_dropout = 0.2;
        })
        .init(&device);
        let input = batch(Fusion::Am2EmoJe, 3, &device);
        let out = model.forward_train(&input, NceTargets::default());
        let imputation = out.imputation.expect("complete turns are targets");
        assert!(imputation.into_scalar::<f32>() > 0.0);
        // At inference the rates do not matter.
        let inference = model.valid();
        let without = EmotionModel {
            modality_dropout: 0.0,
            frame_dropout: 0.0,
            ..inference.clone()
        };
        let plain = batch(Fusion::Am2EmoJe, 3, &Device::default());
        assert_eq!(real_turns(&inference, &plain), real_turns(&without, &plain));
        // Global weights: every parameter still learns.
        let global =
            config_with(Fusion::Am2EmoJe, 3, |s| s.joint.query_adaptive = false).init(&device);
        let out = global.forward_train(&input, NceTargets::default());
        let loss = [out.nce, out.imputation]
            .into_iter()
            .flatten()
            .fold(batch_loss(out.logits, &device), |a, b| a + b);
        let (_, dead) = DeadParams::after(&global, loss);
        assert!(dead.is_empty(), "global weights: no gradient for {dead:?}");
    }

    /// A mask that says "all present" gives the unmasked output.
    #[test]
    fn an_all_present_mask_changes_nothing() {
        let device = Device::default();
        for fusion in [
            Fusion::Concat,
            Fusion::ManConcat,
            Fusion::ManAf,
            Fusion::Am2EmoJe,
            Fusion::SemulPcd,
        ] {
            device.seed(9);
            let model = config(fusion, 3).init(&device);
            let plain = batch(fusion, 3, &device);
            let mut masked = plain.clone();
            if let UtteranceInput::Sequences { present, .. } = &mut masked.input {
                *present = Some(Tensor::ones([8, 3], &device));
            }
            let (a, b) = (real_turns(&model, &plain), real_turns(&model, &masked));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{fusion:?}: {x} vs {y}");
            }
        }
    }

    /// Writing garbage into padded frames (and padded turns) changes nothing.
    #[test]
    fn padded_positions_are_never_attended() {
        let device = Device::default();
        for fusion in [
            Fusion::Concat,
            Fusion::ManConcat,
            Fusion::ManAf,
            Fusion::Am2EmoJe,
            Fusion::SemulPcd,
        ] {
            device.seed(5);
            let model = config(fusion, 3).init(&device);
            let clean = batch(fusion, 3, &device);
            let mut dirty = clean.clone();
            if let UtteranceInput::Sequences { modalities, .. } = &mut dirty.input {
                for frames in modalities.iter_mut() {
                    let noise = Tensor::<3>::random(
                        frames.frames.dims(),
                        Distribution::Normal(50.0, 10.0),
                        &device,
                    );
                    let pad = frames.padding.clone().unsqueeze_dim::<3>(2);
                    let [n, f, d] = frames.frames.dims();
                    frames.frames = frames
                        .frames
                        .clone()
                        .mask_where(pad.expand([n, f, d]), noise);
                }
            }
            let a = model.forward(&clean).slice([0..2, 0..3, 0..4]);
            let b = model.forward(&dirty).slice([0..2, 0..3, 0..4]);
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Default::default());
        }
    }
}
