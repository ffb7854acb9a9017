//! Face detection: the SeetaFace frontal detector (through the `rustface`
//! crate) and the choice of the one face an utterance is about.
//!
//! SeetaFace detection is the funnel-structured cascade of Wu et al., "Funnel-
//! structured cascade for multi-view face detection with alignment awareness"
//! (Neurocomputing 2017); `rustface` 0.1.7 is a pure-Rust port of the C++
//! engine and ships the trained frontal model (`model/seeta_fd_frontal_v1.0.bin`,
//! 1.2 MB, BSD-2-Clause, © VIPL/ICT-CAS) inside its crate package.
//! `scripts/setup.sh` copies that file, sha256-checked, from the package cargo
//! has already unpacked into the models directory (DESIGN §5: weights come
//! from registry packages, never from a hub at run time).
//!
//! "No face" is `None`: a frame without a detection yields no face features
//! rather than a zero vector pretending to be a face (DESIGN §1).

use std::path::Path;

use rustface::{Detector, ImageData, Model};

use crate::frame::GrayImage;
use crate::{Error, Result, RgbFrame};

/// A loaded SeetaFace model. Cheap to clone; each [`FaceDetector`] owns one
/// copy because the detector keeps scratch buffers and is not `Send`.
#[derive(Clone)]
pub struct SeetaModel {
    model: Model,
}

impl std::fmt::Debug for SeetaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeetaModel").finish_non_exhaustive()
    }
}

impl SeetaModel {
    /// Loads `seeta_fd_frontal_v1.0.bin` from `path`.
    ///
    /// # Errors
    /// [`Error::MissingModelFile`] when the file is absent (run
    /// `scripts/setup.sh`), [`Error::Io`] when unreadable and
    /// [`Error::SeetaModel`] when it does not parse.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::MissingModelFile {
                what: "SeetaFace face detector model",
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model = rustface::read_model(bytes.as_slice()).map_err(|source| Error::SeetaModel {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self { model })
    }

    /// Loads the model from `models_dir` (see [`crate::seeta_model_path`]).
    ///
    /// # Errors
    /// As [`SeetaModel::load`].
    pub fn from_models_dir(models_dir: &Path) -> Result<Self> {
        Self::load(&crate::seeta_model_path(models_dir))
    }
}

/// Side of SeetaFace's detection window, pixels: the smallest face it finds
/// in the image it is given. rustface 0.1.7 starts its pyramid at 1× and
/// never upsamples (its `set_min_face_size` is stored but unused).
pub const SEETA_WINDOW: u32 = 40;

/// Settings of the detector.
///
/// Score, pyramid and step are rustface's example defaults (2.0, 0.8, 4).
/// Detection runs on a downscaled copy of the frame: the cascade's cost
/// grows with the pixel count, and in a conversation video the face is
/// rarely smaller than `min_face_size` at full resolution. The frame is
/// shrunk to `detect_max_side`, but never so far that a `min_face_size`
/// face falls below the 40-px window ([`SEETA_WINDOW`]); boxes are mapped
/// back to full resolution, where the face is cropped.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceDetectorConfig {
    /// Smallest face side to find, in pixels of the full frame (≥ 20;
    /// values below 40 act as 40, the detector's window, since it does not
    /// upsample). Also bounds the downscaling: scale ≥ 40 / `min_face_size`.
    pub min_face_size: u32,
    /// Longest side of the image detection runs on, pixels; larger frames
    /// are area-averaged down to it (within the `min_face_size` bound).
    /// `None` detects at full resolution.
    pub detect_max_side: Option<u32>,
    /// Minimum cascade score of a detection; higher gives fewer false faces.
    pub score_thresh: f64,
    /// Ratio between adjacent pyramid scales, in (0.01, 0.99).
    pub pyramid_scale_factor: f32,
    /// Sliding-window step in pixels (≥ 1).
    pub slide_step: u32,
}

