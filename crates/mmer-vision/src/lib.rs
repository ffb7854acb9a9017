//! Visual features of mmer: from RGB keyframes to the Face and Body streams.
//!
//! This crate owns the visual branch of the pipeline (DESIGN §2): face
//! detection with SeetaFace ([`face_detect`], via the `rustface` crate), the
//! choice and crop of the speaker's face ([`face_crop`]), the face/body split
//! of the thesis (§3.1.1.2) with documented low-level body descriptors
//! ([`body`]), and the FER2013 mini-Xception expression model implemented in
//! burn ([`expression`]). [`VisualExtractor`] runs them on the keyframes of
//! one video and returns per-keyframe features in which a missing face or
//! body is `None`, never zeros (DESIGN §1). [`VisualStreams`] plugs it into
//! `mmer extract` as one of mmer-media's `StreamExtractor`s ([`media_stage`]).
//!
//! It does not decode media: frames arrive as plain `rgb24` buffers
//! ([`RgbFrame`]), which the ffmpeg stage of `mmer-media` produces (this
//! crate depends on mmer-media only for that stage's trait and frame type). Model
//! files are installed by `scripts/setup.sh` ([`seeta_model_path`],
//! [`fer_weights_path`]); nothing is downloaded at run time.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use mmer_vision::{
//!     ExpressionModel, RgbFrame, SeetaModel, VisualExtractor, VisualExtractorConfig,
//!     default_models_dir, face_sequence, uniform_keyframes,
//! };
//!
//! # fn main() -> mmer_vision::Result<()> {
//! # let (width, height, decoded): (usize, usize, Vec<Vec<u8>>) = (480, 360, Vec::new());
//! let models = default_models_dir();
//! // Load once; build one extractor per worker thread (it is not `Send`).
//! let seeta = SeetaModel::from_models_dir(&models)?;
//! let fer = ExpressionModel::from_models_dir(&models, &Device::default())?;
//! let mut extractor = VisualExtractor::new(&seeta, fer, &VisualExtractorConfig::default())?;
//!
//! // `decoded`: the video's rgb24 frames, e.g. from `ffmpeg -pix_fmt rgb24 -f rawvideo`.
//! let keyframes = uniform_keyframes(decoded.len(), 16)
//!     .into_iter()
//!     .map(|i| RgbFrame::new(width, height, &decoded[i]))
//!     .collect::<mmer_vision::Result<Vec<_>>>()?;
//! let features = extractor.extract(&keyframes)?;
//! match face_sequence(&features) {
//!     Some((keyframe_indices, face)) => { /* store `face` (frames × 135) with its times */ }
//!     None => { /* no face in any keyframe: the Face modality is missing */ }
//! }
//! # Ok(())
//! # }
//! ```

pub mod body;
mod error;
pub mod expression;
mod extractor;
pub mod face_crop;
pub mod face_detect;
pub mod face_print;
mod frame;
pub mod media_stage;
mod model_dir;

pub use body::{BODY_DIM, BodyDescriptor, BodyView, body_names};
pub use error::{Error, Result};
pub use expression::{
    EMBEDDING_DIM, Expression, ExpressionModel, FACE_DIM, FaceExpression, MiniXception,
    MiniXceptionConfig,
};
pub use extractor::{
    FaceFeatures, KeyframeFeatures, VisualExtractor, VisualExtractorConfig, VisualTimings,
    body_sequence, face_sequence, uniform_keyframes,
};
pub use face_crop::{DEFAULT_FACE_MARGIN, FACE_CROP_SIZE, FaceCrop, crop_face};
pub use face_detect::{FaceBox, FaceDetector, FaceDetectorConfig, SeetaModel, primary_face};
pub use face_print::{FACE_PRINT_DIM, face_print, mean_face_print};
pub use frame::{GrayImage, RgbFrame, luma};
pub use media_stage::VisualStreams;
pub use mmer_core::{MODELS_DIR_ENV, default_models_dir};
pub use model_dir::{fer_weights_path, seeta_model_path};
