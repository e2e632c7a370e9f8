//! Ingest: from API bytes to compact facts. Owns the borrowing wire decode ([`wire`]) and its single-read form
//! ([`decode`]), the
//! string [`Interner`], the facts a target's rules read from a tracked object ([`target`]) and
//! the typed facts of built-in kinds ([`builtin`]). Pure: no clock, no IO, no history (since
//! when something holds is the store's job). Whole objects are never kept.

pub mod builtin;
pub mod decode;
pub mod intern;
pub mod proto;
pub mod target;
pub mod wire;

pub use self::{
    builtin::BuiltinFacts,
    intern::Interner,
    target::{ConditionFact, TargetFacts},
};
