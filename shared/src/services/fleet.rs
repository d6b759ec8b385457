//! The ride-hailing data — drivers' names, cars and ratings — so that Ride's and Driver's tables
//! read like a taxi company rather than like test data.

use crate::protocol::rating_text;
use crate::rng::SimRng;

const FIRST_NAMES: [&str; 8] = [
    "Ana", "Bilal", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana",
];
const SURNAMES: [&str; 8] = [
    "Silva", "Okafor", "Novak", "Haddad", "Larsen", "Moreau", "Tanaka", "Kowalski",
];
const CARS: [&str; 8] = [
    "Toyota Prius",
    "Kia Niro",
    "Tesla Model 3",
    "Skoda Octavia",
    "Hyundai Ioniq",
    "Renault Zoe",
    "VW ID.3",
    "Ford Focus",
];
/// The lowest rating a driver gets, in tenths of a star.
const RATING_MIN_TENTHS: u32 = 40;
/// The highest rating, in tenths of a star.
const RATING_MAX_TENTHS: u32 = 50;

fn first_name(driver: u64) -> &'static str {
    FIRST_NAMES[(driver as usize - 1) % FIRST_NAMES.len()]
}

/// The name driver `driver` (1-based) has when a run starts.
pub fn initial_driver_name(driver: u64) -> String {
    let surname = SURNAMES[(driver as usize - 1) % SURNAMES.len()];
    match (driver - 1) / FIRST_NAMES.len() as u64 {
        0 => format!("{} {surname}", first_name(driver)),
        n => format!("{} {surname} {}", first_name(driver), n + 1),
    }
}

/// A new name for driver `driver`: the same first name, another surname.
pub fn renamed_driver_name(driver: u64, rng: &mut SimRng) -> String {
    let surname = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
    format!("{} {surname}", first_name(driver))
}

/// The car driver `driver` drives.
pub fn driver_car(driver: u64) -> &'static str {
    CARS[(driver as usize - 1) % CARS.len()]
}

/// The rating driver `driver` has when a run starts, in tenths of a star (4.2★ to 5.0★).
pub fn initial_rating_tenths(driver: u64) -> u32 {
    42 + (driver * 3 % 9) as u32
}

/// A new rating after riders rated a driver again, in tenths of a star.
pub fn new_rating_tenths(rng: &mut SimRng) -> u32 {
    RATING_MIN_TENTHS + rng.below((RATING_MAX_TENTHS - RATING_MIN_TENTHS + 1) as u64) as u32
}

/// Driver's `driver_details` row value: the rating and the car, such as `4.8★ Toyota Prius`.
pub fn details_row_value(rating_tenths: u32, car: &str) -> String {
    format!("{} {car}", rating_text(rating_tenths))
}

/// Reads a value written by [`details_row_value`] back into the rating (in tenths) and the car.
pub fn parse_details_row(value: &str) -> Option<(u32, String)> {
    let (rating, car) = value.split_once("★ ")?;
    let (whole, tenth) = rating.split_once('.')?;
    let tenths = whole.parse::<u32>().ok()? * 10 + tenth.parse::<u32>().ok()?;
    Some((tenths, car.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_have_distinct_names_and_renames_keep_the_first_name() {
        assert_eq!(initial_driver_name(1), "Ana Silva");
        assert_eq!(initial_driver_name(9), "Ana Silva 2");
        let renamed = renamed_driver_name(3, &mut SimRng::new(5));
        assert!(renamed.starts_with("Chen "), "{renamed}");
    }

    #[test]
    fn ratings_stay_between_four_and_five_stars() {
        let mut rng = SimRng::new(1);
        for driver in 1..=20 {
            assert!((42..=50).contains(&initial_rating_tenths(driver)));
            assert!((40..=50).contains(&new_rating_tenths(&mut rng)));
        }
    }

    #[test]
    fn details_rows_read_back() {
        let check = |tenths: u32, car: &str, text: &str| {
            assert_eq!(details_row_value(tenths, car), text);
            assert_eq!(parse_details_row(text), Some((tenths, car.to_string())));
        };
        check(48, "Toyota Prius", "4.8★ Toyota Prius");
        check(50, "VW ID.3", "5.0★ VW ID.3");
        check(40, "Tesla Model 3", "4.0★ Tesla Model 3");
        for bad in ["", "4.8 Toyota", "x.y★ Kia", "48★ Kia"] {
            assert_eq!(parse_details_row(bad), None, "{bad}");
        }
    }
}
