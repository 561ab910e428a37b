//! YAML documents as trees of located nodes, and the diagnostics raised while
//! reading them.
//!
//! Every input file (scenario, manifest) is parsed here into [`Node`]s that
//! remember their line, column and YAML path, so a reader can report each
//! problem as `file:line:column: path: message` and go on to find the next
//! one. This module knows YAML and nothing about scenarios or Envoy Gateway.
//!
//! Hostile input is bounded: nesting depth, the number of nodes an alias may
//! expand to (the "billion laughs" attack), and the input size are all
//! capped, and duplicate mapping keys are an error.

mod decode;

pub use decode::{Fields, suggest};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting of sequences and mappings accepted in one document.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one file may hold once aliases are expanded.
pub const MAX_NODES: usize = 2_000_000;
/// Largest input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// A position in an input file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One YAML node with the place it was read from.
#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub location: Location,
    /// Dotted path from the document root, such as `spec.rules[0].limit`;
    /// empty for the root.
    pub path: String,
}

#[derive(Clone, Debug)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// Any other scalar, with its text as written. `quoted` is true for
    /// single- or double-quoted, literal and folded scalars, which are always
    /// strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    /// Entries in file order; keys are strings (non-string keys are reported
    /// and skipped while parsing).
    Mapping(Vec<(String, Node)>),
}

