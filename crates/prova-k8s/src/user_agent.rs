//! The `User-Agent` prova sends on every Kubernetes API request, so that
//! audit logs attribute each request to the prova job, test, step and
//! target that made it (kube-rs sends none by itself).
//!
//! Form: `prova/<version> (<os>/<arch>) job/<id> run/<n> test/<name>
//! step/<label> target/<id>`. Names are percent-encoded where they hold
//! anything but `A-Z a-z 0-9 - . _ ~` (a space would end the token, a
//! control character is not allowed in a header), and each is cut at
//! [`MAX_PART`] bytes so a hostile test name cannot make a huge header.

use http::HeaderValue;

use crate::spec::Owner;

/// Longest name (test, step, target) kept in the header, before encoding.
pub const MAX_PART: usize = 128;

/// `prova/<version> (<os>/<arch>)`: what prova sends when it knows no job.
pub fn base() -> String {
    format!(
        "prova/{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        go_arch(std::env::consts::ARCH)
    )
}

/// The full user agent for one step run.
pub fn for_owner(owner: &Owner) -> String {
    format!(
        "{} job/{} run/{} test/{} step/{} target/{}",
        base(),
        owner.job_id,
        owner.run_id,
        encode(&owner.test),
        encode(&owner.step),
        encode(&owner.target)
    )
}

/// The header value; always valid, since [`for_owner`] emits visible ASCII.
pub fn header(owner: &Owner) -> HeaderValue {
    HeaderValue::from_str(&for_owner(owner)).unwrap_or_else(|_| HeaderValue::from_static("prova"))
}

/// Architecture names as Kubernetes clients write them (Go's GOARCH).
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Percent-encodes all but unreserved characters, after cutting `s` to
/// [`MAX_PART`] bytes at a character boundary. Empty becomes `-`.
fn encode(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    let mut end = s.len().min(MAX_PART);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end);
    for b in s[..end].bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if end < s.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_and_bounded() {
        let owner = Owner {
            job_id: 12,
            run_id: 3,
            test: "Conformance suite #1\n".into(),
            attempt: 0,
            step: "e2e".into(),
            target: "é".repeat(200),
        };
        let ua = for_owner(&owner);
        assert!(ua.starts_with("prova/"), "{ua}");
        assert!(
            ua.contains(" job/12 run/3 test/Conformance%20suite%20%231%0A step/e2e target/%C3%A9"),
            "{ua}"
        );
        assert!(ua.ends_with("..."), "{ua}");
        assert!(ua.len() < 1024, "{}", ua.len());
        assert!(HeaderValue::from_str(&ua).is_ok());
        assert_eq!(encode(""), "-");
    }
}
