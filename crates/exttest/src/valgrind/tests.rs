use expect_test::expect;

use super::*;

const LOG: &str = "\
==77== Memcheck, a memory error detector
==77== Command: python -m pytest
==77==
debug-matrix: start tests/test_x.py::test_clean
==77== Conditional jump or move depends on uninitialised value(s)
==77==    at 0x4A: PyObject_Free (obmalloc.c:1)
==77==    by 0x4B: list_dealloc (listobject.c:2)
==77==
debug-matrix: start tests/test_x.py::test_uaf
==77== Invalid read of size 1
==77==    at 0x48: use_after_free (_refbugs.c:40)
==77==    by 0x49: cfunction_vectorcall_NOARGS (methodobject.c:481)
==77==  Address 0x5a is 32 bytes inside a block of size 133 free'd
==77==    at 0x47: free (vg_replace_malloc.c:872)
==77==    by 0x48: use_after_free (_refbugs.c:38)
==77==
some pytest output
==77== HEAP SUMMARY:
==77==     in use at exit: 10 bytes in 1 blocks
==77==
==77== 40 bytes in 1 blocks are definitely lost in loss record 3 of 10
==77==    at 0x4C: malloc (vg_replace_malloc.c:381)
==77==    by 0x4D: leaky (in /v/site-packages/refbugs/_refbugs.cpython-313d-x86_64-linux-gnu.so)
==77==
==77== 8 bytes in 1 blocks are definitely lost in loss record 2 of 10
==77==    at 0x4C: malloc (vg_replace_malloc.c:381)
==77==    by 0x4E: _PyMem_RawMalloc (obmalloc.c:9)
==77==
";

#[test]
fn keeps_only_errors_touching_the_extension() {
    let needles =
        vec!["_refbugs.c".to_owned(), "_refbugs.cpython-313d-x86_64-linux-gnu.so".to_owned()];
    let out: Vec<String> = findings(LOG, &needles)
        .into_iter()
        .map(|f| format!("{:?} {:?}\n{}", f.kind, f.test, f.message))
        .collect();
    expect![[r#"
            InvalidMemory Some("tests/test_x.py::test_uaf")
            Invalid read of size 1
               at 0x48: use_after_free (_refbugs.c:40)
               by 0x49: cfunction_vectorcall_NOARGS (methodobject.c:481)
             Address 0x5a is 32 bytes inside a block of size 133 free'd
               at 0x47: free (vg_replace_malloc.c:872)
               by 0x48: use_after_free (_refbugs.c:38)
            ---
            MemoryLeak None
            40 bytes in 1 blocks are definitely lost in loss record 3 of 10
               at 0x4C: malloc (vg_replace_malloc.c:381)
               by 0x4D: leaky (in /v/site-packages/refbugs/_refbugs.cpython-313d-x86_64-linux-gnu.so)"#]].assert_eq(&out.join("\n---\n"));
}
