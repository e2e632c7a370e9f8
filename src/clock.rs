//! The one wall clock. Everything that needs "now" takes it from here or as an argument, so
//! pure code (facts, store, judgement) stays testable with a fixed time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now; 0 if the system clock is before 1970 (never fails).
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
