//! Cron expressions evaluated in an IANA time zone.
//!
//! One DST rule holds for every schedule: it fires at each local wall-clock time its expression
//! matches, once, at the first instant that wall-clock time occurs. So a time skipped by a
//! spring-forward transition never fires, and a time repeated by a fall-back transition fires on
//! its first (pre-transition) pass only — "0 * * * *" fires for local 02:00 once, not twice.
//!
//! croner follows the OCPS rules instead: it moves a fixed-time job ("30 2 * * *") that falls in a
//! gap to the end of the gap, and fires interval jobs ("0 * * * *") on both passes of a repeated
//! hour. So croner only searches naive local time here, where no transition exists, and this
//! module maps each local match to an instant itself.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Wider than any UTC offset tzdb has, so a wall-clock time `w` is passed by the instant read
/// as `w` in UTC plus this, and not yet reached at that instant minus this.
const GAP_SEARCH_SECONDS: i64 = 2 * 24 * 3600;

/// A parsed cron expression plus the IANA time zone it is evaluated in.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

/// Why a schedule was refused; the message names the offending expression or zone.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSchedule {
    #[error("invalid cron expression {expression:?}: {reason}")]
    Expression { expression: String, reason: String },
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Berlin\"")]
    UnknownTimeZone(String),
}

impl CronSchedule {
    /// Standard 5-field expressions ("*/5 * * * *") plus an optional leading seconds field (6
    /// fields, "*/2 * * * * *"). `time_zone` is an IANA name like "Europe/Berlin"; None means UTC.
    pub fn parse(
        expression: &str,
        time_zone: Option<&str>,
    ) -> Result<CronSchedule, InvalidSchedule> {
        let invalid = |reason: String| InvalidSchedule::Expression {
            expression: expression.to_owned(),
            reason,
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|error| invalid(error.to_string()))?;
        // "0 0 30 2 *" parses but names a date that never exists; say so now rather than let
        // the trigger stay silent. Without a year field the calendar repeats, so a pattern that
        // matches at all matches within croner's search limit.
        if cron
            .find_next_occurrence(&DateTime::UNIX_EPOCH.naive_utc(), true)
            .is_err()
        {
            return Err(invalid("it never matches any date".to_owned()));
        }
        let zone = match time_zone {
            None => Tz::UTC,
            Some(name) => name
                .parse()
                .map_err(|_| InvalidSchedule::UnknownTimeZone(name.to_owned()))?,
        };
        Ok(CronSchedule {
            expression: expression.to_owned(),
            cron,
            zone,
        })
    }

