//! Config errors that name the key and the line, whichever stage found them.
//!
//! The TOML parser knows positions but not our rules; our rules know keys but not
//! positions. [`Document`] bridges the two: it keeps the parsed document with its spans,
//! finds the key path at a parser error's position, and finds the position of the key a
//! rule names.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A config that cannot be used, with where and why.
///
/// Displays as `ORIGIN:LINE:COLUMN: KEY: MESSAGE` followed by the offending source line,
/// e.g.
///
/// ```text
/// sipbridge.toml:3:1: sip.lisen: unknown key `lisen`, expected one of `listen`, …
///     3 | lisen = ["udp:0.0.0.0:5060"]
/// ```
///
/// The line is the key's own line when the key is in the file, else the line of the
/// nearest enclosing table that is (a default value can break a rule too: `t1_ms = 5000`
/// alone makes the default `t2_ms` too small).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    origin: String,
    position: Option<Position>,
    key: Option<String>,
    message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    line: usize,
    column: usize,
    source_line: String,
}

impl ConfigError {
    /// What was being loaded (the file path, usually).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// 1-based line of the error, when it has one.
    pub fn line(&self) -> Option<usize> {
        self.position.as_ref().map(|p| p.line)
    }

    /// 1-based column (in characters) of the error, when it has one.
    pub fn column(&self) -> Option<usize> {
        self.position.as_ref().map(|p| p.column)
    }

    /// The key path, such as `endpoint[1].direct_media` (indexes from 0); None for plain
    /// TOML syntax errors.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// From a TOML parse or deserialize error; `doc` (absent for syntax errors, where
    /// there is no document yet) turns the error's position into a key path.
    pub(super) fn from_toml(error: &toml::de::Error, origin: &str, text: &str, doc: Option<&Document<'_>>) -> ConfigError {
        let mut message = error.message().trim_end().to_owned();
        // Operators write keys, not serde fields.
        for (serde_word, ours) in [("unknown field", "unknown key"), ("missing field", "missing key"), ("duplicate field", "duplicate key")]
        {
            if let Some(rest) = message.strip_prefix(serde_word) {
                message = format!("{ours}{rest}");
            }
        }
        let span = error.span();
        let mut key = match (doc, &span) {
            (Some(doc), Some(span)) => Some(doc.path_at(span.start)),
            _ => None,
        };
        // A missing key has no position of its own: the error points at its table.
        if let (Some(path), Some(missing)) = (&mut key, message.strip_prefix("missing key `").and_then(|r| r.split('`').next())) {
            *path = path.then(missing);
        }
        ConfigError {
            origin: origin.to_owned(),
            position: span.map(|span| Position::at(text, span.start)),
            key: key.filter(|k| !k.is_root()).map(|k| k.to_string()),
            message,
        }
    }

    /// A rule broken by a config built in code: no text, so no line.
    pub(super) fn without_source(invalid: Invalid) -> ConfigError {
        ConfigError { origin: "config".to_owned(), position: None, key: Some(invalid.path.to_string()), message: invalid.message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(p) = &self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(p) = &self.position {
            write!(f, "\n{:>5} | {}", p.line, p.source_line)?;
        }
        Ok(())
    }
}

impl Position {
    fn at(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            source_line: text[line_start..line_end].trim_end_matches('\r').to_owned(),
        }
    }
}

/// A rule a config breaks, located by key; [`Document::locate`] adds the line.
#[derive(Debug)]
pub(super) struct Invalid {
    path: KeyPath,
    message: String,
    /// Where to point instead when `path` is not in the file (it took its default).
    fallback: Option<KeyPath>,
}

impl Invalid {
    pub(super) fn new(path: KeyPath, message: impl Into<String>) -> Invalid {
        Invalid { path, message: message.into(), fallback: None }
    }

