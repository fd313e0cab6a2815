//! Comparing [`Facts`] with a [`Promise`], and rendering the differences. Pure: no I/O.
//!
//! What counts as a mismatch:
//! - every promised field the facts contradict (a promised `0` config var also accepts an
//!   undefined one);
//! - a config var whose `sysconfig` value and `pyconfig.h` line disagree (undefined equals
//!   `0`; a macro the header does not mention at all is not compared), and an unreadable
//!   `pyconfig.h`, because then that cross-check cannot be made;
//! - a failed behavioural check: `Py_IncRef` not raising `sys.gettotalrefcount()` when the
//!   promise has `gettotalrefcount = true`, a fresh object missing from `sys.getobjects`
//!   when it has `getobjects = true`; a check that could not run counts as failed;
//! - an allocator the interpreter could not report (no `_testinternalcapi`/`_testcapi`) when
//!   one is promised: a promise that cannot be checked is not kept;
//! - a promised sanitizer whose runtime's symbol does not resolve in the process or whose
//!   `-fsanitize=` is missing from `PY_CFLAGS` (and one that is there but not promised, where
//!   the promise lists sanitizers);
//! - a required module (`ssl`, `zlib`, `ctypes`) that fails to import.

use std::fmt;

use matrix::Promise;

use crate::{ConfigValue, Facts};

/// One way an interpreter breaks its promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was checked, e.g. `abiflags` or `sysconfig Py_DEBUG`.
    pub what: String,
    /// What the promise says, rendered.
    pub promised: String,
    /// What the interpreter showed, rendered.
    pub actual: String,
}

impl Mismatch {
    fn new(
        what: impl Into<String>,
        promised: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Mismatch { what: what.into(), promised: promised.into(), actual: actual.into() }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: promised {}, got {}", self.what, self.promised, self.actual)
    }
}

/// Every way `facts` break `promise`, in a fixed order; empty when the promise is kept.
pub fn compare(promise: &Promise, facts: &Facts) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if let Some(abiflags) = promise.abiflags.as_ref().filter(|a| **a != facts.abiflags) {
        out.push(Mismatch::new(
            "abiflags",
            format!("{abiflags:?}"),
            format!("{:?}", facts.abiflags),
        ));
    }
    promised_config_vars(&mut out, promise, facts);
    header_cross_check(&mut out, facts);
    if let Some(promised) = promise.gettotalrefcount {
        presence(&mut out, "sys.gettotalrefcount", promised, facts.has_gettotalrefcount);
    }
    refcount_behaviour(&mut out, promise, facts);
    if let Some(promised) = promise.getobjects {
        presence(&mut out, "sys.getobjects", promised, facts.has_getobjects);
    }
    getobjects_behaviour(&mut out, promise, facts);
    if let Some(promised) = promise.gil_enabled.filter(|g| *g != facts.gil_enabled) {
        out.push(Mismatch::new(
            "sys._is_gil_enabled()",
            promised.to_string(),
            facts.gil_enabled.to_string(),
        ));
    }
    allocator(&mut out, promise, facts);
    sanitizers(&mut out, promise, facts);
    for failed in facts.failed_imports.iter().filter(|f| f.required) {
        out.push(Mismatch::new(
            format!("import {}", failed.module),
            "importable (required)",
            failed.error.clone(),
        ));
    }
    out
}

/// `mismatches` as a diff, one block per mismatch: its name, `- promised`, `+ got`.
pub fn render_diff(mismatches: &[Mismatch]) -> String {
    if mismatches.is_empty() {
        return "no mismatches: the interpreter keeps its promise\n".to_owned();
    }
    let count = match mismatches.len() {
        1 => "1 mismatch".to_owned(),
        n => format!("{n} mismatches"),
    };
    let mut out = format!("{count} (- promised, + got):\n");
    for m in mismatches {
        out.push_str(&format!("{}\n  - {}\n  + {}\n", m.what, m.promised, m.actual));
    }
    out
}

/// Each promised config var against its `sysconfig` value.
fn promised_config_vars(out: &mut Vec<Mismatch>, promise: &Promise, facts: &Facts) {
    for (name, &promised) in &promise.config_vars {
        let what = format!("sysconfig {name}");
        let Some(var) = facts.config_vars.get(name) else {
            out.push(Mismatch::new(what, promised.to_string(), "not probed (add it to probe.py)"));
            continue;
        };
        let kept = match &var.sysconfig {
            Some(ConfigValue::Int(n)) => *n == promised,
            Some(ConfigValue::Text(_)) => false,
            None => promised == 0,
        };
        if !kept {
            out.push(Mismatch::new(what, promised.to_string(), show(var.sysconfig.as_ref())));
        }
    }
}

