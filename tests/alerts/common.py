"""Shared helpers for the offline alert/dashboard checks (Python 3 standard library only)."""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ALERTS = os.path.join(ROOT, "alerts")
RULES = os.path.join(ALERTS, "stallwatch.rules.yml")
PROMRULE = os.path.join(ALERTS, "prometheusrule.yaml")
GENERATE = os.path.join(ALERTS, "generate")
DASHBOARDS = os.path.join(ROOT, "dashboards")
RULE_TESTS = os.path.join(HERE, "rules")
METRICS_DOC = os.path.join(ROOT, "docs", "metrics.md")
RUNBOOKS = os.path.join(ROOT, "docs", "runbooks.md")
RUNBOOK_BASE = "https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md"


def load_generate():
    """alerts/generate as a module (it holds the YAML-subset parser and the generator)."""
    loader = importlib.machinery.SourceFileLoader("stallwatch_generate", GENERATE)
    spec = importlib.util.spec_from_loader("stallwatch_generate", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


gen = load_generate()


def yaml_file(path):
    with open(path, encoding="utf-8") as f:
        return gen.yaml_load(f.read())


def promtool():
    p = shutil.which("promtool")
    if not p:
        raise unittest.SkipTest("promtool not on PATH")
    return p


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


# ------------------------------------------------------------------ PromQL via the real parser

def check_promql(exprs):
    """Parse PromQL expressions with promtool (Prometheus' own parser) by writing them as
    recording rules. exprs: list of (where, expr). Returns a list of (where, expr, error)."""
    exe = promtool()
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        def check(batch):
            rules = {"groups": [{"name": "lint", "rules": [
                {"record": "stallwatch_lint_expr_%d" % i, "expr": e} for i, (_, e) in enumerate(batch)]}]}
            path = os.path.join(tmp, "lint.rules.yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(gen.yaml_dump(rules))
            r = run([exe, "check", "rules", "--lint=none", path])
            return r.returncode == 0, r.stdout
        ok, _ = check(exprs)
        if ok:
            return []
        for where, e in exprs:  # pinpoint
            ok, out = check([(where, e)])
            if not ok:
                bad.append((where, e, out.strip().splitlines()[-1] if out.strip() else "failed"))
    return bad


# ------------------------------------------------------------------ metric names

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "inf", "nan", "atan2", "e", "pi",
}


def strip_strings(expr):
    """Replace quoted strings and comments in a PromQL expression with spaces."""
    out = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            out.append(" " * (j + 1 - i))
            i = j + 1
            continue
        if c == "#":
            j = expr.find("\n", i)
            j = len(expr) if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def metric_names(expr):
    """Metric names referenced by a PromQL expression (identifiers that are neither functions,
    keywords, label names inside {...}/by(...), nor durations)."""
    s = strip_strings(expr)
    s = re.sub(r"\{[^}]*\}", " ", s)                     # matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                    # ranges
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue                                     # function call
        if word.lower() in PROMQL_WORDS:
            continue
        before = s[:m.start()]
        if re.search(r"\d$", before):                    # part of a number/duration
            continue
        names.add(word)
    return names


def stallwatch_names_in_text(text):
    return set(re.findall(r"\b(stallwatch_[a-z0-9_]+)", text))


def known_metrics(sources):
    """Metric names from a metrics exposition (text 0.0.4 or OpenMetrics) or from the tables of
    docs/metrics.md. Returns (names, description of sources)."""
    names = set()
    for src in sources:
        with open(src, encoding="utf-8") as f:
            text = f.read()
        if src.endswith(".md"):
            for m in re.finditer(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|", text, re.M):
                names.add(m.group(1))
            continue
        for line in text.splitlines():
            m = re.match(r"^#\s*(?:TYPE|HELP)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(\w+))?", line)
            if m:
                name, kind = m.group(1), m.group(2)
                names.add(name)
                if line.lstrip("# ").startswith("TYPE") and kind == "counter":
                    names.update({name + "_total", name + "_created"})
                    if name.endswith("_total"):
                        names.add(name[:-len("_total")])
                if kind in ("histogram", "gaugehistogram", "summary"):
                    names.update({name + "_bucket", name + "_sum", name + "_count", name + "_created"})
                continue
            if line.startswith("#") or not line.strip():
                continue
            m = _IDENT.match(line)
            if m:
                names.add(m.group(0))
    return names


class CountingResult(unittest.TextTestResult):
    pass


def main_unittest(module_name, argv=None):
    """Run the module's tests; print `<label>: N passed, N failed` and return the exit code."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules[module_name])
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=CountingResult)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    print("COUNTS %d %d %d" % (passed, failed, skipped))
    return 0 if failed == 0 else 1
