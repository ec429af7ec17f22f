//! Imports of packages Vireo knows but does not implement yet, linked as traps for versions that
//! allow it (`allow_unimplemented_imports`): each function fails the invocation that calls it,
//! naming itself. Only those imports are stubbed: everything Vireo does provide keeps its real
//! (semver-matched) implementation.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

use crate::host::Host;
use crate::validate;

/// The one host type every stubbed resource has: nothing can construct one, so they never
/// need telling apart, and interfaces that share a resource (`use`) agree on its type.
struct Unimplemented;

/// A copy of `linker` with `component`'s unimplemented known imports stubbed as traps.
pub(crate) fn linker_with_traps(
    linker: &Linker<Host>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<Linker<Host>> {
    let mut linker = linker.clone();
    for (name, import) in component.component_type().imports(engine) {
        if !validate::is_unimplemented(name) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        let mut stubs = linker.instance(name)?;
        for (item, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let called = format!("{name}#{item}");
                    stubs.func_new(item, move |_, _, _, _| {
                        wasmtime::bail!(
                            "the function called `{called}`, which Vireo does not implement yet (it was linked as a trap: allow_unimplemented_imports)"
                        )
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stubs.resource(item, ResourceType::host::<Unimplemented>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(linker)
}
