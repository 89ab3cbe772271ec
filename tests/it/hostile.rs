//! Hostile input: `parse` never panics or hangs, and every error is located (line >= 1).

use localbuild_buildspec::{Invalid, Parsed, parse};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// The bound against a blow-up (alias and merge bombs grow exponentially): generous, so a
/// loaded machine does not fail it; a bomb that expands takes minutes, not seconds.
const BOUND: Duration = Duration::from_secs(5);

/// Parse, assert that every diagnostic is located, and return the result and the time taken.
fn timed(input: &[u8]) -> (Result<Parsed, Invalid>, Duration) {
    let start = Instant::now();
    let r = parse(input);
    let took = start.elapsed();
    match &r {
        Ok(p) => assert!(p.warnings.iter().all(|d| d.line >= 1 && d.column >= 1)),
        Err(i) => {
            assert!(!i.errors.is_empty());
            assert!(
                i.errors
                    .iter()
                    .chain(&i.warnings)
                    .all(|d| d.line >= 1 && d.column >= 1)
            );
        }
    }
    (r, took)
}

/// The input is rejected with a located error, within the bound.
fn rejected_fast(input: &[u8]) -> Invalid {
    let (r, took) = timed(input);
    assert!(took < BOUND, "took {took:?}");
    match r {
        Ok(_) => panic!("accepted hostile input"),
        Err(i) => i,
    }
}

#[test]
fn invalid_utf8() {
    let i = rejected_fast(b"version: 0.2\nphases:\n  build:\n    commands: [\"\xc3\x28\"]\n");
    assert_eq!((i.errors[0].line, i.errors[0].column), (4, 17));
}

#[test]
fn tabs() {
    let i = rejected_fast(b"version: 0.2\nphases:\n\tbuild:\n\t\tcommands: [ls]\n");
    assert!(i.errors[0].line >= 2);
}

#[test]
fn deep_flow_nesting() {
    rejected_fast("[".repeat(10_000).as_bytes());
    rejected_fast("{a: ".repeat(10_000).as_bytes());
    let closed = format!(
        "version: 0.2\nx: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    rejected_fast(closed.as_bytes());
}

#[test]
fn deep_block_nesting() {
    let mut s = String::from("version: 0.2\n");
    for i in 0..2_000 {
        s.push_str(&" ".repeat(i));
        s.push_str("k:\n");
    }
    rejected_fast(s.as_bytes());
}

#[test]
fn huge_scalar() {
    let s = format!(
        "version: 0.2\nenv:\n  variables:\n    BIG: \"{}\n",
        "x".repeat(3_000_000)
    );
    let i = rejected_fast(s.as_bytes()); // unclosed quote
    assert_eq!(i.errors.len(), 1);
    let s = format!(
        "version: 0.2\nenv:\n  variables:\n    BIG: {}\n",
        "x".repeat(3_000_000)
    );
    let (r, took) = timed(s.as_bytes());
    assert!(took < BOUND, "took {took:?}");
    assert!(r.is_ok());
    let too_big = vec![b'a'; 5 * 1024 * 1024];
    let i = rejected_fast(&too_big);
    assert!(i.errors[0].message.contains("too large"));
}

#[test]
fn alias_bomb() {
    let bomb = "version: 0.2\n\
        a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let i = rejected_fast(bomb.as_bytes());
    assert!(i.errors[0].line >= 2);
}

#[test]
fn merge_key_bomb() {
    let mut s = String::from("version: 0.2\nm0: &m0 {a: 1, b: 2}\n");
    for n in 1..30 {
        s.push_str(&format!(
            "m{n}: &m{n} {{<<: [*m{}, *m{}], k{n}: 1}}\n",
            n - 1,
            n - 1
        ));
    }
    let (_, took) = timed(s.as_bytes());
    assert!(took < BOUND, "took {took:?}");
}

#[test]
fn duplicate_keys() {
    let i = rejected_fast(
        b"version: 0.2\nphases:\n  build:\n    commands: [a]\n  build:\n    commands: [b]\n",
    );
    assert_eq!(i.errors[0].line, 5);
    assert!(i.errors[0].message.contains("duplicate mapping key"));
}

#[test]
fn wrong_types() {
    for yaml in [
        "version: 0.2\nphases: [build]\n",
        "version: 0.2\nphases:\n  build: [ls]\n",
        "version: 0.2\nphases:\n  build:\n    commands: {a: b}\n",
        "version: 0.2\nenv: yes\n",
        "version: 0.2\nenv:\n  variables: [A]\n",
        "version: 0.2\nenv:\n  variables:\n    A: [1]\n",
        "version: 0.2\nartifacts: files\n",
        "version: 0.2\nartifacts:\n  files: {a: b}\n",
        "version: 0.2\ncache:\n  paths: [[a]]\n",
        "version: 0.2\nreports: [a]\n",
        "version: 0.2\nbatch:\n  build-list: {a: b}\n",
        "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: many\n",
        "version: 0.2\nproxy:\n  logs: [yes]\n",
        "version: {a: b}\n",
        "? [a]\n: b\nversion: 0.2\n",
        "--- !!binary aGVsbG8=\n",
        "version: 0.2\n...\n---\nversion: 0.1\n",
    ] {
        rejected_fast(yaml.as_bytes());
    }
}

const SEED: &str = include_str!("../fixtures/full.yml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = timed(&bytes);
    }

    #[test]
    fn mutated_yaml_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..8)
    ) {
        let mut bytes = SEED.as_bytes().to_vec();
        const SPECIAL: &[u8] = b":-[]{}&*!|>'\"#%@`\t\n ,?<";
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            let c = SPECIAL[usize::from(b) % SPECIAL.len()];
            match op {
                0 => bytes.insert(i, c),
                1 if i < bytes.len() => { bytes.remove(i); }
                2 if i < bytes.len() => bytes[i] = c,
                _ => bytes.insert(i, b),
            }
        }
        let _ = timed(&bytes);
    }
}
