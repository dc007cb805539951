//! `sylvan demo --duration 5s --json`: nothing lost, nothing duplicated,
//! every fault observed; bad flags are exit code 2.

use std::process::Command;

#[test]
fn short_demo_loses_nothing_and_sees_every_fault() {
    let dir = std::env::temp_dir().join(format!("sylvan-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let svg = dir.join("report.svg");
    let out = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
        .args(["demo", "--duration", "5s", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["duplicated"], 0, "{report:#}");
    assert!(report["succeeded"].as_u64().unwrap() > 100, "{report:#}");
    assert_eq!(
        report["sent"].as_u64().unwrap(),
        report["succeeded"].as_u64().unwrap() + report["failed"].as_u64().unwrap(),
        "every request either succeeded or failed with a clear error"
    );
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 4);
    for f in faults {
        assert_eq!(f["observed"], true, "fault not observed: {f:#}");
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("backend 2 blackholed"));
    assert!(stdout.contains("lost                0"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_are_exit_code_2() {
    for (args, expect) in [
        (vec!["demo", "--duration", "1s"], "at least 2s"),
        (vec!["demo", "--duration", "soon"], "not a duration"),
        (vec!["demo", "--clients", "0"], "--clients"),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expect),
            "{args:?}"
        );
    }
}
