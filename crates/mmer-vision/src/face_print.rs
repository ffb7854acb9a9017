//! Face prints: a fixed-length appearance descriptor of a face crop, for
//! telling the faces of a recording apart (speaker clustering,
//! `mmer_audio::speakers::assign_speakers_with_faces`).
//!
//! The descriptor is the local-binary-pattern histogram face description of
//! Ahonen, Hadid & Pietikäinen ("Face description with local binary
//! patterns: application to face recognition", IEEE TPAMI 28(12), 2006):
//! every interior pixel of the [`FACE_CROP_SIZE`]² crop gets the 8-neighbour,
//! radius-1 LBP code (bit `k` set when neighbour `k` is at least the centre),
//! codes are mapped to the 58 *uniform* patterns (at most two 0/1
//! transitions around the circle) plus one bin for all others, and a
//! histogram is taken in each cell of a [`FACE_PRINT_GRID`]² grid. Each cell's
//! histogram is normalised to sum 1 and square-rooted (the Hellinger map, so
//! that the cosine of two prints is the Bhattacharyya coefficient averaged
//! over the cells), and the whole print has unit length.
//!
//! Why this and not a learned face embedding: it needs no weights, and LBP
//! codes are invariant to any monotonic change of grey levels (exposure,
//! contrast), which is most of what varies between the keyframes of one
//! recording. It is a weak identity descriptor next to a trained one (it
//! also moves with pose and expression); mmer uses it only as a second cue
//! beside the voice, within one recording.

use crate::face_crop::FACE_CROP_SIZE;
use crate::frame::GrayImage;

/// Cells per side of the histogram grid (4 × 4 cells of 15–16 pixels on the
/// 62-pixel interior of a 64-pixel crop).
pub const FACE_PRINT_GRID: usize = 4;

/// Histogram bins per cell: 58 uniform patterns + 1 for the rest.
pub const LBP_BINS: usize = 59;

/// Length of a face print.
pub const FACE_PRINT_DIM: usize = FACE_PRINT_GRID * FACE_PRINT_GRID * LBP_BINS;

/// Neighbour offsets `(dx, dy)` in circular order, starting east.
const NEIGHBOURS: [(isize, isize); 8] = [
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
    (0, -1),
    (1, -1),
];

/// Bin of each 8-bit LBP code: uniform codes get bins `0..58` in increasing
/// code order, the rest share bin 58.
fn uniform_bins() -> [u8; 256] {
    let mut bins = [(LBP_BINS - 1) as u8; 256];
    let mut next = 0u8;
    for code in 0..=255u8 {
        if transitions(code) <= 2 {
            bins[usize::from(code)] = next;
            next += 1;
        }
    }
    debug_assert_eq!(usize::from(next), LBP_BINS - 1);
    bins
}

/// 0/1 transitions around the circle of an 8-bit code.
fn transitions(code: u8) -> u32 {
    (code ^ code.rotate_left(1)).count_ones()
}

/// The face print of a crop (see the module doc).
///
/// Any image of at least 3 × 3 pixels is accepted (cells are spread over its
/// interior); face crops are [`FACE_CROP_SIZE`]². A flat image, which has
/// only the all-ones code, still gets a unit-length print.
///
/// # Shapes
/// Returns `[FACE_PRINT_DIM]`, unit L2 norm, every value ≥ 0; `None` for an
/// image smaller than 3 × 3.
pub fn face_print(image: &GrayImage) -> Option<Vec<f32>> {
    let (w, h) = (image.width(), image.height());
    if w < 3 || h < 3 {
        return None;
    }
    let bins = uniform_bins();
    let (iw, ih) = (w - 2, h - 2);
    let mut counts = vec![0u32; FACE_PRINT_DIM];
    for y in 1..h - 1 {
        let cell_y = (y - 1) * FACE_PRINT_GRID / ih;
        for x in 1..w - 1 {
            let cell_x = (x - 1) * FACE_PRINT_GRID / iw;
            let centre = image.at(x, y);
            let mut code = 0u8;
            for (k, (dx, dy)) in NEIGHBOURS.iter().enumerate() {
                let v = image.at(x.wrapping_add_signed(*dx), y.wrapping_add_signed(*dy));
                code |= u8::from(v >= centre) << k;
            }
            let cell = cell_y * FACE_PRINT_GRID + cell_x;
            counts[cell * LBP_BINS + usize::from(bins[usize::from(code)])] += 1;
        }
    }
    let mut print = vec![0f32; FACE_PRINT_DIM];
    for (cell_counts, cell_print) in counts.chunks(LBP_BINS).zip(print.chunks_mut(LBP_BINS)) {
        let total: u32 = cell_counts.iter().sum();
        if total == 0 {
            continue;
        }
        for (c, p) in cell_counts.iter().zip(cell_print.iter_mut()) {
            *p = (*c as f32 / total as f32).sqrt();
        }
    }
    normalise(&mut print);
    Some(print)
}

