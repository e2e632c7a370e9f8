//! Property-based fuzzing (proptest, stable Rust) of every parser that reads hostile input:
//! the config loader, JSONPath, image references, `Accept`/`Accept-Encoding` negotiation, the
//! watch-line decoder (through the store to both exposition formats, checked strictly) and the
//! protobuf reader of pods (against the JSON read of the same generated pods).
//!
//! Each target runs a few thousand cases in the normal test run; a longer run:
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` (docs/security.md). A failure
//! proptest finds is saved under tests/proptest-regressions/ and replayed first on every run;
//! commit that file, or turn the case into an explicit `#[test]` below.

#[path = "support/strict_exposition.rs"]
mod strict_exposition;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::Arc,
    time::{Duration, Instant},
};

use proptest::{prelude::*, test_runner::Config as Cases};
use serde_json::{Value, json};
use stallwatch::{
    config::Config,
    error::ConfigError,
    expose::{Format, Renderer, SelfState, negotiate},
    ingest::{
        Interner, builtin,
        decode::{Plan, decode_line, decode_list},
        target,
        wire::{List, RawObject, WatchLine},
    },
    model::{Kind, ObjectPath, image::ImageRef},
    store::{Store, Watch},
    watch::plan,
};

/// `n` cases unless PROPTEST_CASES asks for another number.
fn cases(n: u32) -> Cases {
    let mut c = Cases::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = n;
    }
    c.failure_persistence =
        Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions")));
    c
}

// ---- allocation accounting, for the decoder's memory bound ----

struct Counting;

thread_local! {
    // (live, peak, tracking) of this thread; const-initialised, so reading them never allocates.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts, per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if TRACK.try_with(Cell::get).unwrap_or(false) {
            let now = LIVE.get().saturating_add(l.size());
            LIVE.set(now);
            PEAK.set(PEAK.get().max(now));
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        if TRACK.try_with(Cell::get).unwrap_or(false) {
            LIVE.set(LIVE.get().saturating_sub(l.size()));
        }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated (net, on this thread) while `f` runs.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.set(0);
    PEAK.set(0);
    TRACK.set(true);
    let r = f();
    TRACK.set(false);
    (r, PEAK.get())
}

// ---- config loader ----

const EXAMPLES: &[&str] = &[
    include_str!("../examples/generic-crd.yaml"),
    include_str!("../examples/kubearmor.yaml"),
    include_str!("../examples/workloads.yaml"),
];

/// Never a panic; either a valid config or an error located in the file.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    // YAML breaks lines at CR, LF and CRLF (a bare CR too, unlike str::lines).
    let lines = text.replace("\r\n", "\n").matches(['\r', '\n']).count() as u64 + 1;
    match Config::parse(text, "fuzz.yaml") {
        Ok(c) => prop_assert!(!c.targets.is_empty()),
        Err(ConfigError::Invalid { file, line, column, message }) => {
            prop_assert_eq!(file, "fuzz.yaml");
            prop_assert!(!message.trim().is_empty());
            prop_assert!(line <= lines, "line {} of {}: {}", line, lines, message);
            // Position 0 is for problems of the file as a whole (no targets at all, an empty
            // document); everything else points into the file.
            prop_assert!(line > 0 || column == 0, "unlocated error {}:{}: {}", line, column, message);
        }
        Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
    }
    Ok(())
}

/// Fragments that YAML and the config treat specially.
fn yaml_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\n  ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("<<: *a\n".to_string()),
        Just("~".to_string()),
        Just("'".to_string()),
        Just("\"\\u0000\\x1b\"".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1s".to_string()),
        Just("$.status[?@.a]".to_string()),
        Just("preset: kubearmor".to_string()),
        Just("resource: {version: v1, kind: Pod}".to_string()),
        Just("---\n".to_string()),
        "[a-zA-Z$.@?*\\[\\]]{0,12}",
        any::<char>().prop_map(String::from),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert(usize, String),
    Replace(usize, usize, String),
    Indent(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), yaml_token()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 0usize..8, yaml_token()).prop_map(|(a, n, t)| Mutation::Replace(a, n, t)),
        (any::<usize>(), 0usize..6).prop_map(|(a, n)| Mutation::Indent(a, n)),
    ]
}

