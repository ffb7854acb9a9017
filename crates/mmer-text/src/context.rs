//! The conversation in the encoder's input (issue 17, after EmoBERTa, Kim &
//! Vossen 2021): each turn is encoded together with its speaker's name and
//! the turns around it, and only the turn itself is pooled.
//!
//! Layout of one input, in the encoder's own pair format (MPNet/RoBERTa:
//! `<s> A </s></s> B </s>`; BERT: `[CLS] A [SEP] B [SEP]`):
//!
//! ```text
//! <s> speaker: turn </s>  </s> past turns, oldest first </s>  </s> following turns </s>
//! └──── pooled ────────┘   └──────── context (attended to, not pooled) ───────────────┘
//! ```
//!
//! The turn comes first so that the pooled tokens are a prefix, and with no
//! context and no speaker name the input is exactly the plain sentence
//! input (`[CLS] turn [SEP]`): the features then equal the frozen ones bit
//! for bit. Context is filled nearest turn first, past before future,
//! within [`ContextWindow::max_tokens`]; the turn that does not fit whole
//! is cut at its far end (a past turn keeps its last tokens, a following
//! turn its first), and farther turns are left out. Turns without a
//! transcript are skipped as context. All tokens use token type 0 (BERT's
//! type 1 for the second segment is not used: mmer's encoder folds type 0
//! into its positions, as single-sentence encoding does).
//!
//! Differences from EmoBERTa, on purpose: it puts the turn between its past
//! and future and classifies from `<s>`; here the turn leads and its own
//! tokens are mean-pooled, which is what the sentence-transformers
//! checkpoints were trained to do and what the rest of mmer reads.

use serde::{Deserialize, Serialize};

/// How much of the conversation goes into each turn's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextWindow {
    /// Turns before the current one.
    pub past: usize,
    /// Turns after the current one.
    pub future: usize,
    /// Prefix every turn (the current one too) with `"<speaker>: "`.
    pub speakers: bool,
    /// Tokens per input, special tokens included (at most the encoder's
    /// `max_seq_length`); context beyond it is cut from the far end.
    pub max_tokens: usize,
}

impl Default for ContextWindow {
    fn default() -> Self {
        Self {
            past: 3,
            future: 1,
            speakers: true,
            max_tokens: 128,
        }
    }
}

impl std::fmt::Display for ContextWindow {
    /// `p3-f1-n128-speakers`: the form a checkpoint's text source records
    /// ([`ContextWindow::parse`] reads it back).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}-f{}-n{}", self.past, self.future, self.max_tokens)?;
        if self.speakers {
            f.write_str("-speakers")?;
        }
        Ok(())
    }
}

impl ContextWindow {
    /// Reads the form [`Display`](std::fmt::Display) writes; `None` if `s`
    /// is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let (rest, speakers) = match s.strip_suffix("-speakers") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let mut parts = rest.split('-');
        let mut number = |prefix: char| parts.next()?.strip_prefix(prefix)?.parse().ok();
        let window = Self {
            past: number('p')?,
            future: number('f')?,
            max_tokens: number('n')?,
            speakers,
        };
        parts.next().is_none().then_some(window)
    }
}

/// One encoder input: token ids with special tokens, of which the first
/// `pooled` are the turn's own (what pooling averages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderInput {
    /// Token ids as the encoder reads them.
    pub ids: Vec<u32>,
    /// How many leading ids are pooled (all of them without context).
    pub pooled: usize,
}

impl EncoderInput {
    /// An input pooled over every token.
    pub fn plain(ids: Vec<u32>) -> Self {
        let pooled = ids.len();
        Self { ids, pooled }
    }

    /// A stable text that identifies the input (the feature store keys its
    /// cached rows by a hash of it): the pooled count and every id.
    pub fn key(&self) -> String {
        let ids: Vec<String> = self.ids.iter().map(u32::to_string).collect();
        format!("{}|{}", self.pooled, ids.join(" "))
    }
}

/// The special tokens of an encoder's pair format: `head A tail mid B tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Specials {
    pub head: Vec<u32>,
    pub tail: Vec<u32>,
    pub mid: Vec<u32>,
}

/// One input per turn (`None` for a turn without a transcript);
/// `content(turn, text)` tokenizes a text without special tokens.
pub(crate) fn build_inputs(
    turns: &[(&str, Option<&str>)],
    window: &ContextWindow,
    specials: &Specials,
    content: impl Fn(usize, &str) -> crate::Result<Vec<u32>>,
) -> crate::Result<Vec<Option<EncoderInput>>> {
    let tokens: Vec<Option<Vec<u32>>> = turns
        .iter()
        .enumerate()
        .map(|(i, &(speaker, text))| {
            text.map(|text| match window.speakers {
                true => content(i, &format!("{speaker}: {text}")),
                false => content(i, text),
            })
            .transpose()
        })
        .collect::<crate::Result<_>>()?;
    let Specials { head, tail, mid } = specials;
    let segment_overhead = mid.len() + tail.len();
    Ok((0..turns.len())
        .map(|i| {
            let own = tokens[i].as_ref()?;
            let keep = window
                .max_tokens
                .saturating_sub(head.len() + tail.len())
                .min(own.len());
            let mut ids: Vec<u32> = head
                .iter()
                .chain(&own[..keep])
                .chain(tail)
                .copied()
                .collect();
            let pooled = ids.len();
            let mut budget = window.max_tokens.saturating_sub(pooled);
            // Past: nearest first, a cut turn keeps its last tokens.
            let past_turns = (0..i).rev().filter_map(|j| tokens[j].as_deref());
            let past = fill(
                past_turns.take(window.past),
                &mut budget,
                segment_overhead,
                true,
            );
            // Future: nearest first, a cut turn keeps its first tokens.
            let future_turns = (i + 1..turns.len()).filter_map(|j| tokens[j].as_deref());
            let future = fill(
                future_turns.take(window.future),
                &mut budget,
                segment_overhead,
                false,
            );
            for segment in [past, future] {
                if !segment.is_empty() {
                    ids.extend(mid.iter().chain(&segment).chain(tail));
                }
            }
            Some(EncoderInput { ids, pooled })
        })
        .collect())
}

