//! `rotcheck rotate`: the rotation steps themselves (issue, cert-role, pki-role, trust,
//! reload), atomic file writes with backups, verification before every swap, and the plan
//! runner that gates on the suite after every step. Rotate never decides health: it asks the
//! engine.

pub mod actions;
pub mod atomic;
pub mod audit;
pub mod bundle;
pub mod cert_role;
pub mod ctx;
pub mod dryrun;
pub mod gate;
pub mod issue;
pub mod keygen;
pub mod killpoint;
pub mod material;
pub mod options;
pub mod owner;
pub mod pki_role;
pub mod plan;
pub mod reload;
pub mod revoke;
pub mod runner;
pub mod safefs;
pub mod secret;
pub mod spec;
pub mod state;
pub mod trust;
pub mod trustfirst;
pub mod verify;
