//! One page of an object listing. With a delimiter, the keys under one common prefix are
//! rolled up into that prefix, and the next read skips past all of them at once; a cursor that
//! ends on a common prefix resumes after everything under it.

use vireo_core::{BucketId, ObjectCursor, ObjectListing, ObjectPage, StoreError};

use super::{LIST_OBJECTS, object_info};
use crate::plan::key_value::prefix_end;
use crate::sql::{Sql, query};

/// Where a read resumes: after a key, or at the first key past a rolled-up prefix.
enum Resume {
    After(String),
    AtOrAfter(String),
}

/// The entries after the listing's cursor, up to its limit, and a cursor when more follow.
pub(super) async fn page(
    conn: &mut impl Sql,
    bucket: &BucketId,
    listing: &ObjectListing,
) -> Result<ObjectPage, StoreError> {
    let limit = listing.limit.max(1) as usize;
    let mut page = ObjectPage {
        objects: Vec::new(),
        common_prefixes: Vec::new(),
        cursor: None,
    };
    let mut resume = listing
        .cursor
        .as_ref()
        .and_then(|c| resume_after(listing, c.last_key()));
    if listing.cursor.is_some() && resume.is_none() {
        return Ok(page);
    }
    let mut last: Option<String> = None;
    loop {
        let rows = read(conn, bucket, listing, resume.as_ref(), limit + 1).await?;
        let exhausted = rows.len() <= limit;
        let mut skipped_to = None;
        for row in &rows {
            let info = object_info(row)?;
            let entries = page.objects.len() + page.common_prefixes.len();
            if entries == limit {
                // Something follows the full page.
                page.cursor = last.as_deref().map(ObjectCursor::after);
                return Ok(page);
            }
            match common_prefix(listing, &info.key) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    skipped_to = Some(prefix_end(&prefix));
                    page.common_prefixes.push(prefix.clone());
                    last = Some(prefix);
                    break;
                }
                None => {
                    last = Some(info.key.clone());
                    page.objects.push(info);
                }
            }
        }
        resume = match skipped_to {
            Some(Some(end)) => Some(Resume::AtOrAfter(end)),
            // Nothing sorts after the rolled-up prefix.
            Some(None) => return Ok(page),
            None if exhausted => return Ok(page),
            None => last.clone().map(Resume::After),
        };
    }
}

/// Where a cursor resumes: a rolled-up prefix ends with the delimiter past the listing's
/// prefix, and everything under it was listed as that prefix.
fn resume_after(listing: &ObjectListing, cursor: &str) -> Option<Resume> {
    if common_prefix(listing, cursor) == Some(cursor) {
        return prefix_end(cursor).map(Resume::AtOrAfter);
    }
    Some(Resume::After(cursor.to_string()))
}

/// The common prefix `key` is rolled up into: the listing's prefix and what follows it up to
/// and including the first delimiter.
fn common_prefix<'k>(listing: &ObjectListing, key: &'k str) -> Option<&'k str> {
    let delimiter = listing.delimiter.as_deref().filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(listing.prefix.as_str())?;
    let at = rest.find(delimiter)?;
    Some(&key[..listing.prefix.len() + at + delimiter.len()])
}

/// Up to `rows` objects of the listing's prefix from where it resumes, in key order.
async fn read<C: Sql>(
    conn: &mut C,
    bucket: &BucketId,
    listing: &ObjectListing,
    resume: Option<&Resume>,
    rows: usize,
) -> Result<Vec<C::Row>, StoreError> {
    let mut sql = query(LIST_OBJECTS)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str());
    if !listing.prefix.is_empty() {
        sql.push(" AND key >= ").push_bind(listing.prefix.as_str());
    }
    if let Some(end) = prefix_end(&listing.prefix) {
        sql.push(" AND key < ").push_bind(end);
    }
    match resume {
        Some(Resume::After(key)) => sql.push(" AND key > ").push_bind(key.as_str()),
        Some(Resume::AtOrAfter(key)) => sql.push(" AND key >= ").push_bind(key.as_str()),
        None => &mut sql,
    };
    sql.push(" ORDER BY key LIMIT ")
        .push_bind(i64::try_from(rows).unwrap_or(i64::MAX));
    sql.fetch_all(conn, "listing objects").await
}
