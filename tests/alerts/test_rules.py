#!/usr/bin/env python3
"""Offline checks of the alert rules, the generated PrometheusRule, the override generator, the
runbooks and the promtool test coverage. Python 3 standard library + promtool on PATH."""

import glob
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import gen  # noqa: E402

SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
# PromQL and template features Prometheus 2.42 does not have (the rules must run on 2.42: no 3.x features).
NOT_IN_242 = [r"\blimitk\s*\(", r"\blimit_ratio\s*\(", r"\bfirst_over_time\s*\(", r"\bts_of_\w+\s*\(",
              r"\binfo\s*\(", r"\bdouble_exponential_smoothing\s*\(", r"\bsort_by_label(_desc)?\s*\(",
              r"\bmad_over_time\s*\(", r"\blast_over_time\s*\(.*\bstep\s*\(", r"\[[^\]]*[+*]"]
TEMPLATE_NOT_IN_242 = [r"\btoDuration\b", r"\bnow\b", r"\burlQueryEscape\b", r"\bhumanizeTimestamp\b.*\btoTime\b"]


def rules():
    return common.yaml_file(common.RULES)


def alerts():
    return list(gen.alerts_of(rules()))


class RuleFile(unittest.TestCase):
    def test_promtool_check_rules_lint_all(self):
        r = common.run([common.promtool(), "check", "rules", "--lint=all", "--lint-fatal", common.RULES])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("SUCCESS", r.stdout)

    def test_parser_agrees_with_pyyaml_when_available(self):
        try:
            import yaml  # noqa: F401
        except ImportError:
            self.skipTest("PyYAML not installed (optional cross-check)")
        import yaml
        files = [common.RULES, common.PROMRULE] + sorted(glob.glob(os.path.join(common.RULE_TESTS, "*.yml")))
        for f in files:
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
            self.assertEqual(gen.yaml_load(text), yaml.safe_load(text), f)

    def test_groups(self):
        r = rules()
        self.assertEqual(set(r), {"groups"})
        names = [g["name"] for g in r["groups"]]
        self.assertEqual(len(names), len(set(names)), "group names must be unique")
        for g in r["groups"]:
            self.assertTrue(set(g) <= {"name", "interval", "limit", "rules"},
                            "group %s uses keys Prometheus 2.42 lacks: %s" % (g["name"], set(g)))

    def test_every_alert_follows_the_conventions(self):
        seen = set()
        for _, a in alerts():
            name = a["alert"]
            with self.subTest(alert=name):
                self.assertRegex(name, r"^Stallwatch([A-Z][a-z0-9]*)+$")
                self.assertNotIn(name, seen)
                seen.add(name)
                self.assertTrue(set(a) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, set(a))
                self.assertEqual(set(a["labels"]), {"severity"})
                self.assertIn(a["labels"]["severity"], SEVERITIES)
                self.assertEqual(set(a["annotations"]), ANNOTATIONS)
                self.assertEqual(a["annotations"]["runbook_url"], common.RUNBOOK_BASE + "#" + name.lower())
                desc = a["annotations"]["description"]
                if name == "StallwatchExporterAbsent":  # no object to name, only the cluster
                    self.assertIn("$labels.cluster", desc, "the description must name the cluster")
                else:
                    self.assertIn("{{ $labels.", desc, "the description must name the object")
                self.assertNotIn("changes(", a["expr"], "use the exporter's durations, not changes() heuristics")
                for pat in NOT_IN_242:
                    self.assertIsNone(re.search(pat, a["expr"]), "not in Prometheus 2.42: " + pat)
                for text in a["annotations"].values():
                    for pat in TEMPLATE_NOT_IN_242:
                        self.assertIsNone(re.search(pat, text), "template function not in 2.42: " + pat)

    def test_minimum_alert_set(self):
        # The documented minimum set, and the main alert.
        have = {a["alert"] for _, a in alerts()}
        for name in ["StallwatchObjectStalled", "StallwatchGenerationNotObserved", "StallwatchPhaseNotReady",
                     "StallwatchImageNotRolledOut", "StallwatchRolloutNotProgressing", "StallwatchPodsOutdated",
                     "StallwatchControllerSilent", "StallwatchLeaseStale", "StallwatchWatchDrift",
                     "StallwatchWatchErrors", "StallwatchWatchThrottled", "StallwatchTargetNotSynced",
                     "StallwatchExporterAbsent"]:
            self.assertIn(name, have)

    def test_duration_alerts_use_scrape_time_durations(self):
        exprs = {a["alert"]: a["expr"] for _, a in alerts()}
        self.assertIn("stallwatch_rollout_stalled_seconds", exprs["StallwatchRolloutNotProgressing"])
        self.assertIn("stallwatch_unconverged_seconds", exprs["StallwatchObjectStalled"])
        self.assertIn("stallwatch_phase_duration_seconds", exprs["StallwatchPhaseNotReady"])
        self.assertIn("stallwatch_generation_unobserved_seconds", exprs["StallwatchGenerationNotObserved"])
        self.assertIn("stallwatch_stalled == 1", exprs["StallwatchObjectStalled"])
        self.assertIn('absent(up{job=~".*stallwatch.*"}', exprs["StallwatchExporterAbsent"])

    def test_annotation_queries_parse(self):
        """PromQL inside `query` templates only fails at alert time: parse it now."""
        found = []
        for _, a in alerts():
            for key, text in a["annotations"].items():
                for m in re.finditer(r'printf "((?:[^"\\]|\\.)*)"', text):
                    q = json.loads('"%s"' % m.group(1))
                    if "%" not in q or not re.search(r"[a-z_]+[({]", q):
                        continue  # a number format such as %.0f, not a query
                    q = q.replace("%[1]s", 'target="x",kind="K",namespace="n",name="o"')
                    q = q.replace("%s", 'target="x",kind="K",namespace="n",name="o"').replace("%q", '"x"')
                    found.append(("%s %s" % (a["alert"], key), q))
        self.assertGreater(len(found), 10)
        bad = common.check_promql(found)
        self.assertEqual(bad, [], "\n".join("%s: %s\n  %s" % b for b in bad))


