//! The body view — the frame with the face region masked out — and a
//! fixed-width vector of low-level descriptors of it per keyframe.
//!
//! AMuSE splits each keyframe into "frames with only faces of the speaker,
//! and frames that do not contain the face and contain all other
//! information" (thesis §3.1.1.2); AM²-EmoJE treats Face and Body as separate
//! streams so either can be missing (DESIGN §3). The face stream is the crop
//! of [`crate::face_crop`]; this module owns the rest of the frame.
//!
//! Why descriptors and not pose keypoints: issue 4 allows either; the
//! mediapipe pose model needs tflite→ONNX conversion plus `tract`, a ~15 min
//! cold build on 2 cores (DESIGN §5), while these cost a few ms per frame and
//! no weights. They capture posture/gesture only coarsely — what moved, how
//! much, the dominant edge directions, the colours of the scene.
//!
//! Layout of [`BodyDescriptor::values`] ([`BODY_DIM`] = 45):
//!
//! | index | what |
//! |---|---|
//! | 0..3  | mean R, G, B of the visible pixels, / 255 |
//! | 3..6  | standard deviation of R, G, B of the visible pixels, / 255 |
//! | 6     | share of the frame that is visible (1 − masked share) |
//! | 7     | motion energy: mean \|Δ luma\| / 255 against the previous keyframe, over pixels visible in both |
//! | 8     | 1 when index 7 was measured, 0 for a first keyframe (then index 7 is 0) |
//! | 9..45 | histogram of oriented gradients: 2×2 cells × 9 unsigned orientation bins |
//!
//! The gradient histogram follows Dalal & Triggs, "Histograms of Oriented
//! Gradients for Human Detection" (CVPR 2005): centred [−1, 0, 1] derivatives,
//! 9 unsigned bins over 0–180°, magnitude votes, L2 normalisation — but with
//! one block of four cells over the whole frame instead of a dense grid, so
//! the width does not depend on the resolution. Pixels whose derivative
//! touches the mask do not vote, so the mask's edge is not an edge.

use crate::frame::{GrayImage, luma};
use crate::{Error, Result, RgbFrame};

/// Width of a body descriptor (see the module doc for its layout).
pub const BODY_DIM: usize = 45;

/// Column names of [`BodyDescriptor::values`], in the order of the module
/// doc's table (`hog_c<cell>_b<bin>`: cells row-major, bins from 0°).
pub fn body_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "mean_r",
        "mean_g",
        "mean_b",
        "std_r",
        "std_g",
        "std_b",
        "visible_share",
        "motion_energy",
        "motion_measured",
    ]
    .map(String::from)
    .into();
    for cell in 0..HOG_GRID * HOG_GRID {
        names.extend((0..HOG_BINS).map(|bin| format!("hog_c{cell}_b{bin}")));
    }
    names
}

/// Orientation bins per cell.
const HOG_BINS: usize = 9;
/// Cells per side of the HOG grid.
const HOG_GRID: usize = 2;

/// A frame with the face window masked.
#[derive(Debug, Clone)]
pub struct BodyView {
    width: usize,
    height: usize,
    /// The frame's `rgb24` pixels with masked pixels set to 0.
    rgb: Vec<u8>,
    /// Luma of every pixel (masked ones 0).
    gray: GrayImage,
    /// `true` where the pixel belongs to the body view.
    visible: Vec<bool>,
}

