//! Judgement: from the store's facts to what is wrong. Owns the convergence index that joins
//! tracked objects with their workloads and pods ([`converge`]), counters kept monotonic across
//! scrapes ([`counters`]), the verdict rules
//! ([`verdict`]) and the one consistent [`view::View`] that every render and report is built
//! from. Pure: it reads the store under its locks, takes `now` as an argument and never does
//! IO.

pub mod converge;
pub mod counters;
#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod shard_tests;
pub mod verdict;
pub mod view;

pub use self::{
    verdict::{Reason, Status, Verdict},
    view::{Locked, ObjView, View},
};
