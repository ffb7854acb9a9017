//! Cross-dataset evaluation: a finished run's models, trained on one
//! corpus, scored on another corpus's turns through an explicit label map;
//! and the in-domain reference, a run scored on its own data through the
//! same map, so that both are measured on the same turns and classes.
//!
//! # The label map
//!
//! A TOML file (examples under `docs/label-maps/`):
//!
//! ```toml
//! source = "meld"     # the label set the model was trained on
//! target = "iemocap"  # the label set of the evaluation data
//!
//! [map]               # source class = target class, or a list of them
//! neutral = "neutral"
//! joy = ["happy", "excited"]
//! sadness = "sad"
//! anger = "angry"
//! ```
//!
//! `source` and `target` name label sets (`LabelSpace::name`: `meld`,
//! `iemocap`, a declared set's name) and are checked against the model's
//! checkpoint and the evaluation data. Every key of `[map]` must be a class
//! of the source set, every value a class of the target set (matched
//! case-insensitively); a class that is neither, a class mapped twice, a
//! target listed twice for one class, an empty list, an empty `[map]` or an
//! unknown key is an error naming the file and the line. A class left out
//! of `[map]` is *unmapped*: never silently dropped, but reported.
//!
//! # Comparison classes
//!
//! The map is a bipartite graph between source and target classes; each
//! of its connected components is one comparison class, named
//! `<source classes>/<target classes>` (`joy/happy+excited`; just the name
//! when both sides are one class of that name). One-to-many
//! (`joy = ["happy", "excited"]`) and many-to-one (`happy = "joy"` and
//! `excited = "joy"`) maps give one component each; two entries sharing a
//! target join their components. A map whose classes all end up in one
//! component has nothing to tell apart and is refused.
//!
//! # Scoring
//!
//! Single-label: a turn whose gold class is in a component has that
//! component as its gold class; a turn whose gold class is unmapped is
//! left out and counted per class. The model's prediction is the component
//! with the most probability mass, summing the softmax over each
//! component's model classes (the probability of the component, as the
//! model sees it). The mass on unmapped model classes cannot be scored;
//! its mean, and the share of turns whose single most probable class is
//! unmapped, are reported. Metrics: [`ClassificationReport`] over the
//! components (weighted F1 the headline), per seed, mean ± sample std over
//! seeds.
//!
//! Multi-label: a component's gold bit is on when any of its target bits
//! is; its probability is the highest of its model labels' sigmoids;
//! [`MultiLabelScores`] at the fixed threshold 0.5. The thresholds a run
//! tuned on its own validation split are per *source* label and calibrated
//! to the source corpus, so they are not carried over. Every labelled turn
//! is kept (a multi-label annotation decides each class on its own), and
//! the on-bits of unmapped target classes, which cannot be scored, are
//! counted per class.
//!
//! # Cross-domain and in-domain
//!
//! [`evaluate_mapped`] with `on` = the target corpus's run directory (or a
//! run config) scores the run's models on that data: model side = the
//! map's source, data side = its target. Without `on` the run is scored on
//! its own data, with its classes grouped by whichever side of the map
//! names its label set: the target corpus's own run so gives the in-domain
//! row on exactly the components and turns of the cross-domain one.
//!
//! The evaluation data's text features must come from the model's encoder
//! and view (`DataConfig::text_source`), or the evaluation is refused.

use std::path::{Path, PathBuf};

use mmer_core::{Dialogue, Label, LabelSpace, Modality, Split};
use mmer_eval::{
    Aggregate, ClassificationReport, MultiLabelScores, MultiLabelScoresAggregate, ReportAggregate,
};
use mmer_train::Checkpoint;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::RunConfig;
use crate::error::{Context, Result, bail, ensure};
use crate::evaluate::check_complete;

/// Which side of a label map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapSide {
    /// The classes a model was trained on (the `[map]` keys).
    Source,
    /// The classes of the evaluation data (the `[map]` values).
    Target,
}

impl MapSide {
    fn as_str(self) -> &'static str {
        match self {
            MapSide::Source => "source",
            MapSide::Target => "target",
        }
    }
}

/// A value of a label-map file with the line it is written on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Its line in the file.
    pub line: usize,
}

/// One `[map]` entry: a source class and the target classes it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// The source class (the key).
    pub source: Located<String>,
    /// The target classes (one value, or the list's items).
    pub targets: Vec<Located<String>>,
}

/// A label-map file as written: syntax checked, classes not yet (see
/// [`LabelMap::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    /// The file it was read from; every error names it.
    pub path: PathBuf,
    /// The label set the model was trained on.
    pub source: Located<String>,
    /// The label set of the evaluation data.
    pub target: Located<String>,
    /// The `[map]` entries, in file order.
    pub entries: Vec<MapEntry>,
}

/// The file's layout, for serde (spans give the lines).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    source: Spanned<String>,
    target: Spanned<String>,
    map: Option<Spanned<std::collections::BTreeMap<Spanned<String>, Spanned<Targets>>>>,
}

