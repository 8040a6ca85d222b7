//! The crate's layers, bottom first (ARCHITECTURE.md draws them). A module
//! imports only modules of a lower rank: leaves in the order listed (each may
//! use the ones before it), stages only leaves — never another stage —,
//! `call` the stages, `api` the call path, and `config` then `server`
//! assemble. The test below reads `src/` and fails on any import that goes
//! sideways or up, so a cycle cannot come back unnoticed.

/// Rank, then the top-level modules at that rank. Modules at one rank do
/// not import each other, except leaves, which may import leaves listed
/// before them.
pub const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "json", "glob", "hash", "timefmt", "meters", "method", "settings", "proto", "domain",
            "error", "events", "upstream",
        ],
    ),
    (
        "stages",
        &["auth", "limits", "audit", "backend", "telemetry"],
    ),
    ("call", &["call"]),
    ("api", &["api"]),
    ("config", &["config"]),
    ("server", &["server"]),
    ("app", &["app"]),
];

/// Every `.rs` file under `dir`, for the tests that read the source
/// (this one, and `meters`'s).
#[cfg(test)]
pub(crate) fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::{LAYERS, rust_files};

    /// (rank, position among the leaves) of a top-level module.
    fn rank(module: &str) -> Option<(usize, usize)> {
        LAYERS.iter().enumerate().find_map(|(rank, (_, mods))| {
            mods.iter()
                .position(|m| *m == module)
                .map(|i| (rank, if rank == 0 { i } else { 0 }))
        })
    }

    /// The top-level modules a file's non-test code names as `crate::x`,
    /// in a `use crate::{x, ...}` group too. Comments are skipped.
    fn imports(text: &str) -> BTreeSet<String> {
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut found = BTreeSet::new();
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level names of the group: after `{` and after each `,`
                // at depth 0.
                let mut depth = 0;
                let mut start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && !c.is_whitespace() => {
                            found.insert(ident(&group[j..]));
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(rest));
            }
        }
        found
    }

    #[test]
    fn no_module_imports_sideways_or_up() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if ["lib", "main", "layers"].contains(&top.as_str()) {
                continue;
            }
            let from = rank(&top).unwrap_or_else(|| panic!("{top} is in no layer of LAYERS"));
            seen.insert(top.clone());
            for to in imports(&std::fs::read_to_string(&file).unwrap()) {
                if to == top {
                    continue;
                }
                let Some(target) = rank(&to) else { continue };
                let allowed = if from.0 == 0 && target.0 == 0 {
                    target.1 < from.1
                } else {
                    target.0 < from.0
                };
                if !allowed {
                    wrong
                        .entry(rel.display().to_string())
                        .or_insert_with(Vec::new)
                        .push(to);
                }
            }
        }
        assert!(wrong.is_empty(), "imports against the layers: {wrong:?}");
        // Every layer's module exists: the table is not stale.
        for (_, mods) in LAYERS {
            for m in *mods {
                assert!(
                    seen.contains(*m),
                    "LAYERS names {m}, which src/ does not hold"
                );
            }
        }
    }

    #[test]
    fn the_import_reader_sees_groups_and_paths_and_skips_comments() {
        let text = "use crate::{audit::X, auth::{a, b}, glob};\nfn f() { crate::limits::y(); }\n// crate::server\n#[cfg(test)]\nmod tests { use crate::api; }";
        let got: Vec<_> = imports(text).into_iter().collect();
        assert_eq!(got, ["audit", "auth", "glob", "limits"]);
    }
}
