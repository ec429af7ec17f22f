//! Event sources other than a direct HTTP request: the durable async queue, cron schedules and
//! broker sources.
//! Each one ends in the same `Invoker::invoke` call as the HTTP route.

pub mod cron;
pub mod queue;
pub mod sources;

pub use cron::SchedulerSettings;
pub use queue::delivery::{ATTEMPT_HEADER, DeliverySettings};
pub use queue::worker::{
    ASYNC_PENDING_METRIC, WorkerHandle, WorkerSettings, start as start_worker,
};
pub use queue::writer::QueueWriter;
