//! Frames on the wire, held apart from the event queue: a `Deliver` event carries a 4-byte
//! ticket instead of a 32-byte `Bytes`, so every queued event (most are wake-ups and dials)
//! is 40 bytes instead of 64.

use bytes::Bytes;

/// In-flight payloads by ticket; a delivered payload's slot is reused.
#[derive(Debug, Default)]
pub struct Payloads {
    slots: Vec<Option<Bytes>>,
    free: Vec<u32>,
}

impl Payloads {
    /// Holds `payload` until [`Payloads::take`] of the returned ticket.
    pub fn put(&mut self, payload: Bytes) -> u32 {
        if let Some(t) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(t as usize) {
                *slot = Some(payload);
                return t;
            }
        }
        self.slots.push(Some(payload));
        (self.slots.len() - 1) as u32
    }

    /// The payload of `ticket`, once.
    pub fn take(&mut self, ticket: u32) -> Option<Bytes> {
        let payload = self.slots.get_mut(ticket as usize)?.take();
        if payload.is_some() {
            self.free.push(ticket);
        }
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_return_their_payload_once_and_are_reused() {
        let mut p = Payloads::default();
        let a = p.put(Bytes::from_static(b"a"));
        let b = p.put(Bytes::from_static(b"b"));
        assert_eq!(p.take(a).as_deref(), Some(&b"a"[..]));
        assert_eq!(p.take(a), None);
        let c = p.put(Bytes::from_static(b"c"));
        assert_eq!(c, a);
        assert_eq!(p.take(b).as_deref(), Some(&b"b"[..]));
        assert_eq!(p.take(c).as_deref(), Some(&b"c"[..]));
    }
}
