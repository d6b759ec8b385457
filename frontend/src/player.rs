//! The player's clock: maps screen time (wall-clock milliseconds between animation frames) to
//! trace time, with play, pause, speed on a log scale, seek, and loop.

use shared::time::Micros;

/// The slowest speed, as a multiple of real time.
pub const SPEED_MIN: f64 = 0.1;
/// The fastest speed, as a multiple of real time.
pub const SPEED_MAX: f64 = 10.0;
/// The speed slider's positions: `0` is [`SPEED_MIN`], this is [`SPEED_MAX`], and each step
/// multiplies the speed by the same factor (a log scale), so 1× sits in the middle.
pub const SPEED_POSITIONS: u32 = 100;
/// The speeds `+` and `−` step through: round numbers a person can name.
pub const SPEED_STOPS: [f64; 7] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// The speed a run starts at. With 40 ms links a hop takes about 45 ms of trace time, so at 0.1×
/// each message crosses the screen in about half a second: slow enough to follow with the eye.
pub const DEFAULT_SPEED: f64 = 0.1;

/// The longest screen-time step one frame may take, in milliseconds. Browsers stop animation
/// frames in background tabs; without this bound the playhead would leap when the tab returns.
const FRAME_MS_MAX: f64 = 250.0;

/// One clock for the whole page.
#[derive(Clone, Debug, PartialEq)]
pub struct Player {
    now: Micros,
    /// The end of the run: the trace covers `0..=end`.
    end: Micros,
    /// How far the trace is known; equal to `end` once it is complete.
    available: Micros,
    playing: bool,
    /// Whether reaching the end of a complete trace starts it again.
    looping: bool,
    speed: f64,
    /// The part of a microsecond not yet added to `now`, so slow speeds lose no time.
    carry_us: f64,
}

impl Player {
    /// A paused clock at zero for a run ending at `end`, of which nothing is known yet.
    pub fn new(end: Micros) -> Player {
        Player {
            now: Micros::ZERO,
            end,
            available: Micros::ZERO,
            playing: false,
            looping: false,
            speed: DEFAULT_SPEED,
            carry_us: 0.0,
        }
    }

    /// The playhead.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// The end of the run.
    pub fn end(&self) -> Micros {
        self.end
    }

    /// How far the trace is known.
    pub fn available(&self) -> Micros {
        self.available
    }

    /// True while the clock runs.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// The current speed, as a multiple of real time.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// True when the playhead has reached the end of a complete trace.
    pub fn at_end(&self) -> bool {
        self.now >= self.end && self.available >= self.end
    }

    /// True when the end of a complete trace starts it again.
    pub fn is_looping(&self) -> bool {
        self.looping
    }

    /// Turns looping on or off.
    pub fn set_looping(&mut self, looping: bool) {
        self.looping = looping;
    }

    /// Sets the speed, clamped to [`SPEED_MIN`]..=[`SPEED_MAX`]; values that are not positive
    /// and finite are ignored.
    pub fn set_speed(&mut self, speed: f64) {
        if speed.is_finite() && speed > 0.0 {
            self.speed = speed.clamp(SPEED_MIN, SPEED_MAX);
        }
    }

    /// Steps the speed to the next round speed above (`faster`) or below the current one.
    pub fn step_speed(&mut self, faster: bool) {
        // A speed within 1% of a stop counts as that stop, so 0.999× steps up to 2×, not 1×.
        let next = if faster {
            SPEED_STOPS.iter().copied().find(|&s| s > self.speed * 1.01)
        } else {
            SPEED_STOPS
                .iter()
                .rev()
                .copied()
                .find(|&s| s < self.speed * 0.99)
        };
        if let Some(speed) = next {
            self.speed = speed;
        }
    }

    /// Starts the clock; at the end of a complete trace, starts again from zero.
    pub fn play(&mut self) {
        if self.at_end() {
            self.now = Micros::ZERO;
        }
        self.playing = true;
    }

    /// Stops the clock where it is.
    pub fn pause(&mut self) {
        self.playing = false;
    }

    /// Plays when paused, pauses when playing.
    pub fn toggle(&mut self) {
        if self.playing {
            self.pause();
        } else {
            self.play();
        }
    }

    /// Moves the playhead to `t`, clamped to what is known.
    pub fn seek(&mut self, t: Micros) {
        self.now = t.min(self.available);
        self.carry_us = 0.0;
    }

    /// Records how far a streamed trace is known; the whole run once it is complete.
    pub fn set_available(&mut self, available: Micros) {
        self.available = available.min(self.end);
        self.now = self.now.min(self.available);
    }

