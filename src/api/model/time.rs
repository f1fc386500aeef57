//! Lenient timestamps. The API writes RFC 3339 with or without a fraction (`…35Z`, `…34.456Z`),
//! with offsets (`…04-05:00`), and bare dates for `deleted_at` (`2016-07-08`)
//! (shared/reference/constant-contact-v3.md §0). Every field decodes through [`lenient`]: any of
//! those forms becomes a UTC instant (a bare date is its midnight UTC), and anything else
//! becomes `None`, so one odd value never fails a whole page.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};

/// Parses one timestamp in any of the forms the API uses.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    // A space instead of the `T` (spec examples), or a zone spelled `+0000`.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(instant) = DateTime::parse_from_str(text, format) {
            return Some(instant.with_timezone(&Utc));
        }
    }
    // No zone at all: the API means UTC.
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

/// `deserialize_with` for `Option<DateTime<Utc>>` fields: absent, null, a wrong type or an
/// unparsable string all give `None`.
pub fn lenient<'de, D>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(text)) => parse(&text),
        _ => None,
    })
}

/// The form used in query parameters and request bodies: RFC 3339 in UTC with a `Z`.
pub fn format(instant: &DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_form_the_api_uses_parses_to_the_same_instant_in_utc() {
        let expected = Utc
            .with_ymd_and_hms(2024, 10, 30, 18, 56, 35)
            .single()
            .expect("valid");
        for text in [
            "2024-10-30T18:56:35Z",
            "2024-10-30T18:56:35.000Z",
            "2024-10-30T13:56:35-05:00",
            "2024-10-30 18:56:35+00:00",
            "2024-10-30T18:56:35+0000",
            "2024-10-30T18:56:35",
            " 2024-10-30T18:56:35Z ",
        ] {
            assert_eq!(parse(text), Some(expected), "{text}");
        }
        let fraction = parse("2024-11-01T19:19:34.456Z").expect("fraction");
        assert_eq!(fraction.timestamp_subsec_millis(), 456);
    }

    #[test]
    fn a_bare_date_is_midnight_utc() {
        let expected = Utc
            .with_ymd_and_hms(2016, 7, 8, 0, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(parse("2016-07-08"), Some(expected));
    }

    #[test]
    fn garbage_wrong_types_and_nulls_become_none_instead_of_errors() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "lenient")]
            at: Option<DateTime<Utc>>,
        }
        for body in [
            r#"{"at":"yesterday"}"#,
            r#"{"at":""}"#,
            r#"{"at":null}"#,
            r#"{"at":1700000000}"#,
            r#"{"at":{"nested":true}}"#,
            r#"{}"#,
        ] {
            let holder: Holder = serde_json::from_str(body).expect(body);
            assert_eq!(holder.at, None, "{body}");
        }
    }

    #[test]
    fn formatting_uses_utc_with_a_z_and_keeps_a_fraction_only_when_there_is_one() {
        let whole = Utc
            .with_ymd_and_hms(2026, 5, 17, 16, 37, 59)
            .single()
            .expect("valid");
        assert_eq!(format(&whole), "2026-05-17T16:37:59Z");
        let fraction = parse("2026-05-17T16:37:59.091Z").expect("valid");
        assert_eq!(format(&fraction), "2026-05-17T16:37:59.091Z");
    }
}
