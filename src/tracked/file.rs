//! The file tracked source: a JSON list of instances, for replay, support cases and tests.
//!
//! # Format
//!
//! One JSON object with one member, `instances`, a list of the instances nova places on this
//! host (`examples/seed-incident/instances.json` is a complete example):
//!
//! ```json
//! {"instances": [
//!   {"uuid": "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01", "name": "web-01", "root_gb": 80},
//!   {"uuid": "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63", "name": "db-01", "root_gb": 40,
//!    "ephemeral_gb": 8, "swap_mb": 1024, "boot_from_volume": false}
//! ]}
//! ```
//!
//! | member | type | required | meaning |
//! |---|---|---|---|
//! | `uuid` | string | yes | instance UUID, 32 hex digits in 8-4-4-4-12 groups or without hyphens (either case); unique in the file |
//! | `root_gb` | integer | yes | the flavor's `root_gb` (nova's `<nova:disk>`), GiB |
//! | `ephemeral_gb` | integer | no, 0 | the flavor's `ephemeral_gb`, GiB |
//! | `swap_mb` | integer | no, 0 | the flavor's `swap`, **MiB** (need not be a whole GiB) |
//! | `boot_from_volume` | boolean | no, false | the root disk is a cinder volume: `root_gb` is not counted on this host |
//! | `name` | string | no | for people; ignored |
//!
//! Sizes are whole numbers from 0 to 2147483647 (nova's limit). Any other member, at the top
//! level or in an instance, is an error: a misspelt `root_gib` must not silently count as
//! 0 GiB. An empty list is valid (a host without instances).
//!
//! Each instance counts like an instance nova tracks with that flavor (see
//! [`TrackedInstance::from_flavor`]); reserved disk and allocation ratio come from nova.conf or
//! the flags, as for the libvirt source. The file is re-read on every collection.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::input::BlockingLane;

use super::{
    canonical_uuid, read_bounded_text, Flavor, HostDiskSettings, SourceKind, TrackedError,
    TrackedInstance, TrackedSource, TrackedUsage, NOVA_MAX_INT,
};

/// Reads the instances file on every collection.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    settings: HostDiskSettings,
    lane: BlockingLane,
}

impl FileSource {
    /// Reads `path`; reserved disk and allocation ratio come from `settings`.
    pub fn new(path: PathBuf, settings: HostDiskSettings) -> Self {
        let lane = BlockingLane::new(path.display().to_string());
        Self {
            path,
            settings,
            lane,
        }
    }
}

#[async_trait]
impl TrackedSource for FileSource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let path = self.path.clone();
        let text = self.lane.run(move || read_bounded_text(&path)).await??;
        let instances = parse_instances(&text, &self.path.display().to_string())?;
        Ok(TrackedUsage::from_local(instances, &self.settings))
    }
}

/// Parses the text of an instances file (see the module documentation); `origin` names it in
/// errors, which carry the line and column and, inside the list, the instance's index.
pub fn parse_instances(text: &str, origin: &str) -> Result<Vec<TrackedInstance>, TrackedError> {
    // The index of the instance being read, to name it when serde_json fails inside it.
    let current = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result = FileSeed { current: &current }
        .deserialize(&mut deserializer)
        .and_then(|entries| deserializer.end().map(|()| entries));
    match result {
        Ok(entries) => Ok(entries
            .into_iter()
            .map(|entry| TrackedInstance::from_flavor(entry.uuid, &entry.flavor))
            .collect()),
        Err(e) => Err(TrackedError::Invalid {
            path: origin.to_string(),
            message: match current.get() {
                Some(index) => format!("instances[{index}]: {e}"),
                None => e.to_string(),
            },
        }),
    }
}

/// One instance as read, before it becomes a [`TrackedInstance`].
struct Entry {
    uuid: String,
    flavor: Flavor,
}

