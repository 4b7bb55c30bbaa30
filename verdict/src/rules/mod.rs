//! Rules that are not about one kind of probe evidence: the Kubernetes-level findings held
//! against the probe's evidence (`kube`), and the tool itself (`probe`: a stream that ended
//! early, checks that failed or did not run). Rules about one kind of evidence live with it in
//! `checks/`.

pub mod dataplane;
pub mod kube;
pub mod probe;
