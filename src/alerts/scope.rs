//! Which vehicles a rule applies to: every vehicle, one vehicle (`VHC001`),
//! vehicles whose id matches a glob (`TRK-*`), or vehicles whose readings
//! carry a group attribute (`fleet=north`, a text field of the reading).
//!
//! Scopes rank by how specific they are, so that a narrower rule on a field
//! overrides a wider one on the same field ([`super::rule_set`]): a device
//! beats a glob, a glob with more literal characters beats one with fewer,
//! any glob beats a group attribute, and a group attribute beats the
//! default (every vehicle).

use std::fmt;
use std::str::FromStr;

use crate::telemetry::{Reading, Value};

/// Which vehicles a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every vehicle: the rules of `FLEETWATCH_ALERT_RULES` written without a scope.
    All,
    /// One vehicle, by its `device_id`.
    Device(String),
    /// Vehicles whose `device_id` matches the pattern (`*` any run of
    /// characters, `?` one character).
    Glob(String),
    /// Vehicles whose reading carries the text field `field` equal to `value`.
    Group { field: String, value: String },
}

/// Why a scope could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{scope:?} is not a scope: {why}; expected a device id (`VHC001`), a glob of device ids (`TRK-*`, `?` for one character) or a group attribute of the readings (`fleet=north`), each 1-128 characters of A-Z a-z 0-9 _ . : -"
)]
pub struct ScopeParseError {
    scope: String,
    why: &'static str,
}

/// Characters of a device id (and of a group attribute's value).
fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.:-".contains(&b)
}

fn valid_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(id_char)
}

impl FromStr for Scope {
    type Err = ScopeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ScopeParseError {
            scope: s.to_owned(),
            why,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if let Some((field, value)) = s.split_once('=') {
            let (field, value) = (field.trim(), value.trim());
            let field_ok = (1..=255).contains(&field.len())
                && field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !field_ok {
                return Err(err(
                    "a group attribute's name must be letters, digits and _",
                ));
            }
            if !valid_id(value) {
                return Err(err("a group attribute's value has a character not allowed"));
            }
            return Ok(Scope::Group {
                field: field.to_owned(),
                value: value.to_owned(),
            });
        }
        if s.contains(['*', '?']) {
            let ok = s.len() <= 128 && s.bytes().all(|b| id_char(b) || b == b'*' || b == b'?');
            return if ok {
                Ok(Scope::Glob(s.to_owned()))
            } else {
                Err(err("a glob has a character not allowed"))
            };
        }
        if valid_id(s) {
            Ok(Scope::Device(s.to_owned()))
        } else {
            Err(err("a device id has a character not allowed"))
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Device(id) | Scope::Glob(id) => f.write_str(id),
            Scope::Group { field, value } => write!(f, "{field}={value}"),
        }
    }
}

/// How specific a scope is: the larger, the narrower. Compared as a tuple.
pub type Rank = (u8, usize);

impl Scope {
    /// Whether `reading` (its device, and its fields for a group) is in scope.
    pub fn matches(&self, reading: &Reading) -> bool {
        match self {
            Scope::All => true,
            Scope::Device(id) => reading.device_id == *id,
            Scope::Glob(pattern) => glob_matches(pattern.as_bytes(), reading.device_id.as_bytes()),
            Scope::Group { field, value } => {
                matches!(reading.field(field), Some(Value::Text(t)) if t == value)
            }
        }
    }

    /// How specific the scope is (see the module comment).
    pub fn rank(&self) -> Rank {
        match self {
            Scope::All => (0, 0),
            Scope::Group { .. } => (1, 0),
            Scope::Glob(p) => (2, p.bytes().filter(|&b| b != b'*' && b != b'?').count()),
            Scope::Device(_) => (3, 0),
        }
    }

    /// The reading's field whose value decides the scope (group scopes only).
    pub fn group_field(&self) -> Option<&str> {
        match self {
            Scope::Group { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Whether the scope decides by the device id alone.
    pub fn by_device(&self) -> bool {
        !matches!(self, Scope::Group { .. })
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters
/// (the empty one included) and `?` exactly one. Linear-time two-pointer
/// match with one backtrack point, so no pattern can make it slow.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Timestamp;

    fn reading(device: &str, fields: &[(&str, &str)]) -> Reading {
        Reading {
            device_id: device.to_owned(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: fields
                .iter()
                .map(|(n, v)| ((*n).to_owned(), Value::Text((*v).to_owned())))
                .collect(),
        }
    }

    #[test]
    fn parses_each_form_and_prints_it_back() {
        for (text, scope) in [
            ("VHC001", Scope::Device("VHC001".into())),
            ("TRK-*", Scope::Glob("TRK-*".into())),
            ("TRK-?1", Scope::Glob("TRK-?1".into())),
            (
                "fleet=north",
                Scope::Group {
                    field: "fleet".into(),
                    value: "north".into(),
                },
            ),
        ] {
            assert_eq!(text.parse::<Scope>(), Ok(scope.clone()), "{text}");
            assert_eq!(scope.to_string(), text);
        }
    }

    #[test]
    fn refuses_what_no_vehicle_can_match_and_says_what_is_expected() {
        for bad in [
            "",
            " ",
            "VHC 001",
            "TRK-[1]",
            "=north",
            "fleet=",
            "fl eet=north",
            "a#b",
        ] {
            let e = bad.parse::<Scope>().unwrap_err().to_string();
            assert!(e.contains("expected a device id"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn globs_match_like_a_shell() {
        let cases = [
            ("TRK-*", "TRK-001", true),
            ("TRK-*", "TRK-", true),
            ("TRK-*", "VHC001", false),
            ("*-01", "TRK-01", true),
            ("*-01", "TRK-011", false),
            ("T?K-*1", "TRK-0001", true),
            ("T?K-*1", "TK-1", false),
            ("*a*b*c", "xxaxxbxxcxc", true),
            ("*", "", true),
            ("a*", "", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn a_scope_matches_its_vehicles_only() {
        let r = reading("TRK-001", &[("fleet", "north")]);
        assert!(Scope::All.matches(&r));
        assert!(Scope::Device("TRK-001".into()).matches(&r));
        assert!(!Scope::Device("TRK-002".into()).matches(&r));
        assert!("TRK-*".parse::<Scope>().unwrap().matches(&r));
        assert!("fleet=north".parse::<Scope>().unwrap().matches(&r));
        assert!(!"fleet=south".parse::<Scope>().unwrap().matches(&r));
        assert!(!"depot=north".parse::<Scope>().unwrap().matches(&r));
    }

    #[test]
    fn narrower_scopes_rank_higher() {
        let ranks: Vec<Rank> = ["fleet=north", "TRK-*", "TRK-0*", "TRK-001"]
            .iter()
            .map(|s| s.parse::<Scope>().unwrap().rank())
            .collect();
        assert!(Scope::All.rank() < ranks[0]);
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }
}
