use super::*;

fn fake_elf() -> Vec<u8> {
    let mut b = b"\x7fELF".to_vec();
    b.extend(std::iter::repeat_n(7u8, 4096));
    b
}

/// The digests `cargo xtask image` gave for this input before the builder moved into this
/// crate (commit a8f3a3f): the move, and any later change, must not change a single byte.
#[test]
fn golden_digests_from_before_the_move() {
    let a = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
    assert_eq!(
        a.manifest_digest,
        "sha256:aaf4435379b48ec6b4eff512b86de393993b83fe198c9b63d2ee74168b622892"
    );
    assert_eq!(
        sha256_hex(&a.archive),
        "3c6b5da801c4106e51c6d26bb1bcd2aa840ce229510dd7c88759d1c0f8b557c0"
    );
    let b = build(&fake_elf(), "example.test/probe:v1", "arm64", 1_700_000_000).unwrap();
    assert_eq!(
        b.manifest_digest,
        "sha256:6289d87f03a8d82ef6e362cbaa2f0df2ca722cb7472982e1e8ec09f52d82eba3"
    );
    assert_eq!(
        sha256_hex(&b.archive),
        "c3bedf7d91b0a1b5e845275b9ffe14e33925f6f9dc39d3a46bc087af87ccd85c"
    );
}

#[test]
fn same_binary_same_digest() {
    let a = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
    let b = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
    assert_eq!(a.archive, b.archive);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    let mut other = fake_elf();
    other.push(1);
    let c = build(&other, "example.test/probe:v1", "amd64", 0).unwrap();
    assert_ne!(a.manifest_digest, c.manifest_digest);
}

#[test]
fn the_digest_does_not_depend_on_the_name() {
    let image = Image::new(&fake_elf(), "amd64", 0).unwrap();
    let other = build(&fake_elf(), "other.test/x:y", "amd64", 0).unwrap();
    assert_eq!(image.manifest_digest(), other.manifest_digest);
    assert_eq!(
        image.archive("other.test/x:y").unwrap(),
        other.archive,
        "Image::archive is build() in two steps"
    );
}

fn json_entry(entries: &[(String, Vec<u8>)], path: &str) -> serde_json::Value {
    let bytes = entries
        .iter()
        .find(|(n, _)| n == path)
        .map(|(_, b)| b.clone())
        .unwrap_or_else(|| panic!("no {path}"));
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn layout_blobs_match_their_digests() {
    let built = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
    let entries = read_entries(&built.archive[..]).unwrap();
    let get = |p: &str| entries.iter().find(|(n, _)| n == p).map(|(_, b)| b.clone());
    assert_eq!(
        get("oci-layout").unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    for (name, bytes) in &entries {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if !hex.is_empty() {
                assert_eq!(sha256_hex(bytes), hex, "{name}");
            }
        }
    }
    let index = json_entry(&entries, "index.json");
    let m = &index["manifests"][0];
    assert_eq!(m["digest"], built.manifest_digest);
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(
        m["annotations"]["io.containerd.image.name"],
        "example.test/probe:v1"
    );
    let manifest = json_entry(
        &entries,
        &format!("blobs/sha256/{}", &built.manifest_digest[7..]),
    );
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = json_entry(&entries, &format!("blobs/sha256/{}", &cfg_digest[7..]));
    assert_eq!(config["config"]["User"], IMAGE_USER);
    assert_eq!(config["config"]["Entrypoint"][0], "/netdebug-probe");
    // The layer holds exactly the probe, executable.
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let gz = get(&format!("blobs/sha256/{}", &layer_digest[7..])).unwrap();
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar_bytes).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str().unwrap(),
        format!("sha256:{}", sha256_hex(&tar_bytes))
    );
    let mut layer = tar::Archive::new(&tar_bytes[..]);
    let files: Vec<(String, u32)> = layer
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert_eq!(files, vec![("netdebug-probe".to_string(), 0o755)]);
}

#[test]
fn refuses_non_elf_and_untagged_references() {
    assert!(matches!(
        build(b"#!/bin/sh", "x/y:v1", "amd64", 0),
        Err(Error::NotElf)
    ));
    assert!(matches!(
        build(&fake_elf(), "localhost:5000/probe", "amd64", 0),
        Err(Error::NoTag(_))
    ));
    assert!(tag_of("x/y:").is_err());
    assert_eq!(tag_of("localhost:5000/probe:v2").unwrap(), "v2");
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
}
