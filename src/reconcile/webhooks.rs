//! Notifications: after a run that needs a person — it failed, a drift error or the
//! deletion guard held it back, it deleted many contacts — a message to each
//! webhook of the Workspace's `spec.notifications` that asked for that event.
//! Sent in the background with a timeout and a few retries ([`super::policy`]): a
//! webhook that fails never holds a run up. The sends are tracked, so a stopping
//! loop waits for the messages still on their way — for as long as one message
//! can take at most.

use backon::Retryable;
use serde_json::json;
use tokio_util::task::TaskTracker;

use super::policy;
use super::run::{API, RunRecord, RunResult, rfc3339};
use crate::manifest::{Notification, NotificationEvent, NotificationFormat};
use crate::text::printable;

/// Error kinds that are drift: what changed in the directory or a destination
/// under the manifest's feet, and needs a manifest edit.
const DRIFT: [&str; 4] =
    ["sourceRenamed", "destinationRenamed", "sourceIdentityChanged", "targetGroupConflict"];

/// One message about one run of one sync.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// What happened.
    pub event: NotificationEvent,
    /// The sync.
    pub sync: String,
    /// Why, in words.
    pub reason: String,
    /// `file:line:col` of the manifest value to change, where there is one.
    pub location: Option<String>,
    /// `7 added, 0 changed, 0 deleted`.
    pub summary: String,
    /// When the run ended (RFC 3339).
    pub at: String,
}

/// The messages a run calls for, for `hook`.
pub fn messages(record: &RunRecord, hook: &Notification) -> Vec<Message> {
    let summary =
        format!("{} added, {} changed, {} deleted", record.added, record.changed, record.deleted);
    let message = |event, reason: &str, location: Option<&String>| Message {
        event,
        sync: record.sync.clone(),
        reason: reason.to_owned(),
        location: location.cloned(),
        summary: summary.clone(),
        at: rfc3339(record.end),
    };
    let mut out = Vec::new();
    let first = |kinds: &[&str]| record.errors.iter().find(|e| kinds.contains(&e.kind.as_str()));
    if record.result == RunResult::Failure
        && let Some(e) = first(&[API])
    {
        out.push(message(NotificationEvent::Failure, &e.message, e.location.as_ref()));
    }
    if let Some(e) = first(&DRIFT) {
        out.push(message(NotificationEvent::Drift, &e.message, e.location.as_ref()));
    }
    if let Some(e) = first(&["deleteGuard"]) {
        out.push(message(NotificationEvent::DeleteGuard, &e.message, e.location.as_ref()));
    }
    if record.deleted > hook.deletions_over as usize {
        let reason = format!(
            "the run deleted {} contacts or groups, more than deletionsOver {}",
            record.deleted, hook.deletions_over
        );
        out.push(message(NotificationEvent::Deletions, &reason, None));
    }
    out.retain(|m| hook.events.contains(&m.event));
    out
}

/// `file:line:col` as `{"file", "line", "column"}`, the plan's form.
fn structured(location: &Option<String>) -> serde_json::Value {
    crate::plan::error::position::serialize(location, serde_json::value::Serializer)
        .unwrap_or_default()
}

/// The body `hook` gets for `m`.
pub fn body(hook: &Notification, m: &Message) -> serde_json::Value {
    let event = serde_json::to_value(m.event).unwrap_or_default();
    match hook.format {
        NotificationFormat::Json => json!({
            "source": "contact-sync",
            "event": event,
            "sync": m.sync,
            "reason": m.reason,
            "location": structured(&m.location),
            "summary": m.summary,
            "at": m.at,
        }),
        NotificationFormat::Slack => {
            let what = match m.event {
                NotificationEvent::Failure => "a run failed (it is retried)",
                NotificationEvent::Drift => "held back: the manifest needs a change",
                NotificationEvent::DeleteGuard => "held back by the deletion guard",
                NotificationEvent::Deletions => "a run deleted many contacts",
            };
            // Each value escaped on its own: the line breaks are the message's.
            let fix = m
                .location
                .as_ref()
                .map(|l| format!("\nFix at `{}`", printable(l)))
                .unwrap_or_default();
            let text = format!(
                "*contact-sync* sync `{}`: {what}\n{}{fix}\n_{}_",
                printable(&m.sync),
                printable(&m.reason),
                printable(&m.summary)
            );
            json!({ "text": text })
        }
    }
}

/// Sends the messages runs call for, in the background, and keeps track of them.
pub struct Notifier {
    http: reqwest::Client,
    sending: TaskTracker,
}

