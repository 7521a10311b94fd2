//! Fuzz target `csr`: see [`vpnca_fuzz::csr`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::csr(data);
});
