//! Product names, so that tables read like a shop rather than like test data.

use crate::rng::SimRng;

const NOUNS: [&str; 8] = [
    "Desk Lamp",
    "Oak Chair",
    "Tea Kettle",
    "Wool Scarf",
    "Road Bike",
    "Rain Jacket",
    "Coffee Mill",
    "Bookshelf",
];
const ADJECTIVES: [&str; 8] = [
    "Classic", "Pro", "Mini", "Eco", "Max", "Retro", "Smart", "Travel",
];

fn noun(product: u64) -> String {
    let base = NOUNS[(product as usize - 1) % NOUNS.len()];
    match (product - 1) / NOUNS.len() as u64 {
        0 => base.to_string(),
        n => format!("{base} {}", n + 1),
    }
}

/// The name product `product` (1-based) has when a run starts.
pub fn initial_product_name(product: u64) -> String {
    noun(product)
}

/// A new name for a rename of `product`.
pub fn renamed_product_name(product: u64, rng: &mut SimRng) -> String {
    let adjective = ADJECTIVES[rng.below(ADJECTIVES.len() as u64) as usize];
    format!("{adjective} {}", noun(product))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_renames_keep_the_noun() {
        assert_eq!(initial_product_name(1), "Desk Lamp");
        assert_eq!(initial_product_name(9), "Desk Lamp 2");
        let renamed = renamed_product_name(2, &mut SimRng::new(5));
        assert!(renamed.ends_with(" Oak Chair"), "{renamed}");
    }
}
