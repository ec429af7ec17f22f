//! The [`SourceStore`]: what each source reads and where it delivers. Which node reads what is
//! the broker's business (its consumer groups), so nothing here is claimed or leased.

use vireo_core::{Name, NewSource, Source, SourceStore, StoreError};

use super::{Dialect, SqlStore, check_function, commit};
use crate::rows;
use crate::sql::query;

const SOURCE_COLUMNS: &str = "SELECT namespace, name, function, selector, kind, url, stream, subject, password_secret, batch_size, batch_window_ms, filter, qos, paused, created_at_us FROM sources";
const CREATE_SOURCE: &str = "INSERT INTO sources (namespace, name, function, selector, kind, url, stream, subject, password_secret, batch_size, batch_window_ms, filter, qos, created_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING";
const DELETE_SOURCE: &str = "DELETE FROM sources WHERE namespace = $1 AND name = $2";
const SET_SOURCE_PAUSED: &str = "UPDATE sources SET paused = $3 WHERE namespace = $1 AND name = $2";

const MAX_SOURCES_PER_READ: u32 = 10_000;

#[async_trait::async_trait]
impl<D: Dialect> SourceStore for SqlStore<D> {
    async fn create_source(&self, source: &NewSource) -> Result<Source, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, &source.namespace, &source.function).await?;
        let spec = &source.spec;
        let inserted = query(CREATE_SOURCE)
            .bind(source.namespace.as_str())
            .bind(source.name.as_str())
            .bind(source.function.as_str())
            .bind(source.selector.to_string())
            .bind(spec.kind.as_str())
            .bind(spec.url.as_str())
            .bind(spec.stream.as_str())
            .bind(spec.subject.as_deref())
            .bind(spec.password_secret.as_ref().map(|secret| secret.as_str()))
            .bind(i64::from(spec.batch_size))
            .bind(spec.batch_window_ms.map(i64::from))
            .bind(
                spec.filter
                    .as_ref()
                    .map(|filter| filter.as_json().to_string()),
            )
            .bind(spec.qos.map(i64::from))
            .bind(source.created_at_us)
            .execute(&mut *tx, "creating source")
            .await?;
        if inserted == 0 {
            return Err(StoreError::SourceExists {
                namespace: source.namespace.clone(),
                name: source.name.clone(),
            });
        }
        commit::<D>(tx).await?;
        self.get_source(&source.namespace, &source.name).await
    }

    async fn get_source(&self, namespace: &Name, name: &Name) -> Result<Source, StoreError> {
        let mut get = query(SOURCE_COLUMNS);
        get.push(" WHERE namespace = $1 AND name = $2");
        let row = get
            .bind(namespace.as_str())
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader().await?, "reading source")
            .await?;
        match row {
            Some(row) => rows::source(&row),
            None => Err(not_found(namespace, name)),
        }
    }

    async fn list_sources(&self, namespace: &Name) -> Result<Vec<Source>, StoreError> {
        let mut list = query(SOURCE_COLUMNS);
        list.push(" WHERE namespace = $1 ORDER BY name LIMIT $2");
        let rows = list
            .bind(namespace.as_str())
            .bind(MAX_SOURCES_PER_READ)
            .fetch_all(&mut *self.reader().await?, "listing sources")
            .await?;
        rows.iter().map(rows::source).collect()
    }

    async fn all_sources(&self) -> Result<Vec<Source>, StoreError> {
        let mut all = query(SOURCE_COLUMNS);
        all.push(" ORDER BY namespace, name LIMIT $1");
        let rows = all
            .bind(MAX_SOURCES_PER_READ)
            .fetch_all(&mut *self.reader().await?, "listing every source")
            .await?;
        rows.iter().map(rows::source).collect()
    }

    async fn delete_source(&self, namespace: &Name, name: &Name) -> Result<(), StoreError> {
        let deleted = query(DELETE_SOURCE)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .execute(&mut *self.writer().await?, "deleting source")
            .await?;
        if deleted == 0 {
            return Err(not_found(namespace, name));
        }
        Ok(())
    }

    async fn set_source_paused(
        &self,
        namespace: &Name,
        name: &Name,
        paused: bool,
    ) -> Result<Source, StoreError> {
        let changed = query(SET_SOURCE_PAUSED)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(paused)
            .execute(&mut *self.writer().await?, "pausing source")
            .await?;
        if changed == 0 {
            return Err(not_found(namespace, name));
        }
        self.get_source(namespace, name).await
    }
}

fn not_found(namespace: &Name, name: &Name) -> StoreError {
    StoreError::SourceNotFound {
        namespace: namespace.clone(),
        name: name.clone(),
    }
}
