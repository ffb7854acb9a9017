//! The body of `POST /v1/emotions`, read into [`Dialogue`]s.
//!
//! ```json
//! {"turns": [
//!   {"dialogue": "cafe", "turn": 0, "speaker": "Ana", "text": "You came!"},
//!   {"dialogue": "cafe", "turn": 1, "speaker": "Ben", "text": "I said I would.", "label": "neutral"}
//! ]}
//! ```
//!
//! Each turn is a record of a conversation file (`mmer_data::conversation`):
//! `dialogue`, `turn`, `speaker`, `text` and an optional `label`, read with
//! the same rules and answered with the same messages, a turn named by its
//! place in the list (`turns[3]`) where a file names its line. Records
//! group into dialogues in order of first appearance and sort by `turn`.
//!
//! The record checks, the label rules and the grouping into dialogues are
//! `mmer_data`'s own ([`TurnCollector`]); only where a fault is named
//! differs (`turns[i]`, not a file's line). The media keys of the file
//! format (`audio`, `video`, `start`, `end`) are refused: the server never
//! opens a path a client names.

use mmer_core::{Dialogue, LabelSpace};
use mmer_data::conversation::{RawLabel, RecordFault, TurnCollector};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// Keys of the conversation format that name files on the server's disk.
const MEDIA_KEYS: [&str; 4] = ["audio", "video", "start", "end"];

/// One turn as the client wrote it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnRecord {
    dialogue: String,
    turn: u64,
    speaker: String,
    text: String,
    #[serde(default)]
    label: Option<RawLabel>,
}

/// The dialogues of a request body, with their number of turns.
///
/// # Errors
/// [`ApiError`] 422 for a body that is not the documented JSON, a turn
/// that breaks a rule of the conversation format (named `turns[i]`, with
/// its dialogue and turn where known), or no turns; 413 for more than
/// `max_turns` turns.
pub fn parse(
    body: &[u8],
    labels: &LabelSpace,
    max_turns: usize,
) -> Result<Vec<Dialogue>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("invalid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::validation(format!(
            "expected a JSON object {{\"turns\": [...]}}, found {}",
            kind(&value)
        )));
    };
    if let Some(key) = object.keys().find(|k| *k != "turns") {
        return Err(ApiError::validation(format!(
            "unknown key {key:?}: the body is {{\"turns\": [...]}}"
        )));
    }
    let turns = match object.remove("turns") {
        Some(Value::Array(turns)) => turns,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "\"turns\" must be a list of turns, found {}",
                kind(&other)
            )));
        }
        None => {
            return Err(ApiError::validation(
                "missing \"turns\": the body is {\"turns\": [...]}",
            ));
        }
    };
    if turns.len() > max_turns {
        return Err(ApiError::too_large(format!(
            "{} turns, more than the {max_turns} this server takes in one request (--max-turns)",
            turns.len()
        )));
    }
    if turns.is_empty() {
        return Err(ApiError::validation("no turns: \"turns\" is empty"));
    }
    let records = turns
        .into_iter()
        .enumerate()
        .map(|(i, value)| record(i, value))
        .collect::<Result<Vec<_>, _>>()?;
    assemble(records, labels)
}

/// What a JSON value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

/// Turn `i` of the list as a record, or an error naming it.
fn record(i: usize, value: Value) -> Result<TurnRecord, ApiError> {
    let at = |msg: String| ApiError::validation(format!("turns[{i}]: {msg}"));
    if !value.is_object() {
        return Err(at(format!(
            "expected a JSON object (one turn), found {}",
            kind(&value)
        )));
    }
    // Name the dialogue and turn in the message when the object has them.
    let whose = match (
        value.get("dialogue").and_then(|d| d.as_str()),
        value.get("turn"),
    ) {
        (Some(d), Some(t)) => format!("dialogue {d:?} turn {t}: "),
        (Some(d), None) => format!("dialogue {d:?}: "),
        _ => String::new(),
    };
    if let Some(key) = MEDIA_KEYS.iter().find(|k| value.get(**k).is_some()) {
        return Err(at(format!(
            "{whose}`{key}` is not accepted here: the server never opens a file a request names; send the text"
        )));
    }
    serde_json::from_value(value).map_err(|e| at(format!("{whose}{e}")))
}

