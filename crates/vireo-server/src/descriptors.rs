//! The process's file descriptor limit: raised to the hard limit at start, so the server may use
//! every descriptor it is allowed, and the base of the cap on outgoing connections, which keeps
//! most of them for the listener, the connections it accepts and the store.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The outgoing-connection cap by default: a quarter of the descriptor limit...
const DEFAULT_SHARE: u64 = 4;
/// ...but no more than this (16 open requests for each of 1,000 concurrent invocations).
const DEFAULT_MAX: u64 = 16_384;
/// A configured cap may take at most half of the descriptor limit.
const MAX_SHARE: u64 = 2;
/// Where Linux stops by default (`fs.nr_open`) when the hard limit is unlimited.
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit (a failure is logged, and the limit in
/// force kept) and returns the limit then in force.
pub fn raise_limit() -> u64 {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let before = current.unwrap_or(u64::MAX);
    let wanted = maximum.unwrap_or(NR_OPEN_DEFAULT);
    if before >= wanted {
        tracing::info!(limit = before, "file descriptor limit");
        return before;
    }
    let raised = Rlimit {
        current: Some(wanted),
        maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(
                limit = wanted,
                raised_from = before,
                "file descriptor limit"
            );
            wanted
        }
        Err(error) => {
            tracing::warn!(limit = before, hard_limit = wanted, %error, "cannot raise the file descriptor limit");
            before
        }
    }
}

/// The cap on open outgoing connections under `descriptor_limit`: `configured` if it leaves at
/// least half of the descriptors to everything else, else an error saying what to change;
/// by default a quarter of the limit.
pub fn outgoing_connection_cap(
    configured: Option<usize>,
    descriptor_limit: u64,
) -> anyhow::Result<usize> {
    let most = descriptor_limit / MAX_SHARE;
    let cap = match configured {
        None => (descriptor_limit / DEFAULT_SHARE).clamp(1, DEFAULT_MAX),
        Some(cap) if cap as u64 <= most => cap as u64,
        Some(cap) => anyhow::bail!(
            "invalid config: egress.max_connections = {cap} leaves too few of the {descriptor_limit} file descriptors this process may open for incoming connections and the store; \
             set it to at most {most}, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd)"
        ),
    };
    Ok(usize::try_from(cap).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_is_a_quarter_of_the_limit_within_bounds() {
        assert_eq!(outgoing_connection_cap(None, 256).unwrap(), 64);
        assert_eq!(outgoing_connection_cap(None, 1024).unwrap(), 256);
        assert_eq!(outgoing_connection_cap(None, 1 << 20).unwrap(), 16_384);
        assert_eq!(outgoing_connection_cap(None, 3).unwrap(), 1);
    }

    #[test]
    fn a_configured_cap_must_leave_half_of_the_descriptors() {
        assert_eq!(outgoing_connection_cap(Some(128), 256).unwrap(), 128);
        let error = outgoing_connection_cap(Some(129), 256).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("egress.max_connections = 129") && message.contains("at most 128"),
            "{message}"
        );
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let limit = raise_limit();
        let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
        assert_eq!(current, Some(limit));
        assert!(maximum.is_none_or(|hard| hard == limit));
    }
}
