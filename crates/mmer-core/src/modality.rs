//! The modalities mmer knows about.

use serde::{Deserialize, Serialize};

/// One input stream of an utterance. Face and Body together are the visual
/// stream; keeping them apart makes "No Face" / "No Body" testable
/// conditions (AM²-EmoJE, DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Transcript of the utterance.
    Text,
    /// Speech.
    Audio,
    /// Facial expression.
    Face,
    /// Body / scene (the frame with the face masked).
    Body,
}

impl Modality {
    /// All modalities in canonical order.
    pub const ALL: [Modality; 4] = [
        Modality::Text,
        Modality::Audio,
        Modality::Face,
        Modality::Body,
    ];

    /// Lower-case name used in files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Audio => "audio",
            Modality::Face => "face",
            Modality::Body => "body",
        }
    }
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
