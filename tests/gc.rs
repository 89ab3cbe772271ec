//! `localbuild gc` removes whatever a killed build left behind. Its own test binary: gc removes
//! every labelled resource, so it must not run beside other builds (test binaries run one after
//! another).

use std::process::Command;

#[test]
fn gc_removes_labelled_containers_volumes_and_networks() {
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let label = "localbuild.build-id=gc-test:0";
    let name = format!("localbuild-gc-test-{}", std::process::id());
    docker(&[
        "create",
        "--name",
        &name,
        "--label",
        label,
        "localbuild-test/busybox:1",
        "true",
    ]);
    docker(&["volume", "create", "--label", label, &name]);
    docker(&["network", "create", "--label", label, &name]);

    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .arg("gc")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("removed container {name}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed volume {name}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed network {name}")),
        "{stdout}"
    );
    for kind in [["ps", "-aq"], ["volume", "ls"], ["network", "ls"]] {
        let left = docker(&[
            kind[0],
            kind[1],
            "-q",
            "--filter",
            &format!("label={label}"),
        ]);
        assert!(left.is_empty(), "{kind:?} left: {left}");
    }
    // A second run finds nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .arg("gc")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));
}
