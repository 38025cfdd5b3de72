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

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            self.state = mix(self.state ^ u64::from_le_bytes(word) ^ self.key)
                .wrapping_add(chunk.len() as u64);
        }
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
}
