//! The project's own minimal KubeArmorConfig CRD (tests/fixtures/kubearmorconfig-crd.yaml) must
//! agree with the real upstream CRD on everything stallwatch and its tests rely on. The real CRD
//! is read from `../shared/fixtures/kubearmor/` when that directory exists (as in CI); without it
//! only the minimal CRD's own facts are checked.

use std::path::{Path, PathBuf};

use serde_json::Value;

const IMAGE_SPECS: [&str; 4] =
    ["kubearmorImage", "kubearmorInitImage", "kubearmorRelayImage", "kubearmorControllerImage"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn minimal_path() -> PathBuf {
    root().join("tests/fixtures/kubearmorconfig-crd.yaml")
}

fn real_path() -> PathBuf {
    root().join("../shared/fixtures/kubearmor/operator.kubearmor.com_kubearmorconfigs.yaml")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut crds: Vec<Value> = docs.into_iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    assert_eq!(crds.len(), 1, "{}: expected exactly one CustomResourceDefinition", path.display());
    crds.remove(0)
}

/// The one served version `v1`.
fn v1(crd: &Value) -> &Value {
    let versions = crd["spec"]["versions"].as_array().expect("spec.versions");
    versions.iter().find(|v| v["name"] == "v1").expect("version v1")
}

fn schema(crd: &Value) -> &Value {
    &v1(crd)["schema"]["openAPIV3Schema"]
}

/// Everything the two CRDs must agree on, as (what, value) pairs, so a difference names its path.
fn facts(crd: &Value) -> Vec<(String, Value)> {
    let spec = &crd["spec"];
    let mut out: Vec<(String, Value)> = vec![
        ("metadata.name".into(), crd["metadata"]["name"].clone()),
        ("spec.group".into(), spec["group"].clone()),
        ("spec.names.kind".into(), spec["names"]["kind"].clone()),
        ("spec.names.listKind".into(), spec["names"]["listKind"].clone()),
        ("spec.names.plural".into(), spec["names"]["plural"].clone()),
        ("spec.names.singular".into(), spec["names"]["singular"].clone()),
        ("spec.names.shortNames".into(), spec["names"]["shortNames"].clone()),
        ("spec.scope".into(), spec["scope"].clone()),
    ];
    let versions: Vec<Value> = spec["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| serde_json::json!({"name": v["name"], "served": v["served"], "storage": v["storage"]}))
        .collect();
    out.push(("spec.versions[name,served,storage]".into(), Value::Array(versions)));
    let v = v1(crd);
    out.push(("v1.subresources".into(), v["subresources"].clone()));
    out.push(("v1.additionalPrinterColumns".into(), v["additionalPrinterColumns"].clone()));
    let status = &schema(crd)["properties"]["status"];
    let mut status_props: Vec<String> =
        status["properties"].as_object().expect("status.properties").keys().cloned().collect();
    status_props.sort();
    out.push(("status.properties (names)".into(), serde_json::json!(status_props)));
    for p in ["phase", "message"] {
        out.push((format!("status.{p}.type"), status["properties"][p]["type"].clone()));
        out.push((format!("status.{p}.enum"), status["properties"][p]["enum"].clone()));
    }
    let spec_props = &schema(crd)["properties"]["spec"]["properties"];
    for slot in IMAGE_SPECS {
        let s = &spec_props[slot];
        out.push((format!("spec.{slot}.type"), s["type"].clone()));
        out.push((format!("spec.{slot}.image.type"), s["properties"]["image"]["type"].clone()));
        for k in ["type", "enum", "default"] {
            out.push((
                format!("spec.{slot}.imagePullPolicy.{k}"),
                s["properties"]["imagePullPolicy"][k].clone(),
            ));
        }
    }
    out
}

#[test]
fn minimal_crd_has_the_kubearmor_facts() {
    let crd = load(&minimal_path());
    let f: std::collections::BTreeMap<String, Value> = facts(&crd).into_iter().collect();
    assert_eq!(f["spec.group"], "operator.kubearmor.com");
    assert_eq!(f["spec.names.kind"], "KubeArmorConfig");
    assert_eq!(f["spec.names.plural"], "kubearmorconfigs");
    assert_eq!(f["spec.scope"], "Namespaced");
    assert_eq!(
        f["spec.versions[name,served,storage]"],
        serde_json::json!([{"name": "v1", "served": true, "storage": true}])
    );
    assert_eq!(f["v1.subresources"], serde_json::json!({"status": {}}));
    assert_eq!(f["status.properties (names)"], serde_json::json!(["message", "phase"]));
    for slot in IMAGE_SPECS {
        assert_eq!(f[&format!("spec.{slot}.image.type")], "string", "{slot}");
    }
}

#[test]
fn minimal_crd_agrees_with_the_real_one() {
    let real = real_path();
    if !real.exists() {
        // CI always has ../shared beside the clone: there, a missing fixture is a failure.
        assert!(std::env::var_os("CI").is_none(), "{} is missing in CI", real.display());
        eprintln!("not compared: {} not present (no ../shared checkout)", real.display());
        return;
    }
    let (mine, theirs) = (facts(&load(&minimal_path())), facts(&load(&real)));
    let diffs: Vec<String> = mine
        .iter()
        .zip(&theirs)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((what, a), (_, b))| format!("  {what}: minimal {a} vs real {b}"))
        .collect();
    assert!(diffs.is_empty(), "the minimal CRD differs from the real one:\n{}", diffs.join("\n"));

    // Every spec property the minimal CRD declares exists in the real one (tests must not rely
    // on fields KubeArmor does not have).
    let real_crd = load(&real);
    let real_spec = &schema(&real_crd)["properties"]["spec"]["properties"];
    let mine_crd = load(&minimal_path());
    for (k, v) in schema(&mine_crd)["properties"]["spec"]["properties"].as_object().unwrap() {
        assert!(real_spec.get(k).is_some(), "spec.{k} is not in the real CRD");
        for sub in v["properties"].as_object().into_iter().flat_map(|m| m.keys()) {
            assert!(real_spec[k]["properties"].get(sub).is_some(), "spec.{k}.{sub} is not in the real CRD");
        }
    }
}

/// Every path the `kubearmor` preset reads exists in the CRD's schema, with type string: the
/// real CRD when ../shared is present (as in CI), else the project's own minimal one.
#[test]
fn every_path_the_kubearmor_preset_reads_is_in_the_schema() {
    let source = if real_path().exists() { real_path() } else { minimal_path() };
    let crd = load(&source);
    let config = stallwatch::config::Config::parse("targets: [{preset: kubearmor}]\n", "preset").unwrap();
    let cr = config.targets.iter().find(|t| t.resource.kind == "KubeArmorConfig").expect("the CR target");
    assert_eq!(crd["spec"]["group"], cr.resource.group.as_str());
    assert_eq!(crd["spec"]["names"]["kind"], cr.resource.kind.as_str());
    assert_eq!(crd["spec"]["names"]["plural"], cr.plural.as_deref().unwrap());
    let mut paths: Vec<String> = cr.images.iter().map(|i| i.desired.source().to_string()).collect();
    paths.push(cr.phase.as_ref().expect("phase rule").path.source().to_string());
    assert_eq!(paths.len(), 5);
    for path in paths {
        let mut node = schema(&crd);
        for seg in path.strip_prefix("$.").expect("a $.a.b path").split('.') {
            node = &node["properties"][seg];
            assert!(!node.is_null(), "{path}: `{seg}` is not in the CRD schema");
        }
        assert_eq!(node["type"], "string", "{path} is not a string in the CRD schema");
    }
}
