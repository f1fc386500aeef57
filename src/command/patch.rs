//! [`Patch`]: a field of a partial update — not given (keep it), `null` (clear it) or a value
//! (set it). JSON has the three cases; `Option<Option<T>>` spelled them as `None`,
//! `Some(None)` and `Some(Some(v))`.

use serde::{Deserialize, Deserializer};

/// What a partial update says about one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Patch<T> {
    /// The field was not given: keep it as it is.
    #[default]
    Absent,
    /// The field was `null`: clear it.
    Null,
    /// The field was given a value: set it.
    Value(T),
}

impl<T> From<Option<T>> for Patch<T> {
    /// A plain optional field: a value sets, nothing keeps (it never clears).
    fn from(value: Option<T>) -> Self {
        value.map_or(Patch::Absent, Patch::Value)
    }
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Patch::Null)
    }

    /// The value to set, if any (`Absent` and `Null` both give `None`).
    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(value) => Some(value),
            Patch::Absent | Patch::Null => None,
        }
    }

    /// Like [`Patch::value`], by value.
    pub fn into_value(self) -> Option<T> {
        match self {
            Patch::Value(value) => Some(value),
            Patch::Absent | Patch::Null => None,
        }
    }

    pub fn as_ref(&self) -> Patch<&T> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(value) => Patch::Value(value),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(value) => Patch::Value(f(value)),
        }
    }

    /// Applies the patch to a stored field: `Absent` keeps it, `Null` clears it, a value
    /// replaces it.
    pub fn apply_to(&self, field: &mut Option<T>)
    where
        T: Clone,
    {
        match self {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Value(value) => *field = Some(value.clone()),
        }
    }
}

/// `null` → [`Patch::Null`], a value → [`Patch::Value`]. An absent field never reaches the
/// deserialiser: mark the field `#[serde(default)]` so that it becomes [`Patch::Absent`]
/// (without it serde treats a missing field as `null`). Errors are those of `Option<T>`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map_or(Patch::Null, Patch::Value))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::command::patch::Patch;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Changes {
        #[serde(default)]
        name: Patch<String>,
        #[serde(default)]
        month: Patch<u8>,
    }

    fn decode(json: &str) -> Result<Changes, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn absent_null_and_value_decode_to_their_own_case() {
        let changes = decode(r#"{}"#).expect("decodes");
        assert_eq!(changes.name, Patch::Absent);
        assert_eq!(changes.month, Patch::Absent);
        let changes = decode(r#"{"name": null, "month": 7}"#).expect("decodes");
        assert_eq!(changes.name, Patch::Null);
        assert_eq!(changes.month, Patch::Value(7));
        let changes = decode(r#"{"name": "Pat"}"#).expect("decodes");
        assert_eq!(changes.name, Patch::Value("Pat".to_owned()));
        assert_eq!(changes.month, Patch::Absent);
    }

    #[test]
    fn a_wrong_value_fails_as_an_optional_field_does() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Plain {
            month: Option<u8>,
        }
        let patch = decode(r#"{"month": "July"}"#).unwrap_err().to_string();
        let plain = serde_json::from_str::<Plain>(r#"{"month": "July"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(patch, plain);
        assert!(patch.contains("expected u8"), "{patch}");
    }

    #[test]
    fn applying_keeps_clears_or_sets() {
        let mut field = Some("old".to_owned());
        Patch::Absent.apply_to(&mut field);
        assert_eq!(field.as_deref(), Some("old"));
        Patch::Value("new".to_owned()).apply_to(&mut field);
        assert_eq!(field.as_deref(), Some("new"));
        Patch::<String>::Null.apply_to(&mut field);
        assert_eq!(field, None);
    }

    #[test]
    fn a_plain_option_never_clears() {
        assert_eq!(Patch::from(Some(3)), Patch::Value(3));
        assert_eq!(Patch::<u8>::from(None), Patch::Absent);
        assert_eq!(Patch::Value(3).map(|v| v * 2).into_value(), Some(6));
        assert_eq!(Patch::<u8>::Null.value(), None);
        assert!(Patch::<u8>::Null.is_null() && Patch::<u8>::Absent.is_absent());
    }
}