    /// The first fire instant strictly after `after_us` (microseconds since the Unix epoch), or
    /// None if there is none.
    pub fn next_after(&self, after_us: i64) -> Option<i64> {
        // Fire instants are whole seconds, so "after the second containing `after_us`" is exact.
        let after = after_us.div_euclid(MICROS_PER_SECOND);
        let (mut from, mut inclusive) = match self.repeat_end(after)? {
            // Every wall-clock time of this repeat already fired on its first pass.
            Some(end) => (self.local(end)?, true),
            None => (self.local(after)?, false),
        };
        loop {
            let wall = self.cron.find_next_occurrence(&from, inclusive).ok()?;
            match self.zone.from_local_datetime(&wall) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                    return Some(at.timestamp_micros());
                }
                LocalResult::None => {
                    from = self.local(self.gap_end(wall)?)?;
                    inclusive = true;
                }
            }
        }
    }

    /// The latest fire instant at or before `at_us`, but not before `not_before_us`; None if
    /// there is none in that window. One backward search, however long the window.
    pub fn latest_in(&self, not_before_us: i64, at_us: i64) -> Option<i64> {
        if not_before_us > at_us {
            return None;
        }
        let at = at_us.div_euclid(MICROS_PER_SECOND);
        let mut from = match self.repeat_end(at)? {
            // The whole repeat fired on its first pass, up to its last wall-clock second.
            Some(end) => self.local(end - 1)?,
            None => self.local(at)?,
        };
        loop {
            let wall = self.cron.find_previous_occurrence(&from, true).ok()?;
            match self.zone.from_local_datetime(&wall) {
                LocalResult::Single(fired) | LocalResult::Ambiguous(fired, _) => {
                    let fired = fired.timestamp_micros();
                    return (fired >= not_before_us).then_some(fired);
                }
                LocalResult::None => from = self.local(self.gap_end(wall)? - 1)?,
            }
        }
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// "UTC" when none was given.
    pub fn time_zone(&self) -> &str {
        self.zone.name()
    }

    /// The wall-clock time at `second` (Unix seconds) in the schedule's zone.
    fn local(&self, second: i64) -> Option<NaiveDateTime> {
        Some(
            DateTime::from_timestamp(second, 0)?
                .with_timezone(&self.zone)
                .naive_local(),
        )
    }

    /// If `second` lies on the second pass of a repeated (fall-back) range of wall-clock times,
    /// the first second after that pass; `Some(None)` if it does not.
    fn repeat_end(&self, second: i64) -> Option<Option<i64>> {
        let is_second_pass = |second: i64| {
            self.local(second).is_some_and(|wall| {
                matches!(self.zone.from_local_datetime(&wall),
                    LocalResult::Ambiguous(_, later) if later.timestamp() == second)
            })
        };
        let LocalResult::Ambiguous(earlier, later) =
            self.zone.from_local_datetime(&self.local(second)?)
        else {
            return Some(None);
        };
        if later.timestamp() != second {
            return Some(None);
        }
        // The second pass is as long as the clock went back, so it ends within that span.
        let repeat = later.timestamp() - earlier.timestamp();
        first_second(second, second + repeat, |s| !is_second_pass(s)).map(Some)
    }

    /// The first instant (Unix seconds) after the spring-forward gap that skips `wall`.
    fn gap_end(&self, wall: NaiveDateTime) -> Option<i64> {
        let read_as_utc = wall.and_utc().timestamp();
        first_second(
            read_as_utc - GAP_SEARCH_SECONDS,
            read_as_utc + GAP_SEARCH_SECONDS,
            |s| self.local(s).is_some_and(|local| local > wall),
        )
    }
}