/// One problem found in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Arc<Path>,
    pub location: Location,
    /// YAML path of the offending node; empty when the problem is not tied to one.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.location.line,
            self.location.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The problems found in one or more files, in the order they were found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub file: Option<Arc<Path>>,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn for_file(file: &Path) -> Diagnostics {
        Diagnostics {
            file: Some(Arc::from(file)),
            items: Vec::new(),
        }
    }

    fn file_arc(&self) -> Arc<Path> {
        self.file
            .clone()
            .unwrap_or_else(|| Arc::from(Path::new("<input>")))
    }

    /// Records a problem at `node`.
    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        let diagnostic = Diagnostic {
            file: self.file_arc(),
            location: node.location,
            path: node.path.clone(),
            message: message.into(),
        };
        self.items.push(diagnostic);
    }

    /// Records a problem at an explicit place.
    pub fn error_at(&mut self, location: Location, path: &str, message: impl Into<String>) {
        let diagnostic = Diagnostic {
            file: self.file_arc(),
            location,
            path: path.to_string(),
            message: message.into(),
        };
        self.items.push(diagnostic);
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Orders the problems by file, line and column, keeping the reading
    /// order of problems at the same place.
    pub fn sort(&mut self) {
        self.items
            .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, item) in self.items.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// One `---`-separated document of a file.
#[derive(Clone, Debug)]
pub struct Document {
    pub root: Node,
    /// Zero-based position of the document in its file.
    pub index: usize,
}

/// Reads and parses a file; a file that cannot be read is reported as a
/// diagnostic at line 1 naming the path that was tried.
pub fn load_file(path: &Path) -> Result<Vec<Document>, Diagnostics> {
    let mut diagnostics = Diagnostics::for_file(path);
    let text = match read_text(path) {
        Ok(text) => text,
        Err(message) => {
            diagnostics.error_at(Location { line: 1, column: 1 }, "", message);
            return Err(diagnostics);
        }
    };
    parse_str(&text, path)
}

/// Reads a whole text file, bounded by [`MAX_INPUT_BYTES`], with a leading
/// byte order mark removed.
pub fn read_text(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if metadata.is_dir() {
        return Err(format!(
            "{} is a directory, expected a file",
            path.display()
        ));
    }
    if metadata.len() > MAX_INPUT_BYTES as u64 {
        return Err(format!(
            "{} is {} bytes, larger than the {} bytes accepted",
            path.display(),
            metadata.len(),
            MAX_INPUT_BYTES
        ));
    }
    // Devices and pipes report no length, so the read itself is bounded too.
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_INPUT_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "{} is larger than the {} bytes accepted",
            path.display(),
            MAX_INPUT_BYTES
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|error| format!("{} is not valid UTF-8: {error}", path.display()))?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Parses every document of `text`. `file` is used only in diagnostics.
pub fn parse_str(text: &str, file: &Path) -> Result<Vec<Document>, Diagnostics> {
    let mut diagnostics = Diagnostics::for_file(file);
    if text.len() > MAX_INPUT_BYTES {
        diagnostics.error_at(
            Location { line: 1, column: 1 },
            "",
            format!("input is larger than the {MAX_INPUT_BYTES} bytes accepted"),
        );
        return Err(diagnostics);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = TreeBuilder {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
        nodes: 0,
        diagnostics,
    };
    let documents = builder.documents();
    if builder.diagnostics.is_empty() {
        Ok(documents)
    } else {
        Err(builder.diagnostics)
    }
}

struct TreeBuilder<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    /// Anchored nodes by anchor id (ids start at 1; 0 means no anchor).
    anchors: Vec<Option<Node>>,
    nodes: usize,
    diagnostics: Diagnostics,
}

/// Marks a parse that had to stop; the reason is already in the diagnostics.
struct Stop;

fn location_of(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl<'input> TreeBuilder<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), Stop> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => {
                let marker = error.marker();
                let location = Location {
                    line: marker.line(),
                    column: marker.col() + 1,
                };
                let hint = if error.info().contains("tab") {
                    "; indent with spaces, YAML does not allow tabs there"
                } else {
                    ""
                };
                self.diagnostics.error_at(
                    location,
                    "",
                    format!("invalid YAML: {}{hint}", error.info()),
                );
                Err(Stop)
            }
            None => Err(Stop),
        }
    }

    fn documents(&mut self) -> Vec<Document> {
        let mut documents = Vec::new();
        loop {
            let (event, span) = match self.next() {
                Ok(pair) => pair,
                Err(Stop) => return documents,
            };
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return documents,
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    let root = match self.node(String::new(), 0) {
                        Ok(Some(node)) => node,
                        Ok(None) => Node {
                            value: Value::Null,
                            location: location_of(&span),
                            path: String::new(),
                        },
                        Err(Stop) => return documents,
                    };
                    let index = documents.len();
                    documents.push(Document { root, index });
                }
                _ => {
                    self.diagnostics.error_at(
                        location_of(&span),
                        "",
                        "invalid YAML: unexpected event outside a document",
                    );
                    return documents;
                }
            }
        }
    }

    fn count_nodes(&mut self, added: usize, location: Location, path: &str) -> Result<(), Stop> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            self.diagnostics.error_at(
                location,
                path,
                format!(
                    "document expands to more than {MAX_NODES} nodes \
                     (nested aliases?); simplify it"
                ),
            );
            return Err(Stop);
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some(node.clone());
    }

    /// Reads one node; `Ok(None)` means the enclosing collection ended.
    fn node(&mut self, path: String, depth: usize) -> Result<Option<Node>, Stop> {
        let (event, span) = self.next()?;
        let location = location_of(&span);
        if depth > MAX_DEPTH {
            self.diagnostics.error_at(
                location,
                &path,
                format!("nesting is deeper than {MAX_DEPTH} levels"),
            );
            return Err(Stop);
        }
        match event {
            Event::SequenceEnd | Event::MappingEnd | Event::DocumentEnd => Ok(None),
            Event::Scalar(text, style, anchor, _tag) => {
                self.count_nodes(1, location, &path)?;
                let quoted = !matches!(style, ScalarStyle::Plain);
                let value =
                    if !quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar {
                            text: text.into_owned(),
                            quoted,
                        }
                    };
                let node = Node {
                    value,
                    location,
                    path,
                };
                self.remember(anchor, &node);
                Ok(Some(node))
            }
            Event::Alias(anchor) => {
                let Some(Some(target)) = self.anchors.get(anchor).cloned() else {
                    self.diagnostics
                        .error_at(location, &path, "alias refers to an unknown anchor");
                    return Err(Stop);
                };
                let size = node_count(&target);
                self.count_nodes(size, location, &path)?;
                Ok(Some(Node {
                    value: target.value,
                    location,
                    path,
                }))
            }
            Event::SequenceStart(anchor, _) => {
                self.count_nodes(1, location, &path)?;
                let mut items = Vec::new();
                loop {
                    let item_path = format!("{path}[{}]", items.len());
                    match self.node(item_path, depth + 1)? {
                        Some(item) => items.push(item),
                        None => break,
                    }
                }
                let node = Node {
                    value: Value::Sequence(items),
                    location,
                    path,
                };
                self.remember(anchor, &node);
                Ok(Some(node))
            }
            Event::MappingStart(anchor, _) => {
                self.count_nodes(1, location, &path)?;
                let entries = self.mapping_entries(&path, depth)?;
                let node = Node {
                    value: Value::Mapping(entries),
                    location,
                    path,
                };
                self.remember(anchor, &node);
                Ok(Some(node))
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => {
                self.diagnostics.error_at(
                    location,
                    &path,
                    "invalid YAML: unexpected document boundary",
                );
                Err(Stop)
            }
        }
    }

    fn mapping_entries(&mut self, path: &str, depth: usize) -> Result<Vec<(String, Node)>, Stop> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        loop {
            let Some(key) = self.node(format!("{path}.<key>"), depth + 1)? else {
                return Ok(entries);
            };
            let key_text = match &key.value {
                Value::Scalar { text, .. } => Some(text.clone()),
                Value::Null => Some(String::new()),
                _ => None,
            };
            let value_path = match &key_text {
                Some(text) if path.is_empty() => text.clone(),
                Some(text) => format!("{path}.{text}"),
                None => format!("{path}.<key>"),
            };
            let Some(value) = self.node(value_path, depth + 1)? else {
                return Ok(entries);
            };
            match key_text {
                None => self.diagnostics.error_at(
                    key.location,
                    path,
                    "mapping key must be a string, found a collection",
                ),
                Some(text) if entries.iter().any(|(existing, _)| *existing == text) => {
                    self.diagnostics.error_at(
                        key.location,
                        &value.path,
                        format!("duplicate key `{text}`; each key may appear once"),
                    );
                }
                Some(text) => entries.push((text, value)),
            }
        }
    }
}