/// A `[map]` value: one class, or a list of them.
enum Targets {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Targets;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a target class name or a list of target class names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Targets, E> {
                Ok(Targets::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Targets, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push(item);
                }
                Ok(Targets::Many(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The line (from 1) of byte `offset` of `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl LabelMap {
    /// Reads and parses the label map at `path`.
    ///
    /// # Errors
    /// An unreadable file, or one that [`LabelMap::parse`] refuses.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the label map {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses the text of a label map read from `path` (named by errors).
    ///
    /// # Errors
    /// `<path>:<line>: …` for TOML that does not parse, a missing or
    /// unknown key, a value that is not a class name or a list of them, an
    /// empty list or an empty `[map]`; `<path>: …` for a missing `[map]`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file = path.display();
        let parsed: MapFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            crate::Error::Refused(match e.span() {
                Some(span) => format!("{file}:{}: {message}", line_at(text, span.start)),
                None => format!("{file}: {message}"),
            })
        })?;
        let located = |s: &Spanned<String>| Located {
            value: s.get_ref().clone(),
            line: line_at(text, s.span().start),
        };
        let Some(map) = parsed.map else {
            bail!(
                "{file}: no [map] table: list each source class with the target class(es) it maps to, e.g. [map] joy = [\"happy\", \"excited\"]"
            );
        };
        let mut entries: Vec<(usize, MapEntry)> = Vec::new();
        for (key, value) in map.get_ref() {
            let targets = match value.get_ref() {
                Targets::One(class) => vec![Located {
                    value: class.clone(),
                    line: line_at(text, value.span().start),
                }],
                Targets::Many(list) => list.iter().map(located).collect(),
            };
            let source = located(key);
            ensure!(
                !targets.is_empty(),
                "{file}:{}: {:?} maps to an empty list: name its target class(es), or leave it out of [map] to report it as unmapped",
                line_at(text, value.span().start),
                source.value
            );
            entries.push((
                key.span().start,
                MapEntry {
                    source: located(key),
                    targets,
                },
            ));
        }
        ensure!(
            !entries.is_empty(),
            "{file}:{}: [map] is empty: list each source class with the target class(es) it maps to",
            line_at(text, map.span().start)
        );
        entries.sort_by_key(|(start, _)| *start);
        Ok(Self {
            path: path.to_path_buf(),
            source: located(&parsed.source),
            target: located(&parsed.target),
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        })
    }

    /// The label set named on `side`.
    pub fn name(&self, side: MapSide) -> &str {
        match side {
            MapSide::Source => &self.source.value,
            MapSide::Target => &self.target.value,
        }
    }

    /// `<file>:<line>` of the `source` or `target` key.
    fn at(&self, side: MapSide) -> String {
        let line = match side {
            MapSide::Source => self.source.line,
            MapSide::Target => self.target.line,
        };
        format!("{}:{line}", self.path.display())
    }

    /// An error unless `space` is the label set named on `side`; `whose`
    /// says where `space` comes from (`"the model runs/x/seed-0 was
    /// trained on"`).
    ///
    /// # Errors
    /// The names differ, naming the file and line.
    pub fn check_name(&self, side: MapSide, space: &LabelSpace, whose: &str) -> Result<()> {
        ensure!(
            self.name(side) == space.name,
            "{}: {} = {:?}, but {whose} the label set {} ({})",
            self.at(side),
            side.as_str(),
            self.name(side),
            space.name,
            space.classes.join(", ")
        );
        Ok(())
    }

    /// The classes of `side`: `given` (checked against the map's name),
    /// else the built-in preset of that name, else only the classes the map
    /// names on that side (then not checked against a label set).
    fn side_space(&self, side: MapSide, given: Option<&LabelSpace>) -> Result<(LabelSpace, bool)> {
        if let Some(space) = given {
            self.check_name(side, space, "the classes given here are")?;
            return Ok((space.clone(), true));
        }
        if let Ok(space) = crate::labels::preset_space(self.name(side)) {
            return Ok((space, true));
        }
        let mut classes: Vec<String> = Vec::new();
        let named: Vec<&Located<String>> = match side {
            MapSide::Source => self.entries.iter().map(|e| &e.source).collect(),
            MapSide::Target => self.entries.iter().flat_map(|e| &e.targets).collect(),
        };
        for class in named {
            if !classes.iter().any(|c| c.eq_ignore_ascii_case(&class.value)) {
                classes.push(class.value.clone());
            }
        }
        let space = LabelSpace {
            name: self.name(side).to_string(),
            classes,
            multi_label: false,
        };
        Ok((space, false))
    }

    /// The index of `class` in `space`, or an error naming the line.
    fn index_in(&self, space: &LabelSpace, class: &Located<String>) -> Result<usize> {
        space.index_of(&class.value).ok().with_context(|| {
            format!(
                "{}:{}: class {:?} is not in {} ({})",
                self.path.display(),
                class.line,
                class.value,
                space.name,
                space.classes.join(", ")
            )
        })
    }

    /// Checks every class against the label sets and builds the comparison
    /// classes. `source` and `target` are the label sets of the two sides
    /// when known; a side given as `None` is the built-in preset of the
    /// map's name for it, or, when there is none, the classes the map
    /// names (unchecked: an in-domain evaluation of the other side).
    ///
    /// # Errors
    /// A label set whose name is not the map's; a class not in its set, a
    /// source class mapped twice, a target listed twice for one class
    /// (each naming the file and line); every class in one component.
    pub fn resolve(
        &self,
        source: Option<&LabelSpace>,
        target: Option<&LabelSpace>,
    ) -> Result<Mapping> {
        let (source, source_checked) = self.side_space(MapSide::Source, source)?;
        let (target, target_checked) = self.side_space(MapSide::Target, target)?;
        let file = self.path.display();
        let ns = source.num_classes();
        let mut parent: Vec<usize> = (0..ns + target.num_classes()).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let mut source_line: Vec<Option<usize>> = vec![None; ns];
        let mut target_mapped = vec![false; target.num_classes()];
        let mut first_nodes = Vec::new();
        for entry in &self.entries {
            let s = self.index_in(&source, &entry.source)?;
            if let Some(line) = source_line[s] {
                bail!(
                    "{file}:{}: {} is mapped twice (also on line {line}): give it one entry, with a list for several target classes",
                    entry.source.line,
                    source.name_of(s)
                );
            }
            source_line[s] = Some(entry.source.line);
            first_nodes.push(s);
            let mut listed = Vec::new();
            for class in &entry.targets {
                let t = self.index_in(&target, class)?;
                ensure!(
                    !listed.contains(&t),
                    "{file}:{}: {} is listed twice for {}",
                    class.line,
                    target.name_of(t),
                    source.name_of(s)
                );
                listed.push(t);
                target_mapped[t] = true;
                let (a, b) = (root(&mut parent, s), root(&mut parent, ns + t));
                parent[a] = b;
            }
        }
        let roots: Vec<usize> = (0..parent.len()).map(|x| root(&mut parent, x)).collect();
        // Components in the order the file first mentions them.
        let mut order: Vec<usize> = Vec::new();
        for &s in &first_nodes {
            if !order.contains(&roots[s]) {
                order.push(roots[s]);
            }
        }
        let group_of = |node: usize| order.iter().position(|&r| r == roots[node]);
        let source_group: Vec<Option<usize>> = (0..ns)
            .map(|s| source_line[s].and_then(|_| group_of(s)))
            .collect();
        let target_group: Vec<Option<usize>> = (0..target.num_classes())
            .map(|t| target_mapped[t].then(|| group_of(ns + t)).flatten())
            .collect();
        let members = |space: &LabelSpace, group: &[Option<usize>], c: usize| -> Vec<String> {
            space
                .classes
                .iter()
                .zip(group)
                .filter(|(_, g)| **g == Some(c))
                .map(|(name, _)| name.clone())
                .collect()
        };
        let components: Vec<Component> = (0..order.len())
            .map(|c| {
                Component::new(
                    members(&source, &source_group, c),
                    members(&target, &target_group, c),
                )
            })
            .collect();
        ensure!(
            components.len() >= 2,
            "{file}: every mapped class falls into one comparison class ({}): there is nothing to tell apart; map the classes into at least two separate groups",
            components[0].name
        );
        Ok(Mapping {
            path: self.path.clone(),
            components,
            source: MappedSide {
                space: source,
                group: source_group,
                checked: source_checked,
            },
            target: MappedSide {
                space: target,
                group: target_group,
                checked: target_checked,
            },
        })
    }
}

/// One comparison class: a connected component of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// `<source>/<target>` with `+` between classes (`joy/happy+excited`),
    /// or the class name when both sides are that one class.
    pub name: String,
    /// Its source classes, in label order.
    pub source: Vec<String>,
    /// Its target classes, in label order.
    pub target: Vec<String>,
}

impl Component {
    /// Its classes on `side`.
    pub fn classes(&self, side: MapSide) -> &[String] {
        match side {
            MapSide::Source => &self.source,
            MapSide::Target => &self.target,
        }
    }

    fn new(source: Vec<String>, target: Vec<String>) -> Self {
        let name = if source == target && source.len() == 1 {
            source[0].clone()
        } else {
            format!("{}/{}", source.join("+"), target.join("+"))
        };
        Self {
            name,
            source,
            target,
        }
    }
}

/// One side of a resolved map.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSide {
    /// The side's label set (only the named classes when not `checked`).
    pub space: LabelSpace,
    /// The component of each class, `None` for an unmapped one.
    pub group: Vec<Option<usize>>,
    /// Whether the classes were checked against the full label set.
    pub checked: bool,
}

impl MappedSide {
    /// The classes the map leaves out, in label order.
    pub fn unmapped(&self) -> Vec<String> {
        self.space
            .classes
            .iter()
            .zip(&self.group)
            .filter(|(_, g)| g.is_none())
            .map(|(c, _)| c.clone())
            .collect()
    }
}

/// A label map checked against label sets: the comparison classes and the
/// component of every class of each side.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The map file.
    pub path: PathBuf,
    /// The comparison classes, in the order the file first names them.
    pub components: Vec<Component>,
    /// The source side.
    pub source: MappedSide,
    /// The target side.
    pub target: MappedSide,
}

