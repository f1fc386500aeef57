//! Fixed-bucket latency histograms and labelled counters, rendered in the Prometheus text
//! format by `ops::metrics`. Small and lock-light: a mutex per family, held for a map
//! update only.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Bucket upper bounds in seconds, from 5 ms to 2 minutes.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 120.0,
];

/// One histogram's counts.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    /// Observations at or below each bound (not cumulative; cumulated when rendered).
    pub counts: [u64; BUCKETS.len()],
    /// Observations above the last bound.
    pub overflow: u64,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Buckets {
    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        match BUCKETS.iter().position(|bound| secs <= *bound) {
            Some(index) => self.counts[index] += 1,
            None => self.overflow += 1,
        }
        self.sum_seconds += secs;
        self.count += 1;
    }
}

/// Histograms keyed by a label value.
#[derive(Debug, Default)]
pub struct HistogramFamily {
    inner: Mutex<BTreeMap<String, Buckets>>,
}

impl HistogramFamily {
    pub fn observe(&self, label: &str, took: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entry(label.to_owned()).or_default().observe(took);
    }

    pub fn snapshot(&self) -> BTreeMap<String, Buckets> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Counters keyed by a tuple of label values.
#[derive(Debug, Default)]
pub struct CounterFamily {
    inner: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterFamily {
    pub fn increment(&self, labels: &[&str]) {
        let key = labels.iter().map(|l| (*l).to_owned()).collect();
        *self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<Vec<String>, u64> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut b = Buckets::default();
        b.observe(Duration::from_millis(3));
        b.observe(Duration::from_millis(10));
        b.observe(Duration::from_secs(500));
        assert_eq!(
            (b.counts[0], b.counts[1], b.overflow, b.count),
            (1, 1, 1, 3)
        );
        assert!((b.sum_seconds - 500.013).abs() < 1e-9);
    }

    #[test]
    fn counters_are_kept_per_label_set() {
        let family = CounterFamily::default();
        family.increment(&["contact.upsert", "succeeded"]);
        family.increment(&["contact.upsert", "succeeded"]);
        family.increment(&["contact.get", "failed"]);
        let snapshot = family.snapshot();
        assert_eq!(
            snapshot[&vec!["contact.upsert".to_owned(), "succeeded".to_owned()]],
            2
        );
        assert_eq!(snapshot.len(), 2);
    }
}
