//! The domain verification file (域名校验文件): before the console accepts a web-authorization
//! domain (网页授权域名) or a JS-SDK domain (JS接口安全域名), WeChat fetches
//! `https://<domain>/MP_verify_<code>.txt` and expects the code as its content. The console
//! offers the file for download; `WECHAT_MP_VERIFY_FILE` names it (`MP_verify_AbC123xyz.txt`), and
//! the `oauth` function answers `GET /<that name>` with the code, so no static hosting is needed.

use crate::config::vars::WECHAT_MP_VERIFY_FILE;
use crate::config::{ConfigError, Env, optional};

const PREFIX: &str = "MP_verify_";
const SUFFIX: &str = ".txt";

/// The configured verification file: its name and the content WeChat expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFile {
    name: String,
}

impl VerifyFile {
    /// `MP_verify_` + one or more ASCII letters and digits + `.txt`, nothing else.
    pub fn parse(name: &str) -> Result<Self, String> {
        let code = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .filter(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric()));
        match code {
            Some(_) => Ok(Self { name: name.into() }),
            None => Err(format!(
                "{name:?} is not a verification file name: expected {PREFIX}<letters and digits>{SUFFIX}, \
                 as the console's download is named (e.g. MP_verify_AbC123xyz.txt)"
            )),
        }
    }

    /// `WECHAT_MP_VERIFY_FILE`, when set.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        optional(env, WECHAT_MP_VERIFY_FILE)
            .map(|name| {
                Self::parse(&name).map_err(|reason| ConfigError::new(WECHAT_MP_VERIFY_FILE, reason))
            })
            .transpose()
    }

    /// The file name, e.g. `MP_verify_AbC123xyz.txt`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's content: the part between `MP_verify_` and `.txt`.
    pub fn code(&self) -> &str {
        &self.name[PREFIX.len()..self.name.len() - SUFFIX.len()]
    }

    /// Whether `path` (below the public base's path) asks for this file.
    pub fn is_path(&self, path: &str) -> bool {
        path.strip_prefix('/') == Some(self.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_what_lies_between_prefix_and_suffix() {
        let file = VerifyFile::parse("MP_verify_AbC123xyz.txt").unwrap();
        assert_eq!(file.code(), "AbC123xyz");
        assert_eq!(file.name(), "MP_verify_AbC123xyz.txt");
        assert!(file.is_path("/MP_verify_AbC123xyz.txt"));
        assert!(!file.is_path("/MP_verify_Other.txt"));
        assert!(!file.is_path("/x/MP_verify_AbC123xyz.txt"));
    }

    #[test]
    fn other_names_are_refused_naming_the_variable() {
        for bad in [
            "MP_verify_.txt",
            "MP_verify_abc",
            "mp_verify_abc.txt",
            "MP_verify_a b.txt",
            "MP_verify_a/../b.txt",
            "MP_verify_中文.txt",
            "/MP_verify_abc.txt",
        ] {
            assert!(VerifyFile::parse(bad).is_err(), "{bad}");
        }
        let err = VerifyFile::from_env(&[("WECHAT_MP_VERIFY_FILE", "verify.txt")]).unwrap_err();
        assert_eq!(err.variable, "WECHAT_MP_VERIFY_FILE");
        assert_eq!(VerifyFile::from_env(&[("OTHER", "x")]).unwrap(), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any name parses or is refused (never a panic), and what parses is served at
            /// exactly one path whose body is plain alphanumerics.
            #[test]
            fn a_name_parses_only_as_the_console_names_its_file(name in "(MP_verify_)?\\PC{0,20}(\\.txt)?") {
                if let Ok(file) = VerifyFile::parse(&name) {
                    prop_assert_eq!(file.name(), name.as_str());
                    prop_assert!(!file.code().is_empty());
                    prop_assert!(file.code().bytes().all(|b| b.is_ascii_alphanumeric()));
                    let path = format!("/{name}");
                    prop_assert!(file.is_path(&path));
                }
            }
        }
    }
}
