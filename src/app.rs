//! Wiring: config → watch tasks → store → HTTP, plus config hot reload.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    cli::RunArgs,
    clock::now,
    config::{Config, shard::ShardArgs},
    error::{Error, Result},
    expose::{Renderer, SelfState},
    server,
    store::Store,
    watch::{Supervisor, client},
};

/// Tells the landing page's header about the config now running.
fn show(path: &Path, c: &Config, started: f64) {
    server::landing::info::set(server::landing::info::Info {
        config: path.display().to_string(),
        started,
        resync: c.resync,
        stalled_after: c.stalled_after,
        reload: Some(server::landing::info::Reload { at: now(), error: None }),
    });
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// How long a reload may parse before it is given up (the running config stays).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the file on a blocking thread with a deadline, so a hostile file can neither stall the
/// async workers (HTTP, SIGTERM) nor, by panicking, end the reload loop. A parse still running
/// past its deadline is kept in `parsing`; no second one starts until it ends.
async fn load_off_workers(
    path: &Path,
    parsing: &mut Option<tokio::task::JoinHandle<Result<Config, crate::error::ConfigError>>>,
) -> std::result::Result<Config, String> {
    let file = path.display();
    let job = match parsing.take() {
        Some(job) if !job.is_finished() => {
            *parsing = Some(job);
            return Err(format!("{file}: the previous reload is still being parsed; skipped"));
        }
        _ => {
            let p = path.to_path_buf();
            tokio::task::spawn_blocking(move || Config::load(&p))
        }
    };
    let mut job = job;
    match tokio::time::timeout(RELOAD_TIMEOUT, &mut job).await {
        Ok(Ok(r)) => r.map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(format!("{file}: the config loader failed: {e}")),
        Err(_) => {
            *parsing = Some(job);
            Err(format!("{file}: not parsed within {}s; fix or shrink the file", RELOAD_TIMEOUT.as_secs()))
        }
    }
}

/// `c` run as the shard the flags, the file or the pod name say.
fn sharded(c: Config, args: &ShardArgs) -> std::result::Result<Config, String> {
    let shard = crate::config::shard::resolve(c.file_sharding, args)?;
    Ok(c.with_shard(shard))
}

/// Reloads on SIGHUP or when the file changes (checked every 2 s; works with ConfigMap
/// symlink swaps). An invalid file is logged and rejected; the running config stays.
async fn reload_loop(path: PathBuf, mut sup: Supervisor, me: Arc<SelfState>, shard: ShardArgs) {
    let mut last = mtime(&path);
    let mut parsing = None;
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
        match load_off_workers(&path, &mut parsing)
            .await
            .and_then(|c| sharded(c, &shard).map_err(|m| format!("{}: {m}", path.display())))
        {
            Ok(c) => {
                me.set_shard(c.shard);
                sup.apply(&c);
                me.reloaded(true, now());
                show(&path, &c, me.start_time);
                tracing::info!(file = %path.display(), targets = c.targets.len(), "config reloaded");
            }
            Err(e) => {
                me.reloaded(false, now());
                server::landing::info::rejected(now(), e.to_string());
                tracing::error!(error = %e, "config reload rejected; the previous config keeps running");
            }
        }
    }
}

/// How often Warning counts of objects gone from the store are dropped when nobody scrapes.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Prunes what renders would prune, on a timer and off the async workers, so that state of
/// deleted objects never depends on a scrape happening.
async fn prune_loop(renderer: Renderer) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let r = renderer.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || r.prune()).await {
            tracing::error!(error = %e, "pruning warning counts failed; retrying at the next tick");
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
    let invalid = |message: String| {
        Error::Config(crate::error::ConfigError::Invalid {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message,
        })
    };
    let config = sharded(Config::load(&path)?, &args.shard_args()).map_err(invalid)?;
    let client = client::connect(args.cluster.kubeconfig.as_deref(), args.cluster.context.as_deref()).await?;
    let store = Arc::new(Store::default());
    let me = Arc::new(SelfState::default());
    me.reloaded(true, now());
    me.set_shard(config.shard);
    show(&path, &config, me.start_time);
    let mut sup = Supervisor::new(client, store.clone());
    sup.apply(&config);
    let renderer = Renderer::new(store.clone(), me.clone(), now);
    let listener = server::bind(&args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, targets = config.targets.len(), "stallwatch serving /metrics");
    if config.shard.is_sharded() {
        tracing::info!(
            shard = config.shard.index,
            total = config.shard.total,
            "running one shard of several"
        );
    }
    let reload = tokio::spawn(reload_loop(path, sup, me.clone(), args.shard_args()));
    let prune = tokio::spawn(prune_loop(renderer.clone()));
    let shared = Arc::new(server::Shared::new(store, me, renderer));
    server::serve(listener, shared, server::Limits::default(), shutdown_signal()).await;
    reload.abort();
    prune.abort();
    Ok(())
}