/// The records as dialogues: validated as a conversation file's are.
fn assemble(records: Vec<TurnRecord>, labels: &LabelSpace) -> Result<Vec<Dialogue>, ApiError> {
    let mut turns = TurnCollector::new(labels);
    for (i, r) in records.into_iter().enumerate() {
        turns
            .push(i, &r.dialogue, r.turn, &r.speaker, r.text, r.label.as_ref())
            .map_err(|fault| {
                ApiError::validation(format!("turns[{i}]: {}", fault_message(fault, labels)))
            })?;
    }
    Ok(turns.finish())
}

/// A turn's fault in the words a conversation file's error uses.
fn fault_message(fault: RecordFault<usize>, labels: &LabelSpace) -> String {
    let known = labels.classes.join(", ");
    match fault {
        RecordFault::EmptyDialogue { turn } => format!("turn {turn}: empty dialogue id"),
        RecordFault::EmptySpeaker { dialogue, turn } => {
            format!("dialogue {dialogue:?} turn {turn}: empty speaker")
        }
        RecordFault::EmptyText { id } => format!("utterance {id} has empty text"),
        RecordFault::Duplicate { id, first } => {
            format!("duplicate utterance {id} (first seen at turns[{first}])")
        }
        RecordFault::UnknownLabel { id, label } => {
            format!("utterance {id}: unknown label {label:?} (known: {known})")
        }
        RecordFault::LabelList { id, label } => format!(
            "utterance {id}: label {label} lists several classes, but the label set is single-label: give one of {known}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;
    use mmer_core::Label;

    fn labels(multi: bool) -> LabelSpace {
        LabelSpace::declared(
            "mine",
            vec!["calm".into(), "tense".into(), "happy".into()],
            multi,
        )
        .unwrap()
    }

    fn parse_str(body: &str) -> Result<Vec<Dialogue>, ApiError> {
        parse(body.as_bytes(), &labels(false), 8)
    }

    fn error(body: &str) -> ApiError {
        parse_str(body).unwrap_err()
    }

    #[test]
    fn turns_group_by_dialogue_in_first_seen_order_and_sort_by_turn() {
        let dialogues = parse_str(
            r#"{"turns": [
                {"dialogue": " b ", "turn": 7, "speaker": "A", "text": "later", "label": "Tense"},
                {"dialogue": "a", "turn": 0, "speaker": " B ", "text": "hi"},
                {"dialogue": "b", "turn": 2, "speaker": "C", "text": "first", "label": null}
            ]}"#,
        )
        .unwrap();
        assert_eq!(dialogues.len(), 2);
        let b = &dialogues[0];
        assert_eq!(b.id, "b");
        let ids: Vec<_> = b.utterances.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["b_utt2", "b_utt7"]);
        assert_eq!(b.utterances[1].index, 1);
        assert_eq!(b.utterances[1].turn, Some(7));
        assert_eq!(b.utterances[1].label, Some(Label::Single(1)));
        assert_eq!(b.utterances[0].label, None);
        assert_eq!(dialogues[1].utterances[0].speaker, "B");
        assert_eq!(dialogues[1].utterances[0].text.as_deref(), Some("hi"));
    }

    #[test]
    fn bad_bodies_and_turns_are_422_naming_the_turn() {
        for (body, wanted) in [
            ("{\"turns\": [", "invalid JSON"),
            (
                "[]",
                "expected a JSON object {\"turns\": [...]}, found a list",
            ),
            ("{\"turn\": []}", "unknown key \"turn\""),
            ("{}", "missing \"turns\""),
            (
                "{\"turns\": {}}",
                "\"turns\" must be a list of turns, found an object",
            ),
            ("{\"turns\": []}", "no turns"),
            (
                "{\"turns\": [3]}",
                "turns[0]: expected a JSON object (one turn), found a number",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": "x", "speaker": "A", "text": "t"}]}"#,
                "turns[0]: dialogue \"d\" turn \"x\": invalid type: string \"x\", expected u64",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "lable": "calm"}]}"#,
                "turns[0]: dialogue \"d\" turn 0: unknown field `lable`",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A"}]}"#,
                "turns[0]: dialogue \"d\" turn 0: missing field `text`",
            ),
            (
                r#"{"turns": [{"dialogue": " ", "turn": 4, "speaker": "A", "text": "t"}]}"#,
                "turns[0]: turn 4: empty dialogue id",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 4, "speaker": "", "text": "t"}]}"#,
                "turns[0]: dialogue \"d\" turn 4: empty speaker",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t"},
                              {"dialogue": "d", "turn": 1, "speaker": "A", "text": " \n"}]}"#,
                "turns[1]: utterance d_utt1 has empty text",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t"},
                              {"dialogue": "d", "turn": 0, "speaker": "B", "text": "u"}]}"#,
                "turns[1]: duplicate utterance d_utt0 (first seen at turns[0])",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "label": "joy"}]}"#,
                "turns[0]: utterance d_utt0: unknown label \"joy\" (known: calm, tense, happy)",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "label": ["calm"]}]}"#,
                "turns[0]: utterance d_utt0: label [\"calm\"] lists several classes, but the label set is single-label",
            ),
            (
                r#"{"turns": [{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "label": 3}]}"#,
                "turns[0]: dialogue \"d\" turn 0: invalid type: integer `3`, expected a class name or a list of class names",
            ),
        ] {
            let err = error(body);
            assert_eq!(err.error_type, ErrorType::Validation, "{body}: {err}");
            assert!(err.error.contains(wanted), "{body}: {}", err.error);
        }
    }

    #[test]
    fn media_keys_are_refused_so_no_client_path_is_opened() {
        for key in MEDIA_KEYS {
            let body = format!(
                r#"{{"turns": [{{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "{key}": "/etc/passwd"}}]}}"#
            );
            let err = error(&body);
            assert_eq!(err.error_type, ErrorType::Validation);
            assert!(
                err.error.contains(&format!("`{key}` is not accepted here")),
                "{}",
                err.error
            );
        }
    }

    #[test]
    fn too_many_turns_is_413() {
        let turn = r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "t"}"#;
        let body = format!("{{\"turns\": [{}]}}", [turn; 9].join(","));
        let err = error(&body);
        assert_eq!(err.error_type, ErrorType::PayloadTooLarge);
        assert!(
            err.error.contains("9 turns, more than the 8"),
            "{}",
            err.error
        );
    }

    #[test]
    fn multi_label_turns_take_lists_and_the_empty_list_is_no_emotion() {
        let body = r#"{"turns": [
            {"dialogue": "d", "turn": 0, "speaker": "A", "text": "t", "label": ["happy", "calm"]},
            {"dialogue": "d", "turn": 1, "speaker": "A", "text": "t", "label": "tense; happy"},
            {"dialogue": "d", "turn": 2, "speaker": "A", "text": "t", "label": []},
            {"dialogue": "d", "turn": 3, "speaker": "A", "text": "t", "label": ""}
        ]}"#;
        let dialogues = parse(body.as_bytes(), &labels(true), 8).unwrap();
        let got: Vec<_> = dialogues[0]
            .utterances
            .iter()
            .map(|u| u.label.clone())
            .collect();
        assert_eq!(
            got,
            [
                Some(Label::Multi(vec![true, false, true])),
                Some(Label::Multi(vec![false, true, true])),
                Some(Label::Multi(vec![false; 3])),
                None,
            ]
        );
    }
}
