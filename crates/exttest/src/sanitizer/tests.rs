use expect_test::expect;

use super::*;

const TSAN: &str = "==================
WARNING: ThreadSanitizer: data race (pid=4242)
  Read of size 8 at 0x7f0000001000 by thread T2:
    #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a1b)
    #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

  Previous write of size 8 at 0x7f0000001000 by thread T1:
    #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a2c)
    #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

SUMMARY: ThreadSanitizer: data race /w/src/src/refbugs/_refbugs.c:180 in racy_increment
==================
==================
WARNING: ThreadSanitizer: data race (pid=4242)
  Write of size 8 at 0x7f0000002000 by thread T3:
    #0 _PyObject_GC_Link Python/gc_free_threading.c:10 (python3.13t+0x1)

  Previous read of size 8 at 0x7f0000002000 by main thread:
    #0 gc_collect_main Python/gc_free_threading.c:20 (python3.13t+0x2)

SUMMARY: ThreadSanitizer: data race Python/gc_free_threading.c:10 in _PyObject_GC_Link
==================
";

const UBSAN: &str = "/w/src/src/refbugs/_refbugs.c:201:14: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type 'long int'
    #0 0x7f12 in overflow_add /w/src/src/refbugs/_refbugs.c:201
    #1 0x5612 in cfunction_vectorcall_O Objects/methodobject.c:512
Objects/longobject.c:1:1: runtime error: shift exponent 64 is too large
";

