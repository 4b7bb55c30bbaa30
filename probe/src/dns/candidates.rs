//! The names glibc's `res_search` tries for one name, in order (resolv/res_query.c,
//! `__res_context_search`):
//! - a trailing dot: the name itself, nothing else;
//! - at least `ndots` dots: the name as is first, then each search domain;
//! - fewer dots: each search domain first, then the name as is — except a single-label
//!   name with `no-tld-query` once the search list was used;
//! - a search entry of `.` stands for the name as is (never tried twice).
//!
//! What the walk does with each candidate's result (stop, next, skip to the as-is try) depends
//! on the candidate's [`Role`].

use super::config::ResolverConfig;

/// Longest domain name in presentation form without the trailing dot.
const MAX_NAME_LEN: usize = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The name as is, tried before the search list (enough dots, or a trailing dot).
    AsIsFirst,
    /// The name joined with a search domain (or the as-is name standing for a `.` entry).
    Search,
    /// The name as is, tried after the search list.
    AsIsLast,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Fully qualified, with a trailing dot.
    pub fqdn: String,
    pub role: Role,
}

/// The ordered candidates for `name` under `config`.
pub fn candidates(name: &str, config: &ResolverConfig) -> Vec<Candidate> {
    let trailing_dot = name.ends_with('.');
    let bare = name.trim_end_matches('.');
    let dots = bare.matches('.').count() as u32;
    let mut out = Vec::new();
    let as_is = format!("{bare}.");

    if trailing_dot {
        out.push(Candidate {
            fqdn: as_is,
            role: Role::AsIsFirst,
        });
        return out;
    }
    let mut tried_as_is = false;
    if dots >= config.ndots {
        out.push(Candidate {
            fqdn: as_is.clone(),
            role: Role::AsIsFirst,
        });
        tried_as_is = true;
    }
    // RES_DEFNAMES and RES_DNSRCH are on by default: search applies to dotted and undotted
    // names alike (the trailing-dot case returned above).
    let mut searched = false;
    let mut root_on_list = false;
    for domain in &config.search {
        searched = true;
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            root_on_list = true;
            if tried_as_is {
                continue;
            }
            out.push(Candidate {
                fqdn: as_is.clone(),
                role: Role::Search,
            });
            continue;
        }
        out.push(Candidate {
            fqdn: format!("{bare}.{domain}."),
            role: Role::Search,
        });
    }
    let tld_allowed = dots > 0 || !searched || !config.no_tld_query;
    if tld_allowed && !tried_as_is && !root_on_list {
        out.push(Candidate {
            fqdn: as_is,
            role: Role::AsIsLast,
        });
    }
    out
}

/// glibc refuses to build a query name longer than a domain name can be (NO_RECOVERY).
pub fn too_long(fqdn: &str) -> bool {
    fqdn.trim_end_matches('.').len() > MAX_NAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(search: &[&str], ndots: u32) -> ResolverConfig {
        ResolverConfig {
            search: search.iter().map(|s| s.to_string()).collect(),
            ndots,
            ..ResolverConfig::default()
        }
    }

    fn names(name: &str, c: &ResolverConfig) -> Vec<String> {
        candidates(name, c).into_iter().map(|c| c.fqdn).collect()
    }

    const K8S: &[&str] = &[
        "shop.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ];

    /// The table of resolv.conf(5) semantics, Kubernetes style (ndots:5).
    #[test]
    fn kubernetes_ndots5_table() {
        let c = cfg(K8S, 5);
        let table: &[(&str, &[&str])] = &[
            (
                "payments",
                &[
                    "payments.shop.svc.cluster.local.",
                    "payments.svc.cluster.local.",
                    "payments.cluster.local.",
                    "payments.",
                ],
            ),
            (
                "api.example.com",
                &[
                    "api.example.com.shop.svc.cluster.local.",
                    "api.example.com.svc.cluster.local.",
                    "api.example.com.cluster.local.",
                    "api.example.com.",
                ],
            ),
            ("api.example.com.", &["api.example.com."]),
            (
                "a.b.c.d.e.f",
                &[
                    "a.b.c.d.e.f.",
                    "a.b.c.d.e.f.shop.svc.cluster.local.",
                    "a.b.c.d.e.f.svc.cluster.local.",
                    "a.b.c.d.e.f.cluster.local.",
                ],
            ),
        ];
        for (name, expected) in table {
            assert_eq!(names(name, &c), *expected, "candidates for {name}");
        }
    }

    #[test]
    fn default_ndots1_dotted_name_goes_first() {
        let c = cfg(&["corp.example"], 1);
        assert_eq!(
            names("db.internal", &c),
            ["db.internal.", "db.internal.corp.example."]
        );
        assert_eq!(names("db", &c), ["db.corp.example.", "db."]);
    }

    #[test]
    fn roles_follow_glibc_phases() {
        let c = cfg(&["x.example"], 1);
        let roles: Vec<Role> = candidates("a.b", &c).iter().map(|c| c.role).collect();
        assert_eq!(roles, [Role::AsIsFirst, Role::Search]);
        let roles: Vec<Role> = candidates("a", &c).iter().map(|c| c.role).collect();
        assert_eq!(roles, [Role::Search, Role::AsIsLast]);
    }

    #[test]
    fn no_search_list_means_the_name_alone() {
        let c = cfg(&[], 1);
        assert_eq!(names("localhost", &c), ["localhost."]);
        assert_eq!(names("a.b", &c), ["a.b."]);
    }

    #[test]
    fn no_tld_query_drops_bare_single_label_after_search() {
        let mut c = cfg(&["x.example"], 1);
        c.no_tld_query = true;
        assert_eq!(names("host", &c), ["host.x.example."]);
        // Dotted names are still tried as is.
        c.ndots = 3;
        assert_eq!(names("a.b", &c), ["a.b.x.example.", "a.b."]);
        // Without a search list the bare name is the only thing to try.
        let mut c = cfg(&[], 1);
        c.no_tld_query = true;
        assert_eq!(names("host", &c), ["host."]);
    }

    #[test]
    fn root_in_search_list_stands_for_the_name_as_is() {
        let c = cfg(&["x.example", ".", "y.example"], 2);
        assert_eq!(
            names("host", &c),
            ["host.x.example.", "host.", "host.y.example."]
        );
        // Already tried as is first: the `.` entry is skipped.
        assert_eq!(
            names("a.b.c", &c),
            ["a.b.c.", "a.b.c.x.example.", "a.b.c.y.example."]
        );
    }

    #[test]
    fn search_domains_with_trailing_dots_are_normalised() {
        let c = cfg(&["x.example."], 5);
        assert_eq!(names("svc", &c), ["svc.x.example.", "svc."]);
    }

    #[test]
    fn ndots_zero_always_tries_as_is_first() {
        let c = cfg(&["x.example"], 0);
        assert_eq!(names("host", &c), ["host.", "host.x.example."]);
    }

    #[test]
    fn overlong_candidates_are_detected() {
        let long = format!("{}.example.", "a".repeat(250));
        assert!(too_long(&long));
        assert!(!too_long("a.example."));
    }
}
