//! Decimal number parsing for telemetry values.
//!
//! Numbers keep the decimal text they were written as (in a canonical form)
//! so they reach DynamoDB without a float round trip: `0.1` stays `0.1`.
//! Anything DynamoDB would refuse as an `N` value is refused here, so a
//! rejected write never surprises the service later.

use std::fmt;

/// A finite number that remembers the decimal text it was written as, so it
/// can be stored without a float round trip (`0.1` stays `0.1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    /// The canonical decimal text: what DynamoDB stores, exactly.
    text: String,
    /// The same number as a float, for features and rules.
    value: f64,
}

impl Number {
    /// Parses decimal text: an optional sign, digits with an optional
    /// fraction, an optional exponent. NaN, infinities, hex and empty text are
    /// refused, as are values DynamoDB cannot store (more than 38 significant
    /// digits, magnitude outside 1e-130..1e126).
    pub fn parse(text: &str) -> Option<Number> {
        parse_number(text)
    }

    /// Builds a number from text already known to be canonical. Only for the
    /// number parser itself.
    pub(crate) fn from_canonical(text: String, value: f64) -> Number {
        Number { text, value }
    }

    /// Canonical decimal text, valid as a DynamoDB `N` value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn as_f64(&self) -> f64 {
        self.value
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// DynamoDB keeps at most 38 significant digits.
const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// DynamoDB's positive range is 1E-130 to 9.9999999999999999999999999999999999999E+125.
/// These are the decimal exponents of the leading digit that are allowed.
const MIN_LEADING_EXPONENT: i64 = -130;
const MAX_LEADING_EXPONENT: i64 = 125;
/// Exponents are saturated here while scanning: anything this large is far
/// outside every range we accept, and saturating keeps the arithmetic from
/// overflowing on adversarial input like `1e99999999999999999999999`.
const EXPONENT_SATURATION: i64 = 1_000_000_000;

/// Why text is not an acceptable number. Callers use it to tell "not a
/// number at all" from "a number we cannot store".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Does not match the decimal grammar (words, hex, `1_000`, `1,5`, empty).
    NotANumber,
    /// `NaN`, `inf`, `infinity` in any case, optionally signed.
    NonFinite,
    /// Matches the grammar but has more than 38 significant digits.
    TooPrecise,
    /// Matches the grammar but its magnitude is outside DynamoDB's range.
    OutOfRange,
}

/// The pieces of a number matching `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`,
/// borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scanned<'a> {
    pub negative: bool,
    /// Digits before the point; may be empty (`.5`).
    pub int: &'a str,
    /// Digits after the point; may be empty (`5.`, `5`).
    pub frac: &'a str,
    /// The exponent, saturated to ±`EXPONENT_SATURATION`.
    pub exp: i64,
    /// The exponent digits as written, if there was an exponent.
    exp_digits: Option<&'a str>,
    exp_negative: bool,
}

impl Scanned<'_> {
    /// The int and fraction digits with leading zeros removed, and the
    /// decimal exponent of the first remaining digit. `None` when every
    /// digit is zero.
    pub fn significant(&self) -> Option<(String, i64)> {
        let mut digits = String::with_capacity(self.int.len() + self.frac.len());
        digits.push_str(self.int);
        digits.push_str(self.frac);
        let leading_zeros = digits.bytes().take_while(|&b| b == b'0').count();
        let trimmed = digits.get(leading_zeros..)?.trim_end_matches('0');
        if trimmed.is_empty() {
            return None;
        }
        // The first digit of `int` has exponent len(int)-1; each leading zero
        // we skipped moves the first significant digit one place lower.
        let int_len = i64::try_from(self.int.len()).unwrap_or(i64::MAX);
        let zeros = i64::try_from(leading_zeros).unwrap_or(i64::MAX);
        let leading_exponent = int_len
            .saturating_sub(1)
            .saturating_sub(zeros)
            .saturating_add(self.exp);
        Some((trimmed.to_string(), leading_exponent))
    }
}

impl Scanned<'_> {
    /// What [`Scanned::significant`] says, without building the digits:
    /// how many significant digits there are, and the exponent of the first.
    pub fn significant_len(&self) -> Option<(usize, i64)> {
        let digits = || self.int.bytes().chain(self.frac.bytes());
        let leading_zeros = digits().take_while(|&b| b == b'0').count();
        let total = self.int.len() + self.frac.len();
        if leading_zeros == total {
            return None;
        }
        let trailing_zeros = digits().rev().take_while(|&b| b == b'0').count();
        let int_len = i64::try_from(self.int.len()).unwrap_or(i64::MAX);
        let zeros = i64::try_from(leading_zeros).unwrap_or(i64::MAX);
        let leading_exponent = int_len
            .saturating_sub(1)
            .saturating_sub(zeros)
            .saturating_add(self.exp);
        Some((total - leading_zeros - trailing_zeros, leading_exponent))
    }
}