#[test]
fn reports_made_by_the_extension_are_findings() {
    let needles =
        vec!["_refbugs.cpython-313t-x86_64-linux-gnu.so".to_owned(), "_refbugs.c:".to_owned()];
    let reports = vec![
        (Some("tests/test_refbugs.py::test_racy_counter".to_owned()), TSAN.to_owned()),
        (Some("tests/test_refbugs.py::test_overflow".to_owned()), UBSAN.to_owned()),
    ];
    let (found, outside) = findings(&reports, &needles);
    let mut out = format!("{outside:?}\n");
    for f in found {
        out.push_str(&format!("{:?} in {:?}:\n{}\n", f.kind, f.test, f.message));
    }
    expect![[r#"
            Outside { reports: 2, through_extension: 0 }
            DataRace in Some("tests/test_refbugs.py::test_racy_counter"):
            WARNING: ThreadSanitizer: data race (pid=4242)
              Read of size 8 at 0x7f0000001000 by thread T2:
                #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a1b)
                #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

              Previous write of size 8 at 0x7f0000001000 by thread T1:
                #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a2c)
                #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

            SUMMARY: ThreadSanitizer: data race /w/src/src/refbugs/_refbugs.c:180 in racy_increment
            UndefinedBehavior in Some("tests/test_refbugs.py::test_overflow"):
            /w/src/src/refbugs/_refbugs.c:201:14: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type 'long int'
                #0 0x7f12 in overflow_add /w/src/src/refbugs/_refbugs.c:201
                #1 0x5612 in cfunction_vectorcall_O Objects/methodobject.c:512
        "#]].assert_eq(&out);
}

/// msgpack 1.1 on 3.13.15+tsan, shortened: CPython's interning races with itself; the
/// extension only called `PyUnicode_InternInPlace`.
const THROUGH: &str = "WARNING: ThreadSanitizer: data race (pid=1734)
  Read of size 1 at 0x7fb4e89082f0 by thread T10:
    #0 unicode_eq /w/src/3.13.15/Objects/stringlib/eq.h:13 (python3.13+0x83b97)
    #1 PyUnicode_InternInPlace /w/src/3.13.15/Objects/unicodeobject.c:15389 (python3.13+0x2b7b31)
    #2 unpack_callback_map_item msgpack/unpack.h:216 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x18f1c)

  Previous write of size 4 at 0x7fb4e89082f0 by thread T9:
    #0 immortalize_interned /w/src/3.13.15/Objects/unicodeobject.c:15228 (python3.13+0x27e2b7)
    #1 PyUnicode_InternInPlace /w/src/3.13.15/Objects/unicodeobject.c:15389 (python3.13+0x2b7b31)
    #2 unpack_callback_map_item msgpack/unpack.h:216 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x18f1c)

  Location is heap block of size 56 at 0x7fb4e89082d0 allocated by thread T9:
    #0 malloc <null> (libtsan.so.2+0x3fd5f)
    #1 unpack_callback_map_item msgpack/unpack.h:210 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x18e00)

  Thread T10 (tid=1745, running) created by main thread at:
    #0 pthread_create <null> (libtsan.so.2+0x5f8a6)
    #1 unpack_callback_map_item msgpack/unpack.h:1 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x1)

SUMMARY: ThreadSanitizer: data race /w/src/3.13.15/Objects/stringlib/eq.h:13 in unicode_eq";

#[test]
fn only_what_the_extension_did_is_its_finding() {
    let needles = vec![
        "_cmsgpack.cpython-313t-x86_64-linux-gnu.so".to_owned(),
        "/unpack.h:".to_owned(),
        "/_x.c:".to_owned(),
    ];
    let made = |report: &str| made_by_extension(report, &needles);
    assert!(!made(THROUGH), "a race inside CPython, reached through the extension");
    // The same race with the extension's own write: its finding.
    let own_write = THROUGH.replace(
        "    #0 immortalize_interned /w/src/3.13.15/Objects/unicodeobject.c:15228 (python3.13+0x27e2b7)\n",
        "    #0 fill_map msgpack/unpack.h:230 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x18f80)\n",
    );
    assert!(made(&own_write), "{own_write}");
    // memcpy called by the extension: the interceptor stands for its caller.
    let intercepted = "WARNING: ThreadSanitizer: data race (pid=1)
  Write of size 8 at 0x1 by thread T1:
    #0 memcpy <null> (libtsan.so.2+0x5c0b2)
    #1 copy_buffer msgpack/unpack.h:99 (_cmsgpack.cpython-313t-x86_64-linux-gnu.so+0x10)

  Previous read of size 8 at 0x1 by thread T2:
    #0 list_item Objects/listobject.c:1 (python3.13+0x1)";
    assert!(made(intercepted));
    // CPython's inline functions compiled into the extension are the extension's code.
    let inlined = intercepted.replace(
        "    #0 memcpy <null> (libtsan.so.2+0x5c0b2)\n    #1 copy_buffer msgpack/unpack.h:99",
        "    #0 Py_INCREF Include/refcount.h:270",
    );
    assert!(made(&inlined), "{inlined}");
    // UBSan: the location decides, also as a path relative to where it was compiled.
    assert!(made("_x.c:3:5: runtime error: shift exponent 64 is too large"));
    assert!(made("src/_x.c:3:5: runtime error: shift exponent 64 is too large"));
    assert!(!made(
        "Objects/longobject.c:1:1: runtime error: shift exponent 64 is too large\n    #0 0x1 in f Objects/longobject.c:1\n    #1 0x2 in g /w/src/_x.c:9"
    ));
}

#[test]
fn a_halting_sanitizer_leaves_its_report_to_the_running_test() {
    let events = crate::events::parse_events(
        r#"{"event":"sanitizer","test":"t.py::a","file":"/s/run-0.1","start":0,"end":5,"report":"early"}"#,
    );
    let files = BTreeMap::from([
        ("/s/run-0.1".to_owned(), "earlyLATE".to_owned()),
        ("/s/run-0.2".to_owned(), "child".to_owned()),
    ]);
    expect![[r#"[(Some("t.py::b"), "LATE"), (Some("t.py::b"), "child")]"#]]
        .assert_eq(&format!("{:?}", leftovers(&events, &files, Some("t.py::b"))));
}
