//! The process-wide family registry: every family a sample may belong to,
//! numbered in the order `/metrics` writes them. The fixed tables' come
//! first (with each plain INFO field's id, for the builder); names a
//! server chose are added on first sight, each instance's share bounded by
//! the builder.

use super::tables::{plain_name, FIXED, PLAIN};
use super::{Family, Kind};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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

/// The plain fields' map's hash: a key's length, first and last eight
/// bytes, mixed by two multiplications. Every line of an INFO ALL is
/// looked up, and SipHash was 7 % of building a metrics poll's samples
/// (`cargo bench --bench metrics -- exposition_from_info_all`). The map is
/// built once and only read, so a server sending colliding names can slow
/// only its own lookups, along one chain of this fixed table; the test
/// below checks that the table's own keys do not collide.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let n = bytes.len();
        let (head, tail) = if n >= 8 {
            (word(&bytes[..8]), word(&bytes[n - 8..]))
        } else {
            (word(bytes), 0)
        };
        self.0 = (self.0 ^ head).wrapping_mul(MIX).rotate_left(29) ^ tail;
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(MIX);
    }

    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(MIX);
        h ^ (h >> 32)
    }
}

type PlainMap = HashMap<&'static [u8], Plain, BuildHasherDefault<KeyHasher>>;

/// INFO key → how it is published, built once (the registry holds every
/// plain family from its start, so each has its id here).
pub(super) fn plain_fields() -> &'static PlainMap {
    static MAP: OnceLock<PlainMap> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = PlainMap::default();
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
    fn the_plain_keys_hash_apart_and_are_all_found() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<KeyHasher>::default();
        let mut hashes = std::collections::HashSet::new();
        let mut keys = 0;
        for (list, _) in PLAIN {
            for &(key, name) in list {
                keys += 1;
                hashes.insert(build.hash_one(key.as_bytes()));
                let found = plain_fields().get(key.as_bytes()).map(|p| p.family);
                assert_eq!(found, lookup(&plain_name(name)).map(|(id, _)| id), "{key}");
            }
        }
        assert!(keys > 100, "{keys} keys");
        assert_eq!(hashes.len(), keys, "two plain keys share a hash");
        // Keys alike at both ends, told apart by their length.
        for (a, b) in [
            (
                &b"total_net_input_bytes"[..],
                &b"total_net_output_bytes"[..],
            ),
            (b"", b"\0"),
        ] {
            assert_ne!(build.hash_one(a), build.hash_one(b), "{a:?} {b:?}");
        }
    }

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
