//! Rows into PostgreSQL: a batch is bound as one array per column and expanded by `UNNEST`, so
//! a statement's text is the same whatever the batch's size (prepared once per connection) and
//! the whole batch is one statement. Reading rows is shared with SQLite (`crate::rows`).

use std::collections::HashMap;
use std::hash::Hash;

/// One column of a batch, bound as one array: `value` of each item, in order.
pub(super) fn array<'a, T, U>(items: &'a [T], value: impl FnMut(&'a T) -> U) -> Vec<U> {
    items.iter().map(value).collect()
}

/// `items` split into rounds in which no key repeats, each in the batch's order. One statement
/// may upsert a row only once, and an item repeating an earlier one's key must land after it,
/// so each round is one statement, run in order.
pub(super) fn rounds<'a, T, K: Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<Vec<&'a T>> {
    let mut rounds: Vec<Vec<&T>> = Vec::new();
    let mut seen: HashMap<K, usize> = HashMap::new();
    for item in items {
        let round = seen.entry(key(item)).or_insert(0);
        if *round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[*round].push(item);
        *round += 1;
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_go_to_later_rounds_in_order() {
        let items = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("b", 2)];
        let rounds = rounds(&items, |item| item.0);
        let shown: Vec<Vec<(&str, i32)>> = rounds
            .iter()
            .map(|round| round.iter().map(|item| **item).collect())
            .collect();
        assert_eq!(
            shown,
            [
                vec![("a", 1), ("b", 1), ("c", 1)],
                vec![("a", 2), ("b", 2)],
                vec![("a", 3)],
            ]
        );
        assert!(super::rounds(&[] as &[(&str, i32)], |item| item.0).is_empty());
    }
}
