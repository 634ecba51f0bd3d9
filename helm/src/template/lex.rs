//! The lexer of Go's text/template: text, `{{`/`}}` actions with `{{-`/`-}}` trimming,
//! comments, strings, raw strings, character constants, numbers and keywords.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Field(String),
    Variable(String),
    Dot,
    Ident(String),
    Keyword(&'static str),
    Bool(bool),
    Nil,
    /// Quoted text as written, and its unquoted value.
    Str(String, String),
    /// A character constant as written, and its code point.
    Char(String, u32),
    Number(String),
    Pipe,
    LParen,
    RParen,
    Assign,
    Declare,
    Comma,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub line: usize,
}

/// A lexing error with the line it happened on.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    pub line: usize,
    pub msg: String,
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits a template into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let b = src.as_bytes();
    let mut toks: Vec<Token> = Vec::new();
    let mut pos = 0usize;
    let mut line = 1usize;
    let mut trim_next_text = false;
    loop {
        // Text up to the next "{{".
        let start = pos;
        let next = src[pos..].find("{{").map(|i| pos + i);
        let end = next.unwrap_or(b.len());
        let mut text_end = end;
        let left_trim =
            next.is_some() && b.len() >= end + 4 && b[end + 2] == b'-' && is_space(b[end + 3]);
        if left_trim {
            while text_end > start && is_space(b[text_end - 1]) {
                text_end -= 1;
            }
        }
        let mut text_start = start;
        if trim_next_text {
            while text_start < text_end && is_space(b[text_start]) {
                text_start += 1;
            }
            trim_next_text = false;
        }
        if text_start < text_end {
            toks.push(Token {
                tok: Tok::Text(src[text_start..text_end].to_string()),
                pos: text_start,
                line,
            });
        }
        line += src[start..end].matches('\n').count();
        let Some(open) = next else {
            toks.push(Token {
                tok: Tok::Eof,
                pos: b.len(),
                line,
            });
            return Ok(toks);
        };
        pos = open + 2;
        if left_trim {
            pos += 2;
        }
        // Comment: "{{/*" or "{{- /*".
        if src[pos..].starts_with("/*") {
            let Some(close) = src[pos + 2..].find("*/") else {
                return Err(LexError {
                    line,
                    msg: "unclosed comment".into(),
                });
            };
            let after = pos + 2 + close + 2;
            line += src[pos..after].matches('\n').count();
            pos = after;
            if src[pos..].starts_with(" -}}")
                || src[pos..].starts_with("\t-}}")
                || src[pos..].starts_with("\n-}}")
                || src[pos..].starts_with("\r-}}")
            {
                pos += 4;
                trim_next_text = true;
            } else if src[pos..].starts_with("}}") {
                pos += 2;
            } else {
                return Err(LexError {
                    line,
                    msg: "comment ends before closing delimiter".into(),
                });
            }
            continue;
        }
        toks.push(Token {
            tok: Tok::LeftDelim,
            pos: open,
            line,
        });
        // Inside the action.
        let mut paren = 0i32;
        loop {
            if pos >= b.len() {
                return Err(LexError {
                    line,
                    msg: "unclosed action".into(),
                });
            }
            // Right delimiter, possibly with a trim marker preceded by a space.
            if is_space(b[pos]) && src[pos + 1..].starts_with("-}}") {
                if paren > 0 {
                    return Err(LexError {
                        line,
                        msg: "unclosed left paren".into(),
                    });
                }
                line += usize::from(b[pos] == b'\n');
                toks.push(Token {
                    tok: Tok::RightDelim,
                    pos: pos + 1,
                    line,
                });
                pos += 4;
                trim_next_text = true;
                break;
            }
            if src[pos..].starts_with("}}") {
                if paren > 0 {
                    return Err(LexError {
                        line,
                        msg: "unclosed left paren".into(),
                    });
                }
                toks.push(Token {
                    tok: Tok::RightDelim,
                    pos,
                    line,
                });
                pos += 2;
                break;
            }
            let c = src[pos..].chars().next().unwrap_or('\0');
            let tstart = pos;
            let tline = line;
            let tok = match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while pos < b.len() && is_space(b[pos]) {
                        if src[pos..].starts_with(" -}}")
                            || src[pos..].starts_with("\t-}}")
                            || src[pos..].starts_with("\n-}}")
                            || src[pos..].starts_with("\r-}}")
                        {
                            break;
                        }
                        if b[pos] == b'\n' {
                            line += 1;
                        }
                        pos += 1;
                    }
                    if pos == tstart {
                        // Only the trim marker's space: let the loop see " -}}".
                        continue;
                    }
                    Tok::Space
                }
                '=' => {
                    pos += 1;
                    Tok::Assign
                }
                ':' => {
                    if b.get(pos + 1) != Some(&b'=') {
                        return Err(LexError {
                            line,
                            msg: "expected :=".into(),
                        });
                    }
                    pos += 2;
                    Tok::Declare
                }
                '|' => {
                    pos += 1;
                    Tok::Pipe
                }
                ',' => {
                    pos += 1;
                    Tok::Comma
                }
                '(' => {
                    pos += 1;
                    paren += 1;
                    Tok::LParen
                }
                ')' => {
                    pos += 1;
                    paren -= 1;
                    if paren < 0 {
                        return Err(LexError {
                            line,
                            msg: "unexpected right paren".into(),
                        });
                    }
                    Tok::RParen
                }
                '"' => {
                    let i = closing_quote(b, pos, b'"', line, "unterminated quoted string")?;
                    let raw = &src[pos..=i];
                    let val = unquote(raw).ok_or_else(|| LexError {
                        line,
                        msg: format!("invalid syntax: {raw}"),
                    })?;
                    pos = i + 1;
                    Tok::Str(raw.to_string(), val)
                }
                '`' => {
                    let Some(close) = src[pos + 1..].find('`') else {
                        return Err(LexError {
                            line,
                            msg: "unterminated raw quoted string".into(),
                        });
                    };
                    let raw = &src[pos..pos + 1 + close + 1];
                    line += raw.matches('\n').count();
                    pos += raw.len();
                    Tok::Str(raw.to_string(), raw[1..raw.len() - 1].to_string())
                }
                '\'' => {
                    let i = closing_quote(b, pos, b'\'', line, "unterminated character constant")?;
                    let raw = &src[pos..=i];
                    let inner = format!("\"{}\"", &raw[1..raw.len() - 1].replace("\\'", "'"));
                    let val = unquote(&inner)
                        .filter(|s| s.chars().count() == 1)
                        .ok_or_else(|| LexError {
                            line,
                            msg: format!("malformed character constant: {raw}"),
                        })?;
                    pos = i + 1;
                    Tok::Char(
                        raw.to_string(),
                        val.chars().next().map(|c| c as u32).unwrap_or(0),
                    )
                }
                '$' => {
                    let mut i = pos + 1;
                    while let Some(ch) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                        i += ch.len_utf8();
                    }
                    let name = src[pos..i].to_string();
                    pos = i;
                    Tok::Variable(name)
                }
                '.' => {
                    // A number like ".5", a field, or dot.
                    if b.get(pos + 1).is_some_and(|c| c.is_ascii_digit()) {
                        let (t, n) = lex_number(src, pos).map_err(|m| LexError { line, msg: m })?;
                        pos = n;
                        t
                    } else {
                        let mut i = pos + 1;
                        while let Some(ch) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                            i += ch.len_utf8();
                        }
                        if i == pos + 1 {
                            pos += 1;
                            Tok::Dot
                        } else {
                            let name = src[pos + 1..i].to_string();
                            pos = i;
                            Tok::Field(name)
                        }
                    }
                }
                '+' | '-' | '0'..='9' => {
                    let (t, n) = lex_number(src, pos).map_err(|m| LexError { line, msg: m })?;
                    pos = n;
                    t
                }
                c if is_alnum(c) => {
                    let mut i = pos;
                    while let Some(ch) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                        i += ch.len_utf8();
                    }
                    let word = &src[pos..i];
                    pos = i;
                    match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_string()),
                        },
                    }
                }
                c => {
                    return Err(LexError {
                        line,
                        msg: format!("unrecognized character in action: {}", go_char_repr(c)),
                    });
                }
            };
            // Go requires a terminator after words: space, delimiter, pipe, paren, ...
            if matches!(
                tok,
                Tok::Field(_)
                    | Tok::Variable(_)
                    | Tok::Ident(_)
                    | Tok::Keyword(_)
                    | Tok::Bool(_)
                    | Tok::Nil
                    | Tok::Dot
            ) {
                let next = src[pos..].chars().next().unwrap_or(' ');
                let ok = is_space(next as u8) && next.is_ascii()
                    || matches!(next, '.' | ',' | '|' | ':' | ')' | '(' | '=')
                    || src[pos..].starts_with("}}");
                if !(ok || matches!(tok, Tok::Dot) && next == '}') {
                    return Err(LexError {
                        line,
                        msg: format!("bad character {}", go_char_repr(next)),
                    });
                }
            }
            toks.push(Token {
                tok,
                pos: tstart,
                line: tline,
            });
        }
    }
}

