//! The corpus of real buildspecs: each is accepted, or rejected with a location, and the
//! outcome matches `tests/corpus.expected` (regenerate with `UPDATE_CORPUS=1`).

use crate::util::root;
use localbuild_buildspec::parse;

#[test]
fn corpus_matches_expected() {
    let dir = root().join("../shared/corpus/buildspecs");
    let expected_path = root().join("tests/corpus.expected");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "corpus directory {} is missing",
            dir.display()
        );
        eprintln!(
            "corpus directory {} is missing; skipped outside CI",
            dir.display()
        );
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus directory is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 100,
        "expected 100 corpus files, found {}",
        names.len()
    );
    let mut actual = String::new();
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).expect("corpus file is readable");
        match parse(&bytes) {
            Ok(_) => actual.push_str(&format!("{name}\tok\n")),
            Err(invalid) => {
                let e = &invalid.errors[0];
                assert!(
                    e.line >= 1 && e.column >= 1,
                    "{name}: unlocated error {e:?}"
                );
                actual.push_str(&format!(
                    "{name}\terror\t{}:{}: {}\n",
                    e.line, e.column, e.message
                ));
            }
        }
    }
    if std::env::var("UPDATE_CORPUS").as_deref() == Ok("1") {
        std::fs::write(&expected_path, &actual).expect("write tests/corpus.expected");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "corpus results differ from tests/corpus.expected (UPDATE_CORPUS=1 regenerates it)"
    );
}
