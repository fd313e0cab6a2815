use super::CellId;

fn id(s: &str) -> CellId {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn cells_order_by_version_as_versions_then_by_variant() {
    let mut cells =
        [id("3.13.15+debug"), id("3.13.5+release"), id("3.11.2+debug"), id("3.13.5+asan")];
    cells.sort();
    let names: Vec<String> = cells.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["3.11.2+debug", "3.13.5+asan", "3.13.5+release", "3.13.15+debug"]);
}

#[test]
fn a_cell_is_read_and_written_as_its_name() {
    let cell = id("3.13.5+ref-debug");
    assert_eq!(cell.variant, "ref-debug");
    assert_eq!(format!("[{cell:18}]"), "[3.13.5+ref-debug  ]");
    assert_eq!(cell.version.to_string(), "3.13.5");
    assert_eq!(serde_json::to_string(&cell).ok().as_deref(), Some("\"3.13.5+ref-debug\""));
    let back: Result<CellId, _> = serde_json::from_str("\"3.13.5+ref-debug\"");
    assert_eq!(back.ok(), Some(cell));
    for bad in ["3.13.5", "3.13+debug", "3.13.5+", "x+debug", "3.13.5+de bug", "+debug"] {
        let err = bad.parse::<CellId>().err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "`{bad}` is not a cell: expected VERSION+VARIANT with a full release \
                     version, e.g. 3.13.5+debug"
            )),
            "{bad}"
        );
    }
    assert!(serde_json::from_str::<CellId>("\"3.13+debug\"").is_err());
}
