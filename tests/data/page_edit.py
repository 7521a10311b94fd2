#!/usr/bin/env python3
"""Page-level edits of a vpnca database, as someone who can write the file (but not the
passphrase) can make them: the table, its MACs and the state proofs left as they are, only
what SQLite's indexes say changed. For tests/untrusted_storage.rs; needs a small store (every
index of `certs` one leaf page).

  page_edit.py index DB INDEX SQL
      Runs SQL on a copy of DB and copies INDEX's (root) page of the copy into DB: the table
      pages stay, the index now disagrees with them.
  page_edit.py ghost DB NAME DER_FILE
      Plants a second `certs` row carrying the serial of NAME's valid record and the
      certificate DER_FILE, reachable only through the `certs_name` index (which no longer
      lists the real row); the serial index and the others are left as they were.
"""
import os, shutil, sqlite3, sys


def page_size_and_roots(db):
    c = sqlite3.connect(db)
    roots = dict(c.execute(
        "SELECT name, rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'certs'"))
    ps = c.execute("PRAGMA page_size").fetchone()[0]
    c.close()
    return ps, roots


def page(buf, n, ps):
    return buf[(n - 1) * ps:n * ps]


def index(db, idx, sql):
    ps, roots = page_size_and_roots(db)
    copy = db + ".index-copy"
    shutil.copy(db, copy)
    c = sqlite3.connect(copy)
    c.executescript(sql)
    c.commit()
    c.close()
    out = bytearray(open(db, "rb").read())
    edited = open(copy, "rb").read()
    os.remove(copy)
    root = roots[idx]
    assert out[(root - 1) * ps] == 10 and edited[(root - 1) * ps] == 10, \
        f"{idx} is not one leaf page"
    out[(root - 1) * ps:root * ps] = page(edited, root, ps)
    open(db, "wb").write(out)


def ghost(db, name, der_file):
    der = open(der_file, "rb").read()
    ps, roots = page_size_and_roots(db)
    c = sqlite3.connect(db)
    rid, serial, nb, na, created, kind, profile = c.execute(
        "SELECT id, serial, not_before, not_after, created_at, kind, profile FROM certs "
        "WHERE name = ? AND state = 'valid'", (name,)).fetchone()
    c.close()
    placeholder = "Q" * len(serial)
    with_row, without_real = db + ".ghost1", db + ".ghost2"
    shutil.copy(db, with_row)
    c = sqlite3.connect(with_row)
    c.execute(
        "INSERT INTO certs (serial, name, kind, profile, state, not_before, not_after, "
        "created_at, cert_der, key_blob, mac) VALUES (?, ?, ?, ?, 'valid', ?, ?, ?, ?, "
        "(SELECT key_blob FROM certs WHERE id = ?), x'00')",
        (placeholder, name, kind, profile, nb, na, created, der, rid))
    c.commit()
    c.close()
    shutil.copy(with_row, without_real)
    c = sqlite3.connect(without_real)
    c.execute("DELETE FROM certs WHERE id = ?", (rid,))
    c.commit()
    c.close()
    orig = open(db, "rb").read()
    out = bytearray(open(with_row, "rb").read())
    no_real = open(without_real, "rb").read()
    os.remove(with_row)
    os.remove(without_real)
    for idx, root in roots.items():
        src = no_real if idx == "certs_name" else orig
        assert page(src, root, ps)[0] == 10 and out[(root - 1) * ps] == 10, \
            f"{idx} is not one leaf page"
        out[(root - 1) * ps:root * ps] = page(src, root, ps)
    assert out.count(placeholder.encode()) == 1
    out = out.replace(placeholder.encode(), serial.encode())
    open(db, "wb").write(out)


if __name__ == "__main__":
    if sys.argv[1] == "index":
        index(*sys.argv[2:5])
    elif sys.argv[1] == "ghost":
        ghost(*sys.argv[2:5])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
