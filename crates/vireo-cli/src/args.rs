//! Value parsers shared by several commands, so bad input is refused before any request is sent.

use std::path::PathBuf;

use anyhow::Context as _;
use tokio::io::AsyncReadExt as _;
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

pub fn bucket_name(value: &str) -> Result<Name, String> {
    Name::parse("bucket", value).map_err(|e| e.to_string())
}

pub fn sqlite_database_name(value: &str) -> Result<Name, String> {
    Name::parse("SQLite database", value).map_err(|e| e.to_string())
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

/// Bytes given on the command line: a literal, a file's contents, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Literal(String),
    File(PathBuf),
    Stdin,
}

impl Data {
    /// The bytes, verbatim.
    pub async fn read(self) -> anyhow::Result<Vec<u8>> {
        match self {
            Data::Literal(text) => Ok(text.into_bytes()),
            Data::File(path) => tokio::fs::read(&path)
                .await
                .with_context(|| format!("reading {}", path.display())),
            Data::Stdin => {
                let mut bytes = Vec::new();
                tokio::io::stdin()
                    .read_to_end(&mut bytes)
                    .await
                    .context("reading standard input")?;
                Ok(bytes)
            }
        }
    }
}

/// `STRING`, `@FILE` or `@-` (standard input).
pub fn data(value: &str) -> Result<Data, String> {
    match value.strip_prefix('@') {
        None => Ok(Data::Literal(value.to_string())),
        Some("-") => Ok(Data::Stdin),
        Some("") => Err("expected a file name after '@' (or @- for standard input)".to_string()),
        Some(path) => Ok(Data::File(PathBuf::from(path))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_a_literal_a_file_or_stdin() {
        assert_eq!(data("a=1"), Ok(Data::Literal("a=1".into())));
        assert_eq!(data(""), Ok(Data::Literal(String::new())));
        assert_eq!(data("@body.json"), Ok(Data::File("body.json".into())));
        assert_eq!(data("@-"), Ok(Data::Stdin));
        assert!(data("@").unwrap_err().contains("file name"));
    }

    #[tokio::test]
    async fn data_files_are_read_and_missing_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.txt");
        std::fs::write(&path, "from a file").unwrap();
        assert_eq!(Data::File(path).read().await.unwrap(), b"from a file");
        let missing = dir.path().join("missing.txt");
        let err = Data::File(missing.clone()).read().await.unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

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
