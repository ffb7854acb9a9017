//! `mmer analyze --report`: analyses as one self-contained HTML page
//! ([`analysis_report`]); `mmer eval --report`: a trained run evaluated on
//! one split, as another ([`run_report`]: headline metrics, per-class F1
//! bars, confusion matrices and each seed's learning curves).
//!
//! The page needs nothing but itself: the styles are inline CSS, the charts
//! inline SVG, and each face crop is a `data:` URI of an 8-bit BMP encoded
//! here. No script, font, stylesheet or image is fetched, so the file can be
//! mailed or archived and still opens the same. Per recording it shows
//! - a header: the file, its duration, speakers, turns, audio track and the
//!   seconds each stage took;
//! - a timeline: one bar per turn on a lane per speaker, coloured by the
//!   fused emotion and paler when less confident; hovering a bar shows the
//!   transcript and clicking it jumps to the turn's card;
//! - the emotion mix of each speaker: their speaking time per fused emotion;
//! - a card per turn: time, speaker, fused emotion and confidence, the
//!   transcript (each word shaded by its LIME weight when the turn was
//!   explained), the face the expression model read, the fused and
//!   per-modality (text, voice, face) distributions and, when explained, each
//!   modality's drop-one contribution, the face model per keyframe and the
//!   voice model per stretch of audio.
//!
//! Colours: one per class from the Okabe–Ito palette (Okabe & Ito 2008,
//! *Color Universal Design*), chosen to stay distinguishable under the common
//! colour-vision deficiencies; word weights use a blue–orange diverging pair
//! for the same reason (never red against green).

use std::fmt::Write as _;
use std::path::Path;

use mmer_eval::Aggregate;
use mmer_media::AudioState;
use mmer_train::ClassProbabilities;
use mmer_train::trainer::EpochRecord;
use serde::Deserialize;

use crate::analyze::{Analysis, Explanation, FaceThumbnail, TurnEmotion, WordWeight};
use crate::error::{Result, bail, ensure};
use crate::evaluate::RunEvaluation;

/// `write!` into a `String`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// The report of `analyses` (one section per recording) as a complete HTML
/// document.
///
/// `classes` is the label space in display order (the analyser's
/// [`classes`](crate::analyze::Analyzer::classes)); it fixes the order of
/// the legend and of the probability rows and, with the class names, each
/// class's colour. Classes met in the analyses but missing from `classes`
/// are appended, so an empty slice also works.
pub fn analysis_report(analyses: &[Analysis], classes: &[String]) -> String {
    let palette = Palette::new(analyses, classes);
    let mut out = String::with_capacity(32 * 1024 + analyses.len() * 64 * 1024);
    let title = match analyses {
        [one] => format!("Emotions in {}", file_name(one)),
        _ => format!("Emotions in {} recordings", analyses.len()),
    };
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"mmer analyze\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header class=\"page\">\n\
         <h1>{}</h1>\n<p class=\"lead\">Each turn's emotion is fused from what its words \
         (text model), its voice (speech model) and the faces in its frames (expression model) \
         said. Hover a bar in a timeline for its transcript; click it for the turn's card.</p>\n",
        esc(&title),
        esc(&title),
    );
    if analyses.len() > 1 {
        out.push_str("<nav><ol>");
        for (index, analysis) in analyses.iter().enumerate() {
            put!(
                out,
                "<li><a href=\"#f{index}\">{}</a> <span class=\"muted\">{} turns, {}</span></li>",
                esc(&file_name(analysis)),
                analysis.turns.len(),
                clock(analysis.duration_s, false),
            );
        }
        out.push_str("</ol></nav>\n");
    }
    out.push_str("</header>\n<main>\n");
    if analyses.is_empty() {
        out.push_str("<p class=\"empty\">No recording was analysed.</p>\n");
    }
    for (index, analysis) in analyses.iter().enumerate() {
        file_section(&mut out, &format!("f{index}"), analysis, &palette);
    }
    out.push_str(
        "</main>\n<footer>Made by <code>mmer analyze --report</code>. Class colours: \
         Okabe–Ito palette; word shading: blue pushed towards the explained emotion, \
         orange away from it.</footer>\n</body>\n</html>\n",
    );
    out
}

