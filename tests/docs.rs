//! The repository stands on its own: every relative link in its Markdown files points at a file
//! or directory inside it, and nothing sends a reader to `../shared` or another place outside.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        root.join("README.md"),
        root.join("CHANGELOG.md"),
        root.join("BENCHMARKS.md"),
    ];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_points_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let root = root.canonicalize().unwrap();
    let mut bad = Vec::new();
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("../shared") {
            bad.push(format!("{}: mentions ../shared", file.display()));
        }
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with('#')
            {
                continue;
            }
            let target = link.split('#').next().unwrap();
            let resolved = file.parent().unwrap().join(target);
            match resolved.canonicalize() {
                Ok(path) if path.starts_with(&root) => {}
                Ok(path) => bad.push(format!(
                    "{}: {link} leaves the repository ({})",
                    file.display(),
                    path.display()
                )),
                Err(_) => bad.push(format!("{}: {link} does not exist", file.display())),
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