impl Default for FaceDetectorConfig {
    /// Minimum face 80 px, detection image ≤ 320 px: a 640×360 frame is
    /// searched at 320×180, a 480×360 one at 320×240 (faces ≥ 60 px), a
    /// 1280×720 one at 640×360 (faces ≥ 80 px). Measured on the CREMA-D
    /// keyframes: see docs/RESULTS.md, "Visual features on the CREMA-D clips".
    fn default() -> Self {
        Self {
            min_face_size: 80,
            detect_max_side: Some(320),
            score_thresh: 2.0,
            pyramid_scale_factor: 0.8,
            slide_step: 4,
        }
    }
}

impl FaceDetectorConfig {
    /// Checks every field against the ranges where rustface would panic.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, reason: String| Err(Error::InvalidConfig { what, reason });
        if self.min_face_size < 20 {
            return bad("min_face_size", format!("{} < 20", self.min_face_size));
        }
        if !(self.score_thresh.is_finite() && self.score_thresh > 0.0) {
            return bad(
                "score_thresh",
                format!("{} is not a positive number", self.score_thresh),
            );
        }
        if !(0.01..=0.99).contains(&self.pyramid_scale_factor) {
            return bad(
                "pyramid_scale_factor",
                format!("{} is outside [0.01, 0.99]", self.pyramid_scale_factor),
            );
        }
        if self.slide_step == 0 {
            return bad("slide_step", "must be at least 1".into());
        }
        if self.detect_max_side.is_some_and(|m| m < SEETA_WINDOW) {
            return bad(
                "detect_max_side",
                format!(
                    "{:?} < {SEETA_WINDOW}, the detector's window",
                    self.detect_max_side
                ),
            );
        }
        Ok(())
    }

    /// Factor (≤ 1) by which a `width × height` frame is shrunk before
    /// detection.
    pub fn detect_scale(&self, width: usize, height: usize) -> f64 {
        let longest = width.max(height).max(1) as f64;
        let by_side = self.detect_max_side.map_or(1.0, |m| f64::from(m) / longest);
        let floor = f64::from(SEETA_WINDOW) / f64::from(self.min_face_size.max(SEETA_WINDOW));
        by_side.max(floor).min(1.0)
    }
}

/// A detected face, in frame pixel coordinates, clipped to the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width (≥ 1).
    pub width: usize,
    /// Height (≥ 1).
    pub height: usize,
    /// Cascade score (higher is more confident).
    pub score: f64,
}

impl FaceBox {
    /// Area in pixels.
    pub fn area(&self) -> usize {
        self.width * self.height
    }

    /// Centre `(x, y)`.
    pub fn centre(&self) -> (f64, f64) {
        (
            self.x as f64 + self.width as f64 / 2.0,
            self.y as f64 + self.height as f64 / 2.0,
        )
    }

    /// The square window `[x, y, side, side]` around this face, grown by
    /// `margin` × side on every edge, then shrunk and shifted as little as
    /// needed to lie inside a `frame_w × frame_h` frame.
    ///
    /// Why square and with a margin: the FER2013 images the expression model
    /// was trained on are square crops that include the chin and forehead,
    /// and the `fer` package squares and pads its detector boxes the same way
    /// (`tosquare`, 10 px offsets). SeetaFace boxes are tight around the eyes
    /// and mouth, hence a relative margin.
    pub fn square_crop(&self, margin: f32, frame_w: usize, frame_h: usize) -> [usize; 4] {
        let (cx, cy) = self.centre();
        let side = self.width.max(self.height) as f64 * (1.0 + 2.0 * f64::from(margin.max(0.0)));
        let side = side.round().clamp(1.0, frame_w.min(frame_h) as f64);
        let place = |centre: f64, len: usize| -> usize {
            (centre - side / 2.0).round().clamp(0.0, len as f64 - side) as usize
        };
        let side_px = side as usize;
        [place(cx, frame_w), place(cy, frame_h), side_px, side_px]
    }
}

