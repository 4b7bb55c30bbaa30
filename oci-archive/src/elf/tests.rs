use super::*;

/// A minimal 64-bit little-endian ELF: header, program headers of the given types, and an
/// interpreter path that a PT_INTERP header points at.
fn synthetic(machine: u16, kind: u16, phdr_types: &[u32]) -> Vec<u8> {
    let interp = b"/lib/ld-test.so.1\0";
    let phoff = 64u64;
    let interp_at = phoff + 56 * phdr_types.len() as u64;
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little-endian
    b[6] = 1;
    b[16..18].copy_from_slice(&kind.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[32..40].copy_from_slice(&phoff.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phdr_types.len() as u16).to_le_bytes());
    for t in phdr_types {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&t.to_le_bytes());
        ph[8..16].copy_from_slice(&interp_at.to_le_bytes());
        ph[32..40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        b.extend(ph);
    }
    b.extend_from_slice(interp);
    b
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;

#[test]
fn static_and_static_pie_pass() {
    assert_eq!(
        check_static(&synthetic(62, ET_EXEC, &[PT_LOAD, PT_LOAD]), Arch::Amd64),
        Ok(())
    );
    // static-pie (what `+crt-static` gives on gnu targets): ET_DYN with PT_DYNAMIC, no PT_INTERP.
    assert_eq!(
        check_static(&synthetic(183, ET_DYN, &[PT_LOAD, PT_DYNAMIC]), Arch::Arm64),
        Ok(())
    );
}

#[test]
fn interpreter_means_dynamic() {
    let err = check_static(
        &synthetic(62, ET_DYN, &[PT_LOAD, PT_INTERP, PT_DYNAMIC]),
        Arch::Amd64,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ElfError::Dynamic {
            interpreter: "/lib/ld-test.so.1".into()
        }
    );
}

#[test]
fn wrong_architecture_is_named() {
    let err = check_static(&synthetic(183, ET_EXEC, &[PT_LOAD]), Arch::Amd64).unwrap_err();
    assert_eq!(
        err.to_string(),
        "it is built for AArch64 (arm64), not amd64"
    );
    let err = check_static(&synthetic(62, ET_EXEC, &[PT_LOAD]), Arch::Arm64).unwrap_err();
    assert_eq!(err.to_string(), "it is built for x86-64 (amd64), not arm64");
}

#[test]
fn not_elf_truncated_and_objects_are_refused() {
    assert_eq!(
        check_static(b"#!/bin/sh\n", Arch::Amd64),
        Err(ElfError::NotElf)
    );
    assert_eq!(
        check_static(b"\xcf\xfa\xed\xfe", Arch::Amd64),
        Err(ElfError::NotElf),
        "Mach-O"
    );
    assert!(matches!(
        check_static(b"\x7fELF\x02\x01", Arch::Amd64),
        Err(ElfError::Malformed(_))
    ));
    let mut cut = synthetic(62, ET_EXEC, &[PT_LOAD, PT_INTERP]);
    cut.truncate(100);
    assert!(matches!(
        check_static(&cut, Arch::Amd64),
        Err(ElfError::Malformed(_))
    ));
    assert_eq!(
        check_static(&synthetic(62, 1, &[]), Arch::Amd64),
        Err(ElfError::NotExecutable(1))
    );
}

/// Real binaries of this machine: a C program from the system (dynamic) and this test
/// executable (a default Rust build links glibc dynamically).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn real_dynamic_binaries_are_refused() {
    for path in ["/bin/true".into(), std::env::current_exe().unwrap()] {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match check_static(&bytes, Arch::Amd64) {
            Err(ElfError::Dynamic { interpreter }) => {
                assert!(
                    interpreter.contains("ld"),
                    "{}: {interpreter}",
                    path.display()
                )
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}

/// A real static executable, linked here with `rustc -C target-feature=+crt-static` (how the
/// probe is built); skipped, loudly, where the static C library is not installed.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn real_static_binary_passes() {
    let dir = std::env::temp_dir().join(format!("netdebug-oci-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("main.rs");
    std::fs::write(&src, "fn main() {}\n").unwrap();
    let out = dir.join("static-main");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["-C", "target-feature=+crt-static", "-o"])
        .arg(&out)
        .arg(&src)
        .output();
    let bytes = match status {
        Ok(o) if o.status.success() => std::fs::read(&out).unwrap(),
        other => {
            eprintln!("SKIPPED: cannot link a static executable here: {other:?}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check_static(&bytes, Arch::Amd64), Ok(()));
    assert!(matches!(
        check_static(&bytes, Arch::Arm64),
        Err(ElfError::WrongArch { .. })
    ));
}
