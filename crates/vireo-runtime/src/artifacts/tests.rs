use std::os::unix::fs::FileExt as _;

use super::*;

/// The smallest component: the preamble of the component binary format and nothing else.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";
const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn cache() -> (tempfile::TempDir, Engine, ArtifactCache, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = ArtifactCache::open(dir.path(), &engine).unwrap();
    let compiled = engine.precompile_component(EMPTY_COMPONENT).unwrap();
    (dir, engine, cache, compiled)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_stored_artifact_loads_with_its_digest_beside_it() {
    let (dir, engine, cache, compiled) = cache();
    cache.store(&engine, SHA, &compiled).unwrap();
    let path = cache.path(SHA);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(names(dir.path()), [name.clone(), format!("{name}.sha256")]);
    assert_eq!(
        std::fs::read_to_string(digest_path(&path)).unwrap(),
        format!("{}  {name}\n", verified::sha256_hex(&compiled))
    );
    assert!(cache.load(&engine, SHA).unwrap().is_some());
    assert!(
        cache
            .load(&engine, &SHA.replace('0', "f"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn damaged_artifacts_are_discarded_and_can_be_stored_again() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 5] = [
        ("16 bytes overwritten in the middle", |path| {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            let middle = file.metadata().unwrap().len() / 2;
            file.write_at(&[0xcc; 16], middle).unwrap();
        }),
        ("truncated", |path| {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(file.metadata().unwrap().len() / 2).unwrap();
        }),
        ("replaced by garbage", |path| {
            std::fs::write(path, b"not an artifact at all").unwrap();
        }),
        ("its digest missing", |path| {
            std::fs::remove_file(digest_path(path)).unwrap();
        }),
        ("its digest garbled", |path| {
            std::fs::write(digest_path(path), b"\xff\xfe").unwrap();
        }),
    ];
    for (damage, apply) in damages {
        let (dir, engine, cache, compiled) = cache();
        cache.store(&engine, SHA, &compiled).unwrap();
        apply(&cache.path(SHA));

        assert!(cache.load(&engine, SHA).unwrap().is_none(), "{damage}");
        assert!(names(dir.path()).is_empty(), "{damage}: both files go");
        cache.store(&engine, SHA, &compiled).unwrap();
        assert!(cache.load(&engine, SHA).unwrap().is_some(), "{damage}");
    }
}

#[test]
fn a_file_replaced_after_its_check_is_not_removed_for_the_old_one() {
    let (dir, engine, cache, compiled) = cache();
    cache.store(&engine, SHA, &compiled).unwrap();
    let path = cache.path(SHA);
    std::fs::write(&path, b"damaged").unwrap();
    let Check::Damaged { seen, reason } = cache.check(&path).unwrap() else {
        panic!("the damage was not found");
    };
    // Another load compiles and stores a fresh copy before this one discards what it saw.
    cache.store(&engine, SHA, &compiled).unwrap();
    cache.discard(&path, seen, &reason);
    assert_eq!(names(dir.path()).len(), 2);
    assert!(cache.load(&engine, SHA).unwrap().is_some());
}

#[test]
fn opening_removes_temporary_files_of_interrupted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    for name in [
        ".incoming-a1b2c3",
        ".tmpXYZ123",
        "kept.cwasm",
        "kept.cwasm.sha256",
    ] {
        std::fs::write(dir.path().join(name), b"partial").unwrap();
    }
    ArtifactCache::open(dir.path(), &engine).unwrap();
    assert_eq!(names(dir.path()), ["kept.cwasm", "kept.cwasm.sha256"]);
}

#[test]
fn removing_an_artifact_removes_its_digest() {
    let (dir, engine, cache, compiled) = cache();
    cache.store(&engine, SHA, &compiled).unwrap();
    cache.remove(SHA);
    assert!(names(dir.path()).is_empty());
    assert!(cache.load(&engine, SHA).unwrap().is_none());
}
