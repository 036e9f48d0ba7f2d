//! The user agent of e2e requests, in the form of the upstream suite's
//! (`e2e.test/v1.36.0 (linux/amd64) kubernetes/abcdef -- <test name>`):
//! APISnoop counts a request as a test's when its user agent starts with
//! `e2e.test` and names the test after ` -- `.

/// `e2e.test/<prova version> (<os>/<arch>) prova -- <full test name>`.
///
/// Characters a header value cannot carry (controls, non-ASCII) become
/// `?`, so the header is always valid; test names are ASCII.
pub fn for_test(full_name: &str) -> String {
    let name: String = full_name
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!(
        "e2e.test/{} ({}/{}) prova -- {name}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        go_arch(std::env::consts::ARCH)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_test_after_two_dashes_and_is_a_valid_header() {
        let ua = for_test("[sig-apps] Job should apply changes to a job status");
        assert!(ua.starts_with("e2e.test/"), "{ua}");
        assert!(ua.ends_with(" prova -- [sig-apps] Job should apply changes to a job status"));
        assert!(http::HeaderValue::from_str(&for_test("a\nb\u{e9}")).is_ok());
    }
}