impl BodyView {
    /// The frame with the window `[x, y, w, h]` (the face crop window,
    /// [`crate::FaceBox::square_crop`]) masked; `None` masks nothing (no face).
    /// Parts of the window outside the frame are ignored.
    pub fn new(frame: &RgbFrame<'_>, face_window: Option<[usize; 4]>) -> Self {
        let (width, height) = (frame.width(), frame.height());
        let inside = |x: usize, y: usize| match face_window {
            Some([fx, fy, fw, fh]) => x >= fx && x < fx + fw && y >= fy && y < fy + fh,
            None => false,
        };
        let mut rgb = Vec::with_capacity(width * height * 3);
        let mut gray = Vec::with_capacity(width * height);
        let mut visible = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let show = !inside(x, y);
                let [r, g, b] = if show { frame.pixel(x, y) } else { [0, 0, 0] };
                rgb.extend_from_slice(&[r, g, b]);
                gray.push(luma(r, g, b));
                visible.push(show);
            }
        }
        let gray = GrayImage::new(width, height, gray)
            .expect("a frame's width and height give a valid gray image");
        Self {
            width,
            height,
            rgb,
            gray,
            visible,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The masked frame as `rgb24` (masked pixels are black). For viewing and
    /// for downstream image models; the descriptors read [`Self::visible`]
    /// instead of trusting the black pixels.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// `true` for each pixel of the body view, row-major.
    pub fn visible(&self) -> &[bool] {
        &self.visible
    }

    /// Share of the frame that is visible.
    pub fn visible_share(&self) -> f32 {
        let n = self.visible.iter().filter(|&&v| v).count();
        n as f32 / self.visible.len() as f32
    }

    /// The descriptors of this view; `previous` is the body view of the
    /// previous keyframe of the same video, for the motion energy.
    ///
    /// `Ok(None)` when no pixel is visible (the face fills the frame): the
    /// body is then missing, not zero.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `previous` has another size.
    pub fn descriptor(&self, previous: Option<&BodyView>) -> Result<Option<BodyDescriptor>> {
        if let Some(prev) = previous
            && (prev.width, prev.height) != (self.width, self.height)
        {
            return Err(Error::ShapeMismatch {
                what: "body motion energy",
                reason: format!(
                    "previous keyframe is {}×{}, this one {}×{}",
                    prev.width, prev.height, self.width, self.height
                ),
            });
        }
        let visible_count = self.visible.iter().filter(|&&v| v).count();
        if visible_count == 0 {
            return Ok(None);
        }
        let mut values = [0.0f32; BODY_DIM];
        self.colour_statistics(visible_count, &mut values[0..6]);
        values[6] = visible_count as f32 / self.visible.len() as f32;
        if let Some(energy) = previous.and_then(|prev| self.motion_energy(prev)) {
            values[7] = energy;
            values[8] = 1.0;
        }
        self.gradient_histogram(&mut values[9..]);
        Ok(Some(BodyDescriptor { values }))
    }

    fn colour_statistics(&self, count: usize, out: &mut [f32]) {
        let mut sum = [0f64; 3];
        let mut sum_sq = [0f64; 3];
        for (px, _) in self
            .rgb
            .chunks_exact(3)
            .zip(&self.visible)
            .filter(|(_, v)| **v)
        {
            for c in 0..3 {
                let v = f64::from(px[c]) / 255.0;
                sum[c] += v;
                sum_sq[c] += v * v;
            }
        }
        let n = count as f64;
        for c in 0..3 {
            let mean = sum[c] / n;
            out[c] = mean as f32;
            out[3 + c] = (sum_sq[c] / n - mean * mean).max(0.0).sqrt() as f32;
        }
    }

    /// Mean absolute luma difference over pixels visible in both views;
    /// `None` when they share no visible pixel.
    fn motion_energy(&self, prev: &BodyView) -> Option<f32> {
        let mut total = 0u64;
        let mut count = 0u64;
        for i in 0..self.visible.len() {
            if self.visible[i] && prev.visible[i] {
                total += u64::from(self.gray.data()[i].abs_diff(prev.gray.data()[i]));
                count += 1;
            }
        }
        (count > 0).then(|| (total as f64 / count as f64 / 255.0) as f32)
    }

    fn gradient_histogram(&self, out: &mut [f32]) {
        let (w, h) = (self.width, self.height);
        let visible = |x: usize, y: usize| self.visible[y * w + x];
        let g = |x: usize, y: usize| f32::from(self.gray.at(x, y)) / 255.0;
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                if !(visible(x - 1, y)
                    && visible(x + 1, y)
                    && visible(x, y - 1)
                    && visible(x, y + 1))
                {
                    continue;
                }
                let dx = g(x + 1, y) - g(x - 1, y);
                let dy = g(x, y + 1) - g(x, y - 1);
                let magnitude = (dx * dx + dy * dy).sqrt();
                if magnitude == 0.0 {
                    continue;
                }
                // Unsigned orientation in [0, π).
                let angle = dy.atan2(dx).rem_euclid(std::f32::consts::PI);
                let bin =
                    ((angle / std::f32::consts::PI * HOG_BINS as f32) as usize).min(HOG_BINS - 1);
                let cell = (y * HOG_GRID / h) * HOG_GRID + x * HOG_GRID / w;
                out[cell * HOG_BINS + bin] += magnitude;
            }
        }
        for cell in out.chunks_exact_mut(HOG_BINS) {
            let norm = cell.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-6;
            cell.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// The [`BODY_DIM`] descriptors of one keyframe's body view.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyDescriptor {
    /// The values, laid out as the module doc says.
    pub values: [f32; BODY_DIM],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: usize, height: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        data
    }

    #[test]
    fn masks_the_face_window_only() {
        let data = frame(10, 8, |_, _| [200, 100, 50]);
        let rgb = RgbFrame::new(10, 8, &data).expect("frame");
        let view = BodyView::new(&rgb, Some([2, 2, 4, 4]));
        assert_eq!(view.visible().iter().filter(|v| !**v).count(), 16);
        assert_eq!(&view.rgb()[(3 * 10 + 3) * 3..][..3], &[0, 0, 0]);
        assert_eq!(&view.rgb()[..3], &[200, 100, 50]);
        let d = view.descriptor(None).expect("same size").expect("visible");
        // Colour statistics ignore the black mask.
        assert!((d.values[0] - 200.0 / 255.0).abs() < 1e-6);
        assert!(d.values[3].abs() < 1e-6);
        assert!((d.values[6] - 64.0 / 80.0).abs() < 1e-6);
        // No previous keyframe: motion not measured, and flagged as such.
        assert_eq!((d.values[7], d.values[8]), (0.0, 0.0));
        // A flat frame has no gradients, and the mask edge does not add one.
        assert!(d.values[9..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn motion_energy_and_orientation() {
        // Vertical stripes: horizontal gradients only (orientation bin 0).
        let a = frame(16, 16, |x, _| if x % 4 < 2 { [0; 3] } else { [255; 3] });
        let b = frame(16, 16, |x, _| if x % 4 < 2 { [255; 3] } else { [0; 3] });
        let va = BodyView::new(&RgbFrame::new(16, 16, &a).expect("frame"), None);
        let vb = BodyView::new(&RgbFrame::new(16, 16, &b).expect("frame"), None);
        let d = vb
            .descriptor(Some(&va))
            .expect("same size")
            .expect("visible");
        assert_eq!((d.values[7], d.values[8]), (1.0, 1.0));
        for cell in 0..4 {
            let hist = &d.values[9 + cell * 9..9 + (cell + 1) * 9];
            assert!((hist[0] - 1.0).abs() < 1e-4, "{hist:?}");
            assert!(hist[1..].iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn all_masked_is_missing_and_sizes_must_agree() {
        let data = frame(4, 4, |_, _| [9; 3]);
        let rgb = RgbFrame::new(4, 4, &data).expect("frame");
        let view = BodyView::new(&rgb, Some([0, 0, 4, 4]));
        assert!(view.descriptor(None).expect("ok").is_none());
        let other = frame(5, 4, |_, _| [9; 3]);
        let other = BodyView::new(&RgbFrame::new(5, 4, &other).expect("frame"), None);
        assert!(matches!(
            view.descriptor(Some(&other)),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
