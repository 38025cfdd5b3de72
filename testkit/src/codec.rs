//! The checks of the `message_decode` and `handshake_decode` fuzz targets: the crate's
//! decoders against the [`reference`](crate::reference) parser, then a rebuild.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use ut_pex::handshake::{ExtendedHandshake, HandshakeBuilder, UT_PEX};
use ut_pex::message::{encode_frame, encode_payload, encoded_len, write_payload};
use ut_pex::{canonical_addr, Frame, Peer, PexMessage};

use crate::addr::is_mapped;
use crate::ensure;
use crate::reference::{compare_verdict, reference_pex_lists, reference_top, RefTop, RefValue};
use crate::Check;

/// An address as it comes back from the wire: canonical, without IPv6 flow info or scope
/// id (compact entries carry neither).
pub fn on_the_wire(addr: SocketAddr) -> SocketAddr {
    match canonical_addr(addr) {
        SocketAddr::V6(v6) => SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0).into(),
        v4 => v4,
    }
}

/// What a re-encoded list decodes to: every address [`on_the_wire`], IPv4 first, each
/// family in its original order.
pub fn canonical_order<T: Copy>(
    items: &[T],
    addr: impl Fn(&T) -> SocketAddr,
    with: impl Fn(&T, SocketAddr) -> T,
) -> Vec<T> {
    let canonical: Vec<T> = items
        .iter()
        .map(|i| with(i, on_the_wire(addr(i))))
        .collect();
    let v4 = canonical.iter().filter(|i| addr(i).is_ipv4());
    let v6 = canonical.iter().filter(|i| addr(i).is_ipv6());
    v4.chain(v6).copied().collect()
}

/// `message_decode`: decode raw bytes; compare with the reference parser; on success,
/// re-encode what was decoded and check the same peers come back.
pub fn check_message(data: &[u8]) -> Check {
    let decoded = PexMessage::decode(data);
    compare_verdict(&decoded, data)?;
    let reference = reference_top(data);
    let (Ok(message), RefTop::Dict(entries)) = (decoded, reference) else {
        return Ok(());
    };
    let added: Vec<Peer> = message.added().collect();
    let dropped: Vec<SocketAddr> = message.dropped().collect();
    let (ref_added, ref_dropped) = reference_pex_lists(&entries);
    ensure!(
        added == ref_added,
        "added {added:?} != reference {ref_added:?}"
    );
    ensure!(
        dropped == ref_dropped,
        "dropped {dropped:?} != reference {ref_dropped:?}"
    );
    // The second oracle, where the two oracles read the same thing: a dictionary with its
    // keys in BEP 3's order (a general library keeps one value per key, the crate and the
    // reference the last byte string of a repeated key).
    if entries.windows(2).all(|w| w[0].0 < w[1].0) {
        if let Some((bt_added, bt_dropped)) = crate::oracle::pex_lists(data) {
            ensure!(
                (&added, &dropped) == (&bt_added, &bt_dropped),
                "decoded {added:?} / {dropped:?}, bt_bencode reads {bt_added:?} / {bt_dropped:?}"
            );
        }
    }
    ensure!(
        message.added_len() == added.len(),
        "added_len {} != {}",
        message.added_len(),
        added.len()
    );
    ensure!(
        message.dropped_len() == dropped.len(),
        "dropped_len {} != {}",
        message.dropped_len(),
        dropped.len()
    );
    ensure!(
        message.is_empty() == (added.is_empty() && dropped.is_empty()),
        "is_empty() is {} with {} added, {} dropped",
        message.is_empty(),
        added.len(),
        dropped.len()
    );
    check_round_trip(&added, &dropped, data.len() as u8)
}

