//! Tests of the command line: which flags each subcommand takes, and its help text.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::parse_args(args.iter().copied())
}

fn help(sub: &str) -> String {
    let mut cmd = Cli::clap_command();
    cmd.build();
    cmd.find_subcommand_mut(sub).unwrap().render_long_help().to_string()
}

#[test]
fn cli_is_consistent() {
    Cli::clap_command().debug_assert();
}

#[test]
fn default_command_is_run_with_flags() {
    let c = parse(&["stallwatch", "--config", "x.yaml", "--listen", "127.0.0.1:1"]).unwrap();
    assert!(c.command.is_none());
    let r = c.into_run().unwrap();
    assert_eq!(r.listen, "127.0.0.1:1");
    let c = parse(&["stallwatch", "run", "--config", "x.yaml", "--listen", ":9184"]).unwrap();
    let r = c.into_run().unwrap();
    assert_eq!(r.config.as_deref(), Some(std::path::Path::new("x.yaml")));
    assert_eq!(r.listen, ":9184");
    let c = parse(&["stallwatch", "check-config", "f.yaml"]).unwrap();
    assert!(matches!(c.command, Some(Command::CheckConfig(_))));
    assert!(c.into_run().is_none());
}

#[test]
fn listen_defaults_to_all_interfaces_and_rejects_a_bad_address() {
    let r = parse(&["stallwatch", "run"]).unwrap().into_run().unwrap();
    assert_eq!(r.listen, ":9184");
    for bad in ["9184", "localhost", ":99999", "1.2.3.4:x", "[::1]"] {
        let e = parse(&["stallwatch", "run", "--listen", bad]).unwrap_err().to_string();
        assert!(e.contains("--listen") && e.contains("e.g. :9184"), "{bad}: {e}");
    }
}

#[test]
fn check_config_takes_no_cluster_or_listen_flags() {
    for flag in ["--listen", "--kubeconfig", "--context", "--log-format"] {
        let e = parse(&["stallwatch", "check-config", flag, "x", "f.yaml"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{flag}: {e}");
    }
    // Flags of the default command are not silently taken before a subcommand either.
    assert!(parse(&["stallwatch", "--listen", ":1", "check-config", "f.yaml"]).is_err());
    let h = help("check-config");
    for flag in ["--listen", "--kubeconfig", "--context", "--config", "SIGHUP"] {
        assert!(!h.contains(flag), "check-config --help shows {flag}:\n{h}");
    }
}

#[test]
fn each_subcommand_help_lists_only_its_flags() {
    let d = help("diagnose");
    assert!(d.contains("--kubeconfig") && d.contains("--preset") && d.contains("--config"), "{d}");
    assert!(!d.contains("--listen") && !d.contains("SIGHUP") && !d.contains("Reloaded"), "{d}");
    let r = help("run");
    assert!(r.contains("--listen") && r.contains("SIGHUP") && !r.contains("--preset"), "{r}");
    let rb = help("rbac");
    assert!(rb.contains("--config") && !rb.contains("--kubeconfig") && !rb.contains("--listen"), "{rb}");
    for s in ["config-schema", "completions", "man"] {
        let h = help(s);
        assert!(!h.contains("--kubeconfig") && !h.contains("--listen"), "{s}: {h}");
    }
}

#[test]
fn version_carries_the_revision() {
    assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")) && VERSION.contains("revision "), "{VERSION}");
    assert!(!REVISION.is_empty() && !REVISION.contains(char::is_whitespace), "{REVISION:?}");
    let e = parse(&["stallwatch", "--version"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
    assert!(e.to_string().contains(REVISION), "{e}");
}

#[test]
fn kubectl_plugin_name_parses_the_same_and_says_kubectl_stallwatch() {
    let c = parse(&["/usr/local/bin/kubectl-stallwatch", "diagnose", "-n", "x"]).unwrap();
    assert!(matches!(&c.command, Some(Command::Diagnose(d)) if d.namespace.as_deref() == Some("x")));
    let e = parse(&["kubectl-stallwatch", "diagnose", "--bogus"]).unwrap_err().to_string();
    assert!(e.contains("kubectl stallwatch diagnose"), "{e}");
    let e = parse(&["stallwatch", "diagnose", "--bogus"]).unwrap_err().to_string();
    assert!(e.contains("stallwatch diagnose") && !e.contains("kubectl"), "{e}");
}

#[test]
fn diagnose_takes_kubectl_style_flags() {
    let c = parse(&[
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
    assert_eq!(d.cluster.context.as_deref(), Some("prod"));
    assert_eq!(d.cluster.kubeconfig.as_deref(), Some(std::path::Path::new("k.yaml")));
    let c = parse(&["stallwatch", "diagnose", "--config", "c.yaml", "--namespace", "a"]).unwrap();
    let Some(Command::Diagnose(d)) = &c.command else { panic!("{c:?}") };
    assert_eq!((d.preset, d.output), (None, OutputFormat::Text));
    assert_eq!(d.config.as_deref(), Some(std::path::Path::new("c.yaml")));
}

#[test]
fn completions_and_man_parse() {
    let c = parse(&["stallwatch", "completions", "zsh"]).unwrap();
    assert!(matches!(c.command, Some(Command::Completions { shell: clap_complete::Shell::Zsh })));
    assert!(matches!(parse(&["stallwatch", "man"]).unwrap().command, Some(Command::Man)));
    assert!(parse(&["stallwatch", "completions", "cmd.exe"]).is_err());
}