/// The page's style sheet.
const STYLE: &str = "
:root{--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#f6f8fa;--towards:33,102,172;--away:230,97,1}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:var(--ink);background:#fff}
header.page,main,footer{max-width:1180px;margin:0 auto;padding:0 24px}
header.page{padding-top:20px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:21px;margin:0;word-break:break-all}
h3{font-size:16px;margin:22px 0 8px}
h4{font-size:14px;margin:0 0 6px}
.lead{color:var(--muted);margin:0 0 8px;max-width:80ch}
.muted,.path{color:var(--muted)}
.path{margin:2px 0 10px;font-size:13px;word-break:break-all}
nav ol{margin:4px 0 0;padding-left:22px}
section.file{border-top:3px solid var(--ink);margin-top:26px;padding-top:14px}
.facts{display:flex;flex-wrap:wrap;gap:8px 28px;margin:0}
.facts div{min-width:90px}
.facts dt{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:0;font-size:18px;font-weight:600}
.facts dd .muted{font-size:13px;font-weight:400}
.stages{font-size:13px;color:var(--muted);margin:8px 0 0}
.empty{padding:14px;background:var(--bg);border-radius:6px;color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;margin:6px 0}
.legend span{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-1px}
.conf{width:60px;height:12px;border-radius:3px;background:linear-gradient(90deg,rgba(31,35,40,.25),rgba(31,35,40,1))}
svg{display:block}
svg text{font:12px system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;fill:var(--muted)}
svg .who{font-weight:600;fill:var(--ink)}
svg a:hover rect{stroke:var(--ink);stroke-width:1.5}
.timeline{width:100%;height:auto}
.mix{display:grid;grid-template-columns:max-content 1fr max-content;gap:6px 12px;align-items:center;font-size:13px}
.mix .who{font-weight:600}
.stack{display:flex;height:22px;border-radius:4px;overflow:hidden;background:var(--bg)}
.stack span{display:flex;align-items:center;justify-content:center;font-size:11px;white-space:nowrap;overflow:hidden}
article.turn{border:1px solid var(--line);border-left:6px solid;border-radius:6px;margin:10px 0;padding:10px 14px;scroll-margin-top:10px}
article.turn:target{box-shadow:0 0 0 3px rgba(var(--towards),.35)}
article.turn>header{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px;font-size:13px;color:var(--muted)}
.tno{font-weight:700;color:var(--ink);text-decoration:none}
.spk{font-weight:600;color:var(--ink);background:var(--bg);border:1px solid var(--line);border-radius:10px;padding:0 8px}
.emo{font-weight:700;border-radius:4px;padding:1px 8px;font-size:14px}
.cols{display:flex;flex-wrap:wrap;gap:14px 24px;margin-top:8px}
.main{flex:1 1 420px;min-width:0}
.side{flex:0 1 470px}
.face{float:left;margin:2px 14px 6px 0;text-align:center;font-size:11px;color:var(--muted)}
.face img{display:block;image-rendering:pixelated;border-radius:4px;border:1px solid var(--line)}
.text{font-size:17px;line-height:1.7;margin:0 0 8px;overflow-wrap:anywhere}
.text mark{color:inherit;border-radius:3px;padding:1px 1px}
.text mark.towards{background:rgba(var(--towards),var(--a));box-shadow:inset 0 -2px rgb(var(--towards))}
.text mark.away{background:rgba(var(--away),var(--a));box-shadow:inset 0 -2px rgb(var(--away))}
.key{font-size:12px;color:var(--muted)}
.key .towards,.key .away{padding:0 5px;border-radius:3px}
.key .towards{background:rgba(var(--towards),.35)}
.key .away{background:rgba(var(--away),.35)}
.why{clear:both;border-top:1px dashed var(--line);padding-top:8px;margin-top:8px;font-size:13px}
.why>div{margin:6px 0 10px}
.rows{display:grid;grid-template-columns:max-content 200px max-content;gap:3px 10px;align-items:center}
.diverge{display:flex;height:12px;background:linear-gradient(90deg,transparent calc(50% - .5px),var(--muted) calc(50% - .5px),var(--muted) calc(50% + .5px),transparent calc(50% + .5px)),var(--bg);border-radius:2px}
.diverge>span{flex:1 1 50%;display:flex}
.diverge>span:first-child{justify-content:flex-end}
.diverge i{display:block;height:100%}
.diverge i.towards{background:rgb(var(--towards))}
.diverge i.away{background:rgb(var(--away))}
.num{font-variant-numeric:tabular-nums}
.small{width:100%;max-width:460px;height:auto}
table.probs{border-collapse:collapse;font-size:12px;width:100%;table-layout:fixed;line-height:1.3}
.probs thead th:first-child{width:92px}
.probs th{font-weight:600;text-align:left;padding:2px 6px 2px 0;white-space:nowrap}
.probs thead th{color:var(--muted);font-weight:600}
.probs td{padding:1px 6px 1px 0;white-space:nowrap}
.probs tr.top th{font-weight:800}
.probs .na{color:var(--muted)}
.probs tr.top td .num{font-weight:700}
.track{display:inline-block;width:calc(100% - 38px);height:9px;background:var(--bg);border-radius:2px;vertical-align:middle;margin-right:4px;overflow:hidden}
.track i{display:block;height:100%}
.note{font-size:12px;color:var(--muted);margin:4px 0 0}
footer{color:var(--muted);font-size:12px;margin-top:30px;padding-bottom:30px}
";

/// One colour per class, fixed for the whole report.
struct Palette {
    /// Class name and its colour, in display order.
    classes: Vec<(String, &'static str)>,
}

/// Okabe–Ito colours (Okabe & Ito 2008), by the emotion they stand for.
const OKABE_ITO: [(&[&str], &str); 7] = [
    (&["anger", "angry"], "#D55E00"),            // vermillion
    (&["disgust", "disgusted"], "#009E73"),      // bluish green
    (&["fear", "fearful"], "#CC79A7"),           // reddish purple
    (&["joy", "happiness", "happy"], "#E69F00"), // orange
    (&["sadness", "sad"], "#0072B2"),            // blue
    (&["surprise", "surprised"], "#56B4E9"),     // sky blue
    (&["neutral"], "#999999"),                   // grey
];

/// Colours for classes the list above does not name: Okabe–Ito's yellow,
/// then Paul Tol's colour-blind-safe "muted" scheme.
const SPARE: [&str; 6] = [
    "#F0E442", "#882255", "#44AA99", "#332288", "#999933", "#AA4499",
];

impl Palette {
    fn new(analyses: &[Analysis], classes: &[String]) -> Self {
        let mut names: Vec<String> = Vec::new();
        let met = analyses.iter().flat_map(|a| &a.turns).flat_map(|turn| {
            std::iter::once(&turn.emotion).chain(turn.probabilities.0.iter().map(|(n, _)| n))
        });
        for name in classes.iter().chain(met) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Self::of_names(names)
    }

    /// Colours for exactly `names`, in that order.
    fn of_names(names: Vec<String>) -> Self {
        let mut spare = 0;
        let classes = names
            .into_iter()
            .map(|name| {
                let lower = name.to_lowercase();
                let known = OKABE_ITO
                    .iter()
                    .find(|(names, _)| names.contains(&lower.as_str()))
                    .map(|(_, colour)| *colour);
                let colour = known.unwrap_or_else(|| {
                    spare += 1;
                    SPARE[(spare - 1) % SPARE.len()]
                });
                (name, colour)
            })
            .collect();
        Self { classes }
    }

    fn colour(&self, class: &str) -> &'static str {
        self.classes
            .iter()
            .find(|(name, _)| name == class)
            .map_or("#777777", |(_, colour)| colour)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.classes.iter().map(|(name, _)| name.as_str())
    }
}

/// One recording's section.
fn file_section(out: &mut String, id: &str, analysis: &Analysis, palette: &Palette) {
    put!(
        out,
        "<section class=\"file\" id=\"{id}\">\n<h2>{}</h2>\n<p class=\"path\">{}</p>\n",
        esc(&file_name(analysis)),
        esc(&analysis.file.display().to_string()),
    );
    facts(out, analysis);
    if analysis.turns.is_empty() {
        out.push_str(
            "<p class=\"empty\">No speech was recognised in this recording, so it has no \
             turns to show.</p>\n</section>\n",
        );
        return;
    }
    let speakers = speaker_order(&analysis.turns);
    out.push_str("<h3>Timeline</h3>\n");
    legend(out, palette);
    timeline(out, id, analysis, &speakers, palette);
    out.push_str("<h3>Emotion mix per speaker</h3>\n");
    speaker_mix(out, &analysis.turns, &speakers, palette);
    put!(out, "<h3>Turns</h3>\n");
    for turn in &analysis.turns {
        card(out, id, turn, palette);
    }
    out.push_str("</section>\n");
}

/// The header facts and the seconds per stage.
fn facts(out: &mut String, analysis: &Analysis) {
    let audio = match analysis.audio {
        AudioState::Absent => "none",
        AudioState::Empty => "empty",
        AudioState::Silent => "silent",
        AudioState::Present => "present",
    };
    let faces: usize = analysis.turns.iter().map(|t| t.evidence.faces).sum();
    let keyframes: usize = analysis.turns.iter().map(|t| t.evidence.keyframes).sum();
    put!(
        out,
        "<dl class=\"facts\"><div><dt>Duration</dt><dd>{}</dd></div>\
         <div><dt>Speakers</dt><dd>{}</dd></div><div><dt>Turns</dt><dd>{}</dd></div>\
         <div><dt>Audio</dt><dd>{audio}</dd></div>\
         <div><dt>Faces</dt><dd>{faces} <span class=\"muted\">in {keyframes} frames</span></dd></div></dl>\n",
        clock(analysis.duration_s, true),
        analysis.speakers,
        analysis.turns.len(),
    );
    let s = &analysis.seconds;
    let stages = [
        ("decode", s.decode_s),
        ("speech recognition", s.asr_s),
        ("speakers", s.speakers_s),
        ("text", s.text_s),
        ("voice", s.audio_s),
        ("faces", s.face_s),
        ("explanations", s.explain_s),
    ];
    let total: f64 = stages.iter().map(|(_, t)| t).sum();
    out.push_str("<p class=\"stages\">Seconds per stage: ");
    for (name, seconds) in stages {
        if name == "explanations" && seconds == 0.0 {
            continue;
        }
        put!(out, "{name} {seconds:.1} · ");
    }
    put!(out, "<strong>total {total:.1}</strong></p>\n");
}

/// The class colours, and what paler means.
fn legend(out: &mut String, palette: &Palette) {
    out.push_str("<div class=\"legend\">");
    for (name, colour) in &palette.classes {
        put!(
            out,
            "<span><i class=\"sw\" style=\"background:{colour}\"></i>{}</span>",
            esc(name)
        );
    }
    out.push_str(
        "<span class=\"muted\"><i class=\"sw conf\"></i>paler: less confident</span></div>\n",
    );
}

/// Speakers in lane order: `S1`, `S2`, … by number, then any other label
/// (`S?` last).
fn speaker_order(turns: &[TurnEmotion]) -> Vec<&str> {
    let mut speakers: Vec<&str> = Vec::new();
    for turn in turns {
        if !speakers.contains(&turn.speaker.as_str()) {
            speakers.push(&turn.speaker);
        }
    }
    let number = |s: &str| s.strip_prefix('S').and_then(|n| n.parse::<u64>().ok());
    speakers.sort_by_key(|s| (number(s).is_none(), number(s), s.to_string()));
    speakers
}

/// Geometry of the timeline, in SVG user units (the SVG scales to the page).
const TIMELINE_WIDTH: f64 = 1000.0;
const TIMELINE_LEFT: f64 = 56.0;
const TIMELINE_RIGHT: f64 = 14.0;
const LANE: f64 = 30.0;
const LANE_GAP: f64 = 8.0;
const AXIS: f64 = 22.0;

/// The conversation as bars on a lane per speaker.
fn timeline(out: &mut String, id: &str, analysis: &Analysis, speakers: &[&str], palette: &Palette) {
    let span = analysis
        .turns
        .iter()
        .map(|t| t.end_s)
        .fold(analysis.duration_s, f64::max)
        .max(1e-3);
    let plot = TIMELINE_WIDTH - TIMELINE_LEFT - TIMELINE_RIGHT;
    let x = |t: f64| TIMELINE_LEFT + finite(t).clamp(0.0, span) / span * plot;
    let axis_y = LANE_GAP + speakers.len() as f64 * (LANE + LANE_GAP);
    let height = axis_y + AXIS;
    put!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {TIMELINE_WIDTH} {height}\" role=\"img\" \
         aria-label=\"Timeline of {} turns by {} speakers\">\n",
        analysis.turns.len(),
        speakers.len(),
    );
    let lane_y = |lane: usize| LANE_GAP + lane as f64 * (LANE + LANE_GAP);
    for (lane, speaker) in speakers.iter().enumerate() {
        let y = lane_y(lane);
        put!(
            out,
            "<rect x=\"{TIMELINE_LEFT}\" y=\"{y}\" width=\"{plot}\" height=\"{LANE}\" fill=\"#f6f8fa\"/>\
             <text class=\"who\" x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
            TIMELINE_LEFT - 8.0,
            y + LANE / 2.0,
            esc(speaker),
        );
    }
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let tx = x(tick);
        put!(
            out,
            "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#d8dee4\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            LANE_GAP / 2.0,
            axis_y + 3.0,
            axis_y + 16.0,
            clock(tick, step < 1.0),
        );
        tick += step;
    }
    for turn in &analysis.turns {
        let lane = speakers
            .iter()
            .position(|s| *s == turn.speaker)
            .unwrap_or_default();
        let (x0, x1) = (x(turn.start_s), x(turn.end_s));
        let opacity = 0.25 + 0.75 * unit(turn.confidence);
        let colour = palette.colour(&turn.emotion);
        let (y, width) = (lane_y(lane), (x1 - x0).max(2.0));
        put!(
            out,
            "<a href=\"#{id}-t{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y}\" width=\"{width:.1}\" \
             height=\"{LANE}\" rx=\"3\" fill=\"{colour}\" fill-opacity=\"{opacity:.2}\"/>",
            turn.turn,
            esc(&format!(
                "#{} {} {}–{} · {} {}\n“{}”",
                turn.turn,
                turn.speaker,
                clock(turn.start_s, true),
                clock(turn.end_s, true),
                turn.emotion,
                percent(turn.confidence),
                turn.text.trim(),
            )),
        );
        // The emotion written on the bar when it fits (about 7 units a
        // character at 12 px).
        let long = format!("{} {}", turn.emotion, percent(turn.confidence));
        let fits = |label: &str| label.chars().count() as f64 * 7.0 + 10.0 <= width;
        let label = [long.as_str(), turn.emotion.as_str()]
            .into_iter()
            .find(|label| fits(label));
        if let Some(label) = label {
            // Pale bars keep dark text whatever the colour.
            let text = if opacity < 0.6 {
                "#1f2328"
            } else {
                ink(colour)
            };
            put!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" dominant-baseline=\"middle\" style=\"fill:{text}\">{}</text>",
                x0 + 6.0,
                y + LANE / 2.0,
                esc(label),
            );
        }
        out.push_str("</a>\n");
    }
    out.push_str("</svg>\n");
}

/// A tick spacing that gives at most a dozen ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 15] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0,
    ];
    STEPS
        .into_iter()
        .find(|step| span / step <= 12.0)
        .unwrap_or_else(|| (span / 12.0).ceil())
}

