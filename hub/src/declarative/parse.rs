//! Reading text: YAML documents (or a JSON array) into raw documents with
//! the line of every field, before any value is checked.

use super::documents::{Origin, Problem, Sourced};
use super::validate::validate;
use serde::Deserialize;
use serde_saphyr::Spanned;

// ----- what files hold, before validation -----

pub(super) type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDocument {
    pub(super) api_version: Field<String>,
    pub(super) kind: Field<String>,
    pub(super) metadata: Option<Spanned<RawMetadata>>,
    pub(super) spec: Option<Spanned<RawSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetadata {
    pub(super) name: Field<String>,
}

/// Every kind's spec fields; which ones a kind may use is checked after.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpec {
    pub(super) url: Field<String>,
    /// `git` or `helm` (a Repo's `type`).
    #[serde(rename = "type")]
    pub(super) repo_type: Field<String>,
    pub(super) branch: Field<String>,
    pub(super) interval: Field<String>,
    pub(super) username: Field<String>,
    pub(super) password_file: Field<String>,
    pub(super) ca_file: Field<String>,
    pub(super) plain_http: Field<bool>,
    pub(super) webhook_secret_file: Field<String>,
    pub(super) selector: Field<String>,
    pub(super) repo: Field<String>,
    pub(super) path: Field<String>,
    pub(super) revision: Field<String>,
    pub(super) chart: Field<String>,
    pub(super) chart_version: Field<String>,
    pub(super) target: Option<Spanned<RawTarget>>,
    pub(super) namespace: Field<String>,
    pub(super) renderer: Field<String>,
    pub(super) plugin_command: Field<String>,
    pub(super) helm: Field<super::documents::HelmSpec>,
    pub(super) directory: Field<crate::render::DirectorySettings>,
    pub(super) manual: Field<bool>,
    pub(super) prune: Field<bool>,
    pub(super) self_heal: Field<bool>,
    pub(super) adopt: Field<bool>,
    pub(super) prune_namespaces: Field<bool>,
    pub(super) prune_crds: Field<bool>,
    pub(super) force_conflicts: Field<bool>,
    pub(super) ignore_differences: Field<Vec<crate::store::IgnoreDifference>>,
    pub(super) create_namespace: Field<bool>,
    pub(super) prune_last: Field<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) group: Field<String>,
    pub(super) selector: Field<String>,
}

impl RawSpec {
    /// The fields present, with their lines.
    pub(super) fn present(&self) -> Vec<(&'static str, usize)> {
        fn at<T>(f: &Option<Spanned<T>>) -> Option<usize> {
            f.as_ref().map(|s| line_of(&s.referenced))
        }
        [
            ("url", at(&self.url)),
            ("type", at(&self.repo_type)),
            ("branch", at(&self.branch)),
            ("interval", at(&self.interval)),
            ("username", at(&self.username)),
            ("passwordFile", at(&self.password_file)),
            ("caFile", at(&self.ca_file)),
            ("plainHttp", at(&self.plain_http)),
            ("webhookSecretFile", at(&self.webhook_secret_file)),
            ("selector", at(&self.selector)),
            ("repo", at(&self.repo)),
            ("path", at(&self.path)),
            ("revision", at(&self.revision)),
            ("chart", at(&self.chart)),
            ("chartVersion", at(&self.chart_version)),
            ("target", at(&self.target)),
            ("namespace", at(&self.namespace)),
            ("renderer", at(&self.renderer)),
            ("pluginCommand", at(&self.plugin_command)),
            ("helm", at(&self.helm)),
            ("directory", at(&self.directory)),
            ("manual", at(&self.manual)),
            ("prune", at(&self.prune)),
            ("selfHeal", at(&self.self_heal)),
            ("adopt", at(&self.adopt)),
            ("pruneNamespaces", at(&self.prune_namespaces)),
            ("pruneCrds", at(&self.prune_crds)),
            ("forceConflicts", at(&self.force_conflicts)),
            ("ignoreDifferences", at(&self.ignore_differences)),
            ("createNamespace", at(&self.create_namespace)),
            ("pruneLast", at(&self.prune_last)),
        ]
        .into_iter()
        .filter_map(|(name, line)| line.map(|l| (name, l)))
        .collect()
    }
}

