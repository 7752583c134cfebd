//! The planner stays pure: no async runtime, no I/O, no backend.

#[test]
fn the_planner_imports_no_runtime_io_or_backend() {
    let dir = crate::root().join("src/plan");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in
            ["tokio::", "reqwest::", "crate::backend", "std::fs", "std::net", "async fn"]
        {
            assert!(!text.contains(forbidden), "{} uses {forbidden}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 5);
}
