//! Blocking detection: a green thread that runs too long without yielding is
//! reported with its name and last blocking point.

mod util;

use std::time::{Duration, Instant};

#[test]
fn long_running_green_thread_is_reported() {
    let logs = util::capture_logs();
    sylvan::debug::set_blocking_threshold(Some(Duration::from_millis(30)));
    let l = logs.clone();
    let g = sylvan::Builder::new()
        .name("hog")
        .spawn(move || {
            let line = line!() + 1;
            sylvan::sleep(Duration::from_millis(1)).unwrap();
            // Spin without yielding until the watchdog has spoken (bounded).
            let give_up = Instant::now() + Duration::from_secs(30);
            while !l.text().contains("without yielding") && Instant::now() < give_up {
                std::hint::spin_loop();
            }
            line
        })
        .unwrap();
    let line = g.join().unwrap();
    let text = logs.text();
    assert!(text.contains("without yielding"), "no warning in: {text}");
    assert!(text.contains("hog"), "{text}");
    assert!(text.contains(&format!("watchdog.rs:{line}")), "{text}");
    assert!(text.contains("WARN"), "{text}");
}