impl Mapping {
    /// The side `side`.
    pub fn side(&self, side: MapSide) -> &MappedSide {
        match side {
            MapSide::Source => &self.source,
            MapSide::Target => &self.target,
        }
    }

    /// The component names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.components.iter().map(|c| c.name.as_str()).collect()
    }
}

/// The labelled turns of `dialogues` with the model's probabilities.
fn labelled_turns<'a>(
    dialogues: &'a [Dialogue],
    probs: &'a [Vec<Vec<f32>>],
) -> Result<Vec<(&'a str, &'a Label, &'a [f32])>> {
    ensure!(
        probs.len() == dialogues.len(),
        "{} dialogues but probabilities for {}",
        dialogues.len(),
        probs.len()
    );
    let mut out = Vec::new();
    for (d, p) in dialogues.iter().zip(probs) {
        ensure!(
            p.len() == d.utterances.len(),
            "dialogue {}: {} turns but probabilities for {}",
            d.id,
            d.utterances.len(),
            p.len()
        );
        for (u, row) in d.utterances.iter().zip(p) {
            if let Some(label) = &u.label {
                out.push((u.id.as_str(), label, row.as_slice()));
            }
        }
    }
    Ok(out)
}

/// Single-label turns mapped onto the components.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleMapped {
    /// Gold component of each scored turn.
    pub gold: Vec<usize>,
    /// Predicted component of each scored turn.
    pub pred: Vec<usize>,
    /// Per data class, the turns left out because that gold class is
    /// unmapped (0 for mapped classes).
    pub excluded: Vec<usize>,
    /// Mean over scored turns of the probability on unmapped model classes.
    pub unmapped_probability: f64,
    /// Share of scored turns whose most probable model class is unmapped.
    pub unmapped_top: f64,
}

/// Maps single-label turns: gold through `data_group`, the model's
/// probabilities (one per model class) summed per component through
/// `model_group`, the prediction the component with the most mass (the
/// first on a tie).
///
/// # Errors
/// A multi-label turn, a gold class outside `data_group`, a probability row
/// of another width than `model_group`, or no turn with a mapped class.
pub fn map_single_label(
    dialogues: &[Dialogue],
    probs: &[Vec<Vec<f32>>],
    model_group: &[Option<usize>],
    data_group: &[Option<usize>],
    components: usize,
) -> Result<SingleMapped> {
    let mut out = SingleMapped {
        gold: Vec::new(),
        pred: Vec::new(),
        excluded: vec![0; data_group.len()],
        unmapped_probability: 0.0,
        unmapped_top: 0.0,
    };
    let (mut unmapped_mass, mut unmapped_top) = (0.0f64, 0usize);
    for (id, label, row) in labelled_turns(dialogues, probs)? {
        let Label::Single(class) = *label else {
            bail!("turn {id} has a multi-label annotation; the model is single-label");
        };
        let group = *data_group.get(class).with_context(|| {
            format!("turn {id}: gold class {class} is not in the data's label set")
        })?;
        ensure!(
            row.len() == model_group.len(),
            "turn {id}: {} probabilities for {} model classes",
            row.len(),
            model_group.len()
        );
        let Some(gold) = group else {
            out.excluded[class] += 1;
            continue;
        };
        let mut mass = vec![0.0f64; components];
        let mut unmapped = 0.0f64;
        for (&p, g) in row.iter().zip(model_group) {
            match g {
                Some(g) => mass[*g] += f64::from(p),
                None => unmapped += f64::from(p),
            }
        }
        let pred = first_max(&mass);
        let top = first_max(&row.iter().map(|&p| f64::from(p)).collect::<Vec<_>>());
        unmapped_mass += unmapped;
        unmapped_top += usize::from(model_group[top].is_none());
        out.gold.push(gold);
        out.pred.push(pred);
    }
    ensure!(
        !out.gold.is_empty(),
        "no labelled turn has a mapped gold class (left out per class: {:?})",
        out.excluded
    );
    let n = out.gold.len() as f64;
    out.unmapped_probability = unmapped_mass / n;
    out.unmapped_top = unmapped_top as f64 / n;
    Ok(out)
}

/// Multi-label turns mapped onto the components.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiMapped {
    /// Gold bits of each turn: a component is on when any of its data
    /// classes is.
    pub gold: Vec<Vec<bool>>,
    /// Probability of each component: the highest of its model labels'.
    pub probs: Vec<Vec<f32>>,
    /// Per data class, the on-bits not scored because the class is
    /// unmapped (0 for mapped classes); the turns are kept.
    pub unscored: Vec<usize>,
    /// Mean over turns of the highest probability of an unmapped model
    /// label (0 when every model label is mapped).
    pub unmapped_probability: f64,
    /// Share of turns on which an unmapped model label is predicted
    /// present (probability ≥ 0.5).
    pub unmapped_top: f64,
}

/// Maps multi-label turns as [`MultiMapped`] describes.
///
/// # Errors
/// A single-label turn, a gold row or probability row of the wrong width,
/// or no labelled turn.
pub fn map_multi_label(
    dialogues: &[Dialogue],
    probs: &[Vec<Vec<f32>>],
    model_group: &[Option<usize>],
    data_group: &[Option<usize>],
    components: usize,
) -> Result<MultiMapped> {
    let mut out = MultiMapped {
        gold: Vec::new(),
        probs: Vec::new(),
        unscored: vec![0; data_group.len()],
        unmapped_probability: 0.0,
        unmapped_top: 0.0,
    };
    let (mut unmapped_sum, mut unmapped_on) = (0.0f64, 0usize);
    for (id, label, row) in labelled_turns(dialogues, probs)? {
        let Label::Multi(bits) = label else {
            bail!("turn {id} has a single-label annotation; the model is multi-label");
        };
        ensure!(
            bits.len() == data_group.len(),
            "turn {id}: {} label bits for {} data classes",
            bits.len(),
            data_group.len()
        );
        ensure!(
            row.len() == model_group.len(),
            "turn {id}: {} probabilities for {} model labels",
            row.len(),
            model_group.len()
        );
        let mut gold = vec![false; components];
        for (class, (&on, g)) in bits.iter().zip(data_group).enumerate() {
            match (on, g) {
                (true, Some(g)) => gold[*g] = true,
                (true, None) => out.unscored[class] += 1,
                (false, _) => {}
            }
        }
        let mut p = vec![0.0f32; components];
        let mut unmapped = 0.0f32;
        for (&q, g) in row.iter().zip(model_group) {
            match g {
                Some(g) => p[*g] = p[*g].max(q),
                None => unmapped = unmapped.max(q),
            }
        }
        unmapped_sum += f64::from(unmapped);
        unmapped_on += usize::from(unmapped >= 0.5);
        out.gold.push(gold);
        out.probs.push(p);
    }
    ensure!(!out.gold.is_empty(), "no labelled turn to score");
    let n = out.gold.len() as f64;
    out.unmapped_probability = unmapped_sum / n;
    out.unmapped_top = unmapped_on as f64 / n;
    Ok(out)
}

