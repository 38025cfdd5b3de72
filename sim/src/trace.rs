//! The run's fingerprint: FNV-1a over every sent frame and every dial. Each node hashes what it
//! sends while handling one event; the world folds those digests in the events' key order
//! (then by node), so the hash does not depend on threads. Two runs with the same
//! `trace_hash` made the same decisions in the same order.

/// A running FNV-1a (64-bit) hash.
#[derive(Clone, Debug)]
pub struct Trace(u64);

impl Default for Trace {
    fn default() -> Self {
        Trace(0xcbf2_9ce4_8422_2325)
    }
}

impl Trace {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// A frame from node `from` to node `to`, sent at `at` (ns).
    pub fn frame(&mut self, at: u64, from: u32, to: u32, frame: &[u8]) {
        self.bytes(&at.to_le_bytes());
        self.bytes(&from.to_le_bytes());
        self.bytes(&to.to_le_bytes());
        self.bytes(frame);
    }

    /// A dial by node `from` to `addr`, at `at` (ns).
    pub fn dial(&mut self, at: u64, from: u32, addr: std::net::SocketAddr) {
        self.bytes(&at.to_le_bytes());
        self.bytes(&from.to_le_bytes());
        match addr.ip() {
            std::net::IpAddr::V4(ip) => self.bytes(&ip.octets()),
            std::net::IpAddr::V6(ip) => self.bytes(&ip.octets()),
        }
        self.bytes(&addr.port().to_le_bytes());
    }

    /// Folds in `digest`, what node `uid` sent while handling the event of key `(at, seq)`.
    pub fn fold(&mut self, at: u64, seq: u64, uid: u32, digest: &Trace) {
        self.bytes(&at.to_le_bytes());
        self.bytes(&seq.to_le_bytes());
        self.bytes(&uid.to_le_bytes());
        self.bytes(&digest.0.to_le_bytes());
    }

    /// The hash as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