fn mutate(text: &str, ms: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in ms {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
            Mutation::Insert(i, t) | Mutation::Replace(i, _, t) => {
                let l = &mut lines[i % n];
                let at = (i / n.max(1)) % (l.len() + 1);
                let at = (0..=at).rev().find(|p| l.is_char_boundary(*p)).unwrap_or(0);
                let len = if let Mutation::Replace(_, k, _) = m { *k } else { 0 };
                let end = (at + len).min(l.len());
                let end = (end..=l.len()).find(|p| l.is_char_boundary(*p)).unwrap_or(l.len());
                l.replace_range(at..end, t);
            }
            Mutation::Indent(i, k) => {
                let l = &mut lines[i % n];
                let trimmed = l.trim_start().to_string();
                *l = format!("{}{trimmed}", " ".repeat(*k));
            }
        }
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(cases(1500))]

    #[test]
    fn config_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_config(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn config_mutated_examples(which in 0..EXAMPLES.len(), ms in proptest::collection::vec(mutation(), 1..6)) {
        check_config(&mutate(EXAMPLES[which], &ms))?;
    }
}

/// Found by the longer run: YAML counts a bare CR as a line break, so the error is on line 3.
#[test]
fn config_error_line_counts_bare_carriage_returns() {
    let e = Config::parse("\r\r\0", "fuzz.yaml").unwrap_err().to_string();
    assert!(e.starts_with("fuzz.yaml:3:1: "), "{e}");
    check_config("\r\r\0").unwrap();
}

#[test]
fn examples_are_valid_unmutated() {
    for e in EXAMPLES {
        Config::parse(e, "example.yaml").unwrap();
    }
}

#[test]
fn config_deep_yaml_nesting_is_an_error_not_a_crash() {
    for open in ["[", "{a: ", "- "] {
        let text = format!("targets: {}", open.repeat(20_000));
        check_config(&text).unwrap();
    }
    // Alias expansion ("billion laughs") must not blow up.
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        laughs.push_str(&format!(
            "{}: &{} [*{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}]\n",
            (b'a' + i) as char,
            (b'a' + i) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char,
            (b'a' + i - 1) as char
        ));
    }
    laughs.push_str("targets: [{preset: workloads}]\n");
    let start = Instant::now();
    check_config(&laughs).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

// ---- JSONPath ----

fn path_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".".to_string()),
        Just("..".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("?".to_string()),
        Just("@".to_string()),
        Just("$".to_string()),
        Just("*".to_string()),
        Just("==".to_string()),
        Just("&&".to_string()),
        Just("||".to_string()),
        Just("!".to_string()),
        Just("'".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("-1".to_string()),
        Just("length(".to_string()),
        Just("match(".to_string()),
        Just("[?@".to_string()),
        "[a-z]{1,5}",
        "[0-9]{1,3}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn jsonpath_parse_and_evaluate(
        body in proptest::collection::vec(path_token(), 0..30),
        doc in json_value(),
    ) {
        let source = format!("${}", body.concat());
        let start = Instant::now();
        let parsed = ObjectPath::parse(&source);
        prop_assert!(start.elapsed() < Duration::from_secs(1), "{:?} took {:?}", source, start.elapsed());
        match parsed {
            Ok(p) => {
                let _ = p.first(&doc);
                let _ = p.first(&json!({"status": doc, "spec": {}}));
            }
            Err(e) => prop_assert!(e.contains("JSONPath"), "{}", e),
        }
    }

}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn jsonpath_arbitrary_text(s in "\\PC{0,200}") {
        let _ = ObjectPath::parse(&s);
    }
}

// ---- image references ----