/// Context turns (nearest first) as one segment in reading order, using at
/// most `budget − overhead` tokens; `budget` shrinks by what was used.
fn fill<'a>(
    turns: impl Iterator<Item = &'a [u32]>,
    budget: &mut usize,
    overhead: usize,
    past: bool,
) -> Vec<u32> {
    let Some(mut room) = budget.checked_sub(overhead) else {
        return Vec::new();
    };
    let mut picked: Vec<&[u32]> = Vec::new();
    for turn in turns {
        if room == 0 {
            break;
        }
        let take = turn.len().min(room);
        picked.push(match past {
            true => &turn[turn.len() - take..],
            false => &turn[..take],
        });
        room -= take;
    }
    if past {
        picked.reverse();
    }
    let segment: Vec<u32> = picked.concat();
    if !segment.is_empty() {
        *budget -= segment.len() + overhead;
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roberta() -> Specials {
        Specials {
            head: vec![0],
            tail: vec![2],
            mid: vec![2],
        }
    }

    /// Each word is one token: its length (so ids are readable).
    fn words(_: usize, text: &str) -> crate::Result<Vec<u32>> {
        Ok(text
            .split_whitespace()
            .map(|w| w.len() as u32 + 10)
            .collect())
    }

    #[test]
    fn the_window_round_trips_through_its_name() {
        for window in [
            ContextWindow::default(),
            ContextWindow {
                past: 0,
                future: 7,
                speakers: false,
                max_tokens: 512,
            },
        ] {
            assert_eq!(ContextWindow::parse(&window.to_string()), Some(window));
        }
        for bad in [
            "",
            "p3-f1",
            "p3-f1-n128-x",
            "f1-p3-n128",
            "p3-f1-n128-speakers-x",
        ] {
            assert_eq!(ContextWindow::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_context_is_the_plain_input_and_context_fills_nearest_first() {
        let turns = [
            ("A", Some("a")),
            ("B", Some("bb bb")),
            ("A", None),
            ("B", Some("ccc")),
            ("A", Some("dddd dddd")),
        ];
        let none = ContextWindow {
            past: 0,
            future: 0,
            speakers: false,
            max_tokens: 128,
        };
        let inputs = build_inputs(&turns, &none, &roberta(), words).unwrap();
        assert_eq!(inputs[2], None);
        assert_eq!(inputs[3], Some(EncoderInput::plain(vec![0, 13, 2])));

        let window = ContextWindow {
            past: 2,
            future: 1,
            ..none
        };
        let inputs = build_inputs(&turns, &window, &roberta(), words).unwrap();
        // Turn 3: own tokens pooled, then the two past turns with text
        // (turn 2 has none) oldest first, then turn 4.
        let third = inputs[3].as_ref().unwrap();
        assert_eq!(third.pooled, 3);
        assert_eq!(third.ids, vec![0, 13, 2, 2, 11, 12, 12, 2, 2, 14, 14, 2]);
        // The first turn has no past: only the following segment.
        assert_eq!(
            inputs[0].as_ref().unwrap().ids,
            vec![0, 11, 2, 2, 12, 12, 2]
        );

        // A tight budget cuts the farthest past turn at its far end and
        // leaves no room for the future segment.
        let tight = ContextWindow {
            max_tokens: 7,
            ..window
        };
        let third = build_inputs(&turns, &tight, &roberta(), words).unwrap()[3]
            .clone()
            .unwrap();
        assert_eq!(third.ids, vec![0, 13, 2, 2, 12, 12, 2]);
        assert!(third.ids.len() <= 7);

        // Speaker names prefix every turn.
        let named = ContextWindow {
            speakers: true,
            past: 0,
            future: 0,
            ..none
        };
        let first = build_inputs(&turns, &named, &roberta(), words).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(first.ids, vec![0, 12, 11, 2]); // "A:" "a"
    }

    #[test]
    fn a_turn_longer_than_the_window_is_cut_to_it() {
        let long = "w ".repeat(50);
        let turns = [("A", Some(long.as_str())), ("B", Some("x"))];
        let window = ContextWindow {
            past: 1,
            future: 1,
            speakers: false,
            max_tokens: 10,
        };
        let inputs = build_inputs(&turns, &window, &roberta(), words).unwrap();
        let first = inputs[0].as_ref().unwrap();
        assert_eq!((first.ids.len(), first.pooled), (10, 10));
        let second = inputs[1].as_ref().unwrap();
        assert!(second.ids.len() <= 10 && second.pooled == 3, "{second:?}");
    }
}
