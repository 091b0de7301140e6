//! The keys (device_id, timestamp) of one object's readings so far, so the
//! pipeline can tell a repeated line from a different reading under a key
//! already used, however far apart they are in the object (the first
//! reading of a key wins; see [`crate::pipeline`]).
//!
//! Keys are kept exactly, per device, so two different keys are never
//! taken for one: each device's timestamps sit in a sorted vector of
//! 16-byte entries (the timestamp, a 32-bit hash of the reading's content
//! and the line it came from). Readings mostly arrive in time order per
//! device, so a new key usually goes at the end of its device's vector
//! without a search; one that arrives out of order is looked up by binary
//! search and, when new, waits in a small ordered map that is merged into
//! the vector once it holds an eighth of it, so any order of lines costs
//! O(log n) per reading and memory stays at about 16 bytes per key.
//!
//! Memory: about 16 bytes per distinct key plus about 100 bytes per device:
//! 80 MB at `FLEETWATCH_MAX_RECORDS`' default of 5 M readings, 10 MB for
//! 100,000 devices (the previous hash-of-fingerprints ledger took 37 to
//! 73 bytes per key; `bench/README.md` has the measurements). Lower
//! `FLEETWATCH_MAX_RECORDS` to bound it further.
//!
//! The content hash ignores the order of the fields and, like the item,
//! empty texts. It is keyed at random per object, and only ever compared
//! for readings of the same key: two different readings of one key are
//! taken as exact repeats on a 32-bit collision (2⁻³²), and then the later
//! one is counted as a duplicate instead of rejected: it is not stored
//! either way. The first reading is kept in the ledger even when DynamoDB
//! then refuses it (too large, say): a later different reading of the key
//! is still rejected, and both lines are in the quarantine.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::telemetry::{Reading, Value};

/// What [`KeyLedger::check`] knows of a reading's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySeen {
    /// First reading of the key in the object.
    New,
    /// The same reading again (same fields and values), first on line `kept`.
    Same { kept: u64 },
    /// A different reading of the key came first, on line `kept`.
    Different { kept: u64 },
}

/// See the module documentation.
#[derive(Default)]
pub struct KeyLedger {
    /// Keys the content hash (fresh per object).
    hasher: RandomState,
    /// Each device's keys.
    devices: HashMap<Box<str>, DeviceKeys>,
}

/// What is remembered of the first reading of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The reading's content hash (see the module documentation).
    content: u32,
    /// Its line in the object; `u32::MAX` past that (objects are at most
    /// `FLEETWATCH_MAX_OBJECT_BYTES`, far fewer lines).
    line: u32,
}

/// One device's keys.
#[derive(Default)]
struct DeviceKeys {
    /// Timestamps (Unix ms) in ascending order, with what was seen.
    sorted: Vec<(i64, Seen)>,
    /// Keys that arrived older than the newest in `sorted` (so all of them
    /// are older than it), not merged yet.
    recent: BTreeMap<i64, Seen>,
}

/// `recent` is merged into `sorted` once it holds this fraction of it (and
/// at least [`MIN_MERGE`] keys): merging costs one pass over the vector.
const MERGE_FRACTION: usize = 8;
const MIN_MERGE: usize = 64;

impl KeyLedger {
    /// Records the reading's key if new; says what was there before.
    pub fn check(&mut self, reading: &Reading, line: u64) -> KeySeen {
        let seen = Seen {
            content: self.content_hash(reading),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        };
        let millis = reading.timestamp.unix_millis();
        let Some(device) = self.devices.get_mut(reading.device_id.as_str()) else {
            // A device's first reading: its key is new.
            let device = DeviceKeys {
                sorted: vec![(millis, seen)],
                recent: BTreeMap::new(),
            };
            self.devices
                .insert(reading.device_id.as_str().into(), device);
            return KeySeen::New;
        };
        match device.insert(millis, seen) {
            None => KeySeen::New,
            Some(first) if first.content == seen.content => KeySeen::Same {
                kept: u64::from(first.line),
            },
            Some(first) => KeySeen::Different {
                kept: u64::from(first.line),
            },
        }
    }

    /// Order-independent (a sum of one hash per field), skipping empty
    /// texts as the item does.
    fn content_hash(&self, reading: &Reading) -> u32 {
        let sum = reading
            .fields
            .iter()
            .filter_map(|(name, value)| match value {
                Value::Number(n) => Some(self.hasher.hash_one((name, 0u8, n.as_str()))),
                Value::Text(t) if t.is_empty() => None,
                Value::Text(t) => Some(self.hasher.hash_one((name, 1u8, t))),
            })
            .fold(0u64, u64::wrapping_add);
        (sum ^ (sum >> 32)) as u32
    }
}

impl DeviceKeys {
    /// Adds the key when new (`None`); else returns what was seen first.
    fn insert(&mut self, millis: i64, seen: Seen) -> Option<Seen> {
        // Newer than every key kept (`recent` only holds older ones): the
        // usual case, no search.
        if self
            .sorted
            .last()
            .is_none_or(|&(newest, _)| millis > newest)
        {
            self.sorted.push((millis, seen));
            return None;
        }
        if let Ok(i) = self.sorted.binary_search_by_key(&millis, |&(t, _)| t) {
            return Some(self.sorted[i].1);
        }
        if let Some(first) = self.recent.get(&millis) {
            return Some(*first);
        }
        self.recent.insert(millis, seen);
        if self.recent.len() >= MIN_MERGE.max(self.sorted.len() / MERGE_FRACTION) {
            self.merge();
        }
        None
    }