fn render(r: &ImageRef) -> String {
    let mut s = r.name.clone();
    if let Some(t) = &r.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &r.digest {
        s.push('@');
        s.push_str(d);
    }
    s
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn image_normalisation_is_idempotent(s in "\\PC{0,60}") {
        if let Some(r) = ImageRef::parse(&s) {
            let again = ImageRef::parse(&render(&r));
            prop_assert_eq!(again.as_ref(), Some(&r), "normalise(normalise({:?}))", s);
            prop_assert!(r.same(&r));
        }
    }

    #[test]
    fn image_structured_round_trip(
        host in prop_oneof![Just(None), "[a-z]{1,6}\\.(io|com)(:[0-9]{2,5})?".prop_map(Some), Just(Some("localhost".to_string()))],
        // Without a host, a first segment with a `.` or `:` would be a registry host.
        first in "[a-z0-9][a-z0-9_-]{0,8}",
        more in proptest::collection::vec("[a-z0-9][a-z0-9._-]{0,8}", 0..3),
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
        digest in proptest::option::of("[0-9a-f]{64}"),
    ) {
        let path: Vec<String> = std::iter::once(first).chain(more).collect();
        let mut written = host.clone().map(|h| format!("{h}/")).unwrap_or_default();
        written.push_str(&path.join("/"));
        if let Some(t) = &tag { written.push(':'); written.push_str(t); }
        if let Some(d) = &digest { written.push_str("@sha256:"); written.push_str(d); }
        let r = ImageRef::parse(&written).unwrap();
        let want_host = host.unwrap_or_else(|| "docker.io".into());
        let want_path = if want_host == "docker.io" && path.len() == 1 { format!("library/{}", path[0]) } else { path.join("/") };
        prop_assert_eq!(&r.name, &format!("{want_host}/{want_path}"));
        prop_assert_eq!(r.digest.clone(), digest.map(|d| format!("sha256:{d}")));
        let want_tag = if tag.is_none() && r.digest.is_none() { Some("latest".to_string()) } else { tag };
        prop_assert_eq!(&r.tag, &want_tag);
        prop_assert_eq!(ImageRef::parse(&render(&r)), Some(r.clone()));
        prop_assert!(stallwatch::model::image::same(&written, &render(&r)));
    }
}

// ---- Accept / Accept-Encoding ----

fn accept_part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/openmetrics-text".to_string()),
        Just("application/openmetrics-text;version=1.0.0".to_string()),
        Just("application/openmetrics-text; version=0.0.1".to_string()),
        Just("text/plain;version=0.0.4".to_string()),
        Just("text/plain; version=1.0.0".to_string()),
        Just("text/*".to_string()),
        Just("*/*".to_string()),
        Just("application/json".to_string()),
        Just(";q=".to_string()),
        "[a-z/*;=., ]{0,20}",
        (0u32..1200).prop_map(|q| format!(";q={}", q as f32 / 1000.0)),
        "\\PC{0,10}",
    ]
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn negotiation_always_yields_a_valid_content_type(parts in proptest::collection::vec(accept_part(), 0..8)) {
        let header = parts.join(",");
        let f = negotiate::format(Some(&header));
        let ct = f.content_type();
        prop_assert!(ct.starts_with("text/plain; version=0.0.4") || ct.starts_with("application/openmetrics-text; version=1.0.0"), "{}", ct);
        prop_assert!(ct.is_ascii() && !ct.contains(['\n', '\r']));
        let _ = negotiate::gzip(Some(&header));
    }

    #[test]
    fn openmetrics_wins_when_preferred(noise in proptest::collection::vec(accept_part(), 0..4), q in 1u32..1000) {
        let header = format!("application/openmetrics-text;version=1.0.0;q=1,{}", noise.iter().map(|n| format!("{n};q=0.{q:03}")).collect::<Vec<_>>().join(","));
        prop_assert_eq!(negotiate::format(Some(&header)), Format::OpenMetrics, "{}", header);
    }

    #[test]
    fn gzip_by_q(q in 0u32..=1000, noise in "[a-z, ;=]{0,12}") {
        let header = format!("{noise},gzip;q={}", q as f32 / 1000.0);
        let allowed = negotiate::gzip(Some(&header));
        if !noise.contains("gzip") && !noise.contains('*') {
            prop_assert_eq!(allowed, q > 0, "{}", header);
        }
    }
}

// ---- watch-line decoder, through the store to /metrics ----

const WATCH_CONFIG: &str = r#"
targets:
  - name: widgets
    resource: {group: example.com, version: v1, kind: Widget}
    phase: {path: $.status.phase, ready: [Running]}
    images:
      - {slot: agent, desired: $.spec.image, workloads: {kind: DaemonSet, selector: app=agent}}
