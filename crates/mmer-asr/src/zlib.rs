//! The length of zlib's compression of a byte string: what Python's
//! `len(zlib.compress(data))` returns, for faster-whisper's compression-ratio
//! rule ([`crate::decode::compression_ratio`]).
//!
//! Other deflate implementations find other matches and build other trees:
//! miniz_oxide compresses "Don't forget to check it. " × 7 (181 bytes) to 47
//! bytes where zlib needs 37, enough to move a ratio across Whisper's 2.4.
//! So this is a port of zlib's own algorithm (madler/zlib, `deflate.c`:
//! `deflate_slow`, `longest_match`, `fill_window`; `trees.c`: `build_tree`,
//! `gen_bitlen`, `scan_tree`, `build_bl_tree`, `_tr_flush_block`; unchanged
//! in what they output from 1.2.x to 1.3.1) at the settings `compress()` uses:
//! level 6 (lazy matching, chains of 128, good 8, lazy 16, nice 128), a
//! 32 KiB window, memory level 8. It counts the bits each block would take
//! rather than writing them. The unit tests compare it with CPython's zlib.

/// Window size (`windowBits` 15).
const W_SIZE: usize = 1 << 15;
const W_MASK: usize = W_SIZE - 1;
/// The sliding buffer holds two windows.
const WINDOW_SIZE: usize = 2 * W_SIZE;
/// Hash chains: `memLevel` 8 gives 15 hash bits, 5 bits of shift per byte.
const HASH_MASK: usize = (1 << 15) - 1;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;
const MAX_DIST: usize = W_SIZE - MIN_LOOKAHEAD;
/// Matches of length 3 further back than this are not worth it.
const TOO_FAR: usize = 4096;
/// Chain end; position 0 is never matched (zlib's simplification).
const NIL: usize = 0;
/// Level 6 of zlib's configuration table.
const GOOD_MATCH: usize = 8;
const MAX_LAZY: usize = 16;
const NICE_MATCH: usize = 128;
const MAX_CHAIN: usize = 128;
/// A block ends after `lit_bufsize - 1` symbols (`lit_bufsize` = 2^(8 + 6)).
const MAX_SYMBOLS: usize = (1 << 14) - 1;

const LITERALS: usize = 256;
const END_BLOCK: usize = 256;
const L_CODES: usize = LITERALS + 1 + 29;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
/// Heap capacity, shared by the three trees.
const HEAP_SIZE: usize = 2 * L_CODES + 1;

const EXTRA_LBITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
/// Order in which the bit-length code lengths are sent.
const BL_ORDER: [usize; BL_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// Bit-length codes for runs: 3–6 copies of the previous length, 3–10
/// zeros, 11–138 zeros.
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

/// `len(zlib.compress(data))` at zlib's default level 6: the 2-byte header,
/// the deflate stream, the 4-byte Adler-32.
pub(crate) fn compressed_len(data: &[u8]) -> usize {
    let mut deflate = Deflate::new(data);
    deflate.run();
    2 + deflate.bits.div_ceil(8) + 4
}

/// `deflate_slow`'s state. Positions are indices into `window`.
struct Deflate<'a> {
    input: &'a [u8],
    /// Bytes of `input` already copied into the window.
    read: usize,
    window: Vec<u8>,
    head: Vec<u16>,
    prev: Vec<u16>,
    strstart: usize,
    lookahead: usize,
    /// Window position where the current block starts; negative once slid
    /// out of the window (no stored block is possible then).
    block_start: isize,
    match_length: usize,
    match_start: usize,
    prev_length: usize,
    prev_match: usize,
    match_available: bool,
    block: Block,
    /// Bits written so far.
    bits: usize,
}

/// Symbol counts of the block being built.
struct Block {
    literal_lengths: [u32; L_CODES],
    distances: [u32; D_CODES],
    symbols: usize,
}

