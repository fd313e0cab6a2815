//! Unit tests of `repro/explain.rs`.

use super::*;

fn pyc_bytes(flags: u32, mtime: u32, size: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xa7, 0x0d, 0x0d, 0x0a];
    for w in [flags, mtime, size] {
        v.extend(w.to_le_bytes());
    }
    v.extend(body);
    v
}

#[test]
fn pyc_header_fields_then_the_body() {
    let p = Utf8Path::new("lib/__pycache__/os.cpython-311.pyc");
    let a = pyc_bytes(0, 1735689600, 42, b"\xe3body");
    let b = pyc_bytes(0, 1765000000, 42, b"\xe3body");
    assert_eq!(explain(p, &a, &b), ".pyc header: source mtime 1735689600, then 1765000000");
    let c = pyc_bytes(0, 1735689600, 42, b"\xe3bodx");
    assert_eq!(
        explain(p, &a, &c),
        ".pyc marshalled body: 5 and 5 bytes, first difference at body byte 4"
    );
    let d = pyc_bytes(1, 0xdead, 0xbeef, b"");
    let e = pyc_bytes(1, 0xdead, 0xbeee, b"");
    assert_eq!(
        explain(p, &d, &e),
        ".pyc header: source hash adde0000efbe0000, then adde0000eebe0000"
    );
}

#[test]
fn text_and_binary() {
    let p = Utf8Path::new("lib/pkgconfig/python-3.11.pc");
    assert_eq!(explain(p, b"a\nb\n", b"a\nc\n"), "text, line 2: `b`, then `c`");
    assert_eq!(explain(p, b"a\n", b"a\nb\n"), "text, line 2 only in the rebuild: `b`");
    assert_eq!(
        explain(Utf8Path::new("x.bin"), b"\0\x01\x02", b"\0\x01\x03\x04"),
        "binary, 3 and 4 bytes, first difference at byte 2"
    );
}

#[test]
fn elf_files_by_section() {
    // This test binary itself: one byte of one section changed.
    let exe = std::env::current_exe().expect("test fixture");
    let a = std::fs::read(&exe).expect("test fixture");
    let file = object::File::parse(&*a).expect("test fixture");
    let section = file.section_by_name(".rodata").expect("test fixture");
    let (offset, _) = section.file_range().expect("test fixture");
    let mut b = a.clone();
    b[offset as usize + 1] ^= 0xff;
    assert_eq!(explain(Utf8Path::new("bin/python3.11"), &a, &b), "ELF sections differ: .rodata");
}
