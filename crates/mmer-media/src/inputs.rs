//! What to extract: media files, folders of them, or conversation files
//! that name a clip per utterance — resolved to (utterance id, path) jobs.
//!
//! Utterance ids: a conversation file's ids (`<dialogue>_utt<turn>`, as
//! mmer-data gives them, so the trainer can join features to turns); for a
//! folder, the path relative to the folder without its extension
//! (`1001_DFA_ANG_XX`, `season1/ep2/clip3`); for a file named directly, its
//! stem. Names that are not UTF-8 keep their bytes in the path and get a
//! lossy id (the store hashes odd ids into safe file names).

use std::path::{Path, PathBuf};

use mmer_core::LabelSpace;

use crate::error::{Error, Result};

/// Extensions taken from folders (case-insensitive). Files named directly
/// are always tried, whatever their extension.
pub const MEDIA_EXTENSIONS: [&str; 22] = [
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "wmv", "mpg", "mpeg", "ts", "3gp", "wav",
    "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "wma", "aiff",
];

/// One file to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Utterance id the features are stored under.
    pub id: String,
    /// The media file.
    pub path: PathBuf,
}

/// Resolved inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Files to extract, in a stable order.
    pub jobs: Vec<Job>,
    /// Utterances of conversation files that name no media.
    pub without_media: Vec<String>,
}

fn is_conversation(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("csv"))
}

fn is_media(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MEDIA_EXTENSIONS.iter().any(|m| e.eq_ignore_ascii_case(m)))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_media(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Resolves `inputs` (files, folders, `.jsonl`/`.csv` conversation files)
/// to jobs. Conversation labels are checked against `labels`.
///
/// # Errors
/// [`Error::Io`] (a missing conversation file or unreadable folder; a
/// missing media file is a job that the run reports as failed),
/// [`Error::Conversation`] (a malformed conversation file),
/// [`Error::NoInputs`] (nothing to extract).
pub fn collect(inputs: &[PathBuf], labels: &LabelSpace) -> Result<Inputs> {
    let mut out = Inputs::default();
    for input in inputs {
        let is_dir = match std::fs::metadata(input) {
            Ok(meta) => meta.is_dir(),
            // A named media file that cannot be read becomes a job that
            // fails with the reason, so the rest of the batch still runs.
            Err(_) if !is_conversation(input) => false,
            Err(source) => {
                return Err(Error::Io {
                    path: input.clone(),
                    source,
                });
            }
        };
        if is_dir {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            for path in files {
                let rel = path.strip_prefix(input).unwrap_or(&path).with_extension("");
                let id = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.jobs.push(Job { id, path });
            }
        } else if is_conversation(input) {
            let conv = mmer_data::conversation::read_conversations(input, labels)?;
            for u in conv.dialogues.iter().flat_map(|d| &d.utterances) {
                // The video carries both modalities; an audio-only turn uses its audio clip.
                match conv
                    .media
                    .get(&u.id)
                    .and_then(|m| m.video.clone().or(m.audio.clone()))
                {
                    Some(path) => out.jobs.push(Job {
                        id: u.id.clone(),
                        path,
                    }),
                    None => out.without_media.push(u.id.clone()),
                }
            }
        } else {
            let id = input
                .file_stem()
                .map_or_else(|| input.to_string_lossy(), |s| s.to_string_lossy())
                .into_owned();
            out.jobs.push(Job {
                id,
                path: input.clone(),
            });
        }
    }
    if out.jobs.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::NoInputs(names.join(", ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_and_conversations_become_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("clips/sub")).unwrap();
        for f in [
            "clips/a.MP4",
            "clips/sub/b.wav",
            "clips/notes.txt",
            "single.bin",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::fs::write(
            root.join("conv.jsonl"),
            concat!(
                r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "hi", "video": "clips/a.MP4"}"#,
                "\n",
                r#"{"dialogue": "d", "turn": 1, "speaker": "B", "text": "yo"}"#,
                "\n"
            ),
        )
        .unwrap();
        let got = collect(
            &[
                root.join("clips"),
                root.join("single.bin"),
                root.join("conv.jsonl"),
            ],
            &LabelSpace::meld(),
        )
        .unwrap();
        let ids: Vec<&str> = got.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["a", "sub/b", "single", "d_utt0"]);
        assert_eq!(got.jobs[3].path, root.join("clips/a.MP4"));
        assert_eq!(got.without_media, ["d_utt1"]);
        assert!(matches!(
            collect(&[root.join("nope.jsonl")], &LabelSpace::meld()),
            Err(Error::Io { .. })
        ));
        let missing = collect(&[root.join("nope.mp4")], &LabelSpace::meld()).unwrap();
        assert_eq!(missing.jobs[0].id, "nope", "reported per file by the run");
        let empty = root.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(
            collect(&[empty], &LabelSpace::meld()),
            Err(Error::NoInputs(_))
        ));
    }
}
