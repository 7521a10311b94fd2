//! A compact sparse Merkle tree: the authenticated dictionary under store format v2
//! (docs/design/authenticated-state.md).
//!
//! One root hash commits to a whole map of 256-bit keys to 256-bit value hashes. The node
//! storage is **untrusted**: every node read is checked against the trusted root on the way
//! down (a hash chain), so an edited, deleted, replaced, moved or planted node gives
//! [`Error::Tampered`], never a wrong answer.
//!
//! The bytes below are fixed: other code and stored data depend on them.
//!
//! - `H` = SHA-256. Map keys enter as [`key_hash`] = `H(0x02 ‖ map key)`, values as
//!   [`value_hash`] = `H(0x03 ‖ value)`.
//! - An empty subtree hashes to [`EMPTY`] (32 zero bytes); a leaf to `H(0x00 ‖ key ‖ value)`;
//!   an inner node to `H(0x01 ‖ left ‖ right)`.
//! - Compact and canonical: a subtree with one leaf *is* that leaf (the leaf sits at the
//!   shallowest depth where it is alone on its path), a subtree with two or more leaves is an
//!   inner node, an empty one is [`EMPTY`]. The same map always gives the same root.
//! - Bit `i` of a key is bit `7 - i % 8` of byte `i / 8` (most significant first); bit `d`
//!   chooses the child of a node at depth `d` (0 = left).
//! - Nodes are stored by position ([`NodeKey`]: depth and key prefix), so that a remote store
//!   can read a whole path in one batch ([`NodeSource::get_many`]). Inner nodes sit at depths
//!   0..=255, leaves at 0..=256 (two keys that differ only in their last bit are split by an
//!   inner node at depth 255 and sit at depth 256).
//!
//! Writes are never performed here: [`update`] returns the changed positions, and the caller
//! writes them in its own transaction.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest;

use super::crypto::hex;
use crate::{Error, Result};

/// A SHA-256 hash: a key, a value hash or a node hash.
pub(crate) type Hash = [u8; 32];

/// The hash of an empty subtree.
pub(crate) const EMPTY: Hash = [0; 32];

/// The deepest position: a leaf whose every key bit is fixed by its position.
pub(crate) const MAX_DEPTH: u16 = 256;

/// The most positions one [`NodeSource::get_many`] call is asked for.
pub(crate) const MAX_BATCH: usize = 100;

/// The first read of a path asks for depths `0..FIRST_BATCH` in one call: at 100,000 random
/// keys the leaves sit at depth 17.9 on average, 40 at most (the `measure` test), so one call
/// covers a path; a deeper one (keys chosen to share long prefixes) costs one more call per
/// 100 levels.
const FIRST_BATCH: u16 = 64;

const LEAF_TAG: u8 = 0x00;
const INNER_TAG: u8 = 0x01;
const KEY_TAG: u8 = 0x02;
const VALUE_TAG: u8 = 0x03;

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = EMPTY;
    // SHA-256 output is always 32 bytes.
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The tree key of a map key: `H(0x02 ‖ map_key)`.
pub(crate) fn key_hash(map_key: &[u8]) -> Hash {
    sha256(&[&[KEY_TAG], map_key])
}

/// The hash a leaf stores for a value: `H(0x03 ‖ value)`.
pub(crate) fn value_hash(value: &[u8]) -> Hash {
    sha256(&[&[VALUE_TAG], value])
}

fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    sha256(&[&[LEAF_TAG], key, value])
}

fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[INNER_TAG], left, right])
}

/// Bit `i` of `key` (most significant bit of byte 0 first); `false` past the last bit.
fn bit(key: &Hash, i: u16) -> bool {
    key.get(usize::from(i / 8))
        .is_some_and(|b| (b >> (7 - i % 8)) & 1 == 1)
}

/// `key` with every bit at index `depth` or beyond cleared.
fn prefix(key: &Hash, depth: u16) -> Hash {
    let full = usize::from(depth / 8);
    let rem = depth % 8;
    let mut p = EMPTY;
    for (i, (o, k)) in p.iter_mut().zip(key).enumerate() {
        if i < full {
            *o = *k;
        } else if i == full && rem > 0 {
            *o = k & (0xff << (8 - rem));
        }
    }
    p
}

/// The index of the first bit where `a` and `b` differ (`None` if they are equal).
fn first_diff(a: &Hash, b: &Hash) -> Option<u16> {
    let (i, (x, y)) = a.iter().zip(b).enumerate().find(|(_, (x, y))| x != y)?;
    let byte = u16::try_from(i).ok()?;
    // `x ^ y` is non-zero, so it has at most 7 leading zeros.
    Some(byte * 8 + u16::try_from((x ^ y).leading_zeros()).ok()?)
}

/// Whether `a` and `b` agree on their first `depth` bits.
fn shares_prefix(a: &Hash, b: &Hash, depth: u16) -> bool {
    first_diff(a, b).is_none_or(|m| m >= depth)
}

/// A short form of a hash for error details.
fn short(h: &Hash) -> String {
    hex(h.get(..8).unwrap_or(h)) + "…"
}

fn tampered(what: String) -> Error {
    Error::Tampered { what }
}

/// The position of a node: its depth and the first `depth` bits of every key below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeKey {
    depth: u16,
    prefix: Hash,
}

// `ROOT`, `new`, `depth`, `prefix` and `from_bytes` serve the tests and the engines to come (a
// remote engine decodes the positions it stores); the SQLite engine only encodes.
#[cfg_attr(not(test), allow(dead_code))]
impl NodeKey {
    /// The position of the root node.
    pub(crate) const ROOT: NodeKey = NodeKey {
        depth: 0,
        prefix: EMPTY,
    };

    /// The position at `depth` on the path of `key` (`None` past [`MAX_DEPTH`]).
    pub(crate) fn new(key: &Hash, depth: u16) -> Option<NodeKey> {
        (depth <= MAX_DEPTH).then(|| NodeKey::at(key, depth))
    }

    /// The position at `depth` (at most [`MAX_DEPTH`]) on the path of `key`.
    fn at(key: &Hash, depth: u16) -> NodeKey {
        let depth = depth.min(MAX_DEPTH);
        NodeKey {
            depth,
            prefix: prefix(key, depth),
        }
    }

    /// The other child of the parent of the position at `depth` (≥ 1) on the path of `key`.
    fn sibling(key: &Hash, depth: u16) -> NodeKey {
        let mut pos = NodeKey::at(key, depth);
        if let Some(d) = depth.checked_sub(1)
            && let Some(b) = pos.prefix.get_mut(usize::from(d / 8))
        {
            *b ^= 0x80 >> (d % 8);
        }
        pos
    }

    /// The depth, 0 (the root) to [`MAX_DEPTH`].
    pub(crate) fn depth(&self) -> u16 {
        self.depth
    }

    /// The key prefix, with every bit at index `depth` or beyond zero.
    pub(crate) fn prefix(&self) -> &Hash {
        &self.prefix
    }

    fn prefix_bytes(&self) -> &[u8] {
        let n = usize::from(self.depth.div_ceil(8));
        self.prefix.get(..n).unwrap_or(&self.prefix)
    }

