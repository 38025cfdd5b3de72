//! A small keyed hash: the book's only source of "randomness", drawn from the host's secret.
//!
//! Not cryptographic. It mixes 64-bit words with multiply-xorshift rounds (the splitmix64
//! finaliser) keyed by the 16-byte secret, so an attacker who does not know the secret cannot
//! predict tie orders or aim addresses at one hash bucket; one who learns outputs could in
//! principle recover the key, which only costs the tie-break its unpredictability.

use std::hash::{BuildHasher, Hasher};

/// The key, split from the host's secret.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key(u64, u64);

impl Key {
    pub(crate) fn new(secret: [u8; 16]) -> Self {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = secret;
        Self(
            u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            u64::from_le_bytes([i, j, k, l, m, n, o, p]),
        )
    }

    /// The keyed hash of `bytes`, folded to 32 bits (the tie-break).
    pub(crate) fn tie(self, bytes: &[u8]) -> u32 {
        let mut h = self.build_hasher();
        h.write(bytes);
        let x = h.finish();
        (x >> 32) as u32 ^ x as u32
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hasher for the book's maps: no per-process randomness (the book draws none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedHasher {
    state: u64,
    key: u64,
}

impl KeyedHasher {
    /// One round: a little-endian word of `len` (≤ 8) bytes.
    fn absorb(&mut self, word: u64, len: u64) {
        self.state = mix(self.state ^ word ^ self.key).wrapping_add(len);
    }
}

/// The integer writers are `write` of the native bytes, as `Hasher`'s defaults are, without
/// the byte loop: every key the book hashes (IPs, ports, enum tags, length prefixes) goes
/// through them on each `add`.
impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.absorb(u64::from_le_bytes(word), 8);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.absorb(u64::from_le_bytes(word), rest.len() as u64);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.absorb(u64::from(i), 1);
    }

    fn write_u16(&mut self, i: u16) {
        self.absorb(u64::from(u16::from_le_bytes(i.to_ne_bytes())), 2);
    }

    fn write_u32(&mut self, i: u32) {
        self.absorb(u64::from(u32::from_le_bytes(i.to_ne_bytes())), 4);
    }

    fn write_u64(&mut self, i: u64) {
        self.absorb(u64::from_le_bytes(i.to_ne_bytes()), 8);
    }

    fn write_usize(&mut self, i: usize) {
        let bytes = i.to_ne_bytes();
        self.write(&bytes);
    }

    fn finish(&self) -> u64 {
        mix(self.state ^ self.key.rotate_left(32))
    }
}

impl BuildHasher for Key {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            state: self.0,
            key: self.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_secrets_different_ties() {
        let a = Key::new([1; 16]);
        let b = Key::new([2; 16]);
        let differ = (0u8..32).filter(|i| a.tie(&[*i]) != b.tie(&[*i])).count();
        assert!(differ > 28);
        assert_eq!(a.tie(b"x"), Key::new([1; 16]).tie(b"x"));
    }

    /// The integer writers hash exactly what `write` of their native bytes hashes (so the
    /// maps' layout, and anything that iterates them, did not change with them).
    #[test]
    fn integer_writers_match_the_byte_writer() {
        let key = Key::new([9; 16]);
        let by_bytes = |bytes: &[u8]| {
            let mut h = key.build_hasher();
            h.write(bytes);
            h.finish()
        };
        let one = |f: &dyn Fn(&mut KeyedHasher)| {
            let mut h = key.build_hasher();
            f(&mut h);
            h.finish()
        };
        assert_eq!(one(&|h| h.write_u8(0xab)), by_bytes(&[0xab]));
        assert_eq!(
            one(&|h| h.write_u16(0xabcd)),
            by_bytes(&0xabcdu16.to_ne_bytes())
        );
        let w32 = 0xdead_beefu32;
        assert_eq!(one(&|h| h.write_u32(w32)), by_bytes(&w32.to_ne_bytes()));
        let w64 = 0x0123_4567_89ab_cdefu64;
        assert_eq!(one(&|h| h.write_u64(w64)), by_bytes(&w64.to_ne_bytes()));
        assert_eq!(
            one(&|h| h.write_usize(77)),
            by_bytes(&77usize.to_ne_bytes())
        );
        let odd: Vec<u8> = (0..21).collect();
        let mut h = key.build_hasher();
        for chunk in odd.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h.absorb(u64::from_le_bytes(word), chunk.len() as u64);
        }
        assert_eq!(h.finish(), by_bytes(&odd));
    }
}
