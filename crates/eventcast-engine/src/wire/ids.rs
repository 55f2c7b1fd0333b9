//! Identifiers in 0.1.x's formats: generating them, and the rule every
//! received one must pass.
//!
//! 0.1.x (and this crate) writes an instance id as 16 lower-case hex chars
//! (8 random bytes) and a `seqId` or `nonce` as 40 lower-case hex chars (a
//! SHA-1 digest), as the 0.1.2 vectors show. A received `id`, `seqId`, `to`
//! that is anything else (another length, non-hex, upper-case hex) is
//! refused: no implementation writes it, and a fixed format is what lets a
//! receiver keep identifiers as fixed-size keys ([`parse_hex`]) whose memory
//! does not depend on what a sender puts in them. Upper-case is refused
//! rather than folded so that one identifier has one spelling: 0.1.x
//! compares them as strings.
use rand::Rng;

/// Length of an instance id in hex chars.
pub const INSTANCE_ID_LEN: usize = 16;
/// Length of a `seqId` in hex chars.
pub const SEQ_ID_LEN: usize = 40;

/// 16 lower-case hex chars (8 random bytes): an instance id.
pub fn instance_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    hex(&rng.gen::<[u8; 8]>())
}

/// 40 lower-case hex chars (20 random bytes): a `seqId` or `nonce`.
pub fn seq_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    SeqId::random(rng).as_str().to_string()
}

/// A random `seqId` or `nonce` (40 lower-case hex chars) held on the stack:
/// the send path writes one into every message, without an allocation.
#[derive(Clone, Copy)]
pub struct SeqId([u8; SEQ_ID_LEN]);

impl SeqId {
    /// 20 random bytes in hex. One `fill_bytes` draws the 20 bytes (five
    /// words of the generator), not twenty samples of a word each.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SEQ_ID_LEN / 2];
        rng.fill_bytes(&mut bytes);
        let mut out = [0u8; SEQ_ID_LEN];
        hex_into(&bytes, &mut out);
        SeqId(out)
    }

    /// The 40 hex chars.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits were written: never the empty fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[(b >> 4) as usize];
        pair[1] = HEX_DIGITS[(b & 15) as usize];
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Only ASCII hex digits were written: never the empty fallback.
    String::from_utf8(out).unwrap_or_default()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The `N` bytes written as exactly `2 * N` lower-case hex chars, if `s` is that.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Whether `s` is a valid instance id (16 lower-case hex chars).
pub fn is_instance_id(s: &str) -> bool {
    parse_hex::<8>(s).is_some()
}

/// Whether `s` is a valid `seqId` (40 lower-case hex chars).
pub fn is_seq_id(s: &str) -> bool {
    parse_hex::<20>(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_write_is_what_we_accept() {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            assert!(is_instance_id(&instance_id(&mut rng)));
            assert!(is_seq_id(&seq_id(&mut rng)));
        }
        assert_eq!(parse_hex::<8>("a1b2c3d4e5f60718"), Some([0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18]));
        assert!(is_seq_id("af505d07714efee574f56fcf6f9dd7f5b168a355")); // a 0.1.2 vector
        for bad in [
            "",
            "a1b2c3d4e5f6071",
            "a1b2c3d4e5f607180",
            "A1B2C3D4E5F60718",
            "g1b2c3d4e5f60718",
            "a1b2c3d4e5f6071\u{e9}",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
        assert!(!is_seq_id(&"a".repeat(60_000)));
        assert!(!is_seq_id(&"ab".repeat(19)));
    }

    #[test]
    fn seq_id_is_the_hex_of_the_generators_next_20_bytes() {
        use rand::{RngCore, SeedableRng};
        let mut a = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = a.clone();
        let mut bytes = [0u8; 20];
        for _ in 0..50 {
            let id = SeqId::random(&mut a);
            b.fill_bytes(&mut bytes);
            assert_eq!(id.as_str(), hex(&bytes));
            assert!(is_seq_id(id.as_str()));
        }
        // Distinct (a fixed or repeating id would break chunk groups).
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| seq_id(&mut a)).collect();
        assert_eq!(ids.len(), 1000);
    }
}
