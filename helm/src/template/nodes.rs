//! The trees the parser builds (nodes, pipelines, commands, arguments, each
//! with where it came from) and how they print themselves in error messages,
//! as Go's text/template/parse prints them.

use std::fmt;
use std::rc::Rc;

/// Where a node came from: the file it was parsed from, and its byte offset.
#[derive(Debug, Clone)]
pub struct Pos {
    pub file: Rc<str>,
    pub src: Rc<str>,
    pub offset: usize,
    /// The node as Go's `String()` prints it, for error messages ("at <...>").
    pub ctx: Rc<str>,
}

impl Pos {
    /// `file:line:col` as Go's `ErrorContext` computes it (column 0-based bytes).
    pub fn location(&self) -> String {
        let off = self.offset.min(self.src.len());
        let text = &self.src[..off];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            None => off,
            Some(i) => off - (i + 1),
        };
        format!("{}:{}:{}", self.file, line, col)
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Text(Rc<str>),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipe>,
    },
    Break(Pos),
    Continue(Pos),
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pos: Pos,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: Pos,
    pub is_assign: bool,
    pub decl: Vec<Rc<str>>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Field(Pos, Vec<String>),
    /// `$x.a.b`: the variable name and the fields after it.
    Variable(Pos, String, Vec<String>),
    Chain(Pos, Box<Arg>, Vec<String>),
    Ident(Pos, String),
    Dot(Pos),
    Nil(Pos),
    Bool(Pos, bool),
    Number(Pos, Number),
    Str(Pos, String, String),
    Pipe(Box<Pipe>),
}

/// A numeric constant as Go's parse.NumberNode sees it.
#[derive(Debug, Clone)]
pub struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
    /// Written as a float (has `.`, `e` or `p` and is not hex or a char): becomes float64.
    pub is_float_literal: bool,
    pub is_char: bool,
}

impl Arg {
    /// Records the node's text in its position (done once, at parse time).
    pub(super) fn with_ctx(mut self) -> Arg {
        let text: Rc<str> = self.to_string().into();
        match &mut self {
            Arg::Field(p, _)
            | Arg::Variable(p, _, _)
            | Arg::Chain(p, _, _)
            | Arg::Ident(p, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::Str(p, _, _) => p.ctx = text,
            // A pipe keeps its own text (without parentheses) for errors at it.
            Arg::Pipe(_) => {}
        }
        self
    }

    pub fn pos(&self) -> &Pos {
        match self {
            Arg::Field(p, _)
            | Arg::Variable(p, _, _)
            | Arg::Chain(p, _, _)
            | Arg::Ident(p, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::Str(p, _, _) => p,
            Arg::Pipe(p) => &p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text computed at parse time, when there is one.
        match self {
            Arg::Pipe(p) if !p.pos.ctx.is_empty() => return write!(f, "({})", p.pos.ctx),
            Arg::Pipe(_) => {}
            a if !a.pos().ctx.is_empty() => return f.write_str(&a.pos().ctx),
            _ => {}
        }
        match self {
            Arg::Field(_, names) => {
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Variable(_, v, names) => {
                write!(f, "{v}")?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Chain(_, node, names) => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    n => write!(f, "{n}")?,
                }
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Ident(_, n) => f.write_str(n),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::Str(_, raw, _) => f.write_str(raw),
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            let names: Vec<&str> = self.decl.iter().map(|d| &**d).collect();
            f.write_str(&names.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            if c.pos.ctx.is_empty() {
                write!(f, "{c}")?;
            } else {
                f.write_str(&c.pos.ctx)?;
            }
        }
        Ok(())
    }
}
