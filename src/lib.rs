//! rotcheck: verifies certificate and secret rotations — a gate for rotation scripts, a
//! Prometheus exporter, and companion rotate subcommands, all driven by one suite file.

pub mod certs;
pub mod cli;
pub mod crl;
pub mod engine;
pub mod expect;
pub mod exporter;
pub mod fsread;
pub mod human;
pub mod kinds;
pub mod metrics;
pub mod model;
pub mod ocsp;
pub mod pg;
pub mod redact;
pub mod report;
pub mod rotate;
pub mod suite;
pub mod vault;
