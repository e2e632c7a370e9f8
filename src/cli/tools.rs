//! The subcommands that need no cluster and no runtime: `check-config`, `rbac`,
//! `config-schema`, `completions`, `man`. Each prints to stdout and returns its exit code.

use std::io::Write as _;

use super::{Cli, Command};
use crate::{
    config::Config,
    watch::{plan, rbac::Rbac},
};

/// Runs `command` when it is one of the tools; `None` for `run` and `diagnose`.
pub fn run_tool(command: &Command) -> Option<u8> {
    Some(match command {
        Command::CheckConfig(args) => match Config::load(&args.file) {
            Ok(c) => print(&format!("{}: valid, {}\n", args.file.display(), summary(&c))),
            Err(e) => fail(&e.to_string()),
        },
        Command::Rbac(args) => match Config::load(&args.config) {
            Ok(c) => print(&Rbac::of(&c).yaml(&args.name)),
            Err(e) => fail(&e.to_string()),
        },
        Command::ConfigSchema => print(&crate::config::schema::json()),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::clap_command(), "stallwatch", &mut out);
            print(&String::from_utf8_lossy(&out))
        }
        Command::Man => {
            man().map_or_else(|e| fail(&format!("error: rendering the man page: {e}")), |m| print(&m))
        }
        Command::Run(_) | Command::Diagnose(_) => return None,
    })
}

/// The man page (roff) of the whole command line.
pub fn man() -> std::io::Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::clap_command()).render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `1 target (3 after preset expansion), 11 watches`: what the file lists and what it runs.
pub fn summary(c: &Config) -> String {
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let mut s = n(c.file_targets, "target", "targets");
    if c.targets.len() != c.file_targets {
        s.push_str(&format!(" ({} after preset expansion)", c.targets.len()));
    }
    s.push_str(&format!(", {}", n(plan(c).len(), "watch", "watches")));
    s
}

fn fail(message: &str) -> u8 {
    eprintln!("{message}");
    1
}

/// Prints a tool's output; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> u8 {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => fail(&format!("error: writing to stdout: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_file_targets_expanded_targets_and_watches() {
        let c = Config::parse("targets: [{preset: kubearmor}]\n", "c").unwrap();
        assert_eq!(summary(&c), "1 target (3 after preset expansion), 12 watches");
        let c = Config::parse(
            "targets:\n  - {name: a, resource: {version: v1, kind: ConfigMap}}\n  - {name: b, resource: {version: v1, kind: Service}}\n",
            "c",
        )
        .unwrap();
        assert_eq!(summary(&c), "2 targets, 2 watches");
    }

    #[test]
    fn man_page_has_every_subcommand() {
        let m = man().unwrap();
        assert!(m.starts_with(".ie") && m.contains(".TH stallwatch 1"), "{}", &m[..200]);
        for sub in ["run", "check\\-config", "diagnose", "rbac", "config\\-schema", "completions", "man"] {
            assert!(m.contains(sub), "man page lacks {sub}");
        }
    }
}
