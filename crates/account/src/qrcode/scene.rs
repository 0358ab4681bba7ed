//! A QR code's scene (`scene_str`) and lifetime, checked offline before any call, against the
//! limits WeChat documents for `/cgi-bin/qrcode/create` (docs/qrcodes.md cites them).

use std::fmt;

/// `scene_str` is 1 to 64 long. WeChat does not say whether it counts bytes or characters, so
/// this counts UTF-8 bytes, the stricter reading (a Chinese character is 3).
pub const MAX_SCENE_BYTES: usize = 64;
/// A temporary code lives at most 30 days.
pub const MAX_EXPIRE_SECONDS: u32 = 2_592_000;
/// An account may hold at most 100,000 permanent codes (WeChat's figure; not checked offline,
/// since only WeChat knows how many exist: it answers 45029 past it).
pub const MAX_PERMANENT_CODES: u32 = 100_000;

/// Why a scene name or lifetime is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SceneError {
    #[error("the scene name is empty (WeChat needs 1 to {MAX_SCENE_BYTES} bytes)")]
    Empty,
    #[error("the scene name is {0} bytes long: WeChat takes at most {MAX_SCENE_BYTES}")]
    TooLong(usize),
    /// Control characters cannot travel in the XML WeChat pushes the scene back in.
    #[error("the scene name contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    #[error("a temporary code lives 1 to {MAX_EXPIRE_SECONDS} seconds (30 days), not {0}")]
    Lifetime(u64),
}

/// A checked scene name: what the code carries and WeChat pushes back as the `EventKey`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Scene(String);

impl Scene {
    pub fn new(name: &str) -> Result<Self, SceneError> {
        if name.is_empty() {
            return Err(SceneError::Empty);
        }
        if name.len() > MAX_SCENE_BYTES {
            return Err(SceneError::TooLong(name.len()));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(SceneError::ControlCharacter(c as u32));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Scene {
    type Err = SceneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// How long a code lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `QR_STR_SCENE`, expiring after this many seconds (1 to [`MAX_EXPIRE_SECONDS`]).
    Temporary { expire_seconds: u32 },
    /// `QR_LIMIT_STR_SCENE`: never expires; counts against [`MAX_PERMANENT_CODES`].
    Permanent,
}

impl Lifetime {
    /// A temporary code living `seconds`, checked.
    pub fn temporary(seconds: u64) -> Result<Self, SceneError> {
        match u32::try_from(seconds) {
            Ok(expire_seconds @ 1..=MAX_EXPIRE_SECONDS) => Ok(Self::Temporary { expire_seconds }),
            _ => Err(SceneError::Lifetime(seconds)),
        }
    }

    /// A temporary code living `days` whole days (1 to 30).
    pub fn days(days: u64) -> Result<Self, SceneError> {
        Self::temporary(days.saturating_mul(86_400))
    }

    /// WeChat's `action_name`.
    pub fn action_name(self) -> &'static str {
        match self {
            Self::Temporary { .. } => "QR_STR_SCENE",
            Self::Permanent => "QR_LIMIT_STR_SCENE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limits_are_wechats() {
        assert!(Scene::new(&"a".repeat(64)).is_ok());
        assert_eq!(Scene::new(&"a".repeat(65)), Err(SceneError::TooLong(65)));
        assert_eq!(Scene::new(""), Err(SceneError::Empty));
        // 22 Chinese characters are 66 bytes.
        assert_eq!(Scene::new(&"码".repeat(22)), Err(SceneError::TooLong(66)));
        assert_eq!(Scene::new("a\nb"), Err(SceneError::ControlCharacter(0x0a)));
        assert_eq!(
            Lifetime::days(30),
            Ok(Lifetime::Temporary {
                expire_seconds: 2_592_000
            })
        );
        assert_eq!(Lifetime::days(31), Err(SceneError::Lifetime(2_678_400)));
        assert_eq!(Lifetime::temporary(0), Err(SceneError::Lifetime(0)));
        assert_eq!(
            Lifetime::days(u64::MAX),
            Err(SceneError::Lifetime(u64::MAX))
        );
    }

    proptest! {
        #[test]
        fn a_scene_is_accepted_exactly_when_it_is_1_to_64_bytes_without_control_characters(
            name in "\\PC{0,70}|[a-z\\x00-\\x1f\\x7f]{0,70}"
        ) {
            let valid = (1..=MAX_SCENE_BYTES).contains(&name.len())
                && !name.chars().any(char::is_control);
            match Scene::new(&name) {
                Ok(scene) => {
                    prop_assert!(valid);
                    prop_assert_eq!(scene.as_str(), name.as_str());
                }
                Err(_) => prop_assert!(!valid),
            }
        }

        #[test]
        fn a_lifetime_is_accepted_exactly_within_30_days(seconds in 0u64..5_000_000) {
            let valid = (1..=2_592_000).contains(&seconds);
            prop_assert_eq!(Lifetime::temporary(seconds).is_ok(), valid);
        }
    }
}
