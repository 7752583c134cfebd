//! contact-sync: keep Google Workspace users supplied with the contacts they need,
//! declared as YAML manifests in git.
//!
//! The pipeline, one module per stage: [`manifest`] (types and loading) →
//! [`validate`] (schema and semantic checks) → [`input`] (the run's options, the
//! Workspace resolved, the planner's input) → [`directory`] (who is who: data
//! only) → [`plan`] (the pure planner that makes every decision, and its
//! renderings), fed by [`reader`] (the driver that reads what the planner asks
//! for, one user at a time: the users the syncs select and those the inventory in
//! [`model::inventory`] lists) → [`apply`] (executes a plan verbatim, under the
//! writer [`lease`] that keeps a second writer out, and decides what an apply
//! refuses and how it ended); [`saved`] is the file `plan --out` writes and
//! `apply PLAN.json` checks. [`backend`] holds the one trait both backends
//! implement, the local backend and [`backend::open`]; [`model`] the domain
//! types they share with the planner; [`google_api`] what the google backend
//! and the [`emulator`] share. [`diagnostic`] renders problems with their
//! `file:line:column`; [`text`] escapes what could act instead of being shown;
//! [`yaml`] is the spanned parser underneath (and the writer of the tenant
//! file); [`fsutil`] replaces files atomically; [`retry`] configures every
//! backoff; [`cli`] is the thin command line on top.

pub mod apply;
pub mod backend;
pub mod cache;
pub mod cli;
pub mod diagnostic;
pub mod directory;
pub mod emulator;
pub mod fix;
pub mod fsutil;
pub mod google_api;
pub mod input;
pub mod lease;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod reader;
pub mod reconcile;
pub mod retry;
pub mod saved;
pub mod text;
pub mod validate;
pub mod yaml;
