//! Fuzz target `ovpn`: see [`vpnca_fuzz::ovpn`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vpnca_fuzz::ovpn(data);
});