/// One element of `instances`, exactly as the file spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(deserialize_with = "uuid_field")]
    uuid: String,
    #[serde(rename = "name", default)]
    _name: Option<String>,
    #[serde(deserialize_with = "size_field")]
    root_gb: u64,
    #[serde(default, deserialize_with = "size_field")]
    ephemeral_gb: u64,
    #[serde(default, deserialize_with = "size_field")]
    swap_mb: u64,
    #[serde(default)]
    boot_from_volume: bool,
}

fn uuid_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    canonical_uuid(&text).ok_or_else(|| {
        de::Error::custom(format!(
            "uuid {text:?} is not a UUID (32 hex digits, in 8-4-4-4-12 groups or without hyphens)"
        ))
    })
}

fn size_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if value > NOVA_MAX_INT {
        return Err(de::Error::custom(format!(
            "{value} is larger than nova allows ({NOVA_MAX_INT})"
        )));
    }
    Ok(value)
}

/// The top-level object; records in `current` which instance is being read.
struct FileSeed<'a> {
    current: &'a Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"instances\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut instances = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "instances" {
                return Err(de::Error::unknown_field(&key, &["instances"]));
            }
            if instances.is_some() {
                return Err(de::Error::duplicate_field("instances"));
            }
            instances = Some(map.next_value_seed(InstancesSeed {
                current: self.current,
            })?);
        }
        instances.ok_or_else(|| de::Error::missing_field("instances"))
    }
}