/// Each speaker's speaking time per fused emotion, as stacked bars (plus
/// everyone's, when there are several speakers).
fn speaker_mix(out: &mut String, turns: &[TurnEmotion], speakers: &[&str], palette: &Palette) {
    out.push_str("<div class=\"mix\">\n");
    let mut rows: Vec<(&str, Vec<&TurnEmotion>)> = speakers
        .iter()
        .map(|s| (*s, turns.iter().filter(|t| t.speaker == *s).collect()))
        .collect();
    if speakers.len() > 1 {
        rows.push(("all", turns.iter().collect()));
    }
    for (who, turns) in rows {
        let seconds = |t: &TurnEmotion| finite(t.end_s - t.start_s).max(0.0);
        let total: f64 = turns.iter().map(|t| seconds(t)).sum();
        // Turns without length (rare) fall back to counting turns.
        let weight = |t: &TurnEmotion| if total > 0.0 { seconds(t) } else { 1.0 };
        let denominator: f64 = turns.iter().map(|t| weight(t)).sum();
        put!(
            out,
            "<span class=\"who\">{}</span><div class=\"stack\">",
            esc(who)
        );
        for class in palette.names() {
            let of_class: Vec<&&TurnEmotion> =
                turns.iter().filter(|t| t.emotion == class).collect();
            if of_class.is_empty() {
                continue;
            }
            let share = of_class.iter().map(|t| weight(t)).sum::<f64>() / denominator;
            let class_seconds: f64 = of_class.iter().map(|t| seconds(t)).sum();
            let colour = palette.colour(class);
            put!(
                out,
                "<span style=\"width:{:.2}%;background:{colour};color:{}\" title=\"{}\">{}</span>",
                share * 100.0,
                ink(colour),
                esc(&format!(
                    "{who}: {class}, {} turn{}, {class_seconds:.1} s ({:.0}%)",
                    of_class.len(),
                    if of_class.len() == 1 { "" } else { "s" },
                    share * 100.0
                )),
                if share >= 0.08 {
                    format!("{}&nbsp;{:.0}%", esc(class), share * 100.0)
                } else {
                    String::new()
                },
            );
        }
        put!(
            out,
            "</div><span class=\"muted num\">{} turn{} · {total:.1} s</span>\n",
            turns.len(),
            if turns.len() == 1 { "" } else { "s" },
        );
    }
    out.push_str("</div>\n");
}

/// One turn's card.
fn card(out: &mut String, id: &str, turn: &TurnEmotion, palette: &Palette) {
    let colour = palette.colour(&turn.emotion);
    let anchor = format!("{id}-t{}", turn.turn);
    put!(
        out,
        "<article class=\"turn\" id=\"{anchor}\" style=\"border-left-color:{colour}\">\n\
         <header><a class=\"tno\" href=\"#{anchor}\">#{}</a><span class=\"num\">{} – {}</span>\
         <span class=\"spk\">{}</span><span class=\"emo\" style=\"background:{colour};color:{}\">{} {}</span></header>\n\
         <div class=\"cols\"><div class=\"main\">\n",
        turn.turn,
        clock(turn.start_s, true),
        clock(turn.end_s, true),
        esc(&turn.speaker),
        ink(colour),
        esc(&turn.emotion),
        percent(turn.confidence),
    );
    if let Some(thumbnail) = &turn.evidence.face_thumbnail {
        face(out, thumbnail);
    }
    out.push_str("<p class=\"text\">");
    let words = turn.explanation.as_ref().map_or(&[][..], |e| &e.words[..]);
    if turn.text.trim().is_empty() {
        out.push_str("<span class=\"muted\">(no words)</span>");
    } else {
        transcript(out, &turn.text, words);
    }
    out.push_str("</p>\n");
    if let Some(explanation) = &turn.explanation {
        why(out, turn, explanation, palette);
    }
    out.push_str("</div>\n<div class=\"side\">");
    probabilities(out, turn, palette);
    out.push_str("</div></div>\n</article>\n");
}

/// The face crop the expression model read, as a `data:` URI.
fn face(out: &mut String, thumbnail: &FaceThumbnail) {
    let Some(bmp) = gray_bmp(thumbnail) else {
        return;
    };
    let width = 96;
    let height = (width * thumbnail.height).div_ceil(thumbnail.width.max(1));
    put!(
        out,
        "<figure class=\"face\"><img src=\"data:image/bmp;base64,{}\" width=\"{width}\" \
         height=\"{height}\" alt=\"The face read at {}\"><figcaption>face at {}</figcaption></figure>\n",
        base64(&bmp),
        clock(thumbnail.time_s, true),
        clock(thumbnail.time_s, true),
    );
}

/// The transcript, each of LIME's `words` found in it shaded by its weight
/// (words are matched in order, ignoring ASCII case; text between them is
/// kept as written).
fn transcript(out: &mut String, text: &str, words: &[WordWeight]) {
    let strongest = words
        .iter()
        .map(|w| finite32(w.weight).abs())
        .fold(0.0, f32::max);
    let mut cursor = 0;
    for word in words {
        if word.word.is_empty() {
            continue;
        }
        let Some(at) = find_ignoring_ascii_case(&text[cursor..], &word.word) else {
            continue;
        };
        let start = cursor + at;
        let end = start + word.word.len();
        out.push_str(&esc(&text[cursor..start]));
        let weight = finite32(word.weight);
        let strength = if strongest > 0.0 {
            weight.abs() / strongest
        } else {
            0.0
        };
        if strength < 0.05 {
            // Too weak to shade: only the weight on hover.
            put!(
                out,
                "<span title=\"LIME weight {weight:+.3}\">{}</span>",
                esc(&text[start..end]),
            );
        } else {
            put!(
                out,
                "<mark class=\"{}\" style=\"--a:{:.2}\" title=\"LIME weight {weight:+.3}\">{}</mark>",
                if weight >= 0.0 { "towards" } else { "away" },
                0.08 + 0.5 * strength,
                esc(&text[start..end]),
            );
        }
        cursor = end;
    }
    out.push_str(&esc(&text[cursor..]));
}

/// Byte offset of `needle` in `haystack`, ignoring ASCII case: preferably
/// as a whole word (no letter or digit glued to either end), else anywhere.
fn find_ignoring_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let glued = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let starts: Vec<usize> = haystack
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| {
            haystack
                .get(i..i + needle.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(needle))
        })
        .collect();
    let whole_word = starts.iter().copied().find(|&i| {
        !glued(haystack[..i].chars().next_back())
            && !glued(haystack[i + needle.len()..].chars().next())
    });
    whole_word.or(starts.first().copied())
}

/// Why the turn got its emotion: drop-one contributions, LIME's strongest
/// words and fit, the face per keyframe and the voice per stretch.
fn why(out: &mut String, turn: &TurnEmotion, explanation: &Explanation, palette: &Palette) {
    let class = esc(&explanation.class);
    let colour = palette.colour(&explanation.class);
    put!(out, "<div class=\"why\"><h4>Why {class}?</h4>\n");
    if !explanation.modalities.is_empty() {
        put!(
            out,
            "<div><div class=\"note\">Each reading's share: fused P({class}) with it minus without it</div>\
             <div class=\"rows\">"
        );
        let scale = explanation
            .modalities
            .iter()
            .map(|m| finite32(m.contribution).abs())
            .fold(0.1, f32::max);
        for m in &explanation.modalities {
            diverging_row(out, &modality_name(&m.modality), m.contribution, scale);
        }
        out.push_str("</div></div>\n");
    }
    if !explanation.words.is_empty() {
        // A word said twice is one LIME feature: list it once.
        let mut strongest: Vec<_> = Vec::new();
        for word in &explanation.words {
            if !strongest.iter().any(|w: &&WordWeight| w.word == word.word) {
                strongest.push(word);
            }
        }
        strongest.sort_by(|a, b| {
            finite32(b.weight)
                .abs()
                .total_cmp(&finite32(a.weight).abs())
        });
        strongest.truncate(5);
        let scale = strongest
            .first()
            .map_or(0.0, |w| finite32(w.weight).abs())
            .max(1e-6);
        put!(
            out,
            "<div><div class=\"note\">Strongest words (LIME: {} perturbed transcripts, fit R² {:.2}, seed {}) \
             <span class=\"key\"><span class=\"towards\">towards {class}</span> \
             <span class=\"away\">away</span></span></div><div class=\"rows\">",
            explanation.samples,
            finite32(explanation.fit_r2),
            explanation.seed,
        );
        for word in strongest {
            diverging_row(out, &word.word, word.weight, scale);
        }
        out.push_str("</div></div>\n");
    }
    if !explanation.face_frames.is_empty() {
        face_frames(out, turn, explanation, colour);
    }
    if !explanation.audio_segments.is_empty() {
        audio_segments(out, turn, explanation, colour);
    }
    out.push_str("</div>\n");
}

/// A labelled bar either side of zero, `scale` being full length.
fn diverging_row(out: &mut String, label: &str, value: f32, scale: f32) {
    let value = finite32(value);
    let length = (value.abs() / scale.max(1e-6)).min(1.0) * 100.0;
    let (left, right) = if value < 0.0 {
        (
            format!("<i class=\"away\" style=\"width:{length:.1}%\"></i>"),
            String::new(),
        )
    } else {
        (
            String::new(),
            format!("<i class=\"towards\" style=\"width:{length:.1}%\"></i>"),
        )
    };
    put!(
        out,
        "<span>{}</span><span class=\"diverge\"><span>{left}</span><span>{right}</span></span>\
         <span class=\"num\">{value:+.3}</span>\n",
        esc(label),
    );
}

