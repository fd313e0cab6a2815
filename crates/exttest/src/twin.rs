//! The pure-Python twin: many C extensions ship a pure-Python implementation of the same API
//! behind an environment switch (zope's `PURE_PYTHON`, wrapt's `WRAPT_DISABLE_EXTENSIONS`,
//! aio-libs' `*_NO_EXTENSIONS`). A `ref-leak` finding's test is run again with the switch on
//! ([`crate::invocation::RunKind::Twin`]): the same growth there is the test's own state (a
//! test that keeps what it makes, whatever implements it), and the test is not judged, with
//! that evidence; growth only with the C code stays the finding and says "0 with the
//! pure-Python twin". A suite declares its switch (`twin-env`), or [`known_switch`] knows
//! it by the distribution's name. Pure.

use std::collections::BTreeMap;

use crate::{
    events::{Event, TestOutcome},
    evidence::TwinResult,
    finding::{Finding, FindingKind},
    result::{Counts, NotJudged},
    suite::Suite,
};

/// Switches projects document, by normalized distribution name (PEP 503).
const KNOWN: &[(&str, &str, &str)] = &[
    ("aiohttp", "AIOHTTP_NO_EXTENSIONS", "1"),
    ("btrees", "PURE_PYTHON", "1"),
    ("frozenlist", "FROZENLIST_NO_EXTENSIONS", "1"),
    ("msgpack", "MSGPACK_PUREPYTHON", "1"),
    ("multidict", "MULTIDICT_NO_EXTENSIONS", "1"),
    ("persistent", "PURE_PYTHON", "1"),
    ("propcache", "PROPCACHE_NO_EXTENSIONS", "1"),
    ("wrapt", "WRAPT_DISABLE_EXTENSIONS", "true"),
    ("yarl", "YARL_NO_EXTENSIONS", "1"),
    ("zope-hookable", "PURE_PYTHON", "1"),
    ("zope-i18nmessageid", "PURE_PYTHON", "1"),
    ("zope-interface", "PURE_PYTHON", "1"),
    ("zope-proxy", "PURE_PYTHON", "1"),
    ("zope-security", "PURE_PYTHON", "1"),
];

/// The documented switch to the pure-Python implementation of the distribution `dist`, if
/// this tool knows one.
pub fn known_switch(dist: &str) -> Option<(&'static str, &'static str)> {
    let name = crate::environment::normalize(dist);
    KNOWN.iter().find(|(d, _, _)| *d == name).map(|(_, k, v)| (*k, *v))
}

/// The switch to use for `suite`, whose distribution is `dist`: the suite's `twin-env`, else
/// the known one; empty when the project has none.
pub fn switch(suite: &Suite, dist: &str) -> Vec<(String, String)> {
    if !suite.twin_env.is_empty() {
        return suite.twin_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    known_switch(dist).map(|(k, v)| vec![(k.to_owned(), v.to_owned())]).unwrap_or_default()
}

/// `NAME=VALUE NAME=VALUE`.
pub fn describe(switch: &[(String, String)]) -> String {
    switch.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// The twin's result for each of `tests`, from the twin run's `events`; `signals` are the
/// signals that decide (`refs`, `blocks`).
pub fn results(
    env: &str,
    tests: &[String],
    events: &[Event],
    signals: &[&str],
) -> BTreeMap<String, TwinResult> {
    let mut out = BTreeMap::new();
    for test in tests {
        let end =
            events.iter().find_map(|e| match e {
                Event::End {
                    test: t, outcome, leak_check, not_judged, leak_check_details, ..
                } if t == test => Some((outcome, leak_check, not_judged, leak_check_details)),
                _ => None,
            });
        let result = |refs: &[i64], blocks: &[i64], grows: bool, note: Option<String>| TwinResult {
            env: env.to_owned(),
            refs: refs.to_vec(),
            blocks: blocks.to_vec(),
            grows,
            note,
        };
        let twin = match end {
            None => result(&[], &[], false, Some("did not run".to_owned())),
            Some((outcome, _, _, _)) if *outcome != TestOutcome::Passed => {
                result(&[], &[], false, Some(format!("{outcome} with the twin: not measured")))
            }
            Some((_, Some(check), _, _)) | Some((_, None, _, Some(check))) => {
                if check.refs.is_empty() {
                    // The screen cleared it: no call grew.
                    result(&check.screen_refs, &check.screen_blocks, false, None)
                } else {
                    result(&check.refs, &check.blocks, check.grows(signals), None)
                }
            }
            Some((_, None, not_judged, None)) => result(
                &[],
                &[],
                false,
                Some(format!(
                    "not measured ({})",
                    not_judged.as_deref().unwrap_or("no leak check")
                )),
            ),
        };
        out.insert(test.clone(), twin);
    }
    out
}

/// Applies the twin's `results` to the `ref-leak` findings: a test whose twin grows is no
/// longer a finding (it is counted as not judged, and returned with why); the others carry
/// the twin's result in their evidence and message.
pub fn apply(
    findings: &mut Vec<Finding>,
    counts: &mut Counts,
    results: &BTreeMap<String, TwinResult>,
) -> Vec<NotJudged> {
    let mut notes = Vec::new();
    findings.retain_mut(|f| {
        if f.kind != FindingKind::RefLeak {
            return true;
        }
        let Some(twin) = f.test.as_ref().and_then(|t| results.get(t)) else { return true };
        if twin.grows {
            counts.leak_judged = counts.leak_judged.saturating_sub(1);
            counts.leak_not_judged += 1;
            notes.push(NotJudged {
                test: f.test.clone().unwrap_or_default(),
                reason: format!(
                    "grows the same with the pure-Python twin ({}: refs {:?}, blocks {:?}): \
                     the test's own state, not a lost reference in the C code; with the C \
                     code: {}",
                    twin.env,
                    twin.refs,
                    twin.blocks,
                    f.message.lines().next().unwrap_or("")
                ),
            });
            return false;
        }
        f.message.push_str("\n  ");
        f.message.push_str(&twin.line());
        f.evidence.get_or_insert_with(Default::default).twin = Some(twin.clone());
        true
    });
    notes
}

#[cfg(test)]
mod tests;
