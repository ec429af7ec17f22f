//! What a write learns of a body as it streams past: its size, checked against the limits as
//! it grows, and its sha256, the object's ETag.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use vireo_core::{Name, StoreError};

#[derive(Debug)]
pub(crate) struct BodyMeter {
    size: u64,
    hasher: Sha256,
    max_bytes: u64,
    /// The namespace and its `max_object_bytes`: a body larger than the whole quota is refused
    /// before it is all taken.
    quota: Option<(Name, u64)>,
}

impl BodyMeter {
    pub(crate) fn new(max_bytes: u64, quota: Option<(&Name, u64)>) -> Self {
        Self {
            size: 0,
            hasher: Sha256::new(),
            max_bytes,
            quota: quota.map(|(namespace, limit)| (namespace.clone(), limit)),
        }
    }

    /// Counts `chunk` in, or refuses it when the body has grown past a limit.
    pub(crate) fn take(&mut self, chunk: &Bytes) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(StoreError::ObjectTooLarge {
                limit: self.max_bytes,
            });
        }
        if let Some((namespace, limit)) = &self.quota
            && self.size > *limit
        {
            return Err(StoreError::ObjectQuotaExceeded {
                namespace: namespace.clone(),
                limit: *limit,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The size and hex sha256 of everything taken.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_counted_hashed_and_stopped_past_their_limits() {
        let mut meter = BodyMeter::new(5, None);
        meter.take(&Bytes::from_static(b"ab")).unwrap();
        meter.take(&Bytes::from_static(b"c")).unwrap();
        assert_eq!(
            meter.finish(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            )
        );
        let mut meter = BodyMeter::new(5, None);
        assert!(matches!(
            meter.take(&Bytes::from_static(b"abcdef")),
            Err(StoreError::ObjectTooLarge { limit: 5 })
        ));
        let namespace = Name::default_namespace();
        let mut meter = BodyMeter::new(5, Some((&namespace, 2)));
        assert!(matches!(
            meter.take(&Bytes::from_static(b"abc")),
            Err(StoreError::ObjectQuotaExceeded { limit: 2, .. })
        ));
    }
}
