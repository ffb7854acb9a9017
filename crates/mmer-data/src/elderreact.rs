//! ElderReact (Ma, Mahmoud, Kaliouby & Picard, ICMI 2019): short clips of
//! elderly people reacting to videos, each annotated with any of six
//! emotions at once, with the dataset's per-clip COVAREP audio statistics.
//!
//! A directory holds, for each split `train`, `dev` and `test`:
//!
//! * `<split>_labels.txt` — one clip a line, whitespace-separated:
//!   `file anger disgust fear happiness sadness surprise gender valence`,
//!   e.g. `50_50_100.mp4 0 1 1 0 0 1 f 1.6666666666666667`. The six
//!   emotions are `0`/`1`; `gender` is read as one token and not kept,
//!   `valence` must be a number and is not kept either (an [`Utterance`]
//!   has no field for them).
//! * `<split>_audio.txt` — one clip a line: the clip id (the file name
//!   without `.mp4`), a tab, then [`AUDIO_DIM`] = 148 numbers: the mean and
//!   then the standard deviation of 74 COVAREP frame features.
//!
//! Both files may name a clip with or without `.mp4`; the id is the name
//! without it. Blank lines are skipped. A clip must have exactly one row in
//! each of its split's two files and be in one split only.
//!
//! **Corpus.** The label space is [`label_space`]: `elderreact`,
//! multi-label, classes in file order (anger 0, disgust 1, fear 2,
//! happiness 3, sadness 4, surprise 5). Every clip becomes a [`Dialogue`] of
//! one [`Utterance`] whose dialogue id, utterance id and speaker are all the
//! clip id, with a [`Label::Multi`] of six bits and [`Modality::Audio`] =
//! [`Features::vector`] of the 148 numbers. Clips keep the order of the
//! labels file; `train` → [`Split::Train`], `dev` → [`Split::Valid`],
//! `test` → [`Split::Test`] (615 / 355 / 353 clips in the release).
//!
//! **Speaker.** File names are `<video>_<n>.mp4`, where `<video>` is the
//! Elders React episode the clip was cut from (`rammstein`, `50_50_spider`,
//! `flappy_bird`, …: 43 in all, and most occur in all three splits). An
//! episode shows several elders, so the prefix names a video, not a person,
//! and nothing in the files names a person. The speaker is therefore the
//! clip id: each clip is its own speaker, and nothing speaker-conditioned
//! (a speaker offset, a speaker's earlier turns) joins two clips that may be
//! different people. The video stays readable from the id.
//!
//! **Non-finite values.** A value that parses but is not finite (`nan`,
//! `inf`, `-inf`, or a number beyond `f32`) is replaced by the mean of that
//! column over the finite values of the *training* split's clips, so no
//! statistic of the validation or test clips reaches the features. Every
//! replacement is reported: [`load_with_report`] returns the clip, split
//! and columns of each in a [`LoadReport`], and a `tracing` warning names
//! each affected clip and its columns. A column with no finite training
//! value cannot be imputed and is an error. In the release this concerns 2
//! of 195,804 values, both in one test clip: `rammstein_30` (line 290 of
//! `test_audio.txt`) has `-inf` in column 7 (a mean) and `nan` in column
//! 81 (the standard deviation of the same feature).
//!
//! **Errors** name the file, the line and the clip: a clip in one of its
//! split's files and not the other, a clip twice (in one file or in two
//! splits), a wrong number of columns, an emotion that is not `0` or `1`,
//! and a value or valence that is not a number.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mmer_core::{Corpus, Dialogue, Features, Label, LabelSpace, Modality, Split, Utterance};
use serde::Serialize;

use crate::{Error, Result};

/// The six emotions, in the order of the labels file's columns.
pub const CLASSES: [&str; 6] = [
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
];

/// Width of a clip's audio vector: mean, then standard deviation, of 74
/// COVAREP frame features.
pub const AUDIO_DIM: usize = 148;

/// Columns of a labels line: file, six emotions, gender, valence.
const LABEL_COLUMNS: usize = 1 + CLASSES.len() + 2;

/// The file-name stem of each split.
const SPLITS: [(Split, &str); 3] = [
    (Split::Train, "train"),
    (Split::Valid, "dev"),
    (Split::Test, "test"),
];

