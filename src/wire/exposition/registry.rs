//! The process-wide family registry: every family a sample may belong to,
//! numbered in the order `/metrics` writes them. The fixed tables' come
//! first (with each plain INFO field's id, for the builder); names a
//! server chose are added on first sight, each instance's share bounded by
//! the builder.

use super::tables::{plain_name, FIXED, PLAIN};
use super::{Family, Kind};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// At most this many families in the process (ids are u16): reached only
/// when hundreds of servers each invent their full share of names.
const MAX_FAMILIES: usize = u16::MAX as usize;

#[derive(Default)]
struct Registry {
    families: Vec<&'static Family>,
    by_name: HashMap<&'static str, u16>,
    /// Ids below this are the fixed tables'.
    fixed: u16,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::default();
        for &(name, kind, help) in FIXED {
            r.add(name, kind, help);
        }
        // The plain fields' families are the exporter's table, not names
        // a server chose: known from the start, so a metrics poll finds
        // each by its INFO key alone, and none counts against an
        // instance's share of server-named families.
        for (list, kind) in PLAIN {
            for &(_, name) in list {
                let name = plain_name(name);
                r.add(&name, kind, &info_help(&name));
            }
        }
        r.fixed = r.families.len() as u16;
        RwLock::new(r)
    })
}

impl Registry {
    fn add(&mut self, name: &str, kind: Kind, help: &str) -> Option<u16> {
        if let Some(&id) = self.by_name.get(name) {
            return Some(id);
        }
        let parts: &[(&str, bool)] = if kind == Kind::Summary {
            &[("", true), ("_sum", false), ("_count", false)]
        } else {
            &[("", true)]
        };
        if self.families.len() + parts.len() > MAX_FAMILIES {
            return None;
        }
        let first = self.families.len() as u16;
        for (suffix, header) in parts {
            let family: &'static Family = Box::leak(Box::new(Family {
                name: format!("{name}{suffix}").into(),
                kind,
                help: help.into(),
                header: *header,
            }));
            self.by_name
                .insert(&family.name, self.families.len() as u16);
            self.families.push(family);
        }
        Some(first)
    }
}

/// Every family known so far, in id order (the order `/metrics` writes them).
pub fn families() -> Vec<&'static Family> {
    registry()
        .read()
        .expect("registry lock is never held across a panic")
        .families
        .clone()
}

/// A family's id, if it is registered, and whether a server chose its
/// name (it is not in the fixed table).
pub(super) fn lookup(name: &str) -> Option<(u16, bool)> {
    let r = registry()
        .read()
        .expect("registry lock is never held across a panic");
    r.by_name.get(name).map(|&id| (id, id >= r.fixed))
}

/// Register a family a server named (as `kind`); its id, or None when the
/// process holds [`MAX_FAMILIES`] already.
pub(super) fn register(name: &str, kind: Kind) -> Option<u16> {
    registry()
        .write()
        .expect("registry lock is never held across a panic")
        .add(name, kind, &info_help(name))
}

/// The help of a family read from INFO without a help of its own: the
/// plain fields' and the server-named ones alike.
fn info_help(name: &str) -> String {
    format!("{name} from INFO.")
}

/// How one plain INFO field becomes a series.
#[derive(Clone, Copy)]
pub(super) struct Plain {
    pub family: u16,
    /// Multiplier (latest_fork_usec is published in seconds).
    pub scale: f64,
}

/// INFO key → how it is published, built once (the registry holds every
/// plain family from its start, so each has its id here).
pub(super) fn plain_fields() -> &'static HashMap<&'static [u8], Plain> {
    static MAP: OnceLock<HashMap<&'static [u8], Plain>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for (list, _) in PLAIN {
            for &(key, name) in list {
                let scale = if key == "latest_fork_usec" { 1e-6 } else { 1.0 };
                let (family, _) =
                    lookup(&plain_name(name)).expect("the registry starts with every plain family");
                m.insert(key.as_bytes(), Plain { family, scale });
            }
        }
        m
    })
}

#[cfg(test)]
mod tests {
    use super::super::tables::fixed_id;
    use super::*;

    #[test]
    fn fixed_ids_are_the_ids_the_registry_gives() {
        let fams = families();
        for &(name, kind, _) in FIXED {
            let id = fixed_id(name);
            assert_eq!(lookup(name), Some((id, false)), "{name}");
            if kind == Kind::Summary {
                assert_eq!(&*fams[id as usize + 1].name, format!("{name}_sum"));
                assert_eq!(&*fams[id as usize + 2].name, format!("{name}_count"));
            }
        }
        // The plain fields' families are fixed too: no server chose them.
        for (list, _) in PLAIN {
            for &(_, name) in list {
                assert!(
                    matches!(lookup(&plain_name(name)), Some((_, false))),
                    "{name}"
                );
            }
        }
    }
}
