//! The pickle reader and the pickle loaders against pickles that Python
//! itself writes: protocols 0–5, Python 2 style strings and numpy 1 names,
//! numpy arrays of several dtypes, byte orders and memory orders, and
//! DialogueRNN/MMGCN-shaped feature pickles, good and broken.
//!
//! Fixtures are generated at test time by the script [`GENERATOR`] (needs
//! `python3` with numpy; the tests that need them skip with a message
//! otherwise). The script also reports Python's own reading of every pickle
//! as JSON, which is the oracle for [`pickle::from_slice`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use mmer_core::{Corpus, Label, Modality, Split};
use mmer_data::Error;
use mmer_data::feature_pickle::{
    self, FeaturePickleKind, FeaturePickleOptions, load_feature_pickle,
};
use mmer_data::iemocap::load_iemocap_pickle;
use mmer_data::pickle::{self, ArrayData, Value};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Writes the fixtures as `{"pickles": {name: hex}, "expected": {name: json}}` on stdout.
const GENERATOR: &str = r##"import collections, io, json, math, pickle, struct, sys
try:
    import numpy as np
except ImportError:
    print("numpy is not installed", file=sys.stderr)
    sys.exit(3)

# -- Python 2 style pickles from Python 3 -----------------------------------
# Python 2 wrote `str` with SHORT_BINSTRING/BINSTRING and numpy 1 named its
# globals numpy.core.*; DialogueRNN's pickles look like that.
class Py2Str(bytes):
    pass

class Global:
    def __init__(self, module, name):
        self.module, self.name = module, name
    def __call__(self, *a):
        raise TypeError

class Py2Array:
    def __init__(self, a):
        self.a = np.asarray(a)
    def __reduce__(self):
        a = self.a
        dt = Py2DType(a.dtype)
        if a.dtype == object:
            data = [py2ify(x) for x in a.ravel(order="F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C").tolist()]
        else:
            data = Py2Str(a.tobytes(order="A"))
        fortran = bool(a.flags.f_contiguous and not a.flags.c_contiguous)
        return (Global("numpy.core.multiarray", "_reconstruct"),
                (Global("numpy", "ndarray"), (0,), Py2Str(b"b")),
                (1, a.shape, dt, fortran, data))

class Py2DType:
    def __init__(self, dt):
        self.dt = dt
    def __reduce__(self):
        s = self.dt.str
        descr = "O8" if self.dt == object else s[1:]
        return (Global("numpy", "dtype"), (Py2Str(descr.encode()), 0, 1),
                (3, Py2Str(s[0].encode()), None, None, None, -1, -1, self.dt.flags))

