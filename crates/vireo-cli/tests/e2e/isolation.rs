//! CPU-bound guests share the server: while invocations spin for their whole timeout, other
//! functions, the admin API, `/metrics` and the health endpoints are still answered, and a
//! function that floods the server gets one share of the CPU, not one per invocation.

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, invocation_id};

/// Starts `count` GETs of `path`; each runs until the function's timeout.
fn spin(server: &Server, path: &str, count: usize) -> Vec<tokio::task::JoinHandle<String>> {
    (0..count)
        .map(|_| {
            let url = server.url(path);
            tokio::spawn(async move {
                let response = reqwest::get(url).await.expect("spinner request");
                assert_eq!(response.status(), 504, "a spinner runs until its timeout");
                invocation_id(&response)
            })
        })
        .collect()
}

/// Waits until the server counts at least `count` invocations in flight.
async fn running(server: &Server, count: u64) {
    eventually(DEADLINE, || async {
        let metrics = server
            .admin()
            .get(server.url("/metrics"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let in_flight = metrics
            .lines()
            .find_map(|line| line.strip_prefix("vireo_invocations_in_flight "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if in_flight >= count as f64 {
            Ok(())
        } else {
            Err(format!(
                "{in_flight} invocations in flight, waiting for {count}"
            ))
        }
    })
    .await;
}

async fn cpu_us(server: &Server, id: &str) -> u64 {
    let record = server.invocation(id).await;
    record["cpu_us"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cpu_us in {record}"))
}

#[tokio::test]
async fn spinning_guests_leave_room_for_everything_else() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("hello", "hello", json!({})).await;
    server
        .deploy_ok(
            "spin",
            "spin-loop",
            json!({"timeout_ms": 8000, "max_concurrency": 8}),
        )
        .await;

    // Twice as many spinners as this machine's cores (the tests run on 2).
    let spinners = spin(&server, "/fn/default/spin/", 4);
    running(&server, 4).await;

    for _ in 0..20 {
        let response = reqwest::get(server.url("/fn/default/hello/"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Hello, Vireo!\n");
    }
    let (status, _) = server.get_json("/v1/namespaces/default/functions").await;
    assert_eq!(status, 200);
    let metrics = server.admin().get(server.url("/metrics")).send().await;
    assert_eq!(metrics.unwrap().status(), 200);
    for health in ["/healthz", "/readyz"] {
        let response = reqwest::get(server.url(health)).await.unwrap();
        assert_eq!(response.status(), 200, "{health}");
        let body: Value = response.json().await.unwrap();
        assert!(body["status"].is_string(), "{health}: {body}");
    }
    // Everything above was answered while the spinners still ran: before guests yielded their
    // thread, each of those requests waited for the spinners' timeout.
    assert!(
        spinners.iter().all(|spinner| !spinner.is_finished()),
        "the spinners ended before the other requests were answered"
    );

    for spinner in spinners {
        let id = spinner.await.unwrap();
        assert!(
            cpu_us(&server, &id).await > 0,
            "a spinner's CPU time is recorded"
        );
    }
}

#[tokio::test]
async fn a_flooding_tenant_gets_one_share_of_the_cpu() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/namespaces",
            Some(json!({"name": "quiet"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let settings = json!({"timeout_ms": 3000, "max_concurrency": 8});
    server
        .deploy_ok("flood", "spin-loop", settings.clone())
        .await;
    let response = server
        .deploy_with(
            &server.admin(),
            "quiet",
            "lone",
            crate::support::guest("spin-loop"),
            settings,
        )
        .await;
    assert_eq!(response.status(), 201);

    let flood = spin(&server, "/fn/default/flood/", 6);
    let lone = spin(&server, "/fn/quiet/lone/", 1);
    let mut flood_cpu = Vec::new();
    for spinner in flood {
        flood_cpu.push(cpu_us(&server, &spinner.await.unwrap()).await);
    }
    let mut lone_cpu = 0;
    for spinner in lone {
        lone_cpu = cpu_us(&server, &spinner.await.unwrap()).await;
    }
    let flood_mean = flood_cpu.iter().sum::<u64>() / flood_cpu.len() as u64;
    // Shared per invocation, the lone spinner would get about what each flooding one gets;
    // shared per tenant, it gets about as much as all six together (6× each one's).
    assert!(
        lone_cpu > flood_mean * 3,
        "the lone tenant's spinner used {lone_cpu} µs of CPU, each of the flood's {flood_cpu:?}"
    );
}
