//! Golden tests for `compile`: every `testdata/<case>.in.yaml`
//! (multi-document Kubernetes YAML) is compiled and the `Compiled` value,
//! serialised as YAML, must equal `<case>.out.yaml` byte for byte.
//!
//! `UPDATE_GOLDEN=1 cargo test -p tollgate-compile --test integration golden`
//! rewrites the expected files; review the diff before committing.
//!
//! A document `apiVersion: tollgate.dev/test, kind: CompileOptions` in an
//! input sets the options of that case (`controllerName`, `bindAddress`,
//! `listenerPortOffset`); otherwise the defaults apply with a fixed `now`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tollgate_compile::resources::Resources;
use tollgate_compile::{CompileOptions, Compiled, compile};

const NOW: &str = "2025-01-01T00:00:00Z";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".in.yaml").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Reads a case's input into resources and options.
fn load(case: &str) -> (Resources, CompileOptions) {
    let text = std::fs::read_to_string(cases_dir().join(format!("{case}.in.yaml"))).unwrap();
    let mut resources = Resources::default();
    let mut options = CompileOptions {
        now: NOW.to_string(),
        ..CompileOptions::default()
    };
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        if value["kind"] == "CompileOptions" {
            let get = |k: &str| value[k].as_str().map(str::to_string);
            options.controller_name = get("controllerName").unwrap_or(options.controller_name);
            options.bind_address = get("bindAddress").unwrap_or(options.bind_address);
            if let Some(provisioned) = value["provisioned"].as_bool() {
                options.provisioned = provisioned;
            }
            if let Some(offset) = value["listenerPortOffset"].as_u64() {
                options.listener_port_offset = u16::try_from(offset).unwrap();
            }
            continue;
        }
        resources
            .insert_document(value)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    (resources, options)
}

/// Every case compiles to exactly its golden output, every snapshot is
/// valid, and the output reads back as the same `Compiled` value.
#[test]
fn golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let names = case_names();
    assert!(!names.is_empty(), "no cases in {}", cases_dir().display());
    let mut failures = String::new();
    for case in &names {
        let (resources, options) = load(case);
        let compiled = compile(&resources, &options);
        for (gateway, snapshot) in &compiled.snapshots {
            if let Err(e) = snapshot.validate() {
                writeln!(failures, "{case}: snapshot {gateway} is invalid: {e}").unwrap();
            }
        }
        let again = compile(&resources, &options);
        if again != compiled {
            writeln!(failures, "{case}: compile is not deterministic").unwrap();
        }
        let got = serde_yaml::to_string(&compiled).unwrap();
        let out_path = cases_dir().join(format!("{case}.out.yaml"));
        if update {
            std::fs::write(&out_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&out_path).unwrap_or_default();
        if got != want {
            writeln!(
                failures,
                "{case}: output differs from {case}.out.yaml (- want, + got):"
            )
            .unwrap();
            failures.push_str(&diff(&want, &got));
            continue;
        }
        let read_back: Compiled = serde_yaml::from_str(&want).unwrap();
        if read_back != compiled {
            writeln!(
                failures,
                "{case}: {case}.out.yaml does not read back as the output"
            )
            .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{failures}\nrun with UPDATE_GOLDEN=1 to accept the new output"
    );
}

/// Every input has a golden output and every output has an input.
#[test]
fn no_orphan_files() {
    let names = case_names();
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let case = file
            .strip_suffix(".out.yaml")
            .or_else(|| file.strip_suffix(".in.yaml"))
            .unwrap_or_else(|| panic!("unexpected file {file}"));
        assert!(names.iter().any(|n| n == case), "{file} has no input");
        if std::env::var_os("UPDATE_GOLDEN").is_none() {
            assert!(
                cases_dir().join(format!("{case}.out.yaml")).exists(),
                "{case} has no golden output"
            );
        }
    }
}

/// A line diff (longest common subsequence) with three lines of context.
fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(3);
        let hi = (k + 3).min(ops.len() - 1);
        ops[lo..=hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            writeln!(out, "{c} {line}").unwrap();
        } else {
            skipped = true;
        }
    }
    out
}
