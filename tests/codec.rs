//! Edge cases of the decoder's rules (see `PexMessage::decode`): empty forms, flags of the
//! wrong length, nesting at the limit, key order and repeats, and the digit limits of
//! integers and string lengths.

use std::net::SocketAddr;

use ut_pex::message::MAX_NESTING;
use ut_pex::{DecodeError, Peer, PeerFlags, PexMessage};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn added(payload: &[u8]) -> Vec<Peer> {
    PexMessage::decode(payload).unwrap().added().collect()
}

fn dropped(payload: &[u8]) -> Vec<SocketAddr> {
    PexMessage::decode(payload).unwrap().dropped().collect()
}

/// A dictionary whose key `1:a` holds containers nested so that `depth` levels are open at
/// the innermost one, the top-level dictionary counting as 1. `open` starts one container
/// level (`l`, or `d1:k` whose value is the next level); the innermost is empty.
fn nested(open: &[u8], depth: usize) -> Vec<u8> {
    let mut payload = b"d1:a".to_vec();
    for _ in 0..depth - 2 {
        payload.extend_from_slice(open);
    }
    payload.extend_from_slice(if open == b"l" { b"le" } else { b"de" });
    payload.extend(std::iter::repeat(b'e').take(depth - 1));
    payload
}

#[test]
fn six_empty_keys_and_the_empty_dict_are_empty_messages() {
    let six = b"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e";
    for payload in [&six[..], b"de"] {
        let message = PexMessage::decode(payload).unwrap();
        assert!(message.is_empty());
        assert_eq!((message.added_len(), message.dropped_len()), (0, 0));
        assert_eq!(message.added().count() + message.dropped().count(), 0);
    }
}

#[test]
fn flags_longer_than_the_entries_are_cut_to_the_entries() {
    let payload = b"d5:added6:\x01\x02\x03\x04\x00\x057:added.f3:\x02\x04\x08e";
    assert_eq!(
        added(payload),
        [Peer::new(addr("1.2.3.4:5"), PeerFlags::SEED)]
    );
    // Flags without any entry yield nothing.
    assert!(PexMessage::decode(b"d7:added.f2:\x01\x02e")
        .unwrap()
        .is_empty());
}

#[test]
fn v6_flags_come_from_added6_f_only() {
    let mut payload = b"d6:added618:".to_vec();
    payload.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    payload.extend_from_slice(&[0; 11]);
    payload.extend_from_slice(&[1, 0x1a, 0xe1]);
    payload.extend_from_slice(b"7:added.f1:\x028:added6.f1:\x10e");
    assert_eq!(
        added(&payload),
        [Peer::new(addr("[2001:db8::1]:6881"), PeerFlags::REACHABLE)]
    );
}

#[test]
fn unknown_values_nested_up_to_the_limit_are_skipped_one_more_is_too_deep() {
    for open in [&b"l"[..], b"d1:k"] {
        let at_limit = nested(open, MAX_NESTING);
        assert_eq!(
            PexMessage::decode(&at_limit),
            Ok(PexMessage::default()),
            "{}",
            String::from_utf8_lossy(&at_limit)
        );
        let too_deep = nested(open, MAX_NESTING + 1);
        // The offending container is the last one opened.
        let offset = 4 + (MAX_NESTING - 1) * open.len();
        assert_eq!(
            PexMessage::decode(&too_deep),
            Err(DecodeError::TooDeep { offset })
        );
    }
    // Known keys around a deep unknown value are still read.
    let mut payload = b"d5:added6:\x01\x02\x03\x04\x00\x05".to_vec();
    payload.extend_from_slice(&nested(b"l", MAX_NESTING)[1..]);
    payload.pop();
    payload.extend_from_slice(b"7:dropped6:\x05\x06\x07\x08\x00\x09e");
    let message = PexMessage::decode(&payload).unwrap();
    assert_eq!(message.added_len(), 1);
    assert_eq!(message.dropped().collect::<Vec<_>>(), [addr("5.6.7.8:9")]);
}

