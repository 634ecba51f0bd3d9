//! Execution of parsed templates against data, with Go's rules: field chains,
//! pipelines, variables, truthiness, typed function arguments and the
//! "missingkey=zero" behaviour Helm configures. Bounded by fuel, output size and depth.

use std::collections::HashMap;
use std::rc::Rc;

use super::parse::{Arg, Branch, Command, Node, Pipe, Pos};

mod args;
mod funcs;
mod templates;

use crate::value::Value;
pub use funcs::{Func, FuncMap, NativeFn, Ty};
pub use templates::{Templates, Tree};

/// Limits on one render.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Steps (nodes walked and functions called) before execution stops.
    pub fuel: u64,
    /// Bytes of output, over every template and include together.
    pub max_output: usize,
    /// Nesting of `template`/`include`/`tpl` calls.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel: 50_000_000,
            max_output: 64 << 20,
            max_depth: 150,
        }
    }
}

/// An execution failure.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecError {
    /// Go's `template: LOC: executing "NAME" at <CTX>: MSG`.
    At {
        location: String,
        name: String,
        context: String,
        msg: String,
    },
    /// An error without a node (e.g. no such template at the top).
    Plain(String),
    OutOfFuel,
    OutputTooLarge(usize),
    TooDeep(usize),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::At {
                location,
                name,
                context,
                msg,
            } => {
                write!(
                    f,
                    "template: {location}: executing \"{name}\" at <{context}>: {msg}"
                )
            }
            ExecError::Plain(m) => f.write_str(m),
            ExecError::OutOfFuel => f.write_str("template execution exceeded its step budget"),
            ExecError::OutputTooLarge(n) => write!(f, "template output exceeded {n} bytes"),
            ExecError::TooDeep(n) => write!(f, "template calls nested deeper than {n}"),
        }
    }
}

impl ExecError {
    /// Whether this is a resource limit (these propagate unchanged through function calls).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            ExecError::OutOfFuel | ExecError::OutputTooLarge(_) | ExecError::TooDeep(_)
        )
    }
}

type R<T> = Result<T, ExecError>;

/// Stack left before nested execution continues on a new heap-allocated segment.
const STACK_RED_ZONE: usize = 128 * 1024;
/// Size of each such segment.
const STACK_GROWTH: usize = 2 * 1024 * 1024;

/// A value with whether Go would see it as an `interface{}` (map entries and
/// range elements), which changes field-access errors on it.
#[derive(Clone)]
struct Slot {
    v: Value,
    iface: bool,
}

impl Slot {
    fn plain(v: Value) -> Slot {
        Slot { v, iface: false }
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// One execution: the template set, functions, variables and budgets.
pub struct Exec<'a> {
    templates: &'a Templates,
    /// Templates defined by `tpl` text, visible while it runs.
    overlays: Vec<Templates>,
    funcs: &'a FuncMap,
    vars: Vec<(Rc<str>, Slot)>,
    fuel: u64,
    output: usize,
    depth: usize,
    limits: Limits,
    /// Name of the template executing now (for errors).
    name: Rc<str>,
    /// Position of the function call being made (for deterministic randomness).
    call_pos: Option<Pos>,
    /// The node evaluated last (Go's `state.node`), where errors are reported.
    cur: Option<Pos>,
    /// The name "$", shared by every template call.
    dollar: Rc<str>,
    /// Whether the last evaluated argument was a nil held as interface{}.
    last_arg_iface: bool,
    /// The same for each argument of the call in progress.
    arg_ifaces: Vec<bool>,
    /// A limit hit inside a nested execution, re-raised after the function returns.
    pending_limit: Option<ExecError>,
    /// How often each call site ran (deterministic random functions use it).
    pub call_counts: HashMap<String, u64>,
    /// Counts of live `include` calls per template name.
    pub include_counts: HashMap<String, usize>,
    /// Caller's data for functions (Helm's seed and context).
    pub host: &'a dyn std::any::Any,
}

impl<'a> Exec<'a> {
    pub fn new(
        templates: &'a Templates,
        funcs: &'a FuncMap,
        limits: Limits,
        host: &'a dyn std::any::Any,
    ) -> Exec<'a> {
        Exec {
            templates,
            overlays: Vec::new(),
            funcs,
            vars: Vec::new(),
            fuel: limits.fuel,
            output: 0,
            depth: 0,
            limits,
            name: "".into(),
            call_pos: None,
            pending_limit: None,
            cur: None,
            dollar: "$".into(),
            last_arg_iface: false,
            arg_ifaces: Vec::new(),
            call_counts: HashMap::new(),
            include_counts: HashMap::new(),
            host,
        }
    }

