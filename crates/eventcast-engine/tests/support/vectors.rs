//! The real eventcast 0.1.2 datagrams (`crates/eventcast-engine/tests/fixtures/eventcast-0.1.2.json`,
//! a copy of the steering repository's `shared/vectors`), shared by the test
//! files that feed them through the codec and the engine.
#![allow(dead_code)] // each test file uses a different part

use std::path::PathBuf;

/// One case of `eventcast-0.1.2.json`.
pub struct Case {
    pub name: String,
    pub event: String,
    /// Passphrase of the legacy scheme, if the case is encrypted.
    pub encrypt: Option<String>,
    pub max_payload_size: usize,
    /// Datagrams in send order.
    pub datagrams: Vec<Vec<u8>>,
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The fixture file inside the repository.
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventcast-0.1.2.json")
}

/// Every case of the fixture.
pub fn load() -> Vec<Case> {
    let path = fixture_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let cases: Vec<Case> = json["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            event: c["event"].as_str().unwrap().to_owned(),
            encrypt: c["encrypt"].as_str().map(str::to_owned),
            max_payload_size: c["maxPayloadSize"].as_u64().unwrap() as usize,
            datagrams: c["datagrams"].as_array().unwrap().iter().map(|d| unhex(d.as_str().unwrap())).collect(),
        })
        .collect();
    cases
}
