//! Calendar helpers. "Today" for validity is the calendar date in Moscow.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Moscow;

/// The calendar date in Moscow (Europe/Moscow) at the given instant.
pub fn moscow_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Moscow).date_naive()
}

/// The instant formatted in Moscow time for people, `25.11.2026 19:20:05 (МСК)`.
pub fn moscow_display(at: DateTime<Utc>) -> String {
    at.with_timezone(&Moscow)
        .format("%d.%m.%Y %H:%M:%S (МСК)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn moscow_date_turns_over_at_midnight_moscow_time_not_utc() {
        let before = Utc.with_ymd_and_hms(2026, 3, 1, 20, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 1, 21, 0, 0).unwrap();
        assert_eq!(
            moscow_date(before),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
        assert_eq!(
            moscow_date(after),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
        );
    }
}
