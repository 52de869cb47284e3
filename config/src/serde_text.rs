//! Serde for the manifest's values that have a text form of their own
//! (`"8080:80/tcp"`, `"oci:images/app:1.0"`): serialised through
//! `Display`, read back through `FromStr`, so a plan spells them as the
//! manifest does and reading one validates them as the manifest parser
//! would.

/// Implements `Serialize` and `Deserialize` for `$t` through its
/// `Display` and `FromStr` (whose error must be `Display`).
macro_rules! as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use as_text;
