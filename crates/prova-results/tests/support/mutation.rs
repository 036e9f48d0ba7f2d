//! Byte-level mutations of seed files for the `fuzz_*` tests (the runner
//! is `prova_fuzz`'s).

use proptest::strategy::Strategy;

/// Byte-level mutations of a seed file.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Overwrite the byte at (position modulo length).
    Set(usize, u8),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Remove up to n bytes from a position.
    Remove(usize, usize),
    /// Copy a range to another position (repeats structure).
    Duplicate(usize, usize, usize),
    /// Keep only the first (position modulo length) bytes.
    Truncate(usize),
}

pub fn mutation(fragments: &'static [&'static [u8]]) -> impl Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), proptest::sample::select(fragments))
            .prop_map(|(p, f)| Mutation::Insert(p, f.to_vec())),
        (any::<usize>(), 1usize..512).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), 1usize..2048, any::<usize>())
            .prop_map(|(a, n, b)| Mutation::Duplicate(a, n, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// `seed` with `mutations` applied in order.
pub fn mutate(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match m {
            Mutation::Set(p, v) if !b.is_empty() => {
                let i = p % b.len();
                b[i] = *v;
            }
            Mutation::Set(..) => {}
            Mutation::Insert(p, bytes) => {
                let i = at(*p, b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = at(*p, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate(a, n, to) => {
                let i = at(*a, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                let j = at(*to, b.len());
                b.splice(j..j, piece);
            }
            Mutation::Truncate(p) => {
                let keep = at(*p, b.len());
                b.truncate(keep);
            }
        }
    }
    b
}
