//! Unit tests of `suite.rs`.

use super::FindingKind;

#[test]
fn a_kind_is_shown_as_report_json_spells_it() -> serde_json::Result<()> {
    for kind in FindingKind::ALL {
        assert_eq!(serde_json::to_value(kind)?, kind.name(), "{kind:?}");
        assert_eq!(serde_json::from_value::<FindingKind>(kind.name().into())?, kind);
    }
    Ok(())
}
