//! PostgreSQL values to JSON, from the binary wire format, without loss:
//!
//! | PostgreSQL | JSON |
//! | --- | --- |
//! | `smallint`, `integer`, `bigint`, `oid` | number |
//! | `real`, `double precision` | number; `NaN`, `Infinity`, `-Infinity` as strings |
//! | `numeric` | string of its exact digits and scale (`"12.50"`): a JSON number would go through `f64` |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, enums | string |
//! | `boolean` | boolean |
//! | `json`, `jsonb` | the value itself |
//! | `uuid` | string |
//! | `date` | `"2024-05-01"` |
//! | `timestamptz` | RFC 3339 in UTC: `"2024-05-01T12:30:00.25Z"` |
//! | `timestamp` | the same without an offset (it has none): `"2024-05-01T12:30:00.25"` |
//! | `time`, `timetz` | `"12:30:00"`, `"12:30:00+02:00"` |
//! | `bytea` | base64 (standard alphabet, padded) |
//! | one-dimensional arrays of these | arrays |
//! | NULL | null |
//!
//! Infinite dates and timestamps are the strings `"infinity"` and `"-infinity"`.
//! Domains convert as their base type. Any other type is refused by name, with the
//! advice to cast it in the query (`interval::text`).

use std::error::Error;
use std::fmt::Write;

use base64::Engine;
use postgres::types::{FromSql, Kind, Type};
use serde_json::{Number, Value};

/// One column's raw bytes as the server sent them (binary format), `None` for NULL.
pub(crate) struct Cell<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Cell<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Cell(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Cell(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Whether values of `ty` convert to JSON.
pub(crate) fn supported(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Enum(_) => true,
        Kind::Domain(base) => supported(base),
        Kind::Array(member) => supported(member),
        Kind::Simple => scalar(ty).is_some(),
        _ => false,
    }
}

/// The scalar types the source converts.
#[derive(Clone, Copy)]
enum Scalar {
    Bool,
    Int,
    Oid,
    Float4,
    Float8,
    Numeric,
    Text,
    Char,
    Json,
    Jsonb,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Bytea,
}

fn scalar(ty: &Type) -> Option<Scalar> {
    Some(match *ty {
        Type::BOOL => Scalar::Bool,
        Type::INT2 | Type::INT4 | Type::INT8 => Scalar::Int,
        Type::OID => Scalar::Oid,
        Type::FLOAT4 => Scalar::Float4,
        Type::FLOAT8 => Scalar::Float8,
        Type::NUMERIC => Scalar::Numeric,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Scalar::Text,
        Type::CHAR => Scalar::Char,
        Type::JSON => Scalar::Json,
        Type::JSONB => Scalar::Jsonb,
        Type::UUID => Scalar::Uuid,
        Type::DATE => Scalar::Date,
        Type::TIME => Scalar::Time,
        Type::TIMETZ => Scalar::TimeTz,
        Type::TIMESTAMP => Scalar::Timestamp,
        Type::TIMESTAMPTZ => Scalar::TimestampTz,
        Type::BYTEA => Scalar::Bytea,
        _ if ty.name() == "citext" => Scalar::Text,
        _ => return None,
    })
}

/// The value of one column of type `ty` as JSON; `Err` says why not (the caller names
/// the column).
pub(crate) fn to_json(ty: &Type, raw: Option<&[u8]>) -> Result<Value, String> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    match ty.kind() {
        Kind::Enum(_) => text(raw),
        Kind::Domain(base) => to_json(base, Some(raw)),
        Kind::Array(member) => {
            let cells = Vec::<Cell>::from_sql(ty, raw).map_err(|error| error.to_string())?;
            cells
                .into_iter()
                .map(|cell| to_json(member, cell.0))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        _ => match scalar(ty) {
            Some(kind) => convert(kind, raw),
            None => Err(unsupported(ty)),
        },
    }
}

/// Why a column of type `ty` cannot be read, and what to do.
pub(crate) fn unsupported(ty: &Type) -> String {
    format!(
        "its type `{}` has no JSON conversion in the postgres source; cast it in the \
         query (for example `column::text`)",
        ty.name()
    )
}

fn convert(kind: Scalar, raw: &[u8]) -> Result<Value, String> {
    Ok(match kind {
        Scalar::Bool => Value::Bool(bytes::<1>(raw)?[0] != 0),
        Scalar::Int => Value::from(match raw.len() {
            2 => i64::from(i16::from_be_bytes(bytes(raw)?)),
            4 => i64::from(i32::from_be_bytes(bytes(raw)?)),
            _ => i64::from_be_bytes(bytes(raw)?),
        }),
        Scalar::Oid => Value::from(u32::from_be_bytes(bytes(raw)?)),
        Scalar::Float4 => {
            let value = f32::from_be_bytes(bytes(raw)?);
            // Through its shortest decimal form, so that 0.1 stays 0.1.
            float(f64::from(value), || value.to_string().parse().ok())
        }
        Scalar::Float8 => {
            let value = f64::from_be_bytes(bytes(raw)?);
            float(value, || Some(value))
        }
        Scalar::Numeric => Value::String(numeric(raw)?),
        Scalar::Text => text(raw)?,
        Scalar::Char => Value::String(char::from(bytes::<1>(raw)?[0]).to_string()),
        Scalar::Json => serde_json::from_slice(raw).map_err(|error| error.to_string())?,
        Scalar::Jsonb => match raw.split_first() {
            Some((1, json)) => serde_json::from_slice(json).map_err(|error| error.to_string())?,
            _ => return Err("unknown jsonb version".to_owned()),
        },
        Scalar::Uuid => {
            let hex: String = bytes::<16>(raw)?
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ))
        }
        Scalar::Date => Value::String(match i32::from_be_bytes(bytes(raw)?) {
            i32::MAX => "infinity".to_owned(),
            i32::MIN => "-infinity".to_owned(),
            days => date(i64::from(days)),
        }),
        Scalar::Time => Value::String(time_of_day(i64::from_be_bytes(bytes(raw)?))),
        Scalar::TimeTz => {
            let raw = bytes::<12>(raw)?;
            let micros = i64::from_be_bytes(raw[..8].try_into().map_err(|_| "short timetz")?);
            // PostgreSQL sends the offset in seconds west of UTC.
            let west = i32::from_be_bytes(raw[8..].try_into().map_err(|_| "short timetz")?);
            Value::String(time_of_day(micros) + &offset(-i64::from(west)))
        }
        Scalar::Timestamp => Value::String(timestamp(i64::from_be_bytes(bytes(raw)?), "")),
        Scalar::TimestampTz => Value::String(timestamp(i64::from_be_bytes(bytes(raw)?), "Z")),
        Scalar::Bytea => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
    })
}

