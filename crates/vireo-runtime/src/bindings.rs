//! Host bindings of the WIT Vireo binds itself, vendored under `wit/` at pinned versions.

wasmtime::component::bindgen!({
    path: "wit",
    world: "vireo:host/host",
});