pub(super) fn line_of(location: &serde_saphyr::Location) -> usize {
    usize::try_from(location.line()).unwrap_or(usize::MAX)
}

/// Lines (from 1) where documents start: a `---` marker at the start of a
/// line begins a new document, and content before the first marker is a
/// document of its own.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut content_seen = false;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("--- #");
        if is_marker {
            starts.push(i + 1);
            content_seen = true;
        } else if !content_seen {
            let trimmed = line.trim();
            if !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%')) {
                starts.push(1);
                content_seen = true;
            }
        }
    }
    if starts.is_empty() {
        starts.push(1);
    }
    starts
}

/// Which document (from 1) holds `line`.
fn document_at(starts: &[usize], line: usize) -> usize {
    starts.iter().filter(|&&s| s <= line).count().max(1)
}

/// Parse one file's documents (YAML, several separated by `---`, or a JSON
/// array as `export -o json` prints) and check every value. Returns what
/// is valid and every problem found; the caller applies nothing if there is
/// any problem.
pub fn parse(file: &str, text: &str) -> (Vec<Sourced>, Vec<Problem>) {
    let starts = document_starts(text);
    let is_array = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('['));
    let first = match parse_text(file, text, &starts, is_array) {
        Ok(parsed) => return parsed,
        Err(problem) => problem,
    };
    if is_array || starts.len() < 2 {
        return (Vec::new(), vec![first]);
    }
    // The parser stops at the first malformed document; parse each one on
    // its own so that every document's problems are reported at once. A
    // document is padded with the blank lines before it, so its lines stay
    // the file's.
    let lines: Vec<&str> = text.lines().collect();
    let (mut documents, mut problems) = (Vec::new(), Vec::new());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(lines.len(), |&next| next - 1);
        let chunk = "\n".repeat(start - 1) + &lines[start - 1..end].join("\n");
        match parse_text(file, &chunk, &starts, false) {
            Ok((found, wrong)) => {
                documents.extend(found);
                problems.extend(wrong);
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        // Split apart, the documents parse: keep the parser's own word.
        problems.push(first);
    }
    (documents, problems)
}

/// Parse `text` whole: the parser's first error, or every document checked.
fn parse_text(
    file: &str,
    text: &str,
    starts: &[usize],
    is_array: bool,
) -> Result<(Vec<Sourced>, Vec<Problem>), Problem> {
    let origin = |line: usize| Origin {
        file: file.to_owned(),
        document: document_at(starts, line),
        line,
    };
    let raw: Result<Vec<Spanned<RawDocument>>, _> = if is_array {
        serde_saphyr::from_str(text)
    } else {
        serde_saphyr::from_multiple(text)
    };
    let raw = raw.map_err(|error| {
        let line = error.location().map_or(1, |l| line_of(&l));
        Problem {
            origin: origin(line),
            message: error_message(&error),
        }
    })?;
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for (index, doc) in raw.into_iter().enumerate() {
        let line = line_of(&doc.referenced);
        let mut origin = origin(line);
        if is_array {
            // One file, one JSON array: the item number is the document.
            origin.document = index + 1;
        }
        match validate(doc.value, &origin) {
            Ok(sourced) => documents.push(sourced),
            Err(mut found) => {
                for problem in &mut found {
                    if is_array {
                        problem.origin.document = origin.document;
                    }
                }
                problems.extend(found);
            }
        }
    }
    Ok((documents, problems))
}

/// serde-saphyr's message without its location and snippet, which the
/// caller reports in its own words.
fn error_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    // "… at line 3, column 5" is said by the caller already.
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.trim().to_owned()
}
