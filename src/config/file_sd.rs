//! Targets files in Prometheus's file_sd format (JSON, or YAML when the
//! name ends in `.yml` / `.yaml`):
//! `[{"targets": ["redis://h:6379", "h2:6379"], "labels": {"team": "a"}}]`.
//!
//! A target without a scheme is `redis://`. A target's name is its `name`
//! label when present (then the group must hold one target), else
//! `host:port`; its other labels become the instance's labels.

use super::labels::Labels;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    targets: Vec<String>,
    #[serde(default)]
    labels: Labels,
}

/// One target of a file_sd file: name (from the `name` label), URL, labels.
#[derive(Clone, Debug, PartialEq)]
pub struct SdTarget {
    pub name: Option<String>,
    pub url: String,
    pub labels: Labels,
    /// The group's position in the file (1-based), for error messages.
    pub group: usize,
}

/// Whether a targets file is read as file_sd, and as YAML.
pub fn format_of(path: &std::path::Path) -> Option<bool> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Some(false),
        Some("yml") | Some("yaml") => Some(true),
        _ => None,
    }
}

/// Parse a file_sd file's text.
pub fn parse(text: &str, yaml: bool) -> Result<Vec<SdTarget>, String> {
    let groups: Vec<Group> = if yaml {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string().replace('\n', " "))?
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    };
    let mut out = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        let mut labels = g.labels;
        let name = labels.remove("name");
        if name.is_some() && g.targets.len() > 1 {
            return Err(format!(
                "group #{}: a \"name\" label names one target, but the group has {}",
                i + 1,
                g.targets.len()
            ));
        }
        for t in g.targets {
            let url = if t.contains("://") {
                t
            } else {
                format!("redis://{t}")
            };
            out.push(SdTarget {
                name: name.clone(),
                url,
                labels: labels.clone(),
                group: i + 1,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_read_the_same() {
        let json = r#"[{"targets":["redis://10.0.0.1:6379","10.0.0.2:6380"],"labels":{"team":"a","env":"prod"}},
                       {"targets":["rediss://c:6379"],"labels":{"name":"cache-c"}}]"#;
        let yaml = "- targets: ['redis://10.0.0.1:6379', '10.0.0.2:6380']\n  labels:\n    team: a\n    env: prod\n- targets: [rediss://c:6379]\n  labels: {name: cache-c}\n";
        let a = parse(json, false).unwrap();
        assert_eq!(a, parse(yaml, true).unwrap());
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].url, "redis://10.0.0.2:6380");
        assert_eq!(a[1].labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(a[2].name.as_deref(), Some("cache-c"));
        assert!(a[2].labels.is_empty());
    }

    #[test]
    fn bad_files_say_why() {
        assert!(parse("{", false).unwrap_err().contains("line 1"));
        assert!(parse(r#"[{"targets":[],"labelz":{}}]"#, false)
            .unwrap_err()
            .contains("labelz"));
        assert!(parse(
            r#"[{"targets":["a:1","b:1"],"labels":{"name":"x"}}]"#,
            false
        )
        .unwrap_err()
        .contains("group #1"));
        assert!(parse("- targets: 3\n", true).is_err());
        assert_eq!(format_of("x/fleet.yaml".as_ref()), Some(true));
        assert_eq!(format_of("fleet.txt".as_ref()), None);
    }
}
