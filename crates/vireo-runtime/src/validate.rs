//! Deploy-time checks: is this a component, does it import only what Vireo links (the capability
//! registry's packages, or, when the version allows it, packages Vireo knows but does not
//! implement yet, linked as traps), and does it export the HTTP handler. Each rejection names
//! the problem.

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
    #[error(
        "the component imports {}, which Vireo does not implement yet; if it never calls them (SDKs import more than a function uses), deploy with the setting `allow_unimplemented_imports` (`vireo deploy --allow-unimplemented-imports`) to link each as a trap",
        imports_list(.0)
    )]
    UnimplementedImports(Vec<String>),
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

/// Packages of platforms Vireo is compatible with whose interfaces it does not implement yet;
/// a component importing one may still be deployed, with those imports linked as traps.
const KNOWN_PACKAGES: &[&str] = &[
    "fermyon:spin",
    "spin:postgres",
    "spin:mysql",
    "spin:redis",
    "spin:mqtt",
    "spin:sqlite",
    "spin:key-value",
    "spin:variables",
    "wasi:keyvalue",
    "wasi:blobstore",
    "wasi:messaging",
];

/// An import of a known package Vireo does not provide (yet): linkable as a trap.
pub(crate) fn is_unimplemented(import: &str) -> bool {
    !Registry::provides(import) && known_but_unimplemented(import)
}

fn known_but_unimplemented(import: &str) -> bool {
    KNOWN_PACKAGES.iter().any(|package| {
        import
            .strip_prefix(package)
            .is_some_and(|rest| rest.starts_with(['/', '@']))
    })
}

/// Checks the component's imports from its bytes, before anything is compiled, so a deploy
/// hears about them first. Returns the imports to link as traps (known packages Vireo does not
/// implement, when `allow_unimplemented` says so).
pub fn check_imports(bytes: &[u8], allow_unimplemented: bool) -> Result<Vec<String>, Rejection> {
    let (mut unsupported, mut unimplemented) = (Vec::new(), Vec::new());
    for import in top_level_imports(bytes)? {
        if Registry::provides(&import) {
            continue;
        }
        if known_but_unimplemented(&import) {
            unimplemented.push(import);
        } else {
            unsupported.push(import);
        }
    }
    if !unsupported.is_empty() {
        return Err(Rejection::UnsupportedImports(unsupported));
    }
    if !unimplemented.is_empty() && !allow_unimplemented {
        return Err(Rejection::UnimplementedImports(unimplemented));
    }
    Ok(unimplemented)
}

/// The names the outermost component imports (nested components and modules import from it).
fn top_level_imports(bytes: &[u8]) -> Result<Vec<String>, Rejection> {
    Ok(top_level_names(bytes)?.imports)
}

/// What the outermost component imports and exports, by name.
struct TopLevelNames {
    imports: Vec<String>,
    exports: Vec<String>,
}

fn top_level_names(bytes: &[u8]) -> Result<TopLevelNames, Rejection> {
    let invalid = |e: wasmparser::BinaryReaderError| Rejection::Invalid(e.to_string());
    let mut names = TopLevelNames {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    names
                        .imports
                        .push(import.map_err(invalid)?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    names
                        .exports
                        .push(export.map_err(invalid)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

fn is_http_handler(export: &str) -> bool {
    export.starts_with("wasi:http/incoming-handler@0.2.")
}

/// Everything deploy checks that needs no compiling, from the bytes alone: a component, whose
/// imports Vireo links, exporting the HTTP handler. For a developer's machine (`vireo build`),
/// where no engine runs. Returns the imports that would be linked as traps.
pub fn check_component(bytes: &[u8], allow_unimplemented: bool) -> Result<Vec<String>, Rejection> {
    check_header(bytes)?;
    let traps = check_imports(bytes, allow_unimplemented)?;
    let exports = top_level_names(bytes)?.exports;
    if !exports.iter().any(|name| is_http_handler(name)) {
        return Err(Rejection::NoHttpHandler(exports));
    }
    Ok(traps)
}

/// Checks the compiled component's exports and imports against what Vireo runs and links;
/// `allow_unimplemented` as for `check_imports`.
pub fn check_interface(
    engine: &Engine,
    component: &Component,
    allow_unimplemented: bool,
) -> Result<(), Rejection> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !exports.iter().any(|name| is_http_handler(name)) {
        return Err(Rejection::NoHttpHandler(exports));
    }
    let unsupported: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !Registry::provides(name))
        .filter(|name| !(allow_unimplemented && known_but_unimplemented(name)))
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
    fn known_packages_are_told_apart_from_unknown_ones() {
        for known in [
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/variables",
            "wasi:keyvalue/store@0.2.0-draft2",
            "spin:postgres/postgres@3.0.0",
        ] {
            assert!(known_but_unimplemented(known), "{known}");
        }
        for unknown in [
            "acme:thing/api@1.0.0",
            "wasi:keyvalues/store",
            "fermyon:spinach/x",
        ] {
            assert!(!known_but_unimplemented(unknown), "{unknown}");
        }
    }

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

    #[test]
    fn a_component_without_the_http_handler_is_refused_before_compiling() {
        assert_eq!(
            check_component(b"\0asm\x0d\0\x01\0", false),
            Err(Rejection::NoHttpHandler(Vec::new()))
        );
        assert_eq!(
            check_component(b"\0asm\x01\0\0\0", false),
            Err(Rejection::CoreModule)
        );
    }
}