    /// The canonical encoding: the depth (2 bytes, big-endian), then the first
    /// `ceil(depth / 8)` bytes of the prefix.
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + 32);
        v.extend_from_slice(&self.depth.to_be_bytes());
        v.extend_from_slice(self.prefix_bytes());
        v
    }

    /// Decodes [`NodeKey::to_bytes`], refusing any other spelling (a depth past
    /// [`MAX_DEPTH`], a wrong length, a bit set past the depth) as [`Error::Tampered`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<NodeKey> {
        let bad = |why: &str| {
            tampered(format!(
                "a stored tree position ({}) is malformed: {why}",
                hex(bytes)
            ))
        };
        let (d, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("shorter than 2 bytes"))?;
        let depth = u16::from_be_bytes(*d);
        if depth > MAX_DEPTH {
            return Err(bad("its depth is beyond 256"));
        }
        if rest.len() != usize::from(depth.div_ceil(8)) {
            return Err(bad("its length does not match its depth"));
        }
        let mut raw = EMPTY;
        raw.iter_mut().zip(rest).for_each(|(o, b)| *o = *b);
        if prefix(&raw, depth) != raw {
            return Err(bad("a bit past its depth is set"));
        }
        Ok(NodeKey { depth, prefix: raw })
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.prefix_bytes();
        if p.is_empty() {
            write!(f, "depth {} (the root)", self.depth)
        } else {
            write!(f, "depth {} prefix {}", self.depth, hex(p))
        }
    }
}

/// A stored node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// Two or more leaves below: the hashes of the two children ([`EMPTY`] for none).
    Inner {
        /// The child whose next key bit is 0.
        left: Hash,
        /// The child whose next key bit is 1.
        right: Hash,
    },
    /// The one key below this position, and its value hash.
    Leaf {
        /// The full key.
        key: Hash,
        /// Its value hash.
        value: Hash,
    },
}

impl Node {
    /// The length of [`Node::to_bytes`].
    pub(crate) const ENCODED_LEN: usize = 65;

    /// The node's hash: `H(0x00 ‖ key ‖ value)` or `H(0x01 ‖ left ‖ right)`, i.e. the hash
    /// of its encoding.
    pub(crate) fn hash(&self) -> Hash {
        match self {
            Node::Inner { left, right } => inner_hash(left, right),
            Node::Leaf { key, value } => leaf_hash(key, value),
        }
    }

    /// The canonical encoding, which is also the hashed preimage: a tag byte (0x00 leaf,
    /// 0x01 inner), then the two hashes (key and value, or left and right).
    pub(crate) fn to_bytes(self) -> [u8; Node::ENCODED_LEN] {
        let (tag, a, b) = match self {
            Node::Inner { left, right } => (INNER_TAG, left, right),
            Node::Leaf { key, value } => (LEAF_TAG, key, value),
        };
        let mut out = [0; Node::ENCODED_LEN];
        out[0] = tag;
        out[1..33].copy_from_slice(&a);
        out[33..].copy_from_slice(&b);
        out
    }

    /// Decodes [`Node::to_bytes`]: exactly 65 bytes with a known tag, else
    /// [`Error::Tampered`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Node> {
        let bad = |why: &str| tampered(format!("a stored tree node is malformed: {why}"));
        let (tag, rest) = bytes.split_first().ok_or_else(|| bad("it is empty"))?;
        let (a, b) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("it is too short"))?;
        let b: &Hash = b.try_into().map_err(|_| {
            bad(&format!(
                "{} bytes instead of {}",
                bytes.len(),
                Node::ENCODED_LEN
            ))
        })?;
        match *tag {
            LEAF_TAG => Ok(Node::Leaf { key: *a, value: *b }),
            INNER_TAG => Ok(Node::Inner {
                left: *a,
                right: *b,
            }),
            t => Err(bad(&format!("unknown tag {t:#04x}"))),
        }
    }
}

/// Read access to the (untrusted) node storage.
pub(crate) trait NodeSource {
    /// The nodes at `keys` (at most [`MAX_BATCH`] of them), read from one consistent snapshot:
    /// one answer per key, in order, `None` where no node is stored. Stored bytes are decoded
    /// with [`NodeKey::from_bytes`] / [`Node::from_bytes`]; whether a node belongs where it
    /// is stored is checked by the caller.
    fn get_many(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>>;
}

/// The end of a key's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Terminal {
    /// An empty subtree: the key is absent.
    Empty,
    /// The one leaf below the path: the key itself (present), or another key with the same
    /// prefix (the key is absent).
    Leaf {
        /// The leaf's key.
        key: Hash,
        /// The leaf's value hash.
        value: Hash,
    },
}

/// A proof of presence or absence of one key against a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proof {
    /// The hashes of the siblings on the path, from the root's children down ([`EMPTY`] for
    /// empty ones); the terminal sits at depth `siblings.len()`.
    pub(crate) siblings: Vec<Hash>,
    /// What the path ends in.
    pub(crate) terminal: Terminal,
}

impl Proof {
    /// Recomputes the root from the proof (no storage read) and answers for `key`: its value
    /// hash if present, `None` if absent. A proof that does not lead to `root`, whose
    /// terminal leaf is not on `key`'s path, or that is not canonical is [`Error::Tampered`].
    ///
    /// One shape is beyond a proof's reach: an empty terminal whose sibling is a lone leaf
    /// (that sibling should have moved up). The answer is still right: the key is absent.
    pub(crate) fn verify(&self, root: &Hash, key: &Hash) -> Result<Option<Hash>> {
        let bad = |why: String| tampered(format!("the tree proof for key {} {why}", short(key)));
        let depth = u16::try_from(self.siblings.len())
            .ok()
            .filter(|d| *d <= MAX_DEPTH)
            .ok_or_else(|| bad(format!("has {} siblings", self.siblings.len())))?;
        let (mut h, found) = match &self.terminal {
            Terminal::Empty => (EMPTY, None),
            Terminal::Leaf { key: k, value } => {
                if !shares_prefix(k, key, depth) {
                    return Err(bad(format!(
                        "ends in the leaf of key {}, which is not on its path at depth {depth}",
                        short(k)
                    )));
                }
                (leaf_hash(k, value), (k == key).then_some(*value))
            }
        };
        if self.siblings.last() == Some(&EMPTY) {
            return Err(bad(
                "is not canonical: its terminal has an empty sibling".into()
            ));
        }
        for (d, s) in (0..depth).zip(&self.siblings).rev() {
            h = if bit(key, d) {
                inner_hash(s, &h)
            } else {
                inner_hash(&h, s)
            };
        }
        if h != *root {
            return Err(bad(format!(
                "leads to root {}, not to the trusted root {}",
                short(&h),
                short(root)
            )));
        }
        Ok(found)
    }
}

/// A checked path: the inner nodes from the root down, and what the path ends in.
struct Path {
    /// `(left, right)` of the inner node at each depth `0..inners.len()` on the key's path.
    inners: Vec<(Hash, Hash)>,
    /// The leaf at depth `inners.len()`, or `None` for an empty subtree there.
    leaf: Option<(Hash, Hash)>,
}

impl Path {
    fn depth(&self) -> u16 {
        // A checked path has at most 256 inner nodes.
        u16::try_from(self.inners.len()).unwrap_or(MAX_DEPTH)
    }

    /// The hash of the sibling of the position at `depth` (≥ 1) on `key`'s path.
    fn sibling(&self, key: &Hash, depth: u16) -> Option<Hash> {
        let d = depth.checked_sub(1)?;
        let (l, r) = self.inners.get(usize::from(d))?;
        Some(if bit(key, d) { *l } else { *r })
    }

