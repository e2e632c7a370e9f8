//! Wiring: config → watch tasks → store → HTTP, plus config hot reload.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    cli::RunArgs,
    clock::now,
    config::Config,
    error::{Error, Result},
    expose::{Renderer, SelfState},
    server,
    store::Store,
    watch::{Supervisor, client},
};

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
                me.reloaded(true, now());
                tracing::info!(file = %path.display(), targets = c.targets.len(), "config reloaded");
            }
            Err(e) => {
                me.reloaded(false, now());
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
    let client = client::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let store = Arc::new(Store::default());
    let me = Arc::new(SelfState::default());
    me.reloaded(true, now());
    let mut sup = Supervisor::new(client, store.clone());
    sup.apply(&config);
    let renderer = Renderer::new(store.clone(), me.clone(), now);
    let listener = server::bind(&args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, targets = config.targets.len(), "stallwatch serving /metrics");
    let reload = tokio::spawn(reload_loop(path, sup, me.clone()));
    let shared = Arc::new(server::Shared::new(store, me, renderer));
    server::serve(listener, shared, server::Limits::default(), shutdown_signal()).await;
    reload.abort();
    Ok(())
}