#[test]
fn keys_in_any_order_are_read() {
    let payload = b"d8:dropped618:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\0\x027:added.f1:\x047:dropped6:\x05\x06\x07\x08\x00\x095:added6:\x01\x02\x03\x04\x00\x05e";
    assert_eq!(
        added(payload),
        [Peer::new(addr("1.2.3.4:5"), PeerFlags::UTP)]
    );
    // IPv4 first, whatever the wire order.
    assert_eq!(dropped(payload), [addr("5.6.7.8:9"), addr("[::1]:2")]);
}

#[test]
fn of_a_repeated_key_the_last_byte_string_wins() {
    let payload = b"d7:dropped6:\x01\x01\x01\x01\x00\x017:dropped6:\x02\x02\x02\x02\x00\x02e";
    assert_eq!(dropped(payload), [addr("2.2.2.2:2")]);
    // A later value of the wrong type does not erase an earlier string.
    let payload = b"d7:dropped6:\x01\x01\x01\x01\x00\x017:droppedi5ee";
    assert_eq!(dropped(payload), [addr("1.1.1.1:1")]);
    // A later empty string does.
    let payload = b"d7:dropped6:\x01\x01\x01\x01\x00\x017:dropped0:e";
    assert!(dropped(payload).is_empty());
}

#[test]
fn integers_negative_and_up_to_twenty_digits_are_skipped() {
    for int in [
        &b"i-1e"[..],
        b"i0e",
        b"i-99999999999999999999e",
        b"i99999999999999999999e",
    ] {
        let mut payload = b"d1:x".to_vec();
        payload.extend_from_slice(int);
        payload.extend_from_slice(b"7:dropped6:\x01\x01\x01\x01\x00\x01e");
        assert_eq!(dropped(&payload), [addr("1.1.1.1:1")], "{int:?}");
    }
}

#[test]
fn integers_of_twenty_one_digits_or_without_digits_are_refused() {
    assert_eq!(
        PexMessage::decode(b"d1:xi-999999999999999999999ee"),
        Err(DecodeError::LengthOverflow { offset: 4 })
    );
    assert_eq!(
        PexMessage::decode(b"d1:xi100000000000000000000ee"),
        Err(DecodeError::LengthOverflow { offset: 4 })
    );
    assert_eq!(
        PexMessage::decode(b"d1:xi-ee"),
        Err(DecodeError::Invalid { offset: 6 })
    );
    assert_eq!(
        PexMessage::decode(b"d1:xi--1ee"),
        Err(DecodeError::Invalid { offset: 6 })
    );
    assert_eq!(
        PexMessage::decode(b"d1:xiee"),
        Err(DecodeError::Invalid { offset: 5 })
    );
    // The same limit inside an unknown list.
    assert_eq!(
        PexMessage::decode(b"d1:xli1ei-999999999999999999999eee"),
        Err(DecodeError::LengthOverflow { offset: 8 })
    );
}

#[test]
fn string_lengths_of_twenty_one_digits_overflow() {
    // 21 digits, even when the value is small: refused at the length's offset.
    assert_eq!(
        PexMessage::decode(b"d1:x000000000000000000001:ae"),
        Err(DecodeError::LengthOverflow { offset: 4 })
    );
    assert_eq!(
        PexMessage::decode(b"d123456789012345678901:xe"),
        Err(DecodeError::LengthOverflow { offset: 1 })
    );
    // 20 digits past usize::MAX: refused as well.
    assert_eq!(
        PexMessage::decode(b"d1:x99999999999999999999:e"),
        Err(DecodeError::LengthOverflow { offset: 4 })
    );
    // 20 digits that fit but run past the input: the payload ended.
    assert_eq!(
        PexMessage::decode(b"d1:x10000000000000000000:e"),
        Err(DecodeError::UnexpectedEnd)
    );
    // usize::MAX itself: the end of the string overflows.
    assert_eq!(
        PexMessage::decode(b"d1:x18446744073709551615:e"),
        Err(DecodeError::LengthOverflow { offset: 4 })
    );
    // 20 digits with leading zeros: an ordinary length.
    assert_eq!(
        dropped(b"d7:dropped00000000000000000006:\x01\x01\x01\x01\x00\x01e"),
        [addr("1.1.1.1:1")]
    );
}