/// The index of the first largest value.
fn first_max(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Cross-domain or in-domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationKind {
    /// The run's models on another dataset's turns.
    CrossDomain,
    /// The run's models on their own dataset, through the map's side of
    /// their label set.
    InDomain,
}

/// A count of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// Class name.
    pub class: String,
    /// The count.
    pub count: usize,
}

/// The turns an evaluation read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnCounts {
    /// Labelled turns of the split.
    pub labelled: usize,
    /// Turns scored.
    pub scored: usize,
    /// Single-label: per unmapped gold class, the turns left out.
    /// Multi-label: per unmapped class, the on-bits not scored (turns kept).
    pub unmapped_gold: Vec<ClassCount>,
}

/// What the model puts on classes the map leaves out, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnmappedPrediction {
    /// The model's unmapped classes.
    pub classes: Vec<String>,
    /// Single-label: mean probability mass on them; multi-label: mean of
    /// their highest probability.
    pub mean_probability: Aggregate,
    /// Single-label: share of turns whose most probable class is one of
    /// them; multi-label: share of turns with one of them ≥ 0.5.
    pub top_share: Aggregate,
}

/// Scores over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedScores {
    /// Single-label: a classification report over the components.
    SingleLabel {
        /// Metrics over seeds (per-class entries: components in order).
        aggregate: ReportAggregate,
        /// Each seed's report.
        per_seed: Vec<(u64, ClassificationReport)>,
    },
    /// Multi-label: scores of the component probabilities at 0.5.
    MultiLabel {
        /// Metrics over seeds (per-label entries: components in order).
        aggregate: MultiLabelScoresAggregate,
        /// Each seed's scores.
        per_seed: Vec<(u64, MultiLabelScores)>,
    },
}

impl MappedScores {
    /// The headline: weighted F1 over seeds.
    pub fn weighted_f1(&self) -> &Aggregate {
        match self {
            MappedScores::SingleLabel { aggregate, .. } => &aggregate.weighted_f1,
            MappedScores::MultiLabel { aggregate, .. } => &aggregate.report.weighted_f1,
        }
    }
}

/// A run's seeds scored through a label map, written to
/// `eval-map-<map stem>-<data corpus>-<split>.json` in the run.
#[derive(Debug, Clone, Serialize)]
pub struct MappedEvaluation {
    /// Cross-domain or in-domain.
    pub kind: EvaluationKind,
    /// The run whose models were scored.
    pub run: PathBuf,
    /// The corpus the models were trained on.
    pub model_corpus: String,
    /// The models' label set.
    pub model_labels: String,
    /// Where the evaluation data's config came from (the run itself in
    /// domain).
    pub data: PathBuf,
    /// The evaluation corpus.
    pub data_corpus: String,
    /// Its label set.
    pub data_labels: String,
    /// The split scored.
    pub split: Split,
    /// The text feature source of models and data.
    pub text_source: Option<String>,
    /// The label map.
    pub label_map: PathBuf,
    /// Which side of the map the models' classes are.
    pub model_side: MapSide,
    /// Which side of the map the data's classes are.
    pub data_side: MapSide,
    /// The comparison classes.
    pub components: Vec<Component>,
    /// The data's classes the map leaves out.
    pub unmapped_data_classes: Vec<String>,
    /// Turns read, scored and left out.
    pub turns: TurnCounts,
    /// What the models put on their unmapped classes.
    pub unmapped_prediction: UnmappedPrediction,
    /// Seeds scored.
    pub seeds: Vec<u64>,
    /// The scores.
    pub scores: MappedScores,
    /// Where the evaluation was written.
    #[serde(skip)]
    pub written: PathBuf,
}

impl MappedEvaluation {
    /// A plain-text summary: what was scored on what, the components, the
    /// unmapped classes, then the metrics table.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} → {} ({}) | {} split | {} seed(s) | {}\n\n",
            self.model_corpus,
            self.data_corpus,
            match self.kind {
                EvaluationKind::CrossDomain => "cross-domain",
                EvaluationKind::InDomain => "in-domain",
            },
            self.split,
            self.seeds.len(),
            self.label_map.display()
        );
        out.push_str("comparison classes (model classes → data classes):\n");
        let width = self
            .components
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        for c in &self.components {
            out.push_str(&format!(
                "  {:width$}  {} → {}\n",
                c.name,
                c.classes(self.model_side).join(", "),
                c.classes(self.data_side).join(", ")
            ));
        }
        let u = &self.unmapped_prediction;
        if u.classes.is_empty() {
            out.push_str("unmapped model classes: none\n");
        } else {
            out.push_str(&format!(
                "unmapped model classes: {} (mean probability {} %, top class on {} % of turns)\n",
                u.classes.join(", "),
                u.mean_probability.display_percent(),
                u.top_share.display_percent()
            ));
        }
        let gold: Vec<String> = self
            .turns
            .unmapped_gold
            .iter()
            .map(|c| format!("{} {}", c.class, c.count))
            .collect();
        let multi = matches!(self.scores, MappedScores::MultiLabel { .. });
        out.push_str(&format!(
            "{}: {}\nscored: {} of {} labelled turns\n\n",
            match multi {
                true => "unmapped data classes (on-bits not scored)",
                false => "unmapped data classes (turns left out)",
            },
            if gold.is_empty() {
                "none".to_string()
            } else {
                gold.join(", ")
            },
            self.turns.scored,
            self.turns.labelled
        ));
        let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        out.push_str(&match &self.scores {
            MappedScores::SingleLabel { aggregate, .. } => aggregate.to_table(&names),
            MappedScores::MultiLabel { aggregate, .. } => aggregate.to_table(&names),
        });
        out
    }
}

/// The run config whose `[data]` gives the evaluation data: `path`'s
/// `config.toml` when it is a directory (a run), else the file itself.
fn data_config_of(path: &Path) -> Result<RunConfig> {
    let file = match path.is_dir() {
        true => path.join("config.toml"),
        false => path.to_path_buf(),
    };
    RunConfig::read(&file)
}

