//! The shared vocabulary: resource identity ([`Gvk`]) and the built-in kind table ([`Kind`]),
//! image references ([`image`]), JSONPath over objects ([`path`]), API timestamps ([`time`])
//! cluster strings made safe for text output ([`text`]) and the sharding arithmetic shared with
//! the API server ([`shard`]). Pure values and functions: no IO,
//! no clock, no dependency on any other module.

pub mod gvk;
pub mod image;
pub mod kind;
pub mod path;
pub mod shard;
pub mod text;
pub mod time;

pub use self::{gvk::Gvk, kind::Kind, path::ObjectPath};