    /// Advances the clock by `wall_ms_elapsed` of screen time and returns the new playhead.
    /// At the end of a complete trace the clock stops; at the edge of a streamed trace it waits.
    pub fn advance(&mut self, wall_ms_elapsed: f64) -> Micros {
        if !self.playing {
            return self.now;
        }
        let wall_ms = if wall_ms_elapsed.is_finite() {
            wall_ms_elapsed.clamp(0.0, FRAME_MS_MAX)
        } else {
            0.0
        };
        let step_us = wall_ms * 1_000.0 * self.speed + self.carry_us;
        let whole_us = step_us.floor();
        self.carry_us = step_us - whole_us;
        let target = self.now + Micros(whole_us as u64);
        if self.looping && self.available >= self.end && target > self.end {
            // Wrap around: the part of the step past the end is played from the start.
            let span = self.end.0.max(1);
            self.now = Micros((target.0 - self.end.0) % span);
            return self.now;
        }
        self.now = target.min(self.available);
        if self.at_end() && !self.looping {
            self.playing = false;
            self.carry_us = 0.0;
        }
        self.now
    }
}

/// `speed` clamped to the slider's range, for speeds read from a URL; [`DEFAULT_SPEED`] when it
/// is not a positive number.
pub fn valid_speed(speed: f64) -> f64 {
    if !speed.is_finite() || speed <= 0.0 {
        return DEFAULT_SPEED;
    }
    speed.clamp(SPEED_MIN, SPEED_MAX)
}

/// The speed at slider position `position` (0..=[`SPEED_POSITIONS`]), rounded to three
/// significant digits so the URL and the label stay short.
pub fn speed_at_position(position: u32) -> f64 {
    let fraction = f64::from(position.min(SPEED_POSITIONS)) / f64::from(SPEED_POSITIONS);
    let speed = SPEED_MIN * (SPEED_MAX / SPEED_MIN).powf(fraction);
    round_significant(speed, 3).clamp(SPEED_MIN, SPEED_MAX)
}

/// The slider position nearest to `speed`.
pub fn position_of_speed(speed: f64) -> u32 {
    let fraction = (valid_speed(speed) / SPEED_MIN).ln() / (SPEED_MAX / SPEED_MIN).ln();
    (fraction * f64::from(SPEED_POSITIONS)).round() as u32
}

