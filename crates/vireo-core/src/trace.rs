//! W3C Trace Context (`traceparent`): Vireo continues the caller's trace, or starts one, and
//! hands the function a `traceparent` whose parent is the invocation.

use std::fmt;

pub const TRACEPARENT: &str = "traceparent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceContext {
    /// Parses a version-00 `traceparent`; anything malformed (or all-zero ids) is `None`, and
    /// the caller starts a new trace instead.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);

        // Version 00 has exactly four fields; later versions may add more after these four.
        if hex(version, 2)? == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id = u128::from_str_radix(hex(trace, 32)?, 16).ok()?;
        let parent_id = u64::from_str_radix(hex(parent, 16)?, 16).ok()?;
        let flags = u8::from_str_radix(hex(flags, 2)?, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A context from its parts, as a tracing backend assigned them.
    pub fn new(trace_id: u128, span_id: u64, sampled: bool) -> Self {
        Self {
            trace_id,
            parent_id: span_id,
            flags: u8::from(sampled),
        }
    }

    pub fn trace_id_value(&self) -> u128 {
        self.trace_id
    }

    pub fn span_id_value(&self) -> u64 {
        self.parent_id
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// A new trace, sampled.
    pub fn root() -> Self {
        Self {
            trace_id: fastrand::u128(1..),
            parent_id: fastrand::u64(1..),
            flags: 1,
        }
    }

    /// The same trace with a new span as the parent: what the function receives.
    pub fn child(&self) -> Self {
        Self {
            parent_id: fastrand::u64(1..),
            ..*self
        }
    }

    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    pub fn span_id(&self) -> String {
        format!("{:016x}", self.parent_id)
    }
}

/// `text` if it is exactly `len` lowercase hex digits.
fn hex(text: &str, len: usize) -> Option<&str> {
    (text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(text)
}

/// The `traceparent` header value.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_w3c_example() {
        let parsed = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(parsed.to_string(), EXAMPLE);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parsed.child();
        assert_eq!(child.trace_id(), parsed.trace_id());
        assert_ne!(child.span_id(), parsed.span_id());
        assert!(child.to_string().ends_with("-01"));
    }

    #[test]
    fn malformed_or_zero_ids_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        let future = format!("01-{}-more", &EXAMPLE[3..]);
        assert!(
            TraceContext::parse(&future).is_some(),
            "later versions may add fields"
        );
        assert!(TraceContext::parse(&TraceContext::root().to_string()).is_some());
    }
}
