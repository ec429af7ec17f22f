//! `vireo nodes`: the nodes serving the server's store, from their heartbeats (admin key).

use anyhow::Context as _;
use reqwest::Method;
use serde::Deserialize;

use crate::client::Client;
use crate::output::{self, Format};

#[derive(Deserialize)]
struct NodeList {
    nodes: Vec<NodeView>,
}

#[derive(Deserialize)]
struct NodeView {
    id: String,
    address: String,
    version: String,
    started_at: String,
    last_heartbeat: String,
    in_flight: u64,
    state: String,
    slot: Option<u32>,
}

pub async fn list(client: &Client, format: Format) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::GET, "/v1/nodes"))
        .await
        .context("listing nodes")?;
    output::emit(format, answer, |list: NodeList| {
        output::table(
            [
                "ID",
                "ADDRESS",
                "VERSION",
                "STATE",
                "SLOT",
                "IN FLIGHT",
                "STARTED",
                "LAST HEARTBEAT",
            ],
            list.nodes.into_iter().map(|node| {
                [
                    node.id,
                    node.address,
                    node.version,
                    node.state,
                    node.slot
                        .map_or_else(|| "-".to_string(), |slot| slot.to_string()),
                    node.in_flight.to_string(),
                    node.started_at,
                    node.last_heartbeat,
                ]
            }),
        )
    })
}