/// The `instances` list; rejects duplicate UUIDs.
struct InstancesSeed<'a> {
    current: &'a Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_> {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of instances")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        loop {
            let index = entries.len();
            self.current.set(Some(index));
            let Some(raw) = seq.next_element::<RawEntry>()? else {
                break;
            };
            if let Some(first) = seen.insert(raw.uuid.clone(), index) {
                return Err(de::Error::custom(format!(
                    "uuid {} is also instances[{first}]",
                    raw.uuid
                )));
            }
            entries.push(Entry {
                uuid: raw.uuid,
                flavor: Flavor {
                    root_gb: raw.root_gb,
                    ephemeral_gb: raw.ephemeral_gb,
                    swap_mb: raw.swap_mb,
                    boot_from_volume: raw.boot_from_volume,
                },
            });
        }
        self.current.set(None);
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::units::GIB;

    const ORIGIN: &str = "/srv/instances.json";

    fn ok(text: &str) -> Vec<TrackedInstance> {
        parse_instances(text, ORIGIN).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The message of the `Invalid` error for `text`, checking that it names the file.
    fn rejected(text: &str) -> String {
        match parse_instances(text, ORIGIN) {
            Err(TrackedError::Invalid { path, message }) => {
                assert_eq!(path, ORIGIN);
                message
            }
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }

    const UUID_A: &str = "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01";
    const UUID_B: &str = "8a2e4b7c-1d9f-4a63-b5e8-7c3d2e1f0a92";

    #[test]
    fn deep_json_is_an_error_not_a_stack_overflow() {
        // Every field is known and typed (unknown fields are refused), so nesting is refused
        // at its first level, long before serde_json's own limit of 128; on the 2 MiB stack of
        // tokio's blocking threads, where the source parses.
        let deep =
            |open: &str, close: &str| format!("{}{}", open.repeat(100_000), close.repeat(100_000));
        let cases = [
            (
                format!(
                    r#"{{"instances":[{}]}}"#,
                    deep(r#"{"a":"#, "}").replace(":}", ":1}")
                ),
                "instances[0]: unknown field `a`",
            ),
            (
                format!(r#"{{"instances":{}}}"#, deep("[", "]")),
                "instances[0]: invalid type: sequence",
            ),
            (
                format!(r#"{{"instances":[],"comment":{}}}"#, deep("[", "]")),
                "unknown field `comment`",
            ),
        ];
        for (text, expected) in cases {
            let message = std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || parse_instances(&text, ORIGIN).map(|_| ()))
                .unwrap()
                .join()
                .unwrap()
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with(&format!("{ORIGIN}: {expected}")),
                "{message}"
            );
        }
    }

    #[test]
    fn the_seed_incident_file_is_read() {
        let instances = ok(include_str!("../../examples/seed-incident/instances.json"));
        let uuids: Vec<&str> = instances.iter().map(|i| i.uuid.as_str()).collect();
        assert_eq!(
            uuids,
            [
                UUID_A,
                UUID_B,
                "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
                "f19c3a5d-7e2b-4d84-a6f1-9b8e0c2d4a74"
            ]
        );
        let tracked: u64 = instances.iter().map(|i| i.tracked_bytes).sum();
        assert_eq!(tracked, 229 * GIB);
        assert_eq!(instances[2].tracked_bytes, 49 * GIB);
    }

    #[test]
    fn optional_members_default_to_zero_and_false() {
        let instances = ok(&format!(
            "{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"root_gb\": 80}}]}}"
        ));
        assert_eq!(
            instances,
            vec![TrackedInstance::from_flavor(
                UUID_A,
                &Flavor {
                    root_gb: 80,
                    ..Flavor::default()
                }
            )]
        );
        assert_eq!(instances[0].tracked_bytes, 80 * GIB);
    }

    #[test]
    fn all_members_are_used() {
        let text = format!("{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"name\": \"vol-01\", \"root_gb\": 20, \"ephemeral_gb\": 5, \"swap_mb\": 1001, \"boot_from_volume\": true}}]}}");
        let instances = ok(&text);
        // nova's resource tracker: int(1001 / 1024) = 0 GiB of swap; placement: 1 GiB.
        assert_eq!(instances[0].tracked_bytes, 5 * GIB);
        assert_eq!(instances[0].allocated_bytes, 6 * GIB);
    }

    #[test]
    fn an_empty_list_is_a_host_without_instances() {
        assert!(ok("{\"instances\": []}").is_empty());
    }

    #[test]
    fn uuids_are_validated_and_lower_cased() {
        let upper = UUID_A.to_ascii_uppercase();
        let instances = ok(&format!(
            "{{\"instances\": [{{\"uuid\": \"{upper}\", \"root_gb\": 1}}]}}"
        ));
        assert_eq!(instances[0].uuid, UUID_A);
        let message = rejected("{\"instances\": [\n  {\"uuid\": \"web-01\", \"root_gb\": 1}\n]}");
        assert_eq!(
            message,
            "instances[0]: uuid \"web-01\" is not a UUID (32 hex digits, in 8-4-4-4-12 groups or without hyphens) at line 2 column 19"
        );
    }

    #[test]
    fn an_unknown_member_names_the_field_and_the_instance() {
        let text = format!("{{\"instances\": [\n  {{\"uuid\": \"{UUID_A}\", \"root_gb\": 80}},\n  {{\"uuid\": \"{UUID_B}\", \"root_gib\": 80}}\n]}}");
        let message = rejected(&text);
        assert!(
            message.starts_with("instances[1]: unknown field `root_gib`"),
            "{message}"
        );
        assert!(message.ends_with("at line 3 column 61"), "{message}");
        let message = rejected("{\"instances\": [], \"instance\": []}");
        assert!(
            message.starts_with("unknown field `instance`, expected `instances`"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_uuid_or_root_gb_is_an_error() {
        let message = rejected("{\"instances\": [{\"root_gb\": 80}]}");
        assert!(
            message.starts_with("instances[0]: missing field `uuid`"),
            "{message}"
        );
        let message = rejected(&format!("{{\"instances\": [{{\"uuid\": \"{UUID_A}\"}}]}}"));
        assert!(
            message.starts_with("instances[0]: missing field `root_gb`"),
            "{message}"
        );
        let message = rejected("{}");
        assert!(
            message.starts_with("missing field `instances`"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_uuids_are_rejected_even_in_another_case() {
        let text = format!("{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"root_gb\": 1}}, {{\"uuid\": \"{UUID_B}\", \"root_gb\": 1}},\n{{\"uuid\": \"{}\", \"root_gb\": 2}}]}}", UUID_A.to_ascii_uppercase());
        let message = rejected(&text);
        assert!(
            message.starts_with(&format!(
                "instances[2]: uuid {UUID_A} is also instances[0] at line 2"
            )),
            "{message}"
        );
        let message = rejected("{\"instances\": [], \"instances\": []}");
        assert!(
            message.starts_with("duplicate field `instances`"),
            "{message}"
        );
    }

    #[test]
    fn sizes_are_whole_numbers_within_novas_limits() {
        for (value, expected) in [
            ("-1", "invalid value: integer `-1`, expected u64"),
            ("80.0", "invalid type: floating point `80.0`, expected u64"),
            ("\"80\"", "invalid type: string \"80\", expected u64"),
            ("null", "invalid type: null, expected u64"),
            (
                "2147483648",
                "2147483648 is larger than nova allows (2147483647)",
            ),
        ] {
            let message = rejected(&format!("{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"swap_mb\": {value}, \"root_gb\": 1}}]}}"));
            assert!(
                message.starts_with(&format!("instances[0]: {expected} at line 1 column ")),
                "{value}: {message}"
            );
        }
        let message = rejected(&format!("{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"root_gb\": 1, \"boot_from_volume\": \"yes\"}}]}}"));
        assert!(message.contains("expected a boolean"), "{message}");
    }

    #[test]
    fn bad_json_is_reported_with_its_position() {
        let message = rejected(&format!(
            "{{\"instances\": [\n  {{\"uuid\": \"{UUID_A}\",, }}\n]}}"
        ));
        assert_eq!(
            message,
            "instances[0]: key must be a string at line 2 column 51"
        );
        let message = rejected("");
        assert_eq!(message, "EOF while parsing a value at line 1 column 0");
        let message = rejected("[]");
        assert!(
            message
                .starts_with("invalid type: sequence, expected an object {\"instances\": [...]}"),
            "{message}"
        );
        let message = rejected("{\"instances\": []} trailing");
        assert_eq!(message, "trailing characters at line 1 column 19");
        let message = rejected(&format!(
            "{{\"instances\": [{{\"uuid\": \"{UUID_A}\", \"root_gb\": 1}},]}}"
        ));
        assert!(message.contains("trailing comma at line 1"), "{message}");
    }

    #[tokio::test]
    async fn collect_reads_the_file_with_the_host_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instances.json");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-incident/instances.json"),
            &path,
        )
        .unwrap();
        let settings = HostDiskSettings {
            reserved_host_disk_mb: 1024,
            disk_allocation_ratio: 1.5,
        };
        let source = FileSource::new(path.clone(), settings);
        assert_eq!(source.kind(), SourceKind::File);
        let usage = source.collect().await.unwrap();
        assert_eq!(usage.instances.len(), 4);
        assert_eq!(usage.reserved_bytes, GIB);
        assert_eq!(usage.allocation_ratio, 1.5);

        std::fs::write(&path, "{\"instances\": [{}]}").unwrap();
        let message = source.collect().await.unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: instances[0]: missing field `uuid` at line 1 column 17",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn a_missing_or_huge_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instances.json");
        let error = FileSource::new(path.clone(), HostDiskSettings::default())
            .collect()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, TrackedError::Io { path: p, .. } if *p == path.display().to_string()),
            "{error}"
        );
        std::fs::File::create(&path)
            .unwrap()
            .set_len(crate::input::MAX_FILE_BYTES + 1)
            .unwrap();
        let message = FileSource::new(path.clone(), HostDiskSettings::default())
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "{}: larger than 64 MiB; refusing to read it",
                path.display()
            )
        );
    }
}
