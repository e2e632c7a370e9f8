//! Wiring: config → watch tasks → store → HTTP, plus config hot reload (F19).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use kube::{Client, config::KubeConfigOptions};
use tokio::task::JoinHandle;

use crate::{
    cli::RunArgs,
    config::Config,
    error::{Error, Result},
    http,
    metrics::{self, SelfState},
    store::{self, Store, Watch, WatchKey},
    watch::{self, WatchOptions},
};

/// Builds a client the way kubectl finds its config.
pub async fn client(args: &RunArgs) -> Result<Client> {
    let opts = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &opts).await
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&opts).await,
        None => kube::Config::infer().await.map_err(|e| Error::Kubeconfig(e.to_string()))?.pipe_ok(),
    }
    .map_err(|e| Error::Kubeconfig(e.to_string()))?;
    Ok(Client::try_from(config)?)
}

trait PipeOk: Sized {
    fn pipe_ok(self) -> std::result::Result<Self, kube::config::KubeconfigError> {
        Ok(self)
    }
}
impl PipeOk for kube::Config {}

/// Owns the watch tasks of the running config.
pub struct Supervisor {
    client: Client,
    store: Arc<Store>,
    tasks: HashMap<WatchKey, (Arc<Watch>, JoinHandle<()>)>,
}

impl Supervisor {
    pub fn new(client: Client, store: Arc<Store>) -> Supervisor {
        Supervisor { client, store, tasks: HashMap::new() }
    }

    /// Starts the watches a config needs. A watch whose key and targets are unchanged keeps
    /// running with its history (phase times, counters); the others restart.
    pub fn apply(&mut self, config: &Config) {
        let opts = WatchOptions { resync: config.resync, timeout: config.watch_timeout };
        let mut next = HashMap::new();
        for (key, subs) in store::plan(config) {
            let keep = self.tasks.remove(&key).filter(|(w, _)| w.subs == subs);
            let entry = keep.unwrap_or_else(|| {
                let w = Arc::new(Watch::new(key.clone(), subs));
                let handle = tokio::spawn(watch::run(self.client.clone(), w.clone(), opts));
                (w, handle)
            });
            next.insert(key, entry);
        }
        for (_, (_, handle)) in self.tasks.drain() {
            handle.abort();
        }
        let mut watches: Vec<_> = next.values().map(|(w, _)| w.clone()).collect();
        watches.sort_by(|a, b| a.key.cmp(&b.key));
        self.store.set_watches(watches);
        self.tasks = next;
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads on SIGHUP or when the file changes (checked every 2 s; works with ConfigMap
/// symlink swaps). An invalid file is logged and rejected; the running config stays.
async fn reload_loop(path: PathBuf, mut sup: Supervisor, me: Arc<SelfState>) {
    let mut last = mtime(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let by_signal = async {
            #[cfg(unix)]
            if let Some(h) = hup.as_mut() {
                h.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        let signalled = tokio::select! {
            _ = by_signal => true,
            _ = tokio::time::sleep(Duration::from_secs(2)) => false,
        };
        let now_m = mtime(&path);
        if !signalled && now_m == last {
            continue;
        }
        last = now_m;
        match Config::load(&path) {
            Ok(c) => {
                sup.apply(&c);
                me.reloaded(true, metrics::now());
                tracing::info!(file = %path.display(), targets = c.targets.len(), "config reloaded");
            }
            Err(e) => {
                me.reloaded(false, metrics::now());
                tracing::error!(error = %e, "config reload rejected; the previous config keeps running");
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// `stallwatch run`.
pub async fn run(args: RunArgs) -> Result<()> {
    let path = args.config.clone().ok_or_else(|| {
        Error::Config(crate::error::ConfigError::Invalid {
            file: "(none)".into(),
            line: 0,
            column: 0,
            message: "no config file: pass --config FILE or set STALLWATCH_CONFIG (see examples/)".into(),
        })
    })?;
    let config = Config::load(&path)?;
    let client = client(&args).await?;
    let store = Arc::new(Store::default());
    let me = Arc::new(SelfState::default());
    me.reloaded(true, metrics::now());
    let mut sup = Supervisor::new(client, store.clone());
    sup.apply(&config);
    let metrics = metrics::Metrics::new(store.clone(), me.clone(), metrics::now);
    let listener = http::bind(&args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, targets = config.targets.len(), "stallwatch serving /metrics");
    let reload = tokio::spawn(reload_loop(path, sup, me.clone()));
    let shared = Arc::new(http::Shared { store, me, metrics });
    http::serve(listener, shared, shutdown_signal()).await;
    reload.abort();
    Ok(())
}
