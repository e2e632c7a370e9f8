#!/usr/bin/env python3
"""The chart's RBAC equals `stallwatch rbac` for every values file and example config.

The exporter's watch plan decides what it lists and watches; `stallwatch rbac --config F`
prints the rules that plan needs. The chart derives its Roles/ClusterRole in templates, so
for each of: the chart's default values, values-kubearmor.yaml, every tests/deploy/values/*.yaml
with a config, and every examples/*.yaml as `config:`, this renders the chart (without
rbac.additionalReadRules), takes the config from the rendered ConfigMap, runs `stallwatch rbac`
on it and compares {scope: {apiGroup: resources}}. Also the kustomize renders given with
--render: base and standalone overlays must equal it; the kubearmor sidecar component may grant
more (a generic namespace Role) but not less.

Prints ok/FAIL lines and a final `COUNTS passed failed skipped` line.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile

import yaml

results = {"ok": 0, "FAIL": 0, "skip": 0}


def report(status, name, detail=None):
    results[status] += 1
    print(f"{status:<5} {name}")
    if detail:
        for line in str(detail).splitlines():
            print(f"      {line}")


def model(docs):
    """{scope: {group: sorted resources}}; scope "_cluster" for ClusterRoles."""
    out = {}
    for d in docs:
        if not d:
            continue
        if d.get("kind") == "ClusterRole":
            scope = "_cluster"
        elif d.get("kind") == "Role":
            scope = d["metadata"]["namespace"]
        else:
            continue
        for r in d.get("rules") or []:
            assert sorted(r.get("verbs") or []) == ["get", "list", "watch"], (scope, r)
            for g in r.get("apiGroups") or []:
                out.setdefault(scope, {}).setdefault(g, set()).update(r.get("resources") or [])
    return {s: {g: sorted(v) for g, v in gs.items()} for s, gs in out.items()}


def config_of(docs):
    for d in docs:
        if d and d.get("kind") == "ConfigMap" and "config.yaml" in (d.get("data") or {}):
            return d["data"]["config.yaml"]
    return None


def binary_model(binary, config_text, td):
    p = os.path.join(td, "config.yaml")
    with open(p, "w") as f:
        f.write(config_text)
    r = subprocess.run([binary, "rbac", "--config", p], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"stallwatch rbac failed: {r.stderr.strip()}")
    return model(list(yaml.safe_load_all(r.stdout)))


def diff(chart, want):
    lines = []
    for scope in sorted(set(chart) | set(want)):
        for g in sorted(set(chart.get(scope, {})) | set(want.get(scope, {}))):
            c = set(chart.get(scope, {}).get(g, []))
            w = set(want.get(scope, {}).get(g, []))
            where = f"{'cluster-wide' if scope == '_cluster' else 'namespace ' + scope}, group {g or 'core'!r}"
            if w - c:
                lines.append(f"{where}: the exporter watches {sorted(w - c)} but the chart does not grant them (403)")
            if c - w:
                lines.append(f"{where}: the chart grants {sorted(c - w)} that the exporter never watches")
    return lines


def superset(chart, want):
    return [line for line in diff(chart, want) if "does not grant" in line]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helm", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--render", help="dir of kustomize-*.yaml renders to check too")
    a = ap.parse_args()
    chart = os.path.join(a.repo, "deploy/helm/stallwatch")
    cases = [("chart default values", [])]
    cases.append(("values-kubearmor.yaml", ["-f", os.path.join(chart, "values-kubearmor.yaml")]))
    for f in sorted(glob.glob(os.path.join(a.repo, "tests/deploy/values/*.yaml"))):
        if "config" in (yaml.safe_load(open(f)) or {}):
            cases.append((os.path.relpath(f, a.repo), ["-f", f]))
    with tempfile.TemporaryDirectory() as td:
        for f in sorted(glob.glob(os.path.join(a.repo, "examples/*.yaml"))):
            v = os.path.join(td, os.path.basename(f))
            with open(v, "w") as out:
                yaml.safe_dump({"config": yaml.safe_load(open(f))}, out)
            cases.append((os.path.relpath(f, a.repo) + " as config", ["-f", v]))
        for name, args in cases:
            r = subprocess.run(
                [a.helm, "template", "stallwatch", chart, "--namespace", "stallwatch", *args,
                 "--set-json", "rbac.additionalReadRules=[]"],
                capture_output=True, text=True, check=False)
            if r.returncode != 0:
                report("FAIL", f"helm template ({name})", r.stderr)
                continue
            docs = list(yaml.safe_load_all(r.stdout))
            try:
                want = binary_model(a.bin, config_of(docs), td)
            except RuntimeError as e:
                report("FAIL", f"stallwatch rbac ({name})", e)
                continue
            got = model(docs)
            scopes = len(want)
            problems = diff(got, want)
            report("ok" if not problems else "FAIL",
                   f"chart RBAC == stallwatch rbac ({name}; {scopes} scope(s))", "\n".join(problems))
        if a.render:
            for p in sorted(glob.glob(os.path.join(a.render, "kustomize-*.yaml"))):
                name = os.path.basename(p)[:-5]
                docs = list(yaml.safe_load_all(open(p)))
                text = config_of(docs)
                if text is None:
                    report("skip", f"{name}: no config ConfigMap")
                    continue
                want = binary_model(a.bin, text, td)
                got = model(docs)
                sidecar = "kubearmor-sidecar" in name
                problems = superset(got, want) if sidecar else diff(got, want)
                what = "covers" if sidecar else "=="
                report("ok" if not problems else "FAIL", f"{name}: RBAC {what} stallwatch rbac", "\n".join(problems))
    print(f"COUNTS {results['ok']} {results['FAIL']} {results['skip']}")
    return 0 if results["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
