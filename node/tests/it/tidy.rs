//! Tidy tests (rust-analyzer's practice): repository conventions that review would otherwise
//! have to remember, checked on every test run.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root (`node/` is one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("node/ has a parent").to_path_buf()
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// File names (not paths) directly inside `dir`.
fn file_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_source_file_starts_with_a_module_doc_comment() {
    let root = workspace_root();
    let mut checked = 0;
    let mut missing = Vec::new();
    for crate_src in ["node/src", "protocol/src", "federation-tests/src"] {
        for path in rust_files(&root.join(crate_src)) {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
            checked += 1;
            if !text.lines().next().is_some_and(|line| line.starts_with("//!")) {
                missing.push(path.strip_prefix(&root).unwrap_or(&path).display().to_string());
            }
        }
    }
    // Guards against a wrong root making the test vacuous.
    assert!(checked > 20, "only {checked} source files found under {}", root.display());
    assert!(
        missing.is_empty(),
        "files whose first line is not a `//!` comment saying what the file is for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn postgres_and_sqlite_migrations_have_the_same_file_names() {
    let root = workspace_root();
    let postgres = file_names(&root.join("migrations/postgres"));
    let sqlite = file_names(&root.join("migrations/sqlite"));
    assert!(!postgres.is_empty(), "no migrations found under migrations/postgres");
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    assert!(
        only_postgres.is_empty() && only_sqlite.is_empty(),
        "migration directories differ: only in postgres {only_postgres:?}, only in sqlite \
         {only_sqlite:?}"
    );
}
