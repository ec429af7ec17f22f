//! `wasi:keyvalue` store, atomics and batch at 0.2.0-draft2.

use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Bucket, Cas, Refusal};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    atomics::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    batch::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

fn error(refusal: Refusal) -> store::Error {
    match refusal {
        Refusal::NoSuchStore => store::Error::NoSuchStore,
        Refusal::AccessDenied => store::Error::AccessDenied,
        Refusal::Other(message) => store::Error::Other(message),
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for Host {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let granted = self.capabilities.key_value.clone();
        match granted.open(&identifier).await {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(refusal) => Ok(Err(error(refusal))),
        }
    }
}

impl store::HostBucket for Host {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.get(&id, &key).await.map_err(error))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.set(&id, &key, &value).await.map_err(error))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.delete(&id, &key).await.map_err(error))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.exists(&id, &key).await.map_err(error))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted
            .list_keys(&id, cursor.as_deref())
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
            .map_err(error))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for Host {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Answer<i64> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.increment(&id, &key, delta).await.map_err(error))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let read = self.table.delete(cas)?;
        let granted = self.capabilities.key_value.clone();
        Ok(match granted.swap(&read, &value).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(now)) => Err(atomics::CasError::CasFailed(self.table.push(now)?)),
            Err(refusal) => Err(atomics::CasError::StoreError(error(refusal))),
        })
    }
}

impl atomics::HostCas for Host {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Resource<Cas>> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        match granted.read_for_swap(&id, &key).await {
            Ok(read) => Ok(Ok(self.table.push(read)?)),
            Err(refusal) => Ok(Err(error(refusal))),
        }
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Answer<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.seen.value.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for Host {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.get_many(&id, keys).await.map_err(error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.set_many(&id, key_values).await.map_err(error))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let id = self.bucket(&bucket)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.delete_many(&id, keys).await.map_err(error))
    }
}
