use std::process::ExitCode;

use stallwatch::cli::{Cli, Command, LogArgs, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logging(log: &LogArgs, default: &str) {
    let filter = log
        .log
        .as_deref()
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Some(code) = cli.command.as_ref().and_then(stallwatch::cli::run_tool) {
        return ExitCode::from(code);
    }
    match cli.command {
        Some(Command::Diagnose(args)) => {
            // A report on stdout; logs only when asked for (errors are part of the report).
            init_logging(&args.log, "error");
            let code = match runtime() {
                Ok(rt) => rt.block_on(stallwatch::diagnose::main(&args)),
                Err(e) => {
                    eprintln!("error: {e}");
                    stallwatch::diagnose::EXIT_ERROR
                }
            };
            ExitCode::from(code)
        }
        command => {
            let run = match command {
                Some(Command::Run(r)) => r,
                _ => cli.run,
            };
            init_logging(&run.log, "info");
            let result =
                runtime().and_then(|rt| rt.block_on(stallwatch::app::run(run)).map_err(|e| e.to_string()));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // Once: the log line is the error report (stderr, in the chosen log format).
                    tracing::error!("stallwatch run: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