"#;

const REAL_EVENT: &str = r#"{"type":"MODIFIED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"stuck","namespace":"shop","uid":"u1","resourceVersion":"11","generation":2,"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"app":"w"},"annotations":{"a":"b"},"managedFields":[{"manager":"kubectl","operation":"Update","time":"2024-01-01T00:10:00Z","fieldsV1":{"f:spec":{}}},{"manager":"widget-operator","operation":"Update","subresource":"status","time":"2024-01-01T00:10:05Z","fieldsV1":{"f:status":{}}}]},"spec":{"image":"example/agent:v2"},"status":{"phase":"Pending","observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"Updating","message":"m","lastTransitionTime":"2024-01-01T00:10:05Z"}]}}}"#;

/// Decodes `line`, applies it to a fresh store and renders both formats; both must pass the
/// strict checker.
fn feed(lines: &[String]) -> Result<(), TestCaseError> {
    let config = Config::parse(WATCH_CONFIG, "w.yaml").unwrap();
    let store = Arc::new(Store::default());
    let watches: Vec<Arc<Watch>> =
        plan(&config).into_iter().map(|(k, s)| Arc::new(Watch::new(k, s))).collect();
    let w = watches.iter().find(|w| w.key.gvk.kind == "Widget").unwrap().clone();
    let mut decoded = false;
    for (i, line) in lines.iter().enumerate() {
        let (_, peak) = peak_during(|| match serde_json::from_str::<WatchLine<RawObject>>(line) {
            Ok(WatchLine::Added(o) | WatchLine::Modified(o)) => {
                decoded = true;
                w.write(|s| {
                    s.apply(&w.subs, &o, 1_704_070_000.0 + i as f64);
                    s.health.synced = true;
                });
            }
            Ok(WatchLine::Deleted(o)) => {
                w.write(|s| s.delete(&o));
            }
            _ => {}
        });
        // The decoder borrows from the line; what it keeps is bounded by the input.
        prop_assert!(peak <= 8 * line.len() + (64 << 10), "{} bytes for a {}-byte line", peak, line.len());
    }
    if !decoded {
        // Nothing reached the store: the empty exposition is checked by real_event_… and
        // rendering it again per case would only cost time.
        return Ok(());
    }
    store.set_watches(watches);
    let me = Arc::new(SelfState::default());
    for (format, om) in [(Format::Text004, false), (Format::OpenMetrics, true)] {
        let out = Renderer::store_only(store.clone(), me.clone(), || 1_704_071_000.0).render(format).unwrap();
        if let Err(e) = strict_exposition::check(&out, om) {
            prop_assert!(false, "{:?}: {}\n{}", format, e, out);
        }
    }
    Ok(())
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}",
        "[\\x00-\\x1f\\x7f\"\\\\\n]{1,10}",
        Just("\u{1b}[31mred\u{1b}[0m\u{7}\0".to_string()),
        Just("\u{9b}2J\u{202e}".to_string()),
        (1usize..5000).prop_map(|n| "r".repeat(n)),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile_string().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
        Just(json!([1, "a", {"b": []}])),
        Just(json!({"nested": {"x": 1}})),
        (1usize..200)
            .prop_map(|n| Value::Array(vec![json!({"type": "Ready", "status": "False", "reason": "x"}); n])),
        json_value(),
    ]
}

/// JSON pointers into the real event worth replacing.
const POINTERS: &[&str] = &[
    "/type",
    "/object",
    "/object/metadata",
    "/object/metadata/name",
    "/object/metadata/namespace",
    "/object/metadata/uid",
    "/object/metadata/generation",
    "/object/metadata/creationTimestamp",
    "/object/metadata/labels",
    "/object/metadata/labels/app",
    "/object/metadata/annotations/a",
    "/object/metadata/managedFields",
    "/object/metadata/managedFields/1/time",
    "/object/metadata/managedFields/1/manager",
    "/object/spec",
    "/object/spec/image",
    "/object/status",
    "/object/status/phase",
    "/object/status/observedGeneration",
    "/object/status/conditions",
    "/object/status/conditions/0",
    "/object/status/conditions/0/type",
    "/object/status/conditions/0/status",
    "/object/status/conditions/0/reason",
    "/object/status/conditions/0/lastTransitionTime",
];

