//! `wasi:blobstore` blobstore, container and types at 0.2.0-draft.

use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::streams::{Download, Pipe};
use super::{Container, Failure, IncomingValue, NameStream, OutgoingValue, seconds};
use crate::bindings::wasi::blobstore::{blobstore, container, types};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    blobstore::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    container::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    types::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

type Answer<T> = wasmtime::Result<Result<T, Failure>>;

impl Host {
    /// The bucket a guest's container names; a handle not in its table traps.
    fn container(&self, container: &Resource<Container>) -> wasmtime::Result<vireo_core::BucketId> {
        Ok(self.table.get(container)?.id.clone())
    }

    fn opened(&mut self, opened: Result<Container, Failure>) -> Answer<Resource<Container>> {
        match opened {
            Ok(container) => Ok(Ok(self.table.push(container)?)),
            Err(failure) => Ok(Err(failure)),
        }
    }
}

impl blobstore::Host for Host {
    async fn create_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let active = self.capabilities.blobstore.clone();
        let created = active.create(&name).await;
        self.opened(created)
    }

    async fn get_container(&mut self, name: String) -> Answer<Resource<Container>> {
        let active = self.capabilities.blobstore.clone();
        let opened = active.open(&name).await;
        self.opened(opened)
    }

    async fn delete_container(&mut self, name: String) -> Answer<()> {
        // Deleting every object of a bucket is the people's decision, not a function's.
        Ok(Err(format!(
            "bucket {name:?} cannot be deleted by a function; delete it through the admin API"
        )))
    }

    async fn container_exists(&mut self, name: String) -> Answer<bool> {
        let active = self.capabilities.blobstore.clone();
        Ok(active.exists(&name).await)
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let active = self.capabilities.blobstore.clone();
        Ok(active.copy(&at(src), &at(dest)).await)
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let active = self.capabilities.blobstore.clone();
        Ok(active.rename(&at(src), &at(dest)).await)
    }
}

fn at(id: types::ObjectId) -> super::ObjectAt {
    (id.container, id.object)
}

impl container::Host for Host {}

impl container::HostContainer for Host {
    async fn name(&mut self, container: Resource<Container>) -> Answer<String> {
        Ok(Ok(self.container(&container)?.bucket.to_string()))
    }

    async fn info(&mut self, container: Resource<Container>) -> Answer<types::ContainerMetadata> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active
            .bucket_info(&id)
            .await
            .map(|info| types::ContainerMetadata {
                name: info.name.to_string(),
                created_at: seconds(info.created_at_us),
            }))
    }

    async fn get_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Answer<Resource<IncomingValue>> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        match active.get(&id, &name, (start, end)).await {
            Ok(value) => Ok(Ok(self.table.push(value)?)),
            Err(failure) => Ok(Err(failure)),
        }
    }

    async fn write_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Answer<()> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        let value = self.table.get_mut(&data)?;
        Ok(active.start_write(&id, &name, value))
    }

    async fn list_objects(
        &mut self,
        container: Resource<Container>,
    ) -> Answer<Resource<NameStream>> {
        let id = self.container(&container)?;
        Ok(Ok(self.table.push(NameStream::of(id))?))
    }

    async fn delete_object(&mut self, container: Resource<Container>, name: String) -> Answer<()> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active.delete(&id, &name).await)
    }

    async fn delete_objects(
        &mut self,
        container: Resource<Container>,
        names: Vec<String>,
    ) -> Answer<()> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active.delete_many(&id, &names).await)
    }

    async fn has_object(&mut self, container: Resource<Container>, name: String) -> Answer<bool> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active.info(&id, &name).await.map(|info| info.is_some()))
    }

    async fn object_info(
        &mut self,
        container: Resource<Container>,
        name: String,
    ) -> Answer<types::ObjectMetadata> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(match active.info(&id, &name).await {
            Ok(Some(info)) => Ok(types::ObjectMetadata {
                name: info.key,
                container: id.bucket.to_string(),
                created_at: seconds(info.created_at_us),
                size: info.size,
            }),
            Ok(None) => Err(super::missing(&id, &name)),
            Err(failure) => Err(failure),
        })
    }

    async fn clear(&mut self, container: Resource<Container>) -> Answer<()> {
        let id = self.container(&container)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active.clear(&id).await)
    }

    async fn drop(&mut self, container: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for Host {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<NameStream>,
        len: u64,
    ) -> Answer<(Vec<String>, bool)> {
        let active = self.capabilities.blobstore.clone();
        let stream = self.table.get_mut(&names)?;
        Ok(active.next_names(stream, len).await)
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<NameStream>,
        num: u64,
    ) -> Answer<(u64, bool)> {
        let active = self.capabilities.blobstore.clone();
        let stream = self.table.get_mut(&names)?;
        Ok(active
            .next_names(stream, num)
            .await
            .map(|(skipped, done)| (super::as_u64(skipped.len()), done)))
    }

    async fn drop(&mut self, names: Resource<NameStream>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl types::Host for Host {}

impl types::HostOutgoingValue for Host {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue {
            pipe: Pipe::new(),
            writing: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let Some(upload) = self.table.get_mut(&value)?.pipe.upload() else {
            return Ok(Err(()));
        };
        let stream: DynOutputStream = Box::new(upload);
        // A child: the value cannot be finished or dropped while its stream is open.
        Ok(Ok(self.table.push_child(stream, &value)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Answer<()> {
        let value = self.table.delete(value)?;
        Ok(super::Active::finish(value).await)
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

impl types::HostIncomingValue for Host {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Vec<u8>> {
        let value = self.table.delete(value)?;
        let active = self.capabilities.blobstore.clone();
        Ok(active.consume(value).await)
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Resource<DynInputStream>> {
        let IncomingValue { read, permit } = self.table.delete(value)?;
        let tally = self.capabilities.blobstore.tally.clone();
        let stream: DynInputStream = Box::new(Download::new(read.body, tally, permit));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.read.range.len())
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
