//! Fuzz target `easyrsa_key`: see [`vpnca_fuzz::easyrsa_key`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::easyrsa_key(data);
});
