//! What to extract: media files, folders of them, or conversation files
//! that name a clip per utterance — resolved to (utterance id, path) jobs.
//!
//! Utterance ids: a conversation file's ids (`<dialogue>_utt<turn>`, as
//! mmer-data gives them, so the trainer can join features to turns); for a
//! folder, the path relative to the folder without its extension
//! (`1001_DFA_ANG_XX`, `season1/ep2/clip3`); for a file named directly, its
//! stem. Names that are not UTF-8 keep their bytes in the path and get a
//! lossy id (the store hashes odd ids into safe file names).
//!
//! A conversation file whose media do not match its turns is checked here,
//! per utterance: a named clip that does not exist, or a clip (and time
//! range) already named by an earlier turn (two turns would get identical
//! features — a copy-paste slip), gives that utterance a [`Job::problem`]
//! naming the file, line and turn; the run reports it as failed and goes on
//! with the rest. Turns that cut different `start`/`end` ranges out of one
//! recording share it legitimately; a range past the clip's end is found
//! when the clip is probed, and reported with the turn ([`Job::turn`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mmer_core::LabelSpace;
use mmer_data::conversation::Segment;

pub use crate::error::TurnRef;
use crate::error::{Error, Result};

/// Extensions taken from folders (case-insensitive). Files named directly
/// are always tried, whatever their extension.
pub const MEDIA_EXTENSIONS: [&str; 22] = [
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "wmv", "mpg", "mpeg", "ts", "3gp", "wav",
    "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "wma", "aiff",
];

/// One file to extract.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Job {
    /// Utterance id the features are stored under.
    pub id: String,
    /// The media file.
    pub path: PathBuf,
    /// The part of the file that is this utterance (`None`: all of it).
    pub segment: Option<Segment>,
    /// Why this job cannot run, found while resolving the inputs (a
    /// transcript that does not match its media); the run reports it as
    /// failed without decoding.
    pub problem: Option<String>,
    /// The conversation turn this job extracts, when it comes from a
    /// conversation file: every failure of the job names it.
    pub turn: Option<TurnRef>,
}

/// Resolved inputs.
#[derive(Debug, Clone, Default, PartialEq)]
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

/// The media files among `inputs`: paths named directly (whatever their
/// extension, even missing ones, so each bad file gets its own error when it
/// is opened and the others still run), and the files with a media extension
/// under folders, recursively, sorted.
///
/// # Errors
/// [`Error::Io`] for a folder that cannot be read.
pub fn media_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut files)?;
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
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
    // Media named by conversation turns so far: (canonical path, range) → (file, line, id).
    let mut claimed = Claimed::new();
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
                out.jobs.push(Job {
                    id,
                    path,
                    ..Job::default()
                });
            }
        } else if is_conversation(input) {
            let conv = mmer_data::conversation::read_conversations(input, labels)?;
            let turns = conv
                .dialogues
                .iter()
                .flat_map(|d| d.utterances.iter().map(move |u| (d, u)));
            for (dialogue, u) in turns {
                let Some(refs) = conv.media.get(&u.id) else {
                    out.without_media.push(u.id.clone());
                    continue;
                };
                // The video carries both modalities; an audio-only turn uses its audio clip.
                let Some(path) = refs.video.clone().or(refs.audio.clone()) else {
                    out.without_media.push(u.id.clone());
                    continue;
                };
                let at = TurnRef {
                    file: input.clone(),
                    line: refs.line,
                    utterance: u.id.clone(),
                    dialogue: dialogue.id.clone(),
                    turn: u.turn.unwrap_or(u.index as u64),
                };
                out.jobs.push(Job {
                    id: u.id.clone(),
                    path,
                    segment: refs.segment,
                    problem: media_mismatch(&at, refs, &mut claimed),
                    turn: Some(at),
                });
            }
        } else {
            let id = input
                .file_stem()
                .map_or_else(|| input.to_string_lossy(), |s| s.to_string_lossy())
                .into_owned();
            out.jobs.push(Job {
                id,
                path: input.clone(),
                ..Job::default()
            });
        }
    }
    if out.jobs.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::NoInputs(names.join(", ")));
    }
    Ok(out)
}

/// Clips named so far, by canonical path and time range in milliseconds
/// (`None`: the whole clip), with the file, line and utterance that named them.
type Claimed = HashMap<(PathBuf, Option<(u64, u64)>), (PathBuf, u64, String)>;

