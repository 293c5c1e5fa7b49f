use super::*;
use crate::state::Disclosure;
use crate::verify::verify_result;
use chrono::TimeZone;
use registry_read_store_tests::rows::{certificate, family};

fn row(surname: &str) -> Arc<CertificateRow> {
    Arc::new(certificate(
        &family(7, surname, "77-000007", "Р-7"),
        3,
        true,
    ))
}

fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, nanos).unwrap()
}

fn day(now: DateTime<Utc>) -> NaiveDate {
    registry_domain::time::moscow_date(now)
}

#[test]
fn given_a_kept_answer_when_scanned_at_another_moment_then_it_is_byte_for_byte_the_fresh_encoding()
{
    let made = at(1_796_000_000, 0);
    // Quotes, a backslash and the very text the split looks for inside a name: escaped, never
    // taken for the key.
    let clock = format!(r#""checked_at":{}"#, serde_json::to_string(&made).unwrap());
    for surname in ["Ёлкина", r#"Ива"нова\"#, clock.as_str()] {
        let row = row(surname);
        for level in [Disclosure::Full, Disclosure::Standard, Disclosure::Minimal] {
            let result = verify_result(&row, level, "static", made);
            let (kept, first) = EncodedAnswer::encode(&row, day(made), "active", &result).unwrap();
            assert_eq!(first, serde_json::to_vec(&result).unwrap());
            for now in [
                made,
                at(1_796_000_017, 123_456_789),
                at(1_796_000_020, 1_000),
            ] {
                let fresh = verify_result(&row, level, "static", now);
                assert_eq!(
                    String::from_utf8(kept.body(now)).unwrap(),
                    serde_json::to_string(&fresh).unwrap(),
                    "{surname} at {now}"
                );
            }
            assert_eq!(kept.state, "active");
        }
    }
}

#[test]
fn given_any_instant_when_written_by_hand_then_it_is_the_encoder_s_text_or_left_to_it() {
    let mut instants = vec![
        at(0, 0),
        at(1_796_000_000, 0),
        at(1_796_000_017, 120_000_000),
        at(1_796_000_017, 123_456_000),
        at(1_796_000_017, 123_456_789),
        at(1_796_000_017, 1),
        at(1_796_000_017, 999_999_999),
        at(1_796_000_017, 100_000),
        at(1_796_000_017, 1_000_000),
        // A leap second, the last moment of year 9999 and the first after it, one before 0.
        at(1_796_000_039, 1_500_000_000),
        at(253_402_300_799, 999_000_000),
        at(253_402_300_800, 0),
        at(-62_167_219_201, 0),
    ];
    // Every second of a day and a spread of fractions, through month and year ends.
    let mut seconds: i64 = 1_798_761_599 - 86_400;
    while seconds < 1_798_761_599 + 86_400 {
        instants.push(at(
            seconds,
            (seconds as u32 % 7) * 142_857_001 % 1_000_000_000,
        ));
        seconds += 1;
    }
    let mut by_hand = 0;
    for now in instants {
        let mut written = Vec::new();
        if write_instant(&mut written, now) {
            by_hand += 1;
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&now).unwrap()
            );
        } else {
            assert!(
                written.is_empty(),
                "{now}: left to the encoder after writing"
            );
        }
    }
    assert_eq!(by_hand, 10 + 2 * 86_400, "instants written by hand");
}

#[test]
fn given_a_kept_answer_when_the_row_the_day_or_the_kind_differs_then_it_is_not_used() {
    let answers = VerifyAnswers::new(10);
    let (kept_row, now) = (row("Ёлкина"), at(1_796_000_000, 0));
    let result = verify_result(&kept_row, Disclosure::Standard, "static", now);
    let (encoded, _) = EncodedAnswer::encode(&kept_row, day(now), "active", &result).unwrap();
    answers.keep(&kept_row, "static", Arc::new(encoded));

    assert!(answers.get(&kept_row, day(now), "static").is_some());
    // The same certificate read again (a new event, a swap): another row, even if equal.
    let reread = Arc::new(CertificateRow::clone(&kept_row));
    assert!(answers.get(&reread, day(now), "static").is_none());
    assert!(answers
        .get(&kept_row, day(now).succ_opt().unwrap(), "static")
        .is_none());
    assert!(answers.get(&kept_row, day(now), "live").is_none());

    let figures = answers.figures();
    assert_eq!((figures.hits, figures.misses, figures.entries), (1, 3, 1));

    // The answer does not keep its row alive: once the row cache lets it go, the row is freed,
    // and a row read again (wherever it lands) is not taken for it.
    drop(reread);
    let weak = Arc::downgrade(&kept_row);
    drop(kept_row);
    assert!(weak.upgrade().is_none(), "the kept answer held its row");
    assert!(answers.get(&row("Ёлкина"), day(now), "static").is_none());
}

#[test]
fn given_a_size_of_zero_when_answers_are_kept_then_none_is() {
    let answers = VerifyAnswers::new(0);
    let (row, now) = (row("Ёлкина"), at(1_796_000_000, 0));
    let result = verify_result(&row, Disclosure::Standard, "static", now);
    answers.keep(
        &row,
        "static",
        Arc::new(
            EncodedAnswer::encode(&row, day(now), "active", &result)
                .unwrap()
                .0,
        ),
    );
    assert!(!answers.keeps());
    assert!(answers.get(&row, day(now), "static").is_none());
    assert_eq!(answers.figures().capacity, 0);
}
