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
/// The command line: a subcommand and the flags every subcommand shares.
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The binary's name as kubectl calls it when it is installed as a plugin.
pub const KUBECTL_PLUGIN: &str = "kubectl-stallwatch";

impl Cli {
    /// Parses `args` (argv[0] first). Invoked as `kubectl-stallwatch` (a kubectl plugin: `kubectl
    /// stallwatch diagnose ...`), it behaves the same and its help and errors say `kubectl stallwatch`.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut args = args.into_iter().map(Into::into).peekable();
        let plugin = args
            .peek()
            .and_then(|a| std::path::Path::new(a).file_name())
            .is_some_and(|n| n == KUBECTL_PLUGIN);
        let mut cmd = Cli::command();
        if plugin {
            cmd = cmd.bin_name("kubectl stallwatch");
        }
        Cli::from_arg_matches(&cmd.try_get_matches_from(args)?)
    }
}

/// What to run: the exporter, a config check, or a one-shot report.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Run,
    /// Validate a config file: exit 0 when valid, 1 with the problem's file, line and column.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// One-shot, read-only report per tracked object: generation, phase and time in it, image
    /// triangle, rollout, controller activity, events, APIService, nodes, and the likely causes
    /// ranked with their remedies. Exit 0: everything converged; 1: something is not Current;
    /// 2: could not check (API, RBAC or config error). Also runs as `kubectl stallwatch diagnose`
    /// when installed as `kubectl-stallwatch` on PATH.
    Diagnose(DiagnoseArgs),
}

/// Flags of `stallwatch diagnose`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiagnoseArgs {
    /// Build the config from a preset instead of --config: `kubearmor` (--namespace is the
    /// operator namespace, default kubearmor) or `workloads` (in --namespace, else everywhere).
    #[arg(long, value_enum, env = "STALLWATCH_PRESET")]
    pub preset: Option<DiagnosePreset>,
    /// With --preset: the namespace it applies to. With --config: report only objects in this
    /// namespace. Same flag as kubectl's.
    #[arg(long, short = 'n', env = "STALLWATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format; JSON is documented in docs/diagnose.md.
    #[arg(long, short = 'o', value_enum, default_value = "text", env = "STALLWATCH_OUTPUT")]
    pub output: OutputFormat,
}

/// A preset `diagnose` can run without a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosePreset {
    Kubearmor,
    Workloads,
}

/// How `diagnose` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// How log lines are written: for people (text) or for log pipelines (JSON).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `stallwatch run` (and the cluster access `diagnose` shares).
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

    #[test]
    fn kubectl_plugin_name_parses_the_same_and_says_kubectl_stallwatch() {
        let c = Cli::parse_args(["/usr/local/bin/kubectl-stallwatch", "diagnose", "-n", "x"]).unwrap();
        assert!(matches!(&c.command, Some(Command::Diagnose(d)) if d.namespace.as_deref() == Some("x")));
        let e = Cli::parse_args(["kubectl-stallwatch", "diagnose", "--bogus"]).unwrap_err().to_string();
        assert!(e.contains("kubectl stallwatch diagnose"), "{e}");
        let e = Cli::parse_args(["stallwatch", "diagnose", "--bogus"]).unwrap_err().to_string();
        assert!(e.contains("stallwatch diagnose") && !e.contains("kubectl"), "{e}");
    }

    #[test]
    fn diagnose_takes_kubectl_style_flags() {
        let c = Cli::try_parse_from([
            "kubectl-stallwatch",
            "diagnose",
            "--preset",
            "kubearmor",
            "-n",
            "security",
            "-o",
            "json",
            "--context",
            "prod",
            "--kubeconfig",
            "k.yaml",
        ])
        .unwrap();
        let Some(Command::Diagnose(d)) = &c.command else { panic!("{c:?}") };
        assert_eq!(d.preset, Some(DiagnosePreset::Kubearmor));
        assert_eq!(d.namespace.as_deref(), Some("security"));
        assert_eq!(d.output, OutputFormat::Json);
        assert_eq!(c.run.context.as_deref(), Some("prod"));
        assert_eq!(c.run.kubeconfig.as_deref(), Some(std::path::Path::new("k.yaml")));
        let c = Cli::try_parse_from(["stallwatch", "diagnose", "--config", "c.yaml", "--namespace", "a"])
            .unwrap();
        let Some(Command::Diagnose(d)) = &c.command else { panic!("{c:?}") };
        assert_eq!((d.preset, d.output), (None, OutputFormat::Text));
        assert_eq!(c.run.config.as_deref(), Some(std::path::Path::new("c.yaml")));
    }
}
