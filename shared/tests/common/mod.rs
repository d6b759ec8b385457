//! Checks shared by the scenario tests.

use shared::fold::WorldState;
use shared::protocol::CopyDecl;
use shared::time::Micros;

/// Every copy holds at least every version its source wrote more than `settle` before `state.now`.
pub fn check_copies_converge(
    state: &WorldState,
    copies: &[CopyDecl],
    settle: Micros,
) -> Result<(), String> {
    let settled = state.now - settle;
    for copy in copies {
        let source = &state.tables[copy.source_service.0 as usize][&copy.source_table];
        let copied = &state.tables[copy.copy_service.0 as usize][&copy.copy_table];
        for (copy_key, copy_row) in copied {
            let Some(row) = source.get(CopyDecl::source_key(copy_key)) else {
                continue;
            };
            if row.written_at <= settled && copy_row.version < row.version {
                return Err(format!(
                    "{}[{copy_key}] is v{} but the source reached v{} at {}",
                    copy.copy_table, copy_row.version, row.version, row.written_at
                ));
            }
        }
    }
    Ok(())
}
