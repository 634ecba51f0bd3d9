//! A set of named templates (Go's `template.Template` collection): parsing
//! into it and Go's rule for redefinitions.

use std::collections::HashMap;
use std::rc::Rc;

use super::FuncMap;
use crate::template::parse::{Node, parse};

/// A named template: its nodes and the file it was parsed from.
#[derive(Debug)]
pub struct Tree {
    pub name: Rc<str>,
    pub nodes: Vec<Node>,
}

/// A set of named templates, as Go's `template.Template` collection.
#[derive(Default, Clone)]
pub struct Templates {
    trees: HashMap<String, Rc<Tree>>,
}

impl Templates {
    /// Parses `src` as template `name`; its `define`s join the set. A later definition
    /// replaces an earlier one unless its body is empty (Go's `AddParseTree` rule).
    pub fn add(
        &mut self,
        name: &str,
        src: &str,
        funcs: &FuncMap,
    ) -> Result<(), crate::template::parse::ParseError> {
        let parsed = parse(name, src, &|f| funcs.contains(f))?;
        self.insert(name.to_string(), parsed.body);
        for (n, body) in parsed.defines {
            self.insert(n, body);
        }
        Ok(())
    }

    fn insert(&mut self, name: String, nodes: Vec<Node>) {
        let empty = is_empty_tree(&nodes);
        if empty && self.trees.contains_key(&name) {
            return;
        }
        let tree = Rc::new(Tree {
            name: name.as_str().into(),
            nodes,
        });
        self.trees.insert(name, tree);
    }

    pub fn get(&self, name: &str) -> Option<Rc<Tree>> {
        self.trees.get(name).cloned()
    }
}

fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}
