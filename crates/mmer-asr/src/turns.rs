//! Turns from recognised segments.
//!
//! A turn is what one person says before a pause: consecutive segments merge
//! while the silence between them is shorter than
//! [`TurnOptions::max_pause_s`] and the turn stays within
//! [`TurnOptions::max_turn_s`]. A transcript or turn file from the user
//! replaces all of this.

use serde::{Deserialize, Serialize};

use crate::decode::Segment;

/// How segments become turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnOptions {
    /// A pause at least this long (seconds) ends a turn.
    pub max_pause_s: f64,
    /// A turn is not extended past this length (seconds); longer speech is
    /// cut at segment boundaries.
    pub max_turn_s: f64,
}

impl Default for TurnOptions {
    fn default() -> Self {
        Self {
            max_pause_s: 0.5,
            max_turn_s: 20.0,
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// The segments' texts joined by spaces.
    pub text: String,
    /// Indices of the segments it is made of.
    pub segments: Vec<usize>,
}

/// Groups time-ordered segments into turns.
pub fn turns_from_segments(segments: &[Segment], options: &TurnOptions) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match turns.last_mut() {
            Some(turn)
                if segment.start_s - turn.end_s < options.max_pause_s
                    && segment.end_s - turn.start_s <= options.max_turn_s =>
            {
                turn.end_s = turn.end_s.max(segment.end_s);
                turn.text.push(' ');
                turn.text.push_str(&segment.text);
                turn.segments.push(i);
            }
            _ => turns.push(Turn {
                start_s: segment.start_s,
                end_s: segment.end_s,
                text: segment.text.clone(),
                segments: vec![i],
            }),
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(start_s: f64, end_s: f64, text: &str) -> Segment {
        Segment {
            start_s,
            end_s,
            text: text.into(),
            avg_logprob: -0.2,
            no_speech_prob: 0.01,
            temperature: 0.0,
            compression_ratio: 1.0,
        }
    }

    #[test]
    fn pauses_split_and_short_gaps_merge() {
        let segments = [
            segment(0.0, 1.5, "Hi."),
            segment(1.6, 3.0, "How are you?"),
            segment(4.0, 5.0, "Fine."),
        ];
        let turns = turns_from_segments(&segments, &TurnOptions::default());
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].text, "Hi. How are you?");
        assert_eq!(turns[0].segments, vec![0, 1]);
        assert_eq!((turns[1].start_s, turns[1].end_s), (4.0, 5.0));
    }

    proptest! {
        /// Every segment lands in exactly one turn, in order; turns do not
        /// overlap and respect the length cap unless one segment alone exceeds it.
        #[test]
        fn turns_partition_segments(gaps in prop::collection::vec((0.0f64..2.0, 0.1f64..8.0), 0..40)) {
            let mut t = 0.0;
            let segments: Vec<Segment> = gaps.iter().map(|&(gap, len)| {
                let s = segment(t + gap, t + gap + len, "w");
                t += gap + len;
                s
            }).collect();
            let options = TurnOptions::default();
            let turns = turns_from_segments(&segments, &options);
            let flat: Vec<usize> = turns.iter().flat_map(|t| t.segments.clone()).collect();
            prop_assert_eq!(flat, (0..segments.len()).collect::<Vec<_>>());
            for pair in turns.windows(2) {
                prop_assert!(pair[0].end_s <= pair[1].start_s);
            }
            for turn in &turns {
                prop_assert!(turn.segments.len() == 1 || turn.end_s - turn.start_s <= options.max_turn_s);
            }
        }
    }
}
