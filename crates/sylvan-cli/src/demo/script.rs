//! The scripted fault sequence, as fractions of the run.

use std::time::Duration;

/// One fault, active from `start` to `end` (fractions of the run).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub name: &'static str,
    pub start: f64,
    pub end: f64,
}

/// The demo's faults, in order.
pub const FAULTS: [Fault; 4] = [
    Fault {
        name: "backend 1 killed",
        start: 0.15,
        end: 0.35,
    },
    Fault {
        name: "backend 2 blackholed",
        start: 0.45,
        end: 0.60,
    },
    Fault {
        name: "latency spike on backend 3",
        start: 0.65,
        end: 0.75,
    },
    Fault {
        name: "reset storm",
        start: 0.80,
        end: 0.90,
    },
];

impl Fault {
    pub fn start_at(&self, total: Duration) -> Duration {
        total.mul_f64(self.start)
    }
    pub fn end_at(&self, total: Duration) -> Duration {
        total.mul_f64(self.end)
    }
}
