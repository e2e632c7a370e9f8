#!/usr/bin/env python3
"""Checks of the user-facing text of the repository (run by tests/deploy/check):

  - no internal spec references anywhere in the repository (src/ included): section signs,
    the spec's name, feature numbers such as "(F10)"; user-facing files say the thing itself;
  - the commands in the docs work with what deploy/ and the Dockerfile install: `kubectl exec`
    into stallwatch runs `/stallwatch` (the distroless image has no shell and the binary is not
    on PATH), port-forwards to stallwatch use its port 9184, the Deployments, Services and
    containers the docs name exist in the renders;
  - every `stallwatch SUBCOMMAND --flag` in the docs is a subcommand and flag of the binary
    (when --bin is given).

Prints one line per check ("ok", "FAIL", "skip") and, last, "COUNTS <passed> <failed> <skipped>".
Python 3 standard library plus PyYAML.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

import yaml

results = {"ok": 0, "FAIL": 0, "skip": 0}
NOTES_DIR = None  # rendered NOTES (helm install --dry-run), checked like the docs
SELF = os.path.abspath(__file__)
# The spec is team-internal: no file of the project may cite it. Keep in step with the brief's grep.
SPEC_REF = re.compile(r"\bPRODUCT\b|§|\(F[0-9]+\)|\bF[0-9]{1,2}\b")
TEXT_EXT = {".md", ".rs", ".py", ".sh", ".yml", ".yaml", ".json", ".tpl", ".txt", ".toml", ".html"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def report(status, name, detail=None):
    results[status] += 1
    print(f"{status:<5} {name}")
    for line in (detail or [])[:40]:
        print(f"      {line}")


def check(name, problems):
    report("FAIL" if problems else "ok", name, problems)


def repo_files(repo):
    try:
        out = subprocess.run(["git", "-C", repo, "ls-files", "-co", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = [os.path.relpath(p, repo) for p in glob.glob(os.path.join(repo, "**"), recursive=True)
               if "/target/" not in p and "/.git/" not in p]
    return sorted(f for f in out if f and os.path.isfile(os.path.join(repo, f)))


def is_text(path):
    base = os.path.basename(path)
    if os.path.splitext(base)[1] in TEXT_EXT or base in ("Dockerfile", "LICENSE", "NOTICE"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(200)
        return head.startswith(b"#!")
    except OSError:
        return False


def spec_reference_problems(repo):
    out = []
    for rel in repo_files(repo):
        p = os.path.join(repo, rel)
        if os.path.abspath(p) == SELF or not is_text(p):
            continue
        try:
            lines = read(p).splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(lines, 1):
            if SPEC_REF.search(line):
                out.append(f"{rel}:{n}: {line.strip()[:120]}")
    return out


def doc_files(repo):
    files = [os.path.join(repo, "README.md")]
    files += sorted(glob.glob(os.path.join(repo, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(repo, "deploy", "**", "README.md"), recursive=True))
    if NOTES_DIR:
        files += sorted(glob.glob(os.path.join(NOTES_DIR, "*.txt")))
    files.append(os.path.join(repo, "alerts", "stallwatch.rules.yml"))
    return [f for f in files if os.path.isfile(f)]


def display(f, repo):
    if NOTES_DIR and os.path.dirname(os.path.abspath(f)) == os.path.abspath(NOTES_DIR):
        return "rendered " + os.path.basename(f)
    return os.path.relpath(f, repo)


def commands(repo):
    """(file, line number, text) of every line of the docs that holds a command."""
    for f in doc_files(repo):
        rel = display(f, repo)
        for n, line in enumerate(read(f).splitlines(), 1):
            if "kubectl" in line or "stallwatch" in line:
                yield rel, n, line


EXEC = re.compile(r"kubectl\b[^`\n]*?\bexec\b([^`\n]*?)\s--\s+(\S+)")
PORT_FORWARD = re.compile(r"kubectl\b[^`\n]*?\bport-forward\s+(\S+)((?:\s+[0-9:{}$ .A-Za-z]+?)?)"
                          r"(?=\s*(?:`|$|#|then|\(|;))")


def exec_problems(repo):
    out, n_exec = [], 0
    for rel, n, line in commands(repo):
        for m in EXEC.finditer(line):
            target, program = m.group(1), m.group(2)
            if "stallwatch" not in target and "stallwatch" not in program:
                continue
            n_exec += 1
            if program != "/stallwatch":
                out.append(f"{rel}:{n}: exec runs {program!r}: the image's binary is /stallwatch "
                           f"(no shell, not on PATH): {line.strip()}")
    if n_exec == 0:
        out.append("no `kubectl exec` into stallwatch found in the docs (the runbooks should show one)")
    return out


def port_forward_problems(repo):
    out, seen = [], 0
    for rel, n, line in commands(repo):
        for m in PORT_FORWARD.finditer(line):
            obj, ports = m.group(1), m.group(2)
            if "stallwatch" not in obj and "stallwatch" not in line.split("port-forward")[0]:
                continue
            seen += 1
            nums = re.findall(r"(?:(\d+):)?(\d+)|(\{\{[^}]*\}\})", ports)
            if not nums:
                out.append(f"{rel}:{n}: port-forward without a port: {line.strip()}")
            for _, remote, templ in nums:
                if templ:
                    if "service.port" not in templ and "$port" not in templ:
                        out.append(f"{rel}:{n}: port-forward to {templ}: {line.strip()}")
                elif remote != "9184":
                    out.append(f"{rel}:{n}: port-forward to port {remote}; stallwatch listens on 9184: {line.strip()}")
    if seen == 0:
        out.append("no port-forward to stallwatch found in the docs")
    return out


OBJ_REF = re.compile(r"\b(deploy|deployment|svc|service)/(stallwatch[a-z0-9-]*|kubearmor-operator)\b")


def object_problems(repo, render):
    """Objects the docs name (deploy/stallwatch, svc/stallwatch, the sidecar's container) exist."""
    have = {}
    for p in glob.glob(os.path.join(render, "*.yaml")):
        for d in yaml.safe_load_all(read(p)):
            if not d:
                continue
            kind = d.get("kind")
            name = d.get("metadata", {}).get("name")
            containers = []
            if kind == "Deployment":
                containers = [c["name"] for c in d["spec"]["template"]["spec"]["containers"]]
            have.setdefault((kind, name), set()).update(containers)
    out = []
    helm = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(render, "helm-*.yaml"))}
    if not helm:
        return ["no renders found"]
    for rel, n, line in commands(repo):
        for m in OBJ_REF.finditer(line):
            kind = "Deployment" if m.group(1).startswith("deploy") else "Service"
            name = m.group(2)
            if (kind, name) not in have:
                out.append(f"{rel}:{n}: {m.group(0)} is not rendered by the chart or kustomize")
                continue
            c = re.search(r"\s-c\s+(\S+)", line[m.end():])
            if c and kind == "Deployment" and c.group(1) not in have[(kind, name)]:
                out.append(f"{rel}:{n}: {m.group(0)} has no container {c.group(1)!r}")
    return out