/// Whether DynamoDB can store `text` as an N value, and if so how many
/// significant digits it has (0 for zero), which is what its size is counted
/// by: what [`parse_number_detailed`] checks, in one scan and without
/// building the number.
pub(crate) fn storable_digits(text: &str) -> Result<usize, NumberError> {
    check_range(&scan_checked(text)?)
}

/// [`scan`], saying why text that is not a decimal number is not: a
/// non-finite word (`NaN`, `inf`) or anything else.
fn scan_checked(text: &str) -> Result<Scanned<'_>, NumberError> {
    scan(text).ok_or_else(|| {
        if is_non_finite_word(text) {
            NumberError::NonFinite
        } else {
            NumberError::NotANumber
        }
    })
}

/// DynamoDB's precision and magnitude limits; `Ok` carries the number of
/// significant digits.
fn check_range(scanned: &Scanned<'_>) -> Result<usize, NumberError> {
    let Some((digits, leading_exponent)) = scanned.significant_len() else {
        return Ok(0);
    };
    if digits > MAX_SIGNIFICANT_DIGITS {
        return Err(NumberError::TooPrecise);
    }
    if !(MIN_LEADING_EXPONENT..=MAX_LEADING_EXPONENT).contains(&leading_exponent) {
        return Err(NumberError::OutOfRange);
    }
    Ok(digits)
}

/// Splits trimmed text into the parts of a decimal number, or `None` if it
/// does not match the grammar.
pub(crate) fn scan(text: &str) -> Option<Scanned<'_>> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, text.get(1..)?),
        b'+' => (false, text.get(1..)?),
        _ => (false, text),
    };
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (int, rest) = rest.split_at_checked(int_len)?;
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after_point) => {
            let frac_len = after_point.bytes().take_while(u8::is_ascii_digit).count();
            after_point.split_at_checked(frac_len)?
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let (exp, exp_digits, exp_negative) = match rest.as_bytes().first() {
        None => (0, None, false),
        Some(b'e' | b'E') => {
            let after_e = rest.get(1..)?;
            let (exp_negative, digits) = match after_e.as_bytes().first()? {
                b'-' => (true, after_e.get(1..)?),
                b'+' => (false, after_e.get(1..)?),
                _ => (false, after_e),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let magnitude = digits.bytes().fold(0i64, |acc, b| {
                acc.saturating_mul(10)
                    .saturating_add(i64::from(b - b'0'))
                    .min(EXPONENT_SATURATION)
            });
            let exp = if exp_negative { -magnitude } else { magnitude };
            (exp, Some(digits), exp_negative)
        }
        Some(_) => return None,
    };
    Some(Scanned {
        negative,
        int,
        frac,
        exp,
        exp_digits,
        exp_negative,
    })
}

/// True for `NaN`, `inf`, `infinity` in any case, optionally signed: text
/// that means "not a finite number" rather than "not a number at all".
pub(crate) fn is_non_finite_word(text: &str) -> bool {
    let text = text.trim();
    let unsigned = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    ["nan", "inf", "infinity"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word))
}

/// Parses decimal text into a [`Number`], saying why when it cannot.
pub(crate) fn parse_number_detailed(text: &str) -> Result<Number, NumberError> {
    let scanned = scan_checked(text)?;
    check_range(&scanned)?;
    let canonical = canonical_text(&scanned);
    // The grammar and range checks above guarantee Rust's float parser
    // accepts the canonical text and yields a finite value; falling back to
    // an error keeps this total anyway.
    let value: f64 = canonical.parse().map_err(|_| NumberError::NotANumber)?;
    if !value.is_finite() {
        return Err(NumberError::OutOfRange);
    }
    Ok(Number::from_canonical(canonical, value))
}

/// Parses decimal text (after trimming) into a [`Number`].
///
/// Grammar: `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`. The kept
/// text is canonical: no leading `+`, no redundant leading zeros in the
/// integer part, `.5` → `0.5`, `5.` → `5`, exponent written `e`/`e-` without
/// leading zeros. NaN, infinities, hex, `1_000`, `1,5` and empty text are
/// refused, as are values DynamoDB cannot store: more than 38 significant
/// digits, or a nonzero magnitude below 1e-130 or at least 1e126.
pub fn parse_number(text: &str) -> Option<Number> {
    parse_number_detailed(text).ok()
}