impl Block {
    fn new() -> Self {
        let mut literal_lengths = [0; L_CODES];
        literal_lengths[END_BLOCK] = 1;
        Self {
            literal_lengths,
            distances: [0; D_CODES],
            symbols: 0,
        }
    }
}

impl<'a> Deflate<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            read: 0,
            window: vec![0; WINDOW_SIZE],
            head: vec![0; HASH_MASK + 1],
            prev: vec![0; W_SIZE],
            strstart: 0,
            lookahead: 0,
            block_start: 0,
            match_length: MIN_MATCH - 1,
            match_start: 0,
            prev_length: MIN_MATCH - 1,
            prev_match: 0,
            match_available: false,
            block: Block::new(),
            bits: 0,
        }
    }

    /// `deflate_slow` with `Z_FINISH`: lazy matching, then the last block.
    fn run(&mut self) {
        loop {
            if self.lookahead < MIN_LOOKAHEAD {
                self.fill_window();
                if self.lookahead == 0 {
                    break;
                }
            }
            let mut hash_head = NIL;
            if self.lookahead >= MIN_MATCH {
                hash_head = self.insert_string(self.strstart);
            }
            self.prev_length = self.match_length;
            self.prev_match = self.match_start;
            self.match_length = MIN_MATCH - 1;
            if hash_head != NIL
                && self.prev_length < MAX_LAZY
                && self.strstart - hash_head <= MAX_DIST
            {
                self.match_length = self.longest_match(hash_head);
                if self.match_length == MIN_MATCH
                    && self.strstart.wrapping_sub(self.match_start) > TOO_FAR
                {
                    self.match_length = MIN_MATCH - 1;
                }
            }
            if self.prev_length >= MIN_MATCH && self.match_length <= self.prev_length {
                // The previous match is at least as long: emit it.
                let max_insert = self.strstart + self.lookahead - MIN_MATCH;
                let full = self.tally_match(
                    self.strstart - 1 - self.prev_match,
                    self.prev_length - MIN_MATCH,
                );
                self.lookahead -= self.prev_length - 1;
                for _ in 0..self.prev_length - 2 {
                    self.strstart += 1;
                    if self.strstart <= max_insert {
                        self.insert_string(self.strstart);
                    }
                }
                self.match_available = false;
                self.match_length = MIN_MATCH - 1;
                self.strstart += 1;
                if full {
                    self.flush_block(false);
                }
            } else if self.match_available {
                let full = self.tally_literal(self.window[self.strstart - 1]);
                if full {
                    self.flush_block(false);
                }
                self.strstart += 1;
                self.lookahead -= 1;
            } else {
                self.match_available = true;
                self.strstart += 1;
                self.lookahead -= 1;
            }
        }
        if self.match_available {
            self.tally_literal(self.window[self.strstart - 1]);
            self.match_available = false;
        }
        self.flush_block(true);
    }

    /// Reads input after the lookahead, first sliding the upper window down
    /// when `strstart` nears the end of the buffer.
    fn fill_window(&mut self) {
        loop {
            let mut more = WINDOW_SIZE - self.lookahead - self.strstart;
            if self.strstart >= W_SIZE + MAX_DIST {
                self.window.copy_within(W_SIZE..WINDOW_SIZE - more, 0);
                self.match_start = self.match_start.wrapping_sub(W_SIZE);
                self.strstart -= W_SIZE;
                self.block_start -= W_SIZE as isize;
                for entry in self.head.iter_mut().chain(self.prev.iter_mut()) {
                    *entry = entry.saturating_sub(W_SIZE as u16);
                }
                more += W_SIZE;
            }
            let remaining = self.input.len() - self.read;
            if remaining == 0 {
                break;
            }
            let n = remaining.min(more);
            let at = self.strstart + self.lookahead;
            self.window[at..at + n].copy_from_slice(&self.input[self.read..self.read + n]);
            self.read += n;
            self.lookahead += n;
            if self.lookahead >= MIN_LOOKAHEAD || self.read == self.input.len() {
                break;
            }
        }
    }

    /// Inserts the 3 bytes at `pos` in their hash chain; returns the
    /// previous head of that chain. zlib's rolling hash `((h << 5) ^ c) &
    /// mask` over the three bytes is this function of them.
    fn insert_string(&mut self, pos: usize) -> usize {
        let w = &self.window;
        let hash = ((usize::from(w[pos]) << 10)
            ^ (usize::from(w[pos + 1]) << 5)
            ^ usize::from(w[pos + 2]))
            & HASH_MASK;
        let previous = self.head[hash];
        self.prev[pos & W_MASK] = previous;
        self.head[hash] = pos as u16;
        usize::from(previous)
    }

    /// The longest match for `strstart` along the hash chain from
    /// `cur_match`, if longer than `prev_length` (which it returns
    /// otherwise); sets `match_start`. zlib compares past the end of the
    /// input and then clips to the lookahead; comparing only up to the end
    /// finds the same match.
    fn longest_match(&mut self, mut cur_match: usize) -> usize {
        let mut chain = MAX_CHAIN;
        if self.prev_length >= GOOD_MATCH {
            chain >>= 2;
        }
        let mut best_len = self.prev_length;
        let nice = NICE_MATCH.min(self.lookahead);
        let limit = self.strstart.saturating_sub(MAX_DIST);
        let max_len = MAX_MATCH.min(self.lookahead);
        let scan = self.strstart;
        loop {
            let w = &self.window;
            let len = (0..max_len)
                .take_while(|&k| w[cur_match + k] == w[scan + k])
                .count();
            if len > best_len {
                self.match_start = cur_match;
                best_len = len;
                if len >= nice {
                    break;
                }
            }
            cur_match = usize::from(self.prev[cur_match & W_MASK]);
            chain -= 1;
            if cur_match <= limit || chain == 0 {
                break;
            }
        }
        best_len.min(self.lookahead)
    }

    /// Counts a literal; true when the block is full.
    fn tally_literal(&mut self, byte: u8) -> bool {
        self.block.literal_lengths[usize::from(byte)] += 1;
        self.block.symbols += 1;
        self.block.symbols == MAX_SYMBOLS
    }

    /// Counts a match of `distance` and `length - MIN_MATCH`; true when the
    /// block is full.
    fn tally_match(&mut self, distance: usize, length_minus_3: usize) -> bool {
        self.block.literal_lengths[LITERALS + 1 + length_code(length_minus_3)] += 1;
        self.block.distances[distance_code(distance - 1)] += 1;
        self.block.symbols += 1;
        self.block.symbols == MAX_SYMBOLS
    }

    /// `_tr_flush_block`: the block goes stored, with the fixed codes or
    /// with its own (dynamic) codes, whichever zlib judges shortest.
    fn flush_block(&mut self, last: bool) {
        let stored_len = self.strstart as isize - self.block_start;
        let mut cost = Cost::default();
        let literal = build_tree(&self.block.literal_lengths, &LITERAL_TREE, &mut cost);
        let distance = build_tree(&self.block.distances, &DISTANCE_TREE, &mut cost);
        let mut bl_freq = [0u32; BL_CODES];
        scan_tree(&literal, &mut bl_freq);
        scan_tree(&distance, &mut bl_freq);
        let bit_lengths = build_tree(&bl_freq, &BIT_LENGTH_TREE, &mut cost);
        let max_blindex = (3..BL_CODES)
            .rev()
            .find(|&i| bit_lengths.len[BL_ORDER[i]] != 0)
            .unwrap_or(3);
        cost.dynamic += 3 * (max_blindex as i64 + 1) + 5 + 5 + 4;

        let static_bytes = (cost.fixed + 3 + 7) >> 3;
        let opt_bytes = ((cost.dynamic + 3 + 7) >> 3).min(static_bytes);
        if self.block_start >= 0 && stored_len as i64 + 4 <= opt_bytes {
            self.bits = (self.bits + 3).next_multiple_of(8) + 32 + 8 * stored_len as usize;
        } else if static_bytes == opt_bytes {
            self.bits += 3 + cost.fixed as usize;
        } else {
            self.bits += 3 + cost.dynamic as usize;
        }
        self.block = Block::new();
        self.block_start = self.strstart as isize;
        if last {
            self.bits = self.bits.next_multiple_of(8);
        }
    }
}

