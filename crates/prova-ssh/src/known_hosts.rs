//! Looks a server's host key up in an OpenSSH known_hosts text.
//!
//! Lines are parsed by ssh-key's known_hosts types (markers, host patterns,
//! hashed names, keys). The lookup is written here because russh's
//! `check_known_hosts_path` gets several cases wrong for a security check:
//! it ignores `@revoked` lines (a revoked key listed on a normal line too is
//! accepted), has no `*`/`?` wildcards nor `!` negations, splits fields on
//! single spaces only (a tab-separated line never matches), gives up on the
//! whole file at the first matching line whose key it cannot parse, and
//! miscounts line numbers after comments. ssh-key parses but does no
//! matching. The rules below follow OpenSSH's `hostfile.c`/`match.c`.

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::PublicKey;
use russh::keys::ssh_key::known_hosts::{HostPatterns, Marker};
use sha1::Sha1;

/// What the known_hosts text says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Listed for the host on this line (1-based).
    Trusted { line: usize },
    /// Marked `@revoked` on this line. A revoked key is refused for every
    /// host, whatever the line's host patterns ("must not ever be accepted",
    /// sshd(8)).
    Revoked { line: usize },
    /// The host has keys of the same type listed, none of them this one.
    Changed { lines: Vec<usize> },
    /// The host has no key of this type listed (`other_types`: the types it
    /// does have, if any).
    Unknown { other_types: Vec<String> },
}

/// Looks up `key` for `host` at `port` in `text` (a known_hosts file's
/// contents). Lines that cannot be parsed are skipped, as OpenSSH does.
pub fn lookup(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    // OpenSSH lowercases the name before matching and hashing.
    let name = crate::config::host_port(host, port).to_ascii_lowercase();
    let mut trusted = None;
    let mut changed = Vec::new();
    let mut other_types = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(entry) = parse_line(raw) else {
            continue;
        };
        let same_key = entry.key.key_data() == key.key_data();
        match entry.marker {
            Some(Marker::Revoked) if same_key => return Verdict::Revoked { line },
            // Host certificates are not offered by prova's client, so CA
            // lines never vouch for a key.
            Some(_) => continue,
            None => {}
        }
        if !hosts_match(&entry.hosts, &name) {
            continue;
        }
        if same_key {
            trusted.get_or_insert(line);
        } else if entry.key.algorithm() == key.algorithm() {
            changed.push(line);
        } else {
            other_types.push(entry.key.algorithm().to_string());
        }
    }
    if let Some(line) = trusted {
        Verdict::Trusted { line }
    } else if !changed.is_empty() {
        Verdict::Changed { lines: changed }
    } else {
        other_types.dedup();
        Verdict::Unknown { other_types }
    }
}

struct Line {
    marker: Option<Marker>,
    hosts: HostPatterns,
    key: PublicKey,
}

/// One line's fields, split on any whitespace as OpenSSH does; `None` for
/// blank lines, comments and lines that do not parse.
fn parse_line(raw: &str) -> Option<Line> {
    let mut fields = raw.split_ascii_whitespace();
    let mut first = fields.next()?;
    if first.starts_with('#') {
        return None;
    }
    let mut marker = None;
    if first.starts_with('@') {
        marker = Some(first.parse::<Marker>().ok()?);
        first = fields.next()?;
    }
    let hosts = first.parse::<HostPatterns>().ok()?;
    let key_type = fields.next()?;
    let key_base64 = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {key_base64}")).ok()?;
    Some(Line { marker, hosts, key })
}

/// OpenSSH's `match_hostname`: a hashed name matches by HMAC-SHA1; a
/// pattern list matches when a positive pattern matches and no negated
/// (`!`) one does.
fn hosts_match(hosts: &HostPatterns, name: &str) -> bool {
    match hosts {
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                return false;
            };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        HostPatterns::Patterns(patterns) => {
            let mut matched = false;
            for pattern in patterns {
                let pattern = pattern.to_ascii_lowercase();
                if let Some(negated) = pattern.strip_prefix('!') {
                    if wildcard_match(negated, name) {
                        return false;
                    }
                } else if wildcard_match(&pattern, name) {
                    matched = true;
                }
            }
            matched
        }
    }
}

