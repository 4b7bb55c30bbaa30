//! What a binary must be to be the only file of a `FROM scratch` image: an ELF executable for
//! the image's architecture with no program interpreter (statically linked: nothing in the
//! image could satisfy `/lib64/ld-linux-x86-64.so.2`).
//!
//! A reader of the few header fields this needs rather than a crate: the ELF header's class,
//! byte order, type and machine, and the `p_type` of each program header, about 60 lines.
//! `object` (already in the lock file, through another crate) would bring its feature set and a
//! general-purpose parser into a client that must stay small and build everywhere.

use crate::Arch;

/// Why a binary cannot be the probe image's entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("it is not an ELF executable (the probe image runs on Linux nodes)")]
    NotElf,
    #[error("its ELF header is truncated or malformed ({0})")]
    Malformed(&'static str),
    #[error("it is an ELF file of type {0}, not an executable")]
    NotExecutable(u16),
    #[error("it is built for {found}, not {wanted}")]
    WrongArch { found: String, wanted: Arch },
    #[error(
        "it is dynamically linked (program interpreter {interpreter}); the image is FROM \
         scratch and has no C library"
    )]
    Dynamic { interpreter: String },
}

const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3; // static-pie executables are ET_DYN too

/// Check that `binary` is a statically linked Linux executable for `arch`.
pub fn check_static(binary: &[u8], arch: Arch) -> Result<(), ElfError> {
    if !binary.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    let header = Header::parse(binary)?;
    if header.machine != elf_machine(arch) || !header.is_64 || header.big_endian {
        return Err(ElfError::WrongArch {
            found: machine_name(header.machine, header.is_64, header.big_endian),
            wanted: arch,
        });
    }
    if header.kind != ET_EXEC && header.kind != ET_DYN {
        return Err(ElfError::NotExecutable(header.kind));
    }
    match header.interpreter(binary)? {
        Some(interpreter) => Err(ElfError::Dynamic { interpreter }),
        None => Ok(()),
    }
}

/// The fields of an ELF header this module reads.
struct Header {
    is_64: bool,
    big_endian: bool,
    kind: u16,
    machine: u16,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header, ElfError> {
        let is_64 = match b.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(ElfError::Malformed("unknown class")),
        };
        let big_endian = match b.get(5) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(ElfError::Malformed("unknown byte order")),
        };
        let r = Reader { b, big_endian };
        // Offsets from the ELF specification (gABI, "ELF Header"), 32- and 64-bit layouts.
        let (phoff, phentsize, phnum) = if is_64 {
            (r.uint(32, 8)?, r.uint(54, 2)?, r.uint(56, 2)?)
        } else {
            (r.uint(28, 4)?, r.uint(42, 2)?, r.uint(44, 2)?)
        };
        Ok(Header {
            is_64,
            big_endian,
            kind: r.uint(16, 2)? as u16,
            machine: r.uint(18, 2)? as u16,
            phoff,
            phentsize,
            phnum,
        })
    }

    /// The PT_INTERP path, if the binary has one (64-bit little-endian only: checked first).
    fn interpreter(&self, b: &[u8]) -> Result<Option<String>, ElfError> {
        let r = Reader {
            b,
            big_endian: self.big_endian,
        };
        for i in 0..self.phnum {
            let at = self.phoff + i * self.phentsize;
            let at = usize::try_from(at).map_err(|_| ElfError::Malformed("program headers"))?;
            if r.uint(at, 4)? as u32 != PT_INTERP {
                continue;
            }
            let (offset, size) = (r.uint(at + 8, 8)?, r.uint(at + 32, 8)?);
            let path = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| b.get(o..o.checked_add(s)?))
                .ok_or(ElfError::Malformed("interpreter path"))?;
            let path = String::from_utf8_lossy(path);
            return Ok(Some(path.trim_end_matches('\0').to_string()));
        }
        Ok(None)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    /// An unsigned integer of `len` bytes at `at`.
    fn uint(&self, at: usize, len: usize) -> Result<u64, ElfError> {
        let bytes = at
            .checked_add(len)
            .and_then(|end| self.b.get(at..end))
            .ok_or(ElfError::Malformed("too short"))?;
        let fold = |acc: u64, byte: &u8| (acc << 8) | u64::from(*byte);
        Ok(if self.big_endian {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    }
}

fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::Amd64 => 62,  // EM_X86_64
        Arch::Arm64 => 183, // EM_AARCH64
    }
}

/// A readable name for an ELF machine, as `file(1)` would say it.
fn machine_name(machine: u16, is_64: bool, big_endian: bool) -> String {
    let name = match machine {
        3 => "x86 (32-bit)",
        40 => "ARM (32-bit)",
        62 if is_64 => "x86-64 (amd64)",
        183 if is_64 => "AArch64 (arm64)",
        243 => "RISC-V",
        21 => "PowerPC64",
        22 => "IBM S/390",
        _ => return format!("ELF machine {machine}"),
    };
    if big_endian {
        format!("{name}, big-endian")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests;
