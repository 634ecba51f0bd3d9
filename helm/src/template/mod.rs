//! Go's text/template: lexer, parser, execution and the built-in functions.

pub mod builtins;
pub mod exec;
pub(crate) mod lex;
pub mod nodes;
pub mod parse;

pub use exec::{Exec, ExecError, Func, FuncMap, Limits, NativeFn, Templates, Ty};
pub use parse::ParseError;