fn mutated_event() -> impl Strategy<Value = String> {
    proptest::collection::vec((0..POINTERS.len(), hostile_value()), 1..5).prop_map(|edits| {
        let mut v: Value = serde_json::from_str(REAL_EVENT).unwrap();
        for (p, val) in edits {
            if let Some(slot) = v.pointer_mut(POINTERS[p]) {
                *slot = val;
            }
        }
        serde_json::to_string(&v).unwrap()
    })
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn watch_lines_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4)) {
        let lines: Vec<String> = lines.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        feed(&lines)?;
    }

    #[test]
    fn watch_lines_mutated_real_events(lines in proptest::collection::vec(mutated_event(), 1..4)) {
        feed(&lines)?;
    }
}

const POD_EVENT: &str = r#"{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d4b9-x","namespace":"shop","uid":"u2","resourceVersion":"12","labels":{"pod-template-hash":"7d4b9"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-7d4b9","controller":true}],"managedFields":[{"manager":"kubelet","operation":"Update","subresource":"status","time":"2024-01-01T00:10:05Z","fieldsV1":{"f:status":{}}}]},"spec":{"nodeName":"n1","containers":[{"name":"app","image":"web:2"}],"initContainers":[{"name":"init","image":"init:1"}]},"status":{"conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"app","image":"docker.io/library/web:2","imageID":"docker.io/library/web@sha256:abc","restartCount":2}]}}}"#;

/// JSON pointers into the pod event worth replacing.
const POD_POINTERS: &[&str] = &[
    "/type",
    "/object/metadata",
    "/object/metadata/name",
    "/object/metadata/labels",
    "/object/metadata/labels/pod-template-hash",
    "/object/metadata/ownerReferences",
    "/object/metadata/ownerReferences/0/controller",
    "/object/metadata/managedFields",
    "/object/spec",
    "/object/spec/nodeName",
    "/object/spec/containers",
    "/object/spec/containers/0/image",
    "/object/spec/initContainers/0",
    "/object/status",
    "/object/status/conditions",
    "/object/status/containerStatuses/0/restartCount",
    "/object/status/containerStatuses/0/imageID",
];

fn mutated(event: &'static str, pointers: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec((0..pointers.len(), hostile_value()), 1..5).prop_map(move |edits| {
        let mut v: Value = serde_json::from_str(event).unwrap();
        for (p, val) in edits {
            if let Some(slot) = v.pointer_mut(pointers[p]) {
                *slot = val;
            }
        }
        serde_json::to_string(&v).unwrap()
    })
}

/// What a line yields through the general decode and through the single read of `plan`: the
/// decode error's text, or the object's metadata, its facts for `targets` and its pod facts.
fn both_decodes(line: &str, plan: Plan, targets: &[Arc<stallwatch::config::Target>]) -> [String; 2] {
    let facts = |r: serde_json::Result<WatchLine<RawObject>>| match r {
        Ok(WatchLine::Added(o) | WatchLine::Modified(o) | WatchLine::Deleted(o)) => object_facts(&o, targets),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("error: {e}"),
    };
    [facts(serde_json::from_str(line)), facts(decode_line(line, plan))]
}

/// An object's metadata, its facts for `targets` and, for a pod watch (no targets), its pod
/// facts, as text.
fn object_facts(o: &RawObject, targets: &[Arc<stallwatch::config::Target>]) -> String {
    let mut strings = Interner::default();
    let per_target: Vec<_> = targets.iter().map(|t| target::extract(t, o, &mut strings)).collect();
    let pod = targets.is_empty().then(|| builtin::extract(Kind::Pod, o, &[], &mut strings));
    let m = &o.meta;
    let meta = (&m.name, &m.namespace, &m.uid, &m.resource_version, m.generation);
    let times = (m.created, m.deleting, &m.writes);
    format!("{meta:?} {times:?} {per_target:?} {pod:?}")
}