fn node_count(node: &Node) -> usize {
    match &node.value {
        Value::Null | Value::Scalar { .. } => 1,
        Value::Sequence(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Mapping(entries) => 1 + entries.iter().map(|(_, v)| node_count(v)).sum::<usize>(),
    }
}

impl Node {
    /// A short description of the kind of node, for "expected X, found Y".
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar text, if this is a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Looks up a key of a mapping without any diagnostics.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Mapping(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A copy of this node whose paths are prefixed, used when a document is
    /// nested inside another (an inline manifest in a scenario file).
    pub fn with_path_prefix(&self, prefix: &str) -> Node {
        let mut copy = self.clone();
        prefix_paths(&mut copy, prefix);
        copy
    }
}

fn prefix_paths(node: &mut Node, prefix: &str) {
    node.path = if node.path.is_empty() {
        prefix.to_string()
    } else if node.path.starts_with('[') {
        format!("{prefix}{}", node.path)
    } else {
        format!("{prefix}.{}", node.path)
    };
    match &mut node.value {
        Value::Sequence(items) => items.iter_mut().for_each(|item| prefix_paths(item, prefix)),
        Value::Mapping(entries) => entries
            .iter_mut()
            .for_each(|(_, value)| prefix_paths(value, prefix)),
        Value::Null | Value::Scalar { .. } => {}
    }
}

/// Joins a base directory and a path written in a file: relative paths are
/// read relative to the file that names them.
pub fn resolve_relative(base_file: &Path, written: &str) -> PathBuf {
    let written = Path::new(written);
    if written.is_absolute() {
        return written.to_path_buf();
    }
    match base_file.parent() {
        Some(dir) => dir.join(written),
        None => written.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, Diagnostics> {
        parse_str(text, Path::new("test.yaml"))
    }

    #[test]
    fn paths_and_locations_are_recorded() {
        let docs = parse("a:\n  b:\n    - x\n    - y: 1\n").unwrap();
        let y = docs[0].root.get("a").unwrap().get("b").unwrap();
        let Value::Sequence(items) = &y.value else {
            panic!("expected a sequence");
        };
        let inner = items[1].get("y").unwrap();
        assert_eq!(inner.path, "a.b[1].y");
        assert_eq!(
            inner.location,
            Location {
                line: 4,
                column: 10
            }
        );
    }

    #[test]
    fn multi_document_streams_split() {
        let docs = parse("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[2].root.is_null());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("test.yaml:3:1: a: duplicate key `a`"),
            "{text}"
        );
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let error = parse(&text).unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let error = parse(&text).unwrap_err();
        assert!(error.to_string().contains("nesting is deeper"), "{error}");
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let docs = parse("\u{feff}a: 1\r\nb: two\r\n").unwrap();
        assert_eq!(docs[0].root.get("b").unwrap().scalar(), Some("two"));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.to_string().starts_with("test.yaml:"), "{error}");
    }

    #[test]
    fn quoted_null_is_a_string() {
        let docs = parse("a: \"null\"\nb: null\nc:\n").unwrap();
        assert_eq!(docs[0].root.get("a").unwrap().scalar(), Some("null"));
        assert!(docs[0].root.get("b").unwrap().is_null());
        assert!(docs[0].root.get("c").unwrap().is_null());
    }
}
