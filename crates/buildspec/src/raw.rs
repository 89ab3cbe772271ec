//! The raw buildspec document: a located YAML tree deserialized with serde-saphyr.
//!
//! Owns the YAML dialect (decision U7: merge keys expanded, duplicate keys rejected, YAML 1.1
//! booleans, a budget against alias bombs and deep nesting) and the node tree every later rule
//! reads. Each node keeps its source location (`Spanned`), and scalars keep the text the user
//! wrote (`PORT: 8080` stays `8080`, `python: 3.10` stays `3.10`). No buildspec semantics here:
//! `validate` turns this tree into the model.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, DuplicateKeyPolicy, MergeKeyPolicy, Spanned};
use std::fmt;

/// A YAML node with its location.
pub type SNode = Spanned<Node>;

/// One YAML node. Scalars are text; YAML typing is resolved later, per key.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `~`, `null` or an empty value.
    Null,
    /// A scalar, as text. `typed` is true when YAML resolved it as a bool or a number (its text
    /// is then recovered from the source, see [`load`]).
    Scalar {
        text: String,
        typed: bool,
    },
    Seq(Vec<SNode>),
    /// Entries in source order (merge keys already expanded).
    Map(Vec<(SNode, SNode)>),
}

impl Node {
    /// A short description for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "an empty value",
            Node::Scalar { .. } => "a scalar",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn typed(text: String) -> Node {
    Node::Scalar { text, typed: true }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(typed(v.to_string()))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Node, E> {
        Ok(Node::Scalar {
            text: v.to_string(),
            typed: false,
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar {
            text: v.to_owned(),
            typed: false,
        })
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar {
            text: v,
            typed: false,
        })
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar {
            text: String::from_utf8_lossy(v).into_owned(),
            typed: false,
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<SNode>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<SNode>()? {
            let value = map.next_value::<SNode>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A YAML syntax (or dialect, or budget) error: 1-based line and column, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The parser options of decision U7, with a budget that keeps hostile input cheap.
fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_depth = 40;
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_aliases = 10_000;
    budget.max_anchors = 10_000;
    budget.max_total_scalar_bytes = 16 * 1024 * 1024;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 50_000;
    alias_limits.max_replay_stack_depth = 32;
    serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Merge,
        strict_booleans: false,
        budget: Some(budget),
        alias_limits: alias_limits,
        with_snippet: false,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    }
}

/// Stack for the parser thread: serde's recursive descent uses large frames (debug builds
/// especially), and the caller's stack (a test thread, a tokio worker) may be small.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// Parse YAML text into a located node tree. An empty document is `Node::Null`.
///
/// Runs on its own thread with a large stack, so nesting up to the budget's depth cannot
/// overflow the caller's stack, and a panic in the parser becomes an error, not a crash.
pub fn load(src: &str) -> Result<SNode, SyntaxError> {
    let internal = |message: &str| SyntaxError {
        line: 1,
        column: 1,
        message: format!("internal parser error: {message}"),
    };
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("buildspec-parser".to_owned())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || load_here(src))
        {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(internal("the YAML parser panicked"))),
            Err(e) => Err(internal(&e.to_string())),
        }
    })
}

fn load_here(src: &str) -> Result<SNode, SyntaxError> {
    let mut root: SNode = serde_saphyr::from_str_with_options(src, options()).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        SyntaxError {
            line: line.max(1),
            column: column.max(1),
            message: clean_message(&e),
        }
    })?;
    recover_text(&mut root, src);
    Ok(root)
}

/// serde-saphyr's message without its own location prefix/suffix and snippet.
fn clean_message(e: &serde_saphyr::Error) -> String {
    let full = e.without_snippet().to_string();
    let first = full.lines().next().unwrap_or_default().trim();
    let prefix = regex::Regex::new(r"^line \d+,? column \d+: ").ok();
    let suffix = regex::Regex::new(r",? at line \d+,? column \d+$").ok();
    let mut msg = first.to_owned();
    if let Some(re) = prefix {
        msg = re.replace(&msg, "").into_owned();
    }
    if let Some(re) = suffix {
        msg = re.replace(&msg, "").into_owned();
    }
    let msg = msg
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .trim()
        .to_owned();
    if msg.is_empty() {
        "invalid YAML".to_owned()
    } else {
        msg.to_owned()
    }
}

/// Replace the text of typed scalars (bools, numbers) with the source text they came from.
fn recover_text(node: &mut SNode, src: &str) {
    let span = node.defined.span();
    match &mut node.value {
        Node::Scalar { text, typed: true } => {
            if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
                let (off, len) = (off as usize, len as usize);
                if let Some(raw) = src.get(off..off.saturating_add(len)) {
                    let raw = raw.trim();
                    if !raw.is_empty() && !raw.contains(['\n', '*', '&', '!']) {
                        *text = raw.to_owned();
                    }
                }
            }
        }
        Node::Seq(items) => items.iter_mut().for_each(|n| recover_text(n, src)),
        Node::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            recover_text(k, src);
            recover_text(v, src);
        }),
        _ => {}
    }
}

/// 1-based line and column of a node (where it is used; for an alias, the alias).
pub fn pos(node: &SNode) -> (usize, usize) {
    (
        (node.referenced.line() as usize).max(1),
        (node.referenced.column() as usize).max(1),
    )
}