/// Index of the quote (`"` or `'`) that closes the one at `open`, skipping
/// backslash escapes; a newline or the end first is `unterminated`.
fn closing_quote(
    b: &[u8],
    open: usize,
    quote: u8,
    line: usize,
    unterminated: &str,
) -> Result<usize, LexError> {
    let mut i = open + 1;
    loop {
        match b.get(i) {
            None | Some(b'\n') => {
                return Err(LexError {
                    line,
                    msg: unterminated.into(),
                });
            }
            Some(b'\\') => i += 2,
            Some(&c) if c == quote => return Ok(i),
            Some(_) => i += 1,
        }
    }
}

fn go_char_repr(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), String> {
    let b = src.as_bytes();
    let mut i = start;
    if matches!(b.get(i), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    let mut digits = "0123456789_";
    if b.get(i) == Some(&b'0') {
        match b.get(i + 1) {
            Some(b'x') | Some(b'X') => {
                i += 2;
                digits = "0123456789abcdefABCDEF_";
            }
            Some(b'o') | Some(b'O') => {
                i += 2;
                digits = "01234567_";
            }
            Some(b'b') | Some(b'B') => {
                i += 2;
                digits = "01_";
            }
            _ => {}
        }
    }
    while b.get(i).is_some_and(|c| digits.as_bytes().contains(c)) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| digits.as_bytes().contains(c)) {
            i += 1;
        }
    }
    if digits.len() == 11 && matches!(b.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    if digits.len() == 23 && matches!(b.get(i), Some(b'p') | Some(b'P')) {
        i += 1;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    // The next character must not be alphanumeric.
    if let Some(c) = src[i..].chars().next()
        && is_alnum(c)
    {
        let mut j = i;
        while let Some(ch) = src[j..]
            .chars()
            .next()
            .filter(|c| is_alnum(*c) || *c == '.')
        {
            j += ch.len_utf8();
        }
        return Err(format!("bad number syntax: \"{}\"", &src[start..j]));
    }
    if i == start || (i == start + 1 && matches!(b[start], b'+' | b'-')) {
        return Err(format!(
            "bad number syntax: \"{}\"",
            &src[start..i.max(start + 1)]
        ));
    }
    Ok((Tok::Number(src[start..i].to_string()), i))
}

/// Go's `strconv.Unquote` for a double-quoted string.
pub(crate) fn unquote(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next()?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => return None,
            'x' => {
                let h: String = (0..2).filter_map(|_| it.next()).collect();
                let v = u8::from_str_radix(&h, 16).ok()?;
                // A byte escape: only valid UTF-8 survives in our strings.
                out.push(char::from(v));
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let h: String = (0..n).filter_map(|_| it.next()).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + it.next()?.to_digit(8)?;
                }
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn trims_whitespace_around_markers() {
        assert_eq!(
            kinds("a  {{- .x -}}\n b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("x".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn negative_number_is_not_a_trim_marker() {
        assert_eq!(
            kinds("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_vanish_and_must_close_at_the_delimiter() {
        assert_eq!(
            kinds("a {{- /* x */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
        assert!(lex("{{/* x */ .}}").is_err());
        assert!(lex("{{/* x").is_err());
    }

    #[test]
    fn strings_chars_numbers() {
        assert_eq!(
            kinds(r#"{{"a\n" `r` 'x' 0x1F 1.5e3}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Str("\"a\\n\"".into(), "a\n".into()),
                Tok::Space,
                Tok::Str("`r`".into(), "r".into()),
                Tok::Space,
                Tok::Char("'x'".into(), 'x' as u32),
                Tok::Space,
                Tok::Number("0x1F".into()),
                Tok::Space,
                Tok::Number("1.5e3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
        assert!(lex("{{\"abc}}").is_err());
        assert!(lex("{{ 12ab }}").is_err());
    }
}
