//! Which frozen sentence encoder to run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A frozen sentence-transformers text encoder that `scripts/setup.sh` installs
/// (DESIGN §5).
///
/// In files and on the command line the kinds are `minilm` and `mpnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum EncoderKind {
    /// `sentence-transformers/all-MiniLM-L6-v2`: 6-layer BERT, 384 dimensions,
    /// inputs truncated to 256 tokens.
    #[serde(rename = "minilm")]
    #[cfg_attr(feature = "clap", value(name = "minilm"))]
    MiniLm,
    /// `sentence-transformers/all-mpnet-base-v2`: 12-layer MPNet, 768
    /// dimensions, inputs truncated to 384 tokens. The thesis's text encoder.
    #[serde(rename = "mpnet")]
    #[cfg_attr(feature = "clap", value(name = "mpnet"))]
    Mpnet,
}

impl EncoderKind {
    /// Every kind, smallest first.
    pub const ALL: [EncoderKind; 2] = [EncoderKind::MiniLm, EncoderKind::Mpnet];

    /// Short name used in files, flags and fingerprints (`minilm`, `mpnet`).
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderKind::MiniLm => "minilm",
            EncoderKind::Mpnet => "mpnet",
        }
    }

    /// Upstream model name (`all-MiniLM-L6-v2`, `all-mpnet-base-v2`).
    pub fn model_name(self) -> &'static str {
        match self {
            EncoderKind::MiniLm => "all-MiniLM-L6-v2",
            EncoderKind::Mpnet => "all-mpnet-base-v2",
        }
    }

    /// Directory under the models directory that `scripts/setup.sh` installs into.
    pub fn dir_name(self) -> &'static str {
        match self {
            EncoderKind::MiniLm => "all-minilm-l6-v2",
            EncoderKind::Mpnet => "all-mpnet-base-v2",
        }
    }

    /// Width of the sentence embedding.
    pub fn dim(self) -> usize {
        match self {
            EncoderKind::MiniLm => 384,
            EncoderKind::Mpnet => 768,
        }
    }
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EncoderKind {
    type Err = Error;

    /// Parses `minilm` or `mpnet` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        EncoderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownEncoder(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for kind in EncoderKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialising a unit enum");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: EncoderKind = serde_json::from_str(&json).expect("round trip");
            assert_eq!(back, kind);
            assert_eq!(kind.as_str().parse::<EncoderKind>().ok(), Some(kind));
        }
        assert!("bert".parse::<EncoderKind>().is_err());
        assert!(serde_json::from_str::<EncoderKind>("\"mini_lm\"").is_err());
    }

    #[cfg(feature = "clap")]
    #[test]
    fn clap_values_match_file_names() {
        use clap::ValueEnum;
        for kind in EncoderKind::ALL {
            assert_eq!(
                <EncoderKind as ValueEnum>::from_str(kind.as_str(), false),
                Ok(kind)
            );
        }
    }
}
