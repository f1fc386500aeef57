//! String enumerations of the API. The vendor adds values over time (monthly releases,
//! shared/reference/constant-contact-v3.md §0), so every enumeration keeps an unknown value as
//! `Other(text)` instead of failing to decode, matches known values case-insensitively, and
//! writes them back in the API's own spelling.

/// Declares a string enumeration with an `Other(String)` fallback, `as_str`, `parse`,
/// `Display` and serde as a plain string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of ctct-sync does not know, kept as the API spelled it.
            Other(String),
        }

        impl $name {
            /// The API's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(text) => text,
                }
            }

            /// Reads a value, ignoring case; unknown text becomes `Other`.
            pub fn parse(text: &str) -> Self {
                $( if text.eq_ignore_ascii_case($text) { return Self::$variant; } )+
                Self::Other(text.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

pub(crate) use string_enum;

#[cfg(test)]
mod tests {
    string_enum! {
        /// A test enumeration.
        pub enum Colour {
            Red = "red",
            DarkBlue = "DARK_BLUE",
        }
    }

    #[test]
    fn known_values_match_case_insensitively_and_are_written_in_the_api_spelling() {
        assert_eq!(Colour::parse("RED"), Colour::Red);
        assert_eq!(Colour::parse("dark_blue"), Colour::DarkBlue);
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).expect("encodes"),
            r#""DARK_BLUE""#
        );
        let decoded: Colour = serde_json::from_str(r#""Red""#).expect("decodes");
        assert_eq!(decoded, Colour::Red);
    }

    #[test]
    fn unknown_values_are_kept_verbatim_and_round_trip() {
        let decoded: Colour = serde_json::from_str(r#""Ultra Violet""#).expect("decodes");
        assert_eq!(decoded, Colour::Other("Ultra Violet".into()));
        assert_eq!(decoded.to_string(), "Ultra Violet");
        assert_eq!(
            serde_json::to_string(&decoded).expect("encodes"),
            r#""Ultra Violet""#
        );
    }
}
