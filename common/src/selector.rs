//! Kubernetes-style label selectors that pick the clusters an app is assigned to.
//!
//! The grammar and the matching rules follow `k8s.io/apimachinery/pkg/labels`
//! so that a selector an operator already knows from `kubectl get -l` means the
//! same thing here: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`
//! and `!k`, joined by commas (a logical AND). The empty selector matches
//! every cluster.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a selector (or one of its keys or values) was refused.
///
/// Positions are byte offsets into the parsed text, counted from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("at byte {position}: expected {expected}, found {found}")]
    Unexpected {
        position: usize,
        found: String,
        expected: &'static str,
    },
    #[error("at byte {position}: invalid label key {key:?}: {reason}")]
    InvalidKey {
        position: usize,
        key: String,
        reason: &'static str,
    },
    #[error("at byte {position}: invalid label value {value:?}: {reason}")]
    InvalidValue {
        position: usize,
        value: String,
        reason: &'static str,
    },
    #[error("the value set of {key:?} is empty")]
    EmptySet { key: String },
}

/// What a requirement demands of one label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `k=v` or `k==v`: the label is present and equal to the value.
    Equals(String),
    /// `k!=v`: the label is absent or differs from the value.
    NotEquals(String),
    /// `k in (a,b)`: the label is present and one of the values.
    In(BTreeSet<String>),
    /// `k notin (a,b)`: the label is absent or none of the values.
    NotIn(BTreeSet<String>),
    /// `k`: the label is present, whatever its value.
    Exists,
    /// `!k`: the label is absent.
    DoesNotExist,
}

/// One comma-separated part of a selector: a key and what it must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
}

