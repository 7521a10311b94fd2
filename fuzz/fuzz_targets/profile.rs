//! Fuzz target `profile`: see [`vpnca_fuzz::profile`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::profile(data);
});