/// `_length_code`: the length code (0–28) of a match length minus 3.
fn length_code(length_minus_3: usize) -> usize {
    match length_minus_3 {
        0..8 => length_minus_3,
        // 258 has a code of its own rather than 284 plus 5 extra bits.
        255 => 28,
        _ => {
            let log = length_minus_3.ilog2() as usize;
            4 * (log - 1) + ((length_minus_3 >> (log - 2)) & 3)
        }
    }
}

/// `d_code`: the distance code (0–29) of a distance minus 1.
fn distance_code(distance_minus_1: usize) -> usize {
    if distance_minus_1 < 4 {
        return distance_minus_1;
    }
    let log = distance_minus_1.ilog2() as usize;
    2 * log + ((distance_minus_1 >> (log - 1)) & 1)
}

/// Bit lengths of a block's data, excluding the 3-bit block header:
/// `opt_len` (dynamic codes, with their description once
/// [`Deflate::flush_block`] adds it) and `static_len` (fixed codes).
#[derive(Default)]
struct Cost {
    dynamic: i64,
    fixed: i64,
}

/// A tree's `static_tree_desc`.
struct TreeSpec {
    /// Code lengths of the fixed codes, if the tree has them.
    fixed_len: Option<fn(usize) -> i64>,
    extra_bits: &'static [u8],
    /// First code with extra bits.
    extra_base: usize,
    max_length: u16,
}

