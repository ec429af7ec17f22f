//! Rules that decide what a write does, apart from how any database stores it, so every backend
//! applies them alike. Each takes what the backend read in the transaction that writes.

pub(crate) mod accept;
pub(crate) mod key_value;

use vireo_core::{Name, StoreError};

/// `NamespaceNotFound` or `FunctionNotFound`, whichever is precise, from what one snapshot
/// said of the two.
pub(crate) fn function_found(
    namespace: &Name,
    function: &Name,
    namespace_exists: bool,
    function_exists: bool,
) -> Result<(), StoreError> {
    match (namespace_exists, function_exists) {
        (false, _) => Err(StoreError::NamespaceNotFound(namespace.clone())),
        (true, false) => Err(StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        }),
        (true, true) => Ok(()),
    }
}

/// Refuses a new function in a namespace holding `count` functions at its `max_functions`
/// quota; a new version of a function it holds is no new function.
pub(crate) fn admit_function(
    namespace: &Name,
    count: u64,
    max_functions: Option<u64>,
) -> Result<(), StoreError> {
    match max_functions {
        Some(quota) if count >= quota => Err(StoreError::QuotaExceeded(format!(
            "namespace {namespace} already holds {count} functions, its max_functions quota is {quota}"
        ))),
        _ => Ok(()),
    }
}

/// Refuses to delete a namespace that still holds functions, schedules or secrets.
pub(crate) fn admit_namespace_deletion(
    namespace: &Name,
    functions: u64,
    schedules: u64,
    secrets: u64,
) -> Result<(), StoreError> {
    if functions + schedules + secrets == 0 {
        return Ok(());
    }
    Err(StoreError::NamespaceNotEmpty {
        namespace: namespace.clone(),
        what: format!("{functions} functions, {schedules} schedules and {secrets} secrets"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_refuse_only_beyond_their_value() {
        let namespace = Name::default_namespace();
        assert!(admit_function(&namespace, 5, None).is_ok());
        assert!(admit_function(&namespace, 1, Some(2)).is_ok());
        let refused = admit_function(&namespace, 2, Some(2)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "namespace default already holds 2 functions, its max_functions quota is 2"
        );
        assert!(admit_namespace_deletion(&namespace, 0, 0, 0).is_ok());
        let refused = admit_namespace_deletion(&namespace, 0, 1, 0).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("0 functions, 1 schedules and 0 secrets"),
            "{refused}"
        );
    }
}
