//! Host bindings of the WIT Vireo binds itself, vendored under `wit/` at pinned versions.

wasmtime::component::bindgen!({
    path: "wit",
    world: "vireo:host/host",
    // Key-value calls wait on the store; a resource the guest hands back that is not in its
    // table is a trap, not an interface error.
    imports: {
        "wasi:keyvalue": async | trappable,
        "fermyon:spin/key-value": async | trappable,
    },
    with: {
        "wasi:keyvalue/store.bucket": crate::capability::key_value::Bucket,
        "wasi:keyvalue/atomics.cas": crate::capability::key_value::Cas,
        "fermyon:spin/key-value.store": crate::capability::key_value::Bucket,
    },
});