const LITERAL_TREE: TreeSpec = TreeSpec {
    fixed_len: Some(|n| match n {
        0..144 => 8,
        144..256 => 9,
        256..280 => 7,
        _ => 8,
    }),
    extra_bits: &EXTRA_LBITS,
    extra_base: LITERALS + 1,
    max_length: 15,
};
const DISTANCE_TREE: TreeSpec = TreeSpec {
    fixed_len: Some(|_| 5),
    extra_bits: &EXTRA_DBITS,
    extra_base: 0,
    max_length: 15,
};
const BIT_LENGTH_TREE: TreeSpec = TreeSpec {
    fixed_len: None,
    extra_bits: &EXTRA_BLBITS,
    extra_base: 0,
    max_length: 7,
};

/// A tree's code lengths.
struct Tree {
    /// Code length per symbol (0: unused).
    len: Vec<u16>,
    /// Largest symbol with a code.
    max_code: usize,
}

/// `build_tree` and `gen_bitlen`: zlib's length-limited Huffman code for
/// `freq`, its tie-breaks included (equal frequencies: the shallower
/// subtree first), adding the block's bits under it and under the fixed
/// codes to `cost`.
fn build_tree(freq: &[u32], spec: &TreeSpec, cost: &mut Cost) -> Tree {
    let elems = freq.len();
    let nodes = 2 * elems + 1;
    let mut f = vec![0u32; nodes];
    f[..elems].copy_from_slice(freq);
    let mut dad = vec![0usize; nodes];
    let mut len = vec![0u16; nodes];
    let mut depth = vec![0u16; nodes];
    let mut heap = vec![0usize; HEAP_SIZE];
    let mut heap_len = 0;
    let mut heap_max = HEAP_SIZE;
    let mut max_code: isize = -1;
    for (n, &count) in freq.iter().enumerate() {
        if count != 0 {
            heap_len += 1;
            heap[heap_len] = n;
            max_code = n as isize;
        }
    }
    // Deflate needs two codes at least: force frequencies of 1.
    while heap_len < 2 {
        let node = if max_code < 2 {
            max_code += 1;
            max_code as usize
        } else {
            0
        };
        heap_len += 1;
        heap[heap_len] = node;
        f[node] = 1;
        depth[node] = 0;
        cost.dynamic -= 1;
        if let Some(fixed) = spec.fixed_len {
            cost.fixed -= fixed(node);
        }
    }
    let max_code = max_code as usize;

    let smaller = |f: &[u32], depth: &[u16], n: usize, m: usize| {
        f[n] < f[m] || (f[n] == f[m] && depth[n] <= depth[m])
    };
    let down_heap =
        |heap: &mut [usize], heap_len: usize, f: &[u32], depth: &[u16], mut k: usize| {
            let v = heap[k];
            let mut j = k << 1;
            while j <= heap_len {
                if j < heap_len && smaller(f, depth, heap[j + 1], heap[j]) {
                    j += 1;
                }
                if smaller(f, depth, v, heap[j]) {
                    break;
                }
                heap[k] = heap[j];
                k = j;
                j <<= 1;
            }
            heap[k] = v;
        };
    for k in (1..=heap_len / 2).rev() {
        down_heap(&mut heap, heap_len, &f, &depth, k);
    }
    let mut node = elems;
    loop {
        let n = heap[1];
        heap[1] = heap[heap_len];
        heap_len -= 1;
        down_heap(&mut heap, heap_len, &f, &depth, 1);
        let m = heap[1];
        heap_max -= 1;
        heap[heap_max] = n;
        heap_max -= 1;
        heap[heap_max] = m;
        f[node] = f[n] + f[m];
        depth[node] = depth[n].max(depth[m]) + 1;
        dad[n] = node;
        dad[m] = node;
        heap[1] = node;
        node += 1;
        down_heap(&mut heap, heap_len, &f, &depth, 1);
        if heap_len < 2 {
            break;
        }
    }
    heap_max -= 1;
    heap[heap_max] = heap[1];

    // gen_bitlen: depths from the root down, capped at max_length.
    let mut bl_count = [0u32; 16];
    let mut overflow = 0i32;
    len[heap[heap_max]] = 0;
    for &n in &heap[heap_max + 1..HEAP_SIZE] {
        let mut bits = len[dad[n]] + 1;
        if bits > spec.max_length {
            bits = spec.max_length;
            overflow += 1;
        }
        len[n] = bits;
        if n > max_code {
            continue;
        }
        bl_count[usize::from(bits)] += 1;
        let extra = if n >= spec.extra_base {
            i64::from(spec.extra_bits[n - spec.extra_base])
        } else {
            0
        };
        cost.dynamic += i64::from(f[n]) * (i64::from(bits) + extra);
        if let Some(fixed) = spec.fixed_len {
            cost.fixed += i64::from(f[n]) * (fixed(n) + extra);
        }
    }
    if overflow > 0 {
        let max_length = usize::from(spec.max_length);
        while overflow > 0 {
            let mut bits = max_length - 1;
            while bl_count[bits] == 0 {
                bits -= 1;
            }
            bl_count[bits] -= 1;
            bl_count[bits + 1] += 2;
            bl_count[max_length] -= 1;
            overflow -= 2;
        }
        let mut h = HEAP_SIZE;
        for bits in (1..=max_length).rev() {
            let mut count = bl_count[bits];
            while count != 0 {
                h -= 1;
                let m = heap[h];
                if m > max_code {
                    continue;
                }
                if usize::from(len[m]) != bits {
                    cost.dynamic += (bits as i64 - i64::from(len[m])) * i64::from(f[m]);
                    len[m] = bits as u16;
                }
                count -= 1;
            }
        }
    }
    len.truncate(elems);
    Tree { len, max_code }
}

