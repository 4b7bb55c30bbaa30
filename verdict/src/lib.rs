//! Verdict engine and renderers for kubectl-netdebug. Pure functions from evidence to a verdict
//! and from a verdict to text, markdown or JSON; no I/O.

pub mod kube;
