//! Declarative configuration: `apiVersion: switchyard.dev/v1` documents of
//! kind Repo, App and ClusterGroup, as `switchyard apply` reads them and
//! `switchyard export` writes them.
//!
//! Everything here is pure: parsing with file, document and line for every
//! problem, validation of values, and a canonical form of each spec so that
//! "unchanged" is plain equality between what a file asks for and what the
//! hub has. The command line does the I/O around it.
//!
//! By stage: `documents` (the kinds, canonical specs and where each came
//! from), `parse` (YAML or JSON text to raw documents), `validate` (raw
//! documents to canonical specs, and references between them), `convert`
//! (between the specs and the admin API's views and requests).

pub mod argocd;
mod convert;
mod documents;
mod parse;
mod validate;

pub use documents::{
    API_VERSION, AppSpec, Document, GroupSpec, Kind, Metadata, Origin, Problem, RepoSpec, Sourced,
    Spec, Target,
};
pub use parse::parse;
pub use validate::check_references;

#[cfg(test)]
mod tests;