/// Scores every seed of the finished run in `run` on `split` through the
/// label map at `map`: on the data of `on` (a run directory or a run
/// config; cross-domain: the models' label set is the map's source, the
/// data's its target), or, without `on`, on the run's own data with its
/// classes grouped by the side of the map that names its label set
/// (in-domain). Writes `eval-map-<map stem>-<data corpus>-<split>.json`
/// in `run` (atomically).
///
/// # Errors
/// A map that does not parse or does not fit the label sets (naming file
/// and line), an unfinished or inconsistent run, evaluation data whose text
/// features come from another encoder or view than the models', a
/// single-label model on multi-label data or the reverse, or data that
/// cannot be loaded.
pub fn evaluate_mapped(
    run: &Path,
    on: Option<&Path>,
    map: &Path,
    split: Split,
) -> Result<MappedEvaluation> {
    let label_map = LabelMap::read(map)?;
    let config = RunConfig::read(&run.join("config.toml"))?;
    check_complete(run, &config)?;
    let mut models = Vec::new();
    for seed in &config.train.seeds {
        let dir = run.join(format!("seed-{seed}"));
        // A fine-tuned seed loads too: it is scored on its own layers' output.
        let (checkpoint, model) =
            Checkpoint::load_model(&dir).with_context(|| format!("loading {}", dir.display()))?;
        ensure!(
            checkpoint.seed == *seed
                && checkpoint.config.same_settings(&config.train)
                && checkpoint.text_encoder == config.data.text_source(),
            "{} was not trained by this run's config.toml (seed {}, text {:?}); the run directory is inconsistent",
            dir.display(),
            checkpoint.seed,
            checkpoint.text_encoder
        );
        if let Some((first, _, _)) = models.first() {
            let first: &Checkpoint = first;
            ensure!(
                checkpoint.labels == first.labels && checkpoint.corpus == first.corpus,
                "{} was trained on {} ({}), seed-{} on {} ({}); the run directory is inconsistent",
                dir.display(),
                checkpoint.corpus,
                checkpoint.labels.name,
                first.seed,
                first.corpus,
                first.labels.name
            );
        }
        models.push((checkpoint, model, dir));
    }
    let (first, _, first_dir) = models.first().context("the run lists no seeds")?;
    let model_labels = first.labels.clone();
    let model_corpus = first.corpus.clone();
    let whose = format!("the model {} was trained on", first_dir.display());

    let (data_config, data_path) = match on {
        Some(path) => {
            let data = data_config_of(path)?.data;
            let reads_text = first
                .layout
                .modalities
                .iter()
                .any(|(m, _)| *m == Modality::Text);
            if reads_text && data.text_source() != first.text_encoder {
                bail!(
                    "{}: its text features come from {}, but the model reads {}: the evaluation data must be embedded by the same encoder and layers (set [data] text_encoder, text_layers and text_tokens to the model's)",
                    path.display(),
                    data.text_source()
                        .unwrap_or_else(|| "the dataset's own features".into()),
                    first
                        .text_encoder
                        .clone()
                        .unwrap_or_else(|| "its dataset's own features".into())
                );
            }
            (data, path.to_path_buf())
        }
        None => (config.data.clone(), run.to_path_buf()),
    };
    // Fail on the map before the data loads where its label sets are known.
    let (model_side, data_side) = match on {
        Some(_) => {
            label_map.check_name(MapSide::Source, &model_labels, &whose)?;
            (MapSide::Source, MapSide::Target)
        }
        None if label_map.source.value == model_labels.name => (MapSide::Source, MapSide::Target),
        None if label_map.target.value == model_labels.name => (MapSide::Target, MapSide::Target),
        None => bail!(
            "{}: neither source = {:?} nor target = {:?} is the label set {} ({}) of the run {}, scored on its own data",
            label_map.path.display(),
            label_map.source.value,
            label_map.target.value,
            model_labels.name,
            model_labels.classes.join(", "),
            run.display()
        ),
    };
    let given = |side: MapSide| (side == model_side).then_some(&model_labels);
    label_map.resolve(given(MapSide::Source), given(MapSide::Target))?;

    let corpus = data_config
        .load(&config.train.modalities)
        .with_context(|| format!("loading the evaluation data of {}", data_path.display()))?;
    let dialogues = corpus.split(split);
    ensure!(
        !dialogues.is_empty(),
        "{} has no {split} split",
        corpus.name
    );
    let kind = match on {
        Some(_) => {
            let hint = match corpus.labels == model_labels {
                true => "; to score the run on its own data through the map, leave out --on",
                false => "",
            };
            label_map
                .check_name(
                    MapSide::Target,
                    &corpus.labels,
                    &format!("the data of {} has", data_path.display()),
                )
                .map_err(|e| crate::Error::Refused(format!("{e}{hint}")))?;
            EvaluationKind::CrossDomain
        }
        None => {
            ensure!(
                corpus.labels == model_labels && corpus.name == model_corpus,
                "{} was trained on {} ({}) but config.toml's data is {} ({}); the run directory is inconsistent",
                first_dir.display(),
                model_corpus,
                model_labels.classes.join(", "),
                corpus.name,
                corpus.labels.classes.join(", ")
            );
            EvaluationKind::InDomain
        }
    };
    ensure!(
        model_labels.multi_label == corpus.labels.multi_label,
        "the model is {} but {} is {}: scoring one kind through the other is not supported",
        kind_name(model_labels.multi_label),
        corpus.name,
        kind_name(corpus.labels.multi_label)
    );
    let mapping = {
        let spaces = |side: MapSide| match (side == model_side, side == data_side) {
            (true, _) => Some(&model_labels),
            (_, true) => Some(&corpus.labels),
            _ => None,
        };
        label_map.resolve(spaces(MapSide::Source), spaces(MapSide::Target))?
    };
    let model_group = &mapping.side(model_side).group;
    let data_group = &mapping.side(data_side).group;
    let k = mapping.components.len();

    let mut single = Vec::new();
    let mut multi = Vec::new();
    let (mut unmapped_mean, mut unmapped_top) = (Vec::new(), Vec::new());
    let (mut scored, mut unmapped_gold) = (0, vec![0; data_group.len()]);
    for (checkpoint, model, dir) in &models {
        let inputs = crate::evaluate::seed_inputs(checkpoint, dir, dialogues)?;
        let probs = checkpoint
            .label_probabilities(model, &inputs)
            .with_context(|| format!("predicting with {}", dir.display()))?;
        if model_labels.multi_label {
            let mapped = map_multi_label(dialogues, &probs, model_group, data_group, k)?;
            let scores = MultiLabelScores::new(&mapped.gold, &mapped.probs, k, &vec![0.5; k])?;
            multi.push((checkpoint.seed, scores));
            unmapped_mean.push(mapped.unmapped_probability);
            unmapped_top.push(mapped.unmapped_top);
            (scored, unmapped_gold) = (mapped.gold.len(), mapped.unscored);
        } else {
            let mapped = map_single_label(dialogues, &probs, model_group, data_group, k)?;
            let report = ClassificationReport::new(&mapped.gold, &mapped.pred, k)?;
            single.push((checkpoint.seed, report));
            unmapped_mean.push(mapped.unmapped_probability);
            unmapped_top.push(mapped.unmapped_top);
            (scored, unmapped_gold) = (mapped.gold.len(), mapped.excluded);
        }
    }
    let scores = if model_labels.multi_label {
        let all: Vec<_> = multi.iter().map(|(_, s)| s.clone()).collect();
        MappedScores::MultiLabel {
            aggregate: MultiLabelScoresAggregate::from_scores(&all)?,
            per_seed: multi,
        }
    } else {
        let all: Vec<_> = single.iter().map(|(_, r)| r.clone()).collect();
        MappedScores::SingleLabel {
            aggregate: ReportAggregate::from_reports(&all)?,
            per_seed: single,
        }
    };
    let labelled = dialogues
        .iter()
        .flat_map(|d| &d.utterances)
        .filter(|u| u.label.is_some())
        .count();
    let data_side_map = mapping.side(data_side);
    let stem = map
        .file_stem()
        .map_or("map".into(), |s| s.to_string_lossy().into_owned());
    let evaluation = MappedEvaluation {
        kind,
        run: run.to_path_buf(),
        model_corpus,
        model_labels: model_labels.name.clone(),
        data: data_path,
        data_corpus: corpus.name.clone(),
        data_labels: corpus.labels.name.clone(),
        split,
        text_source: first.text_encoder.clone(),
        label_map: map.to_path_buf(),
        model_side,
        data_side,
        components: mapping.components.clone(),
        unmapped_data_classes: data_side_map.unmapped(),
        turns: TurnCounts {
            labelled,
            scored,
            unmapped_gold: data_side_map
                .space
                .classes
                .iter()
                .zip(&data_side_map.group)
                .zip(&unmapped_gold)
                .filter(|((_, g), _)| g.is_none())
                .map(|((class, _), &count)| ClassCount {
                    class: class.clone(),
                    count,
                })
                .collect(),
        },
        unmapped_prediction: UnmappedPrediction {
            classes: mapping.side(model_side).unmapped(),
            mean_probability: Aggregate::from_values(&unmapped_mean)?,
            top_share: Aggregate::from_values(&unmapped_top)?,
        },
        seeds: config.train.seeds.clone(),
        scores,
        written: run.join(format!("eval-map-{stem}-{}-{split}.json", corpus.name)),
    };
    mmer_core::atomic::write_file(
        &evaluation.written,
        &serde_json::to_vec_pretty(&evaluation)?,
    )?;
    Ok(evaluation)
}

