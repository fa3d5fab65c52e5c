//! A small reader of the Prometheus text format, for comparing what
//! redpulse and other tools expose: families with their types, and samples
//! with their labels. Written from the format's description, independent
//! of redpulse's renderer.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A whole exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name -> type, from `# TYPE` lines.
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line has a type");
                let previous = out.types.insert(name.to_string(), kind.to_string());
                assert!(previous.is_none(), "second TYPE line for {name}");
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            out.samples.push(parse_sample(line));
        }
        out
    }

    /// The family a sample belongs to (a summary's or histogram's
    /// `_sum`/`_count`/`_bucket` belong to it).
    pub fn family_of(&self, name: &str) -> String {
        for suffix in ["_sum", "_count", "_bucket"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if matches!(
                    self.types.get(base).map(String::as_str),
                    Some("summary" | "histogram")
                ) {
                    return base.to_string();
                }
            }
        }
        name.to_string()
    }

    /// Every label key the family's samples carry, minus `ignore`.
    pub fn label_keys(&self, family: &str, ignore: &[&str]) -> BTreeSet<String> {
        self.samples
            .iter()
            .filter(|s| self.family_of(&s.name) == family)
            .flat_map(|s| s.labels.keys().cloned())
            .filter(|k| !ignore.contains(&k.as_str()))
            .collect()
    }

    /// Samples of `name` whose labels include every `(k, v)` in `having`.
    pub fn find(&self, name: &str, having: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                having
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one value of `name` with those labels.
    pub fn value(&self, name: &str, having: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, having).as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("no value in {line:?}"),
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut key = String::new();
        let end;
        loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
            match c {
                '}' => {
                    end = i + 1;
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line:?}");
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars
                            .next()
                            .unwrap_or_else(|| panic!("unclosed value in {line:?}"));
                        match c {
                            '"' => break,
                            '\\' => match chars.next().map(|x| x.1) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(other),
                                None => panic!("{line:?}"),
                            },
                            c => value.push(c),
                        }
                    }
                    let previous = labels.insert(std::mem::take(&mut key), value);
                    assert!(previous.is_none(), "label twice in {line:?}");
                }
                c => key.push(c),
            }
        }
        rest = &body[end..];
    }
    let value = rest.trim().split(' ').next().unwrap_or("");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|e| panic!("value {v:?} in {line:?}: {e}")),
    };
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}