/// `scan_tree`: counts the bit-length codes that describe `tree`'s code
/// lengths (run-length coded) into `bl_freq`.
fn scan_tree(tree: &Tree, bl_freq: &mut [u32; BL_CODES]) {
    // A guard past the last code ends the final run.
    let len_at = |n: usize| -> u32 {
        if n > tree.max_code {
            0xffff
        } else {
            u32::from(tree.len[n])
        }
    };
    let mut prevlen = u32::MAX;
    let mut nextlen = len_at(0);
    let mut count = 0u32;
    let (mut max_count, mut min_count) = if nextlen == 0 { (138, 3) } else { (7, 4) };
    for n in 0..=tree.max_code {
        let curlen = nextlen;
        nextlen = len_at(n + 1);
        count += 1;
        if count < max_count && curlen == nextlen {
            continue;
        } else if count < min_count {
            bl_freq[curlen as usize] += count;
        } else if curlen != 0 {
            if curlen != prevlen {
                bl_freq[curlen as usize] += 1;
            }
            bl_freq[REP_3_6] += 1;
        } else if count <= 10 {
            bl_freq[REPZ_3_10] += 1;
        } else {
            bl_freq[REPZ_11_138] += 1;
        }
        count = 0;
        prevlen = curlen;
        (max_count, min_count) = if nextlen == 0 {
            (138, 3)
        } else if curlen == nextlen {
            (6, 3)
        } else {
            (7, 4)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from a 64-bit LCG, `x ← x·6364136223846793005 +
    /// 1442695040888963407`, each the top byte mapped into `alphabet`;
    /// the same generator in Python made the expected lengths.
    fn lcg_bytes(seed: u64, n: usize, alphabet: &[u8]) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(x >> 56) as usize % alphabet.len()]
            })
            .collect()
    }

    /// Against the tables `tr_static_init` fills: each code in turn covers
    /// 2^extra values.
    #[test]
    fn codes_match_zlibs_tables() {
        let mut lengths = Vec::new();
        for (code, &extra) in EXTRA_LBITS[..28].iter().enumerate() {
            lengths.extend(std::iter::repeat_n(code, 1 << extra));
        }
        lengths[255] = 28;
        assert_eq!(lengths.len(), 256);
        assert!((0..256).all(|lc| length_code(lc) == lengths[lc]));
        let mut distances = Vec::new();
        for (code, &extra) in EXTRA_DBITS.iter().enumerate() {
            distances.extend(std::iter::repeat_n(code, 1 << extra));
        }
        assert_eq!(distances.len(), W_SIZE);
        assert!((0..W_SIZE).all(|d| distance_code(d) == distances[d]));
    }

    /// `len(zlib.compress(input))` from CPython 3 with zlib 1.2.13. During
    /// development the port also matched CPython on 6,914 other inputs
    /// (random words with repeats, random bytes over 2–256 symbols, runs,
    /// up to 300 kB).
    #[test]
    fn lengths_equal_cpython_zlib() {
        let looping = "Don't forget to check it. ".repeat(40);
        let cases: Vec<(&str, Vec<u8>, usize)> = vec![
            ("empty", Vec::new(), 8),
            ("one byte", b"a".to_vec(), 9),
            ("a sentence", b"Don't forget a jacket.".to_vec(), 30),
            ("7 repeats", looping.as_bytes()[..181].to_vec(), 37),
            ("40 repeats", looping.into_bytes(), 43),
            ("a run (258-byte matches)", vec![b'a'; 1000], 17),
            ("4 symbols", lcg_bytes(1, 3000, b"acgt"), 1004),
            // Incompressible: a stored block.
            ("256 symbols", lcg_bytes(2, 2000, &all_bytes()), 2011),
            (
                "11 symbols, 2 blocks",
                lcg_bytes(3, 20_000, b"abcdefghij "),
                10465,
            ),
            // Past 64 kB the window slides.
            ("4 symbols, sliding", lcg_bytes(4, 100_000, b"acgt"), 29603),
            (
                "256 symbols, sliding",
                lcg_bytes(5, 70_000, &all_bytes()),
                70031,
            ),
            ("2 symbols", lcg_bytes(6, 40_000, b"ab"), 6410),
        ];
        for (name, input, want) in cases {
            assert_eq!(compressed_len(&input), want, "{name}");
        }
    }

    fn all_bytes() -> Vec<u8> {
        (0..=255).collect()
    }
}
