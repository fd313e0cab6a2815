//! Why two versions of one installed file differ, in one line, the way `diffoscope` narrows
//! a difference down: an ELF file by the sections whose bytes differ, an `ar` archive
//! (`libpython3.X.a`) by its members (and their sections), a `.pyc` by the header field
//! (magic, flags, source mtime, source size, hash) or else its marshalled body, text by its
//! first differing line, anything else by its first differing byte.

use std::collections::BTreeSet;

use camino::Utf8Path;
use object::{Object as _, ObjectSection as _, read::archive::ArchiveFile};

/// How many names (sections, members) one line lists before `…`.
const LISTED: usize = 8;

/// One line saying how `a` and `b` (two versions of `path`, known to differ) differ.
pub fn explain(path: &Utf8Path, a: &[u8], b: &[u8]) -> String {
    if a.starts_with(b"\x7fELF") && b.starts_with(b"\x7fELF") {
        return format!("ELF {}", elf(a, b));
    }
    if a.starts_with(b"!<arch>\n") && b.starts_with(b"!<arch>\n") {
        return archive(a, b);
    }
    if path.extension() == Some("pyc") && a.len() >= 16 && b.len() >= 16 {
        return pyc(a, b);
    }
    if let (Ok(x), Ok(y)) = (std::str::from_utf8(a), std::str::from_utf8(b))
        && !x.contains('\0')
        && !y.contains('\0')
    {
        return text(x, y);
    }
    binary(a, b)
}

fn list(names: &[String]) -> String {
    let mut shown = names.iter().take(LISTED).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > LISTED {
        shown.push_str(&format!(", … ({} in all)", names.len()));
    }
    shown
}

/// The sections whose contents differ (by name), or what else does.
fn elf(a: &[u8], b: &[u8]) -> String {
    let (Ok(x), Ok(y)) = (object::File::parse(a), object::File::parse(b)) else {
        return format!("(unparsable): {}", binary(a, b));
    };
    let sections = |f: &object::File<'_>| -> Vec<(String, Vec<u8>)> {
        f.sections()
            .map(|s| {
                let name = s.name().unwrap_or("?").to_owned();
                (name, s.data().map(<[u8]>::to_vec).unwrap_or_default())
            })
            .collect()
    };
    let (sx, sy) = (sections(&x), sections(&y));
    let names: BTreeSet<&String> = sx.iter().chain(&sy).map(|(n, _)| n).collect();
    let mut differing = Vec::new();
    for name in names {
        let find = |s: &[(String, Vec<u8>)]| {
            s.iter().filter(|(n, _)| n == name).map(|(_, d)| d.clone()).collect::<Vec<_>>()
        };
        if find(&sx) != find(&sy) {
            differing.push(name.clone());
        }
    }
    if differing.is_empty() {
        "headers or layout differ (every section's contents are the same)".to_owned()
    } else {
        format!("sections differ: {}", list(&differing))
    }
}

/// The members of two `ar` archives that differ, each with its ELF sections.
fn archive(a: &[u8], b: &[u8]) -> String {
    let (Ok(x), Ok(y)) = (ArchiveFile::parse(a), ArchiveFile::parse(b)) else {
        return format!("ar archive (unparsable): {}", binary(a, b));
    };
    let members = |f: &ArchiveFile<'_>, data: &[u8]| -> Vec<(String, Vec<u8>)> {
        f.members()
            .filter_map(Result::ok)
            .map(|m| {
                let name = String::from_utf8_lossy(m.name()).into_owned();
                (name, m.data(data).map(<[u8]>::to_vec).unwrap_or_default())
            })
            .collect()
    };
    let (mx, my) = (members(&x, a), members(&y, b));
    let names: Vec<&String> = mx.iter().map(|(n, _)| n).collect();
    if names != my.iter().map(|(n, _)| n).collect::<Vec<_>>() {
        return "ar archive: the members differ in name or order".to_owned();
    }
    let differing: Vec<String> = mx
        .iter()
        .zip(&my)
        .filter(|((_, d), (_, e))| d != e)
        .map(
            |((n, d), (_, e))| {
                if d.starts_with(b"\x7fELF") { format!("{n} ({})", elf(d, e)) } else { n.clone() }
            },
        )
        .collect();
    if differing.is_empty() {
        "ar archive: member headers differ (dates, owners or modes)".to_owned()
    } else {
        format!("ar archive: members differ: {}", list(&differing))
    }
}

/// A `.pyc`'s 16-byte header (PEP 552), field by field, else its marshalled code.
fn pyc(a: &[u8], b: &[u8]) -> String {
    let word = |d: &[u8], at: usize| u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    let mut fields = Vec::new();
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            fields.push(format!("{name} {x}, then {y}"));
        }
    };
    field("magic", format!("{:08x}", word(a, 0)), format!("{:08x}", word(b, 0)));
    let (flags_a, flags_b) = (word(a, 4), word(b, 4));
    field("flags", flags_a.to_string(), flags_b.to_string());
    if flags_a & 1 == 0 && flags_b & 1 == 0 {
        field("source mtime", word(a, 8).to_string(), word(b, 8).to_string());
        field("source size", word(a, 12).to_string(), word(b, 12).to_string());
    } else {
        field("source hash", hex::encode(&a[8..16]), hex::encode(&b[8..16]));
    }
    if !fields.is_empty() {
        return format!(".pyc header: {}", fields.join("; "));
    }
    let at = first_difference(&a[16..], &b[16..]);
    format!(
        ".pyc marshalled body: {} and {} bytes, first difference at body byte {at}",
        a.len() - 16,
        b.len() - 16
    )
}

fn text(a: &str, b: &str) -> String {
    let cut = |s: &str| -> String {
        let s = s.trim_end_matches('\r');
        if s.chars().count() > 100 {
            format!("{}…", s.chars().take(100).collect::<String>())
        } else {
            s.to_owned()
        }
    };
    let (mut x, mut y) = (a.lines(), b.lines());
    let mut number = 0;
    loop {
        number += 1;
        match (x.next(), y.next()) {
            (Some(p), Some(q)) if p == q => continue,
            (Some(p), Some(q)) => {
                return format!("text, line {number}: `{}`, then `{}`", cut(p), cut(q));
            }
            (Some(p), None) => {
                return format!("text, line {number} only in the first: `{}`", cut(p));
            }
            (None, Some(q)) => {
                return format!("text, line {number} only in the rebuild: `{}`", cut(q));
            }
            (None, None) => return "text: line endings differ".to_owned(),
        }
    }
}

fn binary(a: &[u8], b: &[u8]) -> String {
    format!(
        "binary, {} and {} bytes, first difference at byte {}",
        a.len(),
        b.len(),
        first_difference(a, b)
    )
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}

#[cfg(test)]
mod tests;
