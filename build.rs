//! Sets STALLWATCH_GIT_REVISION for `--version` and `stallwatch_build_info{revision}`: the
//! STALLWATCH_GIT_REVISION environment variable when set (release builds from a tarball),
//! else `git rev-parse --short HEAD`, else `unknown`. Never fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=STALLWATCH_GIT_REVISION");
    let from_env = std::env::var("STALLWATCH_GIT_REVISION").ok().filter(|s| !s.trim().is_empty());
    let revision = match from_env {
        Some(r) => r.trim().to_string(),
        None => {
            // Rebuild when HEAD moves (the ref files live in the common dir of a worktree).
            for p in ["HEAD", "packed-refs"] {
                if let Some(path) = git(&["rev-parse", "--git-path", p]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"])
                && let Some(path) = git(&["rev-parse", "--git-path", &head])
            {
                println!("cargo:rerun-if-changed={path}");
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    let clean: String = revision
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        .collect();
    let clean = if clean.is_empty() { "unknown".to_string() } else { clean };
    println!("cargo:rustc-env=STALLWATCH_GIT_REVISION={clean}");
}