/// The same for a list page made of the objects of `lines` (a line that is not an event is
/// put in as it is): the general decode and the single read of `plan`.
fn list_decodes(lines: &[String], plan: Plan, targets: &[Arc<stallwatch::config::Target>]) -> [String; 2] {
    let items: Vec<Value> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v.get("object").cloned().unwrap_or(v)
        })
        .collect();
    let body = json!({"kind": "List", "metadata": {"resourceVersion": "7", "continue": "c"}, "items": items});
    let body = serde_json::to_vec(&body).unwrap();
    let facts = |r: serde_json::Result<List<RawObject>>| match r {
        Ok(l) => {
            let items: Vec<String> = l.items.iter().map(|o| object_facts(o, targets)).collect();
            format!("{:?} {:?} {items:?}", l.metadata.resource_version, l.metadata.continue_token)
        }
        Err(e) => format!("error: {e}"),
    };
    [facts(serde_json::from_slice(&body)), facts(decode_list(&body, plan))]
}

proptest! {
    #![proptest_config(cases(1000))]

    /// The single read gives exactly what the general decode gives, facts or error, for any
    /// mutation of a custom resource's or a pod's event.
    #[test]
    fn single_read_decode_equals_the_general_decode(
        cr in mutated(REAL_EVENT, POINTERS),
        pod in mutated(POD_EVENT, POD_POINTERS),
    ) {
        let config = Config::parse(WATCH_CONFIG, "w.yaml").unwrap();
        let (_, subs) = plan(&config).into_iter().find(|(k, _)| k.gvk.kind == "Widget").unwrap();
        let cr_plan = Plan::new(subs.kind, &subs.targets);
        prop_assert!(cr_plan.conventional_status);
        let [general, once] = both_decodes(&cr, cr_plan, &subs.targets);
        prop_assert_eq!(general, once, "{}", cr);
        let [general, once] = both_decodes(&pod, Plan::new(Some(Kind::Pod), &[]), &[]);
        prop_assert_eq!(general, once, "{}", pod);
    }

    /// The same for list pages (initial and resync lists) of mutated objects.
    #[test]
    fn single_read_list_decode_equals_the_general_decode(
        crs in proptest::collection::vec(mutated(REAL_EVENT, POINTERS), 0..4),
        pods in proptest::collection::vec(mutated(POD_EVENT, POD_POINTERS), 0..4),
    ) {
        let config = Config::parse(WATCH_CONFIG, "w.yaml").unwrap();
        let (_, subs) = plan(&config).into_iter().find(|(k, _)| k.gvk.kind == "Widget").unwrap();
        let [general, once] = list_decodes(&crs, Plan::new(subs.kind, &subs.targets), &subs.targets);
        prop_assert_eq!(general, once);
        let [general, once] = list_decodes(&pods, Plan::new(Some(Kind::Pod), &[]), &[]);
        prop_assert_eq!(general, once);
    }
}

#[test]
fn real_event_renders_strictly_valid() {
    feed(&[REAL_EVENT.to_string()]).unwrap();
    // The accounting the memory bound relies on does see allocations.
    let (v, peak) = peak_during(|| vec![0u8; 100_000]);
    assert!(peak >= 100_000 && v.len() == 100_000, "{peak}");
}

