//! contact-sync: keep Google Workspace users supplied with the contacts they need,
//! declared as YAML manifests in git.
//!
//! The pipeline, one module per stage: [`manifest`] (types and loading) →
//! [`validate`] (schema and semantic checks) → [`inventory`] (directory resolution
//! and reading actual state, one user at a time) → [`plan`] (the pure planner and
//! its renderings) → [`apply`] (executes a plan verbatim, under the writer
//! [`lease`] that keeps a second writer out). [`backend`] holds the
//! one trait both backends implement and the local backend; [`model`] the domain
//! types they share with the planner. [`diagnostic`] renders problems with their
//! `file:line:column`; [`yaml`] is the spanned parser underneath (and the writer of
//! the tenant file); [`fsutil`] replaces files atomically; [`cli`] is the thin command
//! line on top.

pub mod apply;
pub mod backend;
pub mod cli;
pub mod diagnostic;
pub mod directory;
pub mod emulator;
pub mod fsutil;
pub mod google_api;
pub mod inventory;
pub mod lease;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod text;
pub mod validate;
pub mod workspace;
pub mod yaml;