class Generated(unittest.TestCase):
    def test_prometheusrule_is_the_rule_file(self):
        """Drift is impossible: the committed PrometheusRule parses to exactly the rule file's groups."""
        pr = common.yaml_file(common.PROMRULE)
        self.assertEqual(pr["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(pr["kind"], "PrometheusRule")
        self.assertEqual(pr["metadata"]["name"], "stallwatch")
        self.assertEqual(set(pr), {"apiVersion", "kind", "metadata", "spec"})
        self.assertEqual(set(pr["spec"]), {"groups"})
        self.assertEqual(pr["spec"]["groups"], rules()["groups"])

    def test_generated_files_up_to_date(self):
        r = common.run([sys.executable, common.GENERATE, "--check"])
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_prometheusrule_spec_passes_promtool(self):
        pr = common.yaml_file(common.PROMRULE)
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "spec.rules.yml")
            with open(p, "w", encoding="utf-8") as f:
                f.write(gen.yaml_dump(pr["spec"]))
            r = common.run([common.promtool(), "check", "rules", p])
            self.assertEqual(r.returncode, 0, r.stdout)

    def test_yaml_dump_round_trips(self):
        r = rules()
        self.assertEqual(gen.yaml_load(gen.yaml_dump(r)), r)

    def test_prometheusrule_options(self):
        r = common.run([sys.executable, common.GENERATE, "prometheusrule", "--namespace", "monitoring",
                        "--label", "release=kube-prometheus-stack"])
        self.assertEqual(r.returncode, 0, r.stdout)
        pr = gen.yaml_load(r.stdout)
        self.assertEqual(pr["metadata"], {"name": "stallwatch", "namespace": "monitoring",
                                          "labels": {"release": "kube-prometheus-stack"}})
        self.assertEqual(pr["spec"]["groups"], rules()["groups"])

    def test_docs_table_lists_every_alert(self):
        with open(os.path.join(common.ROOT, "docs", "alerts.md"), encoding="utf-8") as f:
            doc = f.read()
        for _, a in alerts():
            self.assertIn("| [%s](runbooks.md#%s) |" % (a["alert"], a["alert"].lower()), doc)


class Overrides(unittest.TestCase):
    def override(self, *args):
        return common.run([sys.executable, common.GENERATE, "override"] + list(args))

    def test_params_declared_and_listed(self):
        r = common.run([sys.executable, common.GENERATE, "params"])
        self.assertEqual(r.returncode, 0, r.stdout)
        params = json.loads(r.stdout)
        self.assertEqual(set(params), {a["alert"] for _, a in alerts()})
        self.assertEqual(params["StallwatchPhaseNotReady"]["threshold"], {"kind": "seconds", "default": "900"})
        self.assertEqual(params["StallwatchExporterAbsent"]["job"], {"kind": "regex", "default": ".*stallwatch.*"})
        for ps in params.values():
            self.assertIn("for", ps)

    def test_override_rewrites_thresholds_and_for(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "short.rules.yml")
            values = os.path.join(tmp, "v.json")
            with open(values, "w") as f:
                json.dump({"StallwatchLeaseStale": {"threshold": "5m"}}, f)
            r = self.override("--set", "*.for=1s", "--set", "StallwatchPhaseNotReady.threshold=30s",
                              "--set", "StallwatchPodsOutdated.window=2m",
                              "--set", "StallwatchExporter*.job=kubearmor/stallwatch",
                              "--set", "StallwatchWatchErrors.severity=critical", "--values", values, "-o", out)
            self.assertEqual(r.returncode, 0, r.stdout)
            new = {a["alert"]: a for _, a in gen.alerts_of(common.yaml_file(out))}
            old = {a["alert"]: a for _, a in alerts()}
            self.assertEqual({a["for"] for a in new.values()}, {"1s"})
            self.assertIn("stallwatch_phase_duration_seconds > 30)", new["StallwatchPhaseNotReady"]["expr"])
            self.assertIn("stallwatch_rollout_stalled_seconds < 900", new["StallwatchPhaseNotReady"]["expr"])
            self.assertIn("[2m]", new["StallwatchPodsOutdated"]["expr"])
            self.assertIn("offset 2m", new["StallwatchPodsOutdated"]["expr"])
            self.assertNotIn("30m", new["StallwatchPodsOutdated"]["expr"])
            self.assertIn('absent(up{job=~"kubearmor/stallwatch"})', new["StallwatchExporterAbsent"]["expr"])
            self.assertIn('up{job=~"kubearmor/stallwatch"} == 0', new["StallwatchExporterDown"]["expr"])
            self.assertIn("> 300", new["StallwatchLeaseStale"]["expr"])
            self.assertEqual(new["StallwatchWatchErrors"]["labels"]["severity"], "critical")
            # nothing else changed
            for name in old:
                self.assertEqual(new[name]["annotations"], old[name]["annotations"])
            self.assertEqual(new["StallwatchObjectStalled"]["expr"], old["StallwatchObjectStalled"]["expr"])
            r = common.run([common.promtool(), "check", "rules", out])
            self.assertEqual(r.returncode, 0, r.stdout)

    def test_override_errors(self):
        for args in (["--set", "StallwatchNope.for=1s"], ["--set", "StallwatchLeaseStale.nope=1"],
                     ["--set", "StallwatchLeaseStale.threshold=soon"], ["--set", "garbage"],
                     ["--set", "StallwatchLeaseStale.severity=page"]):
            r = self.override(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stdout))

    def test_override_as_prometheusrule(self):
        r = self.override("--set", "*.for=0s", "--prometheusrule")
        self.assertEqual(r.returncode, 0, r.stdout)
        pr = gen.yaml_load(r.stdout)
        self.assertEqual(pr["kind"], "PrometheusRule")
        self.assertEqual({a.get("for") for _, a in gen.alerts_of(pr["spec"])}, {"0s"})

    def test_shortened_rules_fire_within_seconds(self):
        """What the end-to-end test relies on: shortened thresholds page the story in seconds."""
        with tempfile.TemporaryDirectory() as tmp:
            rules_path = os.path.join(tmp, "short.rules.yml")
            r = self.override("--set", "*.for=2s", "--set", "*.threshold=5s", "-o", rules_path)
            self.assertEqual(r.returncode, 0, r.stdout)
            test = {
                "rule_files": ["short.rules.yml"], "evaluation_interval": "1s",
                "tests": [{"interval": "1s", "input_series": [
                    {"series": 'up{job="stallwatch",instance="a:8080"}', "values": "1x20"},
                    {"series": 'stallwatch_stalled{target="kubearmor",kind="KubeArmorConfig",namespace="kubearmor",'
                               'name="c",reason="ImageNotRolledOut"}',
                     "values": "1x20"},
                    {"series": 'stallwatch_phase_duration_seconds{target="kubearmor",kind="KubeArmorConfig",'
                               'namespace="kubearmor",name="c"}',
                     "values": "0+1x20"},
                    {"series": 'stallwatch_phase{target="kubearmor",kind="KubeArmorConfig",namespace="kubearmor",'
                               'name="c",phase="Pending"}',
                     "values": "1x20"},
                    {"series": 'stallwatch_phase_ready{target="kubearmor",kind="KubeArmorConfig",'
                               'namespace="kubearmor",name="c"}',
                     "values": "0x20"}],
                    "promql_expr_test": [
                        {"expr": 'count(ALERTS{alertstate="firing"}) or vector(0)', "eval_time": "1s",
                         "exp_samples": [{"labels": "{}", "value": 0}]},
                        {"expr": 'ALERTS{alertstate="firing"}', "eval_time": "3s", "exp_samples": [
                            {"labels": 'ALERTS{alertname="StallwatchObjectStalled",alertstate="firing",'
                                       'severity="critical",target="kubearmor",kind="KubeArmorConfig",'
                                       'namespace="kubearmor",name="c"}',
                             "value": 1}]},
                        {"expr": 'ALERTS{alertstate="firing",alertname="StallwatchPhaseNotReady"}', "eval_time": "9s",
                         "exp_samples": [
                            {"labels": 'ALERTS{alertname="StallwatchPhaseNotReady",alertstate="firing",'
                                       'severity="warning",target="kubearmor",kind="KubeArmorConfig",'
                                       'namespace="kubearmor",name="c",phase="Pending"}',
                             "value": 1}]}]}]}
            path = os.path.join(tmp, "short.test.yml")
            with open(path, "w") as f:
                f.write(gen.yaml_dump(test))
            res = common.run([common.promtool(), "test", "rules", path])
            self.assertEqual(res.returncode, 0, res.stdout)


