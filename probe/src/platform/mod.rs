//! The one module where `unsafe` is allowed: raw socket options and syscalls the safe crates
//! do not cover (TCP_INFO, AF_PACKET ring/statistics, classic BPF attach, IP_MTU_DISCOVER...).
//! Each function here is small, documented, and exposes a safe signature.
#![allow(unsafe_code)]
pub mod packet;
pub mod pmtu;
