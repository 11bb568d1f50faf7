//! Server-made names and uids: `generateName` suffixes and UUID-shaped
//! `metadata.uid`s, distinct per server and per object, without a random
//! number crate (a SplitMix64 sequence seeded from the clock).

use super::error::ApiError;
use super::objects::meta_str;
use serde_json::Value;

/// The sequence names and uids are drawn from.
#[derive(Debug)]
pub(crate) struct Names {
    seq: u64,
    nonce: u64,
}

impl Names {
    /// A sequence seeded from the current time.
    pub(crate) fn new() -> Names {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Names { seq: 0, nonce }
    }

    /// `metadata.name`, or `generateName` plus five random characters.
    pub(crate) fn pick_name(&mut self, object: &Value) -> Result<String, ApiError> {
        let name = meta_str(object, "name");
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        let prefix = meta_str(object, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::Invalid(
                "metadata.name: Required value: name or generateName is required".into(),
            ));
        }
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut x = self.next_random();
        let suffix: String = (0..5)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect();
        Ok(format!("{prefix}{suffix}"))
    }

    /// A fresh UUID-shaped uid.
    pub(crate) fn uid(&mut self) -> String {
        let x = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            x >> 32,
            x & 0xffff,
            self.seq & 0xfff,
            (x >> 16) & 0xfff,
            self.seq
        )
    }

    /// A SplitMix64 step: distinct, well-spread numbers without a RNG crate.
    fn next_random(&mut self) -> u64 {
        self.seq += 1;
        let mut z = self
            .nonce
            .wrapping_add(self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// generateName gets five characters appended; uids never repeat.
    #[test]
    fn generated_names_and_uids_are_distinct() {
        let mut names = Names::new();
        let object = json!({"metadata": {"generateName": "gw-"}});
        let a = names.pick_name(&object).unwrap();
        let b = names.pick_name(&object).unwrap();
        assert!(a.starts_with("gw-") && a.len() == 8 && a != b, "{a} {b}");
        assert_eq!(
            names
                .pick_name(&json!({"metadata": {"name": "x"}}))
                .unwrap(),
            "x"
        );
        assert!(names.pick_name(&json!({})).is_err());
        assert_ne!(names.uid(), names.uid());
    }
}
