//! Spin's `fermyon:spin/redis@2.0.0` (`spin_sdk::redis::Connection`).

use ::redis::{FromRedisValue, Value};
use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Connection, Failure, guest_command};
use crate::bindings::fermyon::spin::redis::{self, Error, RedisParameter, RedisResult};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    redis::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

fn error(failure: Failure) -> Error {
    match failure {
        Failure::InvalidAddress => Error::InvalidAddress,
        Failure::TypeError => Error::TypeError,
        Failure::Other(message) => Error::Other(message),
    }
}

/// A reply as the type a typed call answers; a reply of another type is `type-error`.
fn typed<T: FromRedisValue>(value: Value) -> Result<T, Error> {
    T::from_redis_value(value).map_err(|_| Error::TypeError)
}

/// A reply as `execute` answers it: arrays flattened, other RESP3 types refused.
fn results(value: Value, into: &mut Vec<RedisResult>) -> Result<(), Error> {
    match value {
        Value::Nil => into.push(RedisResult::Nil),
        Value::Okay => into.push(RedisResult::Status("OK".into())),
        Value::SimpleString(status) => into.push(RedisResult::Status(status)),
        Value::Int(number) => into.push(RedisResult::Int64(number)),
        Value::BulkString(bytes) => into.push(RedisResult::Binary(bytes)),
        Value::Array(values) | Value::Set(values) => {
            for value in values {
                results(value, into)?;
            }
        }
        other => {
            return Err(Error::Other(format!(
                "a reply of a type the interface cannot carry: {other:?}"
            )));
        }
    }
    Ok(())
}

impl Host {
    /// Runs `command` on the guest's `connection`.
    async fn redis(
        &mut self,
        connection: &Resource<Connection>,
        command: ::redis::Cmd,
    ) -> wasmtime::Result<Result<Value, Error>> {
        let connection = self.table.get_mut(connection)?;
        Ok(self
            .capabilities
            .redis
            .run(connection, command)
            .await
            .map_err(error))
    }

    /// Runs `command` and reads its reply as `T`.
    async fn redis_typed<T: FromRedisValue>(
        &mut self,
        connection: &Resource<Connection>,
        command: ::redis::Cmd,
    ) -> Answer<T> {
        Ok(self.redis(connection, command).await?.and_then(typed))
    }
}

impl redis::Host for Host {}

impl redis::HostConnection for Host {
    async fn open(&mut self, address: String) -> Answer<Resource<Connection>> {
        match self.capabilities.redis.open(&address).await {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(failure) => Ok(Err(error(failure))),
        }
    }

    async fn publish(
        &mut self,
        connection: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Answer<()> {
        let mut command = ::redis::cmd("PUBLISH");
        command.arg(channel).arg(payload);
        Ok(self.redis(&connection, command).await?.map(drop))
    }

    async fn get(
        &mut self,
        connection: Resource<Connection>,
        key: String,
    ) -> Answer<Option<Vec<u8>>> {
        let mut command = ::redis::cmd("GET");
        command.arg(key);
        self.redis_typed(&connection, command).await
    }

    async fn set(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<()> {
        let mut command = ::redis::cmd("SET");
        command.arg(key).arg(value);
        Ok(self.redis(&connection, command).await?.map(drop))
    }

    async fn incr(&mut self, connection: Resource<Connection>, key: String) -> Answer<i64> {
        let mut command = ::redis::cmd("INCR");
        command.arg(key);
        self.redis_typed(&connection, command).await
    }

    async fn del(&mut self, connection: Resource<Connection>, keys: Vec<String>) -> Answer<u32> {
        let mut command = ::redis::cmd("DEL");
        command.arg(keys);
        self.redis_typed(&connection, command).await
    }

    async fn sadd(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Answer<u32> {
        let mut command = ::redis::cmd("SADD");
        command.arg(key).arg(values);
        self.redis_typed(&connection, command).await
    }

    async fn smembers(
        &mut self,
        connection: Resource<Connection>,
        key: String,
    ) -> Answer<Vec<String>> {
        let mut command = ::redis::cmd("SMEMBERS");
        command.arg(key);
        self.redis_typed(&connection, command).await
    }

    async fn srem(
        &mut self,
        connection: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Answer<u32> {
        let mut command = ::redis::cmd("SREM");
        command.arg(key).arg(values);
        self.redis_typed(&connection, command).await
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Answer<Vec<RedisResult>> {
        let mut command = match guest_command(&command) {
            Ok(command) => command,
            Err(failure) => return Ok(Err(error(failure))),
        };
        for argument in arguments {
            match argument {
                RedisParameter::Int64(number) => command.arg(number),
                RedisParameter::Binary(bytes) => command.arg(bytes),
            };
        }
        let reply = match self.redis(&connection, command).await? {
            Ok(reply) => reply,
            Err(error) => return Ok(Err(error)),
        };
        let mut answer = Vec::new();
        Ok(results(reply, &mut answer).map(|()| answer))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
