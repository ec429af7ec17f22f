//! Rows into SQLite: multi-row `VALUES` lists whose SQL text repeats. A statement's text is the key of the connection's
//! prepared-statement cache, so a list sized to each batch made SQLite parse the statement anew
//! on almost every batch. Rounding the row count up to a power of two (the extra rows bound to
//! `NULL`) leaves a handful of texts per statement, each parsed once per connection.

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite};

/// Rows per multi-row statement, a power of two: at most 19 bound values per row keeps a full
/// statement well under SQLite's limit of 32766 bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 512;

/// Pushes `VALUES (…), …` for `rows`, then rows of `columns` values bound to `NULL` up to the
/// next power of two. The statement must skip those: a join or `WHERE` on the first column does.
pub(crate) fn push_padded_values<'args, T>(
    sql: &mut QueryBuilder<'args, Sqlite>,
    rows: &'args [T],
    columns: usize,
    mut push_row: impl FnMut(Separated<'_, 'args, Sqlite, &'static str>, &'args T),
) {
    debug_assert!(!rows.is_empty() && rows.len() <= ROWS_PER_STATEMENT);
    let padding = rows.len().next_power_of_two() - rows.len();
    let padded = rows
        .iter()
        .map(Some)
        .chain(std::iter::repeat_n(None, padding));
    sql.push_values(padded, |mut row, item| match item {
        Some(item) => push_row(row, item),
        None => {
            for _ in 0..columns {
                row.push_bind(None::<i64>);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(rows: &[i64]) -> String {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM (");
        push_padded_values(&mut sql, rows, 2, |mut row, value| {
            row.push_bind(*value).push_bind(*value);
        });
        sql.push(") AS v WHERE v.column1 IS NOT NULL");
        sql.into_sql()
    }

    #[test]
    fn batches_of_nearby_sizes_share_one_statement_text() {
        assert_eq!(statement(&[1, 2, 3]), statement(&[1, 2, 3, 4]));
        assert_ne!(statement(&[1, 2, 3, 4]), statement(&[1, 2, 3, 4, 5]));
        assert_eq!(
            statement(&[7]),
            "SELECT * FROM (VALUES (?, ?)) AS v WHERE v.column1 IS NOT NULL"
        );
        assert_eq!(
            statement(&[7, 8, 9]),
            "SELECT * FROM (VALUES (?, ?), (?, ?), (?, ?), (?, ?)) AS v WHERE v.column1 IS NOT NULL"
        );
    }
}