    fn into_proof(self, key: &Hash) -> Proof {
        let siblings = (0..)
            .zip(&self.inners)
            .map(|(d, (l, r))| if bit(key, d) { *l } else { *r })
            .collect();
        let terminal = match self.leaf {
            Some((key, value)) => Terminal::Leaf { key, value },
            None => Terminal::Empty,
        };
        Proof { siblings, terminal }
    }
}

/// Checks a node read at `pos` against the hash its parent records (or the root): the hash,
/// a leaf's key against its position, an inner node's place and shape.
fn check_node(pos: &NodeKey, node: &Node, expected: &Hash) -> Result<()> {
    let got = node.hash();
    if got != *expected {
        return Err(tampered(format!(
            "the tree node at {pos} does not match its parent: it hashes to {}, the parent records {}",
            short(&got),
            short(expected)
        )));
    }
    match node {
        Node::Leaf { key, .. } if !shares_prefix(key, &pos.prefix, pos.depth) => {
            Err(tampered(format!(
                "the tree leaf at {pos} holds key {}, which does not belong under that position",
                short(key)
            )))
        }
        Node::Inner { .. } if pos.depth >= MAX_DEPTH => Err(tampered(format!(
            "the tree holds an inner node at {pos}, below the last key bit"
        ))),
        Node::Inner { left, right } if *left == EMPTY && *right == EMPTY => Err(tampered(format!(
            "the tree's inner node at {pos} has two empty children (not a canonical tree)"
        ))),
        _ => Ok(()),
    }
}

/// Reads nodes for [`prove`] and [`update`]: raw storage answers (checked when used), shadowed
/// by the writes pending in an update.
struct Reader<'a, S: ?Sized> {
    src: &'a S,
    /// What the storage answered, unchecked: each node is checked against its parent when a
    /// walk uses it.
    stored: BTreeMap<NodeKey, Option<Node>>,
    /// Writes of the update so far (final state per position); they shadow `stored`.
    pending: BTreeMap<NodeKey, Option<Node>>,
}

