//! Vault HTTP client shared by probes and rotate: the connection profile with its `VAULT_*`
//! fallbacks, an mTLS-capable client with classified failures, cert login and revocation,
//! tokens that never print, per-run token state, and version parsing.

pub mod auth;
pub mod client;
pub mod errors;
pub mod profile;
pub mod session;
pub mod token;
pub mod version;

pub use auth::{cert_login, revoke_self, Login};
pub use client::{encode_path, Reply, VaultClient, MAX_BODY};
pub use errors::VaultError;
pub use profile::{Addr, Endpoint, Settings, TokenSource};
pub use session::{RevokeFailed, Session};
pub use token::Token;
pub use version::Version;
