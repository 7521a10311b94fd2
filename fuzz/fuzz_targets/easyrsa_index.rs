//! Fuzz target `easyrsa_index`: see [`vpnca_fuzz::easyrsa_index`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::easyrsa_index(data);
});
