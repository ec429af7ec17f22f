//! Host bindings of the WIT Vireo binds itself, vendored under `wit/` at pinned versions.

wasmtime::component::bindgen!({
    path: "wit",
    world: "vireo:host/host",
    // Key-value, database and broker calls wait on I/O; a resource the guest hands back that
    // is not in its table is a trap, not an interface error.
    imports: {
        "wasi:keyvalue": async | trappable,
        "fermyon:spin/key-value": async | trappable,
        "spin:postgres/postgres": async | trappable,
        "fermyon:spin/redis": async | trappable,
        "fermyon:spin/mqtt": async | trappable,
        "fermyon:spin/mysql": async | trappable,
        "fermyon:spin/postgres": async | trappable,
        "wasi:blobstore": async | trappable,
        "fermyon:spin/sqlite": async | trappable,
        "spin:sqlite/sqlite": async | trappable,
    },
    with: {
        "wasi:keyvalue/store.bucket": crate::capability::key_value::Bucket,
        "wasi:keyvalue/atomics.cas": crate::capability::key_value::Cas,
        "fermyon:spin/key-value.store": crate::capability::key_value::Bucket,
        // Every version of the interface lends the same connections.
        "spin:postgres/postgres.connection": crate::capability::postgres::Connection,
        "fermyon:spin/postgres.connection": crate::capability::postgres::Connection,
        "fermyon:spin/redis.connection": crate::capability::redis::Connection,
        "fermyon:spin/mqtt.connection": crate::capability::mqtt::Connection,
        "fermyon:spin/mysql.connection": crate::capability::mysql::Connection,
        "fermyon:spin/sqlite.connection": crate::capability::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::capability::sqlite::Connection,
        // Streams are wasmtime-wasi's, so a guest reads and writes objects with wasi:io.
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:blobstore/container.container": crate::capability::blobstore::Container,
        "wasi:blobstore/container.stream-object-names": crate::capability::blobstore::NameStream,
        "wasi:blobstore/types.outgoing-value": crate::capability::blobstore::OutgoingValue,
        "wasi:blobstore/types.incoming-value": crate::capability::blobstore::IncomingValue,
    },
});