/// The face model's probability of the class at each keyframe of the turn.
fn face_frames(out: &mut String, turn: &TurnEmotion, explanation: &Explanation, colour: &str) {
    const WIDTH: f64 = 460.0;
    const HEIGHT: f64 = 40.0;
    const TOP: f64 = 4.0;
    let frames = &explanation.face_frames;
    let (t0, t1) = time_range(turn, frames.iter().map(|f| (f.time_s, f.time_s)));
    let x = |t: f64| 8.0 + (finite(t) - t0) / (t1 - t0) * (WIDTH - 16.0);
    put!(
        out,
        "<div><div class=\"note\">Face: P({}) per keyframe (× no face)</div>\
         <svg class=\"small\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-label=\"Face model per keyframe\">\
         <line x1=\"0\" x2=\"{WIDTH}\" y1=\"{}\" y2=\"{}\" stroke=\"#d8dee4\"/>",
        esc(&explanation.class),
        TOP + HEIGHT + 16.0,
        TOP + HEIGHT,
        TOP + HEIGHT,
    );
    for frame in frames {
        let fx = x(frame.time_s);
        match frame.probability {
            Some(p) => {
                let h = f64::from(unit(p)) * HEIGHT;
                put!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"{h:.1}\" fill=\"{colour}\">\
                     <title>{}: {}</title></rect>",
                    fx - 3.0,
                    TOP + HEIGHT - h,
                    clock(frame.time_s, true),
                    percent(p),
                );
            }
            None => put!(
                out,
                "<text x=\"{fx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">×<title>{}: no face</title></text>",
                TOP + HEIGHT - 3.0,
                clock(frame.time_s, true),
            ),
        }
    }
    put!(
        out,
        "<text x=\"0\" y=\"{y}\">{}</text><text x=\"{WIDTH}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg></div>\n",
        clock(t0, true),
        clock(t1, true),
        y = TOP + HEIGHT + 14.0,
    );
}

/// How much the voice model's probability of the class drops when each
/// stretch of the turn is silenced (up: the stretch supported it).
fn audio_segments(out: &mut String, turn: &TurnEmotion, explanation: &Explanation, colour: &str) {
    const WIDTH: f64 = 460.0;
    const HALF: f64 = 22.0;
    let segments = &explanation.audio_segments;
    let (t0, t1) = time_range(turn, segments.iter().map(|s| (s.start_s, s.end_s)));
    let x = |t: f64| (finite(t) - t0) / (t1 - t0) * WIDTH;
    let scale = segments
        .iter()
        .map(|s| finite32(s.contribution).abs())
        .fold(0.05, f32::max);
    let zero = 4.0 + HALF;
    put!(
        out,
        "<div><div class=\"note\">Voice: drop in P({}) when each stretch is silenced (up: it supported {})</div>\
         <svg class=\"small\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-label=\"Voice model per stretch\">",
        esc(&explanation.class),
        esc(&explanation.class),
        zero + HALF + 18.0,
    );
    for segment in segments {
        let c = finite32(segment.contribution);
        let h = f64::from(c.abs() / scale) * HALF;
        let (x0, x1) = (x(segment.start_s), x(segment.end_s));
        put!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\">\
             <title>{}–{}: {c:+.3}</title></rect>",
            x0 + 0.5,
            if c >= 0.0 { zero - h } else { zero },
            (x1 - x0 - 1.0).max(1.0),
            if c >= 0.0 { colour } else { "#8c959f" },
            clock(segment.start_s, true),
            clock(segment.end_s, true),
        );
    }
    put!(
        out,
        "<line x1=\"0\" x2=\"{WIDTH}\" y1=\"{zero}\" y2=\"{zero}\" stroke=\"#8c959f\"/>\
         <text x=\"0\" y=\"{y}\">{}</text><text x=\"{WIDTH}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg></div>\n",
        clock(t0, true),
        clock(t1, true),
        y = zero + HALF + 14.0,
    );
}

/// The time range to draw a turn's evidence over: the turn, widened to
/// cover `spans`, never empty.
fn time_range(turn: &TurnEmotion, spans: impl Iterator<Item = (f64, f64)>) -> (f64, f64) {
    let (mut t0, mut t1) = (finite(turn.start_s), finite(turn.end_s));
    for (start, end) in spans {
        t0 = t0.min(finite(start));
        t1 = t1.max(finite(end));
    }
    (t0, t1.max(t0 + 1e-3))
}

