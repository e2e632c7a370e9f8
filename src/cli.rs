//! Command-line interface. Every flag can also come from a `STALLWATCH_*` environment variable.
//!
//! Each subcommand takes only the flags that apply to it: `check-config`, `rbac`,
//! `config-schema`, `completions` and `man` never touch a cluster or a port, so they take no
//! `--listen`, `--kubeconfig` or `--context`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::build::{LONG_VERSION as VERSION, REVISION};

#[derive(Debug, Parser)]
#[command(
    name = "stallwatch",
    version = VERSION,
    args_conflicts_with_subcommands = true,
    about = "Prometheus exporter that catches Kubernetes operators and rollouts that silently stop converging",
    long_about = "Watches and periodically re-lists the resources named in its config, derives convergence facts \
(generation lag, time in phase, conditions, verdicts, its own watch health) and serves them on /metrics.\n\
Without a subcommand it runs the exporter (same as `stallwatch run`, with the same flags)."
)]
/// The command line: a subcommand, or the flags of `run` for the default command.
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
        use clap::FromArgMatches;
        let mut args = args.into_iter().map(Into::into).peekable();
        let plugin = args
            .peek()
            .and_then(|a| std::path::Path::new(a).file_name())
            .is_some_and(|n| n == KUBECTL_PLUGIN);
        let mut cmd = Cli::clap_command();
        if plugin {
            cmd = cmd.bin_name("kubectl stallwatch");
        }
        Cli::from_arg_matches(&cmd.try_get_matches_from(args)?)
    }

    /// The clap command (for help, completions and the man page).
    pub fn clap_command() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
    }

    /// The flags of the exporter: those of `run`, or the top-level ones without a subcommand.
    pub fn into_run(self) -> Option<RunArgs> {
        match self.command {
            None => Some(self.run),
            Some(Command::Run(r)) => Some(r),
            Some(_) => None,
        }
    }
}

/// What to run: the exporter, a config check, a one-shot report, or a generator.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Run(RunArgs),
    /// Validate a config file: exit 0 when valid (printing how many targets and watches it
    /// has), 1 with the problem's file, line and column.
    CheckConfig(CheckConfigArgs),
    /// One-shot, read-only report per tracked object: generation, phase and time in it, image
    /// triangle, rollout, controller activity, events, APIService, nodes, and the likely causes
    /// ranked with their remedies. Exit 0: everything converged; 1: something is not Current;
    /// 2: could not check (API, RBAC or config error). Also runs as `kubectl stallwatch diagnose`
    /// when installed as `kubectl-stallwatch` on PATH.
    Diagnose(DiagnoseArgs),
    /// Print the least-privilege RBAC (Roles per namespace, a ClusterRole for cluster-wide
    /// watches; get/list/watch only) that a config's watches need, as Kubernetes YAML.
    Rbac(RbacArgs),
    /// Print the JSON Schema of the config file (for editors and the Helm chart).
    ConfigSchema,
    /// Print a shell completion script, e.g. `stallwatch completions bash > /etc/bash_completion.d/stallwatch`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `stallwatch man > stallwatch.1`.
    Man,
}

/// Flags of `stallwatch check-config`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckConfigArgs {
    /// The config file to check.
    pub file: PathBuf,
}

/// Flags of `stallwatch rbac`.
#[derive(Debug, Clone, clap::Args)]
pub struct RbacArgs {
    /// The config file whose watches need the rules.
    #[arg(long, short = 'c', env = "STALLWATCH_CONFIG")]
    pub config: PathBuf,
    /// Name of the Roles and the ClusterRole.
    #[arg(long, default_value = "stallwatch")]
    pub name: String,
}

/// How to reach the cluster: shared by `run` and `diagnose`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig file. Without it: KUBECONFIG, ~/.kube/config, then the in-cluster service
    /// account, as kubectl does.
    #[arg(long, env = "STALLWATCH_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, env = "STALLWATCH_CONTEXT")]
    pub context: Option<String>,
}

/// How log lines are written: shared by `run` and `diagnose`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "STALLWATCH_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter in RUST_LOG syntax (e.g. `info,stallwatch=debug`); RUST_LOG is read too.
    #[arg(long, env = "STALLWATCH_LOG")]
    pub log: Option<String>,
}

/// Flags of `stallwatch diagnose`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiagnoseArgs {
    /// Config file (YAML) naming what to report on.
    #[arg(long, short = 'c', env = "STALLWATCH_CONFIG")]
    pub config: Option<PathBuf>,
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
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub log: LogArgs,
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

/// Flags of `stallwatch run` (also accepted without the subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Config file (YAML). Reloaded when it changes or on SIGHUP; an invalid new file is rejected
    /// and the running config stays.
    #[arg(long, short = 'c', env = "STALLWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for /metrics, /healthz, /readyz and the landing page: `:PORT` (all interfaces),
    /// `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`.
    #[arg(long, env = "STALLWATCH_LISTEN", default_value = ":9184", value_parser = listen_arg)]
    pub listen: String,
    /// This replica's shard, 0 to --total-shards minus 1. Without it, a sharded replica takes
    /// the StatefulSet ordinal at the end of its pod name. Overrides the file's `sharding.shard`.
    #[arg(long, env = "STALLWATCH_SHARD")]
    pub shard: Option<u32>,
    /// How many shards split the tracked objects (by namespace or UID, as the API server's
    /// sharded list and watch does). Overrides the file's `sharding.totalShards`.
    #[arg(long, env = "STALLWATCH_TOTAL_SHARDS")]
    pub total_shards: Option<u32>,
    /// The pod's name, whose StatefulSet ordinal is the shard when --shard is not given
    /// (default: the HOSTNAME variable, which a pod's is).
    #[arg(long, env = "STALLWATCH_POD_NAME")]
    pub pod_name: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl RunArgs {
    /// The shard settings of the flags and environment.
    pub fn shard_args(&self) -> crate::config::shard::ShardArgs {
        crate::config::shard::ShardArgs {
            shard: self.shard,
            total: self.total_shards,
            pod_name: self.pod_name.clone().or_else(|| std::env::var("HOSTNAME").ok()),
        }
    }
}

fn listen_arg(s: &str) -> Result<String, String> {
    crate::server::listen::ListenAddr::parse(s).map(|_| s.to_string())
}

mod tools;
pub use self::tools::{man, run_tool, summary};

#[cfg(test)]
mod tests;
