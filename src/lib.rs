//! contact-sync: keep Google Workspace users supplied with the contacts they need,
//! declared as YAML manifests in git.
//!
//! The pipeline, one module per stage: [`manifest`] (types and loading) →
//! [`validate`] (schema and semantic checks). [`diagnostic`] renders problems with
//! their `file:line:column`; [`yaml`] is the spanned parser underneath.

pub mod cli;
pub mod diagnostic;
pub mod manifest;
pub mod validate;
pub mod yaml;
