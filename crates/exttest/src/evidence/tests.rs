use expect_test::expect;

use super::*;

#[test]
fn evidence_reads_as_lines() {
    let evidence: LeakEvidence = serde_json::from_str(
        r#"{"calls": 2, "new_objects": {"list": 1.0, "int": 0.5}, "containers": [],
                "orphans": 2,
                "refcounts": [{"object": "type _cython_3_3_1.generator", "per_call": 2.0, "unexplained": 1.0}],
                "persistence": {"calls": 24, "seconds": 0.1, "batches": [[8, 16, 24], [16, 32, 48]],
                                "refs": "linear", "blocks": "linear"},
                "allocations": [{"where": "tests/test_x.py:12", "blocks_per_call": 3.0, "bytes_per_call": 120}],
                "seconds": 0.3}"#,
    )
    .expect("parses");
    let mut evidence = evidence;
    evidence.twin = Some(TwinResult {
        env: "PURE_PYTHON=1".to_owned(),
        refs: vec![0, 0, 0],
        blocks: vec![0, 1, 0],
        grows: false,
        note: None,
    });
    expect![[r#"
            over 24 more calls: refs linear, blocks linear (refs/blocks per call by batch: 2/3 → 2/3)
            0 with the pure-Python twin (PURE_PYTHON=1): refs [0, 0, 0], blocks [0, 1, 0]
            +2 references per call to type _cython_3_3_1.generator (1 held by nothing new)
            new tracked objects per call: list +1, int +0.5
            +3 blocks (120 bytes) per call allocated at tests/test_x.py:12"#]]
    .assert_eq(&evidence.lines().join("\n"));
}

#[test]
fn a_note_stands_for_persistence_it_could_not_measure() {
    let evidence = LeakEvidence {
        persistence_note: Some("not repeated: a call takes 2.00 s".to_owned()),
        ..LeakEvidence::default()
    };
    expect![[r#"not repeated: a call takes 2.00 s"#]].assert_eq(&evidence.lines().join("\n"));
}
