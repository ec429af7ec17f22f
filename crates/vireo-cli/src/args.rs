//! Value parsers shared by several commands, so bad input is refused before any request is sent.

use vireo_core::{InvalidName, InvocationId, InvocationMatch, Name, VersionSelector};

pub fn function_name(value: &str) -> Result<Name, InvalidName> {
    Name::parse("function", value)
}

/// `NAME`, `NAME@VERSION` or `NAME@ALIAS`, checked and kept as written.
pub fn target(value: &str) -> Result<String, String> {
    VersionSelector::split_target(value).map_err(|err| err.to_string())?;
    Ok(value.to_string())
}

pub fn invocation_id(value: &str) -> Result<InvocationId, String> {
    InvocationId::parse(value).ok_or_else(|| {
        format!(
            "invalid invocation id {value:?}: expected a full UUID as printed by `vireo invoke`"
        )
    })
}

/// A key-value store's name: a namespace's names' rules.
pub fn kv_store_name(value: &str) -> Result<Name, String> {
    Name::parse("key-value store", value).map_err(|e| e.to_string())
}

/// `vireo logs --invocation`: a whole id, or the short one `vireo logs` prints (its end).
pub fn invocation_match(value: &str) -> Result<InvocationMatch, String> {
    InvocationMatch::parse(value).ok_or_else(|| {
        format!(
            "invalid invocation id {value:?}: pass the id `vireo invoke` prints, or the short one \
             `vireo logs` shows (at least its last {} characters)",
            InvocationMatch::SHORTEST_END
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_invocation_ids_are_checked() {
        assert_eq!(function_name("hello").unwrap().as_str(), "hello");
        assert!(
            function_name("Hello")
                .unwrap_err()
                .to_string()
                .contains("[a-z0-9]")
        );
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(invocation_id(id).unwrap().as_str(), id);
        assert!(invocation_id("0193a1b2").unwrap_err().contains("full UUID"));
        assert_eq!(target("hello@prod"), Ok("hello@prod".into()));
        assert!(target("hello@").is_err());
        assert!(target("Hello").is_err());
    }
}