/// Every probed config var: `sysconfig` against `pyconfig.h`.
fn header_cross_check(out: &mut Vec<Mismatch>, facts: &Facts) {
    if let Some(error) = &facts.pyconfig_h_error {
        out.push(Mismatch::new("pyconfig.h", "readable, to cross-check sysconfig", error.clone()));
        return;
    }
    for (name, var) in &facts.config_vars {
        let Some(header) = &var.pyconfig_h else { continue };
        if var.sysconfig.clone().unwrap_or(ConfigValue::Int(0)) != *header {
            out.push(Mismatch::new(
                format!("pyconfig.h {name}"),
                format!("{} (as sysconfig reports)", show(var.sysconfig.as_ref())),
                header.to_string(),
            ));
        }
    }
}

/// Whether `Py_IncRef` moved the total, where the promise has `gettotalrefcount = true`.
fn refcount_behaviour(out: &mut Vec<Mismatch>, promise: &Promise, facts: &Facts) {
    let Some(check) = facts.refcount_check.as_ref() else { return };
    if promise.gettotalrefcount != Some(true) {
        return;
    }
    let actual = match (check.delta, &check.error) {
        (Some(delta), _) if delta >= 1 => return,
        (Some(delta), _) => format!("it rose by {delta}"),
        (None, error) => not_run(error.as_deref()),
    };
    out.push(Mismatch::new(
        "refcount total",
        "Py_IncRef raises sys.gettotalrefcount() by at least 1",
        actual,
    ));
}

/// Whether `sys.getobjects` listed a fresh object, where the promise has `getobjects = true`.
fn getobjects_behaviour(out: &mut Vec<Mismatch>, promise: &Promise, facts: &Facts) {
    let Some(check) = facts.getobjects_check.as_ref() else { return };
    if promise.getobjects != Some(true) {
        return;
    }
    let actual = match (check.found, &check.error) {
        (Some(true), _) => return,
        (Some(false), _) => "the instance is not listed".to_owned(),
        (None, error) => not_run(error.as_deref()),
    };
    out.push(Mismatch::new("sys.getobjects(0, cls)", "lists a fresh instance of cls", actual));
}

/// The allocator's name; one the interpreter could not report is a mismatch.
fn allocator(out: &mut Vec<Mismatch>, promise: &Promise, facts: &Facts) {
    let Some(promised) = &promise.allocator else { return };
    let actual = match &facts.allocator {
        Some(actual) if actual == promised => return,
        Some(actual) => {
            let pythonmalloc = match &facts.pythonmalloc {
                Some(value) => format!("PYTHONMALLOC={value}"),
                None => "PYTHONMALLOC unset".to_owned(),
            };
            format!("{actual:?} ({pythonmalloc})")
        }
        None => format!(
            "could not read allocator ({})",
            facts.allocator_error.as_deref().unwrap_or("no reason given")
        ),
    };
    out.push(Mismatch::new("allocator", format!("{promised:?}"), actual));
}

/// Each known sanitizer against the promised list: a promised one must have its runtime in
/// the process and its flag in `PY_CFLAGS`; one not promised must have neither.
fn sanitizers(out: &mut Vec<Mismatch>, promise: &Promise, facts: &Facts) {
    let Some(promised) = &promise.sanitizers else { return };
    for (name, _) in matrix::SANITIZERS {
        let wanted = promised.iter().any(|s| s == name);
        let what = format!("sanitizer {name}");
        let Some(check) = facts.sanitizers.get(*name) else {
            if wanted {
                out.push(Mismatch::new(
                    what,
                    "in the interpreter",
                    "not probed (add it to probe.py)",
                ));
            }
            continue;
        };
        let runtime = match (check.runtime, &check.error) {
            (Some(true), _) => format!("{} resolves", check.symbol),
            (Some(false), _) => format!("{} does not resolve", check.symbol),
            (None, error) => not_run(error.as_deref()),
        };
        let flag = if check.cflag { "PY_CFLAGS has it" } else { "PY_CFLAGS lacks it" };
        let actual = format!("{runtime}; {flag}");
        if wanted && !check.present() {
            out.push(Mismatch::new(
                what,
                format!(
                    "in the interpreter: {} resolves, -fsanitize={name} in PY_CFLAGS",
                    check.symbol
                ),
                actual,
            ));
        } else if !wanted && (check.runtime == Some(true) || check.cflag) {
            out.push(Mismatch::new(what, "absent", actual));
        }
    }
}

fn presence(out: &mut Vec<Mismatch>, what: &str, promised: bool, actual: bool) {
    let word = |present: bool| if present { "present" } else { "absent" };
    if promised != actual {
        out.push(Mismatch::new(what, word(promised), word(actual)));
    }
}

fn show(value: Option<&ConfigValue>) -> String {
    value.map_or_else(|| "undefined".to_owned(), ConfigValue::to_string)
}

fn not_run(error: Option<&str>) -> String {
    format!("the check could not run ({})", error.unwrap_or("no reason given"))
}
