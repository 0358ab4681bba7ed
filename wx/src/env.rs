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

/// What a `.env` file holds: the variables it sets, and one warning per line that could not be
/// parsed (those lines are ignored).
#[derive(Debug, Default)]
pub struct DotEnv {
    pub vars: HashMap<String, String>,
    pub warnings: Vec<String>,
}

/// Parse `.env` text with dotenvy: `KEY=VALUE` lines, `#` comments (also after a value),
/// an optional `export ` prefix, single or double quotes, `${VAR}` substitution in unquoted
/// and double-quoted values. A line that appears twice: the last one wins.
pub fn parse_dotenv(text: &str) -> DotEnv {
    let mut parsed = DotEnv::default();
    // Where to look for the next unparsable line, so that repeated bad lines get their own numbers.
    let mut search_from = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                parsed.vars.insert(key, value);
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let (number, next) = line_number(text, &line, search_from);
                search_from = next;
                // The line's text is left out: it may hold a secret that lacks its `=`.
                parsed.warnings.push(match number {
                    Some(n) => format!(
                        "{DOTENV_NAME} line {n} ignored: not KEY=VALUE (quote a value that contains spaces)"
                    ),
                    None => format!("{DOTENV_NAME}: a line was ignored: not KEY=VALUE"),
                });
            }
            Err(err) => parsed
                .warnings
                .push(format!("{DOTENV_NAME}: a line was ignored: {err}")),
        }
    }
    parsed
}

const DOTENV_NAME: &str = ".env";

/// The 1-based number of the first line of `text`, from line index `from` on, that dotenvy
/// reported as `fragment` (the line cut at a `#` comment, or several lines for an unclosed
/// quote); and the line index to search from next.
fn line_number(text: &str, fragment: &str, from: usize) -> (Option<usize>, usize) {
    let first = fragment.lines().next().unwrap_or_default();
    let found = text.lines().enumerate().skip(from).find(|(_, line)| {
        line.strip_prefix(first)
            .is_some_and(|rest| rest.is_empty() || rest.trim_start().starts_with('#'))
    });
    match found {
        Some((index, _)) => (Some(index + 1), index + 1),
        None => (None, from),
    }
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
        )
        .vars;
        assert_eq!(parsed["WECHAT_TOKEN"], "abc");
        assert_eq!(parsed["WECHAT_APP_ID"], "wx123");
        assert_eq!(parsed["QUOTED"], "a b");
        assert_eq!(parsed["EMPTY"], "");
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn a_comment_after_a_value_is_not_part_of_it() {
        let parsed = parse_dotenv(
            "LOCAL_FAKE_WECHAT=true # use the bundled fake\nPORT=3001 #no space\nHASH='a # b'\n",
        );
        assert_eq!(parsed.vars["LOCAL_FAKE_WECHAT"], "true");
        assert_eq!(parsed.vars["PORT"], "3001");
        assert_eq!(parsed.vars["HASH"], "a # b");
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn each_unparsable_line_is_warned_about_by_number_without_its_text() {
        let parsed = parse_dotenv(
            "# settings\nWECHAT_TOKEN=abc\nnot a pair\nWECHAT_APP_SECRET 0123secret\n\nnot a pair\nPORT=3001\n",
        );
        assert_eq!(parsed.vars["WECHAT_TOKEN"], "abc");
        assert_eq!(parsed.vars["PORT"], "3001");
        assert_eq!(parsed.vars.len(), 2);
        assert_eq!(parsed.warnings.len(), 3, "{:?}", parsed.warnings);
        for (warning, line) in parsed.warnings.iter().zip([3, 4, 6]) {
            assert!(
                warning.starts_with(&format!(".env line {line} ignored")),
                "{warning}"
            );
            assert!(!warning.contains("0123secret"), "{warning}");
        }
    }

    #[test]
    fn a_bad_line_that_starts_like_a_good_one_gets_its_own_number() {
        let parsed = parse_dotenv("AB=1\nAB\n");
        assert_eq!(parsed.vars["AB"], "1");
        assert_eq!(parsed.warnings.len(), 1);
        assert!(
            parsed.warnings[0].starts_with(".env line 2 "),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn an_unclosed_quote_is_warned_about_at_its_line() {
        let parsed = parse_dotenv("A=1\nB=\"open\nC=3\n");
        assert_eq!(parsed.vars["A"], "1");
        assert!(!parsed.vars.contains_key("B"));
        assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
        assert!(
            parsed.warnings[0].starts_with(".env line 2 "),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn the_real_environment_beats_a_dotenv_file_with_comments() {
        let dotenv = parse_dotenv("PORT=4000 # from the file\nWECHAT_TOKEN=filetoken\n").vars;
        let (env, defaulted) = merge_env(pairs(&[("PORT", "5000")]), &dotenv, DEFAULTS);
        assert_eq!(env["PORT"], "5000");
        assert_eq!(env["WECHAT_TOKEN"], "filetoken");
        assert_eq!(defaulted, ["HOST"]);
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