/// Exactly `N` bytes, or an error saying how many came.
fn bytes<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn text(raw: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(raw)
        .map(|text| Value::String(text.to_owned()))
        .map_err(|error| format!("invalid UTF-8 at byte {}", error.valid_up_to()))
}

/// A float as a JSON number (`finite` gives the value to write), or PostgreSQL's
/// spelling of the values JSON has no number for.
fn float(value: f64, finite: impl FnOnce() -> Option<f64>) -> Value {
    if value.is_nan() {
        Value::String("NaN".to_owned())
    } else if value.is_infinite() {
        Value::String(if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned())
    } else {
        finite()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

/// A `numeric` in its binary form (base-10000 digits, the first one's weight, sign,
/// display scale) as its exact decimal text.
fn numeric(raw: &[u8]) -> Result<String, String> {
    let word = |at: usize| -> Result<u16, String> {
        raw.get(at..at + 2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let count = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let scale = usize::from(word(6)?);
    let digits: Vec<u16> = (0..count)
        .map(|i| word(8 + 2 * i))
        .collect::<Result<_, _>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        other => return Err(format!("unknown numeric sign {other:#x}")),
    }
    // The digit of weight `w` (10000^w) is at index `weight - w`.
    let digit = |w: i64| -> u16 {
        usize::try_from(weight - w)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for w in (0..=weight).rev() {
            if w == weight {
                let _ = write!(out, "{}", digit(w));
            } else {
                let _ = write!(out, "{:04}", digit(w));
            }
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut w = -1;
        while fraction.len() < scale {
            let _ = write!(fraction, "{:04}", digit(w));
            w -= 1;
        }
        fraction.truncate(scale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

/// Days from 2000-01-01 as `YYYY-MM-DD` (proleptic Gregorian; year 0 is 1 BC).
fn date(days: i64) -> String {
    // Howard Hinnant's civil_from_days, from 1970-01-01 (10,957 days before 2000).
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Microseconds since midnight as `HH:MM:SS`, with `.ffffff` (trailing zeros cut)
/// when not whole.
fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// `+hh:mm` for an offset east of UTC in seconds.
fn offset(east: i64) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let minutes = east.abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Microseconds since 2000-01-01 00:00:00 as `date T time` and `zone`.
fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        _ => {
            const DAY: i64 = 86_400_000_000;
            format!(
                "{}T{}{zone}",
                date(micros.div_euclid(DAY)),
                time_of_day(micros.rem_euclid(DAY))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_format_as_rfc_3339() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(59), "2000-02-29");
        assert_eq!(date(-10_957), "1970-01-01");
        assert_eq!(time_of_day(45_296_250_000), "12:34:56.25");
        assert_eq!(timestamp(0, "Z"), "2000-01-01T00:00:00Z");
        assert_eq!(timestamp(-1, ""), "1999-12-31T23:59:59.999999");
        assert_eq!(offset(-5 * 3600 - 30 * 60), "-05:30");
    }

    #[test]
    fn numerics_keep_every_digit_and_their_scale() {
        // 12.50: digits [12, 5000], weight 0, scale 2.
        let raw = [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88];
        assert_eq!(numeric(&raw).unwrap(), "12.50");
        // -0.0001: digits [1], weight -1, scale 4.
        let raw = [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 1];
        assert_eq!(numeric(&raw).unwrap(), "-0.0001");
        // 10000: digits [1], weight 1, scale 0.
        let raw = [0, 1, 0, 1, 0, 0, 0, 0, 0, 1];
        assert_eq!(numeric(&raw).unwrap(), "10000");
    }
}
