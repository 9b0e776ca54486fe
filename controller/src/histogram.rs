//! Histograms as they travel between parts: a summary anyone can read, plus the whole
//! hdrhistogram in serialized form so a viewer (the dashboard, a JSON log reader) can
//! redraw its shape.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A histogram closed at the end of a metrics window: percentiles for quick reading and
/// the full histogram, V2-serialized and base64-encoded, for redrawing.
///
/// The unit is the one its field name gives (`_us` for microseconds, `_bytes` for bytes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramData {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest recorded value (0 when empty).
    pub min: u64,
    /// Largest recorded value (0 when empty).
    pub max: u64,
    /// Arithmetic mean of the recorded values (0 when empty).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The histogram in hdrhistogram's V2 format, base64; empty when `count` is 0.
    pub encoded: String,
}

/// Why an encoded histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The `encoded` field is not valid base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not a V2 hdrhistogram.
    #[error("histogram bytes are not a V2 hdrhistogram: {0:?}")]
    Format(hdrhistogram::serialization::DeserializeError),
}

impl HistogramData {
    /// Summarises and serializes `histogram`.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(histogram, &mut bytes)
            .expect("serializing a histogram into memory cannot fail");
        Self {
            encoded: STANDARD.encode(bytes),
            ..Self::summarize(histogram)
        }
    }

    /// Summarises `histogram` without serializing it (`encoded` stays empty, so
    /// [`decode`](Self::decode) gives an empty histogram): for producers that make
    /// many snapshots nobody redraws, such as simulation experiments.
    pub fn summarize(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            min: histogram.min(),
            max: histogram.max(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            encoded: String::new(),
        }
    }

    /// Reads the full histogram back; an empty one when nothing was recorded.
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramError> {
        if self.encoded.is_empty() {
            return Ok(Histogram::new(3).expect("3 significant figures is valid"));
        }
        let bytes = STANDARD.decode(&self.encoded)?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(HistogramError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_serialization() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let data = HistogramData::from_histogram(&h);
        assert_eq!(data.count, 1000);
        assert_eq!(data.min, 1);
        assert!((data.p50 as i64 - 500).abs() <= 1, "p50 {}", data.p50);
        let back = data.decode().unwrap();
        assert_eq!(back.len(), 1000);
        assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
    }

    #[test]
    fn empty_histogram_has_no_payload() {
        let h = Histogram::<u64>::new(3).unwrap();
        let data = HistogramData::from_histogram(&h);
        assert_eq!(data, HistogramData::default());
        assert!(data.decode().unwrap().is_empty());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let data = HistogramData {
            count: 1,
            encoded: "!!!".into(),
            ..Default::default()
        };
        assert!(matches!(data.decode(), Err(HistogramError::Base64(_))));
    }
}
