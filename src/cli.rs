//! Command-line interface. Every flag can also come from a `STALLWATCH_*` environment variable.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stallwatch",
    version,
    about = "Prometheus exporter that catches Kubernetes operators and rollouts that silently stop converging",
    long_about = "Watches and periodically re-lists the resources named in its config, derives convergence facts \
(generation lag, time in phase, conditions, verdicts, its own watch health) and serves them on /metrics.\n\
Without a subcommand it runs the exporter (same as `stallwatch run`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Run,
    /// Validate a config file: exit 0 when valid, 1 with the problem's file, line and column.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Config file (YAML). Reloaded when it changes or on SIGHUP; an invalid new file is rejected
    /// and the running config stays.
    #[arg(long, short = 'c', env = "STALLWATCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address for /metrics, /healthz, /readyz and the landing page.
    #[arg(long, env = "STALLWATCH_LISTEN", default_value = "0.0.0.0:9184", global = true)]
    pub listen: String,
    /// Log format.
    #[arg(long, env = "STALLWATCH_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Log filter in RUST_LOG syntax (e.g. `info,stallwatch=debug`); RUST_LOG is read too.
    #[arg(long, env = "STALLWATCH_LOG", global = true)]
    pub log: Option<String>,
    /// Kubeconfig file. Without it: KUBECONFIG, ~/.kube/config, then the in-cluster service
    /// account, as kubectl does.
    #[arg(long, env = "STALLWATCH_KUBECONFIG", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, env = "STALLWATCH_CONTEXT", global = true)]
    pub context: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn default_command_is_run_with_flags() {
        let c = Cli::try_parse_from(["stallwatch", "--config", "x.yaml", "--listen", "127.0.0.1:1"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.run.listen, "127.0.0.1:1");
        let c = Cli::try_parse_from(["stallwatch", "run", "--config", "x.yaml"]).unwrap();
        assert!(matches!(c.command, Some(Command::Run)));
        assert_eq!(c.run.config.as_deref(), Some(std::path::Path::new("x.yaml")));
        let c = Cli::try_parse_from(["stallwatch", "check-config", "f.yaml"]).unwrap();
        assert!(matches!(c.command, Some(Command::CheckConfig { .. })));
    }
}
