//! The BEP 10 extended handshake: parse a remote's, build our own.
//!
//! BEP 10: "The payload of the handshake message is a bencoded dictionary. All items in the
//! dictionary are optional." The `m` dictionary maps extension names to the message ids the
//! *sender* wants to receive them under; "0 is used to turn off an extension".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bt_bencode::{ByteString, Value};

use crate::bencode::{Entries, Item};
use crate::error::DecodeError;

/// The name of the PEX extension in the `m` dictionary.
pub const UT_PEX: &str = "ut_pex";

/// A parsed extended handshake: a borrowed view, no allocation.
///
/// Parsing is liberal, with the same rules as [`PexMessage::decode`](crate::PexMessage::decode):
/// every key is optional, unknown keys are skipped, and a known key of the wrong type or out
/// of range (an `m` id above 255, a `p` above 65535, a `yourip` of neither 4 nor 16 bytes)
/// is treated as absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake<'a> {
    m: Option<&'a [u8]>,
    /// `p`: the sender's TCP listen port.
    pub listen_port: Option<u16>,
    /// `v`: the client name and version, raw (BEP 10 says UTF-8; not checked).
    pub client: Option<&'a [u8]>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub your_ip: Option<IpAddr>,
    /// `ipv4`: the sender's own IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's own IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub reqq: Option<u64>,
    /// `e`: the sender prefers encrypted connections (BEP 11 flag 0x01 comes from it).
    pub prefers_encryption: Option<bool>,
    /// `upload_only`: the sender is a seed or does not download (BEP 11 flag 0x02).
    pub upload_only: Option<bool>,
    /// `metadata_size`: the size of the info dictionary (BEP 9).
    pub metadata_size: Option<u64>,
}

impl<'a> ExtendedHandshake<'a> {
    /// Parses an extended handshake payload (the bencoded dictionary after the `<20><0>`
    /// header). Errors only when the payload is not a usable bencoded dictionary.
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut hs = Self::default();
        let mut entries = Entries::new(payload)?;
        while let Some(entry) = entries.next_entry()? {
            match entry {
                (b"m", Item::Dict(raw)) => hs.m = Some(raw),
                (b"p", Item::Int(n)) => hs.listen_port = n.and_then(|n| u16::try_from(n).ok()),
                (b"v", Item::Bytes(v)) => hs.client = Some(v),
                (b"yourip", Item::Bytes(ip)) => hs.your_ip = ip_from_bytes(ip),
                (b"ipv4", Item::Bytes(ip)) => {
                    hs.ipv4 = <[u8; 4]>::try_from(ip).ok().map(Ipv4Addr::from);
                }
                (b"ipv6", Item::Bytes(ip)) => {
                    hs.ipv6 = <[u8; 16]>::try_from(ip).ok().map(Ipv6Addr::from);
                }
                (b"reqq", Item::Int(n)) => hs.reqq = n.and_then(|n| u64::try_from(n).ok()),
                (b"e", Item::Int(n)) => hs.prefers_encryption = n.map(|n| n != 0),
                (b"upload_only", Item::Int(n)) => hs.upload_only = n.map(|n| n != 0),
                (b"metadata_size", Item::Int(n)) => {
                    hs.metadata_size = n.and_then(|n| u64::try_from(n).ok());
                }
                _ => {}
            }
        }
        Ok(hs)
    }

    /// Whether the handshake carried an `m` dictionary at all.
    pub fn has_extensions(&self) -> bool {
        self.m.is_some()
    }

    /// The id the sender gave extension `name` in `m`: `Some(0)` means "turned off",
    /// `None` means the handshake does not mention it (BEP 10: `m` is additive, so a later
    /// handshake that omits a name leaves it as it was).
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions()
            .filter(|(n, _)| *n == name.as_bytes())
            .last()
            .map(|(_, id)| id)
    }

    /// The `ut_pex` id: see [`extension_id`](Self::extension_id).
    pub fn ut_pex(&self) -> Option<u8> {
        self.extension_id(UT_PEX)
    }

    /// Every `(name, id)` of `m` whose id fits a byte, in wire order, however many there
    /// are. A lazy walk over the already validated `m`: no allocation, no cap.
    pub fn extensions(&self) -> impl Iterator<Item = (&'a [u8], u8)> + 'a {
        // `m` was validated while decoding, so re-walking it cannot fail: a failure would
        // only end the walk early.
        let mut entries = self.m.and_then(|raw| Entries::new(raw).ok());
        std::iter::from_fn(move || loop {
            let (name, item) = entries.as_mut()?.next_entry().ok()??;
            if let Item::Int(Some(id)) = item {
                if let Ok(id) = u8::try_from(id) {
                    return Some((name, id));
                }
            }
        })
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(Ipv4Addr::from(b))),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(Ipv6Addr::from(b))),
        _ => None,
    }
}

/// Builds an extended handshake payload, for hosts that have no other BEP 10 extension code.
///
/// ```
/// use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder};
/// let payload = HandshakeBuilder::new().extension("ut_pex", 1).listen_port(6881).build();
/// assert_eq!(payload, b"d1:md6:ut_pexi1ee1:pi6881ee");
/// assert_eq!(ExtendedHandshake::decode(&payload).unwrap().ut_pex(), Some(1));
/// ```
///
/// Built with `bt_bencode`: a handshake is built once per connection, so its allocations do
/// not matter, and `bt_bencode` gets sorting and escaping of arbitrary host-given names right.
#[derive(Clone, Debug, Default)]
pub struct HandshakeBuilder {
    extensions: Vec<(String, u8)>,
    listen_port: Option<u16>,
    client: Option<String>,
    your_ip: Option<IpAddr>,
    reqq: Option<u64>,
}

