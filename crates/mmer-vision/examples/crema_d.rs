//! CREMA-D sanity check of the visual branch (issue 4 target): for each clip
//! of `../shared/data/crema-d`, `k` uniform keyframes → face detection → the
//! expression model; prints the share of keyframes with a face and the
//! expression model's top-1 against the file labels as a Markdown table.
//!
//! ```text
//! cargo run -p mmer-vision --example crema_d -- [--keyframes 16]
//! cargo run -p mmer-vision --example crema_d -- --detect-max-side full --min-face 40
//! cargo run -p mmer-vision --example crema_d -- --dump-crops crops.json
//! ```
//!
//! `--detect-max-side N|full` and `--min-face N` override the detector's
//! defaults ([`FaceDetectorConfig`]), to compare speed and detection rate.
//! `--dump-crops` instead writes two 64×64 face crops per clip (the centres
//! of the two halves of the clip) for `scripts/fer_reference.py`, which adds
//! the original Keras model's outputs and makes the parity fixture.
//! Needs the `ffmpeg` program and the models of `scripts/setup.sh`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use mmer_vision::{
    DEFAULT_FACE_MARGIN, Expression, ExpressionModel, FaceDetector, FaceDetectorConfig, RgbFrame,
    SeetaModel, VisualExtractor, VisualExtractorConfig, crop_face, primary_face, uniform_keyframes,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    keyframes: usize,
    dump_crops: Option<PathBuf>,
    detector: FaceDetectorConfig,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        keyframes: 16,
        dump_crops: None,
        detector: FaceDetectorConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--keyframes" => {
                let v = it.next().context("--keyframes needs a number")?;
                args.keyframes = v.parse().with_context(|| format!("--keyframes {v:?}"))?;
                if args.keyframes == 0 {
                    bail!("--keyframes must be at least 1");
                }
            }
            "--detect-max-side" => {
                let v = it
                    .next()
                    .context("--detect-max-side needs a number or `full`")?;
                args.detector.detect_max_side = match v.as_str() {
                    "full" => None,
                    n => Some(
                        n.parse()
                            .with_context(|| format!("--detect-max-side {v:?}"))?,
                    ),
                };
            }
            "--min-face" => {
                let v = it.next().context("--min-face needs a number")?;
                args.detector.min_face_size =
                    v.parse().with_context(|| format!("--min-face {v:?}"))?;
            }
            "--dump-crops" => {
                args.dump_crops = Some(it.next().context("--dump-crops needs a path")?.into());
            }
            other => bail!("unknown argument {other:?} (see the example's doc comment)"),
        }
    }
    Ok(args)
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let data = common::crema_d_dir();
    if !data.join("labels.csv").is_file() {
        bail!(
            "{} not found (the CREMA-D clips of shared/)",
            data.display()
        );
    }
    let models = common::models_dir();
    let seeta = SeetaModel::from_models_dir(&models)?;
    let clips = common::crema_d_clips(&data)?;
    args.detector.validate()?;
    match args.dump_crops {
        Some(path) => dump_crops(&seeta, &clips, &path),
        None => report(&seeta, &models, &clips, args.keyframes, &args.detector),
    }
}

/// CREMA-D's emotion names as FER2013 classes.
fn fer_class(label: &str) -> Option<Expression> {
    Some(match label {
        "angry" => Expression::Angry,
        "disgust" => Expression::Disgust,
        "fearful" => Expression::Fear,
        "happy" => Expression::Happy,
        "sad" => Expression::Sad,
        "neutral" => Expression::Neutral,
        _ => return None,
    })
}

