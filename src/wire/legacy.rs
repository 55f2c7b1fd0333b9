//! The 0.1.x "legacy" encryption: AES-128-CBC, key/IV from EVP_BytesToKey(MD5).

use crate::error::WireError;

/// Key and IV derived from a passphrase the way Node's `crypto.createCipher('aes128', pass)` did.
#[derive(Clone)]
pub struct LegacyKey {
    key: [u8; 16],
    iv: [u8; 16],
}

impl LegacyKey {
    /// Derives key and IV from `passphrase`.
    pub fn from_passphrase(passphrase: &str) -> Self {
        let _ = passphrase;
        todo!("wire helper")
    }
    /// AES-128-CBC/PKCS#7 encryption.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let _ = (plaintext, &self.key, &self.iv);
        todo!("wire helper")
    }
    /// Decryption; bad length or padding is `WireError::Decrypt`.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, WireError> {
        let _ = ciphertext;
        todo!("wire helper")
    }
}
