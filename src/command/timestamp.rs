//! Timestamps on results, events and dead letters: RFC 3339 in UTC with exactly three
//! fractional digits and `Z`, e.g. `2026-12-03T10:00:00.123Z`. chrono's own serialisation
//! writes as many digits as the value has (nanoseconds from the system clock), which is
//! not what the message contract promises.
//!
//! Use [`format`] for a single value, or `#[serde(with = "crate::command::timestamp")]`
//! (`timestamp::option` for an `Option`) on a field. Reading accepts any RFC 3339 time, so
//! results stored by an older version still replay.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `2026-12-03T10:00:00.123Z`.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*at))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(deserializer)
}

/// The same for an optional time (`null` when absent).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_some(&super::format(*at)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_milliseconds_and_z() {
        let at: DateTime<Utc> = "2026-12-03T10:00:00.123456789Z".parse().unwrap();
        assert_eq!(format(at), "2026-12-03T10:00:00.123Z");
        let whole: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
        assert_eq!(format(whole), "2026-12-03T10:00:00.000Z");
    }

    #[test]
    fn fields_round_trip_and_older_precision_still_reads() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct At {
            #[serde(with = "super")]
            at: DateTime<Utc>,
            #[serde(with = "super::option")]
            maybe: Option<DateTime<Utc>>,
        }
        let value: At = serde_json::from_str(
            r#"{"at":"2026-12-03T10:00:00.123456789Z","maybe":"2026-12-03T11:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"at":"2026-12-03T10:00:00.123Z","maybe":"2026-12-03T10:00:00.000Z"}"#
        );
        let none: At =
            serde_json::from_str(r#"{"at":"2026-12-03T10:00:00Z","maybe":null}"#).unwrap();
        assert_eq!(none.maybe, None);
    }
}
