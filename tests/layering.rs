//! The storage engine is known only to its one file (docs/store-format.md, "The engine"):
//! every file under `src/` but `src/store/sqlite.rs` is free of SQL and of the SQLite crate's
//! name, so the PKI modules and the store's own modules read and write records through
//! `store::engine::Engine`, never through SQL. A failure names each FILE:LINE.
//!
//! Fails when: a `SELECT` (or any other statement below) or a `rusqlite` type is written in
//! another file, e.g. `src/store/state.rs` (seen failing on a planted `SELECT`, docs/testing.md).

use std::path::{Path, PathBuf};

/// The one file allowed to hold SQL and name the engine's crate.
const ENGINE_FILE: &str = "src/store/sqlite.rs";

/// What marks SQL (statement keywords as SQL writes them, upper case) or the engine's crate.
fn findings(line: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (needle, what) in [
        ("rusqlite", "the SQLite crate"),
        ("SELECT ", "SELECT"),
        ("INSERT INTO", "INSERT INTO"),
        ("DELETE FROM", "DELETE FROM"),
        ("CREATE TABLE", "CREATE TABLE"),
        ("CREATE INDEX", "CREATE INDEX"),
        ("PRAGMA", "PRAGMA"),
    ] {
        if line.contains(needle) {
            out.push(what);
        }
    }
    // `UPDATE <table> SET`.
    let words: Vec<&str> = line.split_whitespace().collect();
    if words
        .windows(3)
        .any(|w| w[0].trim_start_matches('"') == "UPDATE" && w[2] == "SET")
    {
        out.push("UPDATE … SET");
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn sql_lives_only_in_the_sqlite_engine_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with(ENGINE_FILE)),
        "{ENGINE_FILE} is missing"
    );
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).expect("under the crate");
        if rel == Path::new(ENGINE_FILE) {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("source file");
        for (i, line) in text.lines().enumerate() {
            for what in findings(line) {
                bad.push(format!(
                    "{}:{}: {what}: {}",
                    rel.display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "SQL or the SQLite crate outside {ENGINE_FILE} (move it into the engine, behind store::engine::Engine):\n{}",
        bad.join("\n")
    );
}

/// The matcher itself sees what it must (so an empty result above means something).
#[test]
fn the_matcher_sees_sql() {
    for (line, want) in [
        ("conn.query_row(\"SELECT v FROM meta\", [], f)", "SELECT"),
        ("\"UPDATE certs SET mac = ?1\"", "UPDATE … SET"),
        ("use rusqlite::Connection;", "the SQLite crate"),
        ("x.execute(\"DELETE FROM meta\")", "DELETE FROM"),
        ("\"PRAGMA quick_check\"", "PRAGMA"),
    ] {
        assert!(findings(line).contains(&want), "{line}");
    }
    assert!(findings("/// Updates the setting (see `Store::write`).").is_empty());
}
