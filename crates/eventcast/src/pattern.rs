//! Event-name patterns: which names a wildcard subscription takes.
//!
//! The rule is NATS's subject wildcards on `.`-separated event names, and
//! this module is its one definition: [`Eventcast::subscribe_pattern`](crate::Eventcast::subscribe_pattern),
//! `eventcast listen --pattern` and the JS `onPattern` all parse with
//! [`Pattern::parse`] (the Node addon exports the parsed tokens, so JS matches
//! them without calling into Rust per event), and the Rust and the JS tests
//! read one table of cases (`tests/fixtures/patterns.json` of this crate), so
//! the two matchers cannot drift apart.
//!
//! * A **name** is cut at every `.` into tokens; a token may be empty (`"a..b"`
//!   has three tokens, the middle one empty; `""` has one, empty). Names are
//!   whatever senders chose: nothing about a name is refused here.
//! * A **pattern** is non-empty tokens joined by `.`: a literal token matches
//!   the same token (exact, case-sensitive), `*` matches any one token, and
//!   `>`, only as the last token, matches one or more remaining tokens. `*`
//!   and `>` are wildcards only as whole tokens; inside a token (`a*`) they
//!   make the pattern invalid, as in NATS. Patterns are bounded
//!   ([`MAX_PATTERN_BYTES`]).
//!
//! So `orders.*` matches `orders.eu` but neither `orders` nor
//! `orders.eu.paid`; `orders.>` matches both of the latter's children;
//! `>` matches every name.

use crate::Error;
use std::fmt;

/// Longest pattern accepted, in UTF-8 bytes. Patterns come from the
/// application, not the network, but a bound keeps the matching cost per
/// event (one pass over the name, at most one comparison per token) bounded too.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// One token of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// Matches exactly this token.
    Literal(Box<str>),
    /// `*`: any one token.
    One,
    /// `>`: one or more tokens, to the end of the name.
    Rest,
}

/// A parsed, valid event-name pattern (see the module documentation for the
/// rules). Cheap to match: no allocation, one pass over the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    tokens: Box<[Token]>,
}

