//! Arguments of function calls: each argument evaluated for its parameter's
//! Go type, Go's conversion and nil rules, and the call itself.

use super::*;

impl Exec<'_> {
    /// Evaluates one argument for a parameter of type `ty` (None: untyped, as for a chain's receiver).
    pub(super) fn eval_arg(&mut self, dot: &Slot, ty: Option<Ty>, arg: &Arg) -> R<Value> {
        self.at(arg.pos());
        // Whether Go would hold the value as an interface{} (a map entry, a range element).
        let mut iface = false;
        let v = match arg {
            Arg::Dot(_) => {
                iface = dot.iface;
                dot.v.clone()
            }
            Arg::Nil(p) => {
                return match ty {
                    Some(t) if !t.can_be_nil() => Err(self.err_at(
                        p,
                        "nil".into(),
                        format!("cannot assign nil to {}", t.name()),
                    )),
                    _ => Ok(Value::Nil),
                };
            }
            Arg::Field(pos, names) => {
                let r =
                    self.eval_field_chain(dot, dot.clone(), pos, &arg.pos().ctx, names, &[], None)?;
                iface = r.iface;
                r.v
            }
            Arg::Variable(pos, name, names) => {
                let v = self.var(name);
                let r = if names.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, pos, &arg.pos().ctx, names, &[], None)?
                };
                iface = r.iface;
                r.v
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident(pos, name) => {
                let cmd = Command {
                    pos: pos.clone(),
                    args: vec![arg.clone()],
                };
                self.eval_function(dot, pos, name, &cmd, None)?
            }
            Arg::Chain(pos, node, names) => {
                let recv = self.eval_arg(dot, None, node)?;
                let r = self.eval_field_chain(
                    dot,
                    Slot::plain(recv),
                    pos,
                    &arg.pos().ctx,
                    names,
                    &[],
                    None,
                )?;
                iface = r.iface;
                r.v
            }
            // Literals are converted to the parameter's type.
            Arg::Bool(p, b) => {
                return match ty {
                    None | Some(Ty::Any) | Some(Ty::Bool) => Ok(Value::Bool(*b)),
                    Some(t) => Err(self.literal_mismatch(p, arg, t)),
                };
            }
            Arg::Str(p, _, s) => {
                return match ty {
                    None | Some(Ty::Any) | Some(Ty::Str) => Ok(Value::str(s.as_str())),
                    Some(t) => Err(self.literal_mismatch(p, arg, t)),
                };
            }
            Arg::Number(p, n) => {
                return match ty {
                    None | Some(Ty::Any) => self.ideal_constant(p, n),
                    Some(Ty::Int) | Some(Ty::Int64) => match n.int {
                        Some(i)
                            if !(n.is_float_literal
                                && n.float.is_some_and(|f| f.fract() != 0.0)) =>
                        {
                            Ok(if ty == Some(Ty::Int) {
                                Value::Int(i)
                            } else {
                                Value::Int64(i)
                            })
                        }
                        _ => Err(self.err_at(
                            p,
                            arg.to_string(),
                            format!("expected integer; found {arg}"),
                        )),
                    },
                    Some(Ty::Float) => match n.float {
                        Some(f) => Ok(Value::Float(f)),
                        None => Err(self.err_at(
                            p,
                            arg.to_string(),
                            format!("expected float; found {arg}"),
                        )),
                    },
                    Some(t) => Err(self.literal_mismatch(p, arg, t)),
                };
            }
        };
        self.last_arg_iface = iface && v.is_nil();
        match ty {
            None => Ok(v),
            Some(t) => self.validate(arg.pos(), &arg.pos().ctx, Slot { v, iface }, t),
        }
    }

    /// Whether argument `i` of the function being called is a nil Go holds as
    /// `interface{}` (a missing map key) rather than no value at all; Go's
    /// reflect-based built-ins word their errors differently for the two.
    pub fn arg_is_nil_interface(&self, i: usize) -> bool {
        self.arg_ifaces.get(i).copied().unwrap_or(false)
    }

    fn literal_mismatch(&self, p: &Pos, arg: &Arg, t: Ty) -> ExecError {
        let what = match t {
            Ty::Bool => "bool",
            Ty::Str => "string",
            Ty::Int | Ty::Int64 => "integer",
            Ty::Float => "float",
            _ => {
                return self.err_at(
                    p,
                    arg.to_string(),
                    format!("can't handle {arg} for arg of type {}", t.name()),
                );
            }
        };
        self.err_at(p, arg.to_string(), format!("expected {what}; found {arg}"))
    }

    /// Go's `validateType`: a computed value must be assignable to the parameter.
    fn validate(&self, pos: &Pos, ctx: &str, slot: Slot, t: Ty) -> R<Value> {
        let v = slot.v;
        let ok = match (&v, t) {
            (_, Ty::Any) => true,
            // A nil held as interface{} (from a map) is not assignable to a concrete type.
            (Value::Nil, t) if slot.iface => {
                return Err(self.err_at(
                    pos,
                    ctx.to_string(),
                    format!(
                        "wrong type for value; expected {}; got interface {{}}",
                        t.name()
                    ),
                ));
            }
            (Value::Nil, t) if t.can_be_nil() => true,
            (Value::Nil, t) => {
                return Err(self.err_at(
                    pos,
                    ctx.to_string(),
                    format!("invalid value; expected {}", t.name()),
                ));
            }
            (Value::String(_), Ty::Str)
            | (Value::Int(_), Ty::Int)
            | (Value::Int64(_), Ty::Int64)
            | (Value::Float(_), Ty::Float)
            | (Value::Bool(_), Ty::Bool)
            | (Value::List(_), Ty::List)
            | (Value::Map(_), Ty::Map) => true,
            (Value::Object(o), Ty::Map) => matches!(o.to_data(), Value::Map(_)),
            _ => false,
        };
        if !ok {
            return Err(self.err_at(
                pos,
                ctx.to_string(),
                format!(
                    "wrong type for value; expected {}; got {}",
                    t.name(),
                    v.type_name()
                ),
            ));
        }
        if let (Value::Object(o), Ty::Map) = (&v, t) {
            return Ok(o.to_data());
        }
        Ok(v)
    }

    pub(super) fn eval_function(
        &mut self,
        dot: &Slot,
        pos: &Pos,
        name: &str,
        cmd: &Command,
        final_: Option<Slot>,
    ) -> R<Value> {
        self.burn()?;
        self.at(pos);
        let ctx = cmd.pos.ctx.clone();
        let args = &cmd.args[1..];
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            if args.is_empty() && final_.is_none() {
                return Err(self.err_at(
                    pos,
                    ctx.to_string(),
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            for a in args {
                v = self.eval_arg(dot, Some(Ty::Any), a)?;
                if v.truthy() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f.v;
            }
            return Ok(v);
        }
        let Some(func) = self.funcs.get(name).copied() else {
            return Err(self.err_at(
                pos,
                ctx.to_string(),
                format!("{name:?} is not a defined function"),
            ));
        };
        let nparams = func.params.len();
        let nargs = args.len() + usize::from(final_.is_some());
        if func.variadic.is_some() {
            if nargs < nparams {
                return Err(self.err_at(
                    pos,
                    ctx.to_string(),
                    format!(
                        "wrong number of args for {name}: want at least {nparams} got {}",
                        args.len()
                    ),
                ));
            }
        } else if nargs != nparams {
            return Err(self.err_at(
                pos,
                ctx.to_string(),
                format!("wrong number of args for {name}: want {nparams} got {nargs}"),
            ));
        }
        let ty_of = |i: usize| -> Ty {
            if i < nparams {
                func.params[i]
            } else {
                func.variadic.unwrap_or(Ty::Any)
            }
        };
        let mut vals = Vec::with_capacity(nargs);
        let mut ifaces = Vec::with_capacity(nargs);
        for (i, a) in args.iter().enumerate() {
            vals.push(self.eval_arg(dot, Some(ty_of(i)), a)?);
            ifaces.push(self.last_arg_iface);
        }
        if let Some(f) = final_ {
            let t = ty_of(args.len());
            ifaces.push(f.iface && f.v.is_nil());
            vals.push(self.validate(pos, &ctx, f, t)?);
        }
        let saved = self.call_pos.replace(cmd.pos.clone());
        let saved_ifaces = std::mem::replace(&mut self.arg_ifaces, ifaces);
        let r = (func.f)(self, vals);
        self.arg_ifaces = saved_ifaces;
        self.call_pos = saved;
        if let Some(limit) = self.pending_limit.take() {
            return Err(limit);
        }
        r.map_err(|e| {
            self.at(&cmd.pos);
            self.err_at(pos, ctx.to_string(), format!("error calling {name}: {e}"))
        })
    }
}
