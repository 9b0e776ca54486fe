//! Durations and sizes as pipeline files write them (`"10s"`, `"64MiB"`), for serde.

use std::fmt;
use std::time::Duration;

use brigade_controller::units;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration written with its unit, such as `"250ms"` or `"10s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let seconds = units::parse_duration(&text).map_err(de::Error::custom)?;
        Ok(Span(Duration::from_secs_f64(seconds)))
    }
}

/// A size in bytes, written `"64MiB"`, `"512KiB"` or as a whole number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = Size;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or a whole number of bytes")
            }

            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<Size, E> {
                Ok(Size(bytes))
            }

            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<Size, E> {
                u64::try_from(bytes)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative, got {bytes}")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
                units::parse_size(text).map(Size).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}
