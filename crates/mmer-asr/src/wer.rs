//! Word error rate: the edit distance between a reference and a hypothesis,
//! in words, over the reference's length.
//!
//! Both texts are normalised the same simple way before counting: lower case,
//! every character other than a letter, digit or apostrophe becomes a space,
//! apostrophes at word edges are dropped. Numbers are not spelled out
//! ("10" ≠ "ten"), unlike Whisper's English normaliser; results say so.

use serde::{Deserialize, Serialize};

/// Edit counts of one or more hypothesis/reference pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WerCounts {
    /// Words in the references.
    pub reference_words: usize,
    /// Reference words replaced by another word.
    pub substitutions: usize,
    /// Reference words missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis words not in the reference.
    pub insertions: usize,
}

impl WerCounts {
    /// Counts for one pair of texts.
    pub fn of(reference: &str, hypothesis: &str) -> Self {
        edit_counts(&normalise(reference), &normalise(hypothesis))
    }

    /// (S + D + I) / N; 0 for an empty reference matched by an empty hypothesis.
    pub fn rate(&self) -> f64 {
        let errors = self.substitutions + self.deletions + self.insertions;
        if self.reference_words == 0 {
            return if errors == 0 { 0.0 } else { f64::INFINITY };
        }
        errors as f64 / self.reference_words as f64
    }
}

impl std::ops::AddAssign for WerCounts {
    fn add_assign(&mut self, other: Self) {
        self.reference_words += other.reference_words;
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
    }
}

/// The words of `text` after normalisation.
pub fn normalise(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == '’' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Minimum-edit alignment; ties prefer substitutions, then deletions.
fn edit_counts(reference: &[String], hypothesis: &[String]) -> WerCounts {
    let (n, m) = (reference.len(), hypothesis.len());
    // cost[i][j] with (S, D, I) for reference[..i] vs hypothesis[..j].
    let mut prev: Vec<(usize, WerCounts)> = (0..=m)
        .map(|j| {
            (
                j,
                WerCounts {
                    insertions: j,
                    ..WerCounts::default()
                },
            )
        })
        .collect();
    for i in 1..=n {
        let mut row = Vec::with_capacity(m + 1);
        row.push((
            i,
            WerCounts {
                deletions: i,
                ..WerCounts::default()
            },
        ));
        for j in 1..=m {
            let same = reference[i - 1] == hypothesis[j - 1];
            let (diag_cost, mut diag) = prev[j - 1];
            let diag_cost = diag_cost + usize::from(!same);
            if !same {
                diag.substitutions += 1;
            }
            let (del_cost, mut del) = prev[j];
            del.deletions += 1;
            let (ins_cost, mut ins) = row[j - 1];
            ins.insertions += 1;
            let best = if diag_cost <= del_cost + 1 && diag_cost <= ins_cost + 1 {
                (diag_cost, diag)
            } else if del_cost <= ins_cost {
                (del_cost + 1, del)
            } else {
                (ins_cost + 1, ins)
            };
            row.push(best);
        }
        prev = row;
    }
    let mut counts = prev[m].1;
    counts.reference_words = n;
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_each_kind_of_error() {
        let c = WerCounts::of("Don't forget a jacket.", "don't forget to check it");
        // a→to, jacket→check, +it
        assert_eq!((c.substitutions, c.deletions, c.insertions), (2, 0, 1));
        assert_eq!(c.reference_words, 4);
        assert!((c.rate() - 0.75).abs() < 1e-12);
        assert_eq!(WerCounts::of("Hello, world!", "hello world").rate(), 0.0);
        assert_eq!(WerCounts::of("one two three", "one three").deletions, 1);
    }

    proptest! {
        /// Errors never exceed max(N, M) and a text against itself scores 0.
        #[test]
        fn bounds(a in "[a-c ]{0,30}", b in "[a-c ]{0,30}") {
            let c = WerCounts::of(&a, &b);
            let (n, m) = (normalise(&a).len(), normalise(&b).len());
            prop_assert!(c.substitutions + c.deletions + c.insertions <= n.max(m));
            prop_assert_eq!(c.reference_words, n);
            prop_assert_eq!(c.deletions + c.substitutions <= n, true);
            prop_assert_eq!(WerCounts::of(&a, &a).rate(), 0.0);
        }
    }
}