fn canonical_text(scanned: &Scanned<'_>) -> String {
    let int = scanned.int.trim_start_matches('0');
    let mut out = String::with_capacity(scanned.int.len() + scanned.frac.len() + 8);
    if scanned.negative {
        out.push('-');
    }
    if int.is_empty() {
        out.push('0');
    } else {
        out.push_str(int);
    }
    if !scanned.frac.is_empty() {
        out.push('.');
        out.push_str(scanned.frac);
    }
    if let Some(digits) = scanned.exp_digits {
        let digits = digits.trim_start_matches('0');
        out.push('e');
        if scanned.exp_negative && !digits.is_empty() {
            out.push('-');
        }
        out.push_str(if digits.is_empty() { "0" } else { digits });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Option<String> {
        parse_number(text).map(|n| n.as_str().to_string())
    }

    #[test]
    fn accepts_plain_decimals_and_keeps_text() {
        assert_eq!(canon("73").as_deref(), Some("73"));
        assert_eq!(canon("0.1").as_deref(), Some("0.1"));
        assert_eq!(canon("124.0").as_deref(), Some("124.0"));
        assert_eq!(canon("12.398542").as_deref(), Some("12.398542"));
        assert_eq!(canon("-79.921675").as_deref(), Some("-79.921675"));
        assert_eq!(parse_number("0.1").unwrap().as_f64(), 0.1);
    }

    #[test]
    fn canonicalises() {
        assert_eq!(canon("+5").as_deref(), Some("5"));
        assert_eq!(canon(".5").as_deref(), Some("0.5"));
        assert_eq!(canon("-.5").as_deref(), Some("-0.5"));
        assert_eq!(canon("5.").as_deref(), Some("5"));
        assert_eq!(canon("-0").as_deref(), Some("-0"));
        assert_eq!(canon("007").as_deref(), Some("7"));
        assert_eq!(canon("00.25").as_deref(), Some("0.25"));
        assert_eq!(canon("  42  ").as_deref(), Some("42"));
    }

    #[test]
    fn accepts_exponents() {
        assert_eq!(canon("1e3").as_deref(), Some("1e3"));
        assert_eq!(canon("1E+3").as_deref(), Some("1e3"));
        assert_eq!(canon("2.5e-007").as_deref(), Some("2.5e-7"));
        assert_eq!(canon("1e-0").as_deref(), Some("1e0"));
        assert_eq!(parse_number("1e3").unwrap().as_f64(), 1000.0);
        assert_eq!(parse_number("-2.5E-3").unwrap().as_f64(), -0.0025);
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "", " ", "+", "-", ".", "e5", "1e", "1e+", "0x1F", "1_000", "1,5", "1.2.3", "12a",
            "--1", "+-1", "1 2", "١٢", "½", "1e5.5", "abc",
        ] {
            assert_eq!(
                parse_number_detailed(text),
                Err(NumberError::NotANumber),
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_non_finite_words() {
        for text in ["NaN", "nan", "inf", "-inf", "+Infinity", "INF"] {
            assert_eq!(
                parse_number_detailed(text),
                Err(NumberError::NonFinite),
                "{text:?}"
            );
        }
    }

    #[test]
    fn enforces_dynamodb_precision() {
        let digits38 = "1".repeat(38);
        let digits39 = "1".repeat(39);
        assert!(parse_number(&digits38).is_some());
        assert_eq!(
            parse_number_detailed(&digits39),
            Err(NumberError::TooPrecise)
        );
        // Leading and trailing zeros are not significant.
        let padded = format!("000{}000", "9".repeat(38));
        assert!(parse_number(&padded).is_some());
        assert!(parse_number(&format!("0.{}", "0".repeat(100))).is_some());
    }

    #[test]
    fn enforces_dynamodb_magnitude() {
        assert!(parse_number("1e125").is_some());
        assert!(parse_number("9.99e125").is_some());
        assert_eq!(parse_number_detailed("1e126"), Err(NumberError::OutOfRange));
        assert_eq!(
            parse_number_detailed("-1e126"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            parse_number_detailed("10e125"),
            Err(NumberError::OutOfRange)
        );
        assert!(parse_number("1e-130").is_some());
        assert_eq!(
            parse_number_detailed("1e-131"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            parse_number_detailed("0.1e-130"),
            Err(NumberError::OutOfRange)
        );
        // Zero is fine whatever its exponent.
        assert!(parse_number("0e999999").is_some());
        assert!(parse_number("0.000e-999").is_some());
    }

    #[test]
    fn survives_huge_input() {
        assert_eq!(
            parse_number_detailed("1e99999999999999999999999999999"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            parse_number_detailed("1e-99999999999999999999999999999"),
            Err(NumberError::OutOfRange)
        );
        let long = "9".repeat(100_000);
        assert_eq!(parse_number_detailed(&long), Err(NumberError::TooPrecise));
        let zeros = format!("{}1", "0".repeat(100_000));
        assert_eq!(canon(&zeros).as_deref(), Some("1"));
    }
}
