//! Keyframes to Face and Body feature sequences: detection, the face/body
//! split, the expression model and the body descriptors wired together for
//! one video (DESIGN §2, visual branch).
//!
//! Decoding is not here: the caller (the ffmpeg stage of `mmer-media`) picks
//! the keyframes — [`uniform_keyframes`] gives the usual choice — and hands
//! them in as [`RgbFrame`]s, in time order.

use std::time::Instant;

use mmer_core::Features;

use crate::body::{BodyDescriptor, BodyView};
use crate::expression::{ExpressionModel, FACE_DIM, FaceExpression};
use crate::face_crop::{DEFAULT_FACE_MARGIN, FaceCrop, crop_face};
use crate::face_detect::{FaceBox, FaceDetector, FaceDetectorConfig, SeetaModel, primary_face};
use crate::{BODY_DIM, Error, Result, RgbFrame};

/// Indices of `k` keyframes spread uniformly over `num_frames` frames: the
/// middle frame of each of `k` equal segments (all frames when `k ≥
/// num_frames`). AMuSE takes "k key frames" with FFmpeg (thesis §3.1.1.2)
/// without saying how; segment centres avoid the fade-in/out at the ends.
pub fn uniform_keyframes(num_frames: usize, k: usize) -> Vec<usize> {
    if k >= num_frames {
        return (0..num_frames).collect();
    }
    (0..k)
        .map(|i| ((2 * i + 1) * num_frames) / (2 * k))
        .collect()
}

/// Settings of [`VisualExtractor`].
#[derive(Debug, Clone, PartialEq)]
pub struct VisualExtractorConfig {
    /// Face detector settings.
    pub detector: FaceDetectorConfig,
    /// Margin around the face box per edge, as a share of its side.
    pub face_margin: f32,
}

impl Default for VisualExtractorConfig {
    fn default() -> Self {
        Self {
            detector: FaceDetectorConfig::default(),
            face_margin: DEFAULT_FACE_MARGIN,
        }
    }
}

impl VisualExtractorConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.detector.validate()?;
        if !(self.face_margin.is_finite() && (0.0..=2.0).contains(&self.face_margin)) {
            return Err(Error::InvalidConfig {
                what: "face_margin",
                reason: format!("{} is outside [0, 2]", self.face_margin),
            });
        }
        Ok(())
    }
}

/// The face found in a keyframe and what the expression model read in it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceFeatures {
    /// The detection that was chosen ([`primary_face`]).
    pub face: FaceBox,
    /// The 64×64 crop the model read, and its window in the frame.
    pub crop: FaceCrop,
    /// Probabilities and embedding.
    pub expression: FaceExpression,
}

/// Everything extracted from one keyframe. A missing stream is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyframeFeatures {
    /// The face, or `None` when no face was detected.
    pub face: Option<FaceFeatures>,
    /// Body descriptors, or `None` when the face window covers the frame.
    pub body: Option<BodyDescriptor>,
}

/// Where [`VisualExtractor::extract_timed`] spent its time, milliseconds,
/// summed over the keyframes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VisualTimings {
    /// Luma conversion, face detection, choice and crop of the face.
    pub detect_ms: f64,
    /// Face/body split and body descriptors.
    pub body_ms: f64,
    /// The expression model on all face crops (one batch).
    pub expression_ms: f64,
}

/// Face and Body extraction for the keyframes of one video. Holds a
/// [`FaceDetector`], so it is not `Send`: build one per worker thread.
#[derive(Debug)]
pub struct VisualExtractor {
    detector: FaceDetector,
    expression: ExpressionModel,
    face_margin: f32,
}

