//! A safe, minimal reader for Python pickles (protocols 0–5 as CPython's
//! `pickle` module writes them), enough for the dataset pickles of
//! DialogueRNN, DialogueGCN and MMGCN.
//!
//! The reader is a small stack machine that never executes anything: a
//! global such as `numpy.core.multiarray._reconstruct` is recognised by
//! name and interpreted, and every global it does not know becomes an
//! opaque [`Value::Global`] / [`Value::Object`] instead of an error.
//!
//! What it understands beyond the core opcodes:
//! - numpy arrays as numpy pickles them: `_reconstruct` + `REDUCE` + `BUILD`
//!   (numpy 1 `numpy.core.*` and numpy 2 `numpy._core.*` names, raw data as
//!   bytes, as a Python 2 `str`, or as a list for object arrays) and
//!   protocol 5's in-band `_frombuffer`; Fortran-ordered data is returned
//!   in C order;
//! - numpy dtypes (`numpy.dtype` + `BUILD` with byte order `<`, `>`, `|`)
//!   and numpy scalars (`multiarray.scalar`), which decode to plain
//!   [`Value::Int`] / [`Value::Float`] / [`Value::Bool`];
//! - `collections.OrderedDict` and `collections.defaultdict` (both become
//!   [`Value::Dict`]), `builtins.set`/`frozenset`, `bytes`, `bytearray`,
//!   and `_codecs.encode` (how protocol 2 stores Python 3 `bytes`);
//! - Python 2 `str` opcodes (`STRING`, `BINSTRING`, `SHORT_BINSTRING`),
//!   decoded as Latin-1 exactly as `pickle.load(f, encoding="latin1")`
//!   does, while still usable as raw bytes where numpy expects bytes.
//!
//! # Safety against hostile input
//! Every read is bounds-checked, every allocation is bounded by the
//! remaining input (or by the element count an array's raw bytes imply),
//! the output tree is limited in depth ([`MAX_DEPTH`]) and in total size
//! (so memo references cannot blow up exponentially), and no input makes
//! the reader panic.
//!
//! # Why an arena
//! Python's memo shares objects by reference: a list is memoised while
//! empty and filled afterwards, and a numpy dtype is memoised before the
//! `BUILD` that sets its byte order, and later arrays refer back to it.
//! The machine therefore keeps mutable objects in an arena and the stack
//! holds handles; the tree of [`Value`]s is materialised once at `STOP`.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// Deepest nesting of the returned [`Value`] tree; deeper (or cyclic)
/// structures are an error rather than a stack overflow.
pub const MAX_DEPTH: usize = 200;

/// A Python value decoded from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False` (also numpy `bool_` scalars).
    Bool(bool),
    /// An integer that fits in 64 bits (also numpy integer scalars).
    Int(i64),
    /// An integer too large for 64 bits: two's-complement little-endian
    /// bytes, exactly as `LONG1`/`LONG4` store them.
    BigInt(Vec<u8>),
    /// A float (also numpy float scalars, widened to `f64`).
    Float(f64),
    /// A text string (Python 2 `str` decoded as Latin-1).
    Str(String),
    /// `bytes` or `bytearray`.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict (also `OrderedDict` and `defaultdict`), pairs in pickle order.
    Dict(Vec<(Value, Value)>),
    /// A set or frozenset, items in pickle order.
    Set(Vec<Value>),
    /// A numpy array.
    NdArray(NdArray),
    /// A numpy dtype object.
    DType(DType),
    /// A reference to a global this reader does not interpret.
    Global {
        /// Module, e.g. `torch._utils`.
        module: String,
        /// Qualified name within the module.
        name: String,
    },
    /// An instance of a class this reader does not interpret.
    Object(Box<Object>),
}

/// An opaque instance: what was called, with what, and what was set on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Module of the class or callable.
    pub module: String,
    /// Name of the class or callable.
    pub name: String,
    /// Arguments of the call (a tuple; `NEWOBJ_EX` gives `(args, kwargs)`).
    pub args: Value,
    /// Argument of `BUILD` (`__setstate__`), when there was one.
    pub state: Option<Value>,
    /// Items appended with `APPEND`/`APPENDS`.
    pub items: Vec<Value>,
    /// Pairs set with `SETITEM`/`SETITEMS`.
    pub dict_items: Vec<(Value, Value)>,
}

/// A numpy dtype as it appears in a pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DType {
    /// numpy's type string without byte order: `f4`, `i8`, `b1`, `O8`, `U10`, ...
    pub descr: String,
    /// True for big-endian (`>`) storage.
    pub big_endian: bool,
}

/// The element types whose values this reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// `b1`.
    Bool,
    /// `i1`.
    I8,
    /// `i2`.
    I16,
    /// `i4`.
    I32,
    /// `i8`.
    I64,
    /// `u1`.
    U8,
    /// `u2`.
    U16,
    /// `u4`.
    U32,
    /// `u8`.
    U64,
    /// `f2` (widened to `f32`).
    F16,
    /// `f4`.
    F32,
    /// `f8`.
    F64,
    /// `O`: Python objects.
    Object,
}

impl Element {
    /// Bytes per element in raw array data (`None` for objects).
    pub fn size(self) -> Option<usize> {
        Some(match self {
            Element::Bool | Element::I8 | Element::U8 => 1,
            Element::I16 | Element::U16 | Element::F16 => 2,
            Element::I32 | Element::U32 | Element::F32 => 4,
            Element::I64 | Element::U64 | Element::F64 => 8,
            Element::Object => return None,
        })
    }
}

impl DType {
    /// The decoded element type, or `None` for dtypes this reader keeps raw
    /// (strings, complex, datetimes, records).
    pub fn element(&self) -> Option<Element> {
        Some(match self.descr.as_str() {
            "b1" | "?" => Element::Bool,
            "i1" => Element::I8,
            "i2" => Element::I16,
            "i4" => Element::I32,
            "i8" => Element::I64,
            "u1" => Element::U8,
            "u2" => Element::U16,
            "u4" => Element::U32,
            "u8" => Element::U64,
            "f2" => Element::F16,
            "f4" => Element::F32,
            "f8" => Element::F64,
            d if d.starts_with('O') => Element::Object,
            _ => return None,
        })
    }
}

/// The values of a numpy array, always in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// `b1` elements.
    Bool(Vec<bool>),
    /// Any integer dtype.
    Int(Vec<i64>),
    /// `f2` and `f4` elements.
    F32(Vec<f32>),
    /// `f8` elements.
    F64(Vec<f64>),
    /// `O` elements.
    Object(Vec<Value>),
    /// The raw bytes of a dtype this reader does not decode.
    Raw(Vec<u8>),
}

/// A numpy array.
///
/// # Shapes
/// `shape` is numpy's shape; `data` holds `shape.iter().product()` elements
/// in C order (except [`ArrayData::Raw`], which keeps the bytes as stored).
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// The array's dtype.
    pub dtype: DType,
    /// numpy's shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// The elements.
    pub data: ArrayData,
}

impl NdArray {
    /// Number of elements held in `data` (for [`ArrayData::Raw`], the
    /// shape's element count, bounded by the number of raw bytes).
    pub fn len(&self) -> usize {
        match &self.data {
            ArrayData::Bool(v) => v.len(),
            ArrayData::Int(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::Object(v) => v.len(),
            ArrayData::Raw(raw) => {
                element_count(&self.shape).map_or(raw.len(), |n| n.min(raw.len()))
            }
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `f32`, for numeric dtypes (`None` for objects and raw data).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match &self.data {
            ArrayData::Bool(v) => Some(v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()),
            ArrayData::Int(v) => Some(v.iter().map(|&i| i as f32).collect()),
            ArrayData::F32(v) => Some(v.clone()),
            ArrayData::F64(v) => Some(v.iter().map(|&f| f as f32).collect()),
            ArrayData::Object(_) | ArrayData::Raw(_) => None,
        }
    }

    /// The elements as `f64`, for numeric dtypes (`None` for objects and raw data).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match &self.data {
            ArrayData::Bool(v) => Some(v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()),
            ArrayData::Int(v) => Some(v.iter().map(|&i| i as f64).collect()),
            ArrayData::F32(v) => Some(v.iter().map(|&f| f64::from(f)).collect()),
            ArrayData::F64(v) => Some(v.clone()),
            ArrayData::Object(_) | ArrayData::Raw(_) => None,
        }
    }
}