class Py2Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()
    def save_py2str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + bytes(obj))
        self.memoize(obj)
    dispatch[Py2Str] = save_py2str
    def save_global_ref(self, obj):
        self.write(pickle.GLOBAL + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
        self.memoize(obj)
    dispatch[Global] = save_global_ref

def py2ify(x, seen=None):
    """Python 2's view of a value: ASCII/Latin-1 text becomes a py2 str."""
    if seen is None:
        seen = {}
    if id(x) in seen:
        return seen[id(x)]
    if isinstance(x, str):
        try:
            out = Py2Str(x.encode("latin1"))
        except UnicodeEncodeError:
            out = x  # a py2 `unicode`
    elif isinstance(x, np.ndarray):
        out = Py2Array(x)
    elif isinstance(x, (list, tuple, dict)):
        if isinstance(x, list):
            out = []
            seen[id(x)] = out
            out.extend(py2ify(v, seen) for v in x)
        elif isinstance(x, tuple):
            out = tuple(py2ify(v, seen) for v in x)
        else:
            out = type(x)() if not isinstance(x, collections.defaultdict) else collections.defaultdict(x.default_factory)
            seen[id(x)] = out
            for k, v in x.items():
                out[py2ify(k, seen)] = py2ify(v, seen)
    else:
        out = x
    seen[id(x)] = out
    return out

def dumps_py2(obj):
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(py2ify(obj))
    return f.getvalue()

# -- the oracle: Python's own reading, as JSON ------------------------------
def tojson(x):
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        x = int(x)
        if -(2**63) <= x < 2**63:
            return {"int": x}
        return {"bigint": pickle.encode_long(x).hex()}
    if isinstance(x, (float, np.floating)):
        return {"float": struct.unpack("<Q", struct.pack("<d", float(x)))[0]}
    if isinstance(x, str):
        return {"str": x}
    if isinstance(x, (bytes, bytearray)):
        return {"bytes": bytes(x).hex()}
    if isinstance(x, list):
        return {"list": [tojson(v) for v in x]}
    if isinstance(x, tuple):
        return {"tuple": [tojson(v) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[tojson(k), tojson(v)] for k, v in x.items()]}
    if isinstance(x, (set, frozenset)):
        items = [tojson(v) for v in x]
        items.sort(key=lambda j: json.dumps(j, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        return {"set": items}
    if isinstance(x, np.dtype):
        return {"dtype": dtype_descr(x), "big": x.byteorder == ">"}
    if isinstance(x, np.ndarray):
        return {"ndarray": {"dtype": dtype_descr(x.dtype),
                            "shape": list(x.shape),
                            "data": [tojson(v) for v in x.ravel(order="C").tolist()]}}
    raise TypeError(type(x))

def dtype_descr(dt):
    return "O" if dt == object else dt.str[1:]

out = {"pickles": {}, "expected": {}}

def add(name, blob):
    out["pickles"][name] = blob.hex()
    out["expected"][name] = tojson(pickle.loads(blob, encoding="latin1"))

# -- a value of every supported kind ----------------------------------------
rng = np.random.default_rng(7)
shared = [1, 2]
od = collections.OrderedDict([("z", 1), ("a", 2)])
dd = collections.defaultdict(list)
dd["k"].append(3)
values = {
    "none": None, "t": True, "f": False,
    "ints": [0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -(2**31), 2**40, -(2**40), 2**63 - 1, -(2**63)],
    "big": [2**64, -(2**70), 2**100 + 12345],
    "floats": [0.0, -0.0, 1.5, -2.25e-300, 1e300, float("inf"), float("-inf")],
    "text": ["", "plain", "caf\u00e9", "snow \u2603", "x" * 300],
    "bytes": [b"", b"\x00\xff", bytes(range(256)) * 2],
    "tuple0": (), "tuple1": (1,), "tuple2": (1, "a"), "tuple3": (1, 2, 3), "tuple4": (1, 2, 3, 4),
    "set": {3, 1, 2}, "frozenset": frozenset({"b", "a"}),
    "shared": [shared, shared], "od": od, "dd": dd,
    "f4": rng.standard_normal((2, 3)).astype(np.float32),
    "f8": rng.standard_normal(5),
    "f2": np.array([0.5, -1.0, 65504.0, 1e-7], dtype=np.float16),
    "i4": np.array([[1, -2], [3, -4]], dtype=np.int32),
    "i8": np.array([2**40, -(2**40)], dtype=np.int64),
    "u1": np.array([0, 255, 7], dtype=np.uint8),
    "b1": np.array([True, False, True]),
    "be": np.array([1.25, -3.5], dtype=">f8"),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "fortran3": np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
    "zero_d": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "objects": np.array(["a", None, 3], dtype=object),
    "dtype": np.dtype("<i4"),
    "np_scalars": [np.float32(0.1), np.float64(-2.5), np.int64(-7), np.int32(9), np.uint8(200), np.bool_(True)],
    "same_dtype": [np.ones(2, np.float32), np.ones(3, np.float32)],
}
for proto in (2, 3, 4, 5):
    add(f"values_p{proto}", pickle.dumps(values, protocol=proto))
add("values_p0", pickle.dumps({k: values[k] for k in ("none", "t", "ints", "floats", "text", "tuple3", "set", "shared")}, protocol=0))
py2_values = {k: v for k, v in values.items() if k not in ("bytes", "set", "frozenset", "dd")}
py2_values["text"] = ["", "plain", "caf\u00e9", "snow \u2603", "y" * 300]
add("values_py2", dumps_py2(py2_values))

# -- DialogueRNN / MMGCN style feature pickles -------------------------------
def iemocap_features(n_train=12, n_test=3, nan=None, short_text=None, short_labels=None, bad_label=None, empty=None):
    ids, spk, lab, txt, aud, vis, sen = {}, {}, {}, {}, {}, {}, {}
    train, test = [], []
    for d in range(n_train + n_test):
        vid = f"Ses0{d % 5 + 1}F_impro{d:02d}"
        n = 0 if empty == d else 2 + d % 3
        (train if d < n_train else test).append(vid)
        ids[vid] = [f"{vid}_{'FM'[u % 2]}{u:03d}" for u in range(n)]
        spk[vid] = ["FM"[u % 2] for u in range(n)]
        lab[vid] = [(d + u) % 6 for u in range(n)]
        if d == 1:
            lab[vid] = np.array(lab[vid], dtype=np.int64)
        t = [np.array([d * 100 + u + k / 4 for k in range(4)], dtype=np.float32) for u in range(n)]
        if short_text == d:
            t[-1] = t[-1][:3]
        txt[vid] = t
        a = np.array([[d - u - k / 8 for k in range(3)] for u in range(n)], dtype=np.float64).reshape(n, 3)
        if nan == d:
            a[1, 2] = np.nan
        aud[vid] = a
        vis[vid] = [[float(d + u + k) for k in range(2)] for u in range(n)]
        sen[vid] = [f"utt\u00e9 {d} {u}" for u in range(n)]
        if short_labels == d:
            lab[vid] = list(lab[vid])[:-1]
        if bad_label == d:
            lab[vid] = list(lab[vid])
            lab[vid][0] = 9
    return (ids, spk, lab, txt, aud, vis, sen, train, set(test))

add("iemocap_features_p4", pickle.dumps(iemocap_features(), protocol=4))
add("iemocap_features_py2", dumps_py2(iemocap_features()))
add("iemocap_features_nan", pickle.dumps(iemocap_features(nan=4), protocol=4))
add("iemocap_features_dims", pickle.dumps(iemocap_features(short_text=5), protocol=4))
add("iemocap_features_lens", pickle.dumps(iemocap_features(short_labels=6), protocol=4))
add("iemocap_features_label", pickle.dumps(iemocap_features(bad_label=7), protocol=4))
add("iemocap_features_empty", pickle.dumps(iemocap_features(empty=2), protocol=4))

def meld_features(with_visual=True, n_train=20, n_test=4):
    ids, spk, lab, txt, aud, vis, sen, sent = {}, {}, {}, {}, {}, {}, {}, {}
    for d in range(n_train + n_test):
        n = 1 + d % 4
        ids[d] = list(range(n))
        spk[d] = [[1 if k == (d + u) % 9 else 0 for k in range(9)] for u in range(n)]
        lab[d] = [(d * 3 + u) % 7 for u in range(n)]
        txt[d] = np.array([[d + u / 2 + k for k in range(5)] for u in range(n)], dtype=np.float32)
        aud[d] = [np.full(3, d + u, dtype=np.float64) for u in range(n)]
        vis[d] = [np.full(2, -d - u, dtype=np.float32) for u in range(n)]
        sen[d] = [f"line {d}.{u}" for u in range(n)]
        sent[d] = [u % 3 for u in range(n)]
    train = list(range(n_train))
    test = list(range(n_train, n_train + n_test))
    if with_visual:
        return (ids, spk, lab, txt, aud, vis, sen, train, test, sent)
    return (ids, spk, lab, txt, aud, sen, train, test, sent)

add("meld_features_p4", pickle.dumps(meld_features(), protocol=4))
add("meld_dialoguernn_p2", pickle.dumps(meld_features(with_visual=False), protocol=2))

def iemocap_pkl():
    spk, lab, sen = {}, {}, {}
    splits = ([], [], [])
    for d in range(9):
        vid = f"Ses0{d % 5 + 1}M_script{d:02d}"
        n = 1 + d % 4
        spk[vid] = ["MF"[(d + u) % 2] for u in range(n)]
        lab[vid] = [(d + u) % 6 for u in range(n)]
        sen[vid] = [f"sentence {d} {u} \u00e9" for u in range(n)]
        splits[d % 3].append(vid)
    return [spk, lab, sen, splits[0], splits[1], splits[2]]

add("iemocap_p4", pickle.dumps(iemocap_pkl(), protocol=4))
bad = iemocap_pkl()
bad[2]["Ses02M_script01"] = bad[2]["Ses02M_script01"][:-1]
add("iemocap_lens", pickle.dumps(bad, protocol=4))

json.dump(out, sys.stdout)
"##;

struct Fixtures {
    pickles: BTreeMap<String, Vec<u8>>,
    expected: BTreeMap<String, Json>,
}

/// The generated fixtures, or `None` (with a message) when Python or numpy is missing.
fn fixtures() -> Option<&'static Fixtures> {
    static FIXTURES: OnceLock<Option<Fixtures>> = OnceLock::new();
    FIXTURES.get_or_init(generate).as_ref()
}

fn generate() -> Option<Fixtures> {
    let child = Command::new("python3")
        .arg("-c")
        .arg(GENERATOR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(child) = child else {
        eprintln!("skipping: python3 is not available to generate pickle fixtures");
        return None;
    };
    let out = child.wait_with_output().expect("python3 runs");
    if out.status.code() == Some(3) {
        eprintln!("skipping: numpy is not installed for python3 (pip install numpy)");
        return None;
    }
    assert!(
        out.status.success(),
        "fixture generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Json = serde_json::from_slice(&out.stdout).expect("generator prints JSON");
    let pickles = all["pickles"]
        .as_object()
        .expect("pickles")
        .iter()
        .map(|(k, v)| (k.clone(), unhex(v.as_str().expect("hex"))))
        .collect();
    let expected = all["expected"]
        .as_object()
        .expect("expected")
        .clone()
        .into_iter()
        .collect();
    Some(Fixtures { pickles, expected })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fixtures {
    fn bytes(&self, name: &str) -> &[u8] {
        self.pickles
            .get(name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }

    /// Writes a fixture into `dir` and returns its path.
    fn file(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pkl"));
        std::fs::write(&path, self.bytes(name)).expect("write fixture");
        path
    }
}

/// The same JSON form the generator's `tojson` gives Python's reading.
fn to_json(v: &Value) -> Json {
    let float = |f: f64| json!({ "float": f.to_bits() });
    match v {
        Value::None => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!({ "int": i }),
        Value::BigInt(b) => json!({ "bigint": hex(b) }),
        Value::Float(f) => float(*f),
        Value::Str(s) => json!({ "str": s }),
        Value::Bytes(b) => json!({ "bytes": hex(b) }),
        Value::List(v) => json!({ "list": v.iter().map(to_json).collect::<Vec<_>>() }),
        Value::Tuple(v) => json!({ "tuple": v.iter().map(to_json).collect::<Vec<_>>() }),
        Value::Dict(p) => {
            json!({ "dict": p.iter().map(|(k, v)| json!([to_json(k), to_json(v)])).collect::<Vec<_>>() })
        }
        Value::Set(v) => {
            let mut items: Vec<Json> = v.iter().map(to_json).collect();
            items.sort_by_key(|j| j.to_string());
            json!({ "set": items })
        }
        Value::DType(d) => json!({ "dtype": descr(&d.descr), "big": d.big_endian }),
        Value::NdArray(a) => {
            let data: Vec<Json> = match &a.data {
                ArrayData::Bool(v) => v.iter().map(|b| json!(b)).collect(),
                ArrayData::Int(v) => v.iter().map(|i| json!({ "int": i })).collect(),
                ArrayData::F32(v) => v.iter().map(|&f| float(f64::from(f))).collect(),
                ArrayData::F64(v) => v.iter().map(|&f| float(f)).collect(),
                ArrayData::Object(v) => v.iter().map(to_json).collect(),
                ArrayData::Raw(r) => vec![json!({ "raw": hex(r) })],
            };
            json!({ "ndarray": { "dtype": descr(&a.dtype.descr), "shape": a.shape, "data": data } })
        }
        Value::Global { module, name } => json!({ "global": format!("{module}.{name}") }),
        Value::Object(o) => json!({ "object": format!("{}.{}", o.module, o.name) }),
    }
}

fn descr(d: &str) -> &str {
    if d.starts_with('O') { "O" } else { d }
}

#[test]
fn values_match_python_for_every_protocol() {
    let Some(fx) = fixtures() else { return };
    let names: Vec<&String> = fx
        .pickles
        .keys()
        .filter(|k| k.starts_with("values_"))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let value = pickle::from_slice(fx.bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = to_json(&value);
        let want = &fx.expected[name.as_str()];
        if &got != want {
            // Point at the first differing top-level key for a readable failure.
            for (g, w) in got["dict"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(want["dict"].as_array().into_iter().flatten())
            {
                assert_eq!(g, w, "{name}");
            }
            panic!("{name}: {got} != {want}");
        }
    }
}

#[test]
fn loaders_read_every_fixture_without_touching_python_types() {
    let Some(fx) = fixtures() else { return };
    // Every fixture decodes; the oracle agrees on the loader fixtures too.
    for (name, bytes) in &fx.pickles {
        let value = pickle::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&to_json(&value), &fx.expected[name.as_str()], "{name}");
    }
}

fn iemocap_dialogue_name(d: usize) -> String {
    format!("Ses0{}F_impro{d:02}", d % 5 + 1)
}

fn check_iemocap_features(c: &Corpus) {
    assert_eq!(c.name, "iemocap");
    // 12 train dialogues: round(0.1 * 12) = 1 goes to valid, the last in sorted order.
    let mut train: Vec<String> = (0..12).map(iemocap_dialogue_name).collect();
    train.sort();
    let valid = train.pop().expect("twelve");
    let ids = |s: Split| c.split(s).iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(Split::Train), train);
    assert_eq!(ids(Split::Valid), vec![valid]);
    assert_eq!(
        ids(Split::Test),
        (12..15).map(iemocap_dialogue_name).collect::<Vec<_>>()
    );
    for dialogue in c.splits.values().flatten() {
        let d: usize = dialogue.id[dialogue.id.len() - 2..]
            .parse()
            .expect("numbered");
        assert_eq!(dialogue.utterances.len(), 2 + d % 3);
        for (u, utt) in dialogue.utterances.iter().enumerate() {
            let tag = if u % 2 == 0 { "F" } else { "M" };
            assert_eq!(utt.id, format!("{}_{tag}{u:03}", dialogue.id));
            assert_eq!(utt.speaker, tag);
            assert_eq!(utt.label, Some(Label::Single((d + u) % 6)));
            assert_eq!(
                utt.text.as_deref(),
                Some(format!("utt\u{e9} {d} {u}").as_str())
            );
            let text: Vec<f32> = (0..4)
                .map(|k| (d * 100 + u) as f32 + k as f32 / 4.0)
                .collect();
            assert_eq!(utt.features[&Modality::Text].data, text);
            let audio: Vec<f32> = (0..3)
                .map(|k| d as f32 - u as f32 - k as f32 / 8.0)
                .collect();
            assert_eq!(utt.features[&Modality::Audio].data, audio);
            assert_eq!(
                utt.features[&Modality::Face].data,
                vec![(d + u) as f32, (d + u + 1) as f32]
            );
        }
    }
}

#[test]
fn iemocap_features_protocol4_and_python2_styles_load_identically() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FeaturePickleOptions::default();
    let p4 = load_feature_pickle(&fx.file(dir.path(), "iemocap_features_p4"), &opts)
        .expect("protocol 4");
    let py2 = load_feature_pickle(&fx.file(dir.path(), "iemocap_features_py2"), &opts)
        .expect("python 2 style");
    check_iemocap_features(&p4);
    assert_eq!(p4, py2);
    let forced = FeaturePickleOptions {
        kind: Some(FeaturePickleKind::Iemocap),
        valid_fraction: 0.25,
    };
    let c = load_feature_pickle(&fx.file(dir.path(), "iemocap_features_p4"), &forced)
        .expect("forced kind");
    assert_eq!(
        (c.split(Split::Train).len(), c.split(Split::Valid).len()),
        (9, 3)
    );
}

#[test]
fn meld_features_with_and_without_visual() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FeaturePickleOptions::default();
    for (name, has_face) in [("meld_features_p4", true), ("meld_dialoguernn_p2", false)] {
        let c = load_feature_pickle(&fx.file(dir.path(), name), &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.name, "meld", "{name}");
        let ids = |s: Split| c.split(s).iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(Split::Train),
            (0..18).map(|d| d.to_string()).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(ids(Split::Valid), vec!["18", "19"], "{name}");
        assert_eq!(ids(Split::Test), vec!["20", "21", "22", "23"], "{name}");
        let expected_modalities = if has_face {
            vec![Modality::Text, Modality::Audio, Modality::Face]
        } else {
            vec![Modality::Text, Modality::Audio]
        };
        assert_eq!(c.modalities(), expected_modalities, "{name}");
        for dialogue in c.splits.values().flatten() {
            let d: usize = dialogue.id.parse().expect("int id");
            assert_eq!(dialogue.utterances.len(), 1 + d % 4);
            for (u, utt) in dialogue.utterances.iter().enumerate() {
                assert_eq!(utt.id, format!("{d}_{u}"));
                assert_eq!(utt.speaker, format!("spk{}", (d + u) % 9));
                assert_eq!(utt.label, Some(Label::Single((d * 3 + u) % 7)));
                assert_eq!(utt.text.as_deref(), Some(format!("line {d}.{u}").as_str()));
                let text: Vec<f32> = (0..5)
                    .map(|k| d as f32 + u as f32 / 2.0 + k as f32)
                    .collect();
                assert_eq!(utt.features[&Modality::Text].data, text);
                assert_eq!(utt.features[&Modality::Audio].data, vec![(d + u) as f32; 3]);
                if has_face {
                    assert_eq!(
                        utt.features[&Modality::Face].data,
                        vec![-((d + u) as f32); 2]
                    );
                }
            }
        }
    }
}

#[test]
fn iemocap_transcript_pickle_fixture() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = load_iemocap_pickle(&fx.file(dir.path(), "iemocap_p4")).expect("loads");
    // Dialogue d goes to [train, test, valid][d % 3] and has 1 + d % 4 utterances.
    let count = |r: usize| {
        (0..9)
            .filter(|d| d % 3 == r)
            .map(|d| 1 + d % 4)
            .sum::<usize>()
    };
    assert_eq!(c.num_utterances(Split::Train), count(0));
    assert_eq!(c.num_utterances(Split::Test), count(1));
    assert_eq!(c.num_utterances(Split::Valid), count(2));
    let u = &c.split(Split::Test)[1].utterances[0];
    assert_eq!(
        (u.id.as_str(), u.speaker.as_str()),
        ("Ses05M_script04_0", "M")
    );
    assert_eq!(u.text.as_deref(), Some("sentence 4 0 \u{e9}"));
    assert_eq!(u.label, Some(Label::Single(4)));

    let err = load_iemocap_pickle(&fx.file(dir.path(), "iemocap_lens"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Ses02M_script01") && err.contains("disagree"),
        "{err}"
    );
}

#[test]
fn broken_feature_pickles_name_dialogue_and_utterance() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let load = |name: &str| {
        load_feature_pickle(&fx.file(dir.path(), name), &FeaturePickleOptions::default())
    };
    let msg = |name: &str| load(name).expect_err(name).to_string();

    let err = msg("iemocap_features_nan");
    assert!(
        err.contains("Ses05F_impro04_M001") && err.contains("videoAudio") && err.contains("NaN"),
        "{err}"
    );
    let err = msg("iemocap_features_dims");
    assert!(
        err.contains("Ses01F_impro05") && err.contains("videoText") && err.contains("width 3"),
        "{err}"
    );
    let err = msg("iemocap_features_lens");
    assert!(
        err.contains("Ses02F_impro06") && err.contains("videoLabels has"),
        "{err}"
    );
    let err = msg("iemocap_features_empty");
    assert!(
        err.contains("Ses03F_impro02") && err.contains("no utterances"),
        "{err}"
    );
    match load("iemocap_features_label") {
        Err(Error::UnknownLabel { id, label, .. }) => {
            assert_eq!((id.as_str(), label.as_str()), ("Ses03F_impro07_F000", "9"))
        }
        other => panic!("expected UnknownLabel, got {other:?}"),
    }
    // Forcing the wrong kind is a layout error, not a panic or a silent misread.
    let wrong = FeaturePickleOptions {
        kind: Some(FeaturePickleKind::Iemocap),
        ..Default::default()
    };
    let err = load_feature_pickle(&fx.file(dir.path(), "meld_features_p4"), &wrong).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
}

#[test]
fn every_prefix_of_a_pickle_is_an_error() {
    let Some(fx) = fixtures() else { return };
    for name in [
        "values_p0",
        "values_p2",
        "values_p4",
        "values_p5",
        "values_py2",
        "iemocap_p4",
    ] {
        let bytes = fx.bytes(name);
        for end in 0..bytes.len() {
            let err =
                pickle::from_slice(&bytes[..end]).expect_err("a strict prefix never reaches STOP");
            assert!(err.offset <= end, "{name}[..{end}]: {err}");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let Some(fx) = fixtures() else { return };
    let path = Path::new("corrupt.pkl");
    let cases: [(&str, Vec<u8>, &[u8]); 3] = [
        ("values_py2", fx.bytes("values_py2").to_vec(), &[0xff]),
        (
            "iemocap_p4",
            fx.bytes("iemocap_p4").to_vec(),
            &[0xff, 0x01, 0x80],
        ),
        ("seed", seed(), &[0xff, 0x01, 0x80]),
    ];
    for (_, mut bytes, masks) in cases {
        for i in 0..bytes.len() {
            let original = bytes[i];
            for mask in masks {
                bytes[i] = original ^ mask;
                if let Ok(value) = pickle::from_slice(&bytes) {
                    let _ = feature_pickle::corpus_from_value(
                        path,
                        &value,
                        &FeaturePickleOptions::default(),
                    );
                    let _ = mmer_data::iemocap::corpus_from_value(path, &value);
                }
            }
            bytes[i] = original;
        }
    }
    // A corrupted length makes the reader run into the following bytes; the
    // error names an offset past the corruption, never one before it.
    let mut bytes = fx.bytes("values_p4").to_vec();
    let at = bytes
        .windows(6)
        .position(|w| w == b"plain\x94")
        .expect("has 'plain'")
        - 2;
    assert_eq!(bytes[at..at + 2], [0x8c, 5], "SHORT_BINUNICODE 'plain'");
    bytes[at + 1] = 0xff;
    let err = pickle::from_slice(&bytes).unwrap_err();
    assert!(err.offset > at && err.opcode.is_some(), "{err}");
}

/// A small Python-2-style feature pickle (numpy 1 names, SHORT_BINSTRING data,
/// a protocol 2 numpy scalar label): the seed for the mutation properties.
const SEED: &[&str] = &[
    "8002287d2855016171005d285506615f463030305506615f4d3030306555016271015d5506625f4630303061757d2868",
    "005d2855014655014d71026568015d680261757d2868005d284b004b056568015d636e756d70792e5f636f72652e6d75",
    "6c746961727261790a7363616c61720a636e756d70790a64747970650a5802000000693889888752284b035801000000",
    "3c4e4e4e4affffffff4affffffff4b007462635f636f646563730a656e636f64650a5808000000030000000000000058",
    "060000006c6174696e318652865261757d2868005d28636e756d70792e636f72652e6d756c746961727261790a5f7265",
    "636f6e7374727563740a636e756d70790a6e6461727261790a4b008571035501628752284b014b0285636e756d70790a",
    "64747970650a550266344b004b018752284b0355013c4e4e4e4affffffff4affffffff4b0074628955080000803f0000",
    "00407462636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a636e756d70790a6e",
    "6461727261790a68035501628752284b014b0285636e756d70790a64747970650a550266344b004b018752284b035501",
    "3c4e4e4e4affffffff4affffffff4b00746289550800004040000080407462656801636e756d70792e636f72652e6d75",
    "6c746961727261790a5f7265636f6e7374727563740a636e756d70790a6e6461727261790a68035501628752284b014b",
    "014b0286636e756d70790a64747970650a550266384b004b018752284b0355013c4e4e4e4affffffff4affffffff4b00",
    "7462895510000000000000144000000000000018407462757d2868005d285d473fe0000000000000615d473ff8000000",
    "000000616568015d5d4740040000000000006161757d286800636e756d70792e636f72652e6d756c746961727261790a",
    "5f7265636f6e7374727563740a636e756d70790a6e6461727261790a68035501628752284b014b024b0386636e756d70",
    "790a64747970650a550266344b004b018752284b0355013c4e4e4e4affffffff4affffffff4b00746289551800000000",
    "000000000000000000000000000000000000000074626801636e756d70792e636f72652e6d756c746961727261790a5f",
    "7265636f6e7374727563740a636e756d70790a6e6461727261790a68035501628752284b014b014b0386636e756d7079",
    "0a64747970650a550266344b004b018752284b0355013c4e4e4e4affffffff4affffffff4b00746289550c0000803f00",
    "00803f0000803f7462757d2868005d28550268695504636166e96568015d55017861755d6800615d680161742e",
];

fn seed() -> Vec<u8> {
    unhex(&SEED.concat())
}

#[test]
fn seed_is_a_valid_feature_pickle() {
    let value = pickle::from_slice(&seed()).expect("seed decodes");
    let opts = FeaturePickleOptions {
        valid_fraction: 0.0,
        ..Default::default()
    };
    let c = feature_pickle::corpus_from_value(Path::new("seed.pkl"), &value, &opts)
        .expect("seed loads");
    assert_eq!(
        (
            c.num_utterances(Split::Train),
            c.num_utterances(Split::Test)
        ),
        (2, 1)
    );
    let b = &c.split(Split::Test)[0].utterances[0];
    assert_eq!(b.label, Some(Label::Single(3)));
    assert_eq!(b.features[&Modality::Text].data, vec![5.0, 6.0]);
    assert_eq!(
        c.split(Split::Train)[0].utterances[1].text.as_deref(),
        Some("caf\u{e9}")
    );
}

fn decode_and_load(bytes: &[u8]) {
    if let Ok(value) = pickle::from_slice(bytes) {
        let path = Path::new("fuzz.pkl");
        let _ = feature_pickle::corpus_from_value(path, &value, &FeaturePickleOptions::default());
        let _ = mmer_data::iemocap::corpus_from_value(path, &value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_and_load(&bytes);
        let mut with_proto = vec![0x80, 0x04];
        with_proto.extend(&bytes);
        decode_and_load(&with_proto);
    }

    #[test]
    fn mutated_seed_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seed();
        for (at, byte, how) in edits {
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        decode_and_load(&bytes);
    }
}

#[test]
fn real_iemocap_pickle_has_the_standard_splits() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/iemocap/iemocap.pkl");
    if !path.exists() {
        eprintln!("skipping: {} is absent", path.display());
        return;
    }
    let c = load_iemocap_pickle(&path).expect("iemocap.pkl loads");
    assert_eq!(c.split(Split::Train).len(), 108);
    assert_eq!(c.split(Split::Valid).len(), 12);
    assert_eq!(c.split(Split::Test).len(), 31);
    assert_eq!(c.num_utterances(Split::Train), 5163);
    assert_eq!(c.num_utterances(Split::Valid), 647);
    assert_eq!(c.num_utterances(Split::Test), 1623);
    let mut counts = [0usize; 6];
    for u in c.split(Split::Test).iter().flat_map(|d| &d.utterances) {
        counts[u
            .label
            .as_ref()
            .and_then(Label::single)
            .expect("single label")] += 1;
    }
    // hap, sad, neu, ang, exc, fru
    assert_eq!(counts, [144, 245, 384, 170, 299, 381]);
    let speakers: std::collections::BTreeSet<&str> = c
        .splits
        .values()
        .flatten()
        .flat_map(|d| &d.utterances)
        .map(|u| u.speaker.as_str())
        .collect();
    assert_eq!(speakers.into_iter().collect::<Vec<_>>(), vec!["F", "M"]);
    assert!(
        c.splits
            .values()
            .flatten()
            .flat_map(|d| &d.utterances)
            .all(|u| u.text.is_some())
    );
}

/// Loads the feature pickles named by `MMER_IEMOCAP_FEATURES` /
/// `MMER_MELD_FEATURES` (e.g. DialogueRNN's `IEMOCAP_features.pkl` and
/// `MELD_features_raw.pkl`) and prints their sizes; skips when unset.
#[test]
fn real_feature_pickles_from_the_environment() {
    let mut any = false;
    for var in ["MMER_IEMOCAP_FEATURES", "MMER_MELD_FEATURES"] {
        let Some(path) = std::env::var_os(var) else {
            continue;
        };
        any = true;
        let start = std::time::Instant::now();
        let c = load_feature_pickle(Path::new(&path), &FeaturePickleOptions::default())
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        eprintln!(
            "{var}: {} train / {} valid / {} test utterances, modalities {:?}, {:.1}s",
            c.num_utterances(Split::Train),
            c.num_utterances(Split::Valid),
            c.num_utterances(Split::Test),
            c.modalities(),
            start.elapsed().as_secs_f64()
        );
    }
    if !any {
        eprintln!(
            "skipping: set MMER_IEMOCAP_FEATURES / MMER_MELD_FEATURES to check real feature pickles"
        );
    }
}
