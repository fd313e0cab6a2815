//! Pure checks on archive entry names and link targets; no I/O.
//!
//! An entry name is split into its normal components (`.` dropped); absolute
//! names and `..` anywhere are refused. Link targets are judged lexically:
//! a symlink target must stay inside the source root when resolved from the
//! link's directory, and a hard link target must name a path inside the same
//! top-level directory.

use camino::{Utf8Component, Utf8Path};

use crate::UnsafeReason;

/// The normal components of an entry name, with `.` components dropped.
///
/// Refuses absolute names and any `..` component, wherever it appears.
pub(crate) fn components(name: &str) -> Result<Vec<&str>, UnsafeReason> {
    let mut out = Vec::new();
    for component in Utf8Path::new(name).components() {
        match component {
            Utf8Component::Prefix(_) | Utf8Component::RootDir => {
                return Err(UnsafeReason::AbsolutePath);
            }
            Utf8Component::ParentDir => return Err(UnsafeReason::ParentDir),
            Utf8Component::CurDir => {}
            Utf8Component::Normal(part) => out.push(part),
        }
    }
    Ok(out)
}

/// Checks that a symlink whose directory is `link_dir` (components below the
/// source root) and whose target is `target` resolves inside the root.
///
/// Besides the plain lexical check, a `..` that follows a name is refused:
/// `sub/..` resolves lexically to `.`, but if `sub` is itself a symlink the
/// kernel follows it first and `..` then leaves from wherever it points.
/// With every `..` leading, the walk goes up through real directories only
/// (the extractor never writes through a symlink) and then down through names
/// that are themselves checked this way, so the whole chain stays inside.
pub(crate) fn check_symlink_target(link_dir: &[&str], target: &str) -> Result<(), UnsafeReason> {
    if target.is_empty() {
        return Err(UnsafeReason::MissingLinkTarget);
    }
    let mut depth = link_dir.len();
    let mut descended = false;
    for component in Utf8Path::new(target).components() {
        match component {
            Utf8Component::Prefix(_) | Utf8Component::RootDir => {
                return Err(UnsafeReason::AbsoluteSymlink { target: target.to_owned() });
            }
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir if descended => {
                return Err(UnsafeReason::SymlinkParentAfterName { target: target.to_owned() });
            }
            Utf8Component::ParentDir => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| UnsafeReason::SymlinkEscapes { target: target.to_owned() })?;
            }
            Utf8Component::Normal(_) => descended = true,
        }
    }
    Ok(())
}

/// The components below `top` of a hard link target, which tar stores relative
/// to the archive root (so it starts with the top-level directory).
pub(crate) fn hard_link_target<'a>(
    top: &str,
    target: &'a str,
) -> Result<Vec<&'a str>, UnsafeReason> {
    let escapes = || UnsafeReason::HardLinkEscapes { target: target.to_owned() };
    if target.is_empty() {
        return Err(UnsafeReason::MissingLinkTarget);
    }
    let parts = components(target).map_err(|_| escapes())?;
    match parts.split_first() {
        Some((first, rest)) if *first == top && !rest.is_empty() => Ok(rest.to_vec()),
        _ => Err(escapes()),
    }
}

#[cfg(test)]
mod tests;