impl Notifier {
    /// A notifier with its own HTTP client.
    pub fn new() -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, sending: TaskTracker::new() })
    }

    /// Sends what `record` calls for to each of `hooks` that asked for it.
    pub fn observe(&self, record: &RunRecord, hooks: &[Notification]) {
        for hook in hooks {
            for m in messages(record, hook) {
                self.send(hook.clone(), m);
            }
        }
    }

    /// Posts `m` to `hook` in the background, with retries; failures are logged.
    fn send(&self, hook: Notification, m: Message) {
        let http = self.http.clone();
        self.sending.spawn(async move {
            let body = body(&hook, &m);
            let post = || async {
                match http.post(&hook.url).timeout(policy::WEBHOOK_TIMEOUT).json(&body).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("answered HTTP {}", r.status().as_u16())),
                    Err(e) => Err(crate::text::error_chain(&e)),
                }
            };
            if let Err(last) = post.retry(policy::webhooks()).await {
                tracing::warn!(sync = %m.sync, webhook = %redact_url(&hook.url), "notification not delivered: {last}");
            }
        });
    }

    /// Waits for the messages still being sent, at most as long as one message
    /// can take ([`policy::webhook_worst_case`]); no new ones are sent after.
    pub async fn finish(&self) {
        self.sending.close();
        let bound = policy::webhook_worst_case();
        if tokio::time::timeout(bound, self.sending.wait()).await.is_err() {
            tracing::warn!(
                messages = self.sending.len(),
                "notifications still not delivered after {}s; stopping without them",
                bound.as_secs()
            );
        }
    }
}

/// A webhook URL without its path and query (where Slack keeps the secret).
fn redact_url(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}://{}/…", u.scheme(), u.host_str()?)))
        .unwrap_or_else(|| "(a webhook)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::run::{RunError, Trigger};

    fn hook(events: Vec<NotificationEvent>) -> Notification {
        Notification {
            url: "https://hooks.example.com/x".into(),
            format: NotificationFormat::Json,
            events,
            deletions_over: 10,
        }
    }

    fn record(result: RunResult, deleted: usize, errors: &[(&str, &str)]) -> RunRecord {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        RunRecord {
            result,
            deleted,
            errors: errors
                .iter()
                .map(|(kind, message)| RunError {
                    kind: (*kind).into(),
                    message: (*message).into(),
                    location: Some("syncs/a.yaml:12:11".into()),
                })
                .collect(),
            ..RunRecord::new(
                "s",
                Trigger::Schedule,
                at("2026-11-24T02:00:00Z"),
                at("2026-11-24T02:00:05Z"),
            )
        }
    }

    #[test]
    fn each_event_makes_its_message_for_the_hooks_that_want_it() {
        let all = hook(vec![
            NotificationEvent::Failure,
            NotificationEvent::Drift,
            NotificationEvent::DeleteGuard,
            NotificationEvent::Deletions,
        ]);
        let renamed =
            record(RunResult::HeldBack, 0, &[("sourceRenamed", "source user a@x was renamed")]);
        let m = messages(&renamed, &all);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].event, NotificationEvent::Drift);
        assert_eq!(m[0].location.as_deref(), Some("syncs/a.yaml:12:11"));
        assert!(messages(&renamed, &hook(vec![NotificationEvent::Failure])).is_empty());

        let failed = record(RunResult::Failure, 0, &[("api", "HTTP 500")]);
        assert_eq!(messages(&failed, &all)[0].event, NotificationEvent::Failure);
        let guarded = record(RunResult::HeldBack, 0, &[("deleteGuard", "would delete 30 of 35")]);
        assert_eq!(messages(&guarded, &all)[0].event, NotificationEvent::DeleteGuard);
        let many = record(RunResult::Success, 11, &[]);
        assert_eq!(messages(&many, &all)[0].event, NotificationEvent::Deletions);
        assert!(messages(&record(RunResult::Success, 10, &[]), &all).is_empty());
    }

    #[test]
    fn slack_gets_text_and_the_generic_hook_json() {
        let m = messages(
            &record(RunResult::HeldBack, 0, &[("sourceRenamed", "renamed\x1b[2J\n*forged*")]),
            &hook(vec![NotificationEvent::Drift]),
        )
        .remove(0);
        let mut slack = hook(vec![]);
        slack.format = NotificationFormat::Slack;
        let text = body(&slack, &m)["text"].as_str().unwrap().to_owned();
        assert!(
            text.contains("sync `s`") && text.contains("Fix at `syncs/a.yaml:12:11`"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(
            text.contains("renamed\\u{1b}[2J\\n*forged*"),
            "a value's line break stays escaped: {text:?}"
        );
        assert_eq!(text.lines().count(), 4, "{text:?}");
        let json = body(&hook(vec![]), &m);
        assert_eq!(json["event"], "drift");
        assert_eq!(json["location"], json!({"file": "syncs/a.yaml", "line": 12, "column": 11}));
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
    }
}
