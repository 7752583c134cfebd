//! A Google that lags: listings that trail each user's writes by seconds (the
//! emulator's `list_lag`, `--list-lag`) while answers get lost. A resend decided
//! from a listing would duplicate; a group create met by 409 would look like a
//! conflict; the lease's own lost create would look like another writer. The
//! backend checks with reads by resource name, which never trail.

use std::time::{Duration, Instant};

use crate::harness::{Seed, count};
use crate::unattended::{copies, dropped};
use contact_sync::emulator::quota::Limits;

const LAG: Duration = Duration::from_secs(5);

fn apply(seed: &Seed) -> (i32, String) {
    let out = crate::contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--lock-timeout", "0"])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn a_lagging_google_that_loses_answers_gets_each_copy_once() {
    let (contacts, destinations) = (300, 20);
    let seed = Seed::synthetic_google(contacts, destinations, |c| {
        c.list_lag = LAG;
        c.drop_response_rate = 0.3;
        c.seed = 19;
        c.limits = Limits { window: Duration::from_secs(1), ..Limits::default() };
    });
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The first sync, through the command line: lease, inventory and all.
    let (code, out) = apply(&seed);
    assert_eq!(code, 0, "{out}");
    assert_eq!(copies(&seed, destinations), vec![(contacts, contacts); destinations], "{out}");
    let stats = rt.block_on(seed.stats());
    assert!(dropped(&stats) > 0, "answers were lost: {stats:#}");
    assert!(
        count(&stats, "POST /v1/contactGroups", Some(409)) > 0,
        "a group create whose answer was lost was sent again and met 409: {stats:#}"
    );

    // At once again, while the listings still show the tenant as it was: the
    // lease is free, and the copies the plan cannot see are found by name, not
    // made twice.
    let again = Instant::now();
    let (code, out) = apply(&seed);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("writer lease, held by"), "the lease was given up: {out}");
    assert_eq!(copies(&seed, destinations), vec![(contacts, contacts); destinations], "{out}");

    // Once the listings caught up, nothing is left to do.
    std::thread::sleep(LAG.saturating_sub(again.elapsed()) + Duration::from_secs(1));
    crate::contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .arg("--detailed-exitcode")
        .assert()
        .code(0);
}
