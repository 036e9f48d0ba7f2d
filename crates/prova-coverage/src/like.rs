//! SQL `LIKE` patterns, as APISnoop's SQL uses them.
//!
//! `%` matches any run of characters (including none), `_` matches exactly
//! one character, and `\` escapes the next character. Everything else is
//! literal and case-sensitive — exactly PostgreSQL's `LIKE`.

/// A compiled SQL `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    tokens: Vec<Token>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    One,
    Any,
}

impl LikePattern {
    /// Compiles `pattern` (`%` = any run, `_` = one character, `\` escapes).
    pub fn new(pattern: &str) -> Self {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '_' => tokens.push(Token::One),
                '\\' => tokens.push(Token::Lit(chars.next().unwrap_or('\\'))),
                c => tokens.push(Token::Lit(c)),
            }
        }
        LikePattern {
            tokens,
            source: pattern.to_string(),
        }
    }

    /// True when the pattern has a `%` or `_` wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.tokens.iter().any(|t| !matches!(t, Token::Lit(_)))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches the pattern.
    pub fn matches(&self, text: &str) -> bool {
        // Classic greedy wildcard matching with one backtrack point per `%`.
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Token::One) => {
                    t += 1;
                    p += 1;
                }
                Some(Token::Lit(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Any)
    }
}

/// `text LIKE pattern` for a one-off match.
pub fn like(text: &str, pattern: &str) -> bool {
    LikePattern::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_underscore() {
        assert!(like("readBatchV1NamespacedJobStatus", "%JobStatus"));
        assert!(like("readBatchV1NamespacedJobStatus", "read%Job%"));
        assert!(!like("readBatchV1NamespacedJobStatus", "%Job"));
        assert!(like("abc", "a_c"));
        assert!(!like("abbc", "a_c"));
        assert!(like("", "%"));
        assert!(like("e2e.test/v1.36", "e2e.test%"));
        assert!(!like("xe2e.test", "e2e.test%"));
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        assert!(like(
            "/api/v1/namespaces/pods-123/pods/test-pod-a/binding",
            "/api/v1/namespaces/pods-%/pods/test-pod-%/binding"
        ));
        assert!(!like(
            "/api/v1/namespaces/pods-123/pods/test-pod-a/binding?x=1",
            "/api/v1/namespaces/pods-%/pods/test-pod-%/binding"
        ));
        assert!(LikePattern::new("%x").has_wildcards());
        assert!(!LikePattern::new("x").has_wildcards());
    }
}
