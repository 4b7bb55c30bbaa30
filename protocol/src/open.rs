//! Forward-compatible fixed-value fields.
//!
//! A field that takes one of a fixed set of values travels as its text (`"REACHABLE"`,
//! `"timeout"`) and is read into [`Open<T>`]: `Known(T)` for a value this version knows,
//! `Unknown(text)` for one it does not (a newer probe's new outcome, a kernel state added after
//! this release). The line is kept either way: an older reader shows the text it was given
//! instead of dropping the whole event, which is the compatibility promise of the protocol.
//!
//! The known values are plain `Copy` enums declared with [`spelled!`], which gives each variant
//! its one spelling on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A closed set of values with one wire spelling each (declared with [`spelled!`]).
pub trait Spelled: Copy + Eq + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The wire spelling.
    fn as_str(self) -> &'static str;
    /// The value spelled `text`, if this version knows it.
    fn from_spelling(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == text)
    }
}

/// A fixed-value field as read from the wire: a value this version knows, or the text of one it
/// does not (kept verbatim, so it can still be shown and re-encoded unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Open<T> {
    Known(T),
    /// A value a newer peer sent; this version can only show its text.
    Unknown(String),
}

impl<T: Spelled> Open<T> {
    /// Read a spelling: known values become `Known`, anything else is kept as `Unknown`.
    pub fn parse(text: &str) -> Self {
        match T::from_spelling(text) {
            Some(v) => Open::Known(v),
            None => Open::Unknown(text.to_string()),
        }
    }

    /// The known value, or `None` for a value this version does not know.
    pub fn known(&self) -> Option<T> {
        match self {
            Open::Known(v) => Some(*v),
            Open::Unknown(_) => None,
        }
    }

    /// The wire text (the original text for an unknown value).
    pub fn as_str(&self) -> &str {
        match self {
            Open::Known(v) => v.as_str(),
            Open::Unknown(s) => s,
        }
    }

    /// Is this one of `values`?
    pub fn is_any(&self, values: &[T]) -> bool {
        self.known().is_some_and(|v| values.contains(&v))
    }
}

/// Ordered by wire text, so maps keyed by these values (counters, socket states) keep the
/// alphabetical order their JSON always had, whatever the declaration order of the variants.
impl<T: Spelled + Ord> Ord for Open<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<T: Spelled + Ord> PartialOrd for Open<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Spelled> From<T> for Open<T> {
    fn from(value: T) -> Self {
        Open::Known(value)
    }
}

impl<T: Spelled + Default> Default for Open<T> {
    fn default() -> Self {
        Open::Known(T::default())
    }
}

impl<T: Spelled> PartialEq<T> for Open<T> {
    fn eq(&self, other: &T) -> bool {
        self.known() == Some(*other)
    }
}

impl<T: Spelled> fmt::Display for Open<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: Spelled> Serialize for Open<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de, T: Spelled> Deserialize<'de> for Open<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Open::parse(&text))
    }
}

/// Declares a `Copy` enum whose variants each have one wire spelling, and implements
/// [`Spelled`], `Display`, `FromStr` (known values only) and serde (known values only: wrap the
/// field in [`Open`] to accept values a newer peer may send).
///
/// ```
/// protocol::spelled! {
///     /// Colours.
///     pub enum Colour { Red = "red", Green = "green" }
/// }
/// assert_eq!(protocol::Open::<Colour>::parse("blue").as_str(), "blue");
/// ```
#[macro_export]
macro_rules! spelled {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $crate::Spelled for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::Spelled>::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::Spelled>::from_spelling(s).ok_or_else(|| $crate::UnknownValue {
                    what: stringify!($name),
                    value: s.to_string(),
                    known: <Self as $crate::Spelled>::ALL.iter().map(|v| v.as_str()).collect(),
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = ::std::borrow::Cow::<'de, str>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// A spelling a closed enum does not know (from `FromStr`, e.g. a command-line value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (known: {})", known.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub known: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    spelled! {
        enum Fruit { Apple = "apple", Pear = "pear" }
    }

    #[test]
    fn known_and_unknown_round_trip_their_text() {
        let known: Open<Fruit> = serde_json::from_str("\"pear\"").unwrap();
        assert_eq!(known, Fruit::Pear);
        assert_eq!(serde_json::to_string(&known).unwrap(), "\"pear\"");
        let unknown: Open<Fruit> = serde_json::from_str("\"quince\"").unwrap();
        assert_eq!(unknown, Open::Unknown("quince".into()));
        assert_eq!(unknown.known(), None);
        assert_eq!(serde_json::to_string(&unknown).unwrap(), "\"quince\"");
    }

    #[test]
    fn closed_enum_names_the_known_values() {
        let err = "plum".parse::<Fruit>().unwrap_err();
        assert_eq!(err.to_string(), "unknown Fruit `plum` (known: apple, pear)");
    }

    #[test]
    fn open_values_work_as_map_keys() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(Open::<Fruit>::Known(Fruit::Apple), 1u32);
        m.insert(Open::<Fruit>::Unknown("fig".into()), 2);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"apple":1,"fig":2}"#);
        let back: std::collections::BTreeMap<Open<Fruit>, u32> =
            serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
}