impl<'a, S: NodeSource + ?Sized> Reader<'a, S> {
    fn new(src: &'a S) -> Self {
        Reader {
            src,
            stored: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    fn known(&self, pos: &NodeKey) -> Option<Option<Node>> {
        self.pending
            .get(pos)
            .or_else(|| self.stored.get(pos))
            .copied()
    }

    fn fetch(&mut self, keys: &[NodeKey]) -> Result<()> {
        for chunk in keys.chunks(MAX_BATCH) {
            let got = self.src.get_many(chunk)?;
            if got.len() != chunk.len() {
                return Err(tampered(format!(
                    "the tree's node storage answered {} of {} reads",
                    got.len(),
                    chunk.len()
                )));
            }
            self.stored.extend(chunk.iter().copied().zip(got));
        }
        Ok(())
    }

    /// The node at `depth` on `key`'s path. When it is not known yet, the rest of the path is
    /// read with it in one call: down to depth 63 at first, then 100 levels at a time.
    fn path_node(&mut self, key: &Hash, depth: u16) -> Result<Option<Node>> {
        let pos = NodeKey::at(key, depth);
        if let Some(n) = self.known(&pos) {
            return Ok(n);
        }
        let last = if depth < FIRST_BATCH {
            FIRST_BATCH - 1
        } else {
            depth.saturating_add(MAX_BATCH as u16 - 1)
        }
        .min(MAX_DEPTH);
        let want: Vec<NodeKey> = (depth..=last)
            .map(|d| NodeKey::at(key, d))
            .filter(|p| self.known(p).is_none())
            .collect();
        self.fetch(&want)?;
        Ok(self.known(&pos).flatten())
    }

    /// The node at one position (read alone if not known).
    fn node_at(&mut self, pos: &NodeKey) -> Result<Option<Node>> {
        if self.known(pos).is_none() {
            self.fetch(&[*pos])?;
        }
        Ok(self.known(pos).flatten())
    }

    /// Walks `key`'s path down from `root`, checking every node against its parent.
    fn walk(&mut self, root: &Hash, key: &Hash) -> Result<Path> {
        let mut expected = *root;
        let mut path = Path {
            inners: Vec::new(),
            leaf: None,
        };
        for depth in 0..=MAX_DEPTH {
            if expected == EMPTY {
                return Ok(path);
            }
            let pos = NodeKey::at(key, depth);
            let node = self.path_node(key, depth)?.ok_or_else(|| {
                tampered(format!(
                    "the tree node at {pos} is missing, but its parent records hash {}",
                    short(&expected)
                ))
            })?;
            check_node(&pos, &node, &expected)?;
            match node {
                Node::Leaf { key: k, value } => {
                    if path.sibling(key, depth) == Some(EMPTY) {
                        return Err(tampered(format!(
                            "the tree leaf at {pos} has an empty sibling (not a canonical tree: it belongs higher up)"
                        )));
                    }
                    path.leaf = Some((k, value));
                    return Ok(path);
                }
                Node::Inner { left, right } => {
                    expected = if bit(key, depth) { right } else { left };
                    path.inners.push((left, right));
                }
            }
        }
        // Unreachable: `check_node` refuses an inner node at depth 256.
        Err(tampered(format!(
            "the tree path of key {} is deeper than 256 levels",
            short(key)
        )))
    }

    fn write(&mut self, pos: NodeKey, node: Option<Node>) {
        self.pending.insert(pos, node);
    }

    /// Applies one change to the tree of `root` (through the pending writes) and returns the
    /// new root.
    fn apply(&mut self, root: &Hash, key: &Hash, new: Option<&Hash>) -> Result<Hash> {
        let path = self.walk(root, key)?;
        let t = path.depth();
        // The new hash of the subtree at depth `d` on the key's path; above it only the
        // inner nodes' hashes change.
        let (mut h, d) = match (path.leaf, new) {
            (None, None) => return Ok(*root),
            (Some((k, _)), None) if k != *key => return Ok(*root),
            (Some((k, v)), Some(nv)) if k == *key && v == *nv => return Ok(*root),
            (None, Some(nv)) => {
                let leaf = Node::Leaf {
                    key: *key,
                    value: *nv,
                };
                self.write(NodeKey::at(key, t), Some(leaf));
                (leaf.hash(), t)
            }
            (Some((k, _)), Some(nv)) if k == *key => {
                let leaf = Node::Leaf {
                    key: *key,
                    value: *nv,
                };
                self.write(NodeKey::at(key, t), Some(leaf));
                (leaf.hash(), t)
            }
            (Some((k, v)), Some(nv)) => (self.split(key, nv, &k, &v, t)?, t),
            (Some(_), None) => self.delete(&path, key, t)?,
        };
        for (j, (l, r)) in (0..t).zip(&path.inners).take(usize::from(d)).rev() {
            let node = if bit(key, j) {
                Node::Inner { left: *l, right: h }
            } else {
                Node::Inner { left: h, right: *r }
            };
            self.write(NodeKey::at(key, j), Some(node));
            h = node.hash();
        }
        Ok(h)
    }

    /// Inserts `key` where the leaf of `other` sits at depth `t`: inner nodes down to the
    /// first bit where the keys differ, the two leaves below. Returns the new hash at `t`.
    fn split(&mut self, key: &Hash, value: &Hash, other: &Hash, ov: &Hash, t: u16) -> Result<Hash> {
        // The walk checked that `other` shares the first `t` bits of `key`.
        let m = first_diff(key, other)
            .filter(|m| *m >= t && *m < MAX_DEPTH)
            .ok_or_else(|| {
                tampered(format!(
                    "the tree leaf of key {} is misplaced at depth {t}",
                    short(other)
                ))
            })?;
        let mine = Node::Leaf {
            key: *key,
            value: *value,
        };
        let theirs = Node::Leaf {
            key: *other,
            value: *ov,
        };
        self.write(NodeKey::at(key, m + 1), Some(mine));
        self.write(NodeKey::at(other, m + 1), Some(theirs));
        let (mut l, mut r) = if bit(key, m) {
            (theirs.hash(), mine.hash())
        } else {
            (mine.hash(), theirs.hash())
        };
        let mut j = m;
        loop {
            let node = Node::Inner { left: l, right: r };
            self.write(NodeKey::at(key, j), Some(node));
            let h = node.hash();
            if j == t {
                return Ok(h);
            }
            j -= 1;
            (l, r) = if bit(key, j) { (EMPTY, h) } else { (h, EMPTY) };
        }
    }

    /// Deletes `key`, whose leaf sits at depth `t`. A leaf left alone under its parent moves up
    /// to the shallowest depth where it is alone, and the positions it leaves are deleted.
    /// Returns the new hash of the subtree at the returned depth.
    fn delete(&mut self, path: &Path, key: &Hash, t: u16) -> Result<(Hash, u16)> {
        self.write(NodeKey::at(key, t), None);
        let Some(sib_hash) = path.sibling(key, t) else {
            return Ok((EMPTY, 0)); // the root was the only leaf
        };
        let sib_pos = NodeKey::sibling(key, t);
        let sib = self.node_at(&sib_pos)?.ok_or_else(|| {
            tampered(format!(
                "the tree node at {sib_pos} is missing, but its parent records hash {}",
                short(&sib_hash)
            ))
        })?;
        check_node(&sib_pos, &sib, &sib_hash)?;
        let Node::Leaf { .. } = sib else {
            // The parent keeps two or more leaves on the other side: it stays an inner node.
            return Ok((EMPTY, t));
        };
        self.write(sib_pos, None);
        let mut j = t - 1;
        while j > 0 && path.sibling(key, j) == Some(EMPTY) {
            self.write(NodeKey::at(key, j), None);
            j -= 1;
        }
        self.write(NodeKey::at(key, j), Some(sib));
        Ok((sib.hash(), j))
    }
}

/// Proves the presence or absence of `key` in the tree of the trusted `root`, reading its path
/// from `src` (one [`NodeSource::get_many`] call for paths up to 64 levels). Every node read
/// is checked against `root`: a node that does not match its parent, a missing node, a leaf
/// not under its position, or a non-canonical shape is [`Error::Tampered`].
///
/// One shape check needs a node off the path and is left to a full rebuild ([`nodes_of`]):
/// a path that ends in an empty child whose sibling is a lone leaf. The answer (absent) is
/// right all the same; only a root that this module did not compute can hold that shape.
pub(crate) fn prove<S: NodeSource + ?Sized>(src: &S, root: &Hash, key: &Hash) -> Result<Proof> {
    Ok(Reader::new(src).walk(root, key)?.into_proof(key))
}

/// The outcome of [`update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Changeset {
    /// The new root.
    pub(crate) root: Hash,
    /// The positions whose stored content changes, each once, with its final content
    /// (`None`: delete it). Positions sorted by depth, then prefix.
    pub(crate) writes: Vec<(NodeKey, Option<Node>)>,
}

/// Applies `changes` in order to the tree of the trusted `root` (`Some(value_hash)` inserts or
/// replaces, `None` deletes; deleting an absent key does nothing) and returns the new root and
/// the writes that make the storage hold the new tree. Nothing is written here. Every node
/// read is checked as in [`prove`] ([`Error::Tampered`]).
pub(crate) fn update<S: NodeSource + ?Sized>(
    src: &S,
    root: &Hash,
    changes: &[(Hash, Option<Hash>)],
) -> Result<Changeset> {
    let mut reader = Reader::new(src);
    let mut root = *root;
    for (key, value) in changes {
        root = reader.apply(&root, key, value.as_ref())?;
    }
    let Reader {
        stored, pending, ..
    } = reader;
    // A position the update never read held no node of the old tree (deleting one needs
    // reading it), so only a new node there is a change.
    let writes = pending
        .into_iter()
        .filter(|(pos, new)| match stored.get(pos) {
            Some(old) => old != new,
            None => new.is_some(),
        })
        .collect();
    Ok(Changeset { root, writes })
}

/// Builds the canonical subtree of `leaves` (sorted, distinct keys sharing their first `depth`
/// bits) at `depth`, handing each node to `out`; returns its hash.
fn build(leaves: &[(Hash, Hash)], depth: u16, out: &mut impl FnMut(NodeKey, Node)) -> Hash {
    match leaves {
        [] => EMPTY,
        [(key, value)] => {
            let node = Node::Leaf {
                key: *key,
                value: *value,
            };
            out(NodeKey::at(key, depth), node);
            node.hash()
        }
        [(first, _), ..] => {
            let (l, r) = leaves.split_at(leaves.partition_point(|(k, _)| !bit(k, depth)));
            let node = Node::Inner {
                left: build(l, depth + 1, out),
                right: build(r, depth + 1, out),
            };
            out(NodeKey::at(first, depth), node);
            node.hash()
        }
    }
}

fn sorted(items: impl IntoIterator<Item = (Hash, Hash)>) -> Vec<(Hash, Hash)> {
    items
        .into_iter()
        .collect::<BTreeMap<Hash, Hash>>()
        .into_iter()
        .collect()
}

/// The root of the map `items` (key, value hash), computed from scratch. A key given twice
/// keeps its last value.
pub(crate) fn root_of(items: impl IntoIterator<Item = (Hash, Hash)>) -> Hash {
    build(&sorted(items), 0, &mut |_, _| {})
}

/// Every node of the canonical tree of `items` (a key given twice keeps its last value), with
/// its position: what the storage of that map holds, nothing more.
pub(crate) fn nodes_of(items: impl IntoIterator<Item = (Hash, Hash)>) -> Vec<(NodeKey, Node)> {
    let mut nodes = Vec::new();
    build(&sorted(items), 0, &mut |pos, node| nodes.push((pos, node)));
    nodes
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// splitmix64: a tiny deterministic generator, so every failure replays from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn hash(&mut self) -> Hash {
            let mut h = EMPTY;
            for chunk in h.chunks_mut(8) {
                chunk.copy_from_slice(&self.next().to_le_bytes());
            }
            h
        }

        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, self.below(i + 1));
            }
        }
    }

    fn flip(mut k: Hash, i: u16) -> Hash {
        k[usize::from(i / 8)] ^= 0x80 >> (i % 8);
        k
    }

    fn unhex32(s: &str) -> Hash {
        super::super::crypto::unhex(s)
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    }

    /// Node storage in memory, holding encoded bytes as a database table would; counts calls.
    #[derive(Default, Clone)]
    struct Mem {
        rows: BTreeMap<Vec<u8>, Vec<u8>>,
        calls: Cell<usize>,
    }

    impl NodeSource for Mem {
        fn get_many(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>> {
            assert!(
                !keys.is_empty() && keys.len() <= MAX_BATCH,
                "{} keys",
                keys.len()
            );
            self.calls.set(self.calls.get() + 1);
            keys.iter()
                .map(|k| {
                    self.rows
                        .get(&k.to_bytes())
                        .map(|b| Node::from_bytes(b))
                        .transpose()
                })
                .collect()
        }
    }

    impl Mem {
        fn of(nodes: impl IntoIterator<Item = (NodeKey, Node)>) -> Mem {
            let mut m = Mem::default();
            for (pos, node) in nodes {
                m.put(&pos, Some(node));
            }
            m
        }

        fn put(&mut self, pos: &NodeKey, node: Option<Node>) {
            match node {
                Some(n) => self.rows.insert(pos.to_bytes(), n.to_bytes().to_vec()),
                None => self.rows.remove(&pos.to_bytes()),
            };
        }

        fn get(&self, pos: &NodeKey) -> Option<Node> {
            self.rows
                .get(&pos.to_bytes())
                .map(|b| Node::from_bytes(b).expect("stored node"))
        }

        fn apply(&mut self, cs: &Changeset) {
            for (pos, node) in &cs.writes {
                self.put(pos, *node);
            }
        }

        fn nodes(&self) -> BTreeMap<NodeKey, Node> {
            self.rows
                .iter()
                .map(|(k, v)| {
                    let pos = NodeKey::from_bytes(k).expect("stored position");
                    (pos, Node::from_bytes(v).expect("stored node"))
                })
                .collect()
        }

        /// The positions on `key`'s path that hold a node.
        fn path(&self, key: &Hash) -> Vec<NodeKey> {
            (0..=MAX_DEPTH)
                .filter_map(|d| NodeKey::new(key, d))
                .filter(|p| self.rows.contains_key(&p.to_bytes()))
                .collect()
        }
    }

    fn canonical(model: &BTreeMap<Hash, Hash>) -> BTreeMap<NodeKey, Node> {
        nodes_of(model.iter().map(|(k, v)| (*k, *v)))
            .into_iter()
            .collect()
    }

    fn root_of_model(model: &BTreeMap<Hash, Hash>) -> Hash {
        root_of(model.iter().map(|(k, v)| (*k, *v)))
    }

    /// `prove` and `verify` answer for `key` as the model does.
    fn assert_proves(store: &Mem, root: &Hash, key: &Hash, want: Option<&Hash>) {
        let proof = prove(store, root, key).expect("prove");
        assert_eq!(
            proof.verify(root, key).expect("verify"),
            want.copied(),
            "key {}",
            short(key)
        );
    }

    fn assert_tampered<T: fmt::Debug>(r: Result<T>, what: &str) {
        match r {
            Err(Error::Tampered { .. }) => {}
            other => panic!("{what}: expected a tampered error, got {other:?}"),
        }
    }

    /// Random keys, some in families that share long prefixes: the same key with its last bit
    /// flipped, with bit 0 flipped, or agreeing on a random 100 to 255 first bits.
    fn key_pool(rng: &mut Rng, n: usize) -> Vec<Hash> {
        let mut keys = Vec::new();
        while keys.len() < n {
            let base = rng.hash();
            keys.push(base);
            match rng.below(4) {
                0 => keys.push(flip(base, 255)),
                1 => keys.push(flip(base, 0)),
                2 => {
                    let d = 100 + rng.below(156) as u16;
                    let mut k = rng.hash();
                    let p = prefix(&base, d);
                    for (i, (o, b)) in k.iter_mut().zip(p).enumerate() {
                        if (i as u16) < d / 8 {
                            *o = b;
                        } else if i as u16 == d / 8 {
                            let keep = 0xffu8.checked_shl(8 - u32::from(d % 8)).unwrap_or(0);
                            *o = (b & keep) | (*o & !keep);
                        }
                    }
                    // Differ from `base` exactly at bit `d`.
                    if bit(&k, d) == bit(&base, d) {
                        k = flip(k, d);
                    }
                    keys.push(k);
                }
                _ => {}
            }
        }
        keys
    }

    /// Runs random batches against the model; checks root, stored nodes and proofs after each.
    /// The stored node set is compared with `nodes_of` after every `full_check_every`-th batch
    /// (and at the end): that comparison dominates the run time of an unoptimised test build.
    fn run_sequence(seed: u64, pool_size: usize, batches: usize, full_check_every: usize) {
        let mut rng = Rng(seed);
        let pool = key_pool(&mut rng, pool_size);
        let mut model = BTreeMap::new();
        let mut store = Mem::default();
        let mut root = EMPTY;
        for b in 0..batches {
            let n = 1 + rng.below(50);
            let changes: Vec<(Hash, Option<Hash>)> = (0..n)
                .map(|_| {
                    let key = pool[rng.below(pool.len())];
                    let value = (rng.below(3) != 0).then(|| rng.hash());
                    (key, value)
                })
                .collect();
            for (k, v) in &changes {
                match v {
                    Some(v) => model.insert(*k, *v),
                    None => model.remove(k),
                };
            }
            let cs = update(&store, &root, &changes).expect("update");
            assert_eq!(cs.root, root_of_model(&model), "seed {seed}");
            for (pos, node) in &cs.writes {
                assert_ne!(
                    store.get(pos),
                    *node,
                    "seed {seed}: a write at {pos} changes nothing"
                );
            }
            store.apply(&cs);
            root = cs.root;
            if b % full_check_every == 0 || b + 1 == batches {
                assert_eq!(
                    store.nodes(),
                    canonical(&model),
                    "seed {seed}: stored nodes"
                );
            }
            for (k, _) in &changes {
                assert_proves(&store, &root, k, model.get(k));
            }
            for _ in 0..10 {
                let k = pool[rng.below(pool.len())];
                assert_proves(&store, &root, &k, model.get(&k));
                let k = rng.hash();
                assert_proves(&store, &root, &k, None);
            }
        }
        for k in &pool {
            assert_proves(&store, &root, k, model.get(k));
        }

        // The same map, reached another way: shuffled inserts, with keys that come and go.
        let mut entries: Vec<(Hash, Hash)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        rng.shuffle(&mut entries);
        let mut other = Mem::default();
        let mut other_root = EMPTY;
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(rest.len().min(1 + rng.below(60)));
            rest = tail;
            let mut changes: Vec<(Hash, Option<Hash>)> = Vec::new();
            for (k, v) in batch {
                let passing = pool[rng.below(pool.len())];
                if !model.contains_key(&passing) {
                    changes.push((passing, Some(rng.hash())));
                }
                changes.push((*k, Some(rng.hash())));
                changes.push((*k, Some(*v)));
                if !model.contains_key(&passing) {
                    changes.push((passing, None));
                }
            }
            let cs = update(&other, &other_root, &changes).expect("update");
            other.apply(&cs);
            other_root = cs.root;
        }
        assert_eq!(other_root, root, "seed {seed}: order independence");
        assert_eq!(
            other.nodes(),
            store.nodes(),
            "seed {seed}: order independence"
        );
    }

    #[test]
    fn random_sequences_match_a_naive_map() {
        for seed in 1..=12 {
            run_sequence(seed, 40, 40, 1);
        }
        run_sequence(1000, 2500, 150, 10);
    }

    #[test]
    fn a_batch_equals_its_changes_one_by_one() {
        let mut rng = Rng(7);
        let pool = key_pool(&mut rng, 200);
        let changes: Vec<(Hash, Option<Hash>)> = (0..2000)
            .map(|_| {
                (
                    pool[rng.below(pool.len())],
                    (rng.below(4) != 0).then(|| rng.hash()),
                )
            })
            .collect();
        let mut one = Mem::default();
        let mut one_root = EMPTY;
        for c in &changes {
            let cs = update(&one, &one_root, std::slice::from_ref(c)).expect("update");
            one.apply(&cs);
            one_root = cs.root;
        }
        let mut all = Mem::default();
        let cs = update(&all, &EMPTY, &changes).expect("update");
        all.apply(&cs);
        assert_eq!(cs.root, one_root);
        assert_eq!(all.nodes(), one.nodes());
    }

    #[test]
    fn known_answers() {
        // Computed with sha256sum(1), not with this module.
        assert_eq!(
            key_hash(b"cert/01"),
            unhex32("c0a8174a47c1ba698873802e4f4cfbdd52e17fdd156ada322d3d58f149c76c11")
        );
        assert_eq!(
            value_hash(b"hello"),
            unhex32("0b4d354d56ea9a985571a56b1829f33d072e7902c1afaf981381089b9eb00ffe")
        );
        assert_eq!(root_of([]), [0; 32]);
        assert!(nodes_of([]).is_empty());

        let k1 = EMPTY;
        let v1 = [0x11; 32];
        let mut k2 = EMPTY;
        k2[0] = 0x80; // bit 0 set
        let mut k3 = EMPTY;
        k3[0] = 0x20; // bit 2 set
        let v2 = [0x22; 32];
        let leaf1 = unhex32("8e724b356ecbd683d218e82e1a5c03ccbff6bd2949257bcc7a8e35297d18e992");
        assert_eq!(root_of([(k1, v1)]), leaf1);
        assert_eq!(
            root_of([(k1, v1), (k2, v2)]),
            unhex32("aca741e98f6417a4e184e5f9b62b18f0c48c474b71969445396fa2827e5a6c06")
        );
        // k1 and k3 share two bits: two inner nodes with an empty right child above them.
        assert_eq!(
            root_of([(k3, v2), (k1, v1)]),
            unhex32("a3780e1b5e37ff7cfc67158c597413b3780085b743dde1b11ca38e33cb9a81a1")
        );
        let positions: Vec<(u16, Hash)> = nodes_of([(k1, v1), (k3, v2)])
            .iter()
            .map(|(p, _)| (p.depth(), *p.prefix()))
            .collect();
        assert_eq!(positions, [(3, k1), (3, k3), (2, k1), (1, k1), (0, k1)]);

        // The same through `update`.
        let store = Mem::default();
        let cs = update(&store, &EMPTY, &[(k1, Some(v1))]).expect("update");
        assert_eq!(cs.root, leaf1);
        assert_eq!(
            cs.writes,
            [(NodeKey::ROOT, Some(Node::Leaf { key: k1, value: v1 }))]
        );
    }

    #[test]
    fn encodings_are_canonical() {
        let mut k = [0xff; 32];
        assert_eq!(NodeKey::ROOT.to_bytes(), [0, 0]);
        assert_eq!(NodeKey::at(&k, 9).to_bytes(), [0, 9, 0xff, 0x80]);
        assert_eq!(NodeKey::at(&k, 256).to_bytes().len(), 34);
        assert_eq!(NodeKey::new(&k, 257), None);
        k[5] = 0x12;
        for d in [0, 1, 7, 8, 9, 44, 255, 256] {
            let pos = NodeKey::at(&k, d);
            assert_eq!(NodeKey::from_bytes(&pos.to_bytes()).expect("decode"), pos);
        }
        for bad in [
            &[][..],
            &[0],
            &[0, 0, 0],          // a byte too many
            &[0, 9, 0xff],       // a byte too few
            &[0, 9, 0xff, 0x40], // a bit past the depth
            &[0, 1, 0x80, 0x00], // a byte too many
            &[1, 1],             // depth 257
            &[0xff, 0xff],
        ] {
            assert_tampered(NodeKey::from_bytes(bad), &format!("position {bad:?}"));
        }

        let leaf = Node::Leaf {
            key: [1; 32],
            value: [2; 32],
        };
        let inner = Node::Inner {
            left: [3; 32],
            right: EMPTY,
        };
        for n in [leaf, inner] {
            let b = n.to_bytes();
            assert_eq!(b.len(), Node::ENCODED_LEN);
            assert_eq!(sha256(&[&b]), n.hash());
            assert_eq!(Node::from_bytes(&b).expect("decode"), n);
            assert_tampered(Node::from_bytes(&b[..64]), "short node");
            let mut long = b.to_vec();
            long.push(0);
            assert_tampered(Node::from_bytes(&long), "long node");
            let mut tag = b;
            tag[0] = 2;
            assert_tampered(Node::from_bytes(&tag), "unknown tag");
        }
        assert_eq!(leaf.to_bytes()[0], 0);
        assert_eq!(inner.to_bytes()[0], 1);
        assert_tampered(Node::from_bytes(&[]), "empty node");
    }

    #[test]
    fn keys_differing_only_in_the_last_bit_sit_at_depth_256() {
        let a = [0x5a; 32];
        let b = flip(a, 255);
        let (va, vb) = ([1; 32], [2; 32]);
        let mut store = Mem::default();
        let cs = update(&store, &EMPTY, &[(a, Some(va)), (b, Some(vb))]).expect("update");
        store.apply(&cs);
        let depths: Vec<u16> = store.nodes().keys().map(|p| p.depth()).collect();
        assert_eq!(depths.len(), 258);
        assert_eq!(depths.iter().max(), Some(&256));
        // A 256-level path is read in three calls (64 + 100 + 93 positions).
        store.calls.set(0);
        let proof = prove(&store, &cs.root, &a).expect("prove");
        assert_eq!(store.calls.get(), 3);
        assert_eq!(proof.siblings.len(), 256);
        assert_eq!(proof.verify(&cs.root, &a).expect("verify"), Some(va));
        assert_proves(&store, &cs.root, &b, Some(&vb));
        assert_proves(&store, &cs.root, &flip(a, 254), None);
        // Deleting one moves the other up to the root, and nothing else stays behind.
        let del = update(&store, &cs.root, &[(a, None)]).expect("update");
        store.apply(&del);
        assert_eq!(del.root, root_of([(b, vb)]));
        assert_eq!(
            store.nodes().into_iter().collect::<Vec<_>>(),
            nodes_of([(b, vb)])
        );
        assert_eq!(
            store.get(&NodeKey::ROOT),
            Some(Node::Leaf { key: b, value: vb })
        );
    }

    /// A tree of a few hundred keys (with close families) and the map it holds.
    fn sample_tree(seed: u64) -> (Mem, Hash, BTreeMap<Hash, Hash>) {
        let mut rng = Rng(seed);
        let model: BTreeMap<Hash, Hash> = key_pool(&mut rng, 150)
            .into_iter()
            .map(|k| (k, rng.hash()))
            .collect();
        let store = Mem::of(nodes_of(model.iter().map(|(k, v)| (*k, *v))));
        (store, root_of_model(&model), model)
    }

    /// Keys to attack: present ones, absent ones ending in a leaf and ones ending empty.
    fn targets(store: &Mem, root: &Hash, model: &BTreeMap<Hash, Hash>, rng: &mut Rng) -> Vec<Hash> {
        let keys: Vec<Hash> = model.keys().copied().collect();
        let mut out: Vec<Hash> = (0..3).map(|_| keys[rng.below(keys.len())]).collect();
        let (mut at_leaf, mut at_empty) = (0, 0);
        while at_leaf < 2 || at_empty < 2 {
            let k = rng.hash();
            let proof = prove(store, root, &k).expect("prove");
            match proof.terminal {
                Terminal::Leaf { .. } if at_leaf < 2 => at_leaf += 1,
                Terminal::Empty if at_empty < 2 && !proof.siblings.is_empty() => at_empty += 1,
                _ => continue,
            }
            out.push(k);
        }
        out
    }

    /// Neither `prove` nor `update` (insert, replace, delete) of `key` trusts `store`.
    fn assert_refused(store: &Mem, root: &Hash, key: &Hash, what: &str) {
        assert_tampered(prove(store, root, key), &format!("prove, {what}"));
        assert_tampered(
            update(store, root, &[(*key, Some([9; 32]))]),
            &format!("insert, {what}"),
        );
        assert_tampered(
            update(store, root, &[(*key, None)]),
            &format!("delete, {what}"),
        );
        // Also when an earlier change of the batch touches other keys first.
        let other = flip(*key, 0);
        assert_tampered(
            update(store, root, &[(other, Some([8; 32])), (*key, None)]),
            &format!("batch, {what}"),
        );
    }

    #[test]
    fn edited_nodes_on_the_path_are_refused() {
        let (store, root, model) = sample_tree(21);
        let mut rng = Rng(22);
        let all: Vec<(Vec<u8>, Vec<u8>)> = store
            .rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for key in targets(&store, &root, &model, &mut rng) {
            let path = store.path(&key);
            assert!(!path.is_empty());
            for pos in &path {
                let pk = pos.to_bytes();
                let what =
                    |how: &str| format!("{how} the node at {pos} on the path of {}", short(&key));
                // A flipped byte: in the tag, the first hash, the second hash.
                for i in [0, 17, 33, 64] {
                    let mut t = store.clone();
                    if let Some(b) = t.rows.get_mut(&pk) {
                        b[i] ^= 0x01;
                    }
                    assert_refused(&t, &root, &key, &what(&format!("byte {i} flipped in")));
                }
                // Deleted.
                let mut t = store.clone();
                t.rows.remove(&pk);
                assert_refused(&t, &root, &key, &what("deleted"));
                // Replaced by another node of the tree (an old or a neighbouring one).
                for _ in 0..2 {
                    let (_, other) = &all[rng.below(all.len())];
                    if Some(other) == store.rows.get(&pk) {
                        continue;
                    }
                    let mut t = store.clone();
                    t.rows.insert(pk.clone(), other.clone());
                    assert_refused(&t, &root, &key, &what("replaced"));
                }
                // Replaced by a leaf claiming `key`, or by a well-formed inner node.
                for forged in [
                    Node::Leaf {
                        key,
                        value: [7; 32],
                    },
                    Node::Inner {
                        left: [7; 32],
                        right: [8; 32],
                    },
                ] {
                    let mut t = store.clone();
                    t.put(pos, Some(forged));
                    assert_refused(&t, &root, &key, &what("forged"));
                }
                // Moved one level down, or to its sibling position.
                for to in [
                    NodeKey::at(&key, pos.depth + 1),
                    NodeKey::sibling(&key, pos.depth),
                ] {
                    if to == *pos || to.depth > MAX_DEPTH {
                        continue;
                    }
                    let mut t = store.clone();
                    let node = t.rows.remove(&pk).expect("node");
                    t.rows.insert(to.to_bytes(), node);
                    assert_refused(&t, &root, &key, &what("moved"));
                }
            }
            // A node of the path copied over its parent.
            for pair in path.windows(2) {
                let mut t = store.clone();
                let child = t.rows.get(&pair[1].to_bytes()).expect("node").clone();
                t.rows.insert(pair[0].to_bytes(), child);
                assert_refused(&t, &root, &key, "a child copied over its parent");
            }
        }
    }

    #[test]
    fn planted_nodes_never_change_an_answer() {
        let (store, root, model) = sample_tree(31);
        let mut rng = Rng(32);
        for key in targets(&store, &root, &model, &mut rng) {
            let path = store.path(&key);
            let below = path.last().expect("path").depth + 1;
            for d in below..=(below + 3).min(MAX_DEPTH) {
                let mut t = store.clone();
                let pos = NodeKey::at(&key, d);
                t.put(
                    &pos,
                    Some(Node::Leaf {
                        key,
                        value: [7; 32],
                    }),
                );
                assert_proves(&t, &root, &key, model.get(&key));
                // An update that puts a node there overwrites the planted one.
                let v = rng.hash();
                let cs = update(&t, &root, &[(key, Some(v))]).expect("update");
                let mut want = model.clone();
                want.insert(key, v);
                assert_eq!(cs.root, root_of_model(&want));
                t.apply(&cs);
                let mut stored = t.nodes();
                if stored.get(&pos)
                    == Some(&Node::Leaf {
                        key,
                        value: [7; 32],
                    })
                {
                    stored.remove(&pos); // unused by the tree: left for `verify` to report
                }
                assert_eq!(stored, canonical(&want));
            }
        }
    }

    #[test]
    fn a_delete_checks_the_sibling_it_moves_up() {
        let (store, root, model) = sample_tree(41);
        let mut checked = 0;
        for (key, value) in &model {
            let path = store.path(key);
            let leaf = *path.last().expect("path");
            if leaf.depth == 0 {
                continue;
            }
            let sib = NodeKey::sibling(key, leaf.depth);
            let Some(Node::Leaf { .. }) = store.get(&sib) else {
                continue;
            };
            checked += 1;
            for how in ["flipped", "deleted"] {
                let mut t = store.clone();
                if how == "deleted" {
                    t.rows.remove(&sib.to_bytes());
                } else if let Some(b) = t.rows.get_mut(&sib.to_bytes()) {
                    b[40] ^= 0x10;
                }
                // Reading `key` does not involve the sibling's content: right answer.
                assert_proves(&t, &root, key, Some(value));
                // Deleting `key` moves the sibling up: it is read and refused.
                assert_tampered(
                    update(&t, &root, &[(*key, None)]),
                    &format!("delete next to a {how} sibling leaf at {sib}"),
                );
            }
        }
        assert!(checked > 5, "{checked}");
    }

    #[test]
    fn hostile_roots_with_bad_shapes_are_refused() {
        let left = EMPTY; // bit 0 = 0
        let right = flip(EMPTY, 0); // bit 0 = 1
        let (va, vb) = ([1; 32], [2; 32]);
        let la = Node::Leaf {
            key: left,
            value: va,
        };
        let lb = Node::Leaf {
            key: right,
            value: vb,
        };

        // Leaves swapped: each sits on the wrong side of the root.
        let top = Node::Inner {
            left: lb.hash(),
            right: la.hash(),
        };
        let store = Mem::of([
            (NodeKey::ROOT, top),
            (NodeKey::at(&left, 1), lb),
            (NodeKey::at(&right, 1), la),
        ]);
        assert_tampered(
            prove(&store, &top.hash(), &left),
            "leaf under a wrong prefix",
        );
        assert_tampered(
            update(&store, &top.hash(), &[(left, None)]),
            "leaf under a wrong prefix",
        );
        let lying = Proof {
            siblings: vec![la.hash()],
            terminal: Terminal::Leaf {
                key: right,
                value: vb,
            },
        };
        assert_tampered(
            lying.verify(&top.hash(), &left),
            "absence ending off the path",
        );

        // An inner node with two empty children.
        let top = Node::Inner {
            left: EMPTY,
            right: EMPTY,
        };
        let store = Mem::of([(NodeKey::ROOT, top)]);
        assert_tampered(prove(&store, &top.hash(), &left), "two empty children");

        // A leaf that should have moved up (its sibling is empty).
        let top = Node::Inner {
            left: la.hash(),
            right: EMPTY,
        };
        let store = Mem::of([(NodeKey::ROOT, top), (NodeKey::at(&left, 1), la)]);
        assert_tampered(
            prove(&store, &top.hash(), &left),
            "leaf with an empty sibling",
        );
        assert_tampered(
            update(&store, &top.hash(), &[(left, None)]),
            "leaf with an empty sibling",
        );
        let proof = Proof {
            siblings: vec![EMPTY],
            terminal: Terminal::Leaf {
                key: left,
                value: va,
            },
        };
        assert_tampered(
            proof.verify(&top.hash(), &left),
            "leaf with an empty sibling",
        );
        let proof = Proof {
            siblings: vec![EMPTY],
            terminal: Terminal::Empty,
        };
        assert_tampered(
            proof.verify(&inner_hash(&EMPTY, &EMPTY), &left),
            "empty below empty",
        );

        // A path longer than the key: an inner node at depth 256.
        let key = [0xa5; 32];
        let mut nodes = Vec::new();
        let mut node = Node::Inner {
            left: [1; 32],
            right: [2; 32],
        };
        for d in (0..=MAX_DEPTH).rev() {
            nodes.push((NodeKey::at(&key, d), node));
            if d > 0 {
                let h = node.hash();
                node = if bit(&key, d - 1) {
                    Node::Inner {
                        left: [3; 32],
                        right: h,
                    }
                } else {
                    Node::Inner {
                        left: h,
                        right: [3; 32],
                    }
                };
            }
        }
        let store = Mem::of(nodes);
        assert_tampered(prove(&store, &node.hash(), &key), "inner node at depth 256");
        assert_tampered(
            update(&store, &node.hash(), &[(key, None)]),
            "inner node at depth 256",
        );

        // A storage that answers fewer reads than asked.
        struct Short;
        impl NodeSource for Short {
            fn get_many(&self, _: &[NodeKey]) -> Result<Vec<Option<Node>>> {
                Ok(vec![None])
            }
        }
        assert_tampered(prove(&Short, &[1; 32], &key), "short answer");
    }

    #[test]
    fn edited_proofs_are_refused() {
        let (store, root, model) = sample_tree(51);
        let mut rng = Rng(52);
        for key in targets(&store, &root, &model, &mut rng) {
            let good = prove(&store, &root, &key).expect("prove");
            assert_eq!(
                good.verify(&root, &key).expect("verify"),
                model.get(&key).copied()
            );
            let mut bad: Vec<(String, Proof)> = Vec::new();
            for i in 0..good.siblings.len() {
                let mut p = good.clone();
                p.siblings[i][rng.below(32)] ^= 1 << rng.below(8);
                bad.push((format!("sibling {i} edited"), p));
            }
            let mut p = good.clone();
            p.siblings.push(rng.hash());
            bad.push(("a sibling added at the end".into(), p));
            let mut p = good.clone();
            p.siblings.insert(0, rng.hash());
            bad.push(("a sibling added at the top".into(), p));
            let mut p = good.clone();
            p.siblings.push(EMPTY);
            bad.push(("an empty sibling added".into(), p));
            if !good.siblings.is_empty() {
                let mut p = good.clone();
                p.siblings.pop();
                bad.push(("the last sibling removed".into(), p));
                let mut p = good.clone();
                p.siblings.remove(0);
                bad.push(("the first sibling removed".into(), p));
            }
            match good.terminal {
                Terminal::Leaf { key: k, value } => {
                    let mut p = good.clone();
                    p.terminal = Terminal::Leaf {
                        key: k,
                        value: flip(value, 3),
                    };
                    bad.push(("the value edited".into(), p));
                    let mut p = good.clone();
                    p.terminal = Terminal::Leaf {
                        key: flip(k, 255),
                        value,
                    };
                    bad.push(("the leaf key edited".into(), p));
                    let mut p = good.clone();
                    p.terminal = Terminal::Empty;
                    bad.push(("the leaf dropped".into(), p));
                }
                Terminal::Empty => {
                    let mut p = good.clone();
                    p.terminal = Terminal::Leaf {
                        key,
                        value: [7; 32],
                    };
                    bad.push(("a leaf for the key put in".into(), p));
                }
            }
            for (what, p) in bad {
                assert_tampered(p.verify(&root, &key), &what);
            }
            // The proof holds for no other root.
            assert_tampered(good.verify(&flip(root, 9), &key), "another root");
        }
        // A presence proof is an absence proof for a key that shares its path and no more.
        let (key, value) = model.iter().next().expect("key");
        let proof = prove(&store, &root, key).expect("prove");
        assert_eq!(proof.verify(&root, key).expect("verify"), Some(*value));
        let near = flip(*key, 255);
        if !model.contains_key(&near) {
            assert_eq!(proof.verify(&root, &near).expect("verify"), None);
        }
        let far = flip(*key, 0);
        assert_tampered(proof.verify(&root, &far), "a key off the path");
        // An empty tree proves everything absent, and nothing else does.
        let empty = Proof {
            siblings: vec![],
            terminal: Terminal::Empty,
        };
        assert_eq!(empty.verify(&EMPTY, key).expect("verify"), None);
        assert_tampered(empty.verify(&root, key), "empty proof against a full tree");
    }

    /// Path length and reads per proof at 100,000 keys, and the time of 100,000 inserts in
    /// batches of 100. Prints; asserts nothing about time.
    /// `cargo test --lib store::smt::tests::measure -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement: run with --ignored --nocapture"]
    fn measure() {
        const N: usize = 100_000;
        let mut rng = Rng(99);
        let items: Vec<(Hash, Hash)> = (0..N).map(|_| (rng.hash(), rng.hash())).collect();
        let store = Mem::of(nodes_of(items.iter().copied()));
        let root = root_of(items.iter().copied());
        let (mut total, mut max, mut calls, mut max_calls) = (0, 0, 0, 0);
        for (k, v) in &items {
            store.calls.set(0);
            let p = prove(&store, &root, k).expect("prove");
            assert_eq!(p.verify(&root, k).expect("verify"), Some(*v));
            total += p.siblings.len();
            max = max.max(p.siblings.len());
            calls += store.calls.get();
            max_calls = max_calls.max(store.calls.get());
        }
        println!(
            "{N} keys: present-key path length avg {:.2}, max {max}; get_many calls per proof avg {:.3}, max {max_calls}; {} stored nodes",
            total as f64 / N as f64,
            calls as f64 / N as f64,
            store.rows.len()
        );
        let (mut total, mut max) = (0, 0);
        for _ in 0..N / 10 {
            let k = rng.hash();
            let p = prove(&store, &root, &k).expect("prove");
            total += p.siblings.len();
            max = max.max(p.siblings.len());
        }
        println!(
            "absent keys: path length avg {:.2}, max {max}",
            total as f64 / (N / 10) as f64
        );

        let mut fresh = Mem::default();
        let mut r = EMPTY;
        let start = std::time::Instant::now();
        for batch in items.chunks(100) {
            let changes: Vec<(Hash, Option<Hash>)> =
                batch.iter().map(|(k, v)| (*k, Some(*v))).collect();
            let cs = update(&fresh, &r, &changes).expect("update");
            fresh.apply(&cs);
            r = cs.root;
        }
        let took = start.elapsed();
        assert_eq!(r, root);
        println!(
            "{N} inserts in batches of 100 (in-memory storage, writes applied): {took:?}, {} get_many calls",
            fresh.calls.get()
        );
    }
}