/// The second `s` in `(below, upto]` where `reached` turns true (false at `s - 1`), found by
/// bisection; `reached(below)` must be false. None if `reached(upto)` is false.
fn first_second(mut below: i64, mut upto: i64, reached: impl Fn(i64) -> bool) -> Option<i64> {
    if !reached(upto) {
        return None;
    }
    while upto - below > 1 {
        let middle = below + (upto - below) / 2;
        if reached(middle) {
            upto = middle;
        } else {
            below = middle;
        }
    }
    Some(upto)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microseconds since the epoch of an RFC 3339 instant; local times carry their offset.
    fn us(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("test instant")
            .timestamp_micros()
    }

    fn schedule(expression: &str, zone: Option<&str>) -> CronSchedule {
        CronSchedule::parse(expression, zone).expect("valid schedule")
    }

    /// The next `count` fire instants after `start`, each strictly after the one before.
    fn fires(schedule: &CronSchedule, start: &str, count: usize) -> Vec<i64> {
        let mut at = us(start);
        (0..count)
            .map(|_| {
                at = schedule.next_after(at).expect("a next fire");
                at
            })
            .collect()
    }

    fn all(instants: &[&str]) -> Vec<i64> {
        instants.iter().map(|s| us(s)).collect()
    }

    #[test]
    fn utc_every_five_minutes() {
        let every_five = schedule("*/5 * * * *", None);
        assert_eq!(every_five.time_zone(), "UTC");
        assert_eq!(every_five.expression(), "*/5 * * * *");
        assert_eq!(
            fires(&every_five, "2026-01-01T23:52:00Z", 3),
            all(&[
                "2026-01-01T23:55:00Z",
                "2026-01-02T00:00:00Z",
                "2026-01-02T00:05:00Z"
            ])
        );
    }

    #[test]
    fn next_after_is_strict_and_ignores_sub_seconds() {
        let every_five = schedule("*/5 * * * *", None);
        let slot = us("2026-01-01T00:05:00Z");
        assert_eq!(every_five.next_after(slot - 1), Some(slot));
        assert_eq!(
            every_five.next_after(slot),
            Some(us("2026-01-01T00:10:00Z"))
        );
        assert_eq!(
            every_five.next_after(slot + 500_000),
            Some(us("2026-01-01T00:10:00Z"))
        );
        // Before the epoch, flooring must not round towards zero.
        assert_eq!(
            every_five.next_after(us("1969-12-31T23:55:00Z") - 1),
            Some(us("1969-12-31T23:55:00Z"))
        );
    }

    #[test]
    fn seconds_field_fires_every_ten_seconds() {
        let every_ten = schedule("*/10 * * * * *", None);
        assert_eq!(
            fires(&every_ten, "2026-05-01T12:00:05Z", 4),
            all(&[
                "2026-05-01T12:00:10Z",
                "2026-05-01T12:00:20Z",
                "2026-05-01T12:00:30Z",
                "2026-05-01T12:00:40Z"
            ])
        );
    }

    #[test]
    fn new_york_daily_follows_local_time_across_dst() {
        // US clocks spring forward on 2026-03-08: 09:00 local moves from 14:00Z to 13:00Z.
        let nine_am = schedule("0 9 * * *", Some("America/New_York"));
        assert_eq!(nine_am.time_zone(), "America/New_York");
        assert_eq!(
            fires(&nine_am, "2026-03-06T12:00:00-05:00", 3),
            all(&[
                "2026-03-07T09:00:00-05:00",
                "2026-03-08T09:00:00-04:00",
                "2026-03-09T09:00:00-04:00"
            ])
        );
    }

    #[test]
    fn berlin_spring_forward_skips_the_missing_time() {
        // 2026-03-29: Berlin goes from 02:00 CET straight to 03:00 CEST; 02:30 never happens.
        let half_past_two = schedule("30 2 * * *", Some("Europe/Berlin"));
        assert_eq!(
            fires(&half_past_two, "2026-03-27T12:00:00+01:00", 2),
            all(&["2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"])
        );
        // Looking back from the 29th finds the 28th, not a moved run on the 29th.
        assert_eq!(
            half_past_two.latest_in(
                us("2026-03-28T00:00:00+01:00"),
                us("2026-03-29T23:00:00+02:00")
            ),
            Some(us("2026-03-28T02:30:00+01:00"))
        );
        assert_eq!(
            half_past_two.latest_in(
                us("2026-03-29T00:00:00+01:00"),
                us("2026-03-29T23:00:00+02:00")
            ),
            None
        );
    }

    #[test]
    fn berlin_spring_forward_hourly_has_no_two_oclock() {
        let hourly = schedule("0 * * * *", Some("Europe/Berlin"));
        assert_eq!(
            fires(&hourly, "2026-03-29T00:30:00+01:00", 3),
            all(&[
                "2026-03-29T01:00:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T04:00:00+02:00"
            ])
        );
    }

    #[test]
    fn a_day_skipped_whole_does_not_fire() {
        // Samoa jumped the date line: 2011-12-29 23:59:59 -10:00 was followed by 2011-12-31 00:00 +14:00.
        let noon = schedule("0 12 * * *", Some("Pacific/Apia"));
        assert_eq!(
            noon.next_after(us("2011-12-29T12:00:00-10:00")),
            Some(us("2011-12-31T12:00:00+14:00"))
        );
        assert_eq!(
            noon.latest_in(
                us("2011-12-29T00:00:00-10:00"),
                us("2011-12-31T11:00:00+14:00")
            ),
            Some(us("2011-12-29T12:00:00-10:00"))
        );
    }

    #[test]
    fn berlin_fall_back_fixed_time_fires_once() {
        // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
        let half_past_two = schedule("30 2 * * *", Some("Europe/Berlin"));
        let first_pass = us("2026-10-25T00:30:00Z");
        assert_eq!(
            half_past_two.next_after(us("2026-10-24T12:00:00Z")),
            Some(first_pass)
        );
        assert_eq!(
            half_past_two.next_after(first_pass),
            Some(us("2026-10-26T01:30:00Z"))
        );
        // At the second 02:30 the latest slot is still the first one.
        assert_eq!(
            half_past_two.latest_in(us("2026-10-24T12:00:00Z"), us("2026-10-25T01:30:00Z")),
            Some(first_pass)
        );
    }

    #[test]
    fn berlin_fall_back_hourly_fires_each_local_hour_once() {
        // Local 02:00 fires on its first (CEST) pass only; the CET 02:00 at 01:00Z is silent.
        let hourly = schedule("0 * * * *", Some("Europe/Berlin"));
        assert_eq!(
            fires(&hourly, "2026-10-24T22:30:00Z", 4),
            all(&[
                "2026-10-24T23:00:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T03:00:00Z"
            ])
        );
        // From inside the second pass, the next fire is 03:00 CET and the latest is 02:00 CEST.
        let in_second_pass = us("2026-10-25T01:30:00Z");
        assert_eq!(
            hourly.next_after(in_second_pass),
            Some(us("2026-10-25T02:00:00Z"))
        );
        assert_eq!(
            hourly.latest_in(us("2026-10-24T00:00:00Z"), in_second_pass),
            Some(us("2026-10-25T00:00:00Z"))
        );
    }

    #[test]
    fn berlin_fall_back_seconds_schedule_pauses_during_the_repeat() {
        let every_ten = schedule("*/10 * * * * *", Some("Europe/Berlin"));
        assert_eq!(
            fires(&every_ten, "2026-10-25T00:59:45Z", 3),
            all(&[
                "2026-10-25T00:59:50Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:00:10Z"
            ])
        );
        assert_eq!(
            every_ten.next_after(us("2026-10-25T01:59:59.5Z")),
            Some(us("2026-10-25T02:00:00Z"))
        );
        assert_eq!(
            every_ten.latest_in(us("2026-10-25T00:00:00Z"), us("2026-10-25T01:59:59Z")),
            Some(us("2026-10-25T00:59:50Z"))
        );
    }

    #[test]
    fn latest_in_a_week_of_seconds_finds_the_last_slot() {
        let every_two = schedule("*/2 * * * * *", Some("Europe/Berlin"));
        let at = us("2026-10-30T12:00:03.250Z");
        let week_before = at - 7 * 24 * 3600 * MICROS_PER_SECOND;
        assert_eq!(
            every_two.latest_in(week_before, at),
            Some(us("2026-10-30T12:00:02Z"))
        );
        assert_eq!(every_two.latest_in(at, at), None);
        assert_eq!(
            every_two.latest_in(us("2026-10-30T12:00:02Z"), at),
            Some(us("2026-10-30T12:00:02Z"))
        );
    }

    #[test]
    fn latest_in_is_none_without_a_slot_in_the_window() {
        let new_year = schedule("0 0 1 1 *", None);
        let at = us("2026-06-01T00:00:00Z");
        assert_eq!(
            new_year.latest_in(at - 7 * 24 * 3600 * MICROS_PER_SECOND, at),
            None
        );
        assert_eq!(
            new_year.latest_in(us("2025-12-31T00:00:00Z"), at),
            Some(us("2026-01-01T00:00:00Z"))
        );
        assert_eq!(new_year.latest_in(at, at - 1), None);
    }

    #[test]
    fn invalid_expressions_are_rejected() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * *",
            "0/5 * * * *",
            "every minute",
            "0 0 30 2 *",
        ] {
            let error = CronSchedule::parse(bad, None).expect_err(bad);
            assert!(
                matches!(error, InvalidSchedule::Expression { .. }),
                "{bad:?}: {error}"
            );
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
        let error = CronSchedule::parse("61 * * * *", None).unwrap_err();
        assert!(error.to_string().contains("out of bounds"), "{error}");
    }

    #[test]
    fn unknown_time_zones_are_rejected() {
        for bad in ["Mars/Olympus_Mons", "", "+01:00"] {
            let error = CronSchedule::parse("* * * * *", Some(bad)).expect_err(bad);
            assert!(matches!(&error, InvalidSchedule::UnknownTimeZone(name) if name == bad));
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
