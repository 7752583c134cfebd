//! When a sync runs next: `nightly` at the Workspace's `nightlyAt`, a 5-field cron
//! expression, both in the Workspace's time zone (so 02:00 stays 02:00 local across
//! a change to or from daylight saving time), or never for `manual`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::manifest::Schedule;

/// A sync's schedule in its time zone, ready to say when it runs next.
#[derive(Clone, Debug)]
pub struct Timetable {
    cron: Option<croner::Cron>,
    tz: Tz,
}

/// Why a timetable cannot be made (each names the bad value).
#[derive(Debug, thiserror::Error)]
pub enum TimetableError {
    /// `timeZone` is no IANA time zone.
    #[error("unknown time zone `{time_zone}`")]
    TimeZone {
        /// The value.
        time_zone: String,
    },
    /// `nightlyAt` is not `HH:MM`.
    #[error("nightlyAt `{nightly_at}` is not HH:MM")]
    NightlyAt {
        /// The value.
        nightly_at: String,
    },
    /// The cron expression (`schedule`, or the one `nightlyAt` makes).
    #[error(transparent)]
    Cron(#[from] crate::validate::checks::CronError),
}

impl Timetable {
    /// The timetable of `schedule` under the Workspace's `nightlyAt` (`HH:MM`) and
    /// `timeZone` (validated before, so an error here names the bad value).
    pub fn new(
        schedule: &Schedule,
        nightly_at: &str,
        time_zone: &str,
    ) -> Result<Self, TimetableError> {
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| TimetableError::TimeZone { time_zone: time_zone.to_owned() })?;
        let expr = match schedule {
            Schedule::Manual => return Ok(Self { cron: None, tz }),
            Schedule::Cron(expr) => expr.clone(),
            Schedule::Nightly => {
                let (h, m) = nightly_at
                    .split_once(':')
                    .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
                    .ok_or_else(|| TimetableError::NightlyAt {
                        nightly_at: nightly_at.to_owned(),
                    })?;
                format!("{m} {h} * * *")
            }
        };
        let cron = crate::validate::checks::check_cron(&expr)?;
        Ok(Self { cron: Some(cron), tz })
    }

    /// The first time after `after` that the sync runs; `None` for `manual`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.as_ref()?;
        let local = after.with_timezone(&self.tz);
        cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn nightly_stays_at_local_time_across_daylight_saving() {
        let t = Timetable::new(&Schedule::Nightly, "02:30", "Europe/Berlin").unwrap();
        // Winter: 02:30 CET is 01:30 UTC.
        assert_eq!(t.next_after(at("2026-01-10T12:00:00Z")), Some(at("2026-01-11T01:30:00Z")));
        // Summer: 02:30 CEST is 00:30 UTC.
        assert_eq!(t.next_after(at("2026-07-10T12:00:00Z")), Some(at("2026-07-11T00:30:00Z")));
        // The night of 25 October 2026 the clocks go back: still one run at 02:30.
        let before = at("2026-10-24T12:00:00Z");
        let first = t.next_after(before).unwrap();
        assert_eq!(first, at("2026-10-25T00:30:00Z"));
        let second = t.next_after(first).unwrap();
        assert_eq!(second, at("2026-10-26T01:30:00Z"), "not a second 02:30 the same night");
    }

    #[test]
    fn cron_runs_in_the_workspace_time_zone() {
        let weekdays = Schedule::Cron("0 6 * * 1-5".into());
        let t = Timetable::new(&weekdays, "02:00", "America/New_York").unwrap();
        // Friday 2026-11-27 noon UTC: next is Monday 06:00 EST = 11:00 UTC.
        assert_eq!(t.next_after(at("2026-11-27T12:00:00Z")), Some(at("2026-11-30T11:00:00Z")));
    }

    #[test]
    fn manual_never_runs_by_itself() {
        let t = Timetable::new(&Schedule::Manual, "02:00", "UTC").unwrap();
        assert_eq!(t.next_after(at("2026-11-27T12:00:00Z")), None);
    }
}
