//! Which lines of the event log exist in the page: the log lists every event up to the
//! playhead, newest first, in rows of one height, but only the rows in view and a few around
//! them are drawn; the list keeps the height of all of them so the scroll bar tells where the
//! reader is. While it follows a playing run, it takes a new page of lines every few frames and
//! writes it a few rows a frame ([`LogWindow::next`]).

use std::ops::Range;

/// One row's height, in CSS pixels (`style.css` gives `.event-log li` this height).
pub const ROW_HEIGHT_PX: f64 = 24.0;
/// Rows drawn: the view shows 20 (`.log-scroll` is 480 px high), plus a margin of four rows
/// (96 px, a wheel notch) on either side for scrolling. While the log follows a playing run,
/// every drawn row gets new words every few frames, so each row of margin costs its share.
pub const ROWS_DRAWN: usize = 28;
/// Rows drawn above the first row in view.
const ROWS_ABOVE: usize = 4;
/// The most rows the list reaches back: older events are reached by moving the playhead. It
/// keeps the list's height within what browsers lay out (about 17 million pixels in Firefox).
pub const ROWS_MAX: usize = 100_000;

/// Rows of a page written in one frame, top first, while the log follows a playing run: a page
/// takes five frames, then the next begins. The playhead brings about 30 events a frame at 1×
/// (300 at 10×), more than the rows drawn, so writing the newest in every frame gave every row
/// new words in every frame, each costing Chromium its layout (issue 9: 2–4 ms a frame), for 60
/// pages a second that nobody reads.
pub const ROWS_PER_FRAME: usize = 6;

/// The rows drawn when `total` events are at or before the playhead, and how many of them are
/// written so far.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LogWindow {
    /// The run's revision (`Clock::applied`).
    revision: u64,
    total: usize,
    /// The first row drawn, counted from the newest (row 0).
    first_row: usize,
    /// Rows drawn with the words of `total`, from the top; the rows below still say the words
    /// of the window before.
    written: usize,
}

impl LogWindow {
    /// The rows to draw when `total` events are known and row `row_in_view` is at the top of
    /// the view.
    pub fn new(total: usize, row_in_view: usize) -> LogWindow {
        let rows = total.min(ROWS_MAX);
        let first_row = row_in_view
            .saturating_sub(ROWS_ABOVE)
            .min(rows.saturating_sub(ROWS_DRAWN));
        LogWindow {
            revision: 0,
            total,
            first_row,
            written: ROWS_DRAWN,
        }
    }

    /// The rows to draw in the frame after `previous`, with `applied` (the run's revision and
    /// how many events are at or before the playhead) and row `row_in_view` at the top of the
    /// view. While the log follows a playing run (the newest row in view), the newest events
    /// are written [`ROWS_PER_FRAME`] rows a frame, top first, and newer ones wait until they
    /// are all written; otherwise, and going back in time (a seek, a loop, another run), every
    /// row shows the playhead at once, so a newer line never sits below an older one.
    pub fn next(
        previous: Option<&LogWindow>,
        applied: (u64, usize),
        row_in_view: usize,
        playing: bool,
    ) -> LogWindow {
        let at_once = LogWindow {
            revision: applied.0,
            ..LogWindow::new(applied.1, row_in_view)
        };
        match previous {
            Some(&previous)
                if playing
                    && row_in_view == 0
                    && previous.first_row == 0
                    && previous.revision == applied.0
                    && previous.total <= applied.1 =>
            {
                if previous.written < ROWS_DRAWN {
                    LogWindow {
                        written: (previous.written + ROWS_PER_FRAME).min(ROWS_DRAWN),
                        ..previous
                    }
                } else if previous.total == applied.1 {
                    previous
                } else {
                    LogWindow {
                        written: ROWS_PER_FRAME,
                        ..at_once
                    }
                }
            }
            _ => at_once,
        }
    }

    /// How many events are at or before the playhead as far as the rows written know.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many rows are written with the words of [`LogWindow::total`], from the top.
    pub fn written(&self) -> usize {
        self.written
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

    /// The windows a log following a playing run draws: each frame's `(total, written)` when
    /// `per_frame` events arrive a frame.
    fn follow(frames: usize, per_frame: usize) -> Vec<(usize, usize)> {
        let mut window = None;
        (1..=frames)
            .map(|frame| {
                let next = LogWindow::next(window.as_ref(), (1, per_frame * frame), 0, true);
                window = Some(next);
                (next.total(), next.written())
            })
            .collect()
    }

    #[test]
    fn a_playing_log_takes_a_new_page_every_five_frames_written_a_band_a_frame() {
        // The first page at once, then one every five frames, written six rows a frame, top
        // first.
        assert_eq!(
            follow(12, 30),
            vec![
                (30, ROWS_DRAWN),
                (60, 6),
                (60, 12),
                (60, 18),
                (60, 24),
                (60, 28),
                (210, 6),
                (210, 12),
                (210, 18),
                (210, 24),
                (210, 28),
                (360, 6),
            ]
        );
        // No new events: the page stays.
        let whole = LogWindow::next(None, (1, 30), 0, true);
        assert_eq!(LogWindow::next(Some(&whole), (1, 30), 0, true), whole);
    }

    #[test]
    fn a_log_not_following_a_playing_run_shows_the_playhead_at_once() {
        let page = LogWindow::next(None, (1, 30), 0, true);
        let next = LogWindow::next(Some(&page), (1, 90), 0, true);
        assert_eq!((next.total(), next.written()), (90, ROWS_PER_FRAME));
        let at_once = |window: LogWindow| (window.total(), window.written());
        // Paused, or scrolled to older lines.
        assert_eq!(
            at_once(LogWindow::next(Some(&next), (1, 100), 0, false)),
            (100, ROWS_DRAWN)
        );
        let scrolled = LogWindow::next(Some(&next), (1, 100), 10, true);
        assert_eq!(at_once(scrolled), (100, ROWS_DRAWN));
        assert_eq!(scrolled.first_row(), 6);
        // Back at the top with no new event: drawn from the top again.
        assert_eq!(
            LogWindow::next(Some(&scrolled), (1, 100), 0, true).first_row(),
            0
        );
        // Back in time (a seek, a loop), or another run: at once, so no newer line sits below an
        // older one.
        assert_eq!(
            at_once(LogWindow::next(Some(&next), (1, 3), 0, true)),
            (3, ROWS_DRAWN)
        );
        assert_eq!(
            at_once(LogWindow::next(Some(&next), (2, 95), 0, true)),
            (95, ROWS_DRAWN)
        );
    }
}
