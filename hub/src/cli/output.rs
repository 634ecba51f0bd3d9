//! Output formats shared by every list and show command: kubectl-style
//! tables, JSON and YAML.

use anstyle::Style;
use serde::Serialize;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// Print a value as JSON or YAML.
pub(crate) fn print_one<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json | OutputFormat::Table => {
            println!("{}", serde_json::to_string_pretty(value)?);
        }
        OutputFormat::Yaml => print!("{}", serde_saphyr::to_string(value)?),
    }
    Ok(())
}

/// Print rows under headers in aligned columns separated by three spaces, as kubectl does.
pub(crate) fn print_table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    print!("{}", format_table(headers, rows, &|_, _| Style::new()));
}

/// The table `print_table` prints, with each cell styled by `style(column,
/// text)`. Widths are measured on the plain text, so styles never break
/// the alignment; write the result through `anstream`, which drops the
/// styles where colour is not wanted.
pub(crate) fn format_table(
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    style: &dyn Fn(usize, &str) -> Style,
) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>, styled: bool| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let last = i + 1 == cells.len();
            let pad = if last {
                String::new()
            } else {
                " ".repeat(w.saturating_sub(cell.chars().count()) + 3)
            };
            let s = if styled { style(i, cell) } else { Style::new() };
            text.push_str(&format!("{s}{cell}{s:#}{pad}"));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), false);
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), true);
    }
    out
}

/// "12s ago", "5m ago", "3h ago", "2d ago" for an RFC 3339 time.
pub(crate) fn age(rfc3339: &str) -> String {
    let Ok(then) = humantime::parse_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let elapsed = SystemTime::now()
        .duration_since(then)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let text = match elapsed {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    format!("{text} ago")
}