/// SeetaFace detector with mmer's settings. Not `Send` (rustface's detector is
/// a boxed trait object): give each worker thread its own, built from a shared
/// [`SeetaModel`].
pub struct FaceDetector {
    detector: Box<dyn Detector>,
    config: FaceDetectorConfig,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FaceDetector {
    /// Builds a detector.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`FaceDetectorConfig::validate`].
    pub fn new(model: &SeetaModel, config: &FaceDetectorConfig) -> Result<Self> {
        config.validate()?;
        let mut detector = rustface::create_detector_with_model(model.model.clone());
        detector.set_min_face_size(SEETA_WINDOW);
        detector.set_score_thresh(config.score_thresh);
        detector.set_pyramid_scale_factor(config.pyramid_scale_factor);
        detector.set_slide_window_step(config.slide_step, config.slide_step);
        Ok(Self {
            detector,
            config: config.clone(),
        })
    }

    /// Every face in a grayscale image, in its pixel coordinates, clipped to
    /// it. Detection runs on a copy shrunk by
    /// [`FaceDetectorConfig::detect_scale`].
    ///
    /// An image whose detection copy is smaller than the 40-px window, or
    /// whose short side is below `min_face_size`, cannot contain a
    /// detectable face and gives an empty list; rustface itself would panic
    /// on the former.
    pub fn detect_gray(&mut self, image: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = (image.width(), image.height());
        if w.min(h) < self.config.min_face_size as usize {
            return Vec::new();
        }
        let scale = self.config.detect_scale(w, h);
        let small;
        let target = if scale < 1.0 {
            let sw = ((w as f64 * scale).round() as usize).max(1);
            let sh = ((h as f64 * scale).round() as usize).max(1);
            small = image.downscale(sw, sh);
            &small
        } else {
            image
        };
        let (tw, th) = (target.width(), target.height());
        if tw.min(th) < SEETA_WINDOW as usize {
            return Vec::new();
        }
        let (Ok(w32), Ok(h32)) = (u32::try_from(tw), u32::try_from(th)) else {
            tracing::warn!(w, h, "frame too large for the face detector");
            return Vec::new();
        };
        let _span = tracing::trace_span!("face_detect", w, h, tw, th).entered();
        let data = ImageData::new(target.data(), w32, h32);
        // Back to full-resolution pixels: the exact ratio per axis, since the
        // detection copy's sides were rounded.
        let (sx, sy) = (w as f64 / tw as f64, h as f64 / th as f64);
        self.detector
            .detect(&data)
            .into_iter()
            .filter_map(|face| {
                let b = face.bbox();
                let left = f64::from(b.x()) * sx;
                let top = f64::from(b.y()) * sy;
                let right = (f64::from(b.x()) + f64::from(b.width())) * sx;
                let bottom = (f64::from(b.y()) + f64::from(b.height())) * sy;
                let x0 = left.round().clamp(0.0, w as f64) as usize;
                let y0 = top.round().clamp(0.0, h as f64) as usize;
                let x1 = right.round().clamp(0.0, w as f64) as usize;
                let y1 = bottom.round().clamp(0.0, h as f64) as usize;
                (x1 > x0 && y1 > y0).then_some(FaceBox {
                    x: x0,
                    y: y0,
                    width: x1 - x0,
                    height: y1 - y0,
                    score: face.score(),
                })
            })
            .collect()
    }

    /// Every face in an RGB frame.
    pub fn detect(&mut self, frame: &RgbFrame<'_>) -> Vec<FaceBox> {
        self.detect_gray(&frame.to_gray())
    }
}

/// The face the frame is about: the one with the largest
/// `area × centrality`, where centrality = 1 − (distance of the box centre
/// from the frame centre) / (half the frame diagonal), floored at 0.05 so a
/// large face at the very edge still counts. `None` when `faces` is empty.
///
/// Why both: in a conversation video the speaker is usually the largest face,
/// but a close-up of a listener at the edge should lose against a similar-size
/// face in the middle of the shot (AMuSE keeps the frames "with only faces of
/// the speaker", thesis §3.1.1.2).
pub fn primary_face(faces: &[FaceBox], frame_w: usize, frame_h: usize) -> Option<FaceBox> {
    let (fx, fy) = (frame_w as f64 / 2.0, frame_h as f64 / 2.0);
    let half_diag = (fx * fx + fy * fy).sqrt().max(1.0);
    let weight = |face: &FaceBox| {
        let (cx, cy) = face.centre();
        let dist = ((cx - fx).powi(2) + (cy - fy).powi(2)).sqrt();
        face.area() as f64 * (1.0 - dist / half_diag).max(0.05)
    };
    faces
        .iter()
        .copied()
        .max_by(|a, b| weight(a).total_cmp(&weight(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: usize, y: usize, side: usize) -> FaceBox {
        FaceBox {
            x,
            y,
            width: side,
            height: side,
            score: 5.0,
        }
    }

    #[test]
    fn config_ranges_are_checked_before_rustface_can_panic() {
        assert!(FaceDetectorConfig::default().validate().is_ok());
        for bad in [
            FaceDetectorConfig {
                min_face_size: 10,
                ..Default::default()
            },
            FaceDetectorConfig {
                score_thresh: 0.0,
                ..Default::default()
            },
            FaceDetectorConfig {
                pyramid_scale_factor: 1.0,
                ..Default::default()
            },
            FaceDetectorConfig {
                slide_step: 0,
                ..Default::default()
            },
            FaceDetectorConfig {
                detect_max_side: Some(39),
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
        }
    }

    #[test]
    fn detection_scale_keeps_the_minimum_face_above_the_window() {
        let c = FaceDetectorConfig::default();
        assert_eq!(c.detect_scale(640, 360), 0.5);
        assert!((c.detect_scale(480, 360) - 320.0 / 480.0).abs() < 1e-12);
        // 1280×720 would go to 320 px, but an 80-px face must stay ≥ 40 px.
        assert_eq!(c.detect_scale(1280, 720), 0.5);
        // Small frames and the full-resolution setting are not scaled.
        assert_eq!(c.detect_scale(300, 200), 1.0);
        let full = FaceDetectorConfig {
            detect_max_side: None,
            min_face_size: 40,
            ..c
        };
        assert_eq!(full.detect_scale(1920, 1080), 1.0);
    }

    #[test]
    fn primary_face_prefers_large_then_central() {
        assert_eq!(primary_face(&[], 100, 100), None);
        let big = face(0, 0, 50);
        let small_centre = face(45, 45, 10);
        assert_eq!(primary_face(&[small_centre, big], 100, 100), Some(big));
        // Equal sizes: the central one wins.
        let edge = face(0, 0, 30);
        let centre = face(35, 35, 30);
        assert_eq!(primary_face(&[edge, centre], 100, 100), Some(centre));
    }

    #[test]
    fn square_crop_stays_inside_the_frame() {
        let f = FaceBox {
            x: 0,
            y: 10,
            width: 40,
            height: 50,
            score: 1.0,
        };
        let [x, y, w, h] = f.square_crop(0.1, 100, 80);
        assert_eq!((w, h), (60, 60));
        assert!(x + w <= 100 && y + h <= 80);
        assert_eq!(x, 0);
        // Larger than the frame: shrinks to the short side.
        let [x, y, w, h] = f.square_crop(2.0, 100, 80);
        assert_eq!((x, y, w, h), (0, 0, 80, 80));
    }

    #[test]
    fn missing_model_names_the_setup_script() {
        let err = SeetaModel::load(Path::new("/nonexistent/seeta.bin")).expect_err("absent");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    }
}
