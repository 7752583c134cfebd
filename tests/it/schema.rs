//! The committed JSON Schema: fresh, and usable by a standard validator on its own.
//!
//! The examples are parsed here with serde_yaml and checked with the jsonschema crate
//! against the committed file: neither the spanned loader nor the per-kind schema
//! selection of `contact-sync validate` is involved, so this is what an editor or
//! another tool sees.

use crate::{contact_sync, root};

fn committed() -> String {
    std::fs::read_to_string(root().join("schemas/contact-sync.schema.json")).unwrap()
}

#[test]
fn committed_schema_is_fresh() {
    let generated =
        serde_json::to_string_pretty(&contact_sync::manifest::json_schema()).unwrap() + "\n";
    assert!(
        committed() == generated,
        "schemas/contact-sync.schema.json is stale; regenerate it with\n\n    \
         cargo run -- schema > schemas/contact-sync.schema.json\n"
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = contact_sync().arg("schema").assert().success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), committed());
}

fn standard_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&committed()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn yaml_file(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn a_standard_validator_accepts_the_examples() {
    let validator = standard_validator();
    for path in ["examples/contact-sync.yaml", "examples/syncs/sales-to-accounting.yaml"] {
        let doc = yaml_file(path);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{path}: {errors:#?}");
    }
}

#[test]
fn a_standard_validator_rejects_an_unknown_field() {
    let validator = standard_validator();
    let mut doc = yaml_file("examples/syncs/sales-to-accounting.yaml");
    doc["spec"]["target"]["groupNme"] = "Sales".into();
    assert!(!validator.is_valid(&doc));
    let doc = yaml_file("examples/invalid/unknown-field.yaml");
    assert!(!validator.is_valid(&doc));
}

#[test]
fn examples_carry_the_schema_modeline() {
    for path in ["examples/contact-sync.yaml", "examples/syncs/sales-to-accounting.yaml"] {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        let modeline = text.lines().next().unwrap();
        let target = modeline
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{path}: first line is not the schema modeline"));
        let schema = root().join(path).parent().unwrap().join(target);
        assert!(schema.is_file(), "{path}: modeline points at {}", schema.display());
    }
}
