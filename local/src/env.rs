//! Where the local server's configuration comes from: the real environment, then a `.env` file
//! in the current directory, then development defaults (announced in the banner).

use std::collections::HashMap;

/// The configuration the local server runs with: `real` (the process environment) over
/// `dotenv` over `defaults`; blank values count as unset. Also returns the names that fell back
/// to a default, for the banner.
pub fn merge_env<'d>(
    real: impl IntoIterator<Item = (String, String)>,
    dotenv: &HashMap<String, String>,
    defaults: &[(&'d str, &str)],
) -> (HashMap<String, String>, Vec<&'d str>) {
    let mut env: HashMap<String, String> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut overridden = Vec::new();
    let layers = dotenv
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(real);
    for (key, value) in layers.filter(|(_, v)| !v.trim().is_empty()) {
        overridden.push(key.clone());
        env.insert(key, value);
    }
    let defaulted = defaults
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !overridden.iter().any(|o| o == k))
        .collect();
    (env, defaulted)
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, an optional `export ` prefix
/// and matching single or double quotes around the value are removed.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_string(), unquote(value.trim()).to_string()))
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &[(&str, &str)] = &[
        ("HOST", "127.0.0.1"),
        ("PORT", "3000"),
        ("WECHAT_TOKEN", "dev-token"),
    ];

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dotenv_lines_are_parsed_with_comments_quotes_and_export() {
        let parsed = parse_dotenv(
            "# comment\n\nWECHAT_TOKEN=abc\nexport WECHAT_APP_ID = \"wx123\" \nQUOTED='a b'\nnot a pair\n=novalue\nEMPTY=\n",
        );
        assert_eq!(parsed["WECHAT_TOKEN"], "abc");
        assert_eq!(parsed["WECHAT_APP_ID"], "wx123");
        assert_eq!(parsed["QUOTED"], "a b");
        assert_eq!(parsed["EMPTY"], "");
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn real_environment_beats_dotenv_beats_defaults() {
        let dotenv: HashMap<String, String> =
            pairs(&[("WECHAT_TOKEN", "from-dotenv"), ("PORT", "4000")])
                .into_iter()
                .collect();
        let (env, defaulted) = merge_env(pairs(&[("PORT", "5000")]), &dotenv, DEFAULTS);
        assert_eq!(env["WECHAT_TOKEN"], "from-dotenv");
        assert_eq!(env["PORT"], "5000");
        assert_eq!(env["HOST"], "127.0.0.1");
        assert_eq!(defaulted, ["HOST"]);
    }

    #[test]
    fn with_nothing_set_the_development_defaults_are_used_and_announced() {
        let (env, defaulted) = merge_env(Vec::new(), &HashMap::new(), DEFAULTS);
        assert_eq!(env["WECHAT_TOKEN"], "dev-token");
        assert_eq!(defaulted, ["HOST", "PORT", "WECHAT_TOKEN"]);
    }

    #[test]
    fn blank_values_fall_back_to_the_default() {
        let (env, defaulted) =
            merge_env(pairs(&[("WECHAT_TOKEN", "  ")]), &HashMap::new(), DEFAULTS);
        assert_eq!(env["WECHAT_TOKEN"], "dev-token");
        assert!(defaulted.contains(&"WECHAT_TOKEN"));
    }
}
