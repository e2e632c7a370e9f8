//! stallwatch: a Prometheus exporter that catches Kubernetes operators and rollouts that
//! silently stop converging.
//!
//! Data flows one way, and the modules are declared in that order; each imports only modules
//! declared above it (checked by `tests/layout`):
//!
//! API events ([`watch`]) → facts ([`ingest`]) → [`store`] → judgement ([`judge`]) →
//! exposition ([`expose`]) → HTTP ([`server`]) and the one-shot report ([`diagnose`]).
//!
//! [`build`], [`clock`], [`error`], [`model`] and [`config`] are the vocabulary everything shares;
//! [`cli`] is the command line the thin binary parses and [`app`] wires a running exporter.

// The shared vocabulary: no IO.
pub mod build;
pub mod clock;
pub mod error;
pub mod model;
// The validated configuration.
pub mod config;
// Pure: API bytes → facts → per-watch state.
pub mod ingest;
pub mod store;
// The only module that talks to the API server.
pub mod watch;
// Pure: facts → verdicts.
pub mod judge;
// Verdicts → exposition.
pub mod expose;
// HTTP.
pub mod server;
// The command line and what it runs.
pub mod cli;
// The one-shot report.
pub mod diagnose;
// Wiring.
pub mod app;