impl Requirement {
    /// A requirement on `key`, with the key and every value validated as
    /// Kubernetes label keys and values.
    pub fn new(key: impl Into<String>, operator: Operator) -> Result<Self, SelectorError> {
        let key = key.into();
        validate_key(&key, 0)?;
        match &operator {
            Operator::Equals(v) | Operator::NotEquals(v) => validate_value(v, 0)?,
            Operator::In(set) | Operator::NotIn(set) => {
                if set.is_empty() {
                    return Err(SelectorError::EmptySet { key });
                }
                for v in set {
                    validate_value(v, 0)?;
                }
            }
            Operator::Exists | Operator::DoesNotExist => {}
        }
        Ok(Self { key, operator })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Whether `labels` satisfy this requirement (Kubernetes semantics:
    /// `!=` and `notin` hold when the key is absent).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.operator {
            Operator::Equals(v) => value == Some(v),
            Operator::NotEquals(v) => value != Some(v),
            Operator::In(set) => value.is_some_and(|x| set.contains(x)),
            Operator::NotIn(set) => value.is_none_or(|x| !set.contains(x)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |f: &mut fmt::Formatter<'_>, word: &str, set: &BTreeSet<String>| {
            write!(f, "{} {word} (", self.key)?;
            for (i, v) in set.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                f.write_str(v)?;
            }
            f.write_str(")")
        };
        match &self.operator {
            Operator::Equals(v) => write!(f, "{}={v}", self.key),
            Operator::NotEquals(v) => write!(f, "{}!={v}", self.key),
            Operator::In(values) => set(f, "in", values),
            Operator::NotIn(values) => set(f, "notin", values),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// A parsed label selector: the AND of its requirements.
///
/// Requirements are kept sorted and without exact duplicates, so two
/// selectors that mean the same by construction compare equal and print the
/// same canonical text (`Display`), which parses back to an equal selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parse the Kubernetes selector syntax. The empty (or all-blank) string
    /// is the selector that matches everything.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Parser::new(text).selector()
    }

    /// `k1=v1,k2=v2,...`, with keys and values validated.
    pub fn from_equalities<K: AsRef<str>, V: AsRef<str>>(
        pairs: &[(K, V)],
    ) -> Result<Self, SelectorError> {
        let requirements = pairs
            .iter()
            .map(|(k, v)| Requirement::new(k.as_ref(), Operator::Equals(v.as_ref().to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_requirements(requirements))
    }

    /// A selector from already validated requirements.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort();
        requirements.dedup();
        Self { requirements }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector matches everything (has no requirement).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Selector {
    type Error = SelectorError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Selector> for String {
    fn from(value: Selector) -> Self {
        value.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    In,
    NotIn,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Open,
    Close,
    Comma,
    End,
}

impl<'a> Token<'a> {
    /// The token as a key or value: `in` and `notin` are operators only
    /// where an operator may stand, so a label key or value spelled so
    /// still parses (and what Display writes parses back).
    fn as_word(&self) -> Option<&'a str> {
        match self {
            Token::Word(w) => Some(w),
            Token::In => Some("in"),
            Token::NotIn => Some("notin"),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("{w:?}"),
            Token::In => "'in'".into(),
            Token::NotIn => "'notin'".into(),
            Token::Bang => "'!'".into(),
            Token::Eq => "'='".into(),
            Token::DoubleEq => "'=='".into(),
            Token::NotEq => "'!='".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
            Token::End => "the end".into(),
        }
    }
}

/// Characters that end a word; everything else (including characters no key
/// may contain) is part of a word, so validation can name the whole word.
fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '=' | '!' | '(' | ')')
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// The token after the current position, once peeked, with its start.
    peeked: Option<(usize, Token<'a>)>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            peeked: None,
        }
    }

    fn lex(&mut self) -> (usize, Token<'a>) {
        let rest = &self.text[self.pos..];
        let trimmed = rest.trim_start();
        let start = self.pos + (rest.len() - trimmed.len());
        let mut chars = trimmed.chars();
        let (token, len) = match chars.next() {
            None => (Token::End, 0),
            Some(',') => (Token::Comma, 1),
            Some('(') => (Token::Open, 1),
            Some(')') => (Token::Close, 1),
            Some('=') if trimmed.starts_with("==") => (Token::DoubleEq, 2),
            Some('=') => (Token::Eq, 1),
            Some('!') if trimmed.starts_with("!=") => (Token::NotEq, 2),
            Some('!') => (Token::Bang, 1),
            Some(_) => {
                let len = trimmed.find(is_special).unwrap_or(trimmed.len());
                let word = &trimmed[..len];
                let token = match word {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Word(word),
                };
                (token, len)
            }
        };
        self.pos = start + len;
        (start, token)
    }

    fn next(&mut self) -> (usize, Token<'a>) {
        match self.peeked.take() {
            Some(t) => t,
            None => self.lex(),
        }
    }

    fn peek(&mut self) -> &(usize, Token<'a>) {
        if self.peeked.is_none() {
            let t = self.lex();
            self.peeked = Some(t);
        }
        self.peeked.as_ref().unwrap_or(&(0, Token::End))
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().1 == Token::End {
            return Ok(Selector::everything());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                (_, Token::End) => break,
                (_, Token::Comma) => {}
                (position, t) => {
                    return Err(SelectorError::Unexpected {
                        position,
                        found: t.describe(),
                        expected: "',' or the end",
                    });
                }
            }
        }
        Ok(Selector::from_requirements(requirements))
    }

    /// The next token as a key or value word (see `Token::as_word`) and
    /// where it starts; else the error naming what was `expected`.
    fn word(&mut self, expected: &'static str) -> Result<(usize, &'a str), SelectorError> {
        let (position, t) = self.next();
        t.as_word()
            .map(|w| (position, w))
            .ok_or_else(|| SelectorError::Unexpected {
                position,
                found: t.describe(),
                expected,
            })
    }

    /// A label value word, checked.
    fn value(&mut self) -> Result<String, SelectorError> {
        let (position, w) = self.word("a label value")?;
        validate_value(w, position)?;
        Ok(w.to_owned())
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        let (position, w) = self.word("a label key")?;
        validate_key(w, position)?;
        Ok(w.to_owned())
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek().1 == Token::Bang {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
            });
        }
        let key = self.key()?;
        let operator = match self.peek().1 {
            Token::Comma | Token::End => Operator::Exists,
            Token::Eq | Token::DoubleEq => {
                self.next();
                Operator::Equals(self.exact_value()?)
            }
            Token::NotEq => {
                self.next();
                Operator::NotEquals(self.exact_value()?)
            }
            Token::In => {
                self.next();
                Operator::In(self.value_set()?)
            }
            Token::NotIn => {
                self.next();
                Operator::NotIn(self.value_set()?)
            }
            _ => {
                let (position, t) = self.next();
                return Err(SelectorError::Unexpected {
                    position,
                    found: t.describe(),
                    expected: "an operator ('=', '==', '!=', 'in', 'notin'), ',' or the end",
                });
            }
        };
        Ok(Requirement { key, operator })
    }

    /// The value after `=`, `==` or `!=`; empty when a comma or the end
    /// follows, as Kubernetes allows (`k=` selects an empty label value).
    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek().1 {
            Token::Comma | Token::End => Ok(String::new()),
            _ => self.value(),
        }
    }

    fn value_set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        match self.next() {
            (_, Token::Open) => {}
            (position, t) => {
                return Err(SelectorError::Unexpected {
                    position,
                    found: t.describe(),
                    expected: "'('",
                });
            }
        }
        let mut set = BTreeSet::new();
        if self.peek().1 == Token::Close {
            // As in Kubernetes, `()` is the set holding the empty value, so
            // `k in ()` selects an empty label value and Display round-trips.
            self.next();
            set.insert(String::new());
            return Ok(set);
        }
        loop {
            // Kubernetes accepts empty members (`(a,)` holds "a" and "").
            let value = match self.peek().1 {
                Token::Comma | Token::Close => String::new(),
                _ => self.value()?,
            };
            set.insert(value);
            match self.next() {
                (_, Token::Comma) => {}
                (_, Token::Close) => return Ok(set),
                (position, t) => {
                    return Err(SelectorError::Unexpected {
                        position,
                        found: t.describe(),
                        expected: "',' or ')'",
                    });
                }
            }
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name.
fn validate_key(key: &str, position: usize) -> Result<(), SelectorError> {
    let invalid = |reason| SelectorError::InvalidKey {
        position,
        key: key.to_owned(),
        reason,
    };
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            validate_dns_subdomain(prefix).map_err(invalid)?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(invalid("the name part is empty"));
    }
    validate_label_name(name).map_err(invalid)
}

