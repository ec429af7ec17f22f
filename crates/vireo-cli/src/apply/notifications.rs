//! The manifest's bucket notifications: one per bucket for the function, set (the API replaces
//! the function's notification on a bucket) when missing or different. Notifications of the
//! function on buckets the manifest does not name are left alone.

use anyhow::Context as _;
use reqwest::Method;
use serde_json::json;
use vireo_core::Name;

use super::named::{Action, Change};
use crate::buckets::{NotificationView, buckets_path};
use crate::client::Client;
use crate::manifest::NotificationSpec;

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[NotificationSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for notification in wanted {
        let bucket = &notification.bucket;
        let path = format!("{}/{bucket}/notifications", buckets_path(client));
        let existing = client
            .get_if_found::<Vec<NotificationView>>(&path)
            .await?
            .unwrap_or_default();
        let events: Vec<&str> = notification
            .events
            .get_ref()
            .iter()
            .map(|event| event.as_str())
            .collect();
        let action = match existing
            .iter()
            .find(|view| view.function == function.as_str())
        {
            None => Action::Created,
            Some(view)
                if view.events == events
                    && view.prefix == notification.prefix
                    && view.suffix == notification.suffix =>
            {
                Action::Unchanged
            }
            Some(_) => Action::Replaced,
        };
        if !dry_run && action != Action::Unchanged {
            let body = json!({
                "events": events,
                "prefix": notification.prefix,
                "suffix": notification.suffix,
            });
            client
                .json(
                    client
                        .request(Method::PUT, &format!("{path}/{function}"))
                        .json(&body),
                )
                .await
                .with_context(|| format!("setting the notification of bucket {bucket}"))?;
        }
        changes.push(Change::new(
            "notification of bucket",
            bucket.to_string(),
            action,
        ));
    }
    Ok(changes)
}
