//! Energy-based speech-activity trimming (optional pre-processing).
//!
//! A 25 ms frame is active when its energy is within [`ACTIVITY_RANGE_DB`] of
//! the loudest frame and above [`ACTIVITY_FLOOR_DB`]; the kept span runs from
//! the first to the last active frame, widened by [`ACTIVITY_PAD_FRAMES`] on
//! each side. Only leading and trailing silence is removed — pauses inside the
//! utterance are prosody and stay. This is a simple energy detector, not a
//! trained VAD (silero-vad, DESIGN §5, can replace it later).

use std::ops::Range;

use crate::stft::{frame, frame_count};
use crate::waveform::energy_db;
use crate::{HOP_LENGTH, WINDOW_LENGTH};

/// Dynamic range below the loudest frame that still counts as activity, dB.
pub const ACTIVITY_RANGE_DB: f32 = 40.0;
/// Absolute floor of an active frame, dBFS.
pub const ACTIVITY_FLOOR_DB: f32 = -60.0;
/// Frames (10 ms each) kept before the first and after the last active frame.
pub const ACTIVITY_PAD_FRAMES: usize = 10;

/// Sample range from the first to the last active frame (padded), or `None`
/// when no frame is active.
pub fn speech_bounds(samples: &[f32]) -> Option<Range<usize>> {
    if samples.is_empty() {
        return None;
    }
    let energies: Vec<f32> = (0..frame_count(samples.len()))
        .map(|t| energy_db(&frame(samples, t)))
        .collect();
    let loudest = energies.iter().fold(f32::NEG_INFINITY, |m, &e| m.max(e));
    let gate = (loudest - ACTIVITY_RANGE_DB).max(ACTIVITY_FLOOR_DB);
    let first = energies.iter().position(|&e| e >= gate)?;
    let last = energies.iter().rposition(|&e| e >= gate)?;
    let start = first.saturating_sub(ACTIVITY_PAD_FRAMES) * HOP_LENGTH;
    let end = ((last + ACTIVITY_PAD_FRAMES) * HOP_LENGTH + WINDOW_LENGTH).min(samples.len());
    Some(start..end)
}

/// `samples` without leading and trailing silence; unchanged when nothing is
/// active (so silence stays analysable and is reported as unvoiced and quiet).
pub fn trim_silence(samples: &[f32]) -> &[f32] {
    match speech_bounds(samples) {
        Some(range) => &samples[range],
        None => samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_leading_and_trailing_silence_only() {
        let mut x = vec![0.0f32; 16_000];
        for (i, v) in x.iter_mut().enumerate().take(12_000).skip(4000) {
            *v = 0.3 * (i as f32 * 0.1).sin();
            if (7000..8000).contains(&i) {
                *v = 0.0; // an inner pause
            }
        }
        let r = speech_bounds(&x).expect("active");
        // A frame is active as soon as it overlaps the signal, so the span
        // reaches up to one window plus the padding beyond it.
        let slack = WINDOW_LENGTH + ACTIVITY_PAD_FRAMES * HOP_LENGTH;
        assert!(
            r.start <= 4000 - ACTIVITY_PAD_FRAMES * HOP_LENGTH && r.start >= 4000 - slack,
            "{r:?}"
        );
        assert!(
            r.end >= 12_000 + ACTIVITY_PAD_FRAMES * HOP_LENGTH
                && r.end <= 12_000 + slack + HOP_LENGTH,
            "{r:?}"
        );
        assert_eq!(trim_silence(&x).len(), r.len());
    }

    #[test]
    fn silence_is_left_alone() {
        let x = vec![0.0f32; 8000];
        assert_eq!(speech_bounds(&x), None);
        assert_eq!(trim_silence(&x).len(), 8000);
        assert_eq!(speech_bounds(&[]), None);
    }
}
