//! `--store URL` / `VIREO_STORE` / `[store]`: which database holds the state. A `sqlite:` path
//! (the default: `vireo.db` in the data directory) keeps one node on one file; a
//! `postgres://` URL lets any number of nodes share one database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use vireo_store::{PostgresConfig, StorageConfig};

use crate::data_dir;

/// `[store]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreFileConfig {
    /// `sqlite:PATH` or `postgres://user:password@host:port/database`.
    pub url: Option<String>,
    /// PostgreSQL connections this node keeps at most (one follows the change log).
    pub max_connections: u32,
    /// The longest one PostgreSQL statement may run, milliseconds.
    pub statement_timeout_ms: u64,
}

impl Default for StoreFileConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: PostgresConfig::DEFAULT_MAX_CONNECTIONS,
            statement_timeout_ms: PostgresConfig::DEFAULT_STATEMENT_TIMEOUT.as_millis() as u64,
        }
    }
}

/// The store `url` names (else the file's `[store] url`, else the SQLite file in `data_dir`).
pub fn storage(
    url: Option<&str>,
    file: &StoreFileConfig,
    data_dir: &Path,
) -> anyhow::Result<StorageConfig> {
    let Some(url) = url.or(file.url.as_deref()) else {
        return Ok(StorageConfig::Sqlite {
            path: data_dir.join(data_dir::DATABASE),
        });
    };
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            bail!(
                "invalid store {url:?}: sqlite: needs the database file's path, e.g. sqlite:.vireo/vireo.db"
            );
        }
        return Ok(StorageConfig::Sqlite {
            path: PathBuf::from(path),
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if file.max_connections < PostgresConfig::MIN_CONNECTIONS {
            bail!(
                "invalid config: store.max_connections must be at least {} (one connection follows the change log, one serves key-value reads)",
                PostgresConfig::MIN_CONNECTIONS
            );
        }
        if file.statement_timeout_ms == 0 {
            bail!("invalid config: store.statement_timeout_ms must be greater than 0");
        }
        return Ok(StorageConfig::Postgres(PostgresConfig {
            url: url.to_string(),
            max_connections: file.max_connections,
            statement_timeout: Duration::from_millis(file.statement_timeout_ms),
        }));
    }
    let shown = url.split_once('@').map_or(url, |(_, host)| host);
    bail!(
        "invalid store {shown:?}: expected sqlite:PATH (one node) or postgres://user:password@host:port/database (a cluster)"
    )
}

/// The store as logs and errors may show it: a path, or a URL without its password.
pub fn shown(storage: &StorageConfig) -> String {
    match storage {
        StorageConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        StorageConfig::Postgres(config) => vireo_store::redacted_url(&config.url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_sqlite_file_in_the_data_directory() {
        let chosen = storage(None, &StoreFileConfig::default(), Path::new("data")).unwrap();
        assert_eq!(
            chosen,
            StorageConfig::Sqlite {
                path: PathBuf::from("data/vireo.db")
            }
        );
    }

    #[test]
    fn urls_choose_the_backend_and_the_flag_wins_over_the_file() {
        let file = StoreFileConfig {
            url: Some("sqlite:/srv/vireo.db".to_string()),
            max_connections: 7,
            statement_timeout_ms: 1500,
        };
        assert_eq!(
            storage(None, &file, Path::new("d")).unwrap(),
            StorageConfig::Sqlite {
                path: PathBuf::from("/srv/vireo.db")
            }
        );
        let chosen = storage(Some("postgres://v@db/vireo"), &file, Path::new("d")).unwrap();
        assert_eq!(
            chosen,
            StorageConfig::Postgres(PostgresConfig {
                url: "postgres://v@db/vireo".to_string(),
                max_connections: 7,
                statement_timeout: Duration::from_millis(1500),
            })
        );
    }

    #[test]
    fn mistakes_are_named_without_the_password() {
        let error = storage(
            Some("mysql://root:hunter2@db/x"),
            &StoreFileConfig::default(),
            Path::new("d"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("expected sqlite:PATH"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let small = StoreFileConfig {
            max_connections: 1,
            ..StoreFileConfig::default()
        };
        let error = storage(Some("postgres://db/x"), &small, Path::new("d"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("store.max_connections"), "{error}");
        assert!(storage(Some("sqlite:"), &small, Path::new("d")).is_err());
    }
}
