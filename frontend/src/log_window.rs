//! Which lines of the event log exist in the page: the log lists every event up to the
//! playhead, newest first, in rows of one height, but only the rows in view and a few around
//! them are drawn; the list keeps the height of all of them so the scroll bar tells where the
//! reader is.

use std::ops::Range;

/// One row's height, in CSS pixels (`style.css` gives `.event-log li` this height).
pub const ROW_HEIGHT_PX: f64 = 24.0;
/// Rows drawn: the view shows 20 (`.log-scroll` is 480 px high), plus a margin of four rows
/// (96 px, a wheel notch) on either side for scrolling. While the log follows a playing run,
/// every drawn row changes in every frame, so each row of margin costs every frame.
pub const ROWS_DRAWN: usize = 28;
/// Rows drawn above the first row in view.
const ROWS_ABOVE: usize = 4;
/// The most rows the list reaches back: older events are reached by moving the playhead. It
/// keeps the list's height within what browsers lay out (about 17 million pixels in Firefox).
pub const ROWS_MAX: usize = 100_000;

/// The rows drawn when `total` events are at or before the playhead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LogWindow {
    total: usize,
    /// The first row drawn, counted from the newest (row 0).
    first_row: usize,
}

impl LogWindow {
    /// The rows to draw when `total` events are known and row `row_in_view` is at the top of
    /// the view.
    pub fn new(total: usize, row_in_view: usize) -> LogWindow {
        let rows = total.min(ROWS_MAX);
        let first_row = row_in_view
            .saturating_sub(ROWS_ABOVE)
            .min(rows.saturating_sub(ROWS_DRAWN));
        LogWindow { total, first_row }
    }

    /// How many rows the list holds.
    pub fn rows(&self) -> usize {
        self.total.min(ROWS_MAX)
    }

    /// The events drawn, newest first, as trace positions.
    pub fn events(&self) -> impl Iterator<Item = usize> + use<> {
        let Range { start, end } = self.drawn_rows();
        let total = self.total;
        (start..end).map(move |row| total - 1 - row)
    }

    fn drawn_rows(&self) -> Range<usize> {
        self.first_row..(self.first_row + ROWS_DRAWN).min(self.rows())
    }

    /// How many rows are drawn.
    pub fn rows_drawn(&self) -> usize {
        self.drawn_rows().len()
    }

    /// The first row drawn, counted from the newest (row 0): where the drawn rows sit follows
    /// it alone, so new events change what the rows say, not where they are.
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    /// How far down the list the `slot`th row drawn sits, when `first_row` is drawn first.
    pub fn slot_top_px(first_row: usize, slot: usize) -> f64 {
        (first_row + slot) as f64 * ROW_HEIGHT_PX
    }

    /// The whole list's height.
    pub fn height_px(&self) -> f64 {
        self.rows() as f64 * ROW_HEIGHT_PX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn(window: LogWindow) -> Vec<usize> {
        window.events().collect()
    }

    #[test]
    fn the_newest_events_are_drawn_at_the_top() {
        let window = LogWindow::new(100, 0);
        assert_eq!(drawn(window), (72..100).rev().collect::<Vec<_>>());
        assert_eq!(LogWindow::slot_top_px(window.first_row(), 0), 0.0);
        assert_eq!(LogWindow::slot_top_px(window.first_row(), 1), ROW_HEIGHT_PX);
        assert_eq!(window.height_px(), 100.0 * ROW_HEIGHT_PX);
    }

    #[test]
    fn scrolling_draws_the_rows_in_view_and_a_margin_above() {
        let window = LogWindow::new(1_000, 500);
        let events = drawn(window);
        assert_eq!(events.len(), ROWS_DRAWN);
        // Row 500 is event 499; four rows above it are drawn too.
        assert_eq!(events[0], 1_000 - 1 - 496);
        assert!(events.contains(&499));
        // Scrolled to the very bottom, the window stops at the oldest row.
        let bottom = LogWindow::new(1_000, 999);
        assert_eq!(drawn(bottom).last(), Some(&0));
        assert_eq!(drawn(bottom).len(), ROWS_DRAWN);
    }

    #[test]
    fn each_drawn_row_sits_where_its_event_belongs() {
        for window in [
            LogWindow::new(100, 0),
            LogWindow::new(1_000, 500),
            LogWindow::new(3, 10),
        ] {
            assert_eq!(window.rows_drawn(), drawn(window).len());
            // Event `e` is row `total - 1 - e`, newest first.
            let total = window.total;
            for (slot, event_idx) in window.events().enumerate() {
                assert_eq!(
                    LogWindow::slot_top_px(window.first_row(), slot),
                    (total - 1 - event_idx) as f64 * ROW_HEIGHT_PX
                );
            }
        }
        // New events change what the rows say, not where they are.
        assert_eq!(
            LogWindow::new(100, 0).first_row(),
            LogWindow::new(130, 0).first_row()
        );
    }

    #[test]
    fn short_and_empty_logs_draw_what_there_is() {
        assert_eq!(drawn(LogWindow::new(0, 0)), Vec::<usize>::new());
        assert_eq!(drawn(LogWindow::new(3, 10)), vec![2, 1, 0]);
    }

    #[test]
    fn a_long_run_reaches_back_a_bounded_number_of_rows() {
        let window = LogWindow::new(1_200_000, usize::MAX / 2);
        assert_eq!(window.rows(), ROWS_MAX);
        assert_eq!(window.height_px(), ROWS_MAX as f64 * ROW_HEIGHT_PX);
        let events = drawn(window);
        assert_eq!(events.len(), ROWS_DRAWN);
        assert_eq!(*events.last().unwrap(), 1_200_000 - ROWS_MAX);
    }
}
