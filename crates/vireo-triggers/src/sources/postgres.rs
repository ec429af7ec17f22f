//! PostgreSQL row changes through an outbox the source installs in the user's database: a
//! trigger on the table writes each inserted, updated or deleted row (as JSON, old and new) to
//! `vireo.changes` in the same transaction as the change, and notifies; the nodes claim rows of
//! that table with `FOR UPDATE SKIP LOCKED`, so they share them, and delete a row only after the
//! queue's commit holds its invocation. A row claimed by a node that died is claimed again once
//! idle for `claim_idle`. Chosen over logical replication because it needs no `wal_level`
//! change, no replication slot that holds WAL back while Vireo is down, and no superuser: the
//! table's owner is enough.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client};
use tokio_postgres_rustls::MakeRustlsConnect;
use vireo_core::{SecretValue, Source, SourceProbeError};

use super::{ConnectOptions, Connector, Message, Receiver, SourceError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a receive waits for a notification when no change is waiting.
const WAIT: Duration = Duration::from_secs(1);
/// The channel the trigger notifies, with the source's name as the payload.
const CHANNEL: &str = "vireo_changes";

/// Serializes installing among nodes connecting at once, so they do not race on the catalog.
const INSTALL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('vireo.changes'))";

/// The outbox and the trigger function, created once per database.
const OUTBOX: &str = r"
CREATE SCHEMA IF NOT EXISTS vireo;
CREATE TABLE vireo.changes (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    change jsonb NOT NULL,
    claimed_by text,
    claimed_at timestamptz
);
CREATE INDEX changes_of_source ON vireo.changes (source, id);
CREATE OR REPLACE FUNCTION vireo.record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vireo.changes (source, change) VALUES (TG_ARGV[0], jsonb_build_object(
        'operation', TG_OP,
        'schema', TG_TABLE_SCHEMA,
        'table', TG_TABLE_NAME,
        'old', CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
        'new', CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END));
    PERFORM pg_notify('vireo_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;
";

pub(super) struct PostgresConnector;

#[async_trait::async_trait]
impl Connector for PostgresConnector {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Receiver>, SourceProbeError> {
        let url = source.spec.url.as_str();
        let (mut client, notifications) = open(url, password, options).await?;
        let table = source.spec.stream.clone();
        let exists: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&table])
            .await
            .map_err(|e| classify(url, &e))?
            .get(0);
        if exists.is_none() {
            return Err(SourceProbeError::StreamMissing {
                what: "table",
                stream: table,
                url: url.to_string(),
            });
        }
        let name = source.consumer_group();
        install(&mut client, &table, &name)
            .await
            .map_err(|e| match e.code() {
                Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => {
                    SourceProbeError::Invalid(format!(
                        "the user of {url} may not install the change trigger on {table} (it must own the table and may create the schema vireo): {e}"
                    ))
                }
                _ => classify(url, &e),
            })?;
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| classify(url, &e))?;
        Ok(Box::new(PostgresReceiver {
            client,
            notifications,
            source: name,
            table,
            consumer: options.consumer.clone(),
            claim_idle: options.claim_idle,
        }))
    }

    async fn remove(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<(), String> {
        let url = source.spec.url.as_str();
        let (client, _) = open(url, password, options)
            .await
            .map_err(|e| e.to_string())?;
        let name = source.consumer_group();
        let table = source.spec.stream.as_str();
        let present = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL, to_regclass('vireo.changes') IS NOT NULL",
                &[&table],
            )
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        let (table_exists, outbox_exists): (bool, bool) = (present.get(0), present.get(1));
        if table_exists {
            client
                .batch_execute(&format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    quoted(&name),
                    qualified(table)
                ))
                .await
                .map_err(|e| format!("dropping the change trigger on {table}: {e}"))?;
        }
        if outbox_exists {
            client
                .execute("DELETE FROM vireo.changes WHERE source = $1", &[&name])
                .await
                .map_err(|e| format!("deleting the waiting changes of {table}: {e}"))?;
        }
        Ok(())
    }
}

/// A connection to the source's database, driven by a task of its own, and the notifications
/// it receives. `sslmode=require` connects over TLS, verified against the URL's host; `prefer`
/// (the default) connects without, as functions' connections do.
async fn open(
    url: &str,
    password: Option<&SecretValue>,
    options: &ConnectOptions,
) -> Result<(Client, mpsc::Receiver<()>), SourceProbeError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("vireo");
    if let Some(password) = password {
        config.password(password.expose());
    }
    if config.get_ssl_mode() == SslMode::Prefer {
        config.ssl_mode(SslMode::Disable);
    }
    let tls = MakeRustlsConnect::new((*options.tls.config).clone());
    let (client, mut connection) = config.connect(tls).await.map_err(|e| classify(url, &e))?;
    let (notified, notifications) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(_) = message {
                // A full channel already holds a wake-up.
                let _ = notified.try_send(());
            }
        }
    });
    Ok((client, notifications))
}

/// Creates the outbox and the source's trigger on `table` where they are missing. Nothing is
/// changed when both exist (every reconnect): DDL on a busy table takes locks that writers
/// inserting into the outbox wait on, and they on it.
async fn install(
    client: &mut Client,
    table: &str,
    source: &str,
) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.batch_execute(INSTALL_LOCK).await?;
    let present = transaction
        .query_one(
            "SELECT to_regclass('vireo.changes') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::text::regclass AND tgname = $2)",
            &[&table, &source],
        )
        .await?;
    let (outbox, trigger): (bool, bool) = (present.get(0), present.get(1));
    if !outbox {
        transaction.batch_execute(OUTBOX).await?;
    }
    if !trigger {
        let argument = source.replace('\'', "''");
        transaction
            .batch_execute(&format!(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {}
                 FOR EACH ROW EXECUTE FUNCTION vireo.record_change('{argument}');",
                quoted(source),
                qualified(table)
            ))
            .await?;
    }
    transaction.commit().await
}

