//! stallwatch: a Prometheus exporter that catches Kubernetes operators and rollouts that
//! silently stop converging.
//!
//! Data flows one way: API events ([`watch`]) → extracted facts ([`facts`]) → [`store`] →
//! metrics rendered at scrape time ([`metrics`]), served over [`http`].

pub mod app;
#[doc(hidden)]
pub mod bench_support;
pub mod cli;
pub mod config;
pub mod converge;
pub mod diagnose;
pub mod error;
pub mod expo;
pub mod facts;
pub mod http;
pub mod image;
pub mod kinds;
pub mod landing;
pub mod metrics;
pub mod negotiate;
pub mod object;
pub mod path;
pub mod preset;
pub mod process;
pub mod series;
pub mod store;
pub mod verdict;
pub mod view;
pub mod watch;
