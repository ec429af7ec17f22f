//! End-to-end tests: the real `vireo` binary on a real port, real components compiled from
//! source, a real SQLite file.

mod support;

mod admission;
mod api_contract;
mod api_fuzz;
mod async_queue;
mod buckets;
mod canary;
mod cluster;
mod completions;
mod cron;
mod dashboard;
mod deploy;
mod egress;
mod failures;
mod fd_limits;
mod hardening;
mod integrity;
mod isolation;
mod jwt;
mod key_value;
mod key_value_guests;
mod logs;
mod messages;
mod metrics;
mod outbound_mqtt;
mod outbound_mysql;
mod outbound_postgres;
mod outbound_redis;
mod profiles;
mod request_bodies;
mod restart;
mod retention;
mod reuse_fallback;
mod routes;
mod scaling;
mod secrets;
mod sources;
mod store_faults;
mod tenancy;
mod tls;
mod trace_context;
mod tutorial;
mod usage;
mod variables;
