//! The JSON documents of `validate`, `plan`, `resolve` and `apply` are a
//! contract: each has a `formatVersion` and matches the JSON Schema shipped for
//! it in `schemas/`, in success and in failure (invalid manifests print the
//! validation document on stdout, for every command's `--format json`).

use serde_json::Value;

use crate::contact_sync;
use crate::harness::Seed;

/// The schema of `schemas/NAME.schema.json`, compiled.
fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(crate::root().join(format!("schemas/{name}.schema.json")))
        .unwrap_or_else(|e| panic!("schemas/{name}.schema.json: {e}"));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Asserts `document` matches `schemas/NAME.schema.json` and has a version.
fn conforms(name: &str, document: &Value) {
    let errors: Vec<String> =
        schema(name).iter_errors(document).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{document:#}");
    assert_eq!(document["formatVersion"], "1", "{document:#}");
}

/// Runs contact-sync with `args` and reads its stdout as one JSON document.
fn document(args: &[&str], dir: &std::path::Path, code: i32) -> Value {
    let out = contact_sync().args(args).arg(dir).assert().code(code);
    let stdout = &out.get_output().stdout;
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(stdout)))
}

/// The seed with a destination that was renamed and one that names nobody.
fn with_errors(seed: &Seed) {
    let sync = seed.read("syncs/sales-to-accounting.yaml").replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [frank@example.com, carol@example.com, \
         nobody@example.com]\n    exclude:\n      users: [bob@example.com]\n",
    );
    seed.write("syncs/sales-to-accounting.yaml", &sync);
}

#[test]
fn every_json_document_matches_its_schema() {
    let seed = Seed::new();
    let dir = seed.dir.path();
    conforms("validate", &document(&["validate", "--format", "json"], dir, 0));
    let plan = document(&["plan", "--format", "json"], dir, 0);
    conforms("plan", &plan);
    conforms("resolve", &document(&["resolve", "--format", "json"], dir, 0));
    let applied = document(&["apply", "--auto-approve", "--format", "json"], dir, 0);
    conforms("apply", &applied);
    conforms("plan", &applied["plan"]);

    // With errors: a renamed destination and an address that names nobody.
    with_errors(&seed);
    let plan = document(&["plan", "--format", "json"], dir, 1);
    conforms("plan", &plan);
    let errors: Vec<&Value> = plan["syncs"][0]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["error"].as_object().map(|_| &d["error"]))
        .collect();
    let renamed = errors.iter().find(|e| e["kind"] == "destinationRenamed").expect("a rename");
    // The position is structured, as validate gives it.
    let at = &renamed["location"];
    assert!(at["file"].as_str().unwrap().ends_with("sales-to-accounting.yaml"), "{at}");
    assert!(at["line"].as_u64().unwrap() > 0 && at["column"].as_u64().unwrap() > 0, "{at}");
    let resolved = document(&["resolve", "--format", "json"], dir, 1);
    conforms("resolve", &resolved);
    // Every error of a sync in one place.
    let kinds: Vec<&str> = resolved["syncs"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["destinationRenamed", "destinationNotFound"]);
    let applied = document(&["apply", "--auto-approve", "--format", "json"], dir, 1);
    conforms("apply", &applied);
    assert_eq!(applied["result"], "failed");
    // Ends converged: what could be applied was, and a plan again changes nothing.
    let again = document(&["plan", "--format", "json"], dir, 1);
    assert_eq!(
        (again["summary"]["create"].as_u64(), again["summary"]["update"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(again["summary"]["delete"], 0);
}

#[test]
fn invalid_manifests_still_give_a_json_document() {
    let seed = Seed::new();
    let sync = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("user: salesuser@example.com", "user: salesuser(at)example.com");
    seed.write("syncs/sales-to-accounting.yaml", &sync);
    let dir = seed.dir.path();
    for args in [
        &["validate", "--format", "json"][..],
        &["plan", "--format", "json"],
        &["resolve", "--format", "json"],
        &["apply", "--auto-approve", "--format", "json"],
    ] {
        let report = document(args, dir, 1);
        conforms("validate", &report);
        assert_eq!(report["valid"], false, "{args:?}");
        let d = &report["diagnostics"][0];
        assert_eq!(d["pointer"], "/spec/source/user", "{args:?}");
        assert!(d["location"]["file"].as_str().unwrap().ends_with("sales-to-accounting.yaml"));
        assert!(d["location"]["line"].as_u64().unwrap() > 0);
    }
}