/// ElderReact's label space: six emotions, multi-label.
pub fn label_space() -> LabelSpace {
    LabelSpace {
        name: "elderreact".into(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        multi_label: true,
    }
}

/// What loading changed in the data: the non-finite values it replaced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// One entry per clip with replaced values, in split then file order.
    pub imputed: Vec<Imputation>,
}

impl LoadReport {
    /// Number of values replaced over all clips.
    pub fn values_imputed(&self) -> usize {
        self.imputed.iter().map(|i| i.columns.len()).sum()
    }
}

/// The non-finite audio values of one clip, replaced by training means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imputation {
    /// Clip id (without `.mp4`).
    pub clip: String,
    /// The clip's split.
    pub split: Split,
    /// 0-based columns of the 148-d audio vector that were replaced.
    pub columns: Vec<usize>,
}

/// Loads ElderReact from `dir` (see the module doc); non-finite audio
/// values are imputed and logged, see [`load_with_report`] for the list.
///
/// # Errors
/// As [`load_with_report`].
pub fn load(dir: &Path) -> Result<Corpus> {
    load_with_report(dir).map(|(corpus, _)| corpus)
}

/// Loads ElderReact from `dir` and reports every non-finite audio value it
/// replaced by the training split's column mean.
///
/// # Errors
/// - [`Error::Io`] when a file cannot be read;
/// - [`Error::Parse`] at the file and line, naming the clip: a wrong column
///   count, an emotion other than `0`/`1`, a value or valence that is not a
///   number, a clip missing from the split's other file, a clip in two
///   splits;
/// - [`Error::DuplicateId`] for a clip twice in one file;
/// - [`Error::Format`] when a column needing imputation has no finite
///   training value;
/// - [`Error::Invalid`] when the corpus breaks a domain invariant.
pub fn load_with_report(dir: &Path) -> Result<(Corpus, LoadReport)> {
    // Clip id → (labels file, line) of its first appearance in any split.
    let mut seen: HashMap<String, (PathBuf, u64)> = HashMap::new();
    let mut parsed: Vec<(Split, Vec<Clip>)> = Vec::with_capacity(SPLITS.len());
    for (split, stem) in SPLITS {
        let labels_path = dir.join(format!("{stem}_labels.txt"));
        let audio_path = dir.join(format!("{stem}_audio.txt"));
        let rows = read_labels(&labels_path)?;
        let audio = read_audio(&audio_path)?;
        for row in &rows {
            if let Some((path, line)) = seen.get(&row.id) {
                return Err(Error::Parse {
                    path: labels_path.clone(),
                    line: row.line,
                    msg: format!(
                        "clip {} is also in {}, line {line}: a clip belongs to one split",
                        row.id,
                        path.display()
                    ),
                });
            }
            seen.insert(row.id.clone(), (labels_path.clone(), row.line));
        }
        parsed.push((split, join(&labels_path, rows, &audio_path, audio)?));
    }

    let train_path = dir.join("train_audio.txt");
    let means = train_means(parsed.iter().find(|(s, _)| *s == Split::Train));
    let mut report = LoadReport::default();
    let mut splits = BTreeMap::new();
    for (split, clips) in parsed {
        let mut dialogues = Vec::with_capacity(clips.len());
        for mut clip in clips {
            let columns: Vec<usize> = (0..AUDIO_DIM)
                .filter(|&j| !clip.audio[j].is_finite())
                .collect();
            for &j in &columns {
                clip.audio[j] = means[j].ok_or_else(|| Error::Format {
                    path: train_path.clone(),
                    msg: format!(
                        "audio column {j} has no finite value in the training split, so the \
                         non-finite value of clip {} ({split}) cannot be replaced by its mean",
                        clip.id
                    ),
                })?;
            }
            if !columns.is_empty() {
                tracing::warn!(
                    "ElderReact clip {} ({split}): non-finite audio value(s) in column(s) {columns:?} \
                     replaced by the training mean",
                    clip.id
                );
                report.imputed.push(Imputation {
                    clip: clip.id.clone(),
                    split,
                    columns,
                });
            }
            let mut u = Utterance::new(clip.id.clone(), 0, clip.id.clone());
            u.label = Some(Label::Multi(clip.labels));
            u.features
                .insert(Modality::Audio, Features::vector(clip.audio));
            dialogues.push(Dialogue {
                id: clip.id,
                utterances: vec![u],
            });
        }
        splits.insert(split, dialogues);
    }
    let corpus = Corpus {
        name: "elderreact".into(),
        labels: label_space(),
        splits,
    };
    corpus.validate().map_err(|source| Error::Invalid {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok((corpus, report))
}

/// One line of a labels file.
struct LabelRow {
    id: String,
    line: u64,
    labels: Vec<bool>,
}

/// One line of an audio file; non-finite values kept as they are.
struct AudioRow {
    line: u64,
    values: Vec<f32>,
}

/// A clip with labels and (not yet imputed) audio.
struct Clip {
    id: String,
    labels: Vec<bool>,
    audio: Vec<f32>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn clip_id(name: &str) -> &str {
    name.strip_suffix(".mp4").unwrap_or(name)
}

/// Non-blank lines with their 1-based numbers, split on whitespace.
fn records(text: &str) -> impl Iterator<Item = (u64, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (!fields.is_empty()).then_some((i as u64 + 1, fields))
    })
}

fn read_labels(path: &Path) -> Result<Vec<LabelRow>> {
    let text = read(path)?;
    let mut rows: Vec<LabelRow> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, fields) in records(&text) {
        let id = clip_id(fields[0]).to_string();
        let parse_err = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg: format!("clip {id}: {msg}"),
        };
        if fields.len() != LABEL_COLUMNS {
            return Err(parse_err(format!(
                "{} columns, expected {LABEL_COLUMNS} (file {} gender valence)",
                fields.len(),
                CLASSES.join(" ")
            )));
        }
        let labels = CLASSES
            .iter()
            .zip(&fields[1..=CLASSES.len()])
            .map(|(class, value)| match *value {
                "0" => Ok(false),
                "1" => Ok(true),
                other => Err(parse_err(format!("{class} is {other:?}, expected 0 or 1"))),
            })
            .collect::<Result<Vec<bool>>>()?;
        let valence = fields[LABEL_COLUMNS - 1];
        if valence.parse::<f64>().is_err() {
            return Err(parse_err(format!("valence {valence:?} is not a number")));
        }
        check_first(&mut first_line, path, line, &id)?;
        rows.push(LabelRow { id, line, labels });
    }
    Ok(rows)
}

