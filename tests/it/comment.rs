//! The markdown plan as a pull-request comment: the summary counts what apply
//! would do and names what it would not; a table per sync; errors, the deletion
//! guard's refusal and renames first and unfolded, each rename with its fix as a
//! ready `diff` block; the per-user detail folded, with errors told apart from
//! changes.

use crate::contact_sync;
use crate::harness::Seed;

const FINANCE: &str = "\
apiVersion: contact-sync/v1
kind: ContactSync
metadata:
  name: sales-to-finance
spec:
  source:
    user: salesuser@example.com
    contactGroup: Sales Contacts
  target:
    groupName: Sales (Finance)
  destinations:
    users:
      - gina@example.com
      - \"frank@example.com\"   # the consultant, for the quarter
";

fn rename_frank(t: &mut contact_sync::backend::tenant::TenantFile) {
    let u = t.users.iter_mut().find(|u| u.primary_email == "frank@example.com").unwrap();
    u.aliases.push("frank@example.com".into());
    u.primary_email = "franz@example.com".into();
}

/// A converged seed with two syncs, then: sales-to-accounting switched to another
/// source group (every copy would go: the deletion guard refuses), frank renamed
/// (sales-to-finance holds him back), and gina's copy of Grace Hopper from sales-to-finance edited.
async fn review(seed: &Seed) -> String {
    seed.write("syncs/sales-to-finance.yaml", FINANCE);
    seed.converge().await;
    let accounting = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("contactGroup: Sales Contacts", "contactGroup: Family");
    seed.write("syncs/sales-to-accounting.yaml", &accounting);
    seed.edit_file(rename_frank);
    seed.edit(|store| {
        let copy = store
            .contacts("gina@example.com")
            .unwrap()
            .into_iter()
            .find(|c| {
                c.owner() == Some("sales-to-finance")
                    && contact_sync::model::display_name(&c.fields) == "Grace Hopper"
            })
            .unwrap();
        let mut fields = contact_sync::model::PersonFields::new();
        fields.insert("nicknames".into(), serde_json::json!([{"value": "Amazing"}]));
        let update = contact_sync::backend::ContactUpdate {
            resource_name: copy.resource_name,
            etag: copy.etag,
            fields,
            update_mask: vec!["nicknames".into()],
            client_data: Vec::new(),
        };
        store.update_contacts("gina@example.com", vec![update]).unwrap();
    })
    .await;
    let out = contact_sync()
        .current_dir(seed.dir.path())
        .args(["plan", ".", "--format", "markdown"])
        .assert()
        .code(1);
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_comment_leads_with_what_needs_a_person() {
    let seed = Seed::new();
    let md = review(&seed).await;
    insta::assert_snapshot!("pull_request_comment", md);
    let (top, detail) = md.split_once("<details>").expect("the detail is folded");
    // The summary counts only gina's change: the guarded sync's adds and deletes
    // are not what apply would do.
    assert!(
        top.starts_with(
            "**contact-sync plan for example:** 0 to add, 1 to change, 0 to delete. 2 errors, not planned: \
             sync sales-to-accounting held back (30 deletions refused by the deletion guard) \
             and frank\\@example.com in sync sales-to-finance.\n"
        ),
        "{top}"
    );
    assert!(
        top.contains(
            "| `sales-to-accounting` | 5 | ~~5~~ | 0 | ~~30~~ | 1 | **held back**: deletion guard |"
        ),
        "{top}"
    );
    assert!(
        top.contains("| `sales-to-finance` | 1 | 0 | 1 | 0 | 1 | 1 destination held back |"),
        "{top}"
    );
    // Errors and the rename's fix come before the fold.
    assert!(top.contains("would delete 30 of 30 managed contacts"), "{top}");
    assert!(
        top.contains(
            "```diff\n--- a/syncs/sales-to-finance.yaml\n+++ b/syncs/sales-to-finance.yaml\n\
             @@ -14 +14 @@\n-      - \"frank@example.com\"   # the consultant, for the quarter\n\
             +      - \"franz@example.com\"   # the consultant, for the quarter\n```\n"
        ),
        "{top}"
    );
    // In the fold, an error is no change marker.
    assert!(detail.contains("\n  error: frank@example.com: renamed to"), "{detail}");
    for error in detail.lines().filter(|l| l.contains("renamed to") || l.contains("would delete")) {
        assert!(error.starts_with("  error: "), "{error}");
    }
    assert!(detail.contains("\n!     contact \"Grace Hopper\""), "{detail}");
    let accounting = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("contactGroup: Family", "contactGroup: Sales Contacts");
    seed.write("syncs/sales-to-accounting.yaml", &accounting);
    seed.converge().await;
}

/// The diff the comment shows is the change `contact-sync fix` writes, and with it
/// the plan has only the guard left.
#[tokio::test(flavor = "multi_thread")]
async fn the_rename_diff_is_what_fix_writes() {
    let seed = Seed::new();
    let md = review(&seed).await;
    let shown: Vec<&str> =
        md.lines().skip_while(|l| !l.starts_with("@@ ")).skip(1).take(2).collect();
    contact_sync().current_dir(seed.dir.path()).args(["fix", "."]).assert().success();
    let fixed = seed.read("syncs/sales-to-finance.yaml");
    assert_eq!(fixed, FINANCE.replace("frank@", "franz@"));
    assert_eq!(
        shown,
        [
            "-      - \"frank@example.com\"   # the consultant, for the quarter",
            "+      - \"franz@example.com\"   # the consultant, for the quarter"
        ]
    );
    let plan = seed.plan().await;
    assert_eq!(plan.summary.errors, 1, "{}", seed.text(&plan));
    // Back to the old source group, everything converges.
    let accounting = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("contactGroup: Family", "contactGroup: Sales Contacts");
    seed.write("syncs/sales-to-accounting.yaml", &accounting);
    seed.converge().await;
}