    /// Moves `recent` into `sorted`, in place, from the back: the largest
    /// of what is left of either goes to the last free place.
    fn merge(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        let mut unplaced = self.sorted.len(); // sorted[..unplaced] may still move
        let filler = (
            i64::MIN,
            Seen {
                content: 0,
                line: 0,
            },
        );
        self.sorted.resize(unplaced + recent.len(), filler);
        let mut free = self.sorted.len();
        let mut incoming = recent.into_iter().rev().peekable();
        while let Some(&(t, seen)) = incoming.peek() {
            free -= 1;
            if unplaced > 0 && self.sorted[unplaced - 1].0 > t {
                unplaced -= 1;
                self.sorted[free] = self.sorted[unplaced];
            } else {
                self.sorted[free] = (t, seen);
                incoming.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp};

    fn reading(device: &str, ms: i64, fields: &[(&str, &str)]) -> Reading {
        Reading {
            device_id: device.into(),
            timestamp: Timestamp::from_unix_millis(ms),
            fields: fields
                .iter()
                .map(|(n, v)| {
                    let value =
                        Number::parse(v).map_or_else(|| Value::Text((*v).into()), Value::Number);
                    ((*n).to_owned(), value)
                })
                .collect(),
        }
    }

    #[test]
    fn keys_tell_repeats_from_different_readings() {
        let mut keys = KeyLedger::default();
        let a = reading("A", 60_000, &[("rpm", "900"), ("status", "ok")]);
        assert_eq!(keys.check(&a, 1), KeySeen::New);
        assert_eq!(keys.check(&a, 5), KeySeen::Same { kept: 1 });
        // Field order and empty texts do not make a reading different.
        let reordered = reading(
            "A",
            60_000,
            &[("status", "ok"), ("note", ""), ("rpm", "900")],
        );
        assert_eq!(keys.check(&reordered, 6), KeySeen::Same { kept: 1 });
        let other = reading("A", 60_000, &[("rpm", "901"), ("status", "ok")]);
        assert_eq!(keys.check(&other, 7), KeySeen::Different { kept: 1 });
        // A number and a text of the same spelling differ.
        let text = Reading {
            fields: vec![
                ("rpm".into(), Value::Text("900".into())),
                ("status".into(), Value::Text("ok".into())),
            ],
            ..a.clone()
        };
        assert_eq!(keys.check(&text, 8), KeySeen::Different { kept: 1 });
        assert_eq!(keys.check(&reading("A", 60_001, &[]), 9), KeySeen::New);
        assert_eq!(keys.check(&reading("B", 60_000, &[]), 10), KeySeen::New);
    }

    /// Whatever the order of the lines (in order, reversed, shuffled,
    /// devices interleaved), every key is new once and found every later
    /// time, with the line it was first seen on.
    #[test]
    fn keys_are_exact_in_any_order() {
        let n: i64 = 50_000;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut shuffled: Vec<i64> = (0..n).collect();
        rng.shuffle(&mut shuffled);
        let orders: [(&str, Vec<i64>); 4] = [
            ("ascending", (0..n).collect()),
            ("descending", (0..n).rev().collect()),
            ("shuffled", shuffled),
            // Mostly in order, every tenth reading late.
            (
                "late",
                (0..n)
                    .map(|i| if i % 10 == 9 { i - 500 } else { i })
                    .filter(|&i| i >= 0)
                    .collect(),
            ),
        ];
        for (name, order) in orders {
            let mut keys = KeyLedger::default();
            let mut first_line = HashMap::new();
            for (line, &i) in order.iter().enumerate() {
                let r = reading(&format!("D{}", i % 7), i * 1000, &[("rpm", "900")]);
                let seen = keys.check(&r, line as u64 + 1);
                match first_line.get(&i) {
                    None => {
                        assert_eq!(seen, KeySeen::New, "{name}: key {i}");
                        first_line.insert(i, line as u64 + 1);
                    }
                    Some(&kept) => assert_eq!(seen, KeySeen::Same { kept }, "{name}: key {i}"),
                }
            }
            // Every key again, now all known.
            for i in 0..n {
                if let Some(&kept) = first_line.get(&i) {
                    let r = reading(&format!("D{}", i % 7), i * 1000, &[("rpm", "901")]);
                    assert_eq!(
                        keys.check(&r, u64::MAX),
                        KeySeen::Different { kept },
                        "{name}: key {i}"
                    );
                }
            }
            for device in keys.devices.values() {
                let sorted = &device.sorted;
                assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0), "{name}: sorted");
            }
        }
    }

    #[test]
    fn the_same_timestamp_of_two_devices_is_two_keys() {
        let mut keys = KeyLedger::default();
        for d in 0..1000 {
            let r = reading(&format!("V{d}"), 0, &[]);
            assert_eq!(keys.check(&r, d), KeySeen::New);
        }
        assert_eq!(keys.devices.len(), 1000);
    }
}
