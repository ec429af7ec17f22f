//! Deploy-time checks: is this a component, does it export the HTTP handler, and does it import
//! only what Vireo links (the capability registry's packages). Each rejection names the problem.

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::capability::Registry;

/// Why a deploy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "not a WebAssembly component: the bytes do not start with the wasm magic number `\\0asm`"
    )]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build for `wasm32-wasip2` (or run `wasm-tools component new`) so it exports wasi:http/incoming-handler"
    )]
    CoreModule,
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "the component does not export `wasi:http/incoming-handler@0.2.x`, so it cannot serve requests (it exports: {})",
        exports_list(.0)
    )]
    NoHttpHandler(Vec<String>),
    #[error(
        "the component imports {}, which Vireo does not provide (Vireo links {})",
        imports_list(.0),
        Registry::describe()
    )]
    UnsupportedImports(Vec<String>),
    #[error("the component cannot be linked: {0}")]
    Unlinkable(String),
}

fn exports_list(exports: &[String]) -> String {
    if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports.join(", ")
    }
}

fn imports_list(imports: &[String]) -> String {
    imports
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rejects bytes that are not a component before spending time compiling them.
pub fn check_header(bytes: &[u8]) -> Result<(), Rejection> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(Rejection::CoreModule)
    } else if bytes.starts_with(b"\0asm") {
        Err(Rejection::Invalid(
            "unknown wasm binary version or layer".to_string(),
        ))
    } else {
        Err(Rejection::NotWasm)
    }
}

/// Checks the compiled component's exports and imports against what Vireo runs and links.
pub fn check_interface(engine: &Engine, component: &Component) -> Result<(), Rejection> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !exports
        .iter()
        .any(|name| name.starts_with("wasi:http/incoming-handler@0.2."))
    {
        return Err(Rejection::NoHttpHandler(exports));
    }
    let unsupported: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !Registry::provides(name))
        .collect();
    if !unsupported.is_empty() {
        return Err(Rejection::UnsupportedImports(unsupported));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_modules_from_components() {
        assert_eq!(check_header(b"hello world"), Err(Rejection::NotWasm));
        assert_eq!(check_header(b"\0asm\x01\0\0\0"), Err(Rejection::CoreModule));
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
        assert!(matches!(
            check_header(b"\0asm\x99\0\0\0"),
            Err(Rejection::Invalid(_))
        ));
    }
}