/// The mean of several face prints (a turn's keyframes), renormalised to
/// unit length; `None` when there is none.
///
/// # Shapes
/// `prints`: `[n][FACE_PRINT_DIM]` → `[FACE_PRINT_DIM]`.
pub fn mean_face_print<P: AsRef<[f32]>>(prints: &[P]) -> Option<Vec<f32>> {
    let first = prints.first()?.as_ref();
    let mut mean = vec![0f32; first.len()];
    for p in prints {
        mean.iter_mut().zip(p.as_ref()).for_each(|(m, v)| *m += v);
    }
    normalise(&mut mean);
    Some(mean)
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Side a crop must have for [`face_print`]'s cells to match the module doc.
const _: () = assert!(FACE_CROP_SIZE >= 3 * FACE_PRINT_GRID);

#[cfg(test)]
mod tests {
    use super::*;

    fn image(f: impl Fn(usize, usize) -> u8) -> GrayImage {
        let n = FACE_CROP_SIZE;
        GrayImage::new(n, n, (0..n * n).map(|i| f(i % n, i / n)).collect()).expect("square")
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn there_are_58_uniform_codes() {
        let bins = uniform_bins();
        let uniform = bins
            .iter()
            .filter(|&&b| usize::from(b) < LBP_BINS - 1)
            .count();
        assert_eq!(uniform, 58);
        assert_eq!(bins[0], 0, "all-zero code is uniform");
        assert!(
            usize::from(bins[255]) < LBP_BINS - 1,
            "all-one code is uniform"
        );
        assert_eq!(usize::from(bins[0b0101_0101]), LBP_BINS - 1);
    }

    #[test]
    fn print_is_unit_length_and_invariant_to_monotonic_grey_changes() {
        let face = image(|x, y| ((x * 7 + y * 13 + (x * y) % 17) % 200) as u8);
        let print = face_print(&face).expect("64x64");
        assert_eq!(print.len(), FACE_PRINT_DIM);
        let norm: f32 = print.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        // More contrast and light keep every comparison (`v ↦ 5v/4 + 5`
        // is strictly increasing on 0..200 in integers).
        let dimmer = image(|x, y| (((x * 7 + y * 13 + (x * y) % 17) % 200) * 5 / 4 + 5) as u8);
        let again = face_print(&dimmer).expect("64x64");
        let different = face_print(&image(|x, y| ((x ^ y) * 3 % 256) as u8)).expect("64x64");
        assert!((cosine(&print, &again) - 1.0).abs() < 1e-5);
        assert!(cosine(&print, &different) < cosine(&print, &again));
    }

    #[test]
    fn flat_and_tiny_images() {
        let flat = face_print(&image(|_, _| 90)).expect("64x64");
        let norm: f32 = flat.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let tiny = GrayImage::new(2, 5, vec![0; 10]).expect("2x5");
        assert!(face_print(&tiny).is_none());
        assert!(mean_face_print::<Vec<f32>>(&[]).is_none());
        let mean = mean_face_print(&[flat.clone(), flat.clone()]).expect("two");
        assert!(cosine(&mean, &flat) > 0.9999);
    }
}