/// `"name"`, with quotes doubled.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `schema.table` or `table` as quoted identifiers.
fn qualified(table: &str) -> String {
    table.split('.').map(quoted).collect::<Vec<_>>().join(".")
}

/// What a failed connection or statement means for the user.
fn classify(url: &str, error: &tokio_postgres::Error) -> SourceProbeError {
    // The client's own error says why only in its sources (a TLS handshake's, an I/O error).
    let detail = error
        .as_db_error()
        .map_or_else(|| vireo_core::causes(error), |db| db.message().to_string());
    match error.code() {
        Some(code)
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            SourceProbeError::AuthRefused {
                url: url.to_string(),
                detail,
            }
        }
        Some(code) if *code == SqlState::INVALID_CATALOG_NAME => {
            SourceProbeError::Invalid(format!("{url}: {detail}; create the database first"))
        }
        _ => SourceProbeError::Unreachable {
            url: url.to_string(),
            detail,
        },
    }
}

struct PostgresReceiver {
    client: Client,
    notifications: mpsc::Receiver<()>,
    /// The source's name in the outbox (`vireo.<namespace>.<source>`).
    source: String,
    table: String,
    consumer: String,
    claim_idle: Duration,
}

impl PostgresReceiver {
    fn failed(&self, doing: &str) -> impl FnOnce(tokio_postgres::Error) -> SourceError {
        let what = format!("{doing} the changes of {}", self.table);
        move |error| SourceError(format!("{what}: {error}"))
    }

    /// Claims up to `max` changes nobody holds (or a dead node held too long), oldest first.
    async fn claim(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        let idle_secs = self.claim_idle.as_secs_f64();
        let rows = self
            .client
            .query(
                "UPDATE vireo.changes SET claimed_by = $2, claimed_at = now()
                 WHERE id IN (
                     SELECT id FROM vireo.changes
                     WHERE source = $1 AND (claimed_at IS NULL
                         OR claimed_at < now() - make_interval(secs => $3))
                     ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING id, change::text",
                &[&self.source, &self.consumer, &idle_secs, &i64::from(max)],
            )
            .await
            .map_err(self.failed("claiming"))?;
        let mut changes: Vec<(i64, String)> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        changes.sort_by_key(|(id, _)| *id);
        Ok(changes
            .into_iter()
            .map(|(id, change)| message(&self.table, id, change))
            .collect())
    }

    async fn by_ids(
        &self,
        statement: &str,
        ids: &[String],
        doing: &str,
    ) -> Result<(), SourceError> {
        let ids: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.client
            .execute(statement, &[&self.source, &ids])
            .await
            .map_err(self.failed(doing))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Receiver for PostgresReceiver {
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        let claimed = self.claim(max).await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        // Nothing waiting: wait for the trigger's notification (or the time to look for
        // changes a dead node left), then claim again.
        let _ = tokio::time::timeout(WAIT, self.notifications.recv()).await;
        while self.notifications.try_recv().is_ok() {}
        self.claim(max).await
    }

    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError> {
        self.by_ids(
            "DELETE FROM vireo.changes WHERE source = $1 AND id = ANY($2)",
            ids,
            "deleting",
        )
        .await
    }

    async fn release(&mut self, ids: &[String]) -> Result<(), SourceError> {
        self.by_ids(
            "UPDATE vireo.changes SET claimed_by = NULL, claimed_at = NULL
             WHERE source = $1 AND id = ANY($2)",
            ids,
            "releasing",
        )
        .await
    }

    async fn lag(&mut self) -> Result<Option<u64>, SourceError> {
        let waiting: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM vireo.changes WHERE source = $1 AND claimed_at IS NULL",
                &[&self.source],
            )
            .await
            .map_err(self.failed("counting"))?
            .get(0);
        Ok(Some(u64::try_from(waiting).unwrap_or(0)))
    }
}

/// A change row as a message: the JSON change is the body, its operation a header.
fn message(table: &str, id: i64, change: String) -> Message {
    let operation = serde_json::from_str::<serde_json::Value>(&change)
        .ok()
        .and_then(|change| change["operation"].as_str().map(str::to_string))
        .unwrap_or_default();
    Message {
        id: id.to_string(),
        subject: table.to_string(),
        body: Bytes::from(change),
        content_type: "application/json",
        headers: vec![("operation".to_string(), operation)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_part_by_part() {
        assert_eq!(qualified("orders"), "\"orders\"");
        assert_eq!(qualified("shop.orders"), "\"shop\".\"orders\"");
        assert_eq!(quoted("vireo.default.o\"x"), "\"vireo.default.o\"\"x\"");
    }

    #[test]
    fn a_change_is_a_json_message_naming_its_operation() {
        let change = r#"{"operation":"UPDATE","table":"orders","old":{"id":1},"new":{"id":1}}"#;
        let message = message("orders", 42, change.to_string());
        assert_eq!(message.id, "42");
        assert_eq!(message.subject, "orders");
        assert_eq!(message.content_type, "application/json");
        assert_eq!(
            message.headers,
            [("operation".to_string(), "UPDATE".to_string())]
        );
    }
}