/// Encodes `added` / `dropped` every way the crate offers, decodes the result, and checks
/// the canonical form of the same lists comes back.
pub fn check_round_trip(added: &[Peer], dropped: &[SocketAddr], extension_id: u8) -> Check {
    let payload = encode_payload(added, dropped);
    ensure!(
        payload.len() == encoded_len(added, dropped),
        "encoded_len {} but encode_payload wrote {}",
        encoded_len(added, dropped),
        payload.len()
    );
    // Into an empty buffer, and appended after bytes already there.
    let mut written = b"before".to_vec();
    write_payload(added, dropped, &mut written);
    ensure!(
        written[..6] == *b"before" && written[6..] == payload[..],
        "write_payload differs from encode_payload, or overwrote what was there"
    );
    let frame = encode_frame(extension_id, added, dropped);
    check_frame_header(&frame, extension_id)?;
    ensure!(
        frame.payload()[..] == payload[..],
        "encode_frame payload differs from encode_payload"
    );

    let again = PexMessage::decode(&payload)
        .map_err(|e| format!("re-encoded payload does not decode: {e:?}"))?;
    let added_back: Vec<Peer> = again.added().collect();
    let dropped_back: Vec<SocketAddr> = again.dropped().collect();
    let want_added = canonical_order(added, |p| p.addr, |p, a| Peer::new(a, p.flags));
    let want_dropped = canonical_order(dropped, |a| *a, |_, a| a);
    ensure!(
        added_back == want_added,
        "added after round trip {added_back:?} != {want_added:?}"
    );
    ensure!(
        dropped_back == want_dropped,
        "dropped after round trip {dropped_back:?} != {want_dropped:?}"
    );
    ensure!(
        !added_back
            .iter()
            .map(|p| p.addr)
            .chain(dropped_back.iter().copied())
            .any(is_mapped),
        "an IPv4-mapped IPv6 address went out as IPv6"
    );
    // Encoding is a fixpoint once canonical.
    ensure!(
        encode_payload(&added_back, &dropped_back) == payload,
        "re-encoding the decoded payload changed its bytes"
    );
    Ok(())
}

/// The frame's header: length prefix, extended message id 20, the receiver's extension id,
/// and `payload()` as the rest.
pub fn check_frame_header(frame: &Frame, extension_id: u8) -> Check {
    let bytes = frame.as_bytes();
    ensure!(
        bytes.len() >= Frame::HEADER_LEN,
        "frame shorter than its header"
    );
    ensure!(
        frame.len() == bytes.len() && !frame.is_empty(),
        "Frame::len disagrees"
    );
    let body = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    ensure!(
        body + 4 == bytes.len(),
        "length prefix {body} for a {}-byte frame",
        bytes.len()
    );
    ensure!(
        bytes[4] == 20,
        "extended message id {} instead of 20",
        bytes[4]
    );
    ensure!(
        bytes[5] == extension_id && frame.extension_id() == extension_id,
        "frame carries extension id {} instead of {extension_id}",
        bytes[5]
    );
    ensure!(
        frame.payload()[..] == bytes[Frame::HEADER_LEN..],
        "payload() is not the bytes after the header"
    );
    Ok(())
}

/// A handshake's fields as the reference reads them.
#[derive(Debug, Default, PartialEq)]
struct RefHandshake<'a> {
    m: Option<Vec<(&'a [u8], u8)>>,
    listen_port: Option<u16>,
    client: Option<&'a [u8]>,
    your_ip: Option<IpAddr>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    reqq: Option<u64>,
    prefers_encryption: Option<bool>,
    upload_only: Option<bool>,
    metadata_size: Option<u64>,
}

fn reference_handshake<'a>(entries: &[(&'a [u8], RefValue<'a>)]) -> RefHandshake<'a> {
    let mut hs = RefHandshake::default();
    for (key, value) in entries {
        match (*key, value) {
            (b"m", RefValue::Dict(m)) => {
                let ids = m
                    .iter()
                    .filter_map(|(name, v)| match v {
                        RefValue::Int(Some(id)) => u8::try_from(*id).ok().map(|id| (*name, id)),
                        _ => None,
                    })
                    .collect();
                hs.m = Some(ids);
            }
            (b"p", RefValue::Int(n)) => hs.listen_port = n.and_then(|n| u16::try_from(n).ok()),
            (b"v", RefValue::Bytes(v)) => hs.client = Some(v),
            (b"yourip", RefValue::Bytes(ip)) => {
                hs.your_ip = match ip.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())),
                    _ => None,
                }
            }
            (b"ipv4", RefValue::Bytes(ip)) => {
                hs.ipv4 = <[u8; 4]>::try_from(*ip).ok().map(Ipv4Addr::from)
            }
            (b"ipv6", RefValue::Bytes(ip)) => {
                hs.ipv6 = <[u8; 16]>::try_from(*ip).ok().map(Ipv6Addr::from)
            }
            (b"reqq", RefValue::Int(n)) => hs.reqq = n.and_then(|n| u64::try_from(n).ok()),
            (b"e", RefValue::Int(n)) => hs.prefers_encryption = n.map(|n| n != 0),
            (b"upload_only", RefValue::Int(n)) => hs.upload_only = n.map(|n| n != 0),
            (b"metadata_size", RefValue::Int(n)) => {
                hs.metadata_size = n.and_then(|n| u64::try_from(n).ok())
            }
            _ => {}
        }
    }
    hs
}

