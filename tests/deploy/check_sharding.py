#!/usr/bin/env python3
"""Checks the StatefulSet mode renders (helm-sharded, kustomize-sharded) against their promise.

  tests/deploy/check_sharding.py RENDER_DIR

- no Deployment; as many StatefulSets as replicas per shard, each with one pod per shard,
  distinct selectors, `--total-shards` equal to its replicas, and the pod name in
  STALLWATCH_POD_NAME (the shard is the pod's ordinal);
- replicas of one shard are spread by anti-affinity on the pod index; a PodDisruptionBudget
  selects the pods;
- the RBAC equals the unsharded render's (sharding changes no permission).
Prints one `ok`/`FAIL` line per check and `COUNTS passed failed 0` last.
"""

import os
import sys

import yaml


def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def rbac(docs):
    return sorted(yaml.safe_dump({"kind": d["kind"], "name": d["metadata"]["name"], "rules": d.get("rules"),
                                  "roleRef": d.get("roleRef")}) for d in docs
                  if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"))


def problems(docs, shards, replicas, unsharded):
    out = []
    if any(d["kind"] == "Deployment" for d in docs):
        out.append("a Deployment is still rendered")
    sts = [d for d in docs if d["kind"] == "StatefulSet"]
    if len(sts) != replicas:
        out.append(f"{len(sts)} StatefulSets, want {replicas} (one per replica of a shard)")
    selectors = set()
    for s in sts:
        name = s["metadata"]["name"]
        spec = s["spec"]
        selectors.add(yaml.safe_dump(spec["selector"]))
        if spec.get("replicas") != shards:
            out.append(f"{name}: replicas {spec.get('replicas')}, want {shards}")
        pod = spec["template"]["spec"]
        [c] = [c for c in pod["containers"] if c["name"] == "stallwatch"]
        args = c.get("args") or []
        if "--total-shards" not in args or args[args.index("--total-shards") + 1] != str(shards):
            out.append(f"{name}: args {args} lack --total-shards {shards}")
        env = {e["name"]: e for e in c.get("env") or []}
        ref = ((env.get("STALLWATCH_POD_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
        if ref.get("fieldPath") != "metadata.name":
            out.append(f"{name}: STALLWATCH_POD_NAME is not the pod name")
        labels = spec["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
            out.append(f"{name}: the selector does not select its pods")
        anti = (((pod.get("affinity") or {}).get("podAntiAffinity") or {})
                .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
        keys = [k for t in anti for k in t["podAffinityTerm"].get("matchLabelKeys") or []]
        if "apps.kubernetes.io/pod-index" not in keys:
            out.append(f"{name}: no anti-affinity on apps.kubernetes.io/pod-index")
    if len(selectors) != len(sts):
        out.append("two StatefulSets share a selector (they would fight over pods)")
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if not pdbs:
        out.append("no PodDisruptionBudget")
    for p in pdbs:
        sel = p["spec"]["selector"]["matchLabels"]
        for s in sts:
            labels = s["spec"]["template"]["metadata"]["labels"]
            if any(labels.get(k) != v for k, v in sel.items()):
                out.append(f"PDB {p['metadata']['name']} does not select {s['metadata']['name']}'s pods")
    if rbac(docs) != rbac(unsharded):
        out.append("RBAC differs from the unsharded render")
    return out


def main():
    render = sys.argv[1]
    passed = failed = 0
    for name, base, shards, replicas in [("helm-sharded", "helm-default", 3, 2),
                                         ("kustomize-sharded", "kustomize-base", 3, 1)]:
        path = os.path.join(render, name + ".yaml")
        if not os.path.exists(path):
            print(f"FAIL  {name}: not rendered")
            failed += 1
            continue
        probs = problems(load(path), shards, replicas, load(os.path.join(render, base + ".yaml")))
        if probs:
            failed += 1
            print(f"FAIL  {name}: StatefulSet mode ({shards} shards x {replicas})")
            for p in probs:
                print(f"      {p}")
        else:
            passed += 1
            print(f"ok    {name}: StatefulSet mode ({shards} shards x {replicas}), PDB, anti-affinity, RBAC unchanged")
    print(f"COUNTS {passed} {failed} 0")


if __name__ == "__main__":
    main()