fn report(
    seeta: &SeetaModel,
    models: &std::path::Path,
    clips: &[common::Clip],
    k: usize,
    detector_config: &FaceDetectorConfig,
) -> Result<()> {
    let device = Device::default();
    let expression = ExpressionModel::from_models_dir(models, &device)?;
    let config = VisualExtractorConfig {
        detector: detector_config.clone(),
        ..VisualExtractorConfig::default()
    };
    let mut extractor = VisualExtractor::new(seeta, expression, &config)?;
    // Second copies, to time the two model stages on their own.
    let mut detector = FaceDetector::new(seeta, detector_config)?;
    let expression = ExpressionModel::from_models_dir(models, &device)?;
    let (mut detect_seconds, mut fer_seconds) = (0.0, 0.0);
    let mut table = String::new();
    writeln!(
        table,
        "| clip | label (perceived) | keyframes | with face | top-1 of mean probs | p(label) | keyframe top-1 = label |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|")?;
    let (mut total_keyframes, mut total_faces) = (0, 0);
    let (mut clip_hits, mut clip_hits_perceived, mut kf_hits) = (0, 0, 0);
    let mut seconds = 0.0;
    for clip in clips {
        let video = common::decode_video(&clip.path)?;
        let picks = uniform_keyframes(video.frames.len(), k);
        let frames = picks
            .iter()
            .map(|&i| RgbFrame::new(video.width, video.height, &video.frames[i]))
            .collect::<mmer_vision::Result<Vec<_>>>()?;
        let start = Instant::now();
        let features = extractor.extract(&frames)?;
        seconds += start.elapsed().as_secs_f64();
        let faces: Vec<_> = features.iter().filter_map(|f| f.face.as_ref()).collect();
        let start = Instant::now();
        for frame in &frames {
            detector.detect(frame);
        }
        detect_seconds += start.elapsed().as_secs_f64();
        let crops: Vec<_> = faces.iter().map(|f| &f.crop.image).collect();
        let start = Instant::now();
        expression.predict(&crops)?;
        fer_seconds += start.elapsed().as_secs_f64();
        let mut mean = [0f32; 7];
        for face in &faces {
            for (m, p) in mean.iter_mut().zip(face.expression.probabilities) {
                *m += p / faces.len() as f32;
            }
        }
        let label = fer_class(&clip.emotion);
        let perceived = fer_class(&clip.perceived);
        let top = (!faces.is_empty()).then(|| {
            let best = (0..7)
                .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
                .unwrap_or(0);
            Expression::ALL[best]
        });
        let kf_match = faces
            .iter()
            .filter(|f| Some(f.expression.top()) == label)
            .count();
        total_keyframes += frames.len();
        total_faces += faces.len();
        kf_hits += kf_match;
        clip_hits += usize::from(top.is_some() && top == label);
        clip_hits_perceived += usize::from(top.is_some() && top == perceived);
        let p_label = label.map_or(f32::NAN, |l| mean[l as usize]);
        let name = clip
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        writeln!(
            table,
            "| {name} | {} ({}) | {} | {} | {} | {p_label:.3} | {kf_match}/{} |",
            clip.emotion,
            clip.perceived,
            frames.len(),
            faces.len(),
            top.map_or("—", Expression::name),
            faces.len(),
        )?;
    }
    let share = total_faces as f64 / total_keyframes.max(1) as f64;
    writeln!(
        table,
        "\nDetector: {detector_config:?}.\n\
         Face found in {total_faces}/{total_keyframes} keyframes ({:.1} %). \
         Clip top-1 (mean of keyframe probabilities) = file label: {clip_hits}/{n}; \
         = perceived label: {clip_hits_perceived}/{n}. Keyframe top-1 = file label: \
         {kf_hits}/{total_faces}. Detection + crop + body + expression: {:.1} ms per keyframe \
         (face detection alone {:.1} ms, expression model alone {:.1} ms per face).",
        100.0 * share,
        1000.0 * seconds / total_keyframes.max(1) as f64,
        1000.0 * detect_seconds / total_keyframes.max(1) as f64,
        1000.0 * fer_seconds / total_faces.max(1) as f64,
        n = clips.len(),
    )?;
    print!("{table}");
    Ok(())
}

fn dump_crops(seeta: &SeetaModel, clips: &[common::Clip], path: &std::path::Path) -> Result<()> {
    let mut detector = FaceDetector::new(seeta, &FaceDetectorConfig::default())?;
    let mut crops = Vec::new();
    for clip in clips {
        let video = common::decode_video(&clip.path)?;
        for index in uniform_keyframes(video.frames.len(), 2) {
            let frame = RgbFrame::new(video.width, video.height, &video.frames[index])?;
            let gray = frame.to_gray();
            let faces = detector.detect_gray(&gray);
            let face = primary_face(&faces, video.width, video.height)
                .with_context(|| format!("{}: no face in frame {index}", clip.path.display()))?;
            let crop = crop_face(&gray, &face, DEFAULT_FACE_MARGIN);
            let hex: String = crop
                .image
                .data()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let name = clip
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            crops.push(format!(
                "{{\"clip\": \"{name}\", \"frame\": {index}, \"window\": {:?}, \"gray_hex\": \"{hex}\"}}",
                crop.window
            ));
        }
    }
    let json = format!("{{\"crops\": [\n{}\n]}}\n", crops.join(",\n"));
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} crops to {}", crops.len(), path.display());
    Ok(())
}