impl VisualExtractor {
    /// Builds an extractor.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`VisualExtractorConfig::validate`].
    pub fn new(
        seeta: &SeetaModel,
        expression: ExpressionModel,
        config: &VisualExtractorConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            detector: FaceDetector::new(seeta, &config.detector)?,
            expression,
            face_margin: config.face_margin,
        })
    }

    /// Features of each keyframe, in order. The body motion energy of a
    /// keyframe is measured against the keyframe before it.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when keyframes change size mid-video.
    pub fn extract(&mut self, keyframes: &[RgbFrame<'_>]) -> Result<Vec<KeyframeFeatures>> {
        self.extract_timed(keyframes).map(|(features, _)| features)
    }

    /// [`VisualExtractor::extract`], also saying where the time went (for
    /// `mmer bench extract`'s per-stage breakdown).
    ///
    /// # Errors
    /// As [`VisualExtractor::extract`].
    pub fn extract_timed(
        &mut self,
        keyframes: &[RgbFrame<'_>],
    ) -> Result<(Vec<KeyframeFeatures>, VisualTimings)> {
        let ms = |since: Instant| since.elapsed().as_secs_f64() * 1e3;
        let mut timings = VisualTimings::default();
        let mut faces: Vec<Option<(FaceBox, FaceCrop)>> = Vec::with_capacity(keyframes.len());
        let mut bodies = Vec::with_capacity(keyframes.len());
        let mut previous: Option<BodyView> = None;
        for frame in keyframes {
            let t = Instant::now();
            let gray = frame.to_gray();
            let detections = self.detector.detect_gray(&gray);
            let face = primary_face(&detections, frame.width(), frame.height())
                .map(|face| (face, crop_face(&gray, &face, self.face_margin)));
            timings.detect_ms += ms(t);
            let t = Instant::now();
            let view = BodyView::new(frame, face.as_ref().map(|(_, crop)| crop.window));
            bodies.push(view.descriptor(previous.as_ref())?);
            previous = Some(view);
            timings.body_ms += ms(t);
            faces.push(face);
        }
        let t = Instant::now();
        let crops: Vec<_> = faces.iter().flatten().map(|(_, c)| &c.image).collect();
        let mut expressions = self.expression.predict(&crops)?.into_iter();
        timings.expression_ms = ms(t);
        let found = crops.len();
        tracing::debug!(
            keyframes = keyframes.len(),
            faces = found,
            "visual extraction"
        );
        let features = faces
            .into_iter()
            .zip(bodies)
            .map(|(face, body)| KeyframeFeatures {
                face: face.and_then(|(face, crop)| {
                    expressions.next().map(|expression| FaceFeatures {
                        face,
                        crop,
                        expression,
                    })
                }),
                body,
            })
            .collect();
        Ok((features, timings))
    }
}

/// The Face stream of a video: one [`FACE_DIM`]-wide frame per keyframe that
/// has a face, with the indices of those keyframes (the frame times for the
/// store). `None` when no keyframe has a face — the modality is missing.
pub fn face_sequence(keyframes: &[KeyframeFeatures]) -> Option<(Vec<usize>, Features)> {
    let present: Vec<(usize, &FaceFeatures)> = keyframes
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.face.as_ref().map(|f| (i, f)))
        .collect();
    if present.is_empty() {
        return None;
    }
    let data = present
        .iter()
        .flat_map(|(_, f)| f.expression.to_vec())
        .collect();
    Some((
        present.iter().map(|(i, _)| *i).collect(),
        Features {
            frames: present.len(),
            dim: FACE_DIM,
            data,
        },
    ))
}

/// The Body stream of a video, as [`face_sequence`] for the face.
pub fn body_sequence(keyframes: &[KeyframeFeatures]) -> Option<(Vec<usize>, Features)> {
    let present: Vec<(usize, &BodyDescriptor)> = keyframes
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.body.as_ref().map(|b| (i, b)))
        .collect();
    if present.is_empty() {
        return None;
    }
    let data = present.iter().flat_map(|(_, b)| b.values).collect();
    Some((
        present.iter().map(|(i, _)| *i).collect(),
        Features {
            frames: present.len(),
            dim: BODY_DIM,
            data,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_are_segment_centres() {
        assert_eq!(uniform_keyframes(10, 5), vec![1, 3, 5, 7, 9]);
        assert_eq!(uniform_keyframes(60, 3), vec![10, 30, 50]);
        assert_eq!(uniform_keyframes(3, 8), vec![0, 1, 2]);
        assert!(uniform_keyframes(0, 4).is_empty());
    }

    #[test]
    fn sequences_skip_missing_keyframes_and_none_when_all_missing() {
        let body = BodyDescriptor {
            values: [0.5; BODY_DIM],
        };
        let frames = vec![
            KeyframeFeatures {
                face: None,
                body: Some(body.clone()),
            },
            KeyframeFeatures {
                face: None,
                body: None,
            },
            KeyframeFeatures {
                face: None,
                body: Some(body),
            },
        ];
        assert!(face_sequence(&frames).is_none());
        let (times, features) = body_sequence(&frames).expect("two bodies");
        assert_eq!(times, vec![0, 2]);
        assert_eq!((features.frames, features.dim), (2, BODY_DIM));
        assert_eq!(features.data.len(), 2 * BODY_DIM);
    }
}
