//! rotcheck-lab: the lab for rotcheck's tests and quick start — a real OpenBao set up with the
//! seeds' world ([`real`]), a Vault API emulator over real mTLS (built from the documented API,
//! with Vault's status codes, error bodies and version differences), a lab PKI, and TLS
//! listeners with scripted faults.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rotcheck_lab::LabError> {
//! use rotcheck_lab::{Lab, LabConfig};
//! let lab = Lab::start(LabConfig::default()).await?;
//! println!("{} (SNI {})", lab.url(), lab.server_name());
//! lab.set_sealed(true);
//! assert_eq!(lab.tokens_live(), 0);
//! # Ok(()) }
//! ```

pub mod control;
mod encode;
mod error;
pub mod faults;
mod lab;
pub mod layout;
pub mod pki;
pub mod ports;
pub mod postgres;
pub mod real;
mod server;
mod tls;
mod vault;
pub mod world;

pub use error::LabError;
pub use faults::{FaultKind, FaultListener};
pub use lab::{Lab, LabConfig};
pub use layout::{Identity, LabFiles};