    /// Point at `other` when the key itself is not in the file: for `t2_ms` too small
    /// because the file sets only `t1_ms`, the `t1_ms` line is the one to look at.
    pub(super) fn or_at(mut self, other: KeyPath) -> Invalid {
        self.fallback = Some(other);
        self
    }
}

/// A key in the document: `endpoint[1].direct_media`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// A top-level key.
    pub(super) fn key(key: &str) -> KeyPath {
        KeyPath(vec![Segment::Key(key.to_owned())])
    }

    /// This path with `key` appended.
    pub(super) fn then(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path with an array index appended.
    pub(super) fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The parsed document with its spans, kept to map positions to keys and back.
pub(super) struct Document<'i> {
    root: Spanned<DeTable<'i>>,
}

impl<'i> Document<'i> {
    pub(super) fn new(root: Spanned<DeTable<'i>>) -> Document<'i> {
        Document { root }
    }

    /// An [`Invalid`] as a [`ConfigError`] at its key's line.
    pub(super) fn locate(&self, invalid: Invalid, origin: &str, text: &str) -> ConfigError {
        ConfigError {
            origin: origin.to_owned(),
            position: self.locate_span(&invalid).map(|span| Position::at(text, span.start)),
            key: Some(invalid.path.to_string()),
            message: invalid.message,
        }
    }

    /// The key's span; else the fallback key's; else the nearest enclosing table's.
    fn locate_span(&self, invalid: &Invalid) -> Option<Range<usize>> {
        let exact = |path: &KeyPath| self.span_of(path).filter(|(_, exact)| *exact).map(|(span, _)| span);
        exact(&invalid.path)
            .or_else(|| invalid.fallback.as_ref().and_then(exact))
            .or_else(|| self.span_of(&invalid.path).map(|(span, _)| span))
    }

    /// The deepest key path whose key or value contains `offset`.
    fn path_at(&self, offset: usize) -> KeyPath {
        let mut best = KeyPath::default();
        deepest_in_table(self.root.get_ref(), offset, &mut KeyPath::default(), &mut best);
        best
    }

    /// Where `path` is: its key, or for an array element the element. When the key is
    /// absent (it took its default), the deepest part of the path that is present, with
    /// `false` for "not exact".
    fn span_of(&self, path: &KeyPath) -> Option<(Range<usize>, bool)> {
        let mut found = None;
        let mut depth = 0;
        // None: the root table, which is a DeTable rather than a DeValue.
        let mut node: Option<&DeValue<'_>> = None;
        for segment in &path.0 {
            let table = match node {
                None => Some(self.root.get_ref()),
                Some(DeValue::Table(table)) => Some(table),
                Some(_) => None,
            };
            let next = match (segment, table, node) {
                (Segment::Key(key), Some(table), _) => table.get_key_value(key.as_str()).map(|(k, v)| (k.span(), v.get_ref())),
                (Segment::Index(index), _, Some(DeValue::Array(array))) => array.get(*index).map(|e| (e.span(), e.get_ref())),
                _ => None,
            };
            let Some((span, value)) = next else { break };
            found = Some(span);
            node = Some(value);
            depth += 1;
        }
        found.map(|span| (span, depth == path.0.len()))
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

fn deepest_in_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath, best: &mut KeyPath) {
    for (key, value) in table.iter() {
        path.0.push(Segment::Key(key.get_ref().to_string()));
        if contains(&key.span(), offset) && path.0.len() > best.0.len() {
            *best = path.clone();
        }
        deepest_in_value(value, offset, path, best);
        path.0.pop();
    }
}

fn deepest_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath, best: &mut KeyPath) {
    if contains(&value.span(), offset) && path.0.len() > best.0.len() {
        *best = path.clone();
    }
    match value.get_ref() {
        DeValue::Table(table) => deepest_in_table(table, offset, path, best),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                path.0.push(Segment::Index(i));
                deepest_in_value(element, offset, path, best);
                path.0.pop();
            }
        }
        _ => {}
    }
}
