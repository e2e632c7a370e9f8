//! What the landing page's header says about the running exporter: version, uptime, config
//! file, the last reload's result and time, `stalledAfter` and `resync`. The wiring ([`crate::app`])
//! sets it at start and on every reload; the page reads it.

use std::{sync::Mutex, time::Duration};

/// The exporter's state for the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// The config file as given on the command line.
    pub config: String,
    /// Process start (Unix seconds).
    pub started: f64,
    pub resync: Duration,
    pub stalled_after: Duration,
    /// The last load of the config file: at start, then each reload.
    pub reload: Option<Reload>,
}

/// One load of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Reload {
    /// Unix seconds.
    pub at: f64,
    /// `None`: accepted; else why it was rejected (the previous config keeps running).
    pub error: Option<String>,
}

static INFO: Mutex<Option<Info>> = Mutex::new(None);

/// Sets the header's state (at start and after an accepted reload).
pub fn set(info: Info) {
    *INFO.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
}

/// Records a rejected reload; the rest of the header stays.
pub fn rejected(at: f64, error: String) {
    if let Some(i) = INFO.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        i.reload = Some(Reload { at, error: Some(error) });
    }
}

/// The header's state, if the exporter set one.
pub fn get() -> Option<Info> {
    INFO.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
