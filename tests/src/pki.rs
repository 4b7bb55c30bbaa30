//! Certificates for TLS scenarios, made with `openssl` in a directory the test owns: a test CA
//! (its own root, so the probe must call it a private CA) and leaves signed by it with chosen
//! SANs and validity (`openssl ca` takes any start and end date, also in the past or future).
//!
//! ```no_run
//! use netdebug_scenarios::pki::{Pki, Validity};
//! let dir = tempfile::tempdir().unwrap();
//! let pki = Pki::new(dir.path(), "ndt test CA");
//! let leaf = pki.leaf("valid", "web.test", &["DNS:web.test", "DNS:*.web.test"], Validity::Now);
//! // serve leaf.chain (leaf then intermediates) with leaf.key; trust pki.ca_pem() in oracles.
//! # let _ = leaf;
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd::run_with_timeout;
use crate::require::require_tools;

/// A certificate authority in a directory.
pub struct Pki {
    dir: PathBuf,
    root: PathBuf,
    /// The CA that signs leaves: its certificate and key.
    ca: (PathBuf, PathBuf),
    /// The chain from the signing CA up to, but not including, the root (for a long chain).
    intermediates: Vec<PathBuf>,
    serial: std::cell::Cell<u32>,
}

/// When a leaf is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From a day ago for 30 days.
    Now,
    /// A month in 2020.
    Expired,
    /// A month in 2099.
    NotYetValid,
}

/// A leaf certificate and what to serve with it.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The leaf followed by the intermediates (what the server sends).
    pub chain: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(60)).expect_success();
}

impl Pki {
    /// A root CA (RSA 2048, self-signed) named `cn` in `dir`.
    #[track_caller]
    pub fn new(dir: &Path, cn: &str) -> Pki {
        require_tools(&["openssl"]);
        std::fs::create_dir_all(dir.join("newcerts")).expect("pki directory");
        std::fs::write(dir.join("index.txt"), "").expect("index.txt");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ ca ]\ndefault_ca = ndt\n[ ndt ]\ndatabase = index.txt\nnew_certs_dir = newcerts\n\
             serial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n\
             [ any ]\ncommonName = supplied\n[ v3_ca ]\nbasicConstraints = critical,CA:true\n\
             keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
        )
        .expect("ca.cnf");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "30",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:true",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Pki {
            dir: dir.to_path_buf(),
            root: dir.join("root.pem"),
            ca: (dir.join("root.pem"), dir.join("root.key")),
            intermediates: Vec::new(),
            serial: std::cell::Cell::new(1),
        }
    }

    /// The root certificate (PEM), for oracles that should trust it.
    pub fn ca_pem(&self) -> &Path {
        &self.root
    }

    fn sign(&self, csr: &str, out: &str, ext: &str, extensions: &str, validity: Validity) {
        let serial = self.serial.get();
        self.serial.set(serial + 1);
        std::fs::write(self.dir.join("serial"), format!("{serial:04X}\n")).expect("serial");
        std::fs::write(self.dir.join(ext), extensions).expect("extensions");
        let ca = self.ca.0.to_str().expect("utf-8 path");
        let key = self.ca.1.to_str().expect("utf-8 path");
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", ca, "-keyfile", key, "-in",
            csr, "-out", out, "-extfile", ext,
        ];
        match validity {
            Validity::Now => args.extend(["-days", "30"]),
            Validity::Expired => args.extend([
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200201000000Z",
            ]),
            Validity::NotYetValid => args.extend([
                "-startdate",
                "20990101000000Z",
                "-enddate",
                "20990201000000Z",
            ]),
        }
        openssl(&self.dir, &args);
    }

    /// Adds `n` intermediate CAs below the current signer, each with an RSA key of `bits`
    /// (4096 makes a heavy chain); leaves are then signed by the last one.
    #[track_caller]
    pub fn with_intermediates(mut self, n: usize, bits: u32) -> Pki {
        for i in 0..n {
            let name = format!("int{i}");
            openssl(
                &self.dir,
                &[
                    "req",
                    "-newkey",
                    &format!("rsa:{bits}"),
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN=ndt intermediate {i}"),
                ],
            );
            self.sign(
                &format!("{name}.csr"),
                &format!("{name}.pem"),
                &format!("{name}.ext"),
                "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n",
                Validity::Now,
            );
            self.ca = (
                self.dir.join(format!("{name}.pem")),
                self.dir.join(format!("{name}.key")),
            );
            self.intermediates
                .insert(0, self.dir.join(format!("{name}.pem")));
        }
        self
    }

    /// A leaf `name` with subject CN `cn`, `sans` (`DNS:x`, `IP:a.b.c.d`) and `validity`,
    /// signed by the current signer.
    #[track_caller]
    pub fn leaf(&self, name: &str, cn: &str, sans: &[&str], validity: Validity) -> Leaf {
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        self.sign(
            &format!("{name}.csr"),
            &format!("{name}.pem"),
            &format!("{name}.ext"),
            &format!(
                "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                sans.join(",")
            ),
            validity,
        );
        self.bundle(name)
    }

    /// A self-signed leaf (its own issuer, not signed by this CA).
    #[track_caller]
    pub fn self_signed(&self, name: &str, cn: &str, sans: &[&str]) -> Leaf {
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "30",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                &format!("subjectAltName={}", sans.join(",")),
            ],
        );
        let leaf = self.dir.join(format!("{name}.pem"));
        let chain = self.dir.join(format!("{name}.chain.pem"));
        std::fs::copy(&leaf, &chain).expect("chain");
        Leaf {
            cert: leaf,
            key: self.dir.join(format!("{name}.key")),
            chain,
        }
    }

    fn bundle(&self, name: &str) -> Leaf {
        let cert = self.dir.join(format!("{name}.pem"));
        let mut pem = std::fs::read_to_string(&cert).expect("leaf pem");
        for i in &self.intermediates {
            pem.push_str(&std::fs::read_to_string(i).expect("intermediate pem"));
        }
        let chain = self.dir.join(format!("{name}.chain.pem"));
        std::fs::write(&chain, pem).expect("chain");
        Leaf {
            cert,
            key: self.dir.join(format!("{name}.key")),
            chain,
        }
    }
}
