//! Checks shared by the scenario tests.

use shared::fold::WorldState;
use shared::time::Micros;

/// Every copy holds at least every version its source wrote more than `settle` before `state.now`.
pub fn check_copies_converge(
    state: &WorldState,
    copies: &[shared::protocol::CopyDecl],
    settle: Micros,
) -> Result<(), String> {
    let settled = state.now - settle;
    for copy in copies {
        let source = &state.tables[copy.source_service.0 as usize][&copy.source_table];
        let copied = &state.tables[copy.copy_service.0 as usize][&copy.copy_table];
        for (key, row) in source {
            let copy_version = copied.get(key).map_or(0, |r| r.version);
            if row.written_at <= settled && copy_version < row.version {
                return Err(format!(
                    "{}[{key}] is v{copy_version} but the source reached v{} at {}",
                    copy.copy_table, row.version, row.written_at
                ));
            }
        }
    }
    Ok(())
}