#[test]
fn watch_line_nested_deeper_than_serde_allows_is_an_error() {
    let deep = format!(
        r#"{{"type":"ADDED","object":{{"metadata":{{"name":"x","uid":"u"}},"status":{}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(serde_json::from_str::<WatchLine<RawObject>>(&deep).is_err() || feed(&[deep]).is_ok());
}

/// One generated pod, written both as the API server's JSON and as its protobuf.
#[derive(Debug, Clone)]
struct GenPod {
    name: String,
    namespace: String,
    uid: String,
    generation: i64,
    created: Option<i64>,
    deleting: Option<i64>,
    labels: std::collections::BTreeMap<String, String>,
    owners: Vec<(String, String, Option<bool>)>,
    writes: Vec<(String, Option<String>, i64)>,
    containers: Vec<(String, String)>,
    init: Vec<(String, String)>,
    node: String,
    conditions: Vec<(String, String)>,
    statuses: Vec<(String, String, String, u32)>,
}

fn gen_pod() -> impl Strategy<Value = GenPod> {
    let text = || "\\PC{0,10}";
    let label_key = prop_oneof![
        Just("pod-template-hash".to_string()),
        Just("controller-revision-hash".to_string()),
        Just("pod-template-generation".to_string()),
        "[a-z]{1,6}",
    ];
    let time = || 0i64..4_000_000_000;
    let pair = || (text(), text());
    (
        (text(), text(), text(), 0i64..4, proptest::option::of(time()), proptest::option::of(time())),
        proptest::collection::btree_map(label_key, text(), 0..4),
        proptest::collection::vec(
            (
                prop_oneof![Just("ReplicaSet".to_string()), Just("DaemonSet".to_string()), text()],
                text(),
                proptest::option::of(any::<bool>()),
            ),
            0..3,
        ),
        proptest::collection::vec(
            (
                text(),
                proptest::option::of(prop_oneof![
                    Just("status".to_string()),
                    Just("scale".to_string()),
                    Just(String::new())
                ]),
                time(),
            ),
            0..4,
        ),
        (proptest::collection::vec(pair(), 0..3), proptest::collection::vec(pair(), 0..2), text()),
        proptest::collection::vec(
            (
                prop_oneof![Just("Ready".to_string()), Just("Initialized".to_string()), text()],
                prop_oneof![Just("True".to_string()), Just("False".to_string())],
            ),
            0..4,
        ),
        proptest::collection::vec((text(), text(), text(), 0u32..5), 0..3),
    )
        .prop_map(
            |(
                (name, namespace, uid, generation, created, deleting),
                labels,
                owners,
                writes,
                (containers, init, node),
                conditions,
                statuses,
            )| GenPod {
                name,
                namespace,
                uid,
                generation,
                created,
                deleting,
                labels,
                owners,
                writes,
                containers,
                init,
                node,
                conditions,
                statuses,
            },
        )
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

/// The pod as a JSON watch event, omitting what Go's JSON omits when empty.
fn gen_pod_json(p: &GenPod) -> String {
    let mut meta = json!({"name": p.name, "uid": p.uid, "resourceVersion": "9"});
    let m = meta.as_object_mut().unwrap();
    if !p.namespace.is_empty() {
        m.insert("namespace".into(), json!(p.namespace));
    }
    if p.generation != 0 {
        m.insert("generation".into(), json!(p.generation));
    }
    m.insert("creationTimestamp".into(), p.created.map_or(Value::Null, |t| json!(rfc3339(t))));
    if let Some(t) = p.deleting {
        m.insert("deletionTimestamp".into(), json!(rfc3339(t)));
    }
    if !p.labels.is_empty() {
        m.insert("labels".into(), json!(p.labels));
    }
    let owners: Vec<Value> = p
        .owners
        .iter()
        .map(|(kind, name, controller)| {
            let mut o = json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "o"});
            if let Some(c) = controller {
                o["controller"] = json!(c);
            }
            o
        })
        .collect();
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), json!(owners));
    }
    let writes: Vec<Value> = p
        .writes
        .iter()
        .map(|(manager, sub, t)| {
            let mut w = json!({"manager": manager, "operation": "Update", "time": rfc3339(*t), "fieldsType": "FieldsV1", "fieldsV1": {"f:x": {}}});
            if let Some(s) = sub.as_ref().filter(|s| !s.is_empty()) {
                w["subresource"] = json!(s);
            }
            w
        })
        .collect();
    if !writes.is_empty() {
        m.insert("managedFields".into(), json!(writes));
    }
    let containers = |cs: &[(String, String)]| -> Vec<Value> {
        cs.iter().map(|(n, i)| json!({"name": n, "image": i, "args": ["x"]})).collect()
    };
    let mut spec =
        json!({"containers": containers(&p.containers), "volumes": [{"name": "v", "emptyDir": {}}]});
    if !p.init.is_empty() {
        spec["initContainers"] = json!(containers(&p.init));
    }
    if !p.node.is_empty() {
        spec["nodeName"] = json!(p.node);
    }
    let conditions: Vec<Value> = p.conditions.iter().map(|(t, s)| json!({"type": t, "status": s})).collect();
    let statuses: Vec<Value> = p
        .statuses
        .iter()
        .map(|(n, i, id, r)| json!({"name": n, "image": i, "imageID": id, "restartCount": r, "ready": true}))
        .collect();
    let mut status = json!({"phase": "Running"});
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    if !statuses.is_empty() {
        status["containerStatuses"] = json!(statuses);
    }
    // `type` before `object`, as the API server writes it (serde_json would order the keys).
    let object = json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status});
    format!(r#"{{"type":"MODIFIED","object":{object}}}"#)
}