/// `handshake_decode`: decode raw bytes; compare every accessor with the reference parser;
/// rebuild the handshake with `HandshakeBuilder` and check it reads back the same.
pub fn check_handshake(data: &[u8]) -> Check {
    let decoded = ExtendedHandshake::decode(data);
    compare_verdict(&decoded, data)?;
    let reference = reference_top(data);
    let (Ok(hs), RefTop::Dict(entries)) = (decoded, reference) else {
        return Ok(());
    };
    let want = reference_handshake(&entries);
    let extensions: Vec<(&[u8], u8)> = hs.extensions().collect();
    let got = RefHandshake {
        m: hs.has_extensions().then(|| extensions.clone()),
        listen_port: hs.listen_port,
        client: hs.client,
        your_ip: hs.your_ip,
        ipv4: hs.ipv4,
        ipv6: hs.ipv6,
        reqq: hs.reqq,
        prefers_encryption: hs.prefers_encryption,
        upload_only: hs.upload_only,
        metadata_size: hs.metadata_size,
    };
    ensure!(got == want, "handshake {got:?} != reference {want:?}");

    // extension_id(name) is the last id given to name; names not in `m` are None.
    let last_id = |name: &[u8]| {
        extensions
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
    };
    for (name, _) in &extensions {
        if let Ok(name) = std::str::from_utf8(name) {
            ensure!(
                hs.extension_id(name) == last_id(name.as_bytes()),
                "extension_id({name:?}) is wrong"
            );
        }
    }
    for name in [UT_PEX, "ut_metadata", "", "ut_pex\0", "UT_PEX"] {
        ensure!(
            hs.extension_id(name) == last_id(name.as_bytes()),
            "extension_id({name:?}) is wrong"
        );
    }
    ensure!(
        hs.ut_pex() == last_id(UT_PEX.as_bytes()),
        "ut_pex() {:?} is wrong",
        hs.ut_pex()
    );

    // Rebuild what the builder can express and read it back.
    let mut builder = HandshakeBuilder::new();
    let mut names = Vec::new();
    for (name, id) in &extensions {
        if let Ok(name) = std::str::from_utf8(name) {
            builder = builder.extension(name, *id);
            names.push(name);
        }
    }
    if let Some(port) = hs.listen_port {
        builder = builder.listen_port(port);
    }
    let client = hs.client.and_then(|c| std::str::from_utf8(c).ok());
    if let Some(client) = client {
        builder = builder.client(client);
    }
    if let Some(ip) = hs.your_ip {
        builder = builder.your_ip(ip);
    }
    if let Some(reqq) = hs.reqq {
        builder = builder.reqq(reqq);
    }
    let built = builder.build();
    let back = ExtendedHandshake::decode(&built)
        .map_err(|e| format!("built handshake does not decode: {e:?}"))?;
    for name in names {
        ensure!(
            back.extension_id(name) == hs.extension_id(name),
            "rebuilt extension_id({name:?}) differs"
        );
    }
    ensure!(back.has_extensions(), "rebuilt handshake has no m");
    ensure!(
        back.listen_port == hs.listen_port,
        "rebuilt listen_port differs"
    );
    ensure!(
        back.client == client.map(str::as_bytes),
        "rebuilt client differs"
    );
    ensure!(back.your_ip == hs.your_ip, "rebuilt your_ip differs");
    ensure!(back.reqq == hs.reqq, "rebuilt reqq differs");
    Ok(())
}
