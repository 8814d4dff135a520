//! Unit tests of the client profiles on a pinned rcgen PKI; the comparison with the real
//! clients is tests/clients.rs.

use super::*;