/// Records that `id` appears at `line` of `path`.
///
/// # Errors
/// [`Error::DuplicateId`] naming both lines when it appeared before.
fn check_first(
    first_line: &mut HashMap<String, u64>,
    path: &Path,
    line: u64,
    id: &str,
) -> Result<()> {
    if let Some(&first) = first_line.get(id) {
        return Err(Error::DuplicateId {
            path: path.to_path_buf(),
            line,
            first_line: first,
            id: id.to_string(),
        });
    }
    first_line.insert(id.to_string(), line);
    Ok(())
}

/// Audio rows by clip id, in file order.
fn read_audio(path: &Path) -> Result<Vec<(String, AudioRow)>> {
    let text = read(path)?;
    let mut rows: Vec<(String, AudioRow)> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, fields) in records(&text) {
        let id = clip_id(fields[0]).to_string();
        let parse_err = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg: format!("clip {id}: {msg}"),
        };
        let values = &fields[1..];
        if values.len() != AUDIO_DIM {
            return Err(parse_err(format!(
                "{} values, expected {AUDIO_DIM} (mean and standard deviation of 74 COVAREP features)",
                values.len()
            )));
        }
        let values = values
            .iter()
            .enumerate()
            .map(|(j, v)| {
                v.parse::<f64>().map(|x| x as f32).map_err(|_| {
                    parse_err(format!(
                        "value {v:?} in column {j} (0-based) is not a number"
                    ))
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        check_first(&mut first_line, path, line, &id)?;
        rows.push((id, AudioRow { line, values }));
    }
    Ok(rows)
}

/// Pairs every labels row with its audio row; a clip in one file only is
/// an error at its line in that file.
fn join(
    labels_path: &Path,
    rows: Vec<LabelRow>,
    audio_path: &Path,
    audio: Vec<(String, AudioRow)>,
) -> Result<Vec<Clip>> {
    let mut audio: HashMap<String, AudioRow> = audio.into_iter().collect();
    let mut clips = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(a) = audio.remove(&row.id) else {
            return Err(Error::Parse {
                path: labels_path.to_path_buf(),
                line: row.line,
                msg: format!("clip {} has no row in {}", row.id, audio_path.display()),
            });
        };
        clips.push(Clip {
            id: row.id,
            labels: row.labels,
            audio: a.values,
        });
    }
    if let Some((id, a)) = audio.into_iter().min_by_key(|(_, a)| a.line) {
        return Err(Error::Parse {
            path: audio_path.to_path_buf(),
            line: a.line,
            msg: format!("clip {id} has no row in {}", labels_path.display()),
        });
    }
    Ok(clips)
}

/// Per column, the mean of the training clips' finite values (`None`
/// where there is none).
fn train_means(train: Option<&(Split, Vec<Clip>)>) -> Vec<Option<f32>> {
    let mut sums = vec![(0.0f64, 0usize); AUDIO_DIM];
    for clip in train.map(|(_, clips)| clips.as_slice()).unwrap_or(&[]) {
        for (s, &v) in sums.iter_mut().zip(&clip.audio) {
            if v.is_finite() {
                s.0 += f64::from(v);
                s.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(sum, n)| (n > 0).then(|| (sum / n as f64) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audio line whose column `j` holds `value(j)`.
    fn audio_line(id: &str, value: impl Fn(usize) -> String) -> String {
        let values: Vec<String> = (0..AUDIO_DIM).map(value).collect();
        format!("{id}\t{}\n", values.join(" "))
    }

    fn plain(id: &str, base: f32) -> String {
        audio_line(id, |j| format!("{}", base + j as f32 * 0.5))
    }

    /// Writes `<stem>_labels.txt` and `<stem>_audio.txt`.
    fn write(dir: &Path, stem: &str, labels: &str, audio: &str) {
        std::fs::write(dir.join(format!("{stem}_labels.txt")), labels).unwrap();
        std::fs::write(dir.join(format!("{stem}_audio.txt")), audio).unwrap();
    }

    /// A small valid directory: two train clips, one dev, one test.
    fn valid_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "train",
            "v_1.mp4 0 1 1 0 0 1 f 1.5\nv_2.mp4 1 0 0 0 0 0 m 2.0\n",
            &format!("{}{}", plain("v_2", 2.0), plain("v_1", 1.0)),
        );
        write(
            dir.path(),
            "dev",
            "w_7.mp4 0 0 0 1 0 0 m 4\n\n",
            &plain("w_7", 3.0),
        );
        write(
            dir.path(),
            "test",
            "x_3.mp4 0 0 0 0 0 0 f 3.25\n",
            &plain("x_3", 4.0),
        );
        dir
    }

    #[test]
    fn parses_clips_into_one_turn_dialogues() {
        let dir = valid_dir();
        let (corpus, report) = load_with_report(dir.path()).unwrap();
        assert!(report.imputed.is_empty());
        assert_eq!(corpus.name, "elderreact");
        assert_eq!(corpus.labels, label_space());
        assert!(corpus.labels.multi_label);
        let ids = |s| -> Vec<&str> { corpus.split(s).iter().map(|d| d.id.as_str()).collect() };
        assert_eq!(ids(Split::Train), ["v_1", "v_2"], "labels-file order");
        assert_eq!(ids(Split::Valid), ["w_7"]);
        assert_eq!(ids(Split::Test), ["x_3"]);
        let d = &corpus.split(Split::Train)[0];
        assert_eq!(d.utterances.len(), 1);
        let u = &d.utterances[0];
        assert_eq!(
            (u.id.as_str(), u.speaker.as_str(), u.index),
            ("v_1", "v_1", 0)
        );
        assert_eq!(
            u.label,
            Some(Label::Multi(vec![false, true, true, false, false, true]))
        );
        let audio = &u.features[&Modality::Audio];
        assert_eq!((audio.frames, audio.dim), (1, AUDIO_DIM));
        assert_eq!(audio.data[0], 1.0);
        assert_eq!(audio.data[147], 1.0 + 147.0 * 0.5);
        assert_eq!(corpus.modalities(), vec![Modality::Audio]);
        assert_eq!(
            corpus.split(Split::Test)[0].utterances[0].label,
            Some(Label::Multi(vec![false; 6])),
            "a clip may carry no emotion"
        );
        assert_eq!(load(dir.path()).unwrap(), corpus);
    }

    /// Loads a copy of the valid directory with one split's files replaced
    /// and returns the error message.
    fn error_with(stem: &str, labels: Option<&str>, audio: Option<&str>) -> String {
        let dir = valid_dir();
        if let Some(labels) = labels {
            std::fs::write(dir.path().join(format!("{stem}_labels.txt")), labels).unwrap();
        }
        if let Some(audio) = audio {
            std::fs::write(dir.path().join(format!("{stem}_audio.txt")), audio).unwrap();
        }
        load(dir.path()).unwrap_err().to_string()
    }

    /// Split stem, replacement labels and audio files, expected
    /// `file:line:` and expected message.
    type ErrorCase = (
        &'static str,
        Option<String>,
        Option<String>,
        &'static str,
        &'static str,
    );

    #[test]
    fn every_error_names_file_line_and_clip() {
        let two = format!("{}{}", plain("v_1", 1.0), plain("v_2", 2.0));
        let cases: Vec<ErrorCase> = vec![
            // A clip in the labels file without audio.
            (
                "train",
                Some("v_1.mp4 0 1 1 0 0 1 f 1.5\nv_2.mp4 1 0 0 0 0 0 m 2.0\nv_9.mp4 1 0 0 0 0 0 m 2\n".into()),
                None,
                "train_labels.txt:3:",
                "clip v_9 has no row in",
            ),
            // Audio without a labels row.
            (
                "dev",
                None,
                Some(format!("{}{}", plain("w_7", 3.0), plain("w_8", 3.0))),
                "dev_audio.txt:2:",
                "clip w_8 has no row in",
            ),
            // Duplicates in one file.
            (
                "train",
                Some("v_1.mp4 0 1 1 0 0 1 f 1.5\nv_2.mp4 1 0 0 0 0 0 m 2.0\nv_1.mp4 0 0 0 0 0 0 f 1\n".into()),
                None,
                "train_labels.txt:3:",
                "duplicate utterance v_1 (first seen on line 1)",
            ),
            (
                "train",
                None,
                Some(format!("{two}{}", plain("v_2", 9.0))),
                "train_audio.txt:3:",
                "duplicate utterance v_2 (first seen on line 2)",
            ),
            // The same clip in two splits.
            (
                "test",
                Some("x_3.mp4 0 0 0 0 0 0 f 3\nv_2.mp4 0 0 0 0 0 0 f 3\n".into()),
                Some(format!("{}{}", plain("x_3", 4.0), plain("v_2", 4.0))),
                "test_labels.txt:2:",
                "clip v_2 is also in",
            ),
            // Column counts.
            (
                "dev",
                Some("w_7.mp4 0 0 0 1 0 0 m\n".into()),
                None,
                "dev_labels.txt:1:",
                "clip w_7: 8 columns, expected 9",
            ),
            (
                "dev",
                None,
                Some(format!("w_7\t{}\n", vec!["1"; 147].join(" "))),
                "dev_audio.txt:1:",
                "clip w_7: 147 values, expected 148",
            ),
            // Labels other than 0/1.
            (
                "test",
                Some("x_3.mp4 0 0 2 0 0 0 f 3.25\n".into()),
                None,
                "test_labels.txt:1:",
                "clip x_3: fear is \"2\", expected 0 or 1",
            ),
            (
                "test",
                Some("\nx_3.mp4 0 0 0 0 0 yes f 3.25\n".into()),
                None,
                "test_labels.txt:2:",
                "clip x_3: surprise is \"yes\"",
            ),
            // Unparsable numbers.
            (
                "train",
                None,
                Some(format!(
                    "{}{}",
                    plain("v_1", 1.0),
                    audio_line("v_2", |j| if j == 5 { "1.2.3".into() } else { "0".into() })
                )),
                "train_audio.txt:2:",
                "clip v_2: value \"1.2.3\" in column 5",
            ),
            (
                "train",
                Some("v_1.mp4 0 1 1 0 0 1 f high\nv_2.mp4 1 0 0 0 0 0 m 2.0\n".into()),
                None,
                "train_labels.txt:1:",
                "clip v_1: valence \"high\" is not a number",
            ),
        ];
        for (stem, labels, audio, at, what) in cases {
            let err = error_with(stem, labels.as_deref(), audio.as_deref());
            assert!(err.contains(at) && err.contains(what), "{at} {what}: {err}");
        }
        let dir = valid_dir();
        std::fs::remove_file(dir.path().join("dev_audio.txt")).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("dev_audio.txt"), "{err}");
    }

    #[test]
    fn non_finite_values_take_the_training_mean_and_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        // Column 3: train has 1, 3 and a NaN → mean 2; the dev clip's 100
        // must not reach the mean.
        let with = |id: &str, col3: &str, col9: &str| {
            audio_line(id, |j| match j {
                3 => col3.into(),
                9 => col9.into(),
                _ => "0.5".into(),
            })
        };
        write(
            dir.path(),
            "train",
            "a_1.mp4 1 0 0 0 0 0 m 1\na_2.mp4 0 1 0 0 0 0 m 1\na_3.mp4 0 0 1 0 0 0 f 1\n",
            &format!(
                "{}{}{}",
                with("a_1", "1", "4"),
                with("a_2", "3", "nan"),
                with("a_3", "NaN", "-8")
            ),
        );
        write(
            dir.path(),
            "dev",
            "b_1.mp4 0 0 0 1 0 0 m 1\nb_2.mp4 0 0 0 1 0 0 m 1\n",
            &format!(
                "{}{}",
                with("b_1", "100", "100"),
                with("b_2", "-inf", "inf")
            ),
        );
        write(
            dir.path(),
            "test",
            "c_1.mp4 0 0 0 0 1 0 f 1\n",
            &with("c_1", "5", "1e39"),
        );
        let (corpus, report) = load_with_report(dir.path()).unwrap();
        let imputed = |clip: &str, split, columns: &[usize]| Imputation {
            clip: clip.into(),
            split,
            columns: columns.to_vec(),
        };
        assert_eq!(
            report.imputed,
            vec![
                imputed("a_2", Split::Train, &[9]),
                imputed("a_3", Split::Train, &[3]),
                imputed("b_2", Split::Valid, &[3, 9]),
                imputed("c_1", Split::Test, &[9]),
            ],
            "f32 overflow (1e39) counts as non-finite"
        );
        assert_eq!(report.values_imputed(), 5);
        let audio = |split, k: usize| {
            corpus.split(split)[k].utterances[0].features[&Modality::Audio]
                .data
                .clone()
        };
        assert_eq!(audio(Split::Train, 2)[3], 2.0);
        assert_eq!(audio(Split::Train, 1)[9], -2.0);
        assert_eq!(
            (audio(Split::Valid, 1)[3], audio(Split::Valid, 1)[9]),
            (2.0, -2.0)
        );
        assert_eq!(audio(Split::Valid, 0)[3], 100.0, "finite values stay");
        assert_eq!(audio(Split::Test, 0)[9], -2.0);

        // A column without any finite training value cannot be imputed.
        write(
            dir.path(),
            "train",
            "a_1.mp4 1 0 0 0 0 0 m 1\n",
            &with("a_1", "nan", "1"),
        );
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("train_audio.txt") && err.contains("column 3") && err.contains("a_1"),
            "{err}"
        );
    }

    #[test]
    fn shared_release_loads_with_the_documented_counts_and_prior() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/elderreact");
        if !dir.join("train_labels.txt").exists() {
            eprintln!("skipping: ElderReact not found at {}", dir.display());
            return;
        }
        let (corpus, report) = load_with_report(&dir).unwrap();
        let counts: Vec<usize> = Split::ALL
            .iter()
            .map(|&s| corpus.num_utterances(s))
            .collect();
        assert_eq!(counts, [615, 355, 353]);
        assert_eq!(corpus.labels.num_classes(), 6);
        for d in corpus.splits.values().flatten() {
            let f = &d.utterances[0].features[&Modality::Audio];
            assert_eq!((f.frames, f.dim), (1, AUDIO_DIM));
            assert_eq!(f.first_non_finite(), None, "{}", d.id);
        }
        assert_eq!(
            report.imputed,
            vec![Imputation {
                clip: "rammstein_30".into(),
                split: Split::Test,
                columns: vec![7, 81],
            }],
            "the module doc states what the release needs"
        );
        let mut positives = [0usize; 6];
        for d in corpus.split(Split::Train) {
            let Some(Label::Multi(bits)) = &d.utterances[0].label else {
                panic!("{} has no multi-label", d.id)
            };
            for (p, &b) in positives.iter_mut().zip(bits) {
                *p += usize::from(b);
            }
        }
        let prior = |k: usize| positives[k] as f64 / 615.0;
        assert!((prior(0) - 0.304).abs() < 0.002, "anger {}", prior(0));
        assert!((prior(3) - 0.545).abs() < 0.002, "happiness {}", prior(3));
    }
}
