//! The content-addressed blob store.

use std::io::ErrorKind;

use vireo_store::BlobStore;

#[tokio::test]
async fn put_then_get_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let bytes = b"\0asm component bytes";

    let sha = blobs.put(bytes).await.unwrap();
    assert_eq!(sha, vireo_core::component_sha256(bytes));
    assert_eq!(
        blobs.path(&sha),
        dir.path().join("blobs").join(format!("{sha}.wasm"))
    );
    assert_eq!(blobs.get(&sha).await.unwrap(), bytes);
}

#[tokio::test]
async fn put_is_idempotent_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let first = blobs.put(b"same").await.unwrap();
    let second = blobs.put(b"same").await.unwrap();
    let other = blobs.put(b"other").await.unwrap();
    assert_eq!(first, second);
    assert_ne!(first, other);

    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected = [format!("{first}.wasm"), format!("{other}.wasm")];
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn damaged_or_swapped_bytes_are_refused_and_storing_them_again_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let a = blobs.put(b"component a").await.unwrap();
    let b = blobs.put(b"component b").await.unwrap();

    // A's bytes under B's name: B must not be served as A.
    std::fs::copy(blobs.path(&a), blobs.path(&b)).unwrap();
    let err = blobs.get(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("deploy it again"), "{err}");
    assert_eq!(blobs.get(&a).await.unwrap(), b"component a");

    assert_eq!(blobs.put(b"component b").await.unwrap(), b);
    assert_eq!(blobs.get(&b).await.unwrap(), b"component b");

    // A truncated copy is refused the same way.
    std::fs::write(blobs.path(&a), b"comp").unwrap();
    assert_eq!(
        blobs.get(&a).await.unwrap_err().kind(),
        ErrorKind::InvalidData
    );
}

#[tokio::test]
async fn opening_removes_temporary_files_of_interrupted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let sha = BlobStore::open(dir.path())
        .unwrap()
        .put(b"kept")
        .await
        .unwrap();
    std::fs::write(dir.path().join(".incoming-x1y2z3"), b"half a comp").unwrap();

    let blobs = BlobStore::open(dir.path()).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [format!("{sha}.wasm")]);
    assert_eq!(blobs.get(&sha).await.unwrap(), b"kept");
}
