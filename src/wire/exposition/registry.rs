//! The process-wide family registry: every family a sample may belong to,
//! numbered in the order `/metrics` writes them. The fixed table's come
//! first; names a server chose are added on first sight, each instance's
//! share bounded by the builder.

use super::tables::FIXED;
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
    /// Ids below this are the fixed table's.
    fixed: u16,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::default();
        for &(name, kind, help) in FIXED {
            r.add(name, kind, help);
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
    let help = format!("{name} from INFO.");
    registry()
        .write()
        .expect("registry lock is never held across a panic")
        .add(name, kind, &help)
}
