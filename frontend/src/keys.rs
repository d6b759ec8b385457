//! The keyboard shortcuts, as plain logic: which key does what.

use shared::time::Micros;

/// What a key press asks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Play or pause.
    TogglePlay,
    /// To the next event (`true`) or the previous one.
    StepEvent(bool),
    /// Forward (`true`) or back by a fixed time.
    Jump(bool, Micros),
    /// The next round speed up (`true`) or down.
    Speed(bool),
    /// Loop on or off.
    ToggleLoop,
    /// To the start.
    Start,
    /// To the end.
    End,
    /// Clear the selection.
    ClearSelection,
}

/// How far Shift+arrow jumps.
pub const JUMP: Micros = Micros(1_000_000);

/// The action of `key` (as `KeyboardEvent.key` names it), with Shift held or not.
pub fn key_action(key: &str, shift: bool) -> Option<KeyAction> {
    Some(match key {
        " " | "k" | "K" => KeyAction::TogglePlay,
        "ArrowRight" if shift => KeyAction::Jump(true, JUMP),
        "ArrowLeft" if shift => KeyAction::Jump(false, JUMP),
        "ArrowRight" | "." => KeyAction::StepEvent(true),
        "ArrowLeft" | "," => KeyAction::StepEvent(false),
        "+" | "=" => KeyAction::Speed(true),
        "-" | "_" => KeyAction::Speed(false),
        "l" | "L" => KeyAction::ToggleLoop,
        "Home" => KeyAction::Start,
        "End" => KeyAction::End,
        "Escape" => KeyAction::ClearSelection,
        _ => return None,
    })
}

/// The shortcuts, for the help line under the player.
pub const HELP: &str = "Keys: Space play/pause · ← → previous/next event · Shift+← → one second · \
                        + − speed · L loop · Home End · Esc clears the selection";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_actions() {
        let check = |key: &str, shift: bool, expected: Option<KeyAction>| {
            assert_eq!(key_action(key, shift), expected, "{key:?} shift {shift}");
        };
        check(" ", false, Some(KeyAction::TogglePlay));
        check("k", false, Some(KeyAction::TogglePlay));
        check("ArrowRight", false, Some(KeyAction::StepEvent(true)));
        check("ArrowLeft", false, Some(KeyAction::StepEvent(false)));
        check("ArrowRight", true, Some(KeyAction::Jump(true, JUMP)));
        check("ArrowLeft", true, Some(KeyAction::Jump(false, JUMP)));
        check("+", false, Some(KeyAction::Speed(true)));
        // `+` needs Shift on many keyboards; `=` is the same key unshifted.
        check("+", true, Some(KeyAction::Speed(true)));
        check("=", false, Some(KeyAction::Speed(true)));
        check("-", false, Some(KeyAction::Speed(false)));
        check("l", false, Some(KeyAction::ToggleLoop));
        check("Home", false, Some(KeyAction::Start));
        check("End", false, Some(KeyAction::End));
        check("Escape", false, Some(KeyAction::ClearSelection));
        check("a", false, None);
        check("Enter", false, None);
    }
}
