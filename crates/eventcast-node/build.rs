fn main() {
    // Only the Node addon needs napi's link setup; plain Rust builds skip it.
    if std::env::var_os("CARGO_FEATURE_NAPI").is_some() {
        napi_build::setup();
    }
}