/// The fused distribution and each modality's, one row per class.
fn probabilities(out: &mut String, turn: &TurnEmotion, palette: &Palette) {
    let evidence = &turn.evidence;
    let face_note = if evidence.keyframes == 0 {
        "no frames read".to_string()
    } else {
        format!(
            "{} face{} in {} keyframe{}",
            evidence.faces,
            if evidence.faces == 1 { "" } else { "s" },
            evidence.keyframes,
            if evidence.keyframes == 1 { "" } else { "s" },
        )
    };
    let columns: [(&str, Option<&ClassProbabilities>, &str); 4] = [
        (
            "fused",
            Some(&turn.probabilities),
            "the weighted mean of the readings",
        ),
        ("text", evidence.text.as_ref(), "no transcript reading"),
        ("voice", evidence.audio.as_ref(), "too little voiced audio"),
        ("face", evidence.face.as_ref(), &face_note),
    ];
    out.push_str("<table class=\"probs\"><thead><tr><th></th>");
    for (name, reading, note) in &columns {
        if reading.is_some() {
            put!(out, "<th>{name}</th>");
        } else {
            put!(out, "<th class=\"na\" title=\"{}\">{name}</th>", esc(note));
        }
    }
    out.push_str("</tr></thead><tbody>\n");
    for class in palette.names() {
        let in_any = columns
            .iter()
            .any(|(_, reading, _)| reading.is_some_and(|r| r.0.iter().any(|(n, _)| n == class)));
        if !in_any {
            continue;
        }
        let colour = palette.colour(class);
        put!(
            out,
            "<tr{}><th><i class=\"sw\" style=\"background:{colour}\"></i> {}</th>",
            if class == turn.emotion {
                " class=\"top\""
            } else {
                ""
            },
            esc(class),
        );
        for (name, reading, _) in &columns {
            let cell = if *name == "fused" {
                " class=\"fused\""
            } else {
                ""
            };
            match reading.and_then(|r| r.0.iter().find(|(n, _)| n == class)) {
                Some((_, p)) => put!(
                    out,
                    "<td{cell}><span class=\"track\"><i style=\"width:{:.1}%;background:{colour}\"></i></span>\
                     <span class=\"num\">{}</span></td>",
                    unit(*p) * 100.0,
                    percent(*p),
                ),
                None => put!(out, "<td class=\"na\">–</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    let missing: Vec<String> = columns
        .iter()
        .filter(|(_, reading, _)| reading.is_none())
        .map(|(name, _, note)| format!("{name}: {note}"))
        .collect();
    if evidence.face.is_some() {
        put!(out, "<p class=\"note\">face: {}</p>\n", esc(&face_note));
    }
    if !missing.is_empty() {
        put!(
            out,
            "<p class=\"note\">No reading from {}.</p>\n",
            esc(&missing.join("; "))
        );
    }
}

/// How a modality is named on the page (`audio` is the voice).
fn modality_name(modality: &str) -> String {
    match modality {
        "audio" => "voice".to_string(),
        other => other.to_string(),
    }
}

/// The recording's file name (its path when it has none).
fn file_name(analysis: &Analysis) -> String {
    analysis.file.file_name().map_or_else(
        || analysis.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `s` with the characters HTML gives meaning to escaped, safe in text and
/// in quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds as `m:ss.s` (`h:mm:ss.s` from an hour; no tenths unless asked).
fn clock(seconds: f64, tenths: bool) -> String {
    let seconds = finite(seconds).max(0.0);
    let tenths_total = (seconds * 10.0).round() as u64;
    let (whole, tenth) = (tenths_total / 10, tenths_total % 10);
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    let head = if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    };
    if tenths {
        format!("{head}.{tenth}")
    } else {
        head
    }
}

/// A probability as a whole percentage.
fn percent(p: f32) -> String {
    format!("{:.0}%", unit(p) * 100.0)
}

/// `p` clamped to [0, 1] (0 when not finite).
fn unit(p: f32) -> f32 {
    finite32(p).clamp(0.0, 1.0)
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn finite32(x: f32) -> f32 {
    if x.is_finite() { x } else { 0.0 }
}

/// Black or white, whichever reads better on `background` (`#RRGGBB`), by
/// WCAG relative luminance.
fn ink(background: &str) -> &'static str {
    let channel = |i: usize| {
        let v = background
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |v| f64::from(v) / 255.0);
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with black, (L + 0.05) / 0.05, beats contrast with white,
    // 1.05 / (L + 0.05), above L ≈ 0.179.
    if luminance > 0.179 { "#000" } else { "#fff" }
}

/// The crop as an uncompressed 8-bit palettised BMP (a grey ramp palette),
/// which every browser shows; `None` when its size and pixels disagree.
fn gray_bmp(thumbnail: &FaceThumbnail) -> Option<Vec<u8>> {
    let (width, height) = (thumbnail.width, thumbnail.height);
    if width == 0 || height == 0 || thumbnail.gray.len() < width.checked_mul(height)? {
        return None;
    }
    let stride = width.div_ceil(4) * 4;
    let pixels_at = 14 + 40 + 256 * 4;
    let size = pixels_at + stride * height;
    let (w, h, size32) = (
        u32::try_from(width).ok()?,
        u32::try_from(height).ok()?,
        u32::try_from(size).ok()?,
    );
    let mut bmp = Vec::with_capacity(size);
    // BITMAPFILEHEADER
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&size32.to_le_bytes());
    bmp.extend_from_slice(&0u32.to_le_bytes());
    bmp.extend_from_slice(&(pixels_at as u32).to_le_bytes());
    // BITMAPINFOHEADER: positive height = rows stored bottom-up.
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&w.to_le_bytes());
    bmp.extend_from_slice(&h.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
    bmp.extend_from_slice(&8u16.to_le_bytes()); // bits per pixel
    bmp.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB, uncompressed
    bmp.extend_from_slice(&((stride * height) as u32).to_le_bytes());
    bmp.extend_from_slice(&2835u32.to_le_bytes()); // 72 dpi
    bmp.extend_from_slice(&2835u32.to_le_bytes());
    bmp.extend_from_slice(&256u32.to_le_bytes()); // palette entries
    bmp.extend_from_slice(&0u32.to_le_bytes());
    for level in 0..=255u8 {
        bmp.extend_from_slice(&[level, level, level, 0]);
    }
    for row in thumbnail.gray.chunks_exact(width).take(height).rev() {
        bmp.extend_from_slice(row);
        bmp.resize(bmp.len() + stride - width, 0);
    }
    Some(bmp)
}

/// Standard base64 (RFC 4648 §4, padded).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// `mmer eval --report`: one trained run on one split.

/// One seed's learning curve, read from `seed-<k>/metrics.json` (the
/// [`SeedOutcome`](mmer_train::SeedOutcome) that training wrote; other fields
/// are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LearningCurve {
    /// Epoch whose model was kept (best validation weighted F1).
    pub best_epoch: usize,
    /// Train loss and validation weighted F1 per epoch.
    pub history: Vec<EpochRecord>,
    /// Wall-clock training time in seconds, when recorded.
    #[serde(default)]
    pub train_seconds: Option<f64>,
}

/// A seed's learning curve, or why it is missing.
pub type SeedCurve = (u64, std::result::Result<LearningCurve, String>);

/// The learning curve of each of `seeds` from `run/seed-<k>/metrics.json`.
/// A file that is missing or not a metrics record gives that seed the reason
/// instead of a curve; it is never an error.
pub fn read_curves(run: &Path, seeds: &[u64]) -> Vec<SeedCurve> {
    seeds
        .iter()
        .map(|&seed| {
            let path = run.join(format!("seed-{seed}")).join("metrics.json");
            let curve = std::fs::read(&path)
                .map_err(|e| format!("{} could not be read: {e}", path.display()))
                .and_then(|bytes| {
                    serde_json::from_slice::<LearningCurve>(&bytes)
                        .map_err(|e| format!("{} is not a metrics record: {e}", path.display()))
                });
            (seed, curve)
        })
        .collect()
}

/// The report of `evaluation`, the evaluation of the run in `run`, as a
/// complete self-contained HTML document: the summary metrics, per-class F1
/// bars (mean ± std over seeds), the confusion matrix (summed over seeds, and
/// per seed) and each seed's learning curves from its `metrics.json`
/// ([`read_curves`]).
///
/// # Errors
/// As [`evaluation_report`].
pub fn run_report(run: &Path, evaluation: &RunEvaluation) -> Result<String> {
    let seeds: Vec<u64> = evaluation.per_seed.iter().map(|(seed, _)| *seed).collect();
    evaluation_report(run, evaluation, &read_curves(run, &seeds))
}

/// [`run_report`] with the learning curves given: `curves` holds a curve (or
/// the reason it is missing) per seed; seeds without an entry get a note.
///
/// # Errors
/// [`Error::Refused`](crate::error::Error::Refused) for an evaluation without
/// seeds, or whose reports and aggregate disagree on the number of classes.
pub fn evaluation_report(
    run: &Path,
    evaluation: &RunEvaluation,
    curves: &[SeedCurve],
) -> Result<String> {
    let Some((_, first)) = evaluation.per_seed.first() else {
        bail!("the evaluation has no seed to report");
    };
    let n = first.confusion.num_classes();
    ensure!(
        evaluation
            .per_seed
            .iter()
            .all(|(_, r)| r.confusion.num_classes() == n && r.per_class.len() == n)
            && evaluation.aggregate.per_class_f1.len() == n,
        "the evaluation's seeds and aggregate disagree on the number of classes"
    );
    let names: Vec<String> = (0..n)
        .map(|c| {
            evaluation
                .classes
                .get(c)
                .cloned()
                .unwrap_or_else(|| format!("class {c}"))
        })
        .collect();
    let palette = Palette::of_names(names.clone());
    let run_name = run.file_name().map_or_else(
        || run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!("Evaluation of {run_name}");
    let seeds = evaluation.per_seed.len();
    let mut out = String::with_capacity(64 * 1024);
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"mmer eval\">\n\
         <title>{}</title>\n<style>{STYLE}{EVAL_STYLE}</style>\n</head>\n<body>\n<header class=\"page\">\n\
         <h1>{}</h1>\n<p class=\"path\">{}</p>\n<p class=\"lead\">{} · <strong>{}</strong> split · \
         {seeds} seed{} · {} turns per seed. Each seed's model is the epoch with the best \
         validation weighted F1; numbers are mean ± sample std over seeds, in percent.</p>\n",
        esc(&title),
        esc(&title),
        esc(&run.display().to_string()),
        esc(&evaluation.corpus),
        esc(&evaluation.split.to_string()),
        if seeds == 1 { "" } else { "s" },
        first.num_samples,
    );
    eval_facts(&mut out, evaluation);
    out.push_str("</header>\n<main>\n");
    seed_table(&mut out, evaluation, curves);
    out.push_str("<h3>F1 per class</h3>\n");
    f1_bars(&mut out, evaluation, &palette);
    out.push_str("<h3>Confusion matrix</h3>\n");
    if seeds > 1 {
        let mut summed = vec![vec![0usize; n]; n];
        for (_, report) in &evaluation.per_seed {
            for (row, counts) in summed.iter_mut().zip(report.confusion.counts()) {
                for (cell, count) in row.iter_mut().zip(counts) {
                    *cell += count;
                }
            }
        }
        put!(
            out,
            "<p class=\"note\">Summed over the {seeds} seeds (each seed scores the same turns). \
             Rows are the gold class, columns the prediction; shading is the share of the row.</p>\n"
        );
        confusion_table(&mut out, &summed, &palette);
        for (seed, report) in &evaluation.per_seed {
            put!(
                out,
                "<details class=\"seedcm\"><summary>Seed {seed}</summary>\n"
            );
            confusion_table(&mut out, report.confusion.counts(), &palette);
            out.push_str("</details>\n");
        }
    } else {
        put!(
            out,
            "<p class=\"note\">Seed {}. Rows are the gold class, columns the prediction; \
             shading is the share of the row.</p>\n",
            evaluation.per_seed[0].0
        );
        confusion_table(&mut out, first.confusion.counts(), &palette);
    }
    out.push_str("<h3>Learning curves</h3>\n");
    learning_curves(&mut out, evaluation, curves);
    out.push_str(
        "</main>\n<footer>Made by <code>mmer eval --report</code>. Class colours: Okabe–Ito \
         palette; seed colours: Okabe–Ito in order.</footer>\n</body>\n</html>\n",
    );
    Ok(out)
}

/// Styles of the evaluation page, on top of [`STYLE`].
const EVAL_STYLE: &str = "
.facts{margin:10px 0 4px}
table.seeds{border-collapse:collapse;font-size:13px;margin:14px 0 0}
.seeds th,.seeds td{padding:3px 12px 3px 0;text-align:right;white-space:nowrap}
.seeds th:first-child,.seeds td:first-child{text-align:left}
.seeds thead th{color:var(--muted);font-weight:600;border-bottom:1px solid var(--line)}
.seeds tfoot td{font-weight:700;border-top:1px solid var(--line)}
.f1rows{display:grid;grid-template-columns:max-content minmax(220px,560px) max-content max-content;gap:5px 12px;align-items:center;font-size:13px}
.f1rows .head{color:var(--muted);font-weight:600;font-size:12px}
.bar{position:relative;height:18px;background:var(--bg);border-radius:3px}
.bar>i{position:absolute;left:0;top:0;bottom:0;border-radius:3px 0 0 3px}
.bar>b{position:absolute;top:8px;height:2px;background:var(--ink)}
.bar>b:before,.bar>b:after{content:'';position:absolute;top:-5px;width:2px;height:12px;background:var(--ink)}
.bar>b:before{left:0}.bar>b:after{right:0}
.bar>s{position:absolute;top:3px;width:3px;height:12px;margin-left:-1.5px;background:rgba(255,255,255,.9);border:1px solid var(--ink);border-radius:1px;text-decoration:none}
.scale{display:flex;justify-content:space-between;font-size:11px;color:var(--muted)}
table.cm{border-collapse:separate;border-spacing:2px;font-size:13px;margin:6px 0 10px}
.cm th{font-weight:600;padding:2px 6px;white-space:nowrap}
.cm thead th{vertical-align:bottom;text-align:center;max-width:90px;white-space:normal;overflow-wrap:anywhere}
.cm tbody th{text-align:left}
.cm th.corner{color:var(--muted);font-weight:400;font-size:11px;text-align:left}
.cm td.cell{width:76px;height:44px;text-align:center;border-radius:4px;font-variant-numeric:tabular-nums;line-height:1.15}
.cm td.cell small{display:block;font-size:10px;opacity:.85}
.cm td.diag{outline:2px solid var(--ink);outline-offset:-2px}
.cm td.sup{color:var(--muted);padding-left:8px;font-variant-numeric:tabular-nums}
details.seedcm{margin:4px 0}
details.seedcm summary{cursor:pointer;font-size:13px;color:var(--muted)}
.curves{display:flex;flex-wrap:wrap;gap:10px 24px}
.curves figure{margin:0;flex:1 1 480px;max-width:560px}
.curves figcaption{font-weight:600;font-size:14px;margin-bottom:2px}
.curves svg{width:100%;height:auto}
svg .grid{stroke:var(--line);stroke-width:1}
svg .axis{stroke:var(--muted);stroke-width:1}
svg .curve{fill:none;stroke-width:2;stroke-linejoin:round}
svg .best{stroke:#fff;stroke-width:1.5}
.ln{display:inline-block;width:18px;height:3px;border-radius:2px;vertical-align:4px}
.legend .ring{display:inline-block;width:11px;height:11px;border-radius:50%;background:var(--ink);border:2px solid #fff;box-shadow:0 0 0 1px var(--ink)}
";

/// Seed colours: Okabe–Ito in order (yellow left out: too pale on white).
const SEED_COLOURS: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// `mean ± std` of `a` in percent with one decimal (`mean` alone for one seed).
fn mean_std(a: &Aggregate) -> String {
    match a.std {
        Some(std) => format!("{:.1} ± {:.1}", 100.0 * finite(a.mean), 100.0 * finite(std)),
        None => format!("{:.1}", 100.0 * finite(a.mean)),
    }
}

/// The headline metrics.
fn eval_facts(out: &mut String, evaluation: &RunEvaluation) {
    let a = &evaluation.aggregate;
    out.push_str("<dl class=\"facts\">");
    let mut fact = |name: &str, agg: &Aggregate| {
        put!(
            out,
            "<div><dt>{name}</dt><dd class=\"num\">{}</dd></div>",
            mean_std(agg)
        );
    };
    fact("Weighted F1", &a.weighted_f1);
    fact("Macro F1", &a.macro_f1);
    fact("Accuracy", &a.accuracy);
    if let Some(five) = &a.five_class_weighted_f1 {
        fact("5-class weighted F1", five);
    }
    out.push_str("</dl>\n");
}

/// One row per seed: its metrics on the split, its best epoch and training time.
fn seed_table(out: &mut String, evaluation: &RunEvaluation, curves: &[SeedCurve]) {
    out.push_str(
        "<table class=\"seeds\"><thead><tr><th>Seed</th><th>Weighted F1</th><th>Macro F1</th>\
         <th>Accuracy</th><th>Best epoch</th><th>Training</th></tr></thead><tbody>",
    );
    for (index, (seed, report)) in evaluation.per_seed.iter().enumerate() {
        let curve = curves
            .iter()
            .find(|(s, _)| s == seed)
            .and_then(|(_, c)| c.as_ref().ok());
        let (best, seconds) = match curve {
            Some(c) => (
                format!("{} of {}", c.best_epoch, c.history.len()),
                c.train_seconds
                    .map_or_else(|| "–".to_string(), |s| format!("{:.0} s", finite(s))),
            ),
            None => ("–".to_string(), "–".to_string()),
        };
        put!(
            out,
            "<tr><td><i class=\"ln\" style=\"background:{}\"></i> {seed}</td>\
             <td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td>\
             <td>{best}</td><td>{seconds}</td></tr>",
            SEED_COLOURS[index % SEED_COLOURS.len()],
            100.0 * finite(report.weighted_f1),
            100.0 * finite(report.macro_f1),
            100.0 * finite(report.accuracy),
        );
    }
    let a = &evaluation.aggregate;
    if evaluation.per_seed.len() > 1 {
        put!(
            out,
            "</tbody><tfoot><tr><td>mean ± std</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td></td><td></td></tr></tfoot>",
            mean_std(&a.weighted_f1),
            mean_std(&a.macro_f1),
            mean_std(&a.accuracy),
        );
    } else {
        out.push_str("</tbody>");
    }
    out.push_str("</table>\n");
}

/// A bar per class: mean F1 over seeds, a ± std whisker and a tick per seed.
fn f1_bars(out: &mut String, evaluation: &RunEvaluation, palette: &Palette) {
    let support = |c: usize| -> usize {
        evaluation.per_seed[0]
            .1
            .per_class
            .get(c)
            .map_or(0, |m| m.support)
    };
    out.push_str(
        "<div class=\"f1rows\"><span class=\"head\">Class</span>\
         <div class=\"scale\"><span>0</span><span>25</span><span>50</span><span>75</span><span>100</span></div>\
         <span class=\"head\">F1 %</span><span class=\"head\">Support</span>\n",
    );
    for (c, ((name, colour), agg)) in palette
        .classes
        .iter()
        .zip(&evaluation.aggregate.per_class_f1)
        .enumerate()
    {
        let mean = finite(agg.mean).clamp(0.0, 1.0);
        put!(
            out,
            "<span><i class=\"sw\" style=\"background:{colour}\"></i> {}</span>\
             <div class=\"bar\" title=\"{}: F1 {}\"><i style=\"width:{:.2}%;background:{colour}\"></i>",
            esc(name),
            esc(name),
            mean_std(agg),
            100.0 * mean,
        );
        if let Some(std) = agg.std {
            let lo = (mean - finite(std)).clamp(0.0, 1.0);
            let hi = (mean + finite(std)).clamp(0.0, 1.0);
            put!(
                out,
                "<b style=\"left:{:.2}%;width:{:.2}%\"></b>",
                100.0 * lo,
                100.0 * (hi - lo)
            );
            for value in &agg.per_seed {
                put!(
                    out,
                    "<s style=\"left:{:.2}%\"></s>",
                    100.0 * finite(*value).clamp(0.0, 1.0)
                );
            }
        }
        put!(
            out,
            "</div><span class=\"num\">{}</span><span class=\"num muted\">{}</span>\n",
            mean_std(agg),
            support(c)
        );
    }
    out.push_str("</div>\n");
    if evaluation.per_seed.len() > 1 {
        out.push_str(
            "<p class=\"note\">Bar: mean over seeds; whisker: ± one sample std; \
             white ticks: each seed.</p>\n",
        );
    }
}

/// The confusion matrix `counts` (rows gold, columns predicted) as a table,
/// each cell shaded by its share of the row.
fn confusion_table(out: &mut String, counts: &[Vec<usize>], palette: &Palette) {
    out.push_str("<table class=\"cm\"><thead><tr><th class=\"corner\">gold ↓ predicted →</th>");
    for (name, _) in &palette.classes {
        put!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("<th class=\"corner\">support</th></tr></thead><tbody>\n");
    for (gold, row) in counts.iter().enumerate() {
        let (gold_name, colour) = palette
            .classes
            .get(gold)
            .map_or(("?", "#777777"), |(n, c)| (n.as_str(), *c));
        let total: usize = row.iter().sum();
        put!(
            out,
            "<tr><th><i class=\"sw\" style=\"background:{colour}\"></i> {}</th>",
            esc(gold_name)
        );
        for (predicted, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let predicted_name = palette.classes.get(predicted).map_or("?", |(n, _)| n);
            let text = if share > 0.5 { "#fff" } else { "var(--ink)" };
            put!(
                out,
                "<td class=\"cell{}\" style=\"background:rgba(0,114,178,{:.3});color:{text}\" \
                 title=\"gold {}, predicted {}: {count} ({:.1}% of the row)\">{count}<small>{:.0}%</small></td>",
                if gold == predicted { " diag" } else { "" },
                0.04 + 0.96 * share,
                esc(gold_name),
                esc(predicted_name),
                100.0 * share,
                100.0 * share,
            );
        }
        put!(out, "<td class=\"sup\">{total}</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

/// Train loss and validation weighted F1 per epoch, a line per seed with
/// its kept epoch ringed; a note for each seed without a curve.
fn learning_curves(out: &mut String, evaluation: &RunEvaluation, curves: &[SeedCurve]) {
    let mut drawn: Vec<(u64, &'static str, &LearningCurve)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (index, (seed, _)) in evaluation.per_seed.iter().enumerate() {
        let colour = SEED_COLOURS[index % SEED_COLOURS.len()];
        match curves.iter().find(|(s, _)| s == seed).map(|(_, c)| c) {
            Some(Ok(curve)) if !curve.history.is_empty() => drawn.push((*seed, colour, curve)),
            Some(Ok(_)) => notes.push(format!("Seed {seed}: its metrics.json has no epochs.")),
            Some(Err(why)) => notes.push(format!("Seed {seed}: no curve, {why}.")),
            None => notes.push(format!("Seed {seed}: no curve was read.")),
        }
    }
    if !drawn.is_empty() {
        out.push_str("<div class=\"legend\">");
        for (seed, colour, _) in &drawn {
            put!(
                out,
                "<span><i class=\"ln\" style=\"background:{colour}\"></i>seed {seed}</span>"
            );
        }
        out.push_str("<span class=\"muted\"><i class=\"ring\"></i>kept epoch (best validation weighted F1)</span></div>\n");
        out.push_str("<div class=\"curves\">\n");
        line_chart(out, "Train loss", "loss", &drawn, |r| r.train_loss, 1.0);
        line_chart(
            out,
            "Validation weighted F1 (%)",
            "f1",
            &drawn,
            |r| r.valid_weighted_f1,
            100.0,
        );
        out.push_str("</div>\n");
    }
    for note in notes {
        put!(out, "<p class=\"note\">{}</p>\n", esc(&note));
    }
}

/// Chart geometry, in SVG user units.
const CHART_W: f64 = 560.0;
const CHART_H: f64 = 260.0;
const CHART_LEFT: f64 = 50.0;
const CHART_RIGHT: f64 = 14.0;
const CHART_TOP: f64 = 12.0;
const CHART_BOTTOM: f64 = 38.0;

/// One line chart of `value × scale` per epoch, a path per seed.
fn line_chart(
    out: &mut String,
    caption: &str,
    kind: &str,
    seeds: &[(u64, &'static str, &LearningCurve)],
    value: impl Fn(&EpochRecord) -> f64,
    scale: f64,
) {
    let points = |c: &LearningCurve| -> Vec<(f64, f64)> {
        c.history
            .iter()
            .map(|r| (r.epoch as f64, value(r) * scale))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64)> = seeds.iter().flat_map(|(_, _, c)| points(c)).collect();
    let max_epoch = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let (x_lo, x_hi) = (1.0, max_epoch.max(2.0));
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (y_lo, y_hi, y_step) = if y_min.is_finite() {
        nice_range(y_min, y_max)
    } else {
        (0.0, 1.0, 0.2)
    };
    let plot_w = CHART_W - CHART_LEFT - CHART_RIGHT;
    let plot_h = CHART_H - CHART_TOP - CHART_BOTTOM;
    let px = |x: f64| CHART_LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |y: f64| CHART_TOP + (y_hi - y) / (y_hi - y_lo) * plot_h;
    put!(
        out,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {CHART_W} {CHART_H}\" \
         role=\"img\" aria-label=\"{}\">",
        esc(caption),
        esc(caption)
    );
    let decimals = (-y_step.log10().floor()).max(0.0) as usize;
    let mut y = y_lo;
    while y <= y_hi + y_step * 1e-6 {
        put!(
            out,
            "<line class=\"grid\" x1=\"{CHART_LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.*}</text>",
            CHART_W - CHART_RIGHT,
            py(y),
            py(y),
            CHART_LEFT - 6.0,
            py(y) + 4.0,
            decimals,
            y,
        );
        y += y_step;
    }
    let x_step = ((x_hi - x_lo) / 10.0).ceil().max(1.0);
    let mut x = x_lo;
    while x <= x_hi + 1e-9 {
        put!(
            out,
            "<line class=\"axis\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x}</text>",
            px(x),
            px(x),
            CHART_H - CHART_BOTTOM,
            CHART_H - CHART_BOTTOM + 4.0,
            px(x),
            CHART_H - CHART_BOTTOM + 17.0,
        );
        x += x_step;
    }
    put!(
        out,
        "<line class=\"axis\" x1=\"{CHART_LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">epoch</text>",
        CHART_W - CHART_RIGHT,
        CHART_H - CHART_BOTTOM,
        CHART_H - CHART_BOTTOM,
        CHART_LEFT + plot_w / 2.0,
        CHART_H - 4.0,
    );
    for (seed, colour, curve) in seeds {
        let pts = points(curve);
        let mut d = String::new();
        for (i, (x, y)) in pts.iter().enumerate() {
            put!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                px(*x),
                py(*y)
            );
        }
        put!(
            out,
            "<path class=\"curve {kind}\" data-seed=\"{seed}\" stroke=\"{colour}\" d=\"{d}\"><title>seed {seed}</title></path>"
        );
        if let Some((x, y)) = pts.iter().find(|(x, _)| *x == curve.best_epoch as f64) {
            put!(
                out,
                "<circle class=\"best\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5.5\" fill=\"{colour}\">\
                 <title>seed {seed}: kept epoch {}, {:.*}</title></circle>",
                px(*x),
                py(*y),
                curve.best_epoch,
                decimals + 1,
                y,
            );
        }
    }
    out.push_str("</svg></figure>\n");
}

/// A range covering `[lo, hi]` with round ends, and a round tick step
/// giving about five ticks.
fn nice_range(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::analyze::{
        AnalyzeSeconds, Evidence, FrameEvidence, ModalityContribution, SegmentEvidence,
    };

    const CLASSES: [&str; 7] = [
        "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
    ];

    fn classes() -> Vec<String> {
        CLASSES.iter().map(|c| c.to_string()).collect()
    }

    /// A distribution peaked at `top` with probability `p`.
    fn peaked(top: &str, p: f32) -> ClassProbabilities {
        let rest = (1.0 - p) / (CLASSES.len() - 1) as f32;
        ClassProbabilities(
            CLASSES
                .iter()
                .map(|c| (c.to_string(), if *c == top { p } else { rest }))
                .collect(),
        )
    }

    /// A turn with a text reading only: no voice, face or explanation.
    fn bare_turn(turn: usize, start_s: f64, end_s: f64, speaker: &str, text: &str) -> TurnEmotion {
        TurnEmotion {
            turn,
            start_s,
            end_s,
            speaker: speaker.to_string(),
            text: text.to_string(),
            emotion: "neutral".to_string(),
            confidence: 0.55,
            probabilities: peaked("neutral", 0.55),
            evidence: Evidence {
                text: Some(peaked("neutral", 0.55)),
                audio: None,
                face: None,
                keyframes: 0,
                faces: 0,
                face_thumbnail: None,
            },
            explanation: None,
        }
    }

    /// A synthetic 48×48 face: a bright oval with darker eyes and mouth.
    fn synthetic_face() -> FaceThumbnail {
        let (width, height) = (48, 48);
        let mut gray = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let (dx, dy) = ((x as f64 - 23.5) / 17.0, (y as f64 - 25.0) / 21.0);
                let inside = dx * dx + dy * dy <= 1.0;
                let eye = |cx: f64| ((x as f64 - cx).powi(2) + (y as f64 - 19.0).powi(2)) < 9.0;
                let mouth_y = 35.0 - 0.03 * (x as f64 - 23.5).powi(2);
                let mouth = (12..36).contains(&x) && (y as f64 - mouth_y).abs() < 1.5;
                let level = if !inside {
                    40 + (y * 2) as u8
                } else if eye(16.0) || eye(31.0) || mouth {
                    60
                } else {
                    (200.0 - 40.0 * (dx * dx + dy * dy)) as u8
                };
                gray.push(level);
            }
        }
        FaceThumbnail {
            width,
            height,
            gray,
            time_s: 7.5,
        }
    }

    /// A realistic analysis: 5 turns by 2 speakers, one turn with a face
    /// crop and a full explanation, one with an awkward transcript.
    fn example() -> Analysis {
        let mut turns = vec![
            bare_turn(0, 0.4, 3.1, "S1", "Hi, thanks for coming in today."),
            bare_turn(
                1,
                3.5,
                6.2,
                "S2",
                "Sure. I wasn't sure I'd make it, honestly.",
            ),
            bare_turn(
                2,
                6.6,
                11.8,
                "S1",
                "Wait, you got the job? That's amazing, I'm so happy for you!",
            ),
            bare_turn(
                3,
                12.3,
                15.0,
                "S2",
                "Yeah... but it means moving away from everyone.",
            ),
            bare_turn(4, 15.4, 18.9, "S1", "He said \"<maybe>\" & left — rude."),
        ];
        turns[1].evidence.audio = Some(peaked("neutral", 0.4));
        turns[2].emotion = "joy".to_string();
        turns[2].confidence = 0.81;
        turns[2].probabilities = peaked("joy", 0.81);
        turns[2].evidence = Evidence {
            text: Some(peaked("joy", 0.88)),
            audio: Some(peaked("surprise", 0.46)),
            face: Some(peaked("joy", 0.71)),
            keyframes: 10,
            faces: 8,
            face_thumbnail: Some(synthetic_face()),
        };
        let words = [
            ("Wait", 0.01),
            ("you", -0.02),
            ("got", 0.04),
            ("the", 0.0),
            ("job", 0.09),
            ("That's", 0.02),
            ("amazing", 0.31),
            ("I'm", 0.01),
            ("so", 0.05),
            ("happy", 0.42),
            ("for", -0.01),
            ("you", -0.03),
        ];
        turns[2].explanation = Some(Explanation {
            class: "joy".to_string(),
            words: words
                .iter()
                .map(|(word, weight)| WordWeight {
                    word: word.to_string(),
                    weight: *weight,
                })
                .collect(),
            samples: 500,
            seed: 7,
            fit_r2: 0.83,
            modalities: [("text", 0.19), ("audio", -0.06), ("face", 0.08)]
                .iter()
                .map(|(m, c)| ModalityContribution {
                    modality: m.to_string(),
                    contribution: *c,
                })
                .collect(),
            face_frames: (0..10u8)
                .map(|i| FrameEvidence {
                    time_s: 6.75 + 0.5 * f64::from(i),
                    probability: (i % 5 != 3).then(|| 0.5 + 0.04 * f32::from(i)),
                })
                .collect(),
            audio_segments: (0..10u8)
                .map(|i| SegmentEvidence {
                    start_s: 6.6 + 0.52 * f64::from(i),
                    end_s: 6.6 + 0.52 * f64::from(i + 1),
                    contribution: [0.02, 0.05, -0.01, 0.12, 0.08, 0.0, -0.04, 0.15, 0.03, 0.01]
                        [usize::from(i)],
                })
                .collect(),
        });
        turns[3].emotion = "sadness".to_string();
        turns[3].confidence = 0.47;
        turns[3].probabilities = peaked("sadness", 0.47);
        turns[3].evidence.text = Some(peaked("sadness", 0.44));
        turns[3].evidence.audio = Some(peaked("sadness", 0.52));
        turns[4].emotion = "anger".to_string();
        turns[4].confidence = 0.62;
        turns[4].probabilities = peaked("anger", 0.62);
        turns[4].evidence.text = Some(peaked("anger", 0.57));
        turns[4].evidence.audio = Some(peaked("anger", 0.69));
        Analysis {
            file: PathBuf::from("recordings/interview <draft> & \"final\".mp4"),
            audio: AudioState::Present,
            duration_s: 19.6,
            speakers: 2,
            turns,
            seconds: AnalyzeSeconds {
                decode_s: 0.21,
                asr_s: 3.4,
                speakers_s: 0.12,
                text_s: 0.9,
                audio_s: 0.35,
                face_s: 2.7,
                ..AnalyzeSeconds::default()
            },
        }
    }

    /// Tags open and close in order (void elements and `/>` aside): a
    /// check that escaping left no stray `<`.
    fn assert_balanced(html: &str) {
        const VOID: [&str; 5] = ["meta", "img", "br", "hr", "wbr"];
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("a tag is closed") + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(!name.is_empty(), "empty tag <{tag}>");
            if VOID.contains(&name.as_str()) {
                continue;
            }
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "at </{name}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn report_is_self_contained() {
        let html = analysis_report(&[example()], &classes());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link"));
        for (at, _) in html.match_indices("src=\"") {
            assert!(html[at + 5..].starts_with("data:"), "external src at {at}");
        }
        assert!(!html.contains("url("), "no CSS url()");
        assert_eq!(html.matches("src=\"data:image/bmp;base64,").count(), 1);
        assert_balanced(&html);
    }

    #[test]
    fn transcripts_and_names_are_escaped() {
        let mut analysis = example();
        let nasty = "<script>alert(\"x\")</script> & co";
        analysis.turns[0].text = nasty.to_string();
        analysis.turns[0].speaker = "<b>S1</b>".to_string();
        let html = analysis_report(&[analysis], &classes());
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("interview &lt;draft&gt; &amp; &quot;final&quot;.mp4"));
        assert_balanced(&html);
    }

    #[test]
    fn a_card_per_turn_and_a_timeline() {
        let analysis = example();
        let html = analysis_report(&[analysis.clone(), analysis], &classes());
        assert_eq!(html.matches("<article class=\"turn\"").count(), 10);
        assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2);
        // Each timeline bar links to its card.
        assert!(html.contains("href=\"#f1-t4\"") && html.contains("id=\"f1-t4\""));
        // The explained turn's words are shaded, with their weights.
        assert!(html.contains("<mark class=\"towards\""));
        assert!(html.contains("title=\"LIME weight -0.030\">you</mark>"));
        assert!(html.contains("Why joy?"));
        assert_balanced(&html);
    }

    #[test]
    fn zero_turns_and_no_recordings() {
        let mut analysis = example();
        analysis.turns.clear();
        analysis.audio = AudioState::Absent;
        let html = analysis_report(&[analysis], &classes());
        assert!(html.contains("No speech was recognised"));
        assert!(!html.contains("<article"));
        assert_balanced(&html);
        let html = analysis_report(&[], &[]);
        assert!(html.contains("No recording was analysed"));
        assert_balanced(&html);
    }

    #[test]
    fn turn_without_face_voice_or_explanation() {
        let mut analysis = example();
        analysis.turns.truncate(1);
        let html = analysis_report(&[analysis], &[]);
        assert_eq!(html.matches("<article").count(), 1);
        assert!(!html.contains("<img") && !html.contains("<mark") && !html.contains("Why "));
        assert!(
            html.contains("No reading from voice: too little voiced audio; face: no frames read.")
        );
        assert_balanced(&html);
    }

    #[test]
    fn words_are_matched_in_order() {
        let mut out = String::new();
        let words = [
            WordWeight {
                word: "a".into(),
                weight: 0.5,
            },
            WordWeight {
                word: "missing".into(),
                weight: 0.1,
            },
            WordWeight {
                word: "B".into(),
                weight: -0.5,
            },
        ];
        transcript(&mut out, "<a> b a", &words);
        assert_eq!(
            out,
            "&lt;<mark class=\"towards\" style=\"--a:0.58\" title=\"LIME weight +0.500\">a</mark>&gt; \
             <mark class=\"away\" style=\"--a:0.58\" title=\"LIME weight -0.500\">b</mark> a"
        );
    }

    #[test]
    fn base64_and_bmp() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        let face = FaceThumbnail {
            width: 3,
            height: 2,
            gray: vec![1, 2, 3, 4, 5, 6],
            time_s: 0.0,
        };
        let bmp = gray_bmp(&face).expect("consistent size");
        assert_eq!(bmp.len(), 14 + 40 + 1024 + 2 * 4);
        assert_eq!(&bmp[..2], b"BM");
        // Bottom row first, padded to 4 bytes.
        assert_eq!(&bmp[1078..], &[4, 5, 6, 0, 1, 2, 3, 0]);
        let short = FaceThumbnail {
            gray: vec![0; 5],
            ..face
        };
        assert!(gray_bmp(&short).is_none());
    }

    #[test]
    fn clock_and_colours() {
        assert_eq!(clock(0.0, true), "0:00.0");
        assert_eq!(clock(75.26, true), "1:15.3");
        assert_eq!(clock(3725.0, false), "1:02:05");
        assert_eq!(clock(f64::NAN, false), "0:00");
        assert_eq!(ink("#0072B2"), "#fff");
        assert_eq!(ink("#E69F00"), "#000");
        let palette = Palette::new(&[], &["joy".into(), "boredom".into(), "calm".into()]);
        assert_eq!(palette.colour("joy"), "#E69F00");
        assert_ne!(palette.colour("boredom"), palette.colour("calm"));
    }

    /// Writes the example report where `MMER_REPORT_EXAMPLE` says (how
    /// `docs/report/example.html` is made; see docs/report/README.md).
    #[test]
    fn example_report() {
        let html = analysis_report(&[example()], &classes());
        assert_balanced(&html);
        if let Some(path) = std::env::var_os("MMER_REPORT_EXAMPLE") {
            std::fs::write(&path, html).expect("writing the example report");
        }
    }
}

#[cfg(test)]
mod eval_tests {
    use std::path::PathBuf;

    use mmer_core::Split;
    use mmer_eval::{ClassificationReport, ReportAggregate};

    use super::*;

    const NAMES: [&str; 3] = ["neutral", "joy", "<b>&\"odd\""];

    /// Three classes, two seeds, the second seed without a curve.
    fn evaluation() -> RunEvaluation {
        let gold = [0, 0, 0, 1, 1, 2, 2, 2];
        let first = ClassificationReport::new(&gold, &[0, 0, 1, 1, 1, 2, 0, 2], 3).unwrap();
        let second = ClassificationReport::new(&gold, &[0, 1, 1, 1, 0, 2, 2, 2], 3).unwrap();
        let aggregate = ReportAggregate::from_reports(&[first.clone(), second.clone()]).unwrap();
        RunEvaluation {
            split: Split::Test,
            corpus: "corpus <x>".to_string(),
            classes: NAMES.iter().map(|c| c.to_string()).collect(),
            aggregate,
            per_seed: vec![(7, first), (11, second)],
            written: PathBuf::from("/tmp/run/eval-test.json"),
        }
    }

    fn curve(best_epoch: usize) -> LearningCurve {
        LearningCurve {
            best_epoch,
            history: (1..=4)
                .map(|epoch| EpochRecord {
                    epoch,
                    train_loss: 1.5 / epoch as f64,
                    valid_weighted_f1: 0.3 + 0.1 * epoch as f64,
                })
                .collect(),
            train_seconds: Some(12.0),
        }
    }

    #[test]
    fn eval_report_is_self_contained_and_complete() {
        let evaluation = evaluation();
        let curves = vec![
            (7, Ok(curve(3))),
            (
                11,
                Err("seed-11/metrics.json could not be read".to_string()),
            ),
        ];
        let page = evaluation_report(Path::new("/tmp/run <a&b>"), &evaluation, &curves).unwrap();
        // Self-contained: nothing fetched, no script.
        for needle in ["<script", "http://", "https://", "src=", "@import", "url("] {
            assert!(!page.contains(needle), "page contains {needle}");
        }
        // Escaping: the odd class name, corpus and run path never appear raw.
        assert!(!page.contains("<b>&\"odd\""));
        assert!(page.contains("&lt;b&gt;&amp;&quot;odd&quot;"));
        assert!(page.contains("corpus &lt;x&gt;"));
        assert!(page.contains("run &lt;a&amp;b&gt;"));
        // Summed matrix plus one per seed, each with a cell per class pair.
        assert_eq!(page.matches("<td class=\"cell").count(), 3 * 9);
        assert_eq!(page.matches("<table class=\"cm\">").count(), 3);
        // Seed 7 row 0 of the summed matrix: gold neutral predicted neutral 2+1.
        assert!(page.contains("title=\"gold neutral, predicted neutral: 3 (50.0% of the row)\""));
        // A learning-curve path per drawn seed and chart; the kept epoch ringed.
        assert_eq!(
            page.matches("<path class=\"curve loss\" data-seed=\"7\"")
                .count(),
            1
        );
        assert_eq!(
            page.matches("<path class=\"curve f1\" data-seed=\"7\"")
                .count(),
            1
        );
        assert!(!page.contains("data-seed=\"11\""));
        assert_eq!(page.matches("<circle class=\"best\"").count(), 2);
        assert!(page.contains("Seed 11: no curve, seed-11/metrics.json could not be read."));
        // Per-class F1 bars: one per class.
        assert_eq!(page.matches("<div class=\"bar\"").count(), 3);
    }

    #[test]
    fn eval_report_one_seed_reads_curves_from_the_run() {
        let mut evaluation = evaluation();
        evaluation.per_seed.truncate(1);
        let reports: Vec<_> = evaluation.per_seed.iter().map(|(_, r)| r.clone()).collect();
        evaluation.aggregate = ReportAggregate::from_reports(&reports).unwrap();
        let run = std::env::temp_dir().join(format!("mmer-eval-report-{}", std::process::id()));
        std::fs::create_dir_all(run.join("seed-7")).unwrap();
        std::fs::write(
            run.join("seed-7/metrics.json"),
            r#"{"seed":7,"best_epoch":2,"valid":null,"test":null,"train_seconds":3.5,
               "history":[{"epoch":1,"train_loss":1.2,"valid_weighted_f1":0.4},
                          {"epoch":2,"train_loss":0.9,"valid_weighted_f1":0.5}]}"#,
        )
        .unwrap();
        let page = run_report(&run, &evaluation).unwrap();
        std::fs::remove_dir_all(&run).unwrap();
        assert_eq!(page.matches("<td class=\"cell").count(), 9);
        assert_eq!(page.matches("<path class=\"curve loss\"").count(), 1);
        assert!(page.contains("2 of 2"));
        if let Ok(path) = std::env::var("MMER_EVAL_REPORT_EXAMPLE") {
            std::fs::write(path, &page).unwrap();
        }
    }

    #[test]
    fn nice_range_is_round() {
        assert_eq!(nice_range(0.13, 0.87), (0.0, 1.0, 0.2));
        let (lo, hi, step) = nice_range(5.0, 5.0);
        assert!(lo < 5.0 && hi > 5.0 && step > 0.0);
    }
}
