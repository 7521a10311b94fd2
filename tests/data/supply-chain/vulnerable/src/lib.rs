//! Never built: only Cargo.lock matters (see ../README.md).