/// The same pod as a protobuf watch frame (without its length prefix), writing what Go writes.
fn gen_pod_proto(p: &GenPod) -> Vec<u8> {
    use stallwatch::ingest::proto::encode::{Message, envelope, watch_frame};
    let time = |secs: Option<i64>| secs.map_or_else(Message::new, |s| Message::new().int(1, s));
    let mut meta = Message::new()
        .str(1, &p.name)
        .str(3, &p.namespace)
        .str(5, &p.uid)
        .str(6, "9")
        .int(7, p.generation)
        .msg(8, time(p.created));
    if let Some(t) = p.deleting {
        meta = meta.msg(9, time(Some(t)));
    }
    for (k, v) in &p.labels {
        meta = meta.entry(11, k, v);
    }
    for (kind, name, controller) in &p.owners {
        let mut o = Message::new().str(1, kind).str(3, name).str(4, "o").str(5, "apps/v1");
        if let Some(c) = controller {
            o = o.bool(6, *c);
        }
        meta = meta.msg(13, o);
    }
    for (manager, sub, t) in &p.writes {
        let w = Message::new()
            .str(1, manager)
            .str(2, "Update")
            .time(4, *t)
            .str(6, "FieldsV1")
            .msg(7, Message::new().bytes(1, br#"{"f:x":{}}"#))
            .str(8, sub.as_deref().unwrap_or(""));
        meta = meta.msg(17, w);
    }
    let container = |(n, i): &(String, String)| Message::new().str(1, n).str(2, i).str(4, "x");
    let mut spec =
        Message::new().msg(1, Message::new().str(1, "v").msg(2, Message::new().msg(2, Message::new())));
    for c in &p.init {
        spec = spec.msg(20, container(c));
    }
    for c in &p.containers {
        spec = spec.msg(2, container(c));
    }
    spec = spec.str(10, &p.node);
    let mut status = Message::new().str(1, "Running");
    for (t, s) in &p.conditions {
        status = status.msg(2, Message::new().str(1, t).str(2, s));
    }
    for (n, i, id, r) in &p.statuses {
        status =
            status.msg(8, Message::new().str(1, n).bool(4, true).int(5, i64::from(*r)).str(6, i).str(7, id));
    }
    let pod = Message::new().msg(1, meta).msg(2, spec).msg(3, status);
    watch_frame("MODIFIED", &envelope("v1", "Pod", pod))[4..].to_vec()
}

proptest! {
    #![proptest_config(cases(1000))]

    /// A pod read from protobuf has exactly the metadata and facts of the same pod read from
    /// JSON, whatever its names, labels, owners, writes, containers and statuses.
    #[test]
    fn protobuf_pods_have_the_facts_of_the_same_json_pods(p in gen_pod()) {
        use stallwatch::ingest::proto::decode_event;
        let json = gen_pod_json(&p);
        let frame = gen_pod_proto(&p);
        let from_json = match decode_line(&json, Plan::new(Some(Kind::Pod), &[])) {
            Ok(WatchLine::Modified(o)) => object_facts(&o, &[]),
            other => format!("{other:?}"),
        };
        let from_proto = match decode_event(&frame) {
            Ok(WatchLine::Modified(o)) => object_facts(&o, &[]),
            other => format!("{other:?}"),
        };
        prop_assert_eq!(from_json, from_proto, "{}", json);
    }

    /// Arbitrary bytes as a protobuf watch frame or list page: an error or an object, never a
    /// panic.
    #[test]
    fn protobuf_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        use stallwatch::ingest::proto::{decode_event, decode_list};
        let _ = decode_event(&bytes);
        let mut enveloped = b"k8s\0".to_vec();
        enveloped.extend_from_slice(&bytes);
        let _ = decode_list(&enveloped);
        let _ = decode_event(&enveloped);
    }
}
