//! Follows the server's side of a TLS handshake record by record (without buffering), so a
//! failure can say how far the handshake got: "after its ServerHello, Certificate, ...".

/// The handshake messages and encrypted records the server sent so far.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    header: Vec<u8>,
    record_type: u8,
    record_left: usize,
    hs_header: Vec<u8>,
    hs_left: usize,
    /// Plaintext handshake message types, in order (at most `KEEP`).
    messages: Vec<u8>,
    /// After a ChangeCipherSpec every handshake record is encrypted.
    ccs: bool,
    encrypted: usize,
    /// The bytes are not TLS records.
    broken: bool,
}

const KEEP: usize = 16;

impl Progress {
    /// Takes the next bytes the server sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            if self.record_left == 0 {
                let take = (5 - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() == 5 {
                    self.start_record();
                }
                continue;
            }
            let take = self.record_left.min(bytes.len());
            self.record_body(&bytes[..take]);
            self.record_left -= take;
            bytes = &bytes[take..];
        }
    }

    fn start_record(&mut self) {
        let h = std::mem::take(&mut self.header);
        if !(20..=24).contains(&h[0]) || h[1] != 3 {
            self.broken = true;
            return;
        }
        self.record_type = h[0];
        self.record_left = usize::from(u16::from_be_bytes([h[3], h[4]]));
        match h[0] {
            20 => self.ccs = true,
            23 => self.encrypted += 1,
            22 if self.ccs => self.encrypted += 1,
            _ => {}
        }
    }

    /// Splits plaintext handshake records into messages (one may span records).
    fn record_body(&mut self, mut b: &[u8]) {
        if self.record_type != 22 || self.ccs {
            return;
        }
        while !b.is_empty() {
            if self.hs_left == 0 {
                let take = (4 - self.hs_header.len()).min(b.len());
                self.hs_header.extend_from_slice(&b[..take]);
                b = &b[take..];
                if self.hs_header.len() == 4 {
                    let h = std::mem::take(&mut self.hs_header);
                    if self.messages.len() < KEEP {
                        self.messages.push(h[0]);
                    }
                    self.hs_left = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
                }
                continue;
            }
            let take = self.hs_left.min(b.len());
            self.hs_left -= take;
            b = &b[take..];
        }
    }

    /// True once a ServerHello arrived.
    pub fn server_hello(&self) -> bool {
        self.messages.contains(&2)
    }

    /// True when the server finished its TLS 1.2 first flight and waits for the client.
    pub fn server_done(&self) -> bool {
        self.messages.contains(&14)
    }

    /// `ServerHello, Certificate, ServerHelloDone` or `ServerHello and 3 encrypted records`;
    /// `None` before a ServerHello.
    pub fn describe(&self) -> Option<String> {
        if !self.server_hello() {
            return None;
        }
        let names: Vec<&str> = self.messages.iter().map(|t| message_name(*t)).collect();
        let mut s = names.join(", ");
        match self.encrypted {
            0 => {}
            1 => s.push_str(" and 1 encrypted record"),
            n => s.push_str(&format!(" and {n} encrypted records")),
        }
        Some(s)
    }
}

fn message_name(t: u8) -> &'static str {
    match t {
        2 => "ServerHello",
        4 => "NewSessionTicket",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        20 => "Finished",
        22 => "CertificateStatus",
        _ => "an unknown handshake message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn tls12_flight_byte_by_byte() {
        // ServerHello (3 bytes) and Certificate split over two records, then ServerHelloDone.
        let mut bytes = record(22, &[2, 0, 0, 3, 1, 2, 3, 11, 0, 0, 4, 9]);
        bytes.extend(record(22, &[9, 9, 9, 14, 0, 0, 0]));
        let mut p = Progress::default();
        for b in &bytes {
            p.feed(std::slice::from_ref(b));
        }
        assert_eq!(
            p.describe().as_deref(),
            Some("ServerHello, Certificate, ServerHelloDone")
        );
        assert!(p.server_done());
    }

    #[test]
    fn tls13_counts_encrypted_records() {
        let mut bytes = record(22, &[2, 0, 0, 1, 0]);
        bytes.extend(record(20, &[1]));
        bytes.extend(record(23, &[0; 40]));
        bytes.extend(record(23, &[0; 40]));
        let mut p = Progress::default();
        p.feed(&bytes);
        assert_eq!(
            p.describe().as_deref(),
            Some("ServerHello and 2 encrypted records")
        );
    }

    #[test]
    fn nothing_or_garbage_describes_nothing() {
        let mut p = Progress::default();
        assert_eq!(p.describe(), None);
        p.feed(b"HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(p.describe(), None);
    }
}
