//! Property tests for label selectors: canonical text round-trips, matching agrees with a reference, and no input panics.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use switchyard_common::selector::{Operator, Requirement, Selector};

/// A small alphabet so generated selectors and labels often meet.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("env".to_owned()),
        Just("tier".to_owned()),
        Just("switchyard.dev/region".to_owned()),
        "[a-z][a-z0-9_.-]{0,6}[a-z0-9]",
        "[a-z]{1,3}\\.[a-z]{2,3}/[A-Za-z][A-Za-z0-9]{0,3}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("prod".to_owned()),
        Just("eu".to_owned()),
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,5}[A-Za-z0-9])?",
    ]
}

fn operator() -> impl Strategy<Value = Operator> {
    let set = || prop::collection::btree_set(value(), 1..4);
    prop_oneof![
        value().prop_map(Operator::Equals),
        value().prop_map(Operator::NotEquals),
        set().prop_map(Operator::In),
        set().prop_map(Operator::NotIn),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
    ]
}

fn requirements() -> impl Strategy<Value = Vec<(String, Operator)>> {
    prop::collection::vec((name(), operator()), 0..6)
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(name(), value(), 0..5)
}

/// How a person might write a requirement: `==` or `=`, odd spacing.
fn write_loosely(key: &str, op: &Operator, double: bool, pad: &str) -> String {
    let set = |s: &BTreeSet<String>| {
        let items: Vec<&str> = s.iter().rev().map(String::as_str).collect();
        format!("({pad}{}{pad})", items.join(&format!("{pad},{pad}")))
    };
    match op {
        Operator::Equals(v) if double => format!("{key}{pad}=={pad}{v}"),
        Operator::Equals(v) => format!("{key}{pad}={pad}{v}"),
        Operator::NotEquals(v) => format!("{key}{pad}!={pad}{v}"),
        Operator::In(s) => format!("{key} in{pad}{}", set(s)),
        Operator::NotIn(s) => format!("{key} notin{pad}{}", set(s)),
        Operator::Exists => key.to_owned(),
        Operator::DoesNotExist => format!("!{pad}{key}"),
    }
}

fn reference(reqs: &[(String, Operator)], labels: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|(k, op)| {
        let v = labels.get(k);
        match op {
            Operator::Equals(x) => v == Some(x),
            Operator::NotEquals(x) => v != Some(x),
            Operator::In(s) => v.is_some_and(|v| s.contains(v)),
            Operator::NotIn(s) => !v.is_some_and(|v| s.contains(v)),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
        }
    })
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_selector(
        reqs in requirements(),
        double in any::<bool>(),
        pad in prop_oneof![Just(""), Just(" "), Just("\t "), Just("  ")],
    ) {
        let built = Selector::from_requirements(
            reqs.iter()
                .map(|(k, op)| Requirement::new(k.clone(), op.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        let canonical = built.to_string();
        prop_assert_eq!(Selector::parse(&canonical), Ok(built.clone()));

        let loose: Vec<String> = reqs
            .iter()
            .map(|(k, op)| write_loosely(k, op, double, pad))
            .collect();
        let loose = format!("{pad}{}{pad}", loose.join(&format!("{pad},{pad}")));
        let parsed = Selector::parse(&loose);
        prop_assert_eq!(parsed.as_ref(), Ok(&built), "{:?}", loose);

        let json = serde_json::to_string(&built).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Selector = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, built);
    }

    #[test]
    fn matching_agrees_with_the_reference(reqs in requirements(), labels in labels()) {
        let parsed = Selector::from_requirements(
            reqs.iter()
                .filter_map(|(k, op)| Requirement::new(k.clone(), op.clone()).ok())
                .collect(),
        );
        prop_assert_eq!(parsed.matches(&labels), reference(&reqs, &labels));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,40}") {
        if let Ok(s) = Selector::parse(&text) {
            // Whatever parses has a canonical form that parses to itself.
            prop_assert_eq!(Selector::parse(&s.to_string()), Ok(s));
        }
    }

    #[test]
    fn selector_shaped_noise_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just("="), Just("=="), Just("!="), Just("!"), Just("("), Just(")"),
                Just(","), Just(" in "), Just(" notin "), Just(" "), Just("a"), Just("b/c"),
                Just("é"), Just("-"), Just("in"),
            ],
            0..16,
        )
    ) {
        let text: String = parts.concat();
        if let Ok(s) = Selector::parse(&text) {
            prop_assert_eq!(Selector::parse(&s.to_string()), Ok(s));
        }
    }
}
