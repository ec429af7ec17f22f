//! Spin's `fermyon:spin/key-value@2.0.0` (`spin_sdk::key_value::Store`).

use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Bucket, Refusal};
use crate::bindings::fermyon::spin::key_value;
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

fn error(refusal: Refusal) -> key_value::Error {
    match refusal {
        Refusal::NoSuchStore => key_value::Error::NoSuchStore,
        Refusal::AccessDenied => key_value::Error::AccessDenied,
        Refusal::Other(message) => key_value::Error::Other(message),
    }
}

type Answer<T> = wasmtime::Result<Result<T, key_value::Error>>;

impl key_value::Host for Host {}

impl key_value::HostStore for Host {
    async fn open(&mut self, label: String) -> Answer<Resource<Bucket>> {
        let granted = self.capabilities.key_value.clone();
        match granted.open(&label).await {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(refusal) => Ok(Err(error(refusal))),
        }
    }

    async fn get(&mut self, store: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let id = self.bucket(&store)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.get(&id, &key).await.map_err(error))
    }

    async fn set(&mut self, store: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let id = self.bucket(&store)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.set(&id, &key, &value).await.map_err(error))
    }

    async fn delete(&mut self, store: Resource<Bucket>, key: String) -> Answer<()> {
        let id = self.bucket(&store)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.delete(&id, &key).await.map_err(error))
    }

    async fn exists(&mut self, store: Resource<Bucket>, key: String) -> Answer<bool> {
        let id = self.bucket(&store)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.exists(&id, &key).await.map_err(error))
    }

    async fn get_keys(&mut self, store: Resource<Bucket>) -> Answer<Vec<String>> {
        let id = self.bucket(&store)?;
        let granted = self.capabilities.key_value.clone();
        Ok(granted.all_keys(&id).await.map_err(error))
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