/// Why the media of the turn `at` do not match it, if they do not: a named
/// clip is missing, or an earlier turn already named it with the same time
/// range. Records the clips in `claimed`.
fn media_mismatch(
    at: &TurnRef,
    refs: &mmer_data::conversation::MediaRefs,
    claimed: &mut Claimed,
) -> Option<String> {
    let range = refs.segment.map(|s| s.millis());
    let id = at.utterance.as_str();
    let here = |msg: String| format!("{at}: {msg}");
    let named = [("audio", &refs.audio), ("video", &refs.video)];
    let mut problem = None;
    for (kind, path) in named
        .iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (*k, p)))
    {
        let Ok(canonical) = std::fs::canonicalize(path) else {
            problem.get_or_insert_with(|| {
                here(format!("its {kind} clip {} does not exist", path.display()))
            });
            continue;
        };
        let key = (canonical, range);
        match claimed.get(&key) {
            // The same file as this turn's audio and video is fine.
            Some((f, line, other)) if other != id => {
                problem.get_or_insert_with(|| {
                    here(format!(
                        "its {kind} clip {} (same time range) is already the clip of \
                         utterance {other} ({} line {line}); each turn needs its own clip \
                         or its own start/end",
                        path.display(),
                        f.display()
                    ))
                });
            }
            Some(_) => {}
            None => {
                claimed.insert(key, (at.file.clone(), at.line, id.to_string()));
            }
        }
    }
    problem
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
        assert!(got.jobs.iter().all(|j| j.problem.is_none()), "{got:?}");
        let missing = collect(&[root.join("nope.mp4")], &LabelSpace::meld()).unwrap();
        assert_eq!(missing.jobs[0].id, "nope", "reported per file by the run");
        let empty = root.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(
            collect(&[empty], &LabelSpace::meld()),
            Err(Error::NoInputs(_))
        ));
    }

    #[test]
    fn turns_whose_media_do_not_match_get_a_problem_naming_file_line_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["a.mp4", "b.wav"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let conv = root.join("conv.jsonl");
        std::fs::write(
            &conv,
            [
                r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "hi", "video": "a.mp4", "audio": "a.mp4"}"#,
                r#"{"dialogue": "d", "turn": 1, "speaker": "B", "text": "yo", "video": "gone.mp4"}"#,
                r#"{"dialogue": "d", "turn": 2, "speaker": "A", "text": "hm", "video": "./a.mp4"}"#,
                r#"{"dialogue": "d", "turn": 3, "speaker": "B", "text": "ok", "video": "a.mp4", "audio": "nope.wav"}"#,
                r#"{"dialogue": "e", "turn": 0, "speaker": "C", "text": "so", "audio": "b.wav"}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let got = collect(std::slice::from_ref(&conv), &LabelSpace::meld()).unwrap();
        let problems: Vec<(&str, Option<&str>)> = got
            .jobs
            .iter()
            .map(|j| (j.id.as_str(), j.problem.as_deref()))
            .collect();
        assert_eq!(problems.len(), 5);
        // The first claim of a clip (as both audio and video) and an
        // audio-only turn are fine.
        assert_eq!(problems[0], ("d_utt0", None));
        assert_eq!(problems[4], ("e_utt0", None));
        let (id, Some(p)) = problems[1] else {
            panic!("{problems:?}")
        };
        assert_eq!(id, "d_utt1");
        assert!(
            p.contains("conv.jsonl line 2, utterance d_utt1 (dialogue d, turn 1)")
                && p.contains("does not exist"),
            "{p}"
        );
        let turn = got.jobs[1]
            .turn
            .as_ref()
            .expect("a conversation job names its turn");
        assert_eq!((turn.line, turn.dialogue.as_str(), turn.turn), (2, "d", 1));
        let (_, Some(p)) = problems[2] else {
            panic!("{problems:?}")
        };
        assert!(
            p.contains("line 3")
                && p.contains("already the clip of utterance d_utt0")
                && p.contains("line 1)"),
            "{p}"
        );
        // A missing audio file is reported before the shared video.
        let (_, Some(p)) = problems[3] else {
            panic!("{problems:?}")
        };
        assert!(
            p.contains("line 4") && p.contains("audio clip") && p.contains("nope.wav"),
            "{p}"
        );
    }
}
