//! The Prometheus exporter behind `rotcheck serve` (placeholder until the exporter work lands).
