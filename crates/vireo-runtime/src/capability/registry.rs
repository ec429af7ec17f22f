//! What the list of capabilities expands to: the `Registry` (one field per capability) with
//! what it does once per engine (link), per deploy (validate, the packages a component may
//! import) and per load; the per-version and per-instance states, one field per capability.
//! A macro rather than a derive: the list is the only place a capability is named.

/// Settings a capability could not grant; its message names the setting.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SettingsRefused(vireo_core::BoxError);

/// A capability whose interfaces could not be added to the linker.
#[derive(Debug, thiserror::Error)]
#[error("linking the {capability} capability: {message}")]
pub(crate) struct LinkFailed {
    capability: &'static str,
    message: String,
}

macro_rules! capabilities {
    ($($(#[$doc:meta])* $field:ident: $capability:ty),+ $(,)?) => {
        /// Every capability, one field each.
        pub(crate) struct Registry {
            $($(#[$doc])* $field: $capability,)+
        }

        /// A loaded version's state, one field per capability.
        pub(crate) struct Versions {
            $($field: <$capability as $crate::capability::Capability>::Version,)+
        }

        /// An instance's state, one field per capability; its `Host` holds it.
        pub(crate) struct Instances {
            $(pub(crate) $field: <$capability as $crate::capability::Capability>::Instance,)+
        }

        impl Registry {
            /// The packages each capability links, in the list's order.
            pub(crate) const PACKAGES: &[&[$crate::capability::Package]] =
                &[$(<$capability as $crate::capability::Capability>::PACKAGES),+];

            pub(crate) fn new(
                settings: &$crate::engine::EngineSettings,
                services: &$crate::engine::HostServices,
            ) -> Self {
                Self {
                    $($field: <$capability as $crate::capability::Capability>::new(
                        settings,
                        services,
                    ),)+
                }
            }

            pub(crate) fn link(
                linker: &mut ::wasmtime::component::Linker<$crate::host::Host>,
            ) -> Result<(), $crate::capability::registry::LinkFailed> {
                $(<$capability as $crate::capability::Capability>::link(linker).map_err(|e| {
                    $crate::capability::registry::LinkFailed::new(
                        <$capability as $crate::capability::Capability>::NAME,
                        &e,
                    )
                })?;)+
                Ok(())
            }

            /// Deploy time: whether every capability can grant what `settings` ask.
            pub(crate) fn validate(
                &self,
                settings: &::vireo_core::VersionSettings,
            ) -> Result<(), $crate::capability::SettingsRefused> {
                $($crate::capability::Capability::validate(&self.$field, settings)
                    .map_err($crate::capability::SettingsRefused::from)?;)+
                Ok(())
            }

            pub(crate) fn load(&self, grants: &$crate::capability::Grants) -> Versions {
                Versions {
                    $($field: $crate::capability::Capability::load(&self.$field, grants),)+
                }
            }
        }

        impl Versions {
            pub(crate) fn instance(&self, output: &$crate::logs::LogCapture) -> Instances {
                Instances {
                    $($field: <$capability as $crate::capability::Capability>::instance(
                        &self.$field,
                        output,
                    ),)+
                }
            }
        }

        impl Instances {
            pub(crate) fn arm(&mut self, invocation: &$crate::capability::Invocation) {
                $(<$capability as $crate::capability::Capability>::arm(
                    &mut self.$field,
                    invocation,
                );)+
            }
        }
    };
}

use super::{Package, Registry};

impl From<vireo_core::BoxError> for SettingsRefused {
    fn from(reason: vireo_core::BoxError) -> Self {
        Self(reason)
    }
}

impl LinkFailed {
    pub(crate) fn new(capability: &'static str, error: &wasmtime::Error) -> Self {
        Self {
            capability,
            message: format!("{error:#}"),
        }
    }
}

impl Registry {
    /// Whether some capability links `import` (`wasi:http/types@0.2.4`).
    pub(crate) fn provides(import: &str) -> bool {
        Self::packages().any(|package| package.provides(import))
    }

    /// The packages linked, grouped by version in the list's order: `wasi:cli, wasi:io and
    /// wasi:http at 0.2.x`, with `; ` between versions; versions linking the same packages
    /// share one group (`spin:postgres at 4.0.x and 3.0.x`).
    pub(crate) fn describe() -> String {
        let mut by_version: Vec<(&str, Vec<String>)> = Vec::new();
        for package in Self::packages() {
            let index = match by_version.iter().position(|(v, _)| *v == package.version) {
                Some(index) => index,
                None => {
                    by_version.push((package.version, Vec::new()));
                    by_version.len() - 1
                }
            };
            let names = &mut by_version[index].1;
            for name in package.described() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for (version, names) in by_version {
            let version = format!("{version}.x");
            match groups.iter_mut().find(|(linked, _)| *linked == names) {
                Some((_, versions)) => versions.push(version),
                None => groups.push((names, vec![version])),
            }
        }
        groups
            .iter()
            .map(|(names, versions)| format!("{} at {}", and_list(names), and_list(versions)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn packages() -> impl Iterator<Item = &'static Package> {
        Self::PACKAGES.iter().flat_map(|packages| packages.iter())
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list<S: AsRef<str>>(names: &[S]) -> String {
    match names {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_links_wasi_and_http_at_0_2() {
        assert!(Registry::provides("wasi:io/streams@0.2.4"));
        assert!(Registry::provides("wasi:http/types@0.2.0"));
        assert!(!Registry::provides("wasi:http/types@0.3.0"));
        assert!(!Registry::provides("wasi:http/types"));
        assert!(!Registry::provides("wasi:httpx/types@0.2.0"));
        assert!(Registry::provides("wasi:keyvalue/store@0.2.0-draft2"));
        assert!(Registry::provides("wasi:blobstore/container@0.2.0-draft"));
        assert!(!Registry::provides("acme:missing/api@1.0.0"));
        assert!(Registry::provides(
            "wasi:config/store@0.2.0-draft-2024-09-27"
        ));
        assert!(Registry::provides("fermyon:spin/variables@2.0.0"));
        assert!(Registry::provides("fermyon:spin/key-value@2.0.0"));
        assert!(!Registry::provides("fermyon:spin/llm@2.0.0"));
        assert!(Registry::provides("spin:postgres/postgres@3.0.0"));
        assert!(Registry::provides("spin:postgres/postgres@4.0.0"));
        assert!(!Registry::provides("spin:postgres/postgres@4.2.0-rc"));
        assert!(Registry::provides("fermyon:spin/redis@2.0.0"));
        assert!(Registry::provides("fermyon:spin/mqtt@2.0.0"));
        assert!(Registry::provides("fermyon:spin/mysql@2.0.0"));
        assert!(Registry::provides("fermyon:spin/postgres@2.0.0"));
        assert!(Registry::provides("fermyon:spin/sqlite@2.0.0"));
        assert!(Registry::provides("spin:sqlite/sqlite@3.0.0"));
    }

    #[test]
    fn the_description_names_every_package_by_version() {
        assert_eq!(
            Registry::describe(),
            "wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets, wasi:http, wasi:config, wasi:keyvalue and wasi:blobstore at 0.2.x; fermyon:spin/variables, fermyon:spin/key-value, fermyon:spin/postgres, fermyon:spin/redis, fermyon:spin/mqtt, fermyon:spin/mysql, fermyon:spin/rdbms-types and fermyon:spin/sqlite at 2.0.x; spin:postgres at 4.0.x; spin:postgres and spin:sqlite at 3.0.x"
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(and_list(&["a"]), "a");
        assert_eq!(and_list(&["a", "b"]), "a and b");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }
}
