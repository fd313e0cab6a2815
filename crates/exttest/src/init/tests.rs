use super::*;

#[test]
fn the_caller_template_has_every_placeholder_filled() {
    let text = caller_workflow("me/debug-matrix", "0123abc", "ext");
    assert!(!text.contains("@@"), "{text}");
    assert!(text.contains("uses: me/debug-matrix/.github/workflows/extension.yml@0123abc"));
    assert!(text.contains("path: ext"));
}
