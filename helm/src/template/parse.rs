//! The parser of Go's text/template: turns tokens into trees, one per template
//! name (a file and each `define`/`block` in it), with Go's parse-time checks
//! (undefined functions and variables, misplaced `end`/`else`/`break`).

use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;

use super::lex::{Tok, Token, lex};
pub use super::nodes::{Arg, Branch, Command, Node, Number, Pipe, Pos};

/// A parse failure, printed as Go prints it: `template: NAME:LINE: MSG`.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}:{}: {}", self.file, self.line, self.msg)
    }
}

/// The trees one source file defines: the file's own body, then each `define`.
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    file: Rc<str>,
    src: Rc<str>,
    funcs: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of parentheses and control structures, bounded so hostile input cannot exhaust the stack.
    nesting: usize,
    defines: Vec<(String, Vec<Node>)>,
}

/// Deepest nesting of parentheses and control structures accepted.
const MAX_NESTING: usize = 100;

type PResult<T> = Result<T, ParseError>;

enum ListEnd {
    End,
    Else(Pos),
    Eof,
}

/// Parses one file. `funcs` says whether a function name is defined.
pub fn parse(file: &str, src: &str, funcs: &dyn Fn(&str) -> bool) -> Result<Parsed, ParseError> {
    let toks = lex(src).map_err(|e| ParseError {
        file: file.to_string(),
        line: e.line,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        i: 0,
        file: file.into(),
        src: src.into(),
        funcs,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        defines: Vec::new(),
    };
    let (body, end) = p.list(true)?;
    match end {
        ListEnd::Eof => {}
        ListEnd::End => return Err(p.err_at(p.i.saturating_sub(1), "unexpected {{end}}")),
        ListEnd::Else(_) => return Err(p.err_at(p.i.saturating_sub(1), "unexpected {{else}}")),
    }
    Ok(Parsed {
        body,
        defines: p.defines,
    })
}

impl Parser<'_> {
    fn pos(&self, offset: usize) -> Pos {
        Pos {
            file: self.file.clone(),
            src: self.src.clone(),
            offset,
            ctx: "".into(),
        }
    }

    fn err_at(&self, i: usize, msg: impl Into<String>) -> ParseError {
        let line = self.toks.get(i).map(|t| t.line).unwrap_or(1);
        ParseError {
            file: self.file.to_string(),
            line,
            msg: msg.into(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        self.err_at(self.i.min(self.toks.len().saturating_sub(1)), msg)
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Tok::Space) {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> Tok {
        self.skip_space();
        self.peek().clone()
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Text(s) => format!("{s:?}"),
            Tok::LeftDelim => "<left delim>".into(),
            Tok::RightDelim => "<right delim>".into(),
            Tok::Space => "<space>".into(),
            Tok::Field(s) => format!("<field .{s}>"),
            Tok::Variable(s) => format!("<variable {s}>"),
            Tok::Dot => "<.>".into(),
            Tok::Ident(s) => format!("<identifier {s}>"),
            Tok::Keyword(k) => format!("<{k}>"),
            Tok::Bool(b) => format!("<bool {b}>"),
            Tok::Nil => "<nil>".into(),
            Tok::Str(raw, _) => format!("<string {raw}>"),
            Tok::Char(raw, _) => format!("<char {raw}>"),
            Tok::Number(n) => format!("<number {n}>"),
            Tok::Pipe => "<|>".into(),
            Tok::LParen => "<(>".into(),
            Tok::RParen => "<)>".into(),
            Tok::Assign => "<=>".into(),
            Tok::Declare => "<:=>".into(),
            Tok::Comma => "<,>".into(),
            Tok::Eof => "EOF".into(),
        }
    }

    fn unexpected(&self, t: &Token, context: &str) -> ParseError {
        let idx = self.i.saturating_sub(1);
        self.err_at(
            idx,
            format!("unexpected {} in {}", Self::describe(&t.tok), context),
        )
    }

    /// Parses nodes up to `{{end}}`, `{{else}}` or EOF.
    fn list(&mut self, top: bool) -> PResult<(Vec<Node>, ListEnd)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => {
                    if !top {
                        return Err(self.err_at(self.i.saturating_sub(1), "unexpected EOF"));
                    }
                    return Ok((nodes, ListEnd::Eof));
                }
                Tok::Text(s) => nodes.push(Node::Text(s.into())),
                Tok::LeftDelim => {
                    let kw = self.peek_non_space();
                    match kw {
                        Tok::Keyword("end") => {
                            self.next();
                            self.expect_right("end")?;
                            return Ok((nodes, ListEnd::End));
                        }
                        Tok::Keyword("else") => {
                            let p = self.pos(self.toks[self.i].pos);
                            self.next();
                            return Ok((nodes, ListEnd::Else(p)));
                        }
                        Tok::Keyword("define") if top => {
                            self.next();
                            self.define()?;
                        }
                        _ => {
                            if let Some(n) = self.action()? {
                                nodes.push(n);
                            }
                        }
                    }
                }
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> PResult<()> {
        let t = self.next_non_space();
        if t.tok != Tok::RightDelim {
            return Err(self.unexpected(&t, context));
        }
        Ok(())
    }

    fn template_name(&mut self, context: &str) -> PResult<String> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Str(_, v) => Ok(v),
            _ => Err(self.unexpected(&t, context)),
        }
    }

    fn define(&mut self) -> PResult<()> {
        let name = self.template_name("define clause")?;
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        match end {
            ListEnd::End => {}
            ListEnd::Else(_) => {
                return Err(self.err_at(self.i.saturating_sub(1), "unexpected {{else}}"));
            }
            ListEnd::Eof => return Err(self.err("unexpected EOF")),
        }
        self.defines.push((name, body));
        Ok(())
    }

    /// The inside of `{{ ... }}` after the left delimiter.
    fn action(&mut self) -> PResult<Option<Node>> {
        let t = self.peek_non_space();
        let start = self.toks[self.i].pos;
        match t {
            Tok::Keyword("block") => {
                self.next();
                let name = self.template_name("block clause")?;
                let pipe = self.pipeline("block", true)?;
                let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                let (body, end) = self.list(false)?;
                self.vars = saved;
                if !matches!(end, ListEnd::End) {
                    return Err(self.err("unexpected {{else}}"));
                }
                self.defines.push((name.clone(), body));
                let mut pos = self.pos(start);
                pos.ctx = format!("{{{{template {name:?} {pipe}}}}}").into();
                Ok(Some(Node::Template {
                    pos,
                    name,
                    pipe: Some(pipe),
                }))
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                let is_break = t == Tok::Keyword("break");
                self.next();
                if self.range_depth == 0 {
                    let w = if is_break { "break" } else { "continue" };
                    return Err(self.err(format!("{{{{{w}}}}} outside {{{{range}}}}")));
                }
                self.expect_right(if is_break {
                    "{{break}}"
                } else {
                    "{{continue}}"
                })?;
                let p = self.pos(start);
                Ok(Some(if is_break {
                    Node::Break(p)
                } else {
                    Node::Continue(p)
                }))
            }
            Tok::Keyword("if") => {
                self.next();
                Ok(Some(Node::If(self.control("if", start)?)))
            }
            Tok::Keyword("range") => {
                self.next();
                self.range_depth += 1;
                let r = self.control("range", start);
                self.range_depth -= 1;
                Ok(Some(Node::Range(r?)))
            }
            Tok::Keyword("with") => {
                self.next();
                Ok(Some(Node::With(self.control("with", start)?)))
            }
            Tok::Keyword("template") => {
                self.next();
                let name = self.template_name("template clause")?;
                let pipe = if self.peek_non_space() == Tok::RightDelim {
                    self.next();
                    None
                } else {
                    Some(self.pipeline("template clause", true)?)
                };
                let mut pos = self.pos(start);
                pos.ctx = match &pipe {
                    Some(p) => format!("{{{{template {name:?} {p}}}}}"),
                    None => format!("{{{{template {name:?}}}}}"),
                }
                .into();
                Ok(Some(Node::Template { pos, name, pipe }))
            }
            Tok::Keyword(k) => {
                let tk = self.next();
                let _ = k;
                Err(self.unexpected(&tk, "command"))
            }
            _ => Ok(Some(Node::Action(self.pipeline("command", true)?))),
        }
    }

    /// if/range/with: pipeline, list, optional else (with `else if`/`else with` chains).
    fn control(&mut self, context: &str, start: usize) -> PResult<Branch> {
        if self.nesting >= MAX_NESTING {
            return Err(self.err("template nesting too deep"));
        }
        self.nesting += 1;
        let nvars = self.vars.len();
        let r = self.control_inner(context, start);
        self.vars.truncate(nvars);
        self.nesting -= 1;
        r
    }

    fn control_inner(&mut self, context: &str, start: usize) -> PResult<Branch> {
        let pipe = self.pipeline(context, true)?;
        if context == "range" && pipe.decl.len() > 2 {
            return Err(self.err("too many declarations in range"));
        }
        let (list, end) = self.list(false)?;
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Eof => return Err(self.err("unexpected EOF")),
            ListEnd::Else(epos) => {
                let kw = self.peek_non_space();
                let chained = match (&kw, context) {
                    (Tok::Keyword("if"), "if") => Some("if"),
                    (Tok::Keyword("with"), "with") => Some("with"),
                    _ => None,
                };
                if let Some(kind) = chained {
                    // "{{else if ...}}" is "{{else}}{{if ...}}" sharing the outer {{end}}.
                    self.next();
                    let inner = self.control(kind, epos.offset)?;
                    Some(vec![if kind == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }])
                } else {
                    self.expect_right("else")?;
                    let (el, end2) = if context == "range" {
                        // break/continue are not allowed in range's else.
                        let d = std::mem::replace(&mut self.range_depth, 0);
                        let r = self.list(false);
                        self.range_depth = d;
                        r?
                    } else {
                        self.list(false)?
                    };
                    match end2 {
                        ListEnd::End => {}
                        ListEnd::Else(_) => return Err(self.err("expected end; found {{else}}")),
                        ListEnd::Eof => return Err(self.err("unexpected EOF")),
                    }
                    Some(el)
                }
            }
        };
        Ok(Branch {
            pos: self.pos(start),
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to the right delimiter (or `)` when not `at_delim`).
    fn pipeline(&mut self, context: &str, at_delim: bool) -> PResult<Pipe> {
        self.skip_space();
        let start = self.toks[self.i].pos;
        let mut decl: Vec<String> = Vec::new();
        let mut is_assign = false;
        // Declarations: "$x :=", "$x =", "$i, $v :=".
        let save = self.i;
        if let Tok::Variable(v) = self.peek().clone() {
            self.next();
            self.skip_space();
            match self.peek().clone() {
                Tok::Declare | Tok::Assign => {
                    is_assign = *self.peek() == Tok::Assign;
                    self.next();
                    decl.push(v);
                }
                Tok::Comma if context == "range" => {
                    self.next();
                    self.skip_space();
                    let t = self.next();
                    let Tok::Variable(v2) = t.tok else {
                        return Err(self.err("range can only initialize variables".to_string()));
                    };
                    self.skip_space();
                    match self.next().tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        _ => return Err(self.err("range can only initialize variables")),
                    }
                    decl.push(v);
                    decl.push(v2);
                }
                _ => self.i = save,
            }
        }
        if !is_assign {
            for d in &decl {
                self.vars.push(d.clone());
            }
        } else {
            for d in &decl {
                if !self.vars.contains(d) {
                    return Err(self.err(format!("undefined variable \"{d}\"")));
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek_non_space();
            match t {
                Tok::RightDelim if at_delim => {
                    self.next();
                    break;
                }
                Tok::RParen if !at_delim => {
                    self.next();
                    break;
                }
                Tok::RightDelim | Tok::RParen | Tok::Eof => {
                    let tk = self.next();
                    return Err(self.unexpected(&tk, context));
                }
                _ => cmds.push(self.command()?),
            }
        }
        if cmds.is_empty() {
            return Err(self.err(format!("missing value for {context}")));
        }
        for c in cmds.iter().skip(1) {
            if let Some(a) = c.args.first()
                && matches!(
                    a,
                    Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str(..)
                )
            {
                return Err(self.err(format!("non executable command in pipeline stage {}", 2)));
            }
        }
        let mut pipe = Pipe {
            pos: self.pos(start),
            is_assign,
            decl: decl.into_iter().map(Rc::from).collect(),
            cmds,
        };
        pipe.pos.ctx = pipe.to_string().into();
        Ok(pipe)
    }

    fn command(&mut self) -> PResult<Command> {
        self.skip_space();
        let start = self.toks[self.i].pos;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RParen => {
                    self.i -= 1;
                }
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.err("empty command"));
        }
        let mut cmd = Command {
            pos: self.pos(start),
            args,
        };
        cmd.pos.ctx = cmd.to_string().into();
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        let node = node.with_ctx();
        if !matches!(self.peek(), Tok::Field(_)) {
            return Ok(Some(node));
        }
        let chain_pos = self.pos(self.toks[self.i].pos);
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek().clone() {
            self.next();
            fields.push(f);
        }
        Ok(Some(
            match node {
                Arg::Field(_, mut names) => {
                    names.extend(fields);
                    Arg::Field(chain_pos, names)
                }
                Arg::Variable(_, v, mut names) => {
                    names.extend(fields);
                    Arg::Variable(chain_pos, v, names)
                }
                Arg::Bool(..) | Arg::Str(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                    return Err(self.err(format!("unexpected . after term \"{node}\"")));
                }
                n => Arg::Chain(chain_pos, Box::new(n), fields),
            }
            .with_ctx(),
        ))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        self.skip_space();
        let t = self.next();
        let p = self.pos(t.pos);
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !(self.funcs)(&name) {
                    return Err(self.err_at(self.i - 1, format!("function \"{name}\" not defined")));
                }
                Arg::Ident(p, name)
            }
            Tok::Dot => Arg::Dot(p),
            Tok::Nil => Arg::Nil(p),
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err_at(self.i - 1, format!("undefined variable \"{v}\"")));
                }
                Arg::Variable(p, v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(p, vec![f]),
            Tok::Bool(b) => Arg::Bool(p, b),
            Tok::Char(raw, c) => Arg::Number(
                p,
                Number {
                    text: raw,
                    int: Some(c as i64),
                    float: Some(c as f64),
                    is_float_literal: false,
                    is_char: true,
                },
            ),
            Tok::Number(text) => {
                let n = parse_number(&text).ok_or_else(|| {
                    self.err_at(self.i - 1, format!("illegal number syntax: \"{text}\""))
                })?;
                Arg::Number(p, n)
            }
            Tok::LParen => {
                if self.nesting >= MAX_NESTING {
                    return Err(self.err("template nesting too deep"));
                }
                self.nesting += 1;
                let pipe = self.pipeline("parenthesized pipeline", false);
                self.nesting -= 1;
                let pipe = pipe?;
                Arg::Pipe(Box::new(pipe))
            }
            Tok::Str(raw, val) => Arg::Str(p, raw, val),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

/// Go's `parse.NumberNode` classification.
fn parse_number(text: &str) -> Option<Number> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = |s: &str, r: u32| u64::from_str_radix(s, r).ok();
    let uint = if let Some(h) = lower.strip_prefix("0x") {
        radix_int(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        radix_int(b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit())
    {
        radix_int(&lower[1..], 8)
    } else {
        lower.parse::<u64>().ok()
    };
    let mut int = uint.and_then(|u| {
        if neg {
            if u <= i64::MAX as u64 + 1 {
                Some((u as i128).wrapping_neg() as i64)
            } else {
                None
            }
        } else {
            i64::try_from(u).ok()
        }
    });
    let is_hex = lower.starts_with("0x");
    let float = if let Some(i) = int {
        Some(i as f64)
    } else if is_hex {
        None
    } else {
        let f: Option<f64> = lower.parse::<f64>().ok().filter(|f| f.is_finite());
        f.map(|f| if neg { -f } else { f })
    };
    if int.is_none()
        && let Some(f) = float
        && f == (f as i64) as f64
        && f.abs() < 9.2e18
    {
        int = Some(f as i64);
    }
    if int.is_none() && float.is_none() {
        return None;
    }
    let is_float_literal = !is_hex && lower.contains(['.', 'e', 'p']);
    Some(Number {
        text: text.to_string(),
        int,
        float,
        is_float_literal,
        is_char: false,
    })
}

/// Names of every function used, for tests.
#[allow(dead_code)]
pub(crate) fn idents(nodes: &[Node]) -> HashSet<String> {
    fn pipe(p: &Pipe, out: &mut HashSet<String>) {
        for c in &p.cmds {
            for a in &c.args {
                match a {
                    Arg::Ident(_, n) => {
                        out.insert(n.clone());
                    }
                    Arg::Pipe(p) => pipe(p, out),
                    Arg::Chain(_, n, _) => {
                        if let Arg::Pipe(p) = n.as_ref() {
                            pipe(p, out)
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut out = HashSet::new();
    for n in nodes {
        match n {
            Node::Action(p) => pipe(p, &mut out),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                pipe(&b.pipe, &mut out);
                out.extend(idents(&b.list));
                if let Some(e) = &b.else_list {
                    out.extend(idents(e));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Result<Parsed, ParseError> {
        parse("t", src, &|n| matches!(n, "printf" | "len" | "include"))
    }

    #[test]
    fn structures_parse() {
        let r = p("{{ if .a }}x{{ else if .b }}y{{ else }}z{{ end }}{{ range $i, $v := .l }}{{ $v }}{{ break }}{{ end }}").unwrap();
        assert_eq!(r.body.len(), 2);
        let r = p("{{ define \"x\" }}a{{ end }}b").unwrap();
        assert_eq!(r.defines.len(), 1);
        assert_eq!(r.defines[0].0, "x");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = p("a\n{{ nope 1 }}").err().unwrap().to_string();
        assert_eq!(e, "template: t:2: function \"nope\" not defined");
        let e = p("{{ $x }}").err().unwrap().to_string();
        assert_eq!(e, "template: t:1: undefined variable \"$x\"");
        assert!(p("{{ end }}").is_err());
        assert!(p("{{ if . }}").is_err());
        assert!(p("{{ break }}").is_err());
        assert!(p("{{ }}").is_err());
    }

    #[test]
    fn field_chain_position_is_the_second_field() {
        let r = p("b: {{ .Values.m.x }}").unwrap();
        let Node::Action(pipe) = &r.body[1] else {
            panic!("not an action")
        };
        assert_eq!(pipe.cmds[0].args[0].pos().location(), "t:1:13");
    }

    #[test]
    fn numbers_classified() {
        let n = parse_number("0x1F").unwrap();
        assert_eq!(n.int, Some(31));
        assert!(!n.is_float_literal);
        let n = parse_number("1e3").unwrap();
        assert_eq!(n.int, Some(1000));
        assert!(n.is_float_literal);
        let n = parse_number("-2.5").unwrap();
        assert_eq!(n.float, Some(-2.5));
        assert_eq!(n.int, None);
    }
}