class FleetOverrides(unittest.TestCase):
    """--cluster-labels, --selector and --runbook-url-pattern of alerts/generate override."""

    def override(self, *args):
        return common.run([sys.executable, common.GENERATE, "override"] + list(args))

    def test_defaults_are_the_rule_file(self):
        r = self.override()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(gen.yaml_load(r.stdout), rules())

    def test_every_guard_and_lookup_is_keyed_by_cluster_job_instance(self):
        for _, a in alerts():
            expr = a["expr"]
            # Per instance; per install (cluster, job) only in the clauses for sharded installs,
            # whose settings and rollout series may come from another shard (instance).
            per_install = expr.count("on (cluster, job, target)")
            self.assertEqual(per_install, expr.count("and on (cluster, job)\n"),
                             "%s: every per-install clause is limited to sharded installs" % a["alert"])
            for m in re.finditer(r"\bon\s*\(([^)]*)\)", expr):
                self.assertIn([x.strip() for x in m.group(1).split(",")],
                              (["cluster", "job", "instance", "target"], ["cluster", "job", "target"],
                               ["cluster", "job"]),
                              "%s: join on (%s)" % (a["alert"], m.group(1)))
            for key in ("summary", "description"):
                for run in re.findall(r"(?:[a-z_]+=%q,?)+", a["annotations"][key]):
                    self.assertTrue(run.startswith("cluster=%q,job=%q,instance=%q"),
                                    "%s %s: lookup keyed by %s" % (a["alert"], key, run))
            self.assertIn(gen.CLUSTER_NAME_FRAGMENT, a["annotations"]["summary"],
                          "%s: the page names the cluster" % a["alert"])

    def test_cluster_labels_selector_and_runbook_pattern(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "fleet.rules.yml")
            r = self.override("--cluster-labels", "region,cluster", "--selector", 'job="kubearmor/stallwatch"',
                              "--runbook-url-pattern", "https://wiki.example/stallwatch/%s.html", "-o", out)
            self.assertEqual(r.returncode, 0, r.stdout)
            r = common.run([common.promtool(), "check", "rules", "--lint=all", "--lint-fatal", out])
            self.assertEqual(r.returncode, 0, r.stdout)
            new = {a["alert"]: a for _, a in gen.alerts_of(common.yaml_file(out))}
        for name, a in new.items():
            with self.subTest(alert=name):
                self.assertEqual(a["annotations"]["runbook_url"],
                                 "https://wiki.example/stallwatch/%s.html" % name.lower())
                code = common.strip_strings(a["expr"])
                self.assertNotIn("(cluster", code)
                for m in re.finditer(r"(stallwatch_[a-z0-9_]+)(\{[^}]*\})?", a["expr"].split("#")[0]):
                    self.assertTrue((m.group(2) or "").startswith('{job="kubearmor/stallwatch"'), m.group(0))
                for key in ("summary", "description"):
                    text = a["annotations"][key]
                    self.assertIn("{{ with $labels.region }} in region {{ . }}{{ end }}"
                                  "{{ with $labels.cluster }} in cluster {{ . }}{{ end }}", a["annotations"]["summary"])
                    for q in re.findall(r'printf "((?:[^"\\]|\\.)*)"', text):
                        if "stallwatch_" in q:
                            self.assertIn('{job=\\"kubearmor/stallwatch\\",', q, q)
        self.assertIn("unless on (region, cluster, job, instance, target)", new["StallwatchPhaseNotReady"]["expr"])
        self.assertIn('count by (region, cluster) (up{job="kubearmor/stallwatch"})',
                      new["StallwatchExporterAbsent"]["expr"])
        self.assertIn('up{job="kubearmor/stallwatch"} == 0', new["StallwatchExporterDown"]["expr"])
        self.assertIn('printf "region=%q,cluster=%q,job=%q,instance=%q,target=%q',
                      new["StallwatchObjectStalled"]["annotations"]["description"])
        self.assertIn("$labels.region $labels.cluster $labels.job $labels.instance $labels.target",
                      new["StallwatchObjectStalled"]["annotations"]["description"])

    def test_no_cluster_label(self):
        r = self.override("--cluster-labels", "")
        self.assertEqual(r.returncode, 0, r.stdout)
        new = {a["alert"]: a for _, a in gen.alerts_of(gen.yaml_load(r.stdout))}
        self.assertIn("unless on (job, instance, target)", new["StallwatchPhaseNotReady"]["expr"])
        self.assertIn("count by () (up{", new["StallwatchExporterAbsent"]["expr"])
        for a in new.values():
            self.assertNotIn("cluster", json.dumps(a["annotations"]).replace("clusters", ""), a["alert"])

    def test_fleet_errors(self):
        for args in (["--cluster-labels", "name"], ["--cluster-labels", "bad-label"], ["--cluster-labels", "a,a"],
                     ["--selector", '{job="x"}'], ["--runbook-url-pattern", "https://x/"],
                     ["--runbook-url-pattern", "https://x/%s/%d"],
                     ["--selector", 'job="x"', "--set", "StallwatchExporterDown.job=x"]):
            r = self.override(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stdout))
            self.assertIn("alerts/generate:", r.stdout)