impl HandshakeBuilder {
    /// An empty handshake (`d1:mdee`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name` under `id` in `m` (0 turns it off); a repeated name keeps the last id.
    pub fn extension(mut self, name: &str, id: u8) -> Self {
        self.extensions.retain(|(n, _)| n != name);
        self.extensions.push((name.to_owned(), id));
        self
    }

    /// `p`: our TCP listen port.
    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen_port = Some(port);
        self
    }

    /// `v`: our client name and version.
    pub fn client(mut self, version: &str) -> Self {
        self.client = Some(version.to_owned());
        self
    }

    /// `yourip`: the remote's address as we see it.
    pub fn your_ip(mut self, ip: IpAddr) -> Self {
        self.your_ip = Some(ip);
        self
    }

    /// `reqq`: how many outstanding requests we accept.
    pub fn reqq(mut self, reqq: u64) -> Self {
        self.reqq = Some(reqq);
        self
    }

    /// The bencoded payload.
    pub fn build(&self) -> Vec<u8> {
        let key = |k: &str| ByteString::from(k.as_bytes().to_vec());
        let mut dict = std::collections::BTreeMap::new();
        let m = self
            .extensions
            .iter()
            .map(|(name, id)| (key(name), Value::from(u64::from(*id))))
            .collect();
        dict.insert(key("m"), Value::Dict(m));
        if let Some(p) = self.listen_port {
            dict.insert(key("p"), Value::from(u64::from(p)));
        }
        if let Some(v) = &self.client {
            dict.insert(key("v"), Value::ByteStr(key(v)));
        }
        if let Some(ip) = self.your_ip {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            dict.insert(key("yourip"), Value::ByteStr(ByteString::from(bytes)));
        }
        if let Some(reqq) = self.reqq {
            dict.insert(key("reqq"), Value::from(reqq));
        }
        // Serialising a `Value` into a `Vec` has no failure mode: every key is a byte
        // string and the writer is infallible.
        bt_bencode::to_vec(&Value::Dict(dict)).expect("a Value dict always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtorrent_style_handshake() {
        let payload = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei123e4:reqqi500e11:upload_onlyi3e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.ut_pex(), Some(1));
        assert_eq!(hs.extension_id("ut_holepunch"), Some(4));
        assert_eq!(hs.extension_id("nope"), None);
        assert_eq!(hs.reqq, Some(500));
        assert_eq!(hs.metadata_size, Some(123));
        assert_eq!(hs.upload_only, Some(true));
        assert_eq!(hs.client, Some(&b"libtorrent/2.0.8.0"[..]));
        assert_eq!(hs.your_ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(hs.extensions().count(), 6);
    }

    #[test]
    fn out_of_range_values_are_absent() {
        let hs = ExtendedHandshake::decode(b"d1:md6:ut_pexi300ee1:pi70000e6:yourip3:abce").unwrap();
        assert_eq!(hs.ut_pex(), None);
        assert_eq!(hs.listen_port, None);
        assert_eq!(hs.your_ip, None);
        assert!(hs.has_extensions());
    }

    #[test]
    fn u64_values_above_i64_max_are_kept() {
        let payload = HandshakeBuilder::new().reqq(u64::MAX).build();
        assert_eq!(
            ExtendedHandshake::decode(&payload).unwrap().reqq,
            Some(u64::MAX)
        );
        let hs = ExtendedHandshake::decode(b"d13:metadata_sizei9223372036854775808ee").unwrap();
        assert_eq!(hs.metadata_size, Some(1 << 63));
        let hs = ExtendedHandshake::decode(b"d4:reqqi-1e13:metadata_sizei18446744073709551616ee")
            .unwrap();
        assert_eq!((hs.reqq, hs.metadata_size), (None, None));
    }

    /// A lookup by name must not depend on how many other extensions come first: a
    /// handshake whose `m` registers 300 names sorting before `ut_pex` still enables it.
    #[test]
    fn ut_pex_found_after_many_other_extensions() {
        let mut builder = HandshakeBuilder::new();
        for i in 0..300 {
            builder = builder.extension(&format!("a_ext_{i:03}"), (i % 255 + 1) as u8);
        }
        let payload = builder.extension(UT_PEX, 9).build();
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.extensions().count(), 301);
        assert_eq!(hs.ut_pex(), Some(9));
    }

    #[test]
    fn zero_disables() {
        let hs = ExtendedHandshake::decode(b"d1:md6:ut_pexi0eee").unwrap();
        assert_eq!(hs.ut_pex(), Some(0));
    }

    #[test]
    fn builder_round_trips() {
        let payload = HandshakeBuilder::new()
            .extension(UT_PEX, 3)
            .extension("ut_metadata", 2)
            .client("ut_pex-rs")
            .your_ip(IpAddr::from([10, 0, 0, 1]))
            .reqq(250)
            .listen_port(7000)
            .build();
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.ut_pex(), Some(3));
        assert_eq!(hs.extension_id("ut_metadata"), Some(2));
        assert_eq!(hs.listen_port, Some(7000));
        assert_eq!(hs.client, Some(&b"ut_pex-rs"[..]));
        assert_eq!(hs.reqq, Some(250));
        assert_eq!(hs.your_ip, Some(IpAddr::from([10, 0, 0, 1])));
    }
}
