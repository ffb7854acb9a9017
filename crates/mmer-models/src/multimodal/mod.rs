//! AMuSE's multimodal part (thesis §3.1; DESIGN §3): per-modality temporal
//! encoders, the Multimodal Attention Network, Adaptive Fusion, and the
//! [`EmotionModel`] that puts a [`Fusion`] variant in front of the
//! dialogue + speaker context model. Modality-agnostic: any subset of
//! Text / Audio / Face / Body, any widths, sequences or single vectors.

mod adaptive;
mod attention;
mod encoder;
mod joint;
mod model;
mod peers;

pub use adaptive::{AdaptiveFusion, AdaptiveFusionConfig};
pub use attention::{ManResidual, MultimodalAttention, MultimodalAttentionConfig};
pub use encoder::{
    AttentionPooling, ModalityEncoder, ModalityEncoderConfig, ModalityFrames, Pooling, time_code,
};
pub use joint::{
    JointFusion, JointFusionConfig, JointOutput, JointPositives, JointSpec, joint_nce,
};
pub use model::{
    DialogueBatch, EmotionModel, EmotionModelConfig, Fusion, ModelSpec, NceTargets, TrainForward,
    UtteranceInput, fuse_present,
};
pub use peers::{PeerOutput, PeerSpec, PeerTransformer, PeerTransformerConfig};