def jsonnet():
    build = os.path.join(common.HERE, "build-jsonnet")
    r = common.run([build])
    if r.returncode != 0:
        if "go not found" in r.stdout:
            raise unittest.SkipTest("go not installed: cannot build go-jsonnet to render mixin.libsonnet")
        raise AssertionError("tests/alerts/build-jsonnet failed:\n" + r.stdout)
    return os.path.join(r.stdout.strip().splitlines()[-1], "jsonnet")


class Mixin(unittest.TestCase):
    """mixin/mixin.libsonnet rendered by go-jsonnet equals the rule file, and agrees with
    alerts/generate override for non-default settings."""

    @classmethod
    def setUpClass(cls):
        cls.jsonnet = jsonnet()

    def render(self, code):
        r = common.run([self.jsonnet, "-J", common.ROOT, "-e", code])
        self.assertEqual(r.returncode, 0, r.stdout)
        return json.loads(r.stdout)

    def test_defaults_render_the_rule_file(self):
        self.assertEqual(self.render('(import "mixin/mixin.libsonnet").prometheusAlerts'), rules())

    def test_config_matches_the_generator(self):
        cfg = ('{_config+:: {clusterLabels: ["region", "cluster"], selector: "job=~\\"kubearmor/stall.*\\"", '
               'runbookURLPattern: "https://runbooks.example/%s", alerts+: {StallwatchPhaseNotReady+: '
               '{threshold: 1800, "for": "5m"}, StallwatchPodsOutdated+: {window: "1h"}, '
               'StallwatchWatchErrors+: {severity: "critical"}}}}')
        got = self.render('((import "mixin/mixin.libsonnet") + %s).prometheusAlerts' % cfg)
        r = common.run([sys.executable, common.GENERATE, "override", "--cluster-labels", "region,cluster",
                        "--selector", 'job=~"kubearmor/stall.*"',
                        "--runbook-url-pattern", "https://runbooks.example/%s",
                        "--set", "StallwatchPhaseNotReady.threshold=1800", "--set", "StallwatchPhaseNotReady.for=5m",
                        "--set", "StallwatchPodsOutdated.window=1h",
                        "--set", "StallwatchWatchErrors.severity=critical"])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(got, gen.yaml_load(r.stdout))
        self.assertIn("stallwatch_phase_duration_seconds{job=~\"kubearmor/stall.*\"} > 1800",
                      [a for g in got["groups"] for a in g["rules"]
                       if a["alert"] == "StallwatchPhaseNotReady"][0]["expr"])

    def test_job_parameter_and_no_cluster_label(self):
        got = self.render('((import "mixin/mixin.libsonnet") + {_config+:: {clusterLabels: [], '
                          'alerts+: {StallwatchExporterAbsent+: {job: "monitoring/stallwatch"}}}}).prometheusAlerts')
        r = common.run([sys.executable, common.GENERATE, "override", "--cluster-labels", "",
                        "--set", "StallwatchExporterAbsent.job=monitoring/stallwatch"])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(got, gen.yaml_load(r.stdout))

    def test_inhibit_rules_and_dashboards(self):
        m = self.render('local m = (import "mixin/mixin.libsonnet") + {_config+:: {clusterLabels: ["region"]}}; '
                        '{inhibit: m.alertmanagerInhibitRules, dashboards: std.objectFields(m.grafanaDashboards)}')
        self.assertEqual(m["inhibit"][0]["equal"], ["region"] + gen.OBJECT_LABELS)
        self.assertEqual(m["dashboards"], sorted(os.path.basename(f) for f in glob.glob(
            os.path.join(common.DASHBOARDS, "*.json"))))
        for multi, hide in (("false", 2), ("true", 0)):
            got = self.render('local m = (import "mixin/mixin.libsonnet") + {_config+:: {showMultiCluster: %s}}; '
                              '[[v.hide for v in d.templating.list if v.name == "cluster"]'
                              ' for d in std.objectValues(m.grafanaDashboards)]' % multi)
            self.assertEqual(got, [[hide]] * len(m["dashboards"]))
        plain = self.render('(import "mixin/mixin.libsonnet").grafanaDashboards')
        for name, d in plain.items():
            with open(os.path.join(common.DASHBOARDS, name), encoding="utf-8") as f:
                self.assertEqual(d, json.load(f), name)
        d = self.render('(import "mixin/mixin.libsonnet").alertmanagerInhibitRules')
        self.assertEqual(d, common.yaml_file(os.path.join(common.ALERTS, "alertmanager-inhibit.yml"))["inhibit_rules"])


