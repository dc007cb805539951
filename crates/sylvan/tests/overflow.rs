//! A green thread that overflows its stack aborts the process with a clear
//! message (checked in a child process).

mod util;

use std::os::unix::process::ExitStatusExt;

fn recurse(depth: u64) -> u64 {
    let buf = [depth as u8; 512];
    let r = if depth == u64::MAX {
        0
    } else {
        recurse(depth + 1)
    };
    std::hint::black_box(&buf);
    r + buf[(depth % 512) as usize] as u64
}

fn assert_aborted_with(out: &std::process::Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(stderr.contains(expect), "stderr:\n{stderr}");
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn overflow_aborts_with_name_and_size() {
    if util::is_child() {
        let g = sylvan::Builder::new()
            .name("deep")
            .stack_size(64 * 1024)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = g.join();
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child("overflow_aborts_with_name_and_size", &[]);
    assert_aborted_with(&out, "green thread 'deep' overflowed its stack (64 KiB)");
}

#[test]
fn overflow_on_a_recycled_trimmed_slot_is_still_caught() {
    // Guard markers must survive MADV_DONTNEED when idle slots are trimmed.
    if util::is_child() {
        let gs: Vec<_> = (0..8)
            .map(|_| {
                sylvan::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(|| recurse(u64::MAX - 50))
                    .unwrap()
            })
            .collect();
        for g in gs {
            g.join().unwrap();
        }
        assert!(sylvan::debug::trim_stacks(0) >= 8);
        let g = sylvan::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = g.join();
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child("overflow_on_a_recycled_trimmed_slot_is_still_caught", &[]);
    assert_aborted_with(
        &out,
        "green thread '<unnamed>' overflowed its stack (64 KiB)",
    );
}

#[test]
fn overflow_on_the_fallback_path_is_caught_too() {
    if util::is_child() {
        assert!(!sylvan::debug::stats().guard_install);
        let g = sylvan::Builder::new()
            .name("fallback")
            .stack_size(32 * 1024)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = g.join();
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child(
        "overflow_on_the_fallback_path_is_caught_too",
        &[("SYLVAN_STACK_FALLBACK", "1")],
    );
    assert_aborted_with(
        &out,
        "green thread 'fallback' overflowed its stack (32 KiB)",
    );
}

#[test]
fn faults_outside_green_guards_reach_the_previous_handler() {
    if util::is_child() {
        // Make sure sylvan's handler is installed, then overflow the stack of
        // the OS thread itself: that fault is not in a green guard page, so
        // sylvan hands it to the handler before it (Rust's own, which
        // reports the thread's overflow and aborts).
        sylvan::spawn(|| ()).join().unwrap();
        let n = recurse(0);
        println!("{n}");
        unreachable!();
    }
    let out = util::run_child(
        "faults_outside_green_guards_reach_the_previous_handler",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
    assert!(!stderr.contains("green thread"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "status {:?}",
        out.status
    );
}
