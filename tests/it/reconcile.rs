//! `contact-sync reconcile` as it runs in a container: started on a copy of the
//! example with a free port, it applies on start, follows manifest edits, keeps the
//! last good manifests through a bad edit, answers a manual trigger, exposes its
//! metrics and exits 0 on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use contact_sync::manifest::Schedule;
use contact_sync::reconcile::schedule::Timetable;

use crate::harness::Seed;

const TOKEN: &str = "s3cret-trigger-token";

/// A running `reconcile`, stopped (SIGKILL) if the test ends early.
struct Loop {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Loop {
    async fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[]).await
    }

    async fn start_with(dir: &Path, args: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(assert_cmd::cargo::cargo_bin("contact-sync"))
            .args(["reconcile", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .arg(dir)
            .env("CONTACT_SYNC_TRIGGER_TOKEN", TOKEN)
            .env("CONTACT_SYNC_CACHE_DIR", crate::test_cache_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me =
            Self { child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        me.until("/healthz answers", |_| true, "/healthz").await;
        me
    }

    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        self.http.get(format!("{}{path}", self.base)).send().await.ok()
    }

    async fn status(&self) -> Value {
        self.get("/status").await.unwrap().json().await.unwrap()
    }

    /// Polls `path` (JSON, or text for /healthz and /metrics) until `ok` holds.
    async fn until(&self, what: &str, ok: impl Fn(&Value) -> bool, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = self.get(path).await {
                let text = r.text().await.unwrap_or_default();
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                if ok(&value) {
                    return value;
                }
                assert!(Instant::now() < deadline, "waited 20 s for {what}: {value:#}");
            } else {
                assert!(Instant::now() < deadline, "waited 20 s for {what}: no answer");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn trigger(&self, sync: &str, token: Option<&str>) -> u16 {
        let mut request = self.http.post(format!("{}/syncs/{sync}/run", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// SIGTERM, and the exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "reconcile did not exit within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn last_run(status: &Value, sync: &str) -> Value {
    status["syncs"][sync]["lastRun"].clone()
}

fn runs(status: &Value, sync: &str) -> usize {
    status["syncs"][sync]["runs"].as_array().map_or(0, Vec::len)
}

/// Every sample line of a Prometheus text exposition: `name{labels} value`.
fn check_exposition(text: &str) {
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name in {line}"
        );
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {name} ")) || text.contains(&format!("# TYPE {base} ")),
            "{name} has no TYPE line"
        );
    }
}

const SYNC: &str = "sales-to-accounting";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_applies_follows_edits_survives_bad_ones_and_stops_on_sigterm() {
    the_loop(Seed::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_against_the_emulator() {
    the_loop(Seed::google()).await;
}

/// Everything a loop in a container goes through, on `seed`'s backend.
async fn the_loop(seed: Seed) {
    // The sync runs on weekday mornings in New York.
    let ws = seed.read("contact-sync.yaml");
    let ws = if ws.contains("timeZone: UTC") {
        ws.replace("timeZone: UTC", "timeZone: America/New_York")
    } else {
        ws.replace("  orphans: delete\n", "  orphans: delete\n  timeZone: America/New_York\n")
    };
    assert!(ws.contains("timeZone: America/New_York"));
    seed.write("contact-sync.yaml", &ws);
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("schedule: nightly", "schedule: \"0 6 * * 1-5\"");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let rc = Loop::start(seed.dir.path()).await;

    // runOnCreate: the example is applied at once.
    let status =
        rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    assert_eq!(last_run(&status, SYNC)["trigger"], "runOnCreate");
    assert_eq!(last_run(&status, SYNC)["create"], 35);
    let ready = rc.get("/readyz").await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    // nextRun: the cron expression in the Workspace's time zone.
    let expected =
        Timetable::new(&Schedule::Cron("0 6 * * 1-5".into()), "02:00", "America/New_York")
            .unwrap()
            .next_after(Utc::now())
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(status["syncs"][SYNC]["nextRun"], expected.as_str());

    // An edit is followed without a restart: Frank becomes a destination.
    let edited = manifest.replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [frank@example.com]\n",
    );
    assert_ne!(edited, manifest);
    seed.write("syncs/sales-to-accounting.yaml", &edited);
    let status = rc
        .until(
            "the edit to be applied",
            |s| last_run(s, SYNC)["trigger"] == "manifestChanged",
            "/status",
        )
        .await;
    assert_eq!(last_run(&status, SYNC)["create"], 7, "{status:#}");

    // A bad edit: shown, and the last good manifests keep working.
    seed.write("syncs/sales-to-accounting.yaml", &format!("{edited}bogus: 1\n"));
    let status = rc
        .until(
            "the bad edit in /status",
            |s| !s["manifestErrors"].as_array().unwrap().is_empty(),
            "/status",
        )
        .await;
    assert!(
        status["manifestErrors"][0].as_str().unwrap().contains("unknown field `bogus`"),
        "{status:#}"
    );
    let metrics = rc.get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("contact_sync_manifest_errors 1"), "{metrics}");

    // A manual run: the token is required; with it, the last good manifests run.
    assert_eq!(rc.trigger(SYNC, None).await, 401);
    assert_eq!(rc.trigger(SYNC, Some("wrong")).await, 401);
    assert_eq!(rc.trigger("no-such-sync", Some(TOKEN)).await, 404);
    let before = runs(&rc.status().await, SYNC);
    assert_eq!(rc.trigger(SYNC, Some(TOKEN)).await, 202);
    let status = rc.until("the manual run", |s| runs(s, SYNC) > before, "/status").await;
    assert_eq!(last_run(&status, SYNC)["trigger"], "manual");
    assert_eq!(last_run(&status, SYNC)["result"], "success");

    // The fix clears the errors.
    seed.write("syncs/sales-to-accounting.yaml", &edited);
    rc.until("the fix", |s| s["manifestErrors"].as_array().unwrap().is_empty(), "/status").await;

    let metrics = rc.get("/metrics").await.unwrap().text().await.unwrap();
    for series in [
        "contact_sync_runs_total{sync=\"sales-to-accounting\",result=\"success\"}",
        "contact_sync_run_duration_seconds_count{sync=\"sales-to-accounting\"}",
        "contact_sync_changes_total{sync=\"sales-to-accounting\",action=\"create\"} 42",
        "contact_sync_last_success_timestamp_seconds{sync=\"sales-to-accounting\"}",
        "contact_sync_next_run_timestamp_seconds{sync=\"sales-to-accounting\"}",
        "contact_sync_manifest_errors 0",
        "contact_sync_build_info{version=",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    check_exposition(&metrics);
    promtool_accepts(&metrics);

    // A sync removed from the manifests takes its series with it.
    let renamed = edited.replace("name: sales-to-accounting", "name: sales-to-accounting-v2");
    assert_ne!(renamed, edited);
    seed.write("syncs/sales-to-accounting.yaml", &renamed);
    rc.until("the rename", |s| s["syncs"].get("sales-to-accounting-v2").is_some(), "/status").await;
    let metrics = rc.get("/metrics").await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("sync=\"sales-to-accounting\""), "{metrics}");
    assert!(metrics.contains("sync=\"sales-to-accounting-v2\""), "{metrics}");
    assert_eq!(rc.terminate(), Some(0));
}

/// `promtool check metrics`, where Prometheus's tool is installed (CI installs it).
fn promtool_accepts(metrics: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "promtool not installed: the exposition was checked by the test's own parser only"
        );
        return;
    };
    child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_runs_against_the_emulator_and_counts_its_requests() {
    let seed = Seed::google();
    let rc = Loop::start(seed.dir.path()).await;
    let status =
        rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    assert_eq!(last_run(&status, SYNC)["create"], 35, "{status:#}");
    let metrics = rc.get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("contact_sync_api_requests_total{backend=\"google\",code=\"200\"}"),
        "{metrics}"
    );
    // The first run read every user and recorded the five destinations.
    assert!(metrics.contains("contact_sync_inventory_users 5\n"), "{metrics}");
    assert!(!metrics.contains("contact_sync_last_full_scan_timestamp_seconds 0\n"), "{metrics}");
    check_exposition(&metrics);
    assert_eq!(rc.terminate(), Some(0));
    seed.flush();
    let plan = seed.plan().await;
    assert!(!plan.summary.has_changes(), "the loop converged the tenant");
}

/// A checkout as git-sync lays it out: `root/.worktrees/NAME` holding the
/// manifests, and `root/manifests` a symbolic link to the current one, swapped
/// atomically (a new link renamed over the old) on every update.
fn checkout(root: &Path, name: &str, from: &Path, sync: &str) {
    let tree = root.join(".worktrees").join(name);
    std::fs::create_dir_all(tree.join("syncs")).unwrap();
    std::fs::copy(from.join("contact-sync.yaml"), tree.join("contact-sync.yaml")).unwrap();
    std::fs::write(tree.join("syncs/sales-to-accounting.yaml"), sync).unwrap();
    let link = root.join(".manifests-new");
    std::os::unix::fs::symlink(Path::new(".worktrees").join(name), &link).unwrap();
    std::fs::rename(&link, root.join("manifests")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_follows_a_git_sync_checkout_through_its_link_swaps() {
    let seed = Seed::google();
    let root = tempfile::tempdir().unwrap();
    let sync = seed.read("syncs/sales-to-accounting.yaml");
    checkout(root.path(), "a", seed.dir.path(), &sync);
    let rc = Loop::start(&root.path().join("manifests")).await;
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;

    // git-sync checks out a new commit beside the old one, swaps the link, and
    // removes the old checkout.
    let with_frank = sync.replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [frank@example.com]\n",
    );
    assert_ne!(with_frank, sync);
    checkout(root.path(), "b", seed.dir.path(), &with_frank);
    std::fs::remove_dir_all(root.path().join(".worktrees/a")).unwrap();
    let status = rc
        .until(
            "the new checkout to be applied",
            |s| last_run(s, SYNC)["trigger"] == "manifestChanged",
            "/status",
        )
        .await;
    assert_eq!(last_run(&status, SYNC)["create"], 7, "{status:#}");

    // The new checkout is watched too: an edit inside it is seen.
    let before = runs(&status, SYNC);
    std::fs::write(
        root.path().join(".worktrees/b/syncs/sales-to-accounting.yaml"),
        format!("{with_frank}bogus: 1\n"),
    )
    .unwrap();
    let status = rc
        .until(
            "the edit inside the new checkout",
            |s| !s["manifestErrors"].as_array().unwrap().is_empty(),
            "/status",
        )
        .await;
    assert_eq!(runs(&status, SYNC), before, "a bad edit runs nothing");
    std::fs::write(root.path().join(".worktrees/b/syncs/sales-to-accounting.yaml"), &with_frank)
        .unwrap();
    rc.until("the fix", |s| s["manifestErrors"].as_array().unwrap().is_empty(), "/status").await;
    assert_eq!(rc.terminate(), Some(0));
    crate::contact_sync()
        .args(["plan", "--detailed-exitcode"])
        .arg(root.path().join("manifests"))
        .assert()
        .code(0);
}

/// A Kubernetes ConfigMap volume: `root/..TIMESTAMP/` holds the files, `..data`
/// links to the current one, and every file is a link through `..data`; an update
/// writes a new `..TIMESTAMP/` and swaps `..data`.
fn config_map(root: &Path, version: &str, from: &Path, sync: &str) {
    let data = root.join(format!("..{version}"));
    std::fs::create_dir_all(data.join("syncs")).unwrap();
    std::fs::copy(from.join("contact-sync.yaml"), data.join("contact-sync.yaml")).unwrap();
    std::fs::write(data.join("syncs/sales-to-accounting.yaml"), sync).unwrap();
    let link = root.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &link).unwrap();
    std::fs::rename(&link, root.join("..data")).unwrap();
    for name in ["contact-sync.yaml", "syncs"] {
        let _ = std::os::unix::fs::symlink(Path::new("..data").join(name), root.join(name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_follows_a_config_map_volume_update() {
    let seed = Seed::google();
    let root = tempfile::tempdir().unwrap();
    let sync = seed.read("syncs/sales-to-accounting.yaml");
    config_map(root.path(), "v1", seed.dir.path(), &sync);
    let rc = Loop::start(root.path()).await;
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    let with_frank = sync.replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [frank@example.com]\n",
    );
    config_map(root.path(), "v2", seed.dir.path(), &with_frank);
    std::fs::remove_dir_all(root.path().join("..v1")).unwrap();
    let status = rc
        .until(
            "the updated ConfigMap to be applied",
            |s| last_run(s, SYNC)["trigger"] == "manifestChanged",
            "/status",
        )
        .await;
    assert_eq!(last_run(&status, SYNC)["create"], 7, "{status:#}");
    assert_eq!(rc.terminate(), Some(0));
}

#[test]
fn reconcile_once_runs_every_sync_and_exits_with_the_usual_codes() {
    let seed = Seed::new();
    crate::contact_sync().args(["reconcile", "--once"]).arg(seed.dir.path()).assert().success();
    crate::contact_sync()
        .args(["plan", "--detailed-exitcode"])
        .arg(seed.dir.path())
        .assert()
        .code(0);
    // A sync held back (its source user is gone) fails the run: exit 1.
    let broken = seed.read("syncs/sales-to-accounting.yaml").replace("salesuser@", "nobody@");
    seed.write("syncs/sales-to-accounting.yaml", &broken);
    crate::contact_sync().args(["reconcile", "--once"]).arg(seed.dir.path()).assert().code(1);
}

/// A webhook that records what it is sent.
async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_error_is_posted_to_the_webhooks() {
    let (url, got) = webhook().await;
    let seed = Seed::new();
    let ws = format!(
        "{}  notifications:\n    - url: \"{url}\"\n    - url: \"{url}\"\n      format: slack\n      events: [drift]\n",
        seed.read("contact-sync.yaml")
    );
    seed.write("contact-sync.yaml", &ws);
    // The source address is now an alias: the sync is held back until the manifest
    // names salesuser@example.com.
    let renamed =
        seed.read("syncs/sales-to-accounting.yaml").replace("user: salesuser@", "user: sales@");
    seed.write("syncs/sales-to-accounting.yaml", &renamed);
    let rc = Loop::start(seed.dir.path()).await;
    let status = rc
        .until("the held-back run", |s| last_run(s, SYNC)["result"] == "heldBack", "/status")
        .await;
    assert_eq!(last_run(&status, SYNC)["errors"][0]["kind"], "sourceRenamed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "webhooks got {:?}", got.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.lock().unwrap().clone();
    let json = got.iter().find(|b| b.get("event").is_some()).expect("the JSON message");
    assert_eq!(json["event"], "drift");
    assert_eq!(json["sync"], SYNC);
    assert!(
        json["reason"].as_str().unwrap().contains("was renamed to salesuser@example.com"),
        "{json}"
    );
    let at = &json["location"];
    assert!(at["file"].as_str().unwrap().ends_with("sales-to-accounting.yaml"), "{json}");
    assert!(at["line"].as_u64().unwrap() > 0 && at["column"].as_u64().unwrap() > 0, "{json}");
    let slack = got.iter().find(|b| b.get("text").is_some()).expect("the Slack message");
    assert!(slack["text"].as_str().unwrap().contains("Fix at `"), "{slack}");
    assert_eq!(rc.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_member_is_picked_up_by_the_cheap_check() {
    let seed = Seed::new();
    let rc = Loop::start_with(seed.dir.path(), &["--check-interval", "1"]).await;
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    // Frank joins the accounting group; no manifest changes.
    seed.edit_file(|t| {
        let group = t.groups.iter_mut().find(|g| g.email == "accounting@example.com").unwrap();
        group.members.push("frank@example.com".into());
    });
    let status = rc
        .until(
            "the check to run the sync",
            |s| last_run(s, SYNC)["trigger"] == "directoryChanged",
            "/status",
        )
        .await;
    assert_eq!(last_run(&status, SYNC)["create"], 7, "{status:#}");
    assert_eq!(rc.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_while_the_sync_runs_is_a_conflict() {
    // A slow tenant, so that the first run is still going when the trigger comes.
    let seed = Seed::google_with(|c| c.latency = Duration::from_millis(150));
    let rc = Loop::start(seed.dir.path()).await;
    rc.until("the first run to be under way", |s| s["syncs"][SYNC]["running"] == true, "/status")
        .await;
    assert_eq!(rc.trigger(SYNC, Some(TOKEN)).await, 409);
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    assert_eq!(rc.terminate(), Some(0));
}

/// The container image's health check: `contact-sync healthcheck` asks the loop's
/// /healthz at the address it listens on (CONTACT_SYNC_LISTEN, as the image sets
/// it), loopback for an address on every interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_asks_the_loop_it_names() {
    let seed = Seed::new();
    let rc = Loop::start(seed.dir.path()).await;
    let port = rc.base.rsplit(':').next().unwrap().to_owned();
    let healthcheck = |listen: &str| {
        crate::contact_sync()
            .arg("healthcheck")
            .env("CONTACT_SYNC_LISTEN", listen)
            .timeout(Duration::from_secs(20))
            .assert()
    };
    healthcheck(&format!("127.0.0.1:{port}")).success();
    healthcheck(&format!("0.0.0.0:{port}")).success();
    assert_eq!(rc.terminate(), Some(0));
    let closed = healthcheck(&format!("127.0.0.1:{port}")).code(1);
    let stderr = String::from_utf8(closed.get_output().stderr.clone()).unwrap();
    assert!(stderr.starts_with("unhealthy: http://127.0.0.1:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_workspace_field_selection_runs_the_syncs_it_applies_to() {
    let seed = Seed::new();
    let rc = Loop::start(seed.dir.path()).await;
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    // Only the Workspace's default selection changes: no sync manifest, nothing of
    // where the tenant is; Ada's birthday leaves every destination's copy of her.
    let ws = seed.read("contact-sync.yaml");
    seed.write("contact-sync.yaml", &format!("{ws}  fields: {{ exclude: [birthdays] }}\n"));
    let status = rc
        .until(
            "the new selection to be applied",
            |s| last_run(s, SYNC)["trigger"] == "manifestChanged",
            "/status",
        )
        .await;
    assert_eq!(last_run(&status, SYNC)["result"], "success", "{status:#}");
    assert_eq!(last_run(&status, SYNC)["update"], 5, "{status:#}");
    assert_eq!(rc.terminate(), Some(0));
    let tenant = seed.read("workspace.yaml");
    assert_eq!(tenant.matches("year: 1815").count(), 1, "only the source keeps the birthday");
}

/// The loop from the command line: `status` says where each sync stands and
/// `trigger` runs one; a deletion the guard refused is approved once, for that
/// sync and exactly that many deletions, with `trigger --allow-deletes N`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deletion_is_approved_once_from_the_command_line() {
    let seed = Seed::new();
    let rc = Loop::start(seed.dir.path()).await;
    let listen = rc.base.trim_start_matches("http://").to_owned();
    let cli = |args: &[&str], token: Option<&str>| {
        let mut cmd = crate::contact_sync();
        cmd.args(args).args(["--listen", &listen]).timeout(Duration::from_secs(30));
        match token {
            Some(token) => cmd.env("CONTACT_SYNC_TRIGGER_TOKEN", token),
            None => cmd.env_remove("CONTACT_SYNC_TRIGGER_TOKEN"),
        };
        let out = cmd.output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        (out.status.code(), text)
    };
    rc.until("the first run", |s| last_run(s, SYNC)["result"] == "success", "/status").await;
    let (code, text) = cli(&["status"], None);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("sync sales-to-accounting: in sync\n  last run  "), "{text}");
    assert!(text.contains("(runOnCreate, success): 35 added, 0 changed, 0 deleted"), "{text}");

    // The source group emptied: the guard holds the sync back.
    seed.edit(|s| crate::harness::empty_group(s, "salesuser@example.com", "Sales Contacts")).await;
    let run =
        |n: usize| move |s: &Value| runs(s, SYNC) >= n && s["syncs"][SYNC]["running"] == false;
    let (code, text) = cli(&["trigger", SYNC], None);
    assert_eq!(code, Some(1), "the loop has a token: {text}");
    assert!(text.contains("401") && text.contains("CONTACT_SYNC_TRIGGER_TOKEN"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    let (code, text) = cli(&["trigger", SYNC], Some(TOKEN));
    assert_eq!((code, text.as_str()), (Some(0), "sync sales-to-accounting: run requested\n"));
    let status = rc.until("the guarded run", run(2), "/status").await;
    assert_eq!(last_run(&status, SYNC)["result"], "heldBack", "{status:#}");
    let (code, text) = cli(&["status"], None);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("sync sales-to-accounting: held back\n"), "{text}");
    assert!(
        text.contains("! deleteGuard: would delete 30 of 30 managed contacts")
            && text.contains("`contact-sync trigger sales-to-accounting --allow-deletes 30`"),
        "{text}"
    );
    assert_eq!(seed.contacts("ann@example.com").await.len(), 7);

    // An approval of another number lets nothing through, and is used up.
    let (code, _) = cli(&["trigger", SYNC, "--allow-deletes", "29"], Some(TOKEN));
    assert_eq!(code, Some(0));
    let status = rc.until("the run approved for 29", run(3), "/status").await;
    let last = last_run(&status, SYNC);
    assert_eq!(last["result"], "heldBack", "{status:#}");
    assert!(
        last["errors"][0]["message"].as_str().unwrap().contains("approval was for 29 deletions"),
        "{last:#}"
    );
    assert_eq!(status["syncs"][SYNC]["approvedDeletes"], Value::Null, "{status:#}");
    assert_eq!(seed.contacts("ann@example.com").await.len(), 7);

    // The right number goes through, once.
    let (code, text) = cli(&["trigger", SYNC, "--allow-deletes", "30"], Some(TOKEN));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("approving 30 deletions"), "{text}");
    let status = rc.until("the approved run", run(4), "/status").await;
    let last = last_run(&status, SYNC);
    assert_eq!((last["result"].as_str(), last["delete"].as_u64()), (Some("success"), Some(30)));
    assert_eq!(seed.contacts("ann@example.com").await.len(), 1, "only Ann's own contact is left");
    let (code, text) = cli(&["status", "--format", "json"], None);
    assert_eq!(code, Some(0), "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["syncs"][SYNC]["approvedDeletes"], Value::Null);
    // Converged: a run after it changes nothing.
    cli(&["trigger", SYNC], Some(TOKEN));
    let status = rc.until("the run after", run(5), "/status").await;
    let last = last_run(&status, SYNC);
    assert_eq!(
        (last["result"].as_str(), last["create"].as_u64(), last["delete"].as_u64()),
        (Some("success"), Some(0), Some(0)),
        "{status:#}"
    );
    let (code, text) = cli(&["trigger", "no-such-sync"], Some(TOKEN));
    assert_eq!(code, Some(1));
    assert!(text.contains("404") && text.contains("no sync named no-such-sync"), "{text}");
    assert_eq!(rc.terminate(), Some(0));
    let (code, text) = cli(&["status"], None);
    assert_eq!(code, Some(1));
    assert!(text.contains("is contact-sync reconcile running there?"), "{text}");
}
