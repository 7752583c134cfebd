//! The loop from the command line: `status` reads what a running `reconcile`
//! reports on `/status`, `trigger` asks it to run a sync now (`POST
//! /syncs/{name}/run`, with the trigger token from `CONTACT_SYNC_TRIGGER_TOKEN`),
//! and `trigger --allow-deletes N` approves, once, the deletions its guard
//! refused — like `argocd app get` and `argocd app sync`. Loopback requests never
//! go through a proxy; the token is sent, never printed.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::commands::runtime;

/// `http://ADDR` of a running `reconcile` listening on `listen`: an
/// unspecified address (0.0.0.0, [::]) listens on every interface, loopback
/// included, and is asked there.
pub fn base_url(listen: &str) -> anyhow::Result<String> {
    let literal = match listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => listen.to_owned(),
    };
    let mut addr: std::net::SocketAddr = literal.parse().map_err(|_| {
        anyhow::anyhow!("--listen {listen}: expected an address like 127.0.0.1:9090")
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{addr}"))
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(timeout).no_proxy().build()?)
}

/// `contact-sync status`: per sync whether it is in sync, out of sync (not run
/// yet, or running), held back or failed, its last and next run and its errors;
/// with `json`, `/status` as the loop serves it. Exit 0 when every sync is in
/// sync, 1 when one is held back or failed, or the loop cannot be reached.
pub fn status(listen: &str, json: bool, timeout: Duration) -> anyhow::Result<ExitCode> {
    let url = format!("{}/status", base_url(listen)?);
    let body: Value = runtime()?
        .block_on(async {
            let answer = client(timeout)?.get(&url).send().await?.error_for_status()?;
            anyhow::Ok(answer.json::<Value>().await?)
        })
        .with_context(|| format!("cannot read {url} (is contact-sync reconcile running there?)"))?;
    let mut out = super::stdout::lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    } else {
        write!(out, "{}", status_text(&body))?;
    }
    let healthy = syncs(&body).all(|(_, s)| !matches!(state(s), "held back" | "failed"))
        && body["manifestErrors"].as_array().is_none_or(Vec::is_empty);
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn syncs(body: &Value) -> impl Iterator<Item = (&String, &Value)> {
    body["syncs"].as_object().into_iter().flatten()
}

/// What a sync's `/status` entry comes to, in a word or two.
fn state(sync: &Value) -> &'static str {
    if sync["running"] == true {
        return "syncing";
    }
    match sync["lastRun"]["result"].as_str() {
        Some("success") if sync["suspended"] == true => "in sync (suspended)",
        Some("success") => "in sync",
        Some("heldBack") => "held back",
        Some("failure") => "failed",
        _ => "out of sync (not run yet)",
    }
}

/// The text form of `/status`.
fn status_text(body: &Value) -> String {
    let mut out = String::new();
    for error in body["manifestErrors"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "manifest error: {}", error.as_str().unwrap_or_default());
    }
    let mut names = 0;
    for (name, sync) in syncs(body) {
        names += 1;
        let _ = writeln!(out, "sync {name}: {}", state(sync));
        let last = &sync["lastRun"];
        if last.is_object() {
            let _ = writeln!(
                out,
                "  last run  {} ({}, {}): {} added, {} changed, {} deleted",
                last["end"].as_str().unwrap_or("?"),
                last["trigger"].as_str().unwrap_or("?"),
                last["result"].as_str().unwrap_or("?"),
                last["create"],
                last["update"],
                last["delete"],
            );
        }
        if let Some(retry) = sync["retryAt"].as_str() {
            let failures = &sync["failuresInARow"];
            let _ = writeln!(out, "  retry at  {retry} ({failures} failures in a row)");
        }
        let next = sync["nextRun"].as_str().unwrap_or("none (not on a schedule)");
        let _ = writeln!(out, "  next run  {next}");
        for error in last["errors"].as_array().into_iter().flatten() {
            let kind = error["kind"].as_str().unwrap_or("error");
            let message =
                crate::text::printable(error["message"].as_str().unwrap_or_default()).into_owned();
            let _ = writeln!(out, "  ! {kind}: {message}");
        }
    }
    let ready = if body["ready"] == true { "ready" } else { "not ready" };
    let _ = writeln!(out, "{names} sync{}, {ready}.", if names == 1 { "" } else { "s" });
    out
}

/// `contact-sync trigger NAME`: asks the loop to run `sync` now, approving
/// `allow_deletes` deletions its guard refused when given. The token, when the
/// loop needs one, comes from `CONTACT_SYNC_TRIGGER_TOKEN`.
pub fn trigger(
    listen: &str,
    sync: &str,
    allow_deletes: Option<usize>,
    token: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let base = base_url(listen)?;
    let mut url = reqwest::Url::parse(&base)?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base}: not a base URL"))?
        .extend(["syncs", sync, "run"]);
    if let Some(n) = allow_deletes {
        url.query_pairs_mut().append_pair("allowDeletes", &n.to_string());
    }
    let shown = url.to_string();
    let (code, text) = runtime()?
        .block_on(async {
            let mut request = client(timeout)?.post(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await?;
            anyhow::Ok((answer.status(), answer.text().await?))
        })
        .with_context(|| {
            format!("cannot reach {shown} (is contact-sync reconcile running there?)")
        })?;
    let text = crate::text::printable(text.trim_end()).into_owned();
    if code.is_success() {
        writeln!(super::stdout::lock(), "{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let hint = match code.as_u16() {
        401 => " (set CONTACT_SYNC_TRIGGER_TOKEN to the loop's trigger token)",
        _ => "",
    };
    eprintln!("error: {shown} answered {code}: {text}{hint}");
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_asked_on_loopback() {
        assert_eq!(base_url("0.0.0.0:9090").unwrap(), "http://127.0.0.1:9090");
        assert_eq!(base_url("[::]:9090").unwrap(), "http://[::1]:9090");
        assert_eq!(base_url("localhost:80").unwrap(), "http://127.0.0.1:80");
        assert!(base_url("nowhere").is_err());
    }

    #[test]
    fn each_sync_says_where_it_stands() {
        let body = serde_json::json!({
            "ready": true,
            "manifestErrors": [],
            "syncs": {
                "a": {"running": false, "nextRun": "2026-12-04T02:00:00Z",
                      "lastRun": {"result": "success", "end": "2026-12-03T02:00:05Z",
                                  "trigger": "schedule", "create": 1, "update": 0,
                                  "delete": 0, "errors": []}},
                "b": {"running": false, "nextRun": null, "lastRun": {
                      "result": "heldBack", "end": "2026-12-03T02:00:06Z", "trigger": "schedule",
                      "create": 0, "update": 0, "delete": 0,
                      "errors": [{"kind": "deleteGuard", "message": "would delete 30 of 30"}]}},
                "c": {"running": false, "nextRun": null, "lastRun": null},
            }
        });
        let text = status_text(&body);
        assert!(
            text.contains(
                "sync a: in sync\n  last run  2026-12-03T02:00:05Z (schedule, success): 1 added"
            ),
            "{text}"
        );
        assert!(text.contains("sync b: held back\n"), "{text}");
        assert!(text.contains("  ! deleteGuard: would delete 30 of 30\n"), "{text}");
        assert!(text.contains("sync c: out of sync (not run yet)\n"), "{text}");
        assert!(text.ends_with("3 syncs, ready.\n"), "{text}");
    }
}