fn kind_name(multi_label: bool) -> &'static str {
    match multi_label {
        true => "multi-label",
        false => "single-label",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmer_core::Utterance;

    const MELD_TO_IEMOCAP: &str = "\
source = \"meld\"
target = \"iemocap\"

[map]
neutral = \"neutral\"
joy = [
    \"happy\",
    \"excited\",
]
sadness = \"sad\"
anger = \"angry\"
";

    fn parse(text: &str) -> Result<LabelMap> {
        LabelMap::parse(text, Path::new("maps/x.toml"))
    }

    fn resolve(text: &str) -> Result<Mapping> {
        parse(text)?.resolve(None, None)
    }

    #[test]
    fn a_map_reads_single_and_listed_targets_with_their_lines() {
        let map = parse(MELD_TO_IEMOCAP).unwrap();
        assert_eq!((map.source.line, map.target.line), (1, 2));
        type Lines<'a> = Vec<(&'a str, usize)>;
        let entries: Vec<(&str, usize, Lines)> = map
            .entries
            .iter()
            .map(|e| {
                let targets = e.targets.iter().map(|t| (t.value.as_str(), t.line));
                (e.source.value.as_str(), e.source.line, targets.collect())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("neutral", 5, vec![("neutral", 5)]),
                ("joy", 6, vec![("happy", 7), ("excited", 8)]),
                ("sadness", 10, vec![("sad", 10)]),
                ("anger", 11, vec![("angry", 11)]),
            ]
        );
    }

    #[test]
    fn components_join_one_to_many_and_many_to_one_maps() {
        let mapping = resolve(MELD_TO_IEMOCAP).unwrap();
        assert_eq!(
            mapping.names(),
            ["neutral", "joy/happy+excited", "sadness/sad", "anger/angry"]
        );
        // meld: neutral surprise fear sadness joy disgust anger
        assert_eq!(
            mapping.source.group,
            [Some(0), None, None, Some(2), Some(1), None, Some(3)]
        );
        // iemocap: happy sad neutral angry excited frustrated
        assert_eq!(
            mapping.target.group,
            [Some(1), Some(2), Some(0), Some(3), Some(1), None]
        );
        assert_eq!(mapping.source.unmapped(), ["surprise", "fear", "disgust"]);
        assert_eq!(mapping.target.unmapped(), ["frustrated"]);
        assert!(mapping.source.checked && mapping.target.checked);

        // Many-to-one (the reverse direction), and a shared target joining
        // two entries into one component.
        let reverse = resolve(
            "source = \"iemocap\"\ntarget = \"meld\"\n[map]\nneutral = \"neutral\"\n\
             happy = \"joy\"\nexcited = \"Joy\"\nsad = \"sadness\"\nangry = \"anger\"\n\
             frustrated = [\"anger\", \"disgust\"]\n",
        )
        .unwrap();
        assert_eq!(
            reverse.names(),
            [
                "neutral",
                "happy+excited/joy",
                "sad/sadness",
                "angry+frustrated/disgust+anger"
            ]
        );
        assert_eq!(
            reverse.source.group,
            [Some(1), Some(2), Some(0), Some(3), Some(1), Some(3)]
        );
        assert_eq!(reverse.target.unmapped(), ["surprise", "fear"]);
        assert_eq!(reverse.components[3].source, ["angry", "frustrated"]);
        assert_eq!(reverse.components[3].target, ["disgust", "anger"]);

        // A label set that is no preset and is not given: the classes the
        // map names, unchecked.
        let custom = resolve(
            "source = \"meld\"\ntarget = \"mine\"\n[map]\njoy = [\"glad\", \"Glad2\"]\nanger = \"mad\"\n",
        )
        .unwrap();
        assert_eq!(custom.target.space.classes, ["glad", "Glad2", "mad"]);
        assert!(!custom.target.checked);
        assert_eq!(custom.target.group, [Some(0), Some(0), Some(1)]);
    }

    #[test]
    fn every_bad_map_is_refused_naming_file_and_line() {
        let header = "source = \"meld\"\ntarget = \"iemocap\"\n";
        for (body, expected) in [
            ("[map]\njoy = [\"happy\"\n", "maps/x.toml:4:"),
            (
                "sourc = 1\n[map]\njoy = \"happy\"\n",
                "maps/x.toml:3: unknown field `sourc`",
            ),
            (
                "[map]\njoy = 3\n",
                "maps/x.toml:4: invalid type: integer `3`",
            ),
            (
                "[map]\njoy = [\"happy\", 2]\n",
                "maps/x.toml:4: invalid type",
            ),
            ("", "maps/x.toml: no [map] table"),
            ("\n[map]\n", "maps/x.toml:4: [map] is empty"),
            (
                "[map]\nneutral = \"neutral\"\njoy = []\n",
                "maps/x.toml:5: \"joy\" maps to an empty list",
            ),
            (
                "[map]\nneutral = \"neutral\"\njoyy = \"happy\"\n",
                "maps/x.toml:5: class \"joyy\" is not in meld (neutral, surprise, fear, sadness, joy, disgust, anger)",
            ),
            (
                "[map]\nneutral = \"neutral\"\njoy = [\n  \"happy\",\n  \"exited\",\n]\n",
                "maps/x.toml:7: class \"exited\" is not in iemocap (happy, sad, neutral, angry, excited, frustrated)",
            ),
            (
                "[map]\njoy = \"happy\"\nneutral = \"neutral\"\nJoy = \"excited\"\n",
                "maps/x.toml:6: joy is mapped twice (also on line 4)",
            ),
            (
                "[map]\nneutral = \"neutral\"\njoy = [\"happy\", \"Happy\"]\n",
                "maps/x.toml:5: happy is listed twice for joy",
            ),
            (
                "[map]\njoy = [\"happy\", \"neutral\"]\nneutral = \"neutral\"\n",
                "maps/x.toml: every mapped class falls into one comparison class (neutral+joy/happy+neutral)",
            ),
        ] {
            let err = resolve(&format!("{header}{body}")).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{body:?}:\n{err}");
        }
        let err = parse("target = \"iemocap\"\n[map]\njoy = \"happy\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("maps/x.toml:1: missing field `source`"),
            "{err}"
        );

        // The label sets named must be the model's and the data's.
        let map = parse(MELD_TO_IEMOCAP).unwrap();
        let err = map
            .resolve(Some(&LabelSpace::iemocap()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("maps/x.toml:1: source = \"meld\", but the classes given here are the label set iemocap (happy, "),
            "{err}"
        );
        let err = map
            .check_name(
                MapSide::Target,
                &LabelSpace::meld(),
                "the data of runs/m has",
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "maps/x.toml:2: target = \"iemocap\", but the data of runs/m has the label set meld (neutral, surprise, fear, sadness, joy, disgust, anger)"
        );
    }

    /// One dialogue whose turns carry `labels`.
    fn dialogue(labels: Vec<Option<Label>>) -> Dialogue {
        Dialogue {
            id: "d".into(),
            utterances: labels
                .into_iter()
                .enumerate()
                .map(|(i, label)| Utterance {
                    label,
                    ..Utterance::new(format!("u{i}"), i, "A")
                })
                .collect(),
        }
    }

    #[test]
    fn single_label_probabilities_are_summed_per_component_and_unmapped_turns_counted() {
        let mapping = resolve(MELD_TO_IEMOCAP).unwrap();
        // A MELD model on IEMOCAP turns: gold happy, frustrated, sad,
        // excited, (none), frustrated, neutral.
        let gold = [Some(0), Some(5), Some(1), Some(4), None, Some(5), Some(2)];
        let dialogues = vec![dialogue(
            gold.iter().map(|g| g.map(Label::Single)).collect(),
        )];
        // neutral surprise fear sadness joy disgust anger
        let probs = vec![vec![
            vec![0.3, 0.4, 0.0, 0.0, 0.3, 0.0, 0.0], // top surprise; joy = neutral: tie → neutral
            vec![0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9], // excluded (frustrated)
            vec![0.2, 0.0, 0.1, 0.5, 0.0, 0.2, 0.0], // sadness
            vec![0.4, 0.0, 0.0, 0.0, 0.6, 0.0, 0.0], // joy
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], // unlabelled
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], // excluded
            vec![0.1, 0.0, 0.0, 0.0, 0.0, 0.5, 0.4], // top disgust; anger
        ]];
        let mapped = map_single_label(
            &dialogues,
            &probs,
            &mapping.source.group,
            &mapping.target.group,
            4,
        )
        .unwrap();
        assert_eq!(mapped.gold, [1, 2, 1, 0]);
        assert_eq!(mapped.pred, [0, 2, 1, 3]);
        assert_eq!(mapped.excluded, [0, 0, 0, 0, 0, 2]);
        assert!((mapped.unmapped_probability - (0.4 + 0.3 + 0.0 + 0.5) / 4.0).abs() < 1e-6);
        assert_eq!(mapped.unmapped_top, 0.5);

        // In domain on the target side: IEMOCAP's own probabilities, summed
        // over happy + excited.
        let probs = vec![vec![vec![0.3, 0.0, 0.35, 0.0, 0.3, 0.05]; 7]];
        let mapped = map_single_label(
            &dialogues,
            &probs,
            &mapping.target.group,
            &mapping.target.group,
            4,
        )
        .unwrap();
        assert_eq!(mapped.pred, [1; 4]);
        assert!((mapped.unmapped_probability - 0.05).abs() < 1e-6);

        let err = map_single_label(
            &dialogues,
            &probs,
            &mapping.source.group,
            &mapping.target.group,
            4,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("6 probabilities for 7 model classes"), "{err}");
        let only_unmapped = vec![dialogue(vec![Some(Label::Single(5))])];
        let err = map_single_label(
            &only_unmapped,
            &[vec![vec![0.0; 6]]],
            &mapping.target.group,
            &mapping.target.group,
            4,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no labelled turn has a mapped gold class"),
            "{err}"
        );
    }

    #[test]
    fn multi_label_components_take_any_gold_bit_and_the_highest_probability() {
        let mapping = resolve(
            "source = \"a\"\ntarget = \"b\"\n[map]\nx = [\"p\", \"q\"]\ny = \"r\"\nz = \"r\"\n",
        )
        .unwrap();
        // Neither set is a preset: their classes are the ones the map names.
        assert_eq!(mapping.names(), ["x/p+q", "y+z/r"]);
        let bits = |b: [bool; 3]| Some(Label::Multi(b.to_vec()));
        let dialogues = vec![dialogue(vec![
            bits([false, true, false]),
            bits([false, false, true]),
            bits([false, false, false]),
        ])];
        let probs = vec![vec![
            vec![0.9, 0.2, 0.4],
            vec![0.1, 0.7, 0.3],
            vec![0.2, 0.1, 0.6],
        ]];
        let mut target_group = mapping.target.group.clone();
        target_group.push(None); // a fourth, unmapped data class
        let dialogues_4 = vec![dialogue(vec![
            Some(Label::Multi(vec![false, true, false, true])),
            Some(Label::Multi(vec![false, false, true, true])),
            Some(Label::Multi(vec![false, false, false, false])),
        ])];
        let mapped = map_multi_label(
            &dialogues_4,
            &probs,
            &mapping.source.group,
            &target_group,
            2,
        )
        .unwrap();
        assert_eq!(
            mapped.gold,
            [vec![true, false], vec![false, true], vec![false, false]]
        );
        assert_eq!(
            mapped.probs,
            [vec![0.9, 0.4], vec![0.1, 0.7], vec![0.2, 0.6]]
        );
        assert_eq!(mapped.unscored, [0, 0, 0, 2]);
        assert_eq!(
            (mapped.unmapped_probability, mapped.unmapped_top),
            (0.0, 0.0)
        );
        let err = map_multi_label(&dialogues, &probs, &mapping.source.group, &target_group, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 label bits for 4 data classes"), "{err}");
    }

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("mmer-cross-dataset-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A tiny text-only run config on `data`, two seeds.
    fn tiny_run(data: crate::DataConfig) -> RunConfig {
        let mut train = mmer_train::TrainConfig {
            modalities: vec![Modality::Text],
            max_epochs: 2,
            batch_size: 8,
            seeds: vec![0, 1],
            ..Default::default()
        };
        train.model.context = mmer_models::ContextMode::None;
        train.model.temporal = false;
        train.model.d_modality = 16;
        train.model.d_model = 16;
        train.model.d_hidden = 16;
        RunConfig { data, train }
    }

    /// Counts of the gold classes of `split`, single-label.
    fn gold_counts(corpus: &mmer_core::Corpus, split: Split) -> Vec<usize> {
        let mut counts = vec![0; corpus.labels.num_classes()];
        for u in corpus.split(split).iter().flat_map(|d| &d.utterances) {
            if let Some(Label::Single(c)) = u.label {
                counts[c] += 1;
            }
        }
        counts
    }

    /// A synthetic run scored on another synthetic corpus (another seed)
    /// through a coarsening map, and on its own data: files written, turns
    /// left out exactly the unmapped gold classes', one report per seed.
    #[test]
    fn a_tiny_run_is_scored_across_corpora_and_in_domain() {
        use mmer_data::synthetic::SyntheticConfig;
        let dir = scratch("single");
        let own = SyntheticConfig {
            dialogues: [12, 4, 4],
            ..Default::default()
        };
        let other = SyntheticConfig {
            seed: 7,
            dialogues: [4, 2, 6],
            ..Default::default()
        };
        let data = |synthetic: &SyntheticConfig| crate::DataConfig {
            synthetic: Some(synthetic.clone()),
            ..crate::DataConfig::new(crate::DatasetKind::Synthetic, None)
        };
        let run = dir.0.join("run");
        crate::train_run(&tiny_run(data(&own)), &run, false, crate::Existing::Refuse).unwrap();
        let target = dir.0.join("other.toml");
        let target_config = tiny_run(data(&other));
        std::fs::write(&target, toml::to_string(&target_config).unwrap()).unwrap();
        let map = dir.0.join("coarse.toml");
        // synthetic: neutral joy sadness anger surprise fear
        std::fs::write(
            &map,
            "source = \"synthetic\"\ntarget = \"synthetic\"\n[map]\nneutral = \"neutral\"\n\
             joy = \"joy\"\nsurprise = \"joy\"\nsadness = [\"sadness\", \"fear\"]\n",
        )
        .unwrap();

        let cross = evaluate_mapped(&run, Some(&target), &map, Split::Test).unwrap();
        assert_eq!(cross.kind, EvaluationKind::CrossDomain);
        assert_eq!(
            cross
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["neutral", "joy+surprise/joy", "sadness/sadness+fear"]
        );
        let counts = gold_counts(&mmer_data::synthetic::generate(&other), Split::Test);
        let unmapped: Vec<(&str, usize)> = cross
            .turns
            .unmapped_gold
            .iter()
            .map(|c| (c.class.as_str(), c.count))
            .collect();
        assert_eq!(unmapped, [("anger", counts[3]), ("surprise", counts[4])]);
        assert_eq!(cross.turns.labelled, counts.iter().sum::<usize>());
        assert_eq!(
            cross.turns.scored,
            cross.turns.labelled - counts[3] - counts[4]
        );
        assert_eq!(cross.unmapped_prediction.classes, ["anger", "fear"]);
        let MappedScores::SingleLabel {
            aggregate,
            per_seed,
        } = &cross.scores
        else {
            panic!("a single-label run");
        };
        assert_eq!(per_seed.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(aggregate.per_class_f1.len(), 3);
        assert!(
            per_seed
                .iter()
                .all(|(_, r)| r.num_samples == cross.turns.scored)
        );
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cross.written).unwrap()).unwrap();
        assert_eq!(
            cross.written.file_name().unwrap(),
            "eval-map-coarse-synthetic-test.json"
        );
        assert_eq!(written["kind"], "cross_domain");
        assert_eq!(written["turns"]["unmapped_gold"][0]["class"], "anger");
        let text = cross.to_text();
        assert!(
            text.lines().any(
                |l| l.starts_with("  joy+surprise/joy ") && l.ends_with(" joy, surprise → joy")
            ),
            "{text}"
        );

        let own_eval = evaluate_mapped(&run, None, &map, Split::Test).unwrap();
        assert_eq!(own_eval.kind, EvaluationKind::InDomain);
        let counts = gold_counts(&mmer_data::synthetic::generate(&own), Split::Test);
        assert_eq!(own_eval.turns.unmapped_gold[1].count, counts[4]);
        assert_eq!(own_eval.components, cross.components);

        // The data's label set must be the map's target, its text the
        // model's, and the run complete.
        let meld_map = dir.0.join("meld.toml");
        std::fs::write(
            &meld_map,
            "source = \"synthetic\"\ntarget = \"meld\"\n[map]\njoy = \"joy\"\nanger = \"anger\"\n",
        )
        .unwrap();
        let err = evaluate_mapped(&run, Some(&target), &meld_map, Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("meld.toml:2: target = \"meld\", but the data of ")
                && err.ends_with("leave out --on"),
            "{err}"
        );
        let mut texted = target_config.clone();
        texted.data.text_encoder = Some(mmer_text::EncoderKind::MiniLm);
        std::fs::write(&target, toml::to_string(&texted).unwrap()).unwrap();
        let err = evaluate_mapped(&run, Some(&target), &map, Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "its text features come from minilm, but the model reads its dataset's own features"
            ),
            "{err}"
        );
        std::fs::remove_file(run.join("results.json")).unwrap();
        let err = evaluate_mapped(&run, None, &map, Split::Test)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the run is unfinished"), "{err}");
    }

    /// A multi-label run scored through a map on another multi-label
    /// corpus: component gold bits, unscored bits of unmapped classes.
    #[test]
    fn a_tiny_multi_label_run_is_scored_through_a_map() {
        use mmer_data::synthetic_multi::{MultiLabelSyntheticConfig, generate};
        let dir = scratch("multi");
        let own = MultiLabelSyntheticConfig {
            clips: [48, 16, 16],
            speakers: [8, 4, 4],
            ..Default::default()
        };
        let other = MultiLabelSyntheticConfig {
            seed: 3,
            ..own.clone()
        };
        let data = |synthetic: &MultiLabelSyntheticConfig| crate::DataConfig {
            synthetic_multi_label: Some(synthetic.clone()),
            ..crate::DataConfig::new(crate::DatasetKind::SyntheticMultiLabel, None)
        };
        let run = dir.0.join("run");
        crate::train_run(&tiny_run(data(&own)), &run, false, crate::Existing::Refuse).unwrap();
        let target = dir.0.join("other.toml");
        std::fs::write(&target, toml::to_string(&tiny_run(data(&other))).unwrap()).unwrap();
        let map = dir.0.join("multi.toml");
        // anger disgust fear happiness sadness surprise
        std::fs::write(
            &map,
            "source = \"synthetic_multi\"\ntarget = \"synthetic_multi\"\n[map]\n\
             happiness = \"happiness\"\nanger = [\"anger\", \"disgust\"]\nsadness = \"sadness\"\n",
        )
        .unwrap();
        let cross = evaluate_mapped(&run, Some(&target), &map, Split::Test).unwrap();
        let MappedScores::MultiLabel {
            aggregate,
            per_seed,
        } = &cross.scores
        else {
            panic!("a multi-label run");
        };
        assert_eq!(per_seed.len(), 2);
        assert_eq!(aggregate.report.per_label_f1.len(), 3);
        assert!(per_seed.iter().all(|(_, s)| s.thresholds == [0.5; 3]));
        let mut on = [0usize; 6];
        for u in generate(&other)
            .split(Split::Test)
            .iter()
            .flat_map(|d| &d.utterances)
        {
            if let Some(Label::Multi(bits)) = &u.label {
                for (n, &b) in on.iter_mut().zip(bits) {
                    *n += usize::from(b);
                }
            }
        }
        let unscored: Vec<(&str, usize)> = cross
            .turns
            .unmapped_gold
            .iter()
            .map(|c| (c.class.as_str(), c.count))
            .collect();
        assert_eq!(unscored, [("fear", on[2]), ("surprise", on[5])]);
        assert_eq!((cross.turns.scored, cross.turns.labelled), (16, 16));
        assert_eq!(
            cross.unmapped_prediction.classes,
            ["disgust", "fear", "surprise"]
        );
        assert!(cross.to_text().contains("on-bits not scored"));
    }
}
