//! Fuzz target `batch`: see [`vpnca_fuzz::batch`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::batch(data);
});
