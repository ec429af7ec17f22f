//! Spin's `fermyon:spin/mqtt@2.0.0` (`spin_sdk::mqtt::Connection`).

use rumqttc::QoS;
use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Connection, Failure};
use crate::bindings::fermyon::spin::mqtt::{self, Error, Qos};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    mqtt::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

fn error(failure: Failure) -> Error {
    match failure {
        Failure::InvalidAddress => Error::InvalidAddress,
        Failure::ConnectionFailed(message) => Error::ConnectionFailed(message),
        Failure::Other(message) => Error::Other(message),
    }
}

impl mqtt::Host for Host {}

impl mqtt::HostConnection for Host {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Answer<Resource<Connection>> {
        let credentials = (username.as_str(), password.as_str());
        let mqtt = &self.capabilities.mqtt;
        match mqtt
            .open(&address, credentials, keep_alive_interval_in_secs)
            .await
        {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(failure) => Ok(Err(error(failure))),
        }
    }

    async fn publish(
        &mut self,
        connection: Resource<Connection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Answer<()> {
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        let connection = self.table.get_mut(&connection)?;
        let mqtt = &self.capabilities.mqtt;
        Ok(mqtt
            .publish(connection, topic, payload, qos)
            .await
            .map_err(error))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
