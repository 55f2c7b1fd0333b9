//! Random identifiers in 0.1.x's formats.
use rand::Rng;

/// 16 lower-case hex chars (8 random bytes): an instance id.
pub fn instance_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    hex(&rng.gen::<[u8; 8]>())
}

/// 40 lower-case hex chars (20 random bytes): a `seqId` or `nonce`.
pub fn seq_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    hex(&rng.gen::<[u8; 20]>())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
