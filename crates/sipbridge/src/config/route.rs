//! `[[route]]`: where a call goes when the dialled user is not an endpoint name.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// One `[[route]]`, tried in file order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `match`: regex on the Request-URI user part (required). Unanchored unless written
    /// with `^…$`, as the regex crate's `is_match` is.
    #[serde(rename = "match")]
    pub pattern: RouteMatch,
    /// Endpoint to send the call to (required; must exist).
    pub to: String,
    /// Request-URI user on the outgoing leg; default `"$0"`, the whole match.
    #[serde(default)]
    pub user: UserTemplate,
}

impl Route {
    /// The outgoing Request-URI user for a dialled `user`, or None when the route does not
    /// match it.
    pub fn rewrite(&self, user: &str) -> Option<String> {
        let captures = self.pattern.regex.captures(user)?;
        Some(self.user.expand(&captures))
    }
}

/// A compiled `match` regex. Compiled at load so that a bad pattern fails `check-config`
/// rather than the first call. The regex crate matches in linear time, so a pattern cannot
/// be made slow by a hostile Request-URI.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    regex: Regex,
}

impl RouteMatch {
    /// The compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Number of capture groups, not counting `$0`.
    pub fn groups(&self) -> usize {
        self.regex.captures_len() - 1
    }
}

impl PartialEq for RouteMatch {
    /// Same source text: the config round-trips by text, and two configs that spell a
    /// pattern differently are different configs even when the languages are equal.
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str()
    }
}

impl FromStr for RouteMatch {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Regex::new(s).map(|regex| RouteMatch { regex }).map_err(|e| InvalidValue(format!("invalid regex: {e}")))
    }
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.regex.as_str())
    }
}

/// A `user` template: literal text with `$0` (the whole match) to `$9` (capture groups)
/// substituted, and `$$` for a literal `$`. Deliberately smaller than the regex crate's
/// own `$name` / `${n}` syntax, so that `$10` cannot silently mean "group 10".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTemplate {
    text: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

impl UserTemplate {
    /// The highest `$N` used, if any.
    pub fn highest_group(&self) -> Option<usize> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Group(n) => Some(*n),
                Piece::Literal(_) => None,
            })
            .max()
    }

    /// Substitute the captures; a group that did not participate in the match gives "".
    pub fn expand(&self, captures: &regex::Captures<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Group(n) => out.push_str(captures.get(*n).map_or("", |m| m.as_str())),
            }
        }
        out
    }
}

impl Default for UserTemplate {
    fn default() -> Self {
        UserTemplate { text: "$0".to_owned(), pieces: vec![Piece::Group(0)] }
    }
}

impl FromStr for UserTemplate {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(InvalidValue("an empty user template would send the call to no user; \"$0\" keeps the dialled one".to_owned()));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '$' {
                literal.push(c);
                continue;
            }
            match chars.next() {
                Some('$') => literal.push('$'),
                Some(d) if d.is_ascii_digit() => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Group(usize::from(d as u8 - b'0')));
                }
                _ => return Err(InvalidValue(format!("invalid user template {s:?}: `$` must be followed by a digit 0-9 or another `$`"))),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(UserTemplate { text: s.to_owned(), pieces })
    }
}

impl fmt::Display for UserTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_serde!(RouteMatch, UserTemplate);
