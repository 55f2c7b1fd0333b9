//! The 0.1.x "legacy" encryption: AES-128-CBC, key/IV from EVP_BytesToKey(MD5).
//!
//! This is what Node's deprecated `crypto.createCipher('aes128', pass)` did:
//! `D1 = MD5(pass)`, `D2 = MD5(D1 || pass)`, key = D1, IV = D2, no salt, one
//! iteration. The IV is the same for every packet and nothing is
//! authenticated: keep it only for talking to 0.1.x fleets.

use crate::error::WireError;
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;

/// Key and IV derived from a passphrase the way Node's `crypto.createCipher('aes128', pass)` did.
#[derive(Clone)]
pub struct LegacyKey {
    key: [u8; 16],
    iv: [u8; 16],
}

impl std::fmt::Debug for LegacyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyKey(..)")
    }
}

impl LegacyKey {
    /// Derives key and IV from `passphrase` (its UTF-8 bytes, as Node did).
    pub fn from_passphrase(passphrase: &str) -> Self {
        let d1: [u8; 16] = Md5::digest(passphrase.as_bytes()).into();
        let mut h = Md5::new();
        h.update(d1);
        h.update(passphrase.as_bytes());
        let d2: [u8; 16] = h.finalize().into();
        LegacyKey { key: d1, iv: d2 }
    }
    /// AES-128-CBC/PKCS#7 encryption.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        Enc::new(&self.key.into(), &self.iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    }
    /// Decryption; bad length or padding is `WireError::Decrypt`.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, WireError> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(WireError::Decrypt("legacy ciphertext is not a whole number of AES blocks"));
        }
        Dec::new(&self.key.into(), &self.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| WireError::Decrypt("legacy decryption failed (wrong key or corrupt data)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_md5() {
        // `openssl enc -aes-128-cbc -md md5 -nosalt -P -k password`
        let k = LegacyKey::from_passphrase("password");
        assert_eq!(crate::wire::ids::hex(&k.key), "5f4dcc3b5aa765d61d8327deb882cf99");
        assert_eq!(crate::wire::ids::hex(&k.iv), "2b95990a9151374abd8ff8c5a7a0fe08");
    }

    #[test]
    fn round_trip_and_errors() {
        let k = LegacyKey::from_passphrase("NSA-KEY");
        for n in [0usize, 1, 15, 16, 17, 1000] {
            let p: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let c = k.encrypt(&p);
            assert_eq!(c.len(), (n / 16 + 1) * 16);
            assert_eq!(k.decrypt(&c).unwrap(), p);
        }
        assert!(matches!(k.decrypt(&[]), Err(WireError::Decrypt(_))));
        assert!(matches!(k.decrypt(&[0; 15]), Err(WireError::Decrypt(_))));
        let c = k.encrypt(b"hello");
        let other = LegacyKey::from_passphrase("other");
        // A wrong key almost always breaks the padding; it must never panic.
        let _ = other.decrypt(&c);
        assert!(!matches!(other.decrypt(&c), Ok(p) if p == b"hello"));
    }
}
