//! Active health checks: a TCP connect to each upstream every interval,
//! with HAProxy's rise/fall hysteresis.
//!
//! One green thread per upstream, so a slow (timing-out) upstream never
//! delays the checks of the others. The verdict goes into the upstream's
//! shared `healthy` flag, which every hub reads. [`Checks`] keeps one
//! check per upstream of a set that may change (discovery).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use sylvan::GreenThread;
use sylvan::net::Connector;

use super::upstream::Upstream;

/// Health-check settings (`--health-interval`, `--health-timeout`,
/// `--rise`, `--fall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between two checks of one upstream (default 2 s, HAProxy's
    /// `inter`).
    pub interval: Duration,
    /// How long one check's connect may take (default: the interval, at
    /// most the connect timeout).
    pub timeout: Duration,
    /// Consecutive successes that bring a down upstream up (default 2).
    pub rise: u32,
    /// Consecutive failures that take an up upstream down (default 3).
    pub fall: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
        }
    }
}

/// The rise/fall state machine of one upstream.
///
/// An upstream starts up, as in HAProxy, but the very first check decides
/// alone: an upstream that is down when the proxy starts is taken out at
/// once instead of after `fall` failed checks. After that, `fall`
/// consecutive failures take it down and `rise` consecutive successes bring
/// it back.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    up: bool,
    streak: u32,
    first: bool,
}

impl Hysteresis {
    /// Starts up, before the first check.
    pub fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
            first: true,
        }
    }

    /// Takes one check's result; returns the new state if it changed.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        let first = std::mem::replace(&mut self.first, false);
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak >= needed || (first && !ok) {
            self.up = ok;
            self.streak = 0;
            Some(ok)
        } else {
            None
        }
    }
}

/// The health checks of a changing upstream set, on the current hub.
#[derive(Debug)]
pub struct Checks {
    cfg: HealthConfig,
    running: RefCell<Vec<(Arc<Upstream>, GreenThread<()>)>>,
}

impl Checks {
    /// No checks yet; [`sync`](Self::sync) starts them.
    pub fn new(cfg: HealthConfig) -> Checks {
        Checks {
            cfg,
            running: RefCell::new(Vec::new()),
        }
    }

    /// Makes the checks follow `set`: starts one for each upstream not yet
    /// checked, stops those of upstreams no longer in `set`.
    ///
    /// # Errors
    ///
    /// If a green thread cannot be started (the others are kept).
    pub fn sync(&self, set: &[Arc<Upstream>]) -> std::io::Result<()> {
        let mut running = self.running.borrow_mut();
        running.retain(|(up, t)| {
            let keep = set.iter().any(|u| Arc::ptr_eq(u, up));
            if !keep {
                t.kill();
            }
            keep
        });
        for up in set {
            if !running.iter().any(|(u, _)| Arc::ptr_eq(u, up)) {
                running.push((up.clone(), spawn(up.clone(), self.cfg)?));
            }
        }
        Ok(())
    }

    /// Stops every check.
    pub fn stop(&self) {
        for (_, t) in self.running.borrow_mut().drain(..) {
            t.kill();
        }
    }
}

/// Starts checking `up` in a green thread of this hub; kill it to stop.
pub fn spawn(up: Arc<Upstream>, cfg: HealthConfig) -> std::io::Result<GreenThread<()>> {
    sylvan::Builder::new()
        .name(format!("health {}", up.addr))
        .spawn(move || check_loop(&up, cfg))
}

/// Checks `up` every interval until killed.
fn check_loop(up: &Upstream, cfg: HealthConfig) {
    let connector = Connector::new().connect_timeout(cfg.timeout);
    let mut state = Hysteresis::new(cfg.rise, cfg.fall);
    loop {
        let result = connector.connect(up.addr.as_str());
        if let Err(e) = &result
            && sylvan::Cancelled::from_io(e).is_some()
        {
            return; // killed: the proxy is stopping
        }
        let ok = result.is_ok();
        drop(result);
        if ok {
            up.checks_ok.fetch_add(1, Relaxed);
        } else {
            up.checks_failed.fetch_add(1, Relaxed);
        }
        match state.observe(ok) {
            Some(true) => {
                tracing::warn!(upstream = %up.addr, "health check: upstream is up");
                up.healthy.store(true, Relaxed);
            }
            Some(false) => {
                tracing::warn!(upstream = %up.addr, "health check: upstream is down");
                up.healthy.store(false, Relaxed);
            }
            None => {}
        }
        if sylvan::sleep(cfg.interval).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Hysteresis;

    #[test]
    fn first_failure_takes_it_down_at_once() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
    }

    #[test]
    fn fall_and_rise_need_consecutive_results() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None); // streak broken
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None); // streak broken
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
    }
}