class Inhibition(unittest.TestCase):
    """alerts/alertmanager-inhibit.yml in a real Alertmanager: while the page fires for an object,
    the warnings about that object are inhibited; nothing about another cluster or object is."""

    SNIPPET = os.path.join(common.ALERTS, "alertmanager-inhibit.yml")

    def test_snippet_is_valid_alertmanager_config(self):
        amtool = shutil.which("amtool")
        if not amtool:
            self.skipTest("amtool not on PATH (Debian package prometheus-alertmanager)")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "alertmanager.yml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write("route: {receiver: none}\nreceivers: [{name: none}]\n")
                f.write(open(self.SNIPPET, encoding="utf-8").read())
            r = common.run([amtool, "check-config", cfg])
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn("1 inhibit rules", r.stdout)

    def test_real_alertmanager_inhibits_per_object_and_cluster(self):
        exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if not exe:
            self.skipTest("Alertmanager not on PATH (Debian package prometheus-alertmanager)")
        import socket
        import subprocess
        import time
        import urllib.request
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "alertmanager.yml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write("route: {receiver: none, group_wait: 0s, group_interval: 1s}\nreceivers: [{name: none}]\n")
                f.write(open(self.SNIPPET, encoding="utf-8").read())
            log = open(os.path.join(tmp, "am.log"), "w")
            proc = subprocess.Popen([exe, "--config.file=" + cfg, "--storage.path=" + tmp,
                                     "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address="],
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                base = "http://127.0.0.1:%d" % port
                for _ in range(100):
                    try:
                        urllib.request.urlopen(base + "/-/ready", timeout=1)
                        break
                    except OSError:
                        time.sleep(0.1)
                obj = {"job": "stallwatch", "instance": "10.244.0.15:8080", "target": "kubearmor",
                       "kind": "KubeArmorConfig", "namespace": "kubearmor", "name": "kubearmorconfig-default"}

                def alert(name, severity, **labels):
                    return {"labels": dict(obj, alertname=name, severity=severity, **labels),
                            "annotations": {"summary": name}}
                a = {"cluster": "prod-a"}
                b = {"cluster": "prod-b"}
                sent = [
                    alert("StallwatchObjectStalled", "critical", **a),
                    alert("StallwatchGenerationNotObserved", "warning", **a),
                    alert("StallwatchPhaseNotReady", "warning", phase="Pending", **a),
                    alert("StallwatchControllerSilent", "warning", **a),
                    alert("StallwatchImageNotRolledOut", "warning", slot="kubearmor", workload_kind="DaemonSet",
                          workload_namespace="kubearmor", workload="kubearmor", container="kubearmor", **a),
                    # the same object and target names in another cluster, no page there
                    alert("StallwatchPhaseNotReady", "warning", phase="Pending", **b),
                    # another object in the paged cluster
                    dict(alert("StallwatchRolloutNotProgressing", "warning", **a),
                         labels=dict(obj, alertname="StallwatchRolloutNotProgressing", severity="warning",
                                     kind="Deployment", name="other", **a)),
                ]
                req = urllib.request.Request(base + "/api/v2/alerts", data=json.dumps(sent).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
                urllib.request.urlopen(req, timeout=5)
                deadline = time.time() + 15
                while True:
                    got = json.load(urllib.request.urlopen(base + "/api/v2/alerts", timeout=5))
                    states = {(g["labels"]["alertname"], g["labels"]["cluster"], g["labels"]["name"]):
                              g["status"]["state"] for g in got}
                    active = sorted(k for k, v in states.items() if v == "active")
                    if len(states) == len(sent) and len(active) == 3 or time.time() > deadline:
                        break
                    time.sleep(0.2)
                self.assertEqual(active, [
                    ("StallwatchObjectStalled", "prod-a", "kubearmorconfig-default"),
                    ("StallwatchPhaseNotReady", "prod-b", "kubearmorconfig-default"),
                    ("StallwatchRolloutNotProgressing", "prod-a", "other")], states)
                self.assertEqual(sorted(k[0] for k, v in states.items() if v == "suppressed"), [
                    "StallwatchControllerSilent", "StallwatchGenerationNotObserved", "StallwatchImageNotRolledOut",
                    "StallwatchPhaseNotReady"], states)
            finally:
                proc.terminate()
                proc.wait(10)
                log.close()


class Coverage(unittest.TestCase):
    """Every alert has at least one case where it fires (exact labels and all annotations
    asserted) and one where it must not, in tests/alerts/rules/*.test.yml."""

    def test_every_alert_fires_and_does_not_fire(self):
        fire, quiet = {}, {}
        files = sorted(glob.glob(os.path.join(common.RULE_TESTS, "*.test.yml")))
        self.assertTrue(files)
        for f in files:
            doc = common.yaml_file(f)
            self.assertEqual(doc["rule_files"], ["../../../alerts/stallwatch.rules.yml"], f)
            for t in doc["tests"]:
                self.assertIn("interval", t, "%s: `interval` is required by promtool 2.42" % f)
                for case in t.get("alert_rule_test") or []:
                    name = case["alertname"]
                    exp = case.get("exp_alerts") or []
                    if exp:
                        for e in exp:
                            self.assertIn("severity", e.get("exp_labels", {}), "%s %s" % (f, name))
                            self.assertEqual(set(e.get("exp_annotations", {})), ANNOTATIONS, "%s %s" % (f, name))
                        fire[name] = fire.get(name, 0) + 1
                    else:
                        quiet[name] = quiet.get(name, 0) + 1
        for _, a in alerts():
            with self.subTest(alert=a["alert"]):
                self.assertGreater(fire.get(a["alert"], 0), 0, "no case where %s fires" % a["alert"])
                self.assertGreater(quiet.get(a["alert"], 0), 0, "no case where %s must not fire" % a["alert"])
        unknown = (set(fire) | set(quiet)) - {a["alert"] for _, a in alerts()}
        self.assertEqual(unknown, set())

    def test_required_scenarios_exist(self):
        names = " ".join(os.path.basename(f) for f in glob.glob(os.path.join(common.RULE_TESTS, "*.test.yml")))
        for s in ("healthy-rollout-node-churn", "blips-and-flapping", "ondelete", "pinning", "kubearmor-story"):
            self.assertIn(s, names)


class Runbooks(unittest.TestCase):
    def test_one_section_per_alert(self):
        with open(common.RUNBOOKS, encoding="utf-8") as f:
            text = f.read()
        headings = re.findall(r"^## (\S+)\s*$", text, re.M)
        for _, a in alerts():
            with self.subTest(alert=a["alert"]):
                self.assertIn(a["alert"], headings, "docs/runbooks.md needs a `## %s` section" % a["alert"])
                section = text.split("## %s\n" % a["alert"], 1)[1].split("\n## ", 1)[0]
                for part in ("Meaning", "Confirm", "Remedies", "Prevention"):
                    self.assertIn("**%s" % part, section, "%s runbook lacks %s" % (a["alert"], part))


if __name__ == "__main__":
    sys.exit(common.main_unittest(__name__))
