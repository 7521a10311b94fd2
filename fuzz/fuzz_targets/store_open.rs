//! Fuzz target `store_open`: see [`vpnca_fuzz::store_open`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::store_open(data);
});
