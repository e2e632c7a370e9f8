#!/usr/bin/env python3
"""Static checks of dashboards/*.json and of the metric names used by rules and dashboards.

Usage: lint_dashboards.py [--metrics FILE ...]

--metrics names the source of known metric names: a metrics exposition captured from the real
exporter's /metrics (text 0.0.4 or OpenMetrics; several files are merged), or docs/metrics.md
(its tables). Default: docs/metrics.md.

Re-implemented grafana/dashboard-linter rules (see RULES below for the list and why others are
not applicable). Every PromQL expression is parsed by promtool (Prometheus' own parser) after
template variables are replaced by concrete values.
"""

import argparse
import glob
import json
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

METRIC_SOURCES = [common.METRICS_DOC]

RULES = """
grafana/dashboard-linter rules re-implemented here (name -> what is checked):
  template-datasource-rule             exactly one variable of type datasource, named `datasource`, query prometheus
  template-job-rule                    a `job` variable (every stallwatch scrape job, one per install): multi,
                                       includeAll, allValue .+, datasource ${datasource}
  template-instance-rule               the same for an `instance` variable
  template-label-promql-rule           variable queries are label_values(<PromQL>, label), the PromQL parsed by promtool
  template-on-time-change-reload-rule  query variables refresh on time range change (refresh: 2)
  panel-datasource-rule                every panel and target uses {type: prometheus, uid: ${datasource}}
  panel-title-description-rule         every panel (rows excepted) has a title and a description
  panel-units-rule                     timeseries/stat/gauge/bargauge/table panels set a known unit
  panel-no-targets-rule                every query panel has a target with an expression
  target-promql-rule                   every target expression parses (promtool, after substituting variables)
  target-rate-interval-rule            rate/irate/increase/delta/idelta/deriv use [$__rate_interval]
  target-counter-agg-rule              *_total counters only inside rate/irate/increase/resets
  uneditable-dashboard                 editable: false
  target-job-rule                      every stallwatch_* selector has job=~"$job" (and cluster=~"$cluster")
not applicable:
  target-instance-rule                 no `instance` variable: replicas (HA) are merged with max by (...)
  target-logql-rule, target-logql-auto-rule   Loki only
fleet rules (stallwatch's own):
  cluster variable                     `cluster`: label_values(..., cluster), hidden (hide 2; the links set it),
                                       includeAll with allValue .* (matches series without the label)
  data links                           overview tables link every row to stallwatch-object; every var-X of a link
                                       is a variable there, the link sets datasource, cluster, target, namespace,
                                       name, and every ${__data.fields.F} is a label the panel's queries keep
  mappings and colours                 verdict mappings: Stalled, Failed red; InProgress amber; Current green;
                                       state-timeline panels have value mappings; the object dashboard draws
                                       verdict, phase and readiness as a state-timeline
  thresholds                           no literal duration thresholds in queries: they follow
                                       stallwatch_stalled_after_seconds (the target's stalledAfter)
  own workloads                        the object dashboard's workload row joins stallwatch_object_workload_info
extra checks:
  structure (uid, title, tags, time, annotations, description, schemaVersion 39-41, id null, no
  __inputs/__requires/${DS_*}), stable uid = file name, unique uids and titles, unique panel ids and
  refIds, gridPos within 24 columns without overlaps, deprecated panel types, table panels use instant
  table-format queries, every $variable used is defined, every metric name used by rules (expressions
  and annotation queries) and dashboards is known (--metrics)
"""

VALID_UNITS = {
    "none", "short", "percent", "percentunit", "s", "ms", "dtdurations", "dtdurationms", "dateTimeAsIso",
    "dateTimeFromNow", "ops", "reqps", "rps", "cps", "cpm", "bytes", "decbytes", "locale",
}
QUERY_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table", "state-timeline", "status-history",
                "piechart", "heatmap", "histogram"}