fn round_significant(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits - 1 - value.log10().floor() as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(end_ms: u64) -> Player {
        let mut player = Player::new(Micros::from_millis(end_ms));
        player.set_available(Micros::from_millis(end_ms));
        player
    }

    #[test]
    fn a_paused_clock_stands_still() {
        let mut player = complete(1_000);
        assert_eq!(player.advance(100.0), Micros::ZERO);
        assert!(!player.is_playing());
    }

    #[test]
    fn speed_scales_screen_time_to_trace_time() {
        let check = |speed: f64, wall_ms: f64, expected_us: u64| {
            let mut player = complete(60_000);
            player.set_speed(speed);
            player.play();
            player.advance(wall_ms);
            assert_eq!(
                player.now(),
                Micros(expected_us),
                "{speed}× for {wall_ms} ms"
            );
        };
        check(1.0, 100.0, 100_000);
        check(0.1, 100.0, 10_000);
        check(5.0, 200.0, 1_000_000);
        check(0.1, 50.0, 5_000);
        check(10.0, 100.0, 1_000_000);
        // A frame longer than the bound (a background tab) counts as the bound.
        check(1.0, 10_000.0, 250_000);
        check(1.0, f64::NAN, 0);
        check(1.0, -5.0, 0);
    }

    #[test]
    fn slow_speeds_lose_no_time_to_rounding() {
        let mut player = complete(10_000);
        player.set_speed(0.13);
        player.play();
        // 60 frames of 16.667 ms at 0.13× is 130 ms of trace time; each frame is 2166.67 µs.
        for _ in 0..60 {
            player.advance(1000.0 / 60.0);
        }
        assert!(
            player.now().0.abs_diff(130_000) <= 1,
            "{:?} should be about 130 ms",
            player.now()
        );
    }

    #[test]
    fn the_default_speed_makes_a_hop_watchable() {
        // A 40 ms link with its average jitter takes 45 ms of trace time.
        let hop = Micros(45_000);
        let screen_s = hop.as_secs_f64() / DEFAULT_SPEED;
        assert!((0.3..=0.5).contains(&screen_s), "{screen_s} s on screen");
    }

    #[test]
    fn the_clock_stops_at_the_end_and_play_restarts_it() {
        let mut player = complete(1_000);
        player.set_speed(1.0);
        player.play();
        player.advance(200.0);
        player.advance(200.0);
        player.advance(200.0);
        player.advance(200.0);
        player.advance(250.0);
        assert_eq!(player.now(), Micros::from_millis(1_000));
        assert!(!player.is_playing());
        assert!(player.at_end());
        player.play();
        assert_eq!(player.now(), Micros::ZERO);
        assert!(player.is_playing());
    }

    #[test]
    fn a_streamed_trace_holds_the_clock_at_what_is_known() {
        let mut player = Player::new(Micros::from_secs(30));
        player.set_speed(1.0);
        player.set_available(Micros::from_millis(100));
        player.play();
        player.advance(200.0);
        assert_eq!(player.now(), Micros::from_millis(100));
        assert!(player.is_playing(), "it waits for more of the trace");
        player.set_available(Micros::from_millis(500));
        player.advance(200.0);
        assert_eq!(player.now(), Micros::from_millis(300));
    }

    #[test]
    fn seeking_is_clamped_to_what_is_known() {
        let mut player = Player::new(Micros::from_secs(30));
        player.set_available(Micros::from_secs(2));
        player.seek(Micros::from_secs(5));
        assert_eq!(player.now(), Micros::from_secs(2));
        player.seek(Micros::from_millis(1_500));
        assert_eq!(player.now(), Micros::from_millis(1_500));
        player.set_available(Micros::from_secs(60));
        assert_eq!(
            player.available(),
            Micros::from_secs(30),
            "never past the end"
        );
    }

    #[test]
    fn toggle_and_bad_speeds() {
        let mut player = complete(1_000);
        player.toggle();
        assert!(player.is_playing());
        player.toggle();
        assert!(!player.is_playing());
        player.set_speed(0.0);
        player.set_speed(f64::INFINITY);
        assert_eq!(player.speed(), DEFAULT_SPEED);
    }

    #[test]
    fn speeds_from_urls_are_clamped_to_the_range() {
        let check = |given: f64, expected: f64| assert_eq!(valid_speed(given), expected, "{given}");
        check(0.1, 0.1);
        check(0.07, 0.1);
        check(3.0, 3.0);
        check(100.0, 10.0);
        check(-1.0, DEFAULT_SPEED);
        check(f64::NAN, DEFAULT_SPEED);
        let mut player = complete(1_000);
        player.set_speed(50.0);
        assert_eq!(player.speed(), SPEED_MAX);
        player.set_speed(0.001);
        assert_eq!(player.speed(), SPEED_MIN);
    }

    #[test]
    fn the_speed_slider_is_a_log_scale() {
        assert_eq!(speed_at_position(0), SPEED_MIN);
        assert_eq!(speed_at_position(SPEED_POSITIONS / 2), 1.0);
        assert_eq!(speed_at_position(SPEED_POSITIONS), SPEED_MAX);
        assert_eq!(speed_at_position(SPEED_POSITIONS + 7), SPEED_MAX);
        assert_eq!(speed_at_position(25), 0.316);
        // Equal steps multiply the speed by equal factors.
        let ratio_low = speed_at_position(11) / speed_at_position(10);
        let ratio_high = speed_at_position(81) / speed_at_position(80);
        assert!(
            (ratio_low - ratio_high).abs() < 0.05,
            "{ratio_low} vs {ratio_high}"
        );
        for position in 0..=SPEED_POSITIONS {
            assert_eq!(
                position_of_speed(speed_at_position(position)),
                position,
                "position {position} round-trips"
            );
        }
    }

    #[test]
    fn plus_and_minus_step_through_round_speeds() {
        let mut player = complete(1_000);
        player.set_speed(0.1);
        let mut seen = vec![player.speed()];
        for _ in 0..8 {
            player.step_speed(true);
            seen.push(player.speed());
        }
        assert_eq!(seen, [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 10.0, 10.0]);
        player.set_speed(0.75);
        player.step_speed(false);
        assert_eq!(player.speed(), 0.5);
        player.set_speed(0.995);
        player.step_speed(true);
        assert_eq!(
            player.speed(),
            2.0,
            "a speed within 1% of a stop counts as the stop"
        );
    }

    #[test]
    fn a_looping_clock_wraps_to_the_start_and_keeps_playing() {
        let mut player = complete(1_000);
        player.set_speed(1.0);
        player.set_looping(true);
        player.play();
        for _ in 0..4 {
            player.advance(225.0);
        }
        assert_eq!(player.now(), Micros::from_millis(900));
        player.advance(225.0);
        assert_eq!(
            player.now(),
            Micros::from_millis(125),
            "1125 ms wraps to 125 ms"
        );
        assert!(player.is_playing());
        // A streamed trace never wraps: it waits at its edge.
        let mut streamed = Player::new(Micros::from_secs(1));
        streamed.set_available(Micros::from_millis(500));
        streamed.set_looping(true);
        streamed.set_speed(1.0);
        streamed.play();
        streamed.advance(250.0);
        streamed.advance(250.0);
        streamed.advance(250.0);
        assert_eq!(streamed.now(), Micros::from_millis(500));
    }
}
