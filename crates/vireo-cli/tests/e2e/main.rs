//! End-to-end tests: the real `vireo` binary on a real port, real components compiled from
//! source, a real SQLite file.

mod support;

mod admission;
mod async_queue;
mod cron;
mod deploy;
mod egress;
mod failures;
mod fd_limits;
mod hardening;
mod integrity;
mod logs;
mod metrics;
mod restart;
mod retention;
mod scaling;
mod secrets;
mod tenancy;
mod trace_context;
mod usage;
