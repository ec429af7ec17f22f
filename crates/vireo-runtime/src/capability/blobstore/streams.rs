//! Object bytes as `wasi:io` streams, one bounded buffer each way: a read holds one chunk of
//! the store's body at a time; a write passes the guest's chunks through a channel of a few of
//! them to the store, which reads from `write-data` on.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use vireo_core::ObjectBody;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::Tally;

/// The most one `write` takes (what `check-write` allows).
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks the pipe holds before the guest waits for the store.
const BUFFERED_CHUNKS: usize = 16;

/// An outgoing value's pipe: the guest writes into one end, the store reads the other.
pub(super) struct Pipe {
    writer: Option<mpsc::Sender<Bytes>>,
    reader: Option<mpsc::Receiver<Bytes>>,
    started: Arc<AtomicBool>,
}

impl Pipe {
    pub fn new() -> Self {
        let (writer, reader) = mpsc::channel(BUFFERED_CHUNKS);
        Self {
            writer: Some(writer),
            reader: Some(reader),
            started: Arc::default(),
        }
    }

    /// The guest's end, once.
    pub fn upload(&mut self) -> Option<Upload> {
        self.writer.take().map(|sender| Upload {
            sender,
            permit: None,
            started: self.started.clone(),
        })
    }

    /// The store's end, once: the guest's chunks until it drops its stream, then the end of
    /// the body when `complete` is sent, or a failure (nothing is stored) when it is dropped.
    pub fn start(
        &mut self,
        complete: oneshot::Receiver<()>,
        tally: Arc<Tally>,
    ) -> Option<ObjectBody> {
        let mut reader = self.reader.take()?;
        self.started.store(true, Ordering::Release);
        let chunks = futures::stream::poll_fn(move |cx| reader.poll_recv(cx)).map(move |chunk| {
            tally.moved(chunk.len());
            Ok(chunk)
        });
        let end = futures::stream::once(async move {
            complete.await.err().map(|_| {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the outgoing value was dropped without finish",
                ))
            })
        })
        .filter_map(std::future::ready);
        Some(Box::pin(chunks.chain(end)))
    }
}

/// The guest's output stream into a pipe.
pub(super) struct Upload {
    sender: mpsc::Sender<Bytes>,
    /// Room for the next chunk, reserved by `check-write` or `ready`.
    permit: Option<mpsc::OwnedPermit<Bytes>>,
    /// Whether the store reads yet: before `write-data`, a full pipe is an error rather than
    /// a wait that would never end.
    started: Arc<AtomicBool>,
}

impl Upload {
    fn reserve(&mut self) -> StreamResult<bool> {
        if self.permit.is_some() {
            return Ok(true);
        }
        match self.sender.clone().try_reserve_owned() {
            Ok(permit) => {
                self.permit = Some(permit);
                Ok(true)
            }
            Err(TrySendError::Full(_)) if self.started.load(Ordering::Acquire) => Ok(false),
            Err(TrySendError::Full(_)) => {
                Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                    "call write-data before writing more than {} bytes",
                    CHUNK_BYTES * BUFFERED_CHUNKS
                )))
            }
            // The store stopped reading: the write failed, and `finish` says why.
            Err(TrySendError::Closed(_)) => Err(StreamError::Closed),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for Upload {
    async fn ready(&mut self) {
        if self.permit.is_none()
            && self.started.load(Ordering::Acquire)
            && let Ok(permit) = self.sender.clone().reserve_owned().await
        {
            self.permit = Some(permit);
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for Upload {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.len() > CHUNK_BYTES {
            return Err(StreamError::trap(
                "write exceeded the permit of check-write",
            ));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if !self.reserve()? {
            return Err(StreamError::trap("write without a permit of check-write"));
        }
        if let Some(permit) = self.permit.take() {
            permit.send(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // What is in the pipe is the store's; there is nothing to push further.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(if self.reserve()? { CHUNK_BYTES } else { 0 })
    }
}

/// An object's bytes as the guest's input stream.
pub(super) struct Download {
    body: ObjectBody,
    chunk: Bytes,
    end: End,
    tally: Arc<Tally>,
    _open: OwnedSemaphorePermit,
}

enum End {
    Open,
    Done,
    Failed(String),
}

impl Download {
    pub fn new(body: ObjectBody, tally: Arc<Tally>, open: OwnedSemaphorePermit) -> Self {
        Self {
            body,
            chunk: Bytes::new(),
            end: End::Open,
            tally,
            _open: open,
        }
    }
}

#[async_trait::async_trait]
impl Pollable for Download {
    async fn ready(&mut self) {
        if !self.chunk.is_empty() || !matches!(self.end, End::Open) {
            return;
        }
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.tally.moved(chunk.len());
                self.chunk = chunk;
            }
            Some(Err(error)) => self.end = End::Failed(error.to_string()),
            None => self.end = End::Done,
        }
    }
}

#[async_trait::async_trait]
impl InputStream for Download {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if !self.chunk.is_empty() {
            return Ok(self.chunk.split_to(size.min(self.chunk.len())));
        }
        match &self.end {
            End::Open => Ok(Bytes::new()),
            End::Done => Err(StreamError::Closed),
            End::Failed(why) => Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "reading the object failed: {why}"
            ))),
        }
    }
}