impl Value {
    /// Python-ish name of the value's type (`dict`, `int`, `ndarray`), without
    /// an article; messages use [`Value::describe`].
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::NdArray(_) => "ndarray",
            Value::DType(_) => "dtype",
            Value::Global { .. } => "global",
            Value::Object(_) => "object",
        }
    }

    /// The value's type with its article, for error messages: `a dict`,
    /// `an int`, `None`, `an ndarray of dtype f4 and shape [2, 3]`,
    /// `an object of class collections.Counter`, `the global os.system`.
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) | Value::BigInt(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a str".into(),
            Value::Bytes(_) => "a bytes object".into(),
            Value::List(v) => format!("a list of {} items", v.len()),
            Value::Tuple(v) => format!("a tuple of {} items", v.len()),
            Value::Dict(_) => "a dict".into(),
            Value::Set(_) => "a set".into(),
            Value::NdArray(a) => format!(
                "an ndarray of dtype {} and shape {:?}",
                a.dtype.descr, a.shape
            ),
            Value::DType(d) => format!("a numpy dtype {}", d.descr),
            Value::Global { module, name } => format!("the global {module}.{name}"),
            Value::Object(o) => format!("an object of class {}.{}", o.module, o.name),
        }
    }

    /// The string of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A number as `f64` ([`Value::Int`], [`Value::Float`] or [`Value::Bool`]).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    /// The items of a list, tuple or set.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The pairs of a dict.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a dict under a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Why a pickle could not be decoded: the byte offset and opcode where it
/// went wrong, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode being executed (or of the end of input).
    pub offset: usize,
    /// The opcode byte, when there was one.
    pub opcode: Option<u8>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.opcode {
            Some(op) => write!(
                f,
                "pickle byte {}: opcode {} (0x{op:02x}): {}",
                self.offset,
                opcode_name(op).unwrap_or("<unknown>"),
                self.msg
            ),
            None => write!(f, "pickle byte {}: {}", self.offset, self.msg),
        }
    }
}

impl std::error::Error for PickleError {}

/// Reads and decodes a pickle file.
///
/// # Errors
/// [`crate::Error::Io`] when the file cannot be read, [`crate::Error::Pickle`]
/// when it is not a pickle this reader can decode.
pub fn load(path: &Path) -> crate::Result<Value> {
    let bytes = std::fs::read(path).map_err(|source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_slice(&bytes).map_err(|source| crate::Error::Pickle {
        path: path.to_path_buf(),
        source,
    })
}

/// Decodes a pickle held in memory. Bytes after `STOP` are ignored, as
/// Python ignores them.
///
/// # Errors
/// A [`PickleError`] naming the byte offset and opcode: truncated input,
/// an unknown or unsupported opcode (persistent ids, extension registry,
/// out-of-band buffers), stack or memo misuse, a known global called with
/// arguments it does not accept, or a result nested deeper than
/// [`MAX_DEPTH`] or too large to materialise.
pub fn from_slice(bytes: &[u8]) -> Result<Value, PickleError> {
    Machine::new(bytes).run()
}

/// Name of a pickle opcode, as `pickletools` spells it.
pub fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// The machine.

/// A stack slot: immutable scalars inline, everything else a handle into the arena.
#[derive(Debug, Clone, Copy)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ref(usize),
}

/// An arena object. Containers hold [`Item`]s so that shared references
/// stay shared until materialisation.
#[derive(Debug)]
enum Obj {
    BigInt(Vec<u8>),
    Str(String),
    /// A Python 2 `str`: materialises as Latin-1 text, usable as bytes.
    Py2Str(Vec<u8>),
    Bytes(Vec<u8>),
    List(Vec<Item>),
    Tuple(Vec<Item>),
    Dict(Vec<(Item, Item)>),
    Set(Vec<Item>),
    Global {
        module: String,
        name: String,
    },
    DType(DType),
    /// `_reconstruct` result awaiting its `BUILD`.
    PendingArray,
    Array(NdArray),
    ObjectArray {
        dtype: DType,
        shape: Vec<usize>,
        items: Vec<Item>,
    },
    Object(OpaqueObj),
}

#[derive(Debug)]
struct OpaqueObj {
    module: String,
    name: String,
    args: Item,
    state: Option<Item>,
    items: Vec<Item>,
    dict_items: Vec<(Item, Item)>,
}

/// The globals the machine interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Reconstruct,
    FromBuffer,
    NumpyDType,
    NumpyScalar,
    CodecsEncode,
    Set,
    FrozenSet,
    ByteArray,
    Bytes,
    List,
    Tuple,
    Dict,
    OrderedDict,
    DefaultDict,
}