    /// The position of the function call in progress: `file:line:col` and the template name.
    pub fn call_site(&self) -> String {
        match &self.call_pos {
            Some(p) => format!("{}@{}", p.location(), self.name),
            None => self.name.to_string(),
        }
    }

    /// The template executing now.
    pub fn current_name(&self) -> &str {
        &self.name
    }

    fn lookup(&self, name: &str) -> Option<Rc<Tree>> {
        for o in self.overlays.iter().rev() {
            if let Some(t) = o.get(name) {
                return Some(t);
            }
        }
        self.templates.get(name)
    }

    /// Whether a template of that name exists.
    pub fn has_template(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// Executes the named template with `data` as dot and `$` (Go's `ExecuteTemplate`).
    pub fn execute(&mut self, name: &str, data: Value) -> R<String> {
        let Some(tree) = self.lookup(name) else {
            return Err(ExecError::Plain(format!(
                "template: no template {name:?} associated with template {:?}",
                "gotpl"
            )));
        };
        self.run_tree(name, &tree, Slot::plain(data))
    }

    fn run_tree(&mut self, name: &str, tree: &Tree, dot: Slot) -> R<String> {
        if self.depth >= self.limits.max_depth {
            return Err(ExecError::TooDeep(self.limits.max_depth));
        }
        self.depth += 1;
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![(self.dollar.clone(), dot.clone())]);
        let saved_name = std::mem::replace(
            &mut self.name,
            if &*tree.name == name {
                tree.name.clone()
            } else {
                name.into()
            },
        );
        let saved_cur = self.cur.take();
        let mut out = String::new();
        let r = stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            self.walk_list(&dot, &tree.nodes, &mut out)
        });
        self.vars = saved_vars;
        self.name = saved_name;
        self.cur = saved_cur;
        self.depth -= 1;
        r.map(|_| out)
    }

    /// Parses `src` (defines included, visible only during this call) as template
    /// `name` and executes it: Helm's `tpl`.
    pub fn execute_text(&mut self, name: &str, src: &str, data: Value) -> Result<String, String> {
        let mut overlay = Templates::default();
        overlay
            .add(name, src, self.funcs)
            .map_err(|e| e.to_string())?;
        let tree = overlay
            .get(name)
            .ok_or("internal error: tpl tree missing")?;
        self.overlays.push(overlay);
        let r = self.run_tree(name, &tree, Slot::plain(data));
        self.overlays.pop();
        r.map_err(|e| self.wrap_nested(e))
    }

    /// A nested execution's error, carried through a function call as text;
    /// limit errors are remembered so they surface unchanged.
    fn wrap_nested(&mut self, e: ExecError) -> String {
        if e.is_limit() {
            self.pending_limit = Some(e.clone());
        }
        e.to_string()
    }

    /// `include`: executes a named template into a string.
    pub fn include(&mut self, name: &str, data: Value) -> Result<String, String> {
        let Some(tree) = self.lookup(name) else {
            return Err(format!(
                "template: no template {name:?} associated with template {:?}",
                "gotpl"
            ));
        };
        let r = self.run_tree(name, &tree, Slot::plain(data));
        r.map_err(|e| self.wrap_nested(e))
    }

    /// Charges a function's own work to the step budget (key generation and
    /// password hashing cost far more than one step); past the budget, the
    /// execution stops with the limit error once the function returns.
    pub fn charge(&mut self, steps: u64) -> Result<(), String> {
        if self.fuel < steps {
            self.fuel = 0;
            self.pending_limit = Some(ExecError::OutOfFuel);
            return Err(ExecError::OutOfFuel.to_string());
        }
        self.fuel -= steps;
        Ok(())
    }

    fn burn(&mut self) -> R<()> {
        if self.fuel == 0 {
            return Err(ExecError::OutOfFuel);
        }
        self.fuel -= 1;
        Ok(())
    }

    fn write(&mut self, out: &mut String, s: &str) -> R<()> {
        self.output += s.len();
        if self.output > self.limits.max_output {
            return Err(ExecError::OutputTooLarge(self.limits.max_output));
        }
        out.push_str(s);
        Ok(())
    }

    /// Go's `s.at(node)`: errors report the node evaluated last.
    fn at(&mut self, pos: &Pos) {
        self.cur = Some(pos.clone());
    }

    /// An error at the current node (Go's `s.errorf`); `pos`/`context` are the
    /// fallback before any node was visited.
    fn err_at(&self, pos: &Pos, context: String, msg: impl Into<String>) -> ExecError {
        let (location, context) = match &self.cur {
            Some(c) => (c.location(), c.ctx.to_string()),
            None => (pos.location(), context),
        };
        ExecError::At {
            location,
            name: self.name.to_string(),
            context,
            msg: msg.into(),
        }
    }

    fn walk_list(&mut self, dot: &Slot, nodes: &[Node], out: &mut String) -> R<Flow> {
        for n in nodes {
            match self.walk(dot, n, out)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Slot, node: &Node, out: &mut String) -> R<Flow> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            self.walk_node(dot, node, out)
        })
    }

    fn walk_node(&mut self, dot: &Slot, node: &Node, out: &mut String) -> R<Flow> {
        self.burn()?;
        match node {
            Node::Text(t) => self.write(out, t)?,
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let s = match &v {
                        Value::Nil => "<no value>".to_string(),
                        Value::Object(o) => o.display(),
                        v => crate::gofmt::sprint_value(v),
                    };
                    self.write(out, &s)?;
                }
            }
            Node::If(b) | Node::With(b) => {
                let is_with = matches!(node, Node::With(_));
                let mark = self.vars.len();
                let r = (|| {
                    let v = self.eval_pipeline(dot, &b.pipe)?;
                    if v.truthy() {
                        let d = if is_with { Slot::plain(v) } else { dot.clone() };
                        self.walk_list(&d, &b.list, out)
                    } else if let Some(e) = &b.else_list {
                        self.walk_list(dot, e, out)
                    } else {
                        Ok(Flow::Normal)
                    }
                })();
                self.vars.truncate(mark);
                return r;
            }
            Node::Range(b) => {
                let mark = self.vars.len();
                let r = self.walk_range(dot, b, out);
                self.vars.truncate(mark);
                r?;
            }
            Node::Template { pos, name, pipe } => {
                self.at(pos);
                let Some(tree) = self.lookup(name) else {
                    return Err(self.err_at(
                        pos,
                        format!("template {name:?}"),
                        format!("template {name:?} not defined"),
                    ));
                };
                let data = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let s = self.run_tree(name, &tree, Slot::plain(data))?;
                self.write(out, &s)?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Slot, b: &Branch, out: &mut String) -> R<()> {
        self.at(&b.pos);
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let top = self.vars.len();
        let ndecl = b.pipe.decl.len();
        let mut iterate = |this: &mut Self, key: Value, elem: Slot| -> R<Flow> {
            if ndecl == 1 {
                this.vars[top - 1].1 = elem.clone();
            } else if ndecl == 2 {
                this.vars[top - 2].1 = Slot::plain(key);
                this.vars[top - 1].1 = elem.clone();
            }
            let mark = this.vars.len();
            let r = this.walk_list(&elem, &b.list, out);
            this.vars.truncate(mark);
            r
        };
        let mut any = false;
        match &val {
            Value::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    any = true;
                    if let Flow::Break = iterate(
                        self,
                        Value::Int(i as i64),
                        Slot {
                            v: e.clone(),
                            iface: true,
                        },
                    )? {
                        break;
                    }
                }
            }
            Value::Bytes(bytes) => {
                for (i, e) in bytes.iter().enumerate() {
                    any = true;
                    if let Flow::Break = iterate(
                        self,
                        Value::Int(i as i64),
                        Slot::plain(Value::Int(*e as i64)),
                    )? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                let entries: Vec<(String, Value)> = m
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, e) in entries {
                    any = true;
                    if let Flow::Break = iterate(self, Value::str(k), Slot { v: e, iface: true })? {
                        break;
                    }
                }
            }
            Value::Int(n) | Value::Int64(n) => {
                if ndecl > 1 {
                    return Err(self.err_at(
                        &b.pos,
                        format!("range {}", b.pipe),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                let mk = |i: i64| {
                    if matches!(val, Value::Int(_)) {
                        Value::Int(i)
                    } else {
                        Value::Int64(i)
                    }
                };
                for i in 0..(*n).max(0) {
                    any = true;
                    if let Flow::Break = iterate(self, mk(i), Slot::plain(mk(i)))? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            Value::Object(o) => match o.to_data() {
                Value::Map(m) => {
                    let entries: Vec<(String, Value)> = m
                        .borrow()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    for (k, e) in entries {
                        any = true;
                        if let Flow::Break =
                            iterate(self, Value::str(k), Slot { v: e, iface: true })?
                        {
                            break;
                        }
                    }
                }
                _ => {
                    return Err(self.err_at(
                        &b.pos,
                        format!("range {}", b.pipe),
                        format!(
                            "range can't iterate over {}",
                            crate::gofmt::sprint_value(&val)
                        ),
                    ));
                }
            },
            v => {
                return Err(self.err_at(
                    &b.pos,
                    format!("range {}", b.pipe),
                    format!("range can't iterate over {}", crate::gofmt::sprint_value(v)),
                ));
            }
        }
        if !any && let Some(e) = &b.else_list {
            self.walk_list(dot, e, out)?;
        }
        Ok(())
    }

    fn eval_pipeline(&mut self, dot: &Slot, pipe: &Pipe) -> R<Value> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            self.eval_pipeline_inner(dot, pipe)
        })
    }

    fn eval_pipeline_inner(&mut self, dot: &Slot, pipe: &Pipe) -> R<Value> {
        self.at(&pipe.pos);
        let mut value: Option<Slot> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go unwraps interface{} results between commands: a piped value is never one.
            value = Some(Slot::plain(v.v));
        }
        let v = value.map(|s| s.v).unwrap_or_default();
        for d in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == d) {
                    slot.1 = Slot::plain(v.clone());
                }
            } else {
                self.vars.push((d.clone(), Slot::plain(v.clone())));
            }
        }
        Ok(v)
    }

    fn not_a_function(&self, cmd: &Command, final_: &Option<Slot>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            let a = &cmd.args[0];
            return Err(self.err_at(
                a.pos(),
                a.to_string(),
                format!("can't give argument to non-function {a}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Slot, cmd: &Command, final_: Option<Slot>) -> R<Slot> {
        let first = &cmd.args[0];
        if matches!(first, Arg::Field(..) | Arg::Chain(..) | Arg::Variable(..)) {
            self.at(first.pos());
        }
        match first {
            Arg::Field(pos, names) => {
                return self.eval_field_chain(
                    dot,
                    dot.clone(),
                    pos,
                    &first.pos().ctx,
                    names,
                    &cmd.args,
                    final_,
                );
            }
            Arg::Chain(pos, node, names) => {
                if matches!(node.as_ref(), Arg::Nil(_)) {
                    return Err(self.err_at(
                        pos,
                        first.to_string(),
                        format!("indirection through explicit nil in {first}"),
                    ));
                }
                let recv = self.eval_arg(dot, None, node)?;
                return self.eval_field_chain(
                    dot,
                    Slot::plain(recv),
                    pos,
                    &first.pos().ctx,
                    names,
                    &cmd.args,
                    final_,
                );
            }
            Arg::Ident(pos, name) => {
                return self
                    .eval_function(dot, pos, name, cmd, final_)
                    .map(Slot::plain);
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                return self.eval_pipeline(dot, p).map(Slot::plain);
            }
            Arg::Variable(pos, name, names) => {
                let v = self.var(name);
                if names.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                return self.eval_field_chain(
                    dot,
                    v,
                    pos,
                    &first.pos().ctx,
                    names,
                    &cmd.args,
                    final_,
                );
            }
            _ => {}
        }
        self.at(first.pos());
        self.not_a_function(cmd, &final_)?;
        Ok(Slot::plain(match first {
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Dot(_) => dot.v.clone(),
            Arg::Nil(p) => return Err(self.err_at(p, "nil".into(), "nil is not a command")),
            Arg::Number(p, n) => self.ideal_constant(p, n)?,
            Arg::Str(_, _, s) => Value::str(s.as_str()),
            _ => Value::Nil,
        }))
    }

    fn ideal_constant(&mut self, pos: &Pos, n: &super::parse::Number) -> R<Value> {
        self.at(pos);
        if n.is_float_literal && !n.is_char {
            return Ok(Value::Float(n.float.unwrap_or(0.0)));
        }
        match n.int {
            Some(i) => Ok(Value::Int(i)),
            None => match n.float {
                Some(f) if !n.text.contains("0x") => Ok(Value::Float(f)),
                _ => Err(self.err_at(pos, n.text.clone(), format!("{} overflows int", n.text))),
            },
        }
    }

    fn var(&self, name: &str) -> Slot {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Slot::plain(Value::Nil))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Slot,
        mut recv: Slot,
        pos: &Pos,
        ctx: &str,
        names: &[String],
        args: &[Arg],
        final_: Option<Slot>,
    ) -> R<Slot> {
        let n = names.len();
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == n;
            recv = if last {
                self.eval_field(dot, name, pos, ctx, args, final_.clone(), recv)?
            } else {
                self.eval_field(dot, name, pos, ctx, &[], None, recv)?
            };
        }
        Ok(recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Slot,
        name: &str,
        pos: &Pos,
        ctx: &str,
        args: &[Arg],
        final_: Option<Slot>,
        recv: Slot,
    ) -> R<Slot> {
        let has_args = args.len() > 1 || final_.is_some();
        match &recv.v {
            Value::Nil => {
                if recv.iface {
                    return Err(self.err_at(
                        pos,
                        ctx.to_string(),
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ));
                }
                Ok(Slot::plain(Value::Nil))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.err_at(
                        pos,
                        ctx.to_string(),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                let v = m.borrow().get(name).cloned().unwrap_or(Value::Nil);
                Ok(Slot { v, iface: true })
            }
            Value::Object(o) => {
                let o = o.clone();
                if o.has_method(name) {
                    let mut vals = Vec::new();
                    for a in args.iter().skip(1) {
                        vals.push(self.eval_arg(dot, Some(Ty::Any), a)?);
                    }
                    if let Some(f) = final_ {
                        vals.push(f.v);
                    }
                    self.burn()?;
                    return match o.call(name, &vals) {
                        Some(Ok(v)) => Ok(Slot::plain(v)),
                        Some(Err(e)) => {
                            self.at(pos);
                            Err(self.err_at(
                                pos,
                                ctx.to_string(),
                                format!("error calling {name}: {e}"),
                            ))
                        }
                        None => Err(self.err_at(
                            pos,
                            ctx.to_string(),
                            format!("can't evaluate field {name} in type {}", o.type_name()),
                        )),
                    };
                }
                match o.field(name) {
                    Some(v) => {
                        if has_args {
                            return Err(self.err_at(
                                pos,
                                ctx.to_string(),
                                format!("{name} has arguments but cannot be invoked as function"),
                            ));
                        }
                        Ok(Slot::plain(v))
                    }
                    None => Err(self.err_at(
                        pos,
                        ctx.to_string(),
                        format!("can't evaluate field {name} in type {}", o.type_name()),
                    )),
                }
            }
            v => {
                let ty = if recv.iface {
                    "interface {}"
                } else {
                    v.type_name()
                };
                Err(self.err_at(
                    pos,
                    ctx.to_string(),
                    format!("can't evaluate field {name} in type {ty}"),
                ))
            }
        }
    }
}