UNIT_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table"}
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
                "__range_ms": "3600000", "__interval_ms": "60000", "__dashboard": "x", "__name": "x"}


def dashboards():
    files = sorted(glob.glob(os.path.join(common.DASHBOARDS, "*.json")))
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            out.append((f, json.load(fh)))
    return out


def panels(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2)
        name = name.split(":")[0]
        if name in GRAFANA_VARS:
            return GRAFANA_VARS[name]
        if name in variables:
            return "x"
        raise KeyError(name)
    return re.sub(r"\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)


def variable_query(v):
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or v.get("definition", "")


def promql_of_variable(q):
    m = re.match(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", q, re.S)
    if m:
        return m.group(1)
    m = re.match(r"^\s*query_result\((.*)\)\s*$", q, re.S)
    if m:
        return m.group(1)
    return None


def all_exprs():
    """(where, raw expr, substituted expr) for every dashboard target and variable query."""
    out = []
    for f, d in dashboards():
        name = os.path.basename(f)
        variables = {v["name"] for v in d["templating"]["list"]}
        for v in d["templating"]["list"]:
            if v.get("type") == "query":
                e = promql_of_variable(variable_query(v))
                if e:
                    out.append(("%s variable %s" % (name, v["name"]), e, substitute(e, variables)))
        for p in panels(d):
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append(("%s panel %r %s" % (name, p.get("title"), t.get("refId")), t["expr"],
                                substitute(t["expr"], variables)))
    return out


class Structure(unittest.TestCase):
    def test_dashboards_exist(self):
        names = {os.path.basename(f) for f, _ in dashboards()}
        self.assertTrue({"stallwatch-overview.json", "stallwatch-object.json"} <= names, names)

    def test_structure(self):
        uids, titles = set(), set()
        for f, d in dashboards():
            with self.subTest(dashboard=os.path.basename(f)):
                stem = os.path.basename(f)[:-len(".json")]
                self.assertEqual(d.get("uid"), stem, "stable uid = file name")
                self.assertRegex(d["uid"], r"^[A-Za-z0-9_-]{1,40}$")
                self.assertNotIn(d["uid"], uids)
                uids.add(d["uid"])
                self.assertTrue(d.get("title"))
                self.assertNotIn(d["title"], titles)
                titles.add(d["title"])
                self.assertTrue(39 <= d.get("schemaVersion", 0) <= 41, d.get("schemaVersion"))
                self.assertIsNone(d.get("id"))
                self.assertNotIn("__inputs", d)
                self.assertNotIn("__requires", d)
                self.assertNotIn("${DS_", json.dumps(d))
                self.assertIn("stallwatch", d.get("tags", []))
                self.assertIn("time", d)
                self.assertIn("list", d["templating"])
                self.assertIn("annotations", d)
                self.assertTrue(d.get("description"))

    def test_uneditable_dashboard_rule(self):
        for f, d in dashboards():
            self.assertIs(d.get("editable"), False, f)

    def test_panel_ids_refids_and_grid(self):
        for f, d in dashboards():
            with self.subTest(dashboard=os.path.basename(f)):
                ids = [p["id"] for p in panels(d)]
                self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
                cells = {}
                for p in panels(d):
                    g = p["gridPos"]
                    self.assertTrue(g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, p["title"])
                    self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
                    for x in range(g["x"], g["x"] + g["w"]):
                        for y in range(g["y"], g["y"] + g["h"]):
                            self.assertNotIn((x, y), cells, "%r overlaps %r" % (p["title"], cells.get((x, y))))
                            cells[(x, y)] = p["title"]
                    refs = [t.get("refId") for t in p.get("targets", []) or []]
                    self.assertEqual(len(refs), len(set(refs)), p["title"])


class Templating(unittest.TestCase):
    def test_template_datasource_rule(self):
        for f, d in dashboards():
            ds = [v for v in d["templating"]["list"] if v.get("type") == "datasource"]
            self.assertEqual(len(ds), 1, f)
            self.assertEqual(ds[0]["name"], "datasource", f)
            self.assertEqual(ds[0]["query"], "prometheus", f)
            self.assertIn(ds[0].get("label"), ("Data source", "Data Source"), f)

    def test_template_job_and_instance_rules(self):
        for f, d in dashboards():
            for v in d["templating"]["list"]:
                if v["name"] in ("job", "instance"):
                    self.assertEqual(v.get("datasource", {}).get("uid"), "${datasource}", f)
                    self.assertTrue(v.get("multi") and v.get("includeAll"), f)
                    self.assertEqual(v.get("allValue"), ".+", f)

    def test_template_on_time_change_reload_rule(self):
        for f, d in dashboards():
            for v in d["templating"]["list"]:
                if v.get("type") == "query":
                    self.assertEqual(v.get("refresh"), 2, "%s variable %s" % (f, v["name"]))
                    self.assertEqual(v.get("datasource"), {"type": "prometheus", "uid": "${datasource}"}, f)

    def test_template_label_promql_rule(self):
        for f, d in dashboards():
            for v in d["templating"]["list"]:
                if v.get("type") == "query":
                    self.assertIsNotNone(promql_of_variable(variable_query(v)),
                                         "%s variable %s: use label_values(<selector>, label)" % (f, v["name"]))

    def test_required_variables(self):
        by = {os.path.basename(f): {v["name"] for v in d["templating"]["list"]} for f, d in dashboards()}
        self.assertTrue({"datasource", "target", "namespace", "name"} <= by["stallwatch-object.json"])
        self.assertIn("datasource", by["stallwatch-overview.json"])

    def test_variables_used_are_defined(self):
        # building the list substitutes every ${variable}: substitute() raises KeyError for an undefined one
        self.assertTrue(all_exprs())


class Panels(unittest.TestCase):
    def test_panel_datasource_rule(self):
        want = {"type": "prometheus", "uid": "${datasource}"}
        for _, d in dashboards():
            for p in panels(d):
                if p["type"] == "row":
                    continue
                with self.subTest(panel=p["title"]):
                    self.assertEqual(p.get("datasource"), want)
                    for t in p.get("targets", []) or []:
                        self.assertEqual(t.get("datasource"), want)

    def test_panel_title_description_rule(self):
        for f, d in dashboards():
            for p in panels(d):
                self.assertTrue(p.get("title"), "%s panel %s has no title" % (f, p["id"]))
                if p["type"] != "row":
                    self.assertTrue(p.get("description"), "%s panel %r has no description" % (f, p["title"]))

    def test_panel_units_rule(self):
        for f, d in dashboards():
            for p in panels(d):
                if p["type"] in UNIT_PANELS:
                    unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
                    self.assertIn(unit, VALID_UNITS, "%s panel %r" % (f, p["title"]))

    def test_panel_no_targets_rule(self):
        for f, d in dashboards():
            for p in panels(d):
                if p["type"] in QUERY_PANELS:
                    self.assertTrue([t for t in p.get("targets", []) if t.get("expr")], "%s panel %r" % (f, p["title"]))
                self.assertNotIn(p["type"], {"graph", "singlestat", "table-old"}, "deprecated panel type")

    def test_table_panels_use_instant_queries(self):
        for f, d in dashboards():
            for p in panels(d):
                if p["type"] == "table":
                    for t in p["targets"]:
                        self.assertTrue(t.get("instant") and t.get("format") == "table", "%s %r" % (f, p["title"]))


class Targets(unittest.TestCase):
    def test_target_promql_rule_and_template_label_promql_rule(self):
        exprs = [(w, s) for w, _, s in all_exprs()]
        self.assertGreater(len(exprs), 20)
        bad = common.check_promql(exprs)
        self.assertEqual(bad, [], "\n".join("%s: %s\n  %s" % b for b in bad))

    def test_target_rate_interval_rule(self):
        for where, raw, _ in all_exprs():
            for m in re.finditer(r"\b(rate|irate|increase|delta|idelta|deriv)\s*\(", raw):
                depth, j = 0, m.end() - 1
                while j < len(raw):
                    depth += {"(": 1, ")": -1}.get(raw[j], 0)
                    if depth == 0:
                        break
                    j += 1
                ranges = re.findall(r"\[([^\]]*)\]", raw[m.end():j])
                self.assertTrue(ranges and ranges[-1] == "$__rate_interval",
                                "%s: %s(...) must use [$__rate_interval]: %s" % (where, m.group(1), raw))

    def test_target_counter_agg_rule(self):
        for where, raw, _ in all_exprs():
            s = common.strip_strings(raw)
            for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*_total)\b", s):
                before = s[:m.start()]
                self.assertRegex(before, r"(rate|irate|increase|resets)\s*\(\s*$",
                                 "%s: counter %s must be wrapped in rate()/increase()" % (where, m.group(1)))

    def test_target_job_rule_and_cluster_on_every_query(self):
        n = 0
        for where, raw, _ in all_exprs():
            for m in re.finditer(r"(?<![\w:])(stallwatch_[a-z0-9_]+)(\{[^}]*\})?", common.strip_strings(raw)):
                sel = raw[m.start(2):m.end(2)] if m.group(2) else ""
                n += 1
                if where.endswith("variable cluster"):
                    continue
                self.assertIn('cluster=~"$cluster"', sel, "%s: %s without the cluster matcher" % (where, m.group(1)))
                if not where.endswith("variable job"):
                    self.assertIn('job=~"$job"', sel, "%s: %s without the job matcher" % (where, m.group(1)))
            self.assertNotIn("$instance", raw, where)
        self.assertGreater(n, 50)


def links_of(p):
    """Every data link of a panel (panel links, field defaults and overrides)."""
    fc = p.get("fieldConfig") or {}
    out = list(p.get("links") or []) + list((fc.get("defaults") or {}).get("links") or [])
    for o in fc.get("overrides") or []:
        for pr in o.get("properties") or []:
            if pr.get("id") == "links":
                out += pr.get("value") or []
    return out


def kept_labels(p):
    """Labels the panel's queries keep: every label of a by (...) list and every label matched in
    a selector (approximation of the result's label set)."""
    labels = set()
    for t in p.get("targets") or []:
        e = t.get("expr", "")
        for m in re.finditer(r"\bby\s*\(([^()]*)\)", e):
            labels |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    return labels


def mapping_colours(mappings):
    out = {}
    for m in mappings or []:
        if m.get("type") == "value":
            for k, v in m["options"].items():
                out[v.get("text", k)] = v.get("color")
    return out


AMBER = {"orange", "yellow", "#FFB000", "#FF9830"}


class Fleet(unittest.TestCase):
    def by_uid(self):
        return {d["uid"]: d for _, d in dashboards()}

    def test_cluster_variable(self):
        for f, d in dashboards():
            vs = {v["name"]: v for v in d["templating"]["list"]}
            with self.subTest(dashboard=os.path.basename(f)):
                self.assertIn("cluster", vs)
                c = vs["cluster"]
                self.assertEqual(c["type"], "query")
                self.assertRegex(variable_query(c), r"^label_values\(.*,\s*cluster\)$")
                self.assertEqual(c.get("hide"), 2, "hidden while single; the links and the URL set it")
                self.assertTrue(c.get("includeAll"))
                self.assertEqual(c.get("allValue"), ".*", "All must match series without a cluster label")
                self.assertIn("job", vs)
                names = [v["name"] for v in d["templating"]["list"]]
                self.assertLess(names.index("cluster"), names.index("job"))
                for v in d["templating"]["list"][names.index("job") + 1:]:
                    if v.get("type") == "query":
                        self.assertIn('cluster=~"$cluster", job=~"$job"', variable_query(v), v["name"])

    def test_data_links_resolve_to_the_object_dashboard(self):
        uids = self.by_uid()
        links = 0
        for _f, d in dashboards():
            for p in panels(d):
                for link in links_of(p):
                    url = link["url"]
                    with self.subTest(dashboard=d["uid"], panel=p["title"], url=url):
                        m = re.match(r"^/d/([A-Za-z0-9_-]+)/[A-Za-z0-9_-]+\?(.*)$", url)
                        self.assertTrue(m, "a dashboard link /d/<uid>/<slug>?...: %s" % url)
                        self.assertIn(m.group(1), uids)
                        target_vars = {v["name"] for v in uids[m.group(1)]["templating"]["list"]}
                        params = m.group(2).split("&")
                        set_vars = set()
                        for q in params:
                            if q == "${datasource:queryparam}":
                                set_vars.add("datasource")
                                continue
                            if q == "${__url_time_range}":
                                continue
                            k, _, v = q.partition("=")
                            self.assertTrue(k.startswith("var-"), q)
                            self.assertIn(k[4:], target_vars, "%s is no variable of %s" % (k, m.group(1)))
                            set_vars.add(k[4:])
                            for fld in re.findall(r"\$\{__data\.fields\.([A-Za-z_][A-Za-z0-9_]*)\}", v):
                                self.assertIn(fld, kept_labels(p), "the panel's queries do not keep label %s" % fld)
                        self.assertTrue({"datasource", "cluster", "target", "namespace", "name"} <= set_vars, set_vars)
                        if m.group(1) == "stallwatch-object":
                            self.assertEqual(set_vars, target_vars,
                                             "the link sets every variable of the object dashboard")
                    links += 1
        overview = uids["stallwatch-overview"]
        tables = [p for p in panels(overview) if p["type"] == "table"]
        self.assertTrue(tables)
        for p in tables:
            self.assertTrue([ln for ln in links_of(p) if "/d/stallwatch-object/" in ln["url"]],
                            "overview table %r links its rows to the object dashboard" % p["title"])
        self.assertGreaterEqual(links, len(tables))

    def test_mappings_and_colours(self):
        want = {"Stalled": {"red"}, "Failed": {"red"}, "InProgress": AMBER, "Current": {"green"}}
        verdict_maps = 0
        for _f, d in dashboards():
            for p in panels(d):
                fc = p.get("fieldConfig") or {}
                maps = [(fc.get("defaults") or {}).get("mappings")]
                for o in fc.get("overrides") or []:
                    maps += [pr["value"] for pr in o.get("properties", []) if pr.get("id") == "mappings"]
                if p["type"] == "state-timeline":
                    self.assertTrue(any(maps), "%s: state-timeline %r without value mappings" % (d["uid"], p["title"]))
                for mp in maps:
                    cols = mapping_colours(mp)
                    if {"Stalled", "InProgress"} <= set(cols):
                        verdict_maps += 1
                        for k, ok in want.items():
                            self.assertIn(cols.get(k), ok,
                                          "%s %r: %s coloured %s" % (d["uid"], p["title"], k, cols.get(k)))
        self.assertGreaterEqual(verdict_maps, 3, "the overview table, the Verdict stat and the verdict timeline")
        obj = self.by_uid()["stallwatch-object"]
        by_title = {p["title"]: p for p in panels(obj)}
        self.assertEqual(by_title["Verdict"]["options"]["colorMode"], "background")
        self.assertTrue(by_title["Reason"]["fieldConfig"]["defaults"].get("mappings"),
                        "Reason is coloured by the verdict")
        timelines = [p for p in panels(obj) if p["type"] == "state-timeline"]
        exprs = " ".join(t["expr"] for p in timelines for t in p["targets"])
        for metric in ("stallwatch_status{", "stallwatch_phase{", "stallwatch_phase_ready{"):
            self.assertIn(metric, exprs, "verdict, phase and ready drawn as a state-timeline")

    def test_thresholds_follow_stalled_after(self):
        for where, raw, _ in all_exprs():
            s = common.strip_strings(raw)
            self.assertIsNone(re.search(r"_seconds\b[^()]*\)?\s*[<>]=?\s*\d{2,}", s),
                              "%s: a literal duration threshold; compare with stallwatch_stalled_after_seconds" % where)
        over = {p["title"]: p for p in panels(self.by_uid()["stallwatch-overview"])}
        self.assertIn("stallwatch_stalled_after_seconds", over["Rollouts without progress"]["targets"][0]["expr"])

    def test_object_workload_row_shows_only_its_own_workloads(self):
        obj = self.by_uid()["stallwatch-object"]
        row, inside = None, []
        for p in obj["panels"]:
            if p["type"] == "row":
                row = p["title"]
                continue
            if row == "Workloads of this object":
                inside.append(p)
        self.assertGreaterEqual(len(inside), 3)
        for p in inside:
            for t in p["targets"]:
                if "stallwatch_stalled_after_seconds" in t["expr"] and "stallwatch_rollout" not in t["expr"]:
                    continue
                self.assertIn("stallwatch_object_workload_info{", t["expr"], p["title"])
                self.assertIn('name="$name"', t["expr"].split("stallwatch_object_workload_info", 1)[1], p["title"])


class MetricNames(unittest.TestCase):
    def known(self):
        return common.known_metrics(METRIC_SOURCES)

    def test_metric_sources_readable(self):
        names = self.known()
        self.assertTrue(any(n.startswith("stallwatch_") for n in names),
                        "no stallwatch_* names in %s" % METRIC_SOURCES)

    def check(self, where, names, known):
        unknown = sorted(n for n in names if n not in known and n not in ("up", "ALERTS", "ALERTS_FOR_STATE"))
        self.assertEqual(unknown, [], "%s uses metrics not in %s: %s" % (where, ", ".join(
            os.path.relpath(s, common.ROOT) if s.startswith(common.ROOT) else s for s in METRIC_SOURCES), unknown))

    def test_dashboard_metrics_are_known(self):
        known = self.known()
        for where, raw, _ in all_exprs():
            with self.subTest(where=where):
                self.check(where, common.metric_names(raw), known)

    def test_rule_metrics_are_known(self):
        known = self.known()
        rules = common.yaml_file(common.RULES)
        for g in rules["groups"]:
            for r in g["rules"]:
                name = r.get("alert") or r.get("record")
                with self.subTest(rule=name):
                    self.check(name + " expr", common.metric_names(r["expr"]), known)
                    for k, text in (r.get("annotations") or {}).items():
                        self.check("%s annotation %s" % (name, k), common.stallwatch_names_in_text(text), known)

    def test_metric_name_extraction(self):
        self.assertEqual(common.metric_names(
            'sum by (a) (rate(stallwatch_x_total{b="c"}[5m])) / on (d) group_left (e) stallwatch_y > 3 # stallwatch_z'),
            {"stallwatch_x_total", "stallwatch_y"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", action="append", help="metrics exposition capture or docs/metrics.md")
    ap.add_argument("--list-rules", action="store_true", help="print the implemented linter rules")
    args = ap.parse_args()
    if args.list_rules:
        print(RULES)
        return 0
    if args.metrics:
        METRIC_SOURCES[:] = [os.path.abspath(m) for m in args.metrics]
        for m in METRIC_SOURCES:
            if not os.path.isfile(m):
                print("lint_dashboards: no such metrics file: %s" % m)
                return 2
    print("metric names from: %s" % ", ".join(METRIC_SOURCES))
    return common.main_unittest(__name__)


if __name__ == "__main__":
    sys.exit(main())
