//! Incremental parsing of a `text/event-stream` body: feed it chunks as they arrive and get back
//! the data of each complete event. Lines, events and UTF-8 characters may straddle chunks.

#[derive(Default)]
pub struct SseParser {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    /// The `data` of the event being read, if it has any yet.
    data: Option<String>,
}

impl SseParser {
    /// Consumes a chunk and returns the `data` of every event it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        let mut events = Vec::new();
        for line in complete[..last_newline].split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            if line.is_empty() {
                // A blank line ends the event; an event without data is not dispatched.
                events.extend(self.data.take());
                continue;
            }
            if line.starts_with(':') {
                continue; // A comment: the server's keep-alive.
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            if field == "data" {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
            // `id`, `event` and `retry` are not needed: the CLI does not reconnect.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\nid: 7\ndata: {\"line\":\"héllo\"}\n\nid: 8\r\ndata: first\r\ndata:second\r\n\r\n";

    #[test]
    fn events_come_out_whole() {
        let mut parser = SseParser::default();
        assert_eq!(
            parser.push(STREAM.as_bytes()),
            ["{\"line\":\"héllo\"}", "first\nsecond"]
        );
    }

    #[test]
    fn events_split_anywhere_across_chunks_come_out_the_same() {
        let bytes = STREAM.as_bytes();
        for size in 1..bytes.len() {
            let mut parser = SseParser::default();
            let events: Vec<String> = bytes
                .chunks(size)
                .flat_map(|chunk| parser.push(chunk))
                .collect();
            assert_eq!(
                events,
                ["{\"line\":\"héllo\"}", "first\nsecond"],
                "chunks of {size} bytes"
            );
        }
    }

    #[test]
    fn unfinished_events_wait_for_their_blank_line() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"id: 1\ndata: x\n").is_empty());
        assert!(parser.push(b"event: log\n").is_empty());
        assert_eq!(parser.push(b"\n"), ["x"]);
        assert!(parser.push(b"\n\n: ping\n\n").is_empty());
    }
}