/// `*` (any run) and `?` (one character) glob matching, linear-time
/// backtracking on the last `*` only, so hostile patterns cannot blow up.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The key type as OpenSSH prints it (`ssh-ed25519`).
pub fn key_type(key: &PublicKey) -> String {
    key.algorithm().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn bracketed_port_entry_matches_only_that_port() {
        let text = format!("[127.0.0.1]:2222 {KEY_A}\n");
        assert_eq!(
            lookup(&text, "127.0.0.1", 2222, &key(KEY_A)),
            Verdict::Trusted { line: 1 }
        );
        assert_eq!(
            lookup(&text, "127.0.0.1", 22, &key(KEY_A)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn comma_lists_tabs_and_comments_count_lines() {
        let text = format!("# comment\n\nexample.org,10.0.0.1\t{KEY_A} comment here\n");
        assert_eq!(
            lookup(&text, "10.0.0.1", 22, &key(KEY_A)),
            Verdict::Trusted { line: 3 }
        );
        assert_eq!(
            lookup(&text, "EXAMPLE.org", 22, &key(KEY_A)),
            Verdict::Trusted { line: 3 }
        );
    }

    #[test]
    fn hashed_entry_matches_by_hmac() {
        // From russh's own test: the hashed name is "example.com".
        let text =
            format!("|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= {KEY_B}\n");
        assert_eq!(
            lookup(&text, "example.com", 22, &key(KEY_B)),
            Verdict::Trusted { line: 1 }
        );
        assert_eq!(
            lookup(&text, "example.org", 22, &key(KEY_B)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn other_key_of_same_type_is_a_change() {
        let text = format!("host {KEY_B}\nhost {KEY_B}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Changed { lines: vec![1, 2] }
        );
    }

    #[test]
    fn revoked_key_is_refused_even_when_also_listed() {
        let text = format!("host {KEY_A}\n@revoked * {KEY_A}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Revoked { line: 2 }
        );
        // A revoked line for another key does not affect this one.
        let text = format!("host {KEY_A}\n@revoked host {KEY_B}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Trusted { line: 1 }
        );
    }

    #[test]
    fn cert_authority_lines_do_not_vouch_for_keys() {
        let text = format!("@cert-authority host {KEY_A}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let text = format!("*.lab,!bad.lab {KEY_A}\n");
        assert_eq!(
            lookup(&text, "dut1.lab", 22, &key(KEY_A)),
            Verdict::Trusted { line: 1 }
        );
        assert_eq!(
            lookup(&text, "bad.lab", 22, &key(KEY_A)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
        assert!(wildcard_match("d?t*", "dut42"));
        assert!(!wildcard_match("d?t", "dut42"));
        assert!(!wildcard_match(&"*a".repeat(50), &"a".repeat(40)));
    }

    #[test]
    fn unparsable_lines_are_skipped() {
        let text =
            format!("host ssh-ed25519 not-base64!\nhost\n@weird host {KEY_A}\nhost {KEY_A}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Trusted { line: 4 }
        );
    }

    #[test]
    fn only_other_types_is_unknown_naming_them() {
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDEJUUAKoZW2Lo3xBXLk0yiEypeUZcdidkj8S7QjmCUB2G/nA32JvzhiIzuLMPI8XHgsjPksHx9LCRNTzNvYrz8=";
        let text = format!("host {ecdsa}\n");
        assert_eq!(
            lookup(&text, "host", 22, &key(KEY_A)),
            Verdict::Unknown {
                other_types: vec!["ecdsa-sha2-nistp256".to_string()]
            }
        );
    }
}
