//! Which addresses the book takes at all.
//!
//! BEP 11: "PEX data is untrusted. It can be used to flood a swarm with bogus peers, or to
//! DDoS victim IP ranges" — so PEX candidates on privileged ports and local-scope addresses
//! named by a remote outside that scope are refused before they cost anything.

use std::net::{IpAddr, SocketAddr};

use crate::addr::{is_dialable_ip, is_local_scope};

use super::{BookConfig, Refusal, Source};

/// 0/8 ("this network") and 240/4 (reserved, with the broadcast address): never a peer.
fn is_reserved_v4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let first = v4.octets()[0];
            first == 0 || first >= 240
        }
        IpAddr::V6(_) => false,
    }
}

/// Refuses what `source` may not give: `addr` is canonical, `local` our own IPs.
pub(crate) fn check(
    addr: SocketAddr,
    source: Source,
    local: &[Option<IpAddr>; 2],
    config: &BookConfig,
) -> Result<(), Refusal> {
    let ip = addr.ip();
    if addr.port() == 0 || !is_dialable_ip(ip) || is_reserved_v4(ip) {
        return Err(Refusal::UnusableAddress);
    }
    if local.contains(&Some(ip)) {
        return Err(Refusal::OwnAddress);
    }
    if config.private && matches!(source, Source::Pex(_) | Source::Dht | Source::Lsd) {
        // BEP 27: a private torrent's peers come from its tracker only.
        return Err(Refusal::PrivateTorrent);
    }
    if let Source::Pex(remote) = source {
        if config.refuse_low_ports && addr.port() < 1024 {
            return Err(Refusal::LowPort);
        }
        // "That same class" read as local scope as a whole: a LAN peer may name LAN peers.
        if is_local_scope(ip) && !is_local_scope(remote.ip()) {
            return Err(Refusal::LocalScope);
        }
    }
    Ok(())
}
