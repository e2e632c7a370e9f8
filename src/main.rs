use anyhow::Context as _;
use stallwatch::{
    cli::{Cli, Command, LogFormat},
    config::Config,
};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat, filter: Option<&str>) {
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Some(Command::Diagnose(args)) = &cli.command {
        // A report on stdout; logs only when asked for (errors are part of the report).
        let filter =
            cli.run.log.clone().or_else(|| std::env::var("RUST_LOG").ok()).unwrap_or_else(|| "error".into());
        init_logging(cli.run.log_format, Some(&filter));
        let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => rt.block_on(stallwatch::diagnose::main(&cli.run, args)),
            Err(e) => {
                eprintln!("error: starting the async runtime: {e}");
                stallwatch::diagnose::EXIT_ERROR
            }
        };
        return std::process::ExitCode::from(code);
    }
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match Config::load(file) {
            Ok(c) => {
                println!("{}: valid, {} target(s)", file.display(), c.targets.len());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.run.log_format, cli.run.log.as_deref());
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(stallwatch::app::run(cli.run)).context("stallwatch run"));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
