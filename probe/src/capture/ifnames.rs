//! Interface names for the packet marks: the cooked header gives an ifindex, a reader wants
//! `eth0`. One if_indextoname per interface, cached for the capture (an interface renamed or
//! removed meanwhile keeps the name it had when first seen).

use std::collections::HashMap;

#[derive(Default)]
pub struct InterfaceNames {
    known: HashMap<i32, Option<String>>,
}

impl InterfaceNames {
    /// The name of interface `ifindex`, None when it has none (gone already, or index 0).
    pub fn name(&mut self, ifindex: i32) -> Option<String> {
        self.known
            .entry(ifindex)
            .or_insert_with(|| lookup(ifindex))
            .clone()
    }

    /// Names given in advance (tests: the crafted packets' interfaces need not exist).
    #[cfg(test)]
    pub fn seed(&mut self, ifindex: i32, name: &str) {
        self.known.insert(ifindex, Some(name.to_string()));
    }
}

fn lookup(ifindex: i32) -> Option<String> {
    let index = u32::try_from(ifindex).ok().filter(|i| *i > 0)?;
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|name| name.into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_named_and_nonsense_is_not() {
        let mut names = InterfaceNames::default();
        // Index 1 is loopback in every network namespace.
        assert_eq!(names.name(1).as_deref(), Some("lo"));
        assert_eq!(names.name(0), None);
        assert_eq!(names.name(-3), None);
        names.seed(7, "eth0");
        assert_eq!(names.name(7).as_deref(), Some("eth0"));
    }
}
