//! The one alternative oracle: what a ut_pex payload means, read through a general bencode
//! library (`bt_bencode`) rather than the hand-written [`reference`](crate::reference)
//! parser. Two oracles that share no bencode code can only agree on a wrong answer by
//! chance, so wherever both read a payload the crate's decoder must match both.

use std::net::SocketAddr;

use bt_bencode::Value;
use ut_pex::{Peer, PeerFlags};

use crate::reference::addr_from_compact;

/// The six ut_pex keys.
pub const PEX_KEYS: [&str; 6] = [
    "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
];

/// The lists `payload` carries as `bt_bencode` reads it, or `None` when `bt_bencode` does
/// not read it as one dictionary. Validity is the reference parser's to judge: this is
/// only asked about payloads the crate and the reference both accept.
pub fn pex_lists(payload: &[u8]) -> Option<(Vec<Peer>, Vec<SocketAddr>)> {
    match bt_bencode::from_slice::<Value>(payload) {
        Ok(Value::Dict(dict)) => Some(lists_of(&dict)),
        _ => None,
    }
}

/// The lists a dictionary carries: a key counts only when it holds a byte string, a
/// partial trailing entry is ignored, entry `i` gets flag byte `i` of the `.f` key or 0.
pub fn lists_of(
    dict: &std::collections::BTreeMap<bt_bencode::ByteString, Value>,
) -> (Vec<Peer>, Vec<SocketAddr>) {
    let bytes = |key: &str| match dict.get(key.as_bytes()) {
        Some(Value::ByteStr(b)) => &b[..],
        _ => &[],
    };
    let peers = |key: &str, entry: usize| {
        let flags = bytes(&format!("{key}.f"));
        bytes(key)
            .chunks_exact(entry)
            .enumerate()
            .map(|(i, e)| {
                let flags = PeerFlags::from_bits(flags.get(i).copied().unwrap_or(0));
                Peer::new(addr_from_compact(e), flags)
            })
            .collect::<Vec<_>>()
    };
    let addrs = |key: &str, entry: usize| bytes(key).chunks_exact(entry).map(addr_from_compact);
    let mut added = peers("added", 6);
    added.extend(peers("added6", 18));
    let dropped = addrs("dropped", 6).chain(addrs("dropped6", 18)).collect();
    (added, dropped)
}