impl Pattern {
    /// Parses `pattern`, or says which rule it breaks ([`Error::Pattern`],
    /// code `EPATTERN`): an empty token (an empty pattern, a leading, trailing
    /// or doubled `.`), `*` or `>` inside a token, `>` before the last token,
    /// more than [`MAX_PATTERN_BYTES`].
    pub fn parse(pattern: &str) -> Result<Pattern, Error> {
        let fail = |reason: &'static str| Error::Pattern { pattern: pattern.chars().take(64).collect(), reason };
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(fail("longer than 1024 bytes"));
        }
        let mut tokens = Vec::new();
        let mut parts = pattern.split('.').peekable();
        while let Some(part) = parts.next() {
            let token = match part {
                "" => return Err(fail("empty token (an empty pattern, or a leading, trailing or doubled '.')")),
                "*" => Token::One,
                ">" if parts.peek().is_some() => return Err(fail("'>' may only be the last token")),
                ">" => Token::Rest,
                _ if part.contains(['*', '>']) => return Err(fail("'*' and '>' are wildcards only as whole tokens")),
                _ => Token::Literal(part.into()),
            };
            tokens.push(token);
        }
        Ok(Pattern { text: pattern.into(), tokens: tokens.into_boxed_slice() })
    }

    /// Whether the event name `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = name.split('.');
        for token in self.tokens.iter() {
            match token {
                // `>` is last (parse guarantees it): one more token at least.
                Token::Rest => return parts.next().is_some(),
                Token::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Token::Literal(literal) => {
                    if parts.next() != Some(&**literal) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pattern's tokens, in order (`*`, `>` or a literal token): what the
    /// Node addon hands to JS, which matches with them.
    pub fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens.iter().map(|t| match t {
            Token::Literal(l) => &**l,
            Token::One => "*",
            Token::Rest => ">",
        })
    }

    /// Whether the pattern has no wildcard: it matches one name, itself.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }
}

impl std::str::FromStr for Pattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table JS's tests read too (`__test__/patterns.test.js`).
    const CASES: &str = include_str!("../tests/fixtures/patterns.json");

    fn cases() -> serde_json::Value {
        serde_json::from_str(CASES).expect("patterns.json is JSON")
    }

    #[test]
    fn the_shared_table_of_matches() {
        let cases = cases();
        let matches = cases["matches"].as_array().expect("matches: an array");
        assert!(matches.len() >= 30, "the table is the spec: keep it rich");
        for case in matches {
            let (pattern, name, expected) =
                (case[0].as_str().unwrap(), case[1].as_str().unwrap(), case[2].as_bool().unwrap());
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?} should parse: {e}"));
            assert_eq!(p.matches(name), expected, "{pattern:?} against {name:?}");
        }
    }

    #[test]
    fn the_shared_table_of_invalid_patterns() {
        let cases = cases();
        for case in cases["invalid"].as_array().expect("invalid: an array") {
            let pattern = case.as_str().unwrap();
            let err = Pattern::parse(pattern).expect_err(pattern);
            assert_eq!(err.code(), "EPATTERN", "{pattern:?}");
        }
    }

    #[test]
    fn the_shared_table_of_tokens() {
        let cases = cases();
        for case in cases["tokens"].as_array().expect("tokens: an array") {
            let p = Pattern::parse(case[0].as_str().unwrap()).unwrap();
            let want: Vec<&str> = case[1].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            assert_eq!(p.tokens().collect::<Vec<_>>(), want);
            assert_eq!(p.as_str(), case[0].as_str().unwrap());
        }
    }

    #[test]
    fn length_is_bounded_and_the_error_message_too() {
        let longest = "a".repeat(MAX_PATTERN_BYTES);
        assert!(Pattern::parse(&longest).unwrap().matches(&longest));
        let err = Pattern::parse(&format!("{longest}b")).unwrap_err();
        assert_eq!(err.code(), "EPATTERN");
        assert!(err.to_string().len() < 200, "{err}");
        // Counted in UTF-8 bytes: 342 three-byte characters are 1026 bytes.
        assert!(Pattern::parse(&"€".repeat(342)).is_err());
        assert!(Pattern::parse(&"€".repeat(341)).is_ok());
    }

    /// The rule written the obvious way (split both, compare token lists),
    /// to check the allocation-free matcher against.
    fn reference(pattern: &str, name: &str) -> bool {
        fn go(p: &[&str], n: &[&str]) -> bool {
            match (p.split_first(), n.split_first()) {
                (Some((&">", _)), _) => !n.is_empty(),
                (Some((&"*", pr)), Some((_, nr))) => go(pr, nr),
                (Some((t, pr)), Some((u, nr))) => t == u && go(pr, nr),
                (None, None) => true,
                _ => false,
            }
        }
        go(&pattern.split('.').collect::<Vec<_>>(), &name.split('.').collect::<Vec<_>>())
    }

    proptest::proptest! {
        /// Any name (received names are whatever a peer sent) against any
        /// pattern string: no panic; valid ones match as the reference says.
        #[test]
        fn matches_as_the_reference_and_never_panics(pattern in "[ab.*>]{0,9}", name in "[ab.*>é]{0,9}") {
            if let Ok(p) = Pattern::parse(&pattern) {
                proptest::prop_assert_eq!(p.matches(&name), reference(&pattern, &name), "{:?} {:?}", pattern, name);
                proptest::prop_assert!(p.matches(&pattern) || !p.is_literal());
            }
        }
    }

    #[test]
    fn literal_and_display() {
        assert!(Pattern::parse("a.b").unwrap().is_literal());
        assert!(!Pattern::parse("a.*").unwrap().is_literal());
        assert_eq!("x.>".parse::<Pattern>().unwrap().to_string(), "x.>");
    }
}