def command_texts(repo):
    """(file, line number, command) for the commands of the docs: inline code spans that start
    with a program, lines of fenced code blocks, and indented command lines of NOTES.txt."""
    prog = re.compile(r"^\$?\s*(/?stallwatch|kubectl|helm|curl)\s")
    for f in doc_files(repo):
        rel = display(f, repo)
        fenced = False
        for n, line in enumerate(read(f).splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced or (display(f, repo).startswith("rendered ") and line.startswith("  ")):
                if prog.match(line.strip()):
                    yield rel, n, line.strip()
                continue
            for span in re.findall(r"`([^`]+)`", line):
                if prog.match(span.strip()):
                    yield rel, n, span.strip()


# Where the stallwatch binary is the program: at the start, after `exec … --`, as a kubectl plugin.
INVOCATION = re.compile(r"(?:^\$?\s*|\s--\s+|^kubectl\s+(?:-n\s+\S+\s+)?)/?stallwatch\s+([a-z][a-z-]*)(.*)$")


def cli_help(binary, *args):
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, timeout=20, check=False)
    return r.stdout + r.stderr if r.returncode == 0 else None


def subcommands_of(help_text):
    cmds, in_cmds = set(), False
    for line in help_text.splitlines():
        if line.strip().lower().startswith("commands:"):
            in_cmds = True
            continue
        if in_cmds:
            m = re.match(r"^\s+([a-z][a-z-]*)\s", line + " ")
            if m:
                cmds.add(m.group(1))
            elif line.strip() and not line.startswith(" "):
                in_cmds = False
    return cmds


def cli_problems(repo, binary):
    top = cli_help(binary)
    if top is None:
        return [f"{binary} --help failed"]
    subs = subcommands_of(top) - {"help"}
    flags, out, n_cmds = {}, [], 0
    for rel, n, cmd in command_texts(repo):
        for m in INVOCATION.finditer(cmd):
            sub, rest = m.group(1), m.group(2)
            if sub not in subs:
                out.append(f"{rel}:{n}: `stallwatch {sub}`: no such subcommand (have: {', '.join(sorted(subs))})")
                continue
            n_cmds += 1
            if sub not in flags:
                flags[sub] = set(re.findall(r"(--[a-z][a-z-]*)", cli_help(binary, sub) or ""))
            rest = rest.split("|")[0].split("#")[0]
            for fl in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                if fl not in flags[sub]:
                    out.append(f"{rel}:{n}: `stallwatch {sub} … {fl}`: no such flag")
    if n_cmds == 0:
        out.append("no stallwatch command found in the docs")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--render", required=True, help="directory of rendered manifests (helm-*.yaml, kustomize-*.yaml)")
    ap.add_argument("--bin", help="a stallwatch binary: check subcommands and flags the docs use")
    ap.add_argument("--notes", help="directory of rendered NOTES (*.txt) to check like the docs")
    a = ap.parse_args()
    global NOTES_DIR
    NOTES_DIR = a.notes
    check("no internal spec references in the repository "
          "(section signs, the spec's name, feature numbers; src/ included)",
          spec_reference_problems(a.repo))
    check("docs: `kubectl exec` into stallwatch runs /stallwatch", exec_problems(a.repo))
    check("docs: port-forwards to stallwatch use port 9184", port_forward_problems(a.repo))
    check("docs: the Deployments, Services and containers named in commands are rendered by deploy/",
          object_problems(a.repo, a.render))
    if a.bin:
        check("docs: every `stallwatch SUBCOMMAND --flag` exists in the binary", cli_problems(a.repo, a.bin))
    else:
        report("skip", "docs: stallwatch subcommands and flags (set STALLWATCH_BIN)")
    print(f"COUNTS {results['ok']} {results['FAIL']} {results['skip']}")
    return 0 if results["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