fn validate_value(value: &str, position: usize) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Ok(());
    }
    validate_label_name(value).map_err(|reason| SelectorError::InvalidValue {
        position,
        value: value.to_owned(),
        reason,
    })
}

/// The rule label names and non-empty label values share.
fn validate_label_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 63 {
        return Err("longer than 63 characters");
    }
    let inner = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = name.as_bytes();
    if !bytes.iter().all(|&b| inner(b)) {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    match (bytes.first(), bytes.last()) {
        (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => Ok(()),
        _ => Err("must start and end with a letter or digit"),
    }
}

fn validate_dns_subdomain(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("the prefix before '/' is empty");
    }
    if prefix.len() > 253 {
        return Err("the prefix is longer than 253 characters");
    }
    let ok = prefix.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    });
    if ok {
        Ok(())
    } else {
        Err("the prefix must be a lowercase DNS subdomain")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matches_like_kubernetes() {
        let prod_eu = labels(&[("env", "prod"), ("switchyard.dev/region", "eu")]);
        let staging = labels(&[("env", "staging")]);
        let none = labels(&[]);
        // (selector, prod_eu, staging, no labels)
        let table: &[(&str, bool, bool, bool)] = &[
            ("", true, true, true),
            ("   ", true, true, true),
            ("env=prod", true, false, false),
            ("env==prod", true, false, false),
            ("env = prod", true, false, false),
            ("env!=prod", false, true, true),
            ("env in (prod, staging)", true, true, false),
            ("env in (dev)", false, false, false),
            ("env notin (prod)", false, true, true),
            ("env", true, true, false),
            ("!env", false, false, true),
            ("switchyard.dev/region", true, false, false),
            ("!switchyard.dev/region", false, true, true),
            ("switchyard.dev/region=eu,env=prod", true, false, false),
            ("switchyard.dev/region=eu,env=staging", false, false, false),
            ("env,!switchyard.dev/region", false, true, false),
            ("env=", false, false, false),
            ("env!=", true, true, true),
            ("tier notin (a,b),env", true, true, false),
        ];
        for &(text, a, b, c) in table {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(
                (s.matches(&prod_eu), s.matches(&staging), s.matches(&none)),
                (a, b, c),
                "{text:?}"
            );
        }
        let empty_value = labels(&[("env", "")]);
        assert!(Selector::parse("env=").is_ok_and(|s| s.matches(&empty_value)));
        assert!(Selector::parse("env in (a,)").is_ok_and(|s| s.matches(&empty_value)));
        assert!(Selector::parse("env in ()").is_ok_and(|s| s.matches(&empty_value)));
        assert!(Selector::parse("env notin ()").is_ok_and(|s| !s.matches(&empty_value)));
        let no_values = Requirement::new("env", Operator::In(BTreeSet::new()));
        assert_eq!(
            no_values.map_err(|e| e.to_string()),
            Err("the value set of \"env\" is empty".to_owned())
        );
    }

    #[test]
    fn canonical_display() {
        let cases = [
            ("", ""),
            (" b == 2 , a=1 ", "a=1,b=2"),
            ("x in (c, a,b)", "x in (a,b,c)"),
            ("x notin(b,a)", "x notin (a,b)"),
            ("!x ,y", "!x,y"),
            ("a=1,a=1", "a=1"),
            ("k!=v", "k!=v"),
            ("k=", "k="),
        ];
        for (input, canonical) in cases {
            let s = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(s.to_string(), canonical, "{input:?}");
            assert_eq!(Selector::parse(canonical), Ok(s));
        }
    }

    #[test]
    fn errors_name_position_and_token() {
        let cases = [
            (
                "env=prod,",
                "at byte 9: expected a label key, found the end",
            ),
            (
                "env prod",
                "at byte 4: expected an operator ('=', '==', '!=', 'in', 'notin'), ',' or the end, found \"prod\"",
            ),
            ("env in prod", "at byte 7: expected '(', found \"prod\""),
            (
                "env in (a b)",
                "at byte 10: expected ',' or ')', found \"b\"",
            ),
            ("env in (a", "at byte 9: expected ',' or ')', found the end"),
            ("a=b=c", "at byte 3: expected ',' or the end, found '='"),
            (
                "Bad/key=1",
                "at byte 0: invalid label key \"Bad/key\": the prefix must be a lowercase DNS subdomain",
            ),
            (
                "a=-x",
                "at byte 2: invalid label value \"-x\": must start and end with a letter or digit",
            ),
            (
                "a, b/=1",
                "at byte 3: invalid label key \"b/\": the name part is empty",
            ),
            (
                "é",
                "at byte 0: invalid label key \"é\": only letters, digits, '-', '_' and '.' are allowed",
            ),
            ("!", "at byte 1: expected a label key, found the end"),
            // `in` where a key stands is the key "in" (see as_word).
            (
                "in (a)",
                "at byte 3: expected an operator ('=', '==', '!=', 'in', 'notin'), ',' or the end, found '('",
            ),
            (",", "at byte 0: expected a label key, found ','"),
            (
                "a > 1",
                "at byte 2: expected an operator ('=', '==', '!=', 'in', 'notin'), ',' or the end, found \">\"",
            ),
        ];
        for (input, message) in cases {
            match Selector::parse(input) {
                Err(e) => assert_eq!(e.to_string(), message, "{input:?}"),
                Ok(s) => panic!("{input:?} parsed as {s}"),
            }
        }
        let long = "a".repeat(64);
        assert!(Selector::parse(&long).is_err());
        assert!(Selector::parse(&format!("k={long}")).is_err());
    }

    #[test]
    fn from_equalities_validates_and_sorts() {
        let s = Selector::from_equalities(&[("b", "2"), ("a", "1")]);
        assert_eq!(s.map(|s| s.to_string()), Ok("a=1,b=2".to_owned()));
        assert!(Selector::from_equalities(&[("a b", "1")]).is_err());
        assert!(Selector::from_equalities(&[("a", "x y")]).is_err());
        let empty: &[(&str, &str)] = &[];
        assert_eq!(Selector::from_equalities(empty), Ok(Selector::everything()));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let s = Selector::parse("env in (b,a),!x").unwrap_or_default();
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(json, r#""env in (a,b),!x""#);
        let back: Result<Selector, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(s));
        assert!(serde_json::from_str::<Selector>(r#""a in""#).is_err());
    }

    /// A label key or value spelled `in` or `notin` is a word where a key
    /// or value stands (found by the round-trip property test).
    #[test]
    fn keys_and_values_spelled_like_operators_round_trip() {
        for text in [
            "in",
            "!notin",
            "in in (in,notin)",
            "notin=in",
            "in!=notin,env notin (in)",
        ] {
            let parsed = Selector::parse(text);
            assert!(parsed.is_ok(), "{text}: {parsed:?}");
            let parsed = parsed.unwrap_or_default();
            assert_eq!(
                Selector::parse(&parsed.to_string()),
                Ok(parsed.clone()),
                "{text}"
            );
        }
        let s = Selector::parse("in in (a)").unwrap_or_default();
        assert!(s.matches(&BTreeMap::from([("in".to_owned(), "a".to_owned())])));
        assert!(!s.matches(&BTreeMap::from([("in".to_owned(), "b".to_owned())])));
        // Still an error where an operator is missing.
        assert!(Selector::parse("env (a)").is_err());
        assert!(Selector::parse("in (a)").is_err());
    }
}
