//! The wire format of dates: exactly `YYYY-MM-DD`, between [`EARLIEST`] and [`LATEST`].
//!
//! chrono alone takes `+10000-01-01`, `-0001-01-01` and `2026-1-5`; the first two were stored
//! and then printed as `01.01.-0001`. Two kinds of refusal, as for every other field:
//! - a string that is not a calendar date in the form `YYYY-MM-DD` (`2026-1-5`, `2026-02-30`,
//!   `вчера`, an instant) is a malformed body: 400 naming the field;
//! - a calendar date outside the range, including one written with a sign or more than four
//!   year digits (`0000-01-01`, `1899-12-31`, `+10000-01-01`, `-0001-01-01`), is an invalid
//!   field: 422 naming it. Its message starts with [`MARKER`], which tells the body extractor.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

/// The first and last dates any date field accepts.
pub const EARLIEST: &str = "1900-01-01";
pub const LATEST: &str = "2199-12-31";

/// Starts the message of a date out of range, so the body extractor answers 422, not 400.
pub const MARKER: &str = "date out of range: ";

/// Why a string is not an accepted date.
#[derive(Debug, PartialEq, Eq)]
pub enum DateError {
    /// Not a calendar date in the form `YYYY-MM-DD`.
    Malformed(String),
    /// A calendar date, but outside [`EARLIEST`]..=[`LATEST`].
    OutOfRange(String),
}

/// Parses a wire date, or says why it is not one.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let malformed =
        || DateError::Malformed(format!("{text:?} is not a date in the form YYYY-MM-DD"));
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let b = unsigned.as_bytes();
    let n = b.len();
    let shaped = n >= 10
        && b[n - 3] == b'-'
        && b[n - 6] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == n - 3 || i == n - 6 || c.is_ascii_digit());
    if !shaped || (unsigned.len() == text.len() && n != 10) {
        return Err(malformed());
    }
    // A calendar date at all (chrono reads signed and long years too)?
    let date = text.parse::<NaiveDate>().map_err(|_| malformed());
    let out_of_range =
        || DateError::OutOfRange(format!("{text} is outside {EARLIEST} to {LATEST}"));
    let date = match date {
        Ok(d) => d,
        // A year chrono cannot hold is out of any range.
        Err(_) if text.len() != 10 => return Err(out_of_range()),
        Err(e) => return Err(e),
    };
    let (earliest, latest) = bounds();
    if text.len() != 10 || date < earliest || date > latest {
        return Err(out_of_range());
    }
    Ok(date)
}

fn bounds() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN),
        NaiveDate::from_ymd_opt(2199, 12, 31).unwrap_or(NaiveDate::MAX),
    )
}

fn checked<'de, D: Deserializer<'de>>(text: &str) -> Result<NaiveDate, D::Error> {
    parse_date(text).map_err(|e| match e {
        DateError::Malformed(why) => serde::de::Error::custom(why),
        DateError::OutOfRange(why) => serde::de::Error::custom(format!("{MARKER}{why}")),
    })
}

/// `#[serde(deserialize_with = "wire::date")]`
pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(d)?;
    checked::<D>(&text)
}

/// `#[serde(default, deserialize_with = "wire::optional_date")]`: absent or `null` is `None`.
pub fn optional_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => checked::<D>(&text).map(Some),
    }
}

/// `#[serde(default, deserialize_with = "wire::present_date")]`: absent is `None`, `null` is
/// `Some(None)` (clear the value).
pub fn present_date<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<NaiveDate>>, D::Error> {
    optional_date(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::{parse_date, DateError};

    #[test]
    fn dates_in_range_are_dates_and_the_rest_is_malformed_or_out_of_range() {
        for good in ["2026-11-25", "1900-01-01", "2199-12-31", "2024-02-29"] {
            assert!(parse_date(good).is_ok(), "{good}");
        }
        for far in [
            "-0001-01-01",
            "0000-01-01",
            "1899-12-31",
            "+10000-01-01",
            "+2026-11-25",
            "2200-01-01",
            "9999-12-31",
            "-999999999-01-01",
        ] {
            assert!(
                matches!(parse_date(far), Err(DateError::OutOfRange(_))),
                "{far}: {:?}",
                parse_date(far)
            );
        }
        for bad in [
            "2026-1-5",
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-11-25T00:00:00",
            " 2026-11-25",
            "вчера",
            "20261125",
            "+2026-1-5",
            "２０２６-11-25",
        ] {
            assert!(
                matches!(parse_date(bad), Err(DateError::Malformed(_))),
                "{bad}: {:?}",
                parse_date(bad)
            );
        }
    }
}
