//! How analyses are written — a readable table, JSON Lines or CSV — for
//! `mmer analyze` and whatever else serves [`Analysis`] results.

use std::io::Write;

use mmer_train::ClassProbabilities;

use crate::analyze::{Analysis, Explanation, TurnEmotion, WordWeight};
use crate::error::Result;

/// Output formats of an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AnalysisFormat {
    /// One row per turn: time, speaker, emotion and confidence, what each
    /// modality said, transcript.
    Table,
    /// One JSON object per turn (JSON Lines) with the file, fused and
    /// per-modality probabilities.
    Jsonl,
    /// CSV, one row per turn: file, turn, times, speaker, emotion,
    /// confidence, one `p_<class>` column per class, each modality's top
    /// class, faces found, text.
    Csv,
}

/// The CSV header for analyses over `classes` (nothing for the other
/// formats).
///
/// # Errors
/// A failed write.
pub fn write_header(out: &mut dyn Write, format: AnalysisFormat, classes: &[String]) -> Result<()> {
    if format != AnalysisFormat::Csv {
        return Ok(());
    }
    let mut header: Vec<String> = [
        "file",
        "turn",
        "start_s",
        "end_s",
        "speaker",
        "emotion",
        "confidence",
    ]
    .map(String::from)
    .to_vec();
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    header.extend(
        [
            "text_emotion",
            "audio_emotion",
            "face_emotion",
            "faces",
            "text",
        ]
        .map(String::from),
    );
    writeln!(out, "{}", header.join(","))?;
    Ok(())
}

/// The strongest words (by |weight|, at most 5) and each modality's
/// contribution, on one line.
pub fn explanation_line(x: &Explanation) -> String {
    let mut words: Vec<&WordWeight> = x.words.iter().collect();
    words.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    words.dedup_by(|a, b| a.word == b.word);
    let words: Vec<String> = words
        .iter()
        .take(5)
        .map(|w| format!("{} {:+.3}", w.word, w.weight))
        .collect();
    let modalities: Vec<String> = x
        .modalities
        .iter()
        .map(|m| format!("{} {:+.2}", m.modality, m.contribution))
        .collect();
    format!(
        "words for {} [{}] (LIME, {} samples, R² {:.2}); modalities [{}]",
        x.class,
        words.join(", "),
        x.samples,
        x.fit_r2,
        modalities.join(", ")
    )
}

/// The top class of a distribution, or `-`.
fn top(p: Option<&ClassProbabilities>) -> String {
    p.and_then(|p| p.0.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
        .map_or_else(|| "-".to_string(), |(c, v)| format!("{c} {v:.2}"))
}

/// Writes the turns of `a` to `out` in `format` (CSV without its header:
/// [`write_header`] writes it once, before the first analysis).
///
/// # Errors
/// A failed write.
pub fn write_analysis(out: &mut dyn Write, a: &Analysis, format: AnalysisFormat) -> Result<()> {
    let name = a.file.file_name().map_or_else(
        || a.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match format {
        AnalysisFormat::Jsonl => {
            for turn in &a.turns {
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    file: &'a std::path::Path,
                    #[serde(flatten)]
                    turn: &'a TurnEmotion,
                }
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&Row {
                        file: &a.file,
                        turn
                    })?
                )?;
            }
        }
        AnalysisFormat::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            for t in &a.turns {
                let mut row = vec![
                    a.file.display().to_string(),
                    t.turn.to_string(),
                    format!("{:.2}", t.start_s),
                    format!("{:.2}", t.end_s),
                    t.speaker.clone(),
                    t.emotion.clone(),
                    format!("{:.4}", t.confidence),
                ];
                row.extend(t.probabilities.0.iter().map(|(_, p)| format!("{p:.4}")));
                let e = &t.evidence;
                row.extend([
                    top(e.text.as_ref()),
                    top(e.audio.as_ref()),
                    top(e.face.as_ref()),
                ]);
                row.push(e.faces.to_string());
                row.push(t.text.clone());
                w.write_record(&row)?;
            }
            w.flush()?;
        }
        AnalysisFormat::Table => {
            writeln!(
                out,
                "{name}: {:.1} s, {} turns, {} speakers ({:?} audio)",
                a.duration_s,
                a.turns.len(),
                a.speakers,
                a.audio
            )?;
            if a.turns.is_empty() {
                writeln!(out, "  no speech recognised")?;
            }
            for t in &a.turns {
                let e = &t.evidence;
                writeln!(
                    out,
                    "  {:>6.2}-{:<6.2} {:<3} {:<9} {:.2}  [text {} | voice {} | face {}]  {}",
                    t.start_s,
                    t.end_s,
                    t.speaker,
                    t.emotion,
                    t.confidence,
                    top(e.text.as_ref()),
                    top(e.audio.as_ref()),
                    if e.face.is_some() {
                        format!(
                            "{} ({}/{} frames)",
                            top(e.face.as_ref()),
                            e.faces,
                            e.keyframes
                        )
                    } else {
                        "-".to_string()
                    },
                    t.text
                )?;
                if let Some(x) = &t.explanation {
                    writeln!(out, "{:>24}{}", "why: ", explanation_line(x))?;
                }
            }
        }
    }
    Ok(())
}
