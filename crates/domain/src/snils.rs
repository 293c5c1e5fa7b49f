//! СНИЛС, the insurance number of an individual personal account (страховой номер
//! индивидуального лицевого счёта): how it is written and its check number.
//!
//! Eleven digits: a nine-digit number and a two-digit check number. The check number is the sum
//! of the nine digits, each times its weight (9 for the first down to 1 for the last), taken
//! modulo 101, with 100 written as `00` (the Pension Fund's rule, as printed on the card). It is
//! defined for numbers above 001-001-998; smaller numbers were issued before the rule and are not
//! accepted here (none belongs to a living parent or child).

/// A SNILS in its printed form `XXX-XXX-XXX YY`, or why the text is not one.
pub fn normalize(text: &str) -> Result<String, &'static str> {
    let digits: Vec<u32> = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_digit(10).ok_or("must be 11 digits, as XXX-XXX-XXX YY"))
        .collect::<Result<_, _>>()?;
    if digits.len() != 11 {
        return Err("must be 11 digits, as XXX-XXX-XXX YY");
    }
    let number = digits[..9].iter().fold(0u32, |n, d| n * 10 + d);
    if number <= 1_001_998 {
        return Err("is not a number the check-number rule applies to");
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((1..=9).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = sum % 101 % 100;
    if check != digits[9] * 10 + digits[10] {
        return Err("the check number (the last two digits) does not match");
    }
    let d: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    Ok(format!(
        "{}-{}-{} {}",
        &d[0..3],
        &d[3..6],
        &d[6..9],
        &d[9..11]
    ))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn given_a_valid_number_in_any_usual_spelling_when_normalized_then_it_reads_as_printed() {
        for text in [
            "112-233-445 95",
            "11223344595",
            "112 233 445 95",
            " 112-233-445-95 ",
        ] {
            assert_eq!(normalize(text), Ok("112-233-445 95".into()), "{text}");
        }
    }

    #[test]
    fn given_numbers_whose_sum_reaches_100_or_more_when_checked_then_the_modulo_rule_holds() {
        // 9×9 + 8×9 + … + 1×9 = 405: 405 mod 101 = 1, so the check number is 01.
        assert_eq!(normalize("999-999-999 01"), Ok("999-999-999 01".into()));
        // digits 1,0,0,0,0,0,0,9,8: 9 + 18 + 8 = 35.
        assert_eq!(normalize("100-000-098 35"), Ok("100-000-098 35".into()));
        // digits 0,0,1,0,0,9,1,9,9: 7 + 36 + 3 + 18 + 9 = 73.
        assert_eq!(normalize("001-009-199 73"), Ok("001-009-199 73".into()));
    }

    #[test]
    fn given_a_sum_of_exactly_100_or_101_when_checked_then_the_check_number_is_00() {
        // digits 9,1,0,0,0,0,0,5,2: 81 + 8 + 10 + 2 = 101.
        assert_eq!(normalize("910-000-052 00"), Ok("910-000-052 00".into()));
        // 9,1,0,0,0,0,0,5,1: 81 + 8 + 10 + 1 = 100.
        assert_eq!(normalize("910-000-051 00"), Ok("910-000-051 00".into()));
    }

    #[test]
    fn given_a_wrong_check_number_or_shape_when_normalized_then_it_is_refused() {
        assert!(normalize("112-233-445 96")
            .unwrap_err()
            .contains("check number"));
        assert!(normalize("112-233-445").unwrap_err().contains("11 digits"));
        assert!(normalize("112-233-445 9x")
            .unwrap_err()
            .contains("11 digits"));
        assert!(normalize("001-001-998 00")
            .unwrap_err()
            .contains("rule applies"));
    }
}