fn known_global(module: &str, name: &str) -> Option<Known> {
    let numpy_multiarray = matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray");
    let numpy_numeric = matches!(module, "numpy.core.numeric" | "numpy._core.numeric");
    let builtins = matches!(module, "builtins" | "__builtin__");
    Some(match (name, module) {
        ("_reconstruct", _) if numpy_multiarray => Known::Reconstruct,
        ("scalar", _) if numpy_multiarray => Known::NumpyScalar,
        ("_frombuffer", _) if numpy_numeric => Known::FromBuffer,
        ("dtype", "numpy") => Known::NumpyDType,
        ("encode", "_codecs") => Known::CodecsEncode,
        ("set", _) if builtins => Known::Set,
        ("frozenset", _) if builtins => Known::FrozenSet,
        ("bytearray", _) if builtins => Known::ByteArray,
        ("bytes", _) if builtins => Known::Bytes,
        ("list", _) if builtins => Known::List,
        ("tuple", _) if builtins => Known::Tuple,
        ("dict", _) if builtins => Known::Dict,
        ("OrderedDict", "collections") => Known::OrderedDict,
        ("defaultdict", "collections") => Known::DefaultDict,
        _ => return None,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and byte of the opcode being executed, for errors.
    op_offset: usize,
    op: Option<u8>,
    stack: Vec<Item>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Item>,
    arena: Vec<Obj>,
    /// Bytes the machine may still copy or materialise; linear in the input,
    /// so memo references cannot make the work or the output explode.
    budget: Cell<usize>,
    /// Set once the budget ran out; every later copy fails too, so the run
    /// ends in an error.
    exhausted: Cell<bool>,
}

type PResult<T> = Result<T, PickleError>;

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            op_offset: 0,
            op: None,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            arena: Vec::new(),
            budget: Cell::new(data.len().saturating_mul(64).saturating_add(1 << 26)),
            exhausted: Cell::new(false),
        }
    }

    /// Takes `bytes` from the budget; false (for good) once it is spent.
    fn spend(&self, bytes: usize) -> bool {
        match self.budget.get().checked_sub(bytes) {
            Some(left) if !self.exhausted.get() => {
                self.budget.set(left);
                true
            }
            _ => {
                self.exhausted.set(true);
                false
            }
        }
    }

    fn budget_err(&self) -> PickleError {
        self.err(format!(
            "size limit: the result would need more than 64 bytes per input byte (+64 MiB) \
             (shared references or repeated copies of {} input bytes)",
            self.data.len()
        ))
    }

    fn err(&self, msg: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.op_offset,
            opcode: self.op,
            msg: msg.into(),
        }
    }

    // -- input ------------------------------------------------------------

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let data = self.data;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "truncated: needs {n} more bytes at byte {}, only {} left",
                    self.pos,
                    data.len().saturating_sub(self.pos)
                ))
            })?;
        let out = &data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length prefix, checked against the remaining input before anything is allocated.
    fn len_from(&self, n: u64) -> PResult<usize> {
        let left = self.data.len().saturating_sub(self.pos);
        match usize::try_from(n) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(self.err(format!(
                "truncated: length {n} exceeds the {left} bytes left"
            ))),
        }
    }

    /// A newline-terminated line (text protocols), without the newline.
    fn line(&mut self) -> PResult<&'a [u8]> {
        let data = self.data;
        let rest = &data[self.pos.min(data.len())..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("truncated: missing end of line"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn line_str(&mut self) -> PResult<&'a str> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.err("line is not valid UTF-8"))
    }

    // -- stack ------------------------------------------------------------

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push_obj(&mut self, obj: Obj) {
        let id = self.arena.len();
        self.arena.push(obj);
        self.stack.push(Item::Ref(id));
    }

    fn pop(&mut self) -> PResult<Item> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&self) -> PResult<Item> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> PResult<Vec<Item>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.err("MARK above the stack top"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn obj(&self, item: Item) -> Option<&Obj> {
        match item {
            Item::Ref(id) => self.arena.get(id),
            _ => None,
        }
    }

    fn obj_mut(&mut self, item: Item) -> Option<&mut Obj> {
        match item {
            Item::Ref(id) => self.arena.get_mut(id),
            _ => None,
        }
    }

    /// An item's type with its article, for error messages (as
    /// [`Value::describe`], without materialising the item).
    fn describe(&self, item: Item) -> String {
        match item {
            Item::None => "None".into(),
            Item::Bool(_) => "a bool".into(),
            Item::Int(_) => "an int".into(),
            Item::Float(_) => "a float".into(),
            Item::Ref(_) => match self.obj(item) {
                Some(Obj::BigInt(_)) => "an int".into(),
                Some(Obj::Str(_)) => "a str".into(),
                Some(Obj::Py2Str(_)) => "a Python 2 str".into(),
                Some(Obj::Bytes(_)) => "a bytes object".into(),
                Some(Obj::List(v)) => format!("a list of {} items", v.len()),
                Some(Obj::Tuple(v)) => format!("a tuple of {} items", v.len()),
                Some(Obj::Dict(_)) => "a dict".into(),
                Some(Obj::Set(_)) => "a set".into(),
                Some(Obj::Global { module, name }) => format!("the global {module}.{name}"),
                Some(Obj::DType(d)) => format!("a numpy dtype {}", d.descr),
                Some(Obj::PendingArray | Obj::Array(_) | Obj::ObjectArray { .. }) => {
                    "an ndarray".into()
                }
                Some(Obj::Object(o)) => format!("an object of class {}.{}", o.module, o.name),
                None => "a dangling reference".into(),
            },
        }
    }

    fn memo_get(&mut self, key: u64) -> PResult<()> {
        let item = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.err(format!("memo key {key} was never stored")))?;
        self.stack.push(item);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> PResult<()> {
        let item = self.top()?;
        self.memo.insert(key, item);
        Ok(())
    }

    // -- main loop --------------------------------------------------------

    fn run(mut self) -> PResult<Value> {
        loop {
            self.op_offset = self.pos;
            self.op = None;
            let op = self.u8().map_err(|_| PickleError {
                offset: self.pos,
                opcode: None,
                msg: "truncated: input ended before STOP".into(),
            })?;
            self.op = Some(op);
            if op == b'.' {
                let root = self.pop()?;
                return self.materialize_root(root);
            }
            if let Err(e) = self.step(op) {
                return Err(if self.exhausted.get() {
                    self.budget_err()
                } else {
                    e
                });
            }
        }
    }

    fn step(&mut self, op: u8) -> PResult<()> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(self.err(format!("unsupported protocol {proto}")));
                }
            }
            0x95 => {
                // FRAME: a length hint for buffered reading; content follows as opcodes.
                self.u64()?;
            }
            // -- marks and stack manipulation
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.stack.push(top);
            }
            // -- memo
            b'p' => {
                let key = self.decimal_line()?;
                self.memo_put(key)?;
            }
            b'q' => {
                let key = self.u8()?;
                self.memo_put(u64::from(key))?;
            }
            b'r' => {
                let key = self.u32()?;
                self.memo_put(u64::from(key))?;
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key)?;
            }
            b'g' => {
                let key = self.decimal_line()?;
                self.memo_get(key)?;
            }
            b'h' => {
                let key = self.u8()?;
                self.memo_get(u64::from(key))?;
            }
            b'j' => {
                let key = self.u32()?;
                self.memo_get(u64::from(key))?;
            }
            // -- scalars
            b'N' => self.stack.push(Item::None),
            0x88 => self.stack.push(Item::Bool(true)),
            0x89 => self.stack.push(Item::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.stack.push(Item::Int(i64::from(v)));
            }
            b'K' => {
                let v = self.u8()?;
                self.stack.push(Item::Int(i64::from(v)));
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.stack.push(Item::Int(i64::from(v)));
            }
            0x8a => {
                let n = self.u8()?;
                let bytes = self.take(usize::from(n))?;
                self.push_long(bytes);
            }
            0x8b => {
                let n = i32::from_le_bytes(self.array()?);
                let n = u64::try_from(n).map_err(|_| self.err(format!("negative length {n}")))?;
                let n = self.len_from(n)?;
                let bytes = self.take(n)?;
                self.push_long(bytes);
            }
            b'I' => {
                let line = self.line_str()?;
                let item = match line {
                    "00" => Item::Bool(false),
                    "01" => Item::Bool(true),
                    s => Item::Int(
                        s.trim()
                            .parse()
                            .map_err(|_| self.err(format!("bad integer {s:?}")))?,
                    ),
                };
                self.stack.push(item);
            }
            b'L' => {
                let line = self.line_str()?;
                let digits = line.trim().trim_end_matches('L');
                let v: i64 = digits.parse().map_err(|_| {
                    self.err(format!(
                        "integer {line:?} is malformed or does not fit 64 bits"
                    ))
                })?;
                self.stack.push(Item::Int(v));
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.stack.push(Item::Float(v));
            }
            b'F' => {
                let line = self.line_str()?;
                let v = parse_py_float(line.trim())
                    .ok_or_else(|| self.err(format!("bad float {line:?}")))?;
                self.stack.push(Item::Float(v));
            }
            // -- strings and bytes
            b'X' => {
                let n = u64::from(self.u32()?);
                self.push_unicode(n)?;
            }
            0x8c => {
                let n = u64::from(self.u8()?);
                self.push_unicode(n)?;
            }
            0x8d => {
                let n = self.u64()?;
                self.push_unicode(n)?;
            }
            b'V' => {
                let line = self.line()?;
                let s = raw_unicode_escape(line)
                    .ok_or_else(|| self.err("bad raw-unicode-escape string"))?;
                self.push_obj(Obj::Str(s));
            }
            b'U' => {
                let n = u64::from(self.u8()?);
                self.push_bytes(n, Obj::Py2Str)?;
            }
            b'T' => {
                let n = i32::from_le_bytes(self.array()?);
                let n = u64::try_from(n).map_err(|_| self.err(format!("negative length {n}")))?;
                self.push_bytes(n, Obj::Py2Str)?;
            }
            b'S' => {
                let line = self.line()?;
                let bytes =
                    py_string_literal(line).ok_or_else(|| self.err("bad quoted string literal"))?;
                self.push_obj(Obj::Py2Str(bytes));
            }
            b'C' => {
                let n = u64::from(self.u8()?);
                self.push_bytes(n, Obj::Bytes)?;
            }
            b'B' => {
                let n = u64::from(self.u32()?);
                self.push_bytes(n, Obj::Bytes)?;
            }
            0x8e | 0x96 => {
                let n = self.u64()?;
                self.push_bytes(n, Obj::Bytes)?;
            }
            // -- containers
            b']' => self.push_obj(Obj::List(Vec::new())),
            b'}' => self.push_obj(Obj::Dict(Vec::new())),
            b')' => self.push_obj(Obj::Tuple(Vec::new())),
            0x8f => self.push_obj(Obj::Set(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::List(items));
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < self.floor() + n {
                    return Err(self.err("stack underflow"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_obj(Obj::Tuple(items));
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::Set(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push_obj(Obj::Dict(pairs));
            }
            b'a' => {
                let item = self.pop()?;
                self.extend(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend(items)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![(key, value)])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.set_items(pairs)?;
            }
            0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                if let Some(Obj::Set(set)) = self.obj_mut(target) {
                    set.extend(items);
                } else {
                    return Err(self.err(format!("ADDITEMS on {}", self.describe(target))));
                }
            }
            // -- globals, calls, objects
            b'c' => {
                let module = self.line_str()?.to_string();
                let name = self.line_str()?.to_string();
                self.push_obj(Obj::Global { module, name });
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (self.text(module), self.text(name)) else {
                    return Err(self.err("STACK_GLOBAL needs two strings"));
                };
                self.push_obj(Obj::Global { module, name });
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = self.call(callable, args)?;
                self.stack.push(result);
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let result = self.new_object(cls, args)?;
                self.stack.push(result);
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let both = self.alloc(Obj::Tuple(vec![args, kwargs]));
                let result = self.new_object(cls, both)?;
                self.stack.push(result);
            }
            b'i' => {
                let module = self.line_str()?.to_string();
                let name = self.line_str()?.to_string();
                let args = self.pop_mark()?;
                let cls = self.alloc(Obj::Global { module, name });
                let args = self.alloc(Obj::Tuple(args));
                let result = self.new_object(cls, args)?;
                self.stack.push(result);
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(self.err("OBJ without a class"));
                }
                let cls = items.remove(0);
                let args = self.alloc(Obj::Tuple(items));
                let result = self.new_object(cls, args)?;
                self.stack.push(result);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state)?;
            }
            0x98 => {
                self.top()?;
            }
            b'P' | b'Q' => return Err(self.err("persistent ids are not supported")),
            0x82..=0x84 => return Err(self.err("the extension registry is not supported")),
            0x97 => return Err(self.err("out-of-band buffers are not supported")),
            _ => return Err(self.err("unknown opcode")),
        }
        Ok(())
    }

    fn alloc(&mut self, obj: Obj) -> Item {
        let id = self.arena.len();
        self.arena.push(obj);
        Item::Ref(id)
    }

    fn decimal_line(&mut self) -> PResult<u64> {
        let line = self.line_str()?;
        line.trim()
            .parse()
            .map_err(|_| self.err(format!("bad memo key {line:?}")))
    }

    fn push_long(&mut self, bytes: &[u8]) {
        match long_to_i64(bytes) {
            Some(v) => self.stack.push(Item::Int(v)),
            None => self.push_obj(Obj::BigInt(bytes.to_vec())),
        }
    }

    fn push_unicode(&mut self, n: u64) -> PResult<()> {
        let n = self.len_from(n)?;
        let bytes = self.take(n)?;
        // Python writes lone surrogates with `surrogatepass`; Rust strings
        // cannot hold them, so such code points become U+FFFD.
        let s = String::from_utf8_lossy(bytes).into_owned();
        self.push_obj(Obj::Str(s));
        Ok(())
    }

    fn push_bytes(&mut self, n: u64, make: fn(Vec<u8>) -> Obj) -> PResult<()> {
        let n = self.len_from(n)?;
        let bytes = self.take(n)?.to_vec();
        self.push_obj(make(bytes));
        Ok(())
    }

    fn pairs(&self, items: Vec<Item>) -> PResult<Vec<(Item, Item)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err(format!(
                "odd number of items ({}) for key/value pairs",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn extend(&mut self, items: Vec<Item>) -> PResult<()> {
        let target = self.top()?;
        match self.obj_mut(target) {
            Some(Obj::List(list)) => list.extend(items),
            Some(Obj::Set(set)) => set.extend(items),
            Some(Obj::Object(o)) => o.items.extend(items),
            _ => {
                let found = self.describe(target);
                return Err(self.err(format!("cannot append to {found}")));
            }
        }
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<(Item, Item)>) -> PResult<()> {
        let target = self.top()?;
        match self.obj_mut(target) {
            Some(Obj::Dict(dict)) => dict.extend(pairs),
            Some(Obj::Object(o)) => o.dict_items.extend(pairs),
            _ => {
                let found = self.describe(target);
                return Err(self.err(format!("cannot set items on {found}")));
            }
        }
        Ok(())
    }

    /// A string item's text (Python 2 strings decoded as Latin-1).
    fn text(&self, item: Item) -> Option<String> {
        match self.obj(item)? {
            Obj::Str(s) => self.spend(s.len()).then(|| s.clone()),
            Obj::Py2Str(b) => self.spend(b.len() * 2).then(|| latin1_decode(b)),
            _ => None,
        }
    }

    /// A bytes-like item's bytes: `bytes`, a Python 2 `str`, or a Python 3
    /// `str` whose code points are all Latin-1 (numpy and `encoding="latin1"`).
    fn bytes_of(&self, item: Item) -> Option<Vec<u8>> {
        match self.obj(item)? {
            Obj::Bytes(b) | Obj::Py2Str(b) => self.spend(b.len()).then(|| b.clone()),
            Obj::Str(s) => self.spend(s.len()).then(|| latin1_encode(s)).flatten(),
            _ => None,
        }
    }

    fn tuple_items(&self, item: Item, what: &str) -> PResult<Vec<Item>> {
        match self.obj(item) {
            Some(Obj::Tuple(items)) if self.spend(items.len() * 16) => Ok(items.clone()),
            Some(Obj::Tuple(_)) => Err(self.budget_err()),
            _ => Err(self.err(format!(
                "{what}: expected a tuple, found {}",
                self.describe(item)
            ))),
        }
    }

    fn usize_of(&self, item: Item, what: &str) -> PResult<usize> {
        match item {
            Item::Int(i) => {
                usize::try_from(i).map_err(|_| self.err(format!("{what}: {i} is negative")))
            }
            _ => Err(self.err(format!(
                "{what}: expected an int, found {}",
                self.describe(item)
            ))),
        }
    }

    fn truthy(&self, item: Item, what: &str) -> PResult<bool> {
        match item {
            Item::Bool(b) => Ok(b),
            Item::Int(i) => Ok(i != 0),
            _ => Err(self.err(format!(
                "{what}: expected a bool, found {}",
                self.describe(item)
            ))),
        }
    }

    fn shape_of(&self, item: Item) -> PResult<Vec<usize>> {
        let dims = self.tuple_items(item, "array shape")?;
        dims.into_iter()
            .map(|d| self.usize_of(d, "array dimension"))
            .collect()
    }

    fn dtype_of(&self, item: Item) -> PResult<DType> {
        match self.obj(item) {
            Some(Obj::DType(d)) => Ok(d.clone()),
            _ => Err(self.err(format!(
                "expected a numpy dtype, found {}",
                self.describe(item)
            ))),
        }
    }

    fn global_of(&self, item: Item) -> Option<(String, String)> {
        match self.obj(item)? {
            Obj::Global { module, name } => Some((module.clone(), name.clone())),
            _ => None,
        }
    }

    // -- calls ------------------------------------------------------------

    /// `REDUCE`: `callable(*args)`.
    fn call(&mut self, callable: Item, args: Item) -> PResult<Item> {
        let Some((module, name)) = self.global_of(callable) else {
            return Err(self.err(format!(
                "REDUCE on {}, which is not callable",
                self.describe(callable)
            )));
        };
        let Some(known) = known_global(&module, &name) else {
            return Ok(self.opaque(module, name, args));
        };
        let argv = self.tuple_items(args, &format!("arguments of {module}.{name}"))?;
        let bad = |m: &Self| m.err(format!("{module}.{name} called with unsupported arguments"));
        let obj = match known {
            Known::Reconstruct => {
                if argv.len() != 3 {
                    return Err(bad(self));
                }
                Obj::PendingArray
            }
            Known::NumpyDType => {
                let descr = argv
                    .first()
                    .and_then(|&d| self.text(d))
                    .ok_or_else(|| bad(self))?;
                // numpy accepts '<f4' too; the byte order then comes from the string.
                let (big_endian, descr) = split_byte_order(&descr);
                Obj::DType(DType {
                    descr: descr.to_string(),
                    big_endian: big_endian.unwrap_or(false),
                })
            }
            Known::NumpyScalar => {
                let &[dtype, payload, ..] = argv.as_slice() else {
                    return Err(bad(self));
                };
                let dtype = self.dtype_of(dtype)?;
                return self.scalar(&dtype, payload, module, name, args);
            }
            Known::FromBuffer => {
                let &[buf, dtype, shape, order] = argv.as_slice() else {
                    return Err(bad(self));
                };
                let raw = self.bytes_of(buf).ok_or_else(|| bad(self))?;
                let dtype = self.dtype_of(dtype)?;
                let shape = self.shape_of(shape)?;
                let fortran = self.text(order).is_some_and(|o| o == "F");
                Obj::Array(self.decode_array(dtype, shape, fortran, raw)?)
            }
            Known::CodecsEncode => {
                let text = argv
                    .first()
                    .and_then(|&s| self.text(s))
                    .ok_or_else(|| bad(self))?;
                let encoding = match argv.get(1) {
                    Some(&e) => self.text(e).ok_or_else(|| bad(self))?,
                    None => "utf-8".to_string(),
                };
                let bytes = encode_text(&text, &encoding).ok_or_else(|| {
                    self.err(format!("_codecs.encode: cannot encode with {encoding:?}"))
                })?;
                Obj::Bytes(bytes)
            }
            Known::ByteArray | Known::Bytes => match argv.as_slice() {
                [] => Obj::Bytes(Vec::new()),
                [b] => match self.bytes_of(*b) {
                    Some(bytes) => Obj::Bytes(bytes),
                    None => {
                        let items = self.seq_items(*b).ok_or_else(|| bad(self))?;
                        let bytes: Option<Vec<u8>> = items
                            .iter()
                            .map(|i| match i {
                                Item::Int(v) => u8::try_from(*v).ok(),
                                _ => None,
                            })
                            .collect();
                        Obj::Bytes(bytes.ok_or_else(|| bad(self))?)
                    }
                },
                [s, e, ..] => {
                    let (Some(text), Some(encoding)) = (self.text(*s), self.text(*e)) else {
                        return Err(bad(self));
                    };
                    Obj::Bytes(encode_text(&text, &encoding).ok_or_else(|| bad(self))?)
                }
            },
            Known::Set | Known::FrozenSet | Known::List | Known::Tuple => {
                let items = match argv.as_slice() {
                    [] => Vec::new(),
                    [it] => self.seq_items(*it).ok_or_else(|| bad(self))?,
                    _ => return Err(bad(self)),
                };
                match known {
                    Known::List => Obj::List(items),
                    Known::Tuple => Obj::Tuple(items),
                    _ => Obj::Set(items),
                }
            }
            Known::Dict | Known::OrderedDict | Known::DefaultDict => {
                // defaultdict(factory[, mapping]); OrderedDict/dict([mapping]).
                let mapping = if known == Known::DefaultDict {
                    argv.get(1)
                } else {
                    argv.first()
                };
                match mapping {
                    None | Some(Item::None) => Obj::Dict(Vec::new()),
                    Some(&m) => Obj::Dict(self.mapping_pairs(m).ok_or_else(|| bad(self))?),
                }
            }
        };
        Ok(self.alloc(obj))
    }

    /// `NEWOBJ`: `cls.__new__(cls, *args)`; containers start empty.
    fn new_object(&mut self, cls: Item, args: Item) -> PResult<Item> {
        let Some((module, name)) = self.global_of(cls) else {
            return Err(self.err(format!("cannot instantiate {}", self.describe(cls))));
        };
        let obj = match known_global(&module, &name) {
            Some(Known::Set | Known::FrozenSet) => Obj::Set(Vec::new()),
            Some(Known::List) => Obj::List(Vec::new()),
            Some(Known::Dict | Known::OrderedDict | Known::DefaultDict) => Obj::Dict(Vec::new()),
            _ => return Ok(self.opaque(module, name, args)),
        };
        Ok(self.alloc(obj))
    }

    fn opaque(&mut self, module: String, name: String, args: Item) -> Item {
        self.alloc(Obj::Object(OpaqueObj {
            module,
            name,
            args,
            state: None,
            items: Vec::new(),
            dict_items: Vec::new(),
        }))
    }

    fn seq_items(&self, item: Item) -> Option<Vec<Item>> {
        match self.obj(item)? {
            Obj::List(v) | Obj::Tuple(v) | Obj::Set(v) => {
                self.spend(v.len() * 16).then(|| v.clone())
            }
            _ => None,
        }
    }

    fn mapping_pairs(&self, item: Item) -> Option<Vec<(Item, Item)>> {
        match self.obj(item)? {
            Obj::Dict(pairs) => self.spend(pairs.len() * 32).then(|| pairs.clone()),
            Obj::List(v) | Obj::Tuple(v) => v
                .iter()
                .map(|&pair| match self.seq_items(pair)?.as_slice() {
                    &[k, v] => Some((k, v)),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// `multiarray.scalar(dtype, payload)`: a numpy scalar as a plain number.
    fn scalar(
        &mut self,
        dtype: &DType,
        payload: Item,
        module: String,
        name: String,
        args: Item,
    ) -> PResult<Item> {
        let Some(element) = dtype.element() else {
            return Ok(self.opaque(module, name, args));
        };
        if element == Element::Object {
            return Ok(payload);
        }
        let raw = self.bytes_of(payload).ok_or_else(|| {
            self.err(format!(
                "numpy scalar payload must be bytes, found {}",
                self.describe(payload)
            ))
        })?;
        let array = self.decode_array(dtype.clone(), Vec::new(), false, raw)?;
        Ok(match array.data {
            ArrayData::Bool(v) => Item::Bool(v.first().copied().unwrap_or(false)),
            ArrayData::Int(v) => Item::Int(v.first().copied().unwrap_or(0)),
            ArrayData::F32(v) => Item::Float(v.first().map_or(0.0, |&f| f64::from(f))),
            ArrayData::F64(v) => Item::Float(v.first().copied().unwrap_or(0.0)),
            ArrayData::Object(_) | ArrayData::Raw(_) => {
                return Err(self.err("numpy scalar of an undecodable dtype"));
            }
        })
    }

    // -- BUILD ------------------------------------------------------------

    fn build(&mut self, target: Item, state: Item) -> PResult<()> {
        match self.obj(target) {
            Some(Obj::DType(_)) => {
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
                let fields = self.tuple_items(state, "dtype state")?;
                let order = fields.get(1).and_then(|&o| self.text(o));
                let big = match order.as_deref() {
                    Some(">") => Some(true),
                    Some("<") => Some(false),
                    Some("|" | "=") | None => None,
                    Some(other) => {
                        return Err(self.err(format!("unknown dtype byte order {other:?}")));
                    }
                };
                if let (Some(big), Some(Obj::DType(d))) = (big, self.obj_mut(target)) {
                    d.big_endian = big;
                }
            }
            Some(Obj::PendingArray) => {
                let fields = self.tuple_items(state, "ndarray state")?;
                // (version, shape, dtype, is_fortran, data) or, older, without the version.
                let fields = match fields.len() {
                    5 => &fields[1..],
                    4 => &fields[..],
                    n => {
                        return Err(
                            self.err(format!("ndarray state has {n} fields, expected 4 or 5"))
                        );
                    }
                };
                let shape = self.shape_of(fields[0])?;
                let dtype = self.dtype_of(fields[1])?;
                let fortran = self.truthy(fields[2], "ndarray is_fortran")?;
                let obj = if dtype.element() == Some(Element::Object) {
                    let items = self.seq_items(fields[3]).ok_or_else(|| {
                        self.err(format!(
                            "object array data must be a list, found {}",
                            self.describe(fields[3])
                        ))
                    })?;
                    let count =
                        element_count(&shape).ok_or_else(|| self.err("array shape overflows"))?;
                    if items.len() != count {
                        return Err(self.err(format!(
                            "object array of shape {shape:?} has {} items",
                            items.len()
                        )));
                    }
                    let items = if fortran {
                        fortran_to_c(&items, &shape)
                    } else {
                        items
                    };
                    Obj::ObjectArray {
                        dtype,
                        shape,
                        items,
                    }
                } else {
                    match self.bytes_of(fields[3]) {
                        Some(raw) => Obj::Array(self.decode_array(dtype, shape, fortran, raw)?),
                        None => {
                            Obj::Array(self.numbers_to_array(fields[3], dtype, shape, fortran)?)
                        }
                    }
                };
                if let Some(slot) = self.obj_mut(target) {
                    *slot = obj;
                }
            }
            Some(Obj::Object(_)) => {
                if let Some(Obj::Object(o)) = self.obj_mut(target) {
                    o.state = Some(state);
                }
            }
            Some(Obj::Dict(_)) => {
                // An OrderedDict/defaultdict's instance attributes: not part of its items.
            }
            _ => return Err(self.err(format!("BUILD on {}", self.describe(target)))),
        }
        Ok(())
    }

    /// Array data given as a list of numbers (what `ndarray.tolist` would give back).
    fn numbers_to_array(
        &self,
        item: Item,
        dtype: DType,
        shape: Vec<usize>,
        fortran: bool,
    ) -> PResult<NdArray> {
        let items = self.seq_items(item).ok_or_else(|| {
            self.err(format!(
                "array data must be bytes or a list, found {}",
                self.describe(item)
            ))
        })?;
        let count = element_count(&shape)
            .ok_or_else(|| self.err(format!("array shape {shape:?} overflows")))?;
        if items.len() != count {
            return Err(self.err(format!(
                "array of shape {shape:?} given {} values",
                items.len()
            )));
        }
        let element = dtype.element().ok_or_else(|| {
            self.err(format!(
                "array data list for undecodable dtype {}",
                dtype.descr
            ))
        })?;
        let mut numbers = Vec::with_capacity(items.len());
        for it in items {
            numbers.push(match it {
                Item::Int(i) => (i, i as f64),
                Item::Bool(b) => (i64::from(b), f64::from(u8::from(b))),
                Item::Float(f) => (f as i64, f),
                _ => return Err(self.err(format!("array data item is {}", self.describe(it)))),
            });
        }
        let data = match element {
            Element::Bool => ArrayData::Bool(numbers.iter().map(|&(i, _)| i != 0).collect()),
            Element::F16 | Element::F32 => {
                ArrayData::F32(numbers.iter().map(|&(_, f)| f as f32).collect())
            }
            Element::F64 => ArrayData::F64(numbers.iter().map(|&(_, f)| f).collect()),
            _ => ArrayData::Int(numbers.iter().map(|&(i, _)| i).collect()),
        };
        Ok(NdArray {
            data: reorder(data, &shape, fortran),
            dtype,
            shape,
        })
    }

    fn decode_array(
        &self,
        dtype: DType,
        shape: Vec<usize>,
        fortran: bool,
        raw: Vec<u8>,
    ) -> PResult<NdArray> {
        let count = element_count(&shape)
            .ok_or_else(|| self.err(format!("array shape {shape:?} overflows")))?;
        let Some(element) = dtype.element() else {
            return Ok(NdArray {
                dtype,
                shape,
                data: ArrayData::Raw(raw),
            });
        };
        let Some(size) = element.size() else {
            return Err(self.err("object array given as raw bytes"));
        };
        // Decoded elements take up to 8 bytes each (i64, f64).
        if !self.spend(count.saturating_mul(8)) {
            return Err(self.budget_err());
        }
        let expected = count
            .checked_mul(size)
            .ok_or_else(|| self.err("array size overflows"))?;
        if raw.len() != expected {
            return Err(self.err(format!(
                "array of shape {shape:?} and dtype {} needs {expected} bytes, found {}",
                dtype.descr,
                raw.len()
            )));
        }
        let big = dtype.big_endian;
        let data = match element {
            Element::Bool => ArrayData::Bool(raw.iter().map(|&b| b != 0).collect()),
            Element::I8 => ArrayData::Int(raw.iter().map(|&b| i64::from(b as i8)).collect()),
            Element::U8 => ArrayData::Int(raw.iter().map(|&b| i64::from(b)).collect()),
            Element::I16 => ArrayData::Int(
                chunks::<2>(&raw, big)
                    .map(|c| i64::from(i16::from_le_bytes(c)))
                    .collect(),
            ),
            Element::U16 => ArrayData::Int(
                chunks::<2>(&raw, big)
                    .map(|c| i64::from(u16::from_le_bytes(c)))
                    .collect(),
            ),
            Element::I32 => ArrayData::Int(
                chunks::<4>(&raw, big)
                    .map(|c| i64::from(i32::from_le_bytes(c)))
                    .collect(),
            ),
            Element::U32 => ArrayData::Int(
                chunks::<4>(&raw, big)
                    .map(|c| i64::from(u32::from_le_bytes(c)))
                    .collect(),
            ),
            Element::I64 => {
                ArrayData::Int(chunks::<8>(&raw, big).map(i64::from_le_bytes).collect())
            }
            Element::U64 => ArrayData::Int(
                chunks::<8>(&raw, big)
                    .map(|c| i64::try_from(u64::from_le_bytes(c)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| self.err("uint64 array value does not fit in i64"))?,
            ),
            Element::F16 => ArrayData::F32(
                chunks::<2>(&raw, big)
                    .map(|c| f16_to_f32(u16::from_le_bytes(c)))
                    .collect(),
            ),
            Element::F32 => {
                ArrayData::F32(chunks::<4>(&raw, big).map(f32::from_le_bytes).collect())
            }
            Element::F64 => {
                ArrayData::F64(chunks::<8>(&raw, big).map(f64::from_le_bytes).collect())
            }
            Element::Object => return Err(self.err("object array given as raw bytes")),
        };
        Ok(NdArray {
            data: reorder(data, &shape, fortran),
            dtype,
            shape,
        })
    }

    // -- materialisation --------------------------------------------------

    fn materialize_root(&self, root: Item) -> PResult<Value> {
        // Every node costs its size plus its payload, from the same budget.
        self.materialize(root, 0)
    }

    fn charge(&self, bytes: usize) -> PResult<()> {
        if self.spend(bytes.saturating_add(std::mem::size_of::<Value>())) {
            Ok(())
        } else {
            Err(self.budget_err())
        }
    }

    fn materialize(&self, item: Item, depth: usize) -> PResult<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels (or cyclic)")));
        }
        self.charge(0)?;
        let id = match item {
            Item::None => return Ok(Value::None),
            Item::Bool(b) => return Ok(Value::Bool(b)),
            Item::Int(i) => return Ok(Value::Int(i)),
            Item::Float(f) => return Ok(Value::Float(f)),
            Item::Ref(id) => id,
        };
        let obj = self
            .arena
            .get(id)
            .ok_or_else(|| self.err("dangling reference"))?;
        let seq = |items: &[Item]| -> PResult<Vec<Value>> {
            items
                .iter()
                .map(|&i| self.materialize(i, depth + 1))
                .collect()
        };
        let pairs = |pairs: &[(Item, Item)]| -> PResult<Vec<(Value, Value)>> {
            pairs
                .iter()
                .map(|&(k, v)| {
                    Ok((
                        self.materialize(k, depth + 1)?,
                        self.materialize(v, depth + 1)?,
                    ))
                })
                .collect()
        };
        Ok(match obj {
            Obj::BigInt(b) => {
                self.charge(b.len())?;
                Value::BigInt(b.clone())
            }
            Obj::Str(s) => {
                self.charge(s.len())?;
                Value::Str(s.clone())
            }
            Obj::Py2Str(b) => {
                self.charge(b.len().saturating_mul(2))?;
                Value::Str(latin1_decode(b))
            }
            Obj::Bytes(b) => {
                self.charge(b.len())?;
                Value::Bytes(b.clone())
            }
            Obj::List(v) => Value::List(seq(v)?),
            Obj::Tuple(v) => Value::Tuple(seq(v)?),
            Obj::Set(v) => Value::Set(seq(v)?),
            Obj::Dict(p) => Value::Dict(pairs(p)?),
            Obj::Global { module, name } => Value::Global {
                module: module.clone(),
                name: name.clone(),
            },
            Obj::DType(d) => Value::DType(d.clone()),
            Obj::PendingArray => Value::NdArray(NdArray {
                dtype: DType {
                    descr: "u1".into(),
                    big_endian: false,
                },
                shape: vec![0],
                data: ArrayData::Int(Vec::new()),
            }),
            Obj::Array(a) => {
                let bytes = match &a.data {
                    ArrayData::Bool(v) => v.len(),
                    ArrayData::Int(v) => v.len() * 8,
                    ArrayData::F32(v) => v.len() * 4,
                    ArrayData::F64(v) => v.len() * 8,
                    ArrayData::Object(v) => v.len() * std::mem::size_of::<Value>(),
                    ArrayData::Raw(v) => v.len(),
                };
                self.charge(bytes)?;
                Value::NdArray(a.clone())
            }
            Obj::ObjectArray {
                dtype,
                shape,
                items,
            } => Value::NdArray(NdArray {
                dtype: dtype.clone(),
                shape: shape.clone(),
                data: ArrayData::Object(seq(items)?),
            }),
            Obj::Object(o) => Value::Object(Box::new(Object {
                module: o.module.clone(),
                name: o.name.clone(),
                args: self.materialize(o.args, depth + 1)?,
                state: o
                    .state
                    .map(|s| self.materialize(s, depth + 1))
                    .transpose()?,
                items: seq(&o.items)?,
                dict_items: pairs(&o.dict_items)?,
            })),
        })
    }
}

// ---------------------------------------------------------------------------
// Helpers.

/// C-order data, reordering Fortran-ordered input.
fn reorder(data: ArrayData, shape: &[usize], fortran: bool) -> ArrayData {
    if !fortran || shape.len() < 2 {
        return data;
    }
    match data {
        ArrayData::Bool(v) => ArrayData::Bool(fortran_to_c(&v, shape)),
        ArrayData::Int(v) => ArrayData::Int(fortran_to_c(&v, shape)),
        ArrayData::F32(v) => ArrayData::F32(fortran_to_c(&v, shape)),
        ArrayData::F64(v) => ArrayData::F64(fortran_to_c(&v, shape)),
        ArrayData::Object(v) => ArrayData::Object(fortran_to_c(&v, shape)),
        ArrayData::Raw(v) => ArrayData::Raw(v),
    }
}

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Fixed-size chunks in little-endian order (byte-swapped when the source is big-endian).
fn chunks<const N: usize>(raw: &[u8], big_endian: bool) -> impl Iterator<Item = [u8; N]> + '_ {
    raw.chunks_exact(N).map(move |c| {
        let mut out = [0u8; N];
        out.copy_from_slice(c);
        if big_endian {
            out.reverse();
        }
        out
    })
}

/// Reorders column-major (Fortran) data into row-major (C) order.
fn fortran_to_c<T: Clone>(data: &[T], shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 || data.is_empty() {
        return data.to_vec();
    }
    // Fortran strides: stride[k] = product(shape[..k]).
    let mut strides = Vec::with_capacity(shape.len());
    let mut acc = 1usize;
    for &d in shape {
        strides.push(acc);
        acc = acc.saturating_mul(d);
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        match data.get(offset) {
            Some(v) => out.push(v.clone()),
            None => return data.to_vec(),
        }
        // Advance the C-order multi-index (last axis fastest).
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// A `LONG1`/`LONG4` payload (two's-complement little-endian) as `i64`, when it fits.
fn long_to_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return Some(0);
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0x00 };
    if bytes.len() > 8 {
        // Fits only if the extra high bytes are pure sign extension.
        let (low, high) = bytes.split_at(8);
        if high.iter().any(|&b| b != fill) || (low[7] & 0x80 != 0) != negative {
            return None;
        }
        return long_to_i64(low);
    }
    let mut buf = [fill; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(i64::from_le_bytes(buf))
}

fn split_byte_order(descr: &str) -> (Option<bool>, &str) {
    match descr.as_bytes().first() {
        Some(b'<') => (Some(false), &descr[1..]),
        Some(b'>') => (Some(true), &descr[1..]),
        Some(b'|' | b'=') => (None, &descr[1..]),
        _ => (None, descr),
    }
}

fn latin1_decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn latin1_encode(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn encode_text(text: &str, encoding: &str) -> Option<Vec<u8>> {
    let enc = encoding.to_ascii_lowercase().replace(['-', '_'], "");
    match enc.as_str() {
        "latin1" | "iso88591" | "l1" | "8859" | "cp819" => latin1_encode(text),
        "utf8" | "u8" => Some(text.as_bytes().to_vec()),
        "ascii" | "usascii" => text.is_ascii().then(|| text.as_bytes().to_vec()),
        _ => None,
    }
}

fn parse_py_float(s: &str) -> Option<f64> {
    match s {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A protocol-0 `STRING` argument: a quoted Python 2 literal.
fn py_string_literal(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (&first, rest) = line.split_first()?;
    if first != b'\'' && first != b'"' {
        return None;
    }
    let body = rest.strip_suffix(&[first])?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let &e = body.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v & 0xff).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// A protocol-0 `UNICODE` argument: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, other bytes Latin-1).
fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if b == b'\\' {
            let width = match line.get(i + 1) {
                Some(b'u') => Some(4),
                Some(b'U') => Some(8),
                _ => None,
            };
            if let Some(width) = width {
                let hex = line.get(i + 2..i + 2 + width)?;
                let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                i += 2 + width;
                continue;
            }
        }
        out.push(char::from(b));
        i += 1;
    }
    Some(out)
}

/// IEEE 754 half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac * 2^-24.
            let v = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Python 2 + numpy 1 style (SHORT_BINSTRING data, `numpy.core` names,
    /// memoised `'b'`), protocol 2: `[f4 [[1.5,-2],[0.25,8]], >i4 [1,2,3], f4 [1,1]]`.
    const PY2_ARRAYS: &str = "80025d28636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a636e756d70790a6e6461727261790a4b008571005501628752284b014b024b0286636e756d70790a64747970650a550266344b004b018752284b0355013c4e4e4e4affffffff4affffffff4b0074628955100000c03f000000c00000803e000000417462636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a636e756d70790a6e6461727261790a68005501628752284b014b0385636e756d70790a64747970650a550269344b004b018752284b0355013e4e4e4e4affffffff4affffffff4b00746289550c0000000100000002000000037462636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a636e756d70790a6e6461727261790a68005501628752284b014b0285636e756d70790a64747970650a550266344b004b018752284b0355013c4e4e4e4affffffff4affffffff4b0074628955080000803f0000803f7462652e";

    /// numpy 2, protocol 5 (`_frombuffer` over BYTEARRAY8, Fortran order):
    /// `[asfortranarray(arange(6.).reshape(2, 3)), float32(0.5), int64(-3)]`.
    const NUMPY2_P5: &str = "80059513010000000000005d288c136e756d70792e5f636f72652e6e756d657269638c0b5f66726f6d627566666572932896300000000000000000000000000000000000000000000840000000000000f03f0000000000001040000000000000004000000000000014408c056e756d70798c05647479706593948c02663889888752284b038c013c944e4e4e4affffffff4affffffff4b0074624b024b03868c014674528c166e756d70792e5f636f72652e6d756c746961727261798c067363616c6172939468008c02663489888752284b0368014e4e4e4affffffff4affffffff4b00746243040000003f8652680268008c02693889888752284b0368014e4e4e4affffffff4affffffff4b0074624308fdffffffffffffff8652652e";

    fn items(v: &Value) -> &[Value] {
        v.as_seq().unwrap()
    }

    fn array(v: &Value) -> &NdArray {
        match v {
            Value::NdArray(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn py2_numpy1_arrays_decode_with_byte_order() {
        let v = from_slice(&hex(PY2_ARRAYS)).unwrap();
        let a = items(&v);
        assert_eq!(array(&a[0]).shape, vec![2, 2]);
        assert_eq!(
            array(&a[0]).data,
            ArrayData::F32(vec![1.5, -2.0, 0.25, 8.0])
        );
        assert_eq!(
            array(&a[1]).dtype,
            DType {
                descr: "i4".into(),
                big_endian: true
            }
        );
        assert_eq!(array(&a[1]).data, ArrayData::Int(vec![1, 2, 3]));
        assert_eq!(array(&a[2]).data, ArrayData::F32(vec![1.0, 1.0]));
    }

    #[test]
    fn numpy2_protocol5_frombuffer_fortran_and_scalars() {
        let v = from_slice(&hex(NUMPY2_P5)).unwrap();
        let a = items(&v);
        assert_eq!(array(&a[0]).shape, vec![2, 3]);
        assert_eq!(
            array(&a[0]).data,
            ArrayData::F64(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            "C order"
        );
        assert_eq!(a[1], Value::Float(0.5));
        assert_eq!(a[2], Value::Int(-3));
    }

    #[test]
    fn py2_strings_are_latin1() {
        // [SHORT_BINSTRING 'caf\xe9', BINSTRING 'ab', STRING 'x\'\xe9\n']
        let mut p = b"\x80\x02](U\x04caf\xe9T\x02\x00\x00\x00ab".to_vec();
        p.extend(b"S'x\\'\\xe9\\n'\ne.");
        let v = from_slice(&p).unwrap();
        assert_eq!(
            items(&v),
            [
                Value::Str("café".into()),
                Value::Str("ab".into()),
                Value::Str("x'é\n".into())
            ]
        );
    }

    #[test]
    fn memo_shares_objects_filled_after_memoisation() {
        // l = []; memo; l.extend([1, 2]); (l, l)
        let v = from_slice(b"\x80\x02]q\x00(K\x01K\x02eh\x00\x86.").unwrap();
        let pair = Value::List(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(v, Value::Tuple(vec![pair.clone(), pair]));
    }

    #[test]
    fn long_integers() {
        // LONG1 of 2**64 (9 bytes), LONG1 -1, LONG1 sign-extended 9 bytes = -2, LONG4 0
        let p = b"\x80\x02(\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x8a\x01\xff\x8a\x09\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x8b\x00\x00\x00\x00t.";
        let v = from_slice(p).unwrap();
        assert_eq!(
            items(&v),
            [
                Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]),
                Value::Int(-1),
                Value::Int(-2),
                Value::Int(0)
            ]
        );
    }

    #[test]
    fn unknown_globals_are_opaque_objects() {
        // torch._utils._rebuild_tensor_v2(1); BUILD {'k': None}; APPEND 2
        let p =
            b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R}X\x01\x00\x00\x00kNsbK\x02a.";
        let Value::Object(o) = from_slice(p).unwrap() else {
            panic!("expected an object")
        };
        assert_eq!(
            (o.module.as_str(), o.name.as_str()),
            ("torch._utils", "_rebuild_tensor_v2")
        );
        assert_eq!(o.args, Value::Tuple(vec![Value::Int(1)]));
        assert_eq!(
            o.state,
            Some(Value::Dict(vec![(Value::Str("k".into()), Value::None)]))
        );
        assert_eq!(o.items, vec![Value::Int(2)]);
        let g = from_slice(b"\x80\x02cos\nsystem\n.").unwrap();
        assert_eq!(
            g,
            Value::Global {
                module: "os".into(),
                name: "system".into()
            }
        );
    }

    #[test]
    fn errors_name_offset_and_opcode() {
        let err = from_slice(b"\x80\x02X\x05\x00\x00\x00ab").unwrap_err();
        assert_eq!((err.offset, err.opcode), (2, Some(b'X')));
        assert!(
            err.to_string().contains("BINUNICODE") && err.to_string().contains("truncated"),
            "{err}"
        );
        let err = from_slice(b"\x80\x02\xff.").unwrap_err();
        assert_eq!((err.offset, err.opcode), (2, Some(0xff)));
        let err = from_slice(b"\x80\x02K\x01K\x02R.").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("REDUCE on an int, which is not callable"),
            "{err}"
        );
        let err = from_slice(b"\x80\x02]]b.").unwrap_err();
        assert!(
            err.to_string().ends_with("BUILD on a list of 0 items"),
            "{err}"
        );
        let err = from_slice(b"\x80\x02cos\nsystem\n)R)\x81.").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("cannot instantiate an object of class os.system"),
            "{err}"
        );
        let err = from_slice(b"\x80\x02h\x07.").unwrap_err();
        assert!(err.to_string().contains("memo key 7"), "{err}");
        let err = from_slice(b"\x80\x02N").unwrap_err();
        assert!(err.to_string().contains("before STOP"), "{err}");
        assert!(from_slice(b"\x80\x06N.").is_err(), "protocol 6 is unknown");
        assert!(
            from_slice(b"(N0.").is_err(),
            "POP may not cross a MARK into an empty stack"
        );
    }

    #[test]
    fn cycles_and_deep_nesting_are_errors_not_overflows() {
        // l = []; l.append(l)
        let err = from_slice(b"\x80\x02]q\x00h\x00a.").unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 100_000));
        p.extend(std::iter::repeat_n(b'a', 99_999));
        p.push(b'.');
        assert!(from_slice(&p).unwrap_err().to_string().contains("deeper"));
    }

    #[test]
    fn exponential_sharing_hits_the_size_limit() {
        // t = (); 120 times: t = (t, t) through the memo.
        let mut p = b"\x80\x02)".to_vec();
        for _ in 0..120 {
            p.extend(b"q\x00h\x00\x86");
        }
        p.push(b'.');
        let err = from_slice(&p).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    #[test]
    fn repeated_copies_hit_the_size_limit() {
        // l = [1] * 20000; then set(l) 50000 times (each call copies l).
        let mut p = b"\x80\x02cbuiltins\nset\nq\x01]q\x00(".to_vec();
        p.extend(b"K\x01".repeat(20_000));
        p.extend(b"e0");
        p.extend(b"h\x01h\x00\x85R0".repeat(50_000));
        p.extend(b"N.");
        let err = from_slice(&p).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    #[test]
    fn array_size_must_match_its_data() {
        // frombuffer(b'\x00' * 3, dtype('f4'), (1,), 'C'): 3 bytes cannot hold one f4.
        let p = b"\x80\x04\x8c\x13numpy._core.numeric\x8c\x0b_frombuffer\x93(C\x03\x00\x00\x00\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f4\x89\x88\x87RK\x01\x85\x8c\x01CtR.";
        let err = from_slice(p).unwrap_err();
        assert!(err.to_string().contains("needs 4 bytes"), "{err}");
        assert_eq!(err.opcode, Some(b'R'));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            fortran_to_c(&[0, 3, 1, 4, 2, 5], &[2, 3]),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            fortran_to_c(&[0, 2, 1, 3, 4, 6, 5, 7], &[2, 2, 2]),
            vec![0, 4, 1, 5, 2, 6, 3, 7]
        );
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(long_to_i64(&[0x00, 0x80]), Some(-32768));
        assert_eq!(long_to_i64(&[0x00, 0x80, 0x00]), Some(32768));
        assert_eq!(
            long_to_i64(&[0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0]),
            Some(0x7fff)
        );
        assert_eq!(
            long_to_i64(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0]),
            None,
            "2**63 does not fit"
        );
        assert_eq!(
            long_to_i64(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff]),
            Some(i64::MIN)
        );
        assert_eq!(
            raw_unicode_escape(b"a\\u00e9\\U0001F600"),
            Some("aé😀".into())
        );
        assert_eq!(opcode_name(0x95), Some("FRAME"));
    }
}
