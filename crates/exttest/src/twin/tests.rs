use expect_test::expect;

use super::*;
use crate::events::parse_events;

#[test]
fn known_switches_by_normalized_name() {
    assert_eq!(known_switch("zope.interface"), Some(("PURE_PYTHON", "1")));
    assert_eq!(known_switch("Zope_Interface"), Some(("PURE_PYTHON", "1")));
    assert_eq!(known_switch("wrapt"), Some(("WRAPT_DISABLE_EXTENSIONS", "true")));
    assert_eq!(known_switch("markupsafe"), None);
}

#[test]
fn the_twin_decides_whose_growth_it_is() {
    let events = parse_events(concat!(
        // Grows the same with the twin, judged state there.
        r#"{"event":"end","test":"t.py::rewrap","outcome":"passed","duration":1,"not_judged":"own state: every run keeps","leak_check_details":{"screen_refs":[2,2],"screen_blocks":[1,1],"refs":[2,2,2],"blocks":[1,1,1],"leaked":false,"seconds":1}}"#,
        "\n",
        // The screen cleared it with the twin.
        r#"{"event":"end","test":"t.py::leak","outcome":"passed","duration":1,"leak_check":{"screen_refs":[0,0],"screen_blocks":[0,0],"leaked":false,"seconds":0.1}}"#,
        "\n",
        r#"{"event":"end","test":"t.py::c_only","outcome":"skipped","duration":0}"#,
        "\n",
    ));
    let tests: Vec<String> =
        ["t.py::rewrap", "t.py::leak", "t.py::c_only", "t.py::gone"].map(String::from).into();
    let results = results("X=1", &tests, &events, &["refs", "blocks"]);
    let mut findings: Vec<Finding> = tests
        .iter()
        .map(|t| Finding::new(FindingKind::RefLeak, Some(t.clone()), "leaks".to_owned()))
        .collect();
    let mut counts = Counts { leak_judged: 4, ..Counts::default() };
    let notes = apply(&mut findings, &mut counts, &results);
    let shown: Vec<String> = findings
        .iter()
        .map(|f| format!("{}: {}", f.test.as_deref().unwrap_or(""), f.message))
        .collect();
    expect![[r#"
            t.py::leak: leaks
              0 with the pure-Python twin (X=1): refs [0, 0], blocks [0, 0]
            t.py::c_only: leaks
              pure-Python twin (X=1): skipped with the twin: not measured
            t.py::gone: leaks
              pure-Python twin (X=1): did not run
            t.py::rewrap: grows the same with the pure-Python twin (X=1: refs [2, 2, 2], blocks [1, 1, 1]): the test's own state, not a lost reference in the C code; with the C code: leaks
            leak_judged 3, not judged 1"#]]
    .assert_eq(&format!(
        "{}\n{}\nleak_judged {}, not judged {}",
        shown.join("\n"),
        notes.iter().map(|n| format!("{}: {}", n.test, n.reason)).collect::<Vec<_>>().join("\n"),
        counts.leak_judged,
        counts.leak_not_judged
    ));
}
