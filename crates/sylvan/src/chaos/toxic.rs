//! What a chaos proxy can do to a connection: [`Toxic`], the [`Direction`]
//! it acts on, and [`ToxicInfo`], a toxic as installed on a proxy.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::ChaosError;

/// Which way through the proxy a toxic acts, in Toxiproxy's words.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::Direction;
///
/// let d: Direction = "downstream".parse().unwrap();
/// assert_eq!(d, Direction::Downstream);
/// assert_eq!(d.opposite(), Direction::Upstream);
/// assert_eq!(Direction::Upstream.to_string(), "upstream");
/// assert!("sideways".parse::<Direction>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: bytes the proxy reads from the client and writes
    /// to the upstream server.
    Upstream,
    /// Server to client: bytes the proxy reads from the upstream server and
    /// writes to the client.
    Downstream,
}

impl Direction {
    /// `"upstream"` or `"downstream"` (Toxiproxy's `stream` field).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::chaos::Direction::Downstream.as_str(), "downstream");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }

    /// The other direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::Direction;
    ///
    /// assert_eq!(Direction::Upstream.opposite(), Direction::Downstream);
    /// ```
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Upstream => Direction::Downstream,
            Direction::Downstream => Direction::Upstream,
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Direction::Upstream => 0,
            Direction::Downstream => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = ChaosError;

    fn from_str(s: &str) -> Result<Direction, ChaosError> {
        match s {
            "upstream" => Ok(Direction::Upstream),
            "downstream" => Ok(Direction::Downstream),
            _ => Err(ChaosError::UnknownDirection(s.to_owned())),
        }
    }
}

/// A fault a [`ChaosProxy`](super::ChaosProxy) applies to the bytes of
/// one direction of a connection; Toxiproxy's toxics, plus [`HalfOpen`].
///
/// Toxics of one direction form a chain in the order they were added;
/// each byte goes through them in turn, as in Toxiproxy. Times are
/// measured on sylvan's clock (so they follow virtual time, see
/// [`time::pause`](crate::time::pause)); delays never come out shorter than
/// asked. Bytes already read by the proxy keep the schedule they were
/// given; a change of toxics applies to bytes read after it.
///
/// For the HTTP API and command line, a toxic can also be read and built by
/// name: [`type_name`](Self::type_name), [`attributes`](Self::attributes),
/// [`set_attribute`](Self::set_attribute) and
/// [`from_attributes`](Self::from_attributes) use Toxiproxy's type names,
/// attribute names and units (milliseconds; the slicer's `delay` in
/// microseconds; the bandwidth `rate` in KB/s).
///
/// [`HalfOpen`]: Toxic::HalfOpen
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::chaos::Toxic;
///
/// let lag = Toxic::Latency { latency: Duration::from_millis(100), jitter: Duration::ZERO };
/// assert_eq!(lag.type_name(), "latency");
/// assert_eq!(lag.attribute("latency"), Some(100));
///
/// let same = Toxic::from_attributes("latency", [("latency", 100)]).unwrap();
/// assert_eq!(same, lag);
///
/// let bad = Toxic::Bandwidth { rate_kb_per_s: 0 };
/// assert!(bad.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Toxic {
    /// Delays each chunk of data by `latency` ± `jitter` (uniformly drawn,
    /// never below zero), measured from when the proxy read it; chunks keep
    /// their order. Toxiproxy's `latency` (attributes `latency`, `jitter`
    /// in ms). The end of the stream is not delayed beyond the last chunk.
    Latency {
        /// The delay added to each chunk.
        latency: Duration,
        /// The most a chunk's delay differs from `latency`, either way.
        jitter: Duration,
    },
    /// Passes data at no more than `rate_kb_per_s` kilobytes (1000 bytes)
    /// per second; large chunks go out in pieces of 100 ms worth.
    /// Toxiproxy's `bandwidth` (attribute `rate`). Must be at least 1.
    Bandwidth {
        /// The rate, in KB/s.
        rate_kb_per_s: u64,
    },
    /// Delays the end of the stream (the FIN, or a close) by `delay`.
    /// Toxiproxy's `slow_close` (attribute `delay`, ms).
    SlowClose {
        /// How long the close is held back.
        delay: Duration,
    },
    /// Blackhole: drops all data (and the end of the stream); `timeout`
    /// after the toxic took effect, closes the connection, or, if `timeout`
    /// is zero, holds it open until the toxic is removed. Removing it closes
    /// the connections it was active on, whose byte streams now have holes
    /// (Toxiproxy does the same). Toxiproxy's `timeout` (attribute
    /// `timeout`, ms).
    Timeout {
        /// When the connection is closed (zero: never).
        timeout: Duration,
    },
    /// Resets the connection: the first data (or end of stream) to arrive
    /// arms it; that and everything after it is dropped, and `timeout` later
    /// both sockets are closed with `SO_LINGER` 0, so both peers get a TCP
    /// RST (`ConnectionReset`). Toxiproxy's `reset_peer` (attribute
    /// `timeout`, ms).
    ResetPeer {
        /// The delay between the first data and the reset.
        timeout: Duration,
    },
    /// Cuts each chunk into slices of about `average_size` ± `size_variation`
    /// bytes, sent `delay` apart, so the reader sees many short reads.
    /// Toxiproxy's `slicer` (attributes `average_size`, `size_variation`,
    /// and `delay` in µs). `average_size` must be at least 1 and
    /// `size_variation` smaller than it.
    Slicer {
        /// The mean slice size in bytes.
        average_size: usize,
        /// How far a slice's size may be from the mean.
        size_variation: usize,
        /// The pause after each slice.
        delay: Duration,
    },
    /// Passes the first `bytes` bytes of this direction, then closes the
    /// connection. Counted per connection from when the toxic took effect.
    /// Toxiproxy's `limit_data` (attribute `bytes`).
    LimitData {
        /// How many bytes get through.
        bytes: u64,
    },
    /// A half-open connection, which TCP never reports: this direction
    /// silently stops (data and the end of the stream are dropped, and no
    /// error from its destination gets back), while the connection stays
    /// open and the other direction keeps working. Not in Toxiproxy (type
    /// name `half_open`, no attributes). Removing it closes the connections
    /// it was active on, as for [`Timeout`](Self::Timeout).
    HalfOpen,
}

impl Toxic {
    /// Every type name [`from_attributes`](Self::from_attributes) knows.
    pub const TYPES: [&'static str; 8] = [
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "half_open",
    ];

    /// The toxic's Toxiproxy type name (`"latency"`, `"limit_data"`, …).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::chaos::Toxic::LimitData { bytes: 5 }.type_name(), "limit_data");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            Toxic::Latency { .. } => "latency",
            Toxic::Bandwidth { .. } => "bandwidth",
            Toxic::SlowClose { .. } => "slow_close",
            Toxic::Timeout { .. } => "timeout",
            Toxic::ResetPeer { .. } => "reset_peer",
            Toxic::Slicer { .. } => "slicer",
            Toxic::LimitData { .. } => "limit_data",
            Toxic::HalfOpen => "half_open",
        }
    }

    /// The attributes, by Toxiproxy name and in Toxiproxy units
    /// (durations in whole milliseconds, the slicer's `delay` in whole
    /// microseconds, truncated).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::Toxic;
    ///
    /// let t = Toxic::Slicer { average_size: 64, size_variation: 8, delay: Duration::from_micros(500) };
    /// assert_eq!(
    ///     t.attributes(),
    ///     vec![("average_size", 64), ("size_variation", 8), ("delay", 500)]
    /// );
    /// ```
    pub fn attributes(&self) -> Vec<(&'static str, i64)> {
        fn ms(d: &Duration) -> i64 {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        }
        fn n(v: u64) -> i64 {
            i64::try_from(v).unwrap_or(i64::MAX)
        }
        match self {
            Toxic::Latency { latency, jitter } => {
                vec![("latency", ms(latency)), ("jitter", ms(jitter))]
            }
            Toxic::Bandwidth { rate_kb_per_s } => vec![("rate", n(*rate_kb_per_s))],
            Toxic::SlowClose { delay } => vec![("delay", ms(delay))],
            Toxic::Timeout { timeout } | Toxic::ResetPeer { timeout } => {
                vec![("timeout", ms(timeout))]
            }
            Toxic::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", n(*average_size as u64)),
                ("size_variation", n(*size_variation as u64)),
                (
                    "delay",
                    i64::try_from(delay.as_micros()).unwrap_or(i64::MAX),
                ),
            ],
            Toxic::LimitData { bytes } => vec![("bytes", n(*bytes))],
            Toxic::HalfOpen => Vec::new(),
        }
    }

    /// One attribute by Toxiproxy name, as [`attributes`](Self::attributes)
    /// gives it; `None` if the type has no such attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = sylvan::chaos::Toxic::Bandwidth { rate_kb_per_s: 64 };
    /// assert_eq!(t.attribute("rate"), Some(64));
    /// assert_eq!(t.attribute("latency"), None);
    /// ```
    pub fn attribute(&self, name: &str) -> Option<i64> {
        self.attributes()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Sets one attribute by Toxiproxy name and unit. Only the value's
    /// range is checked here; [`validate`](Self::validate) checks the
    /// attributes together (the proxy does so when the toxic is installed).
    ///
    /// # Errors
    ///
    /// [`ChaosError::UnknownAttribute`] for a name the type does not have;
    /// [`ChaosError::InvalidAttribute`] for a negative value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::Toxic;
    ///
    /// let mut t = Toxic::Latency { latency: Duration::ZERO, jitter: Duration::ZERO };
    /// t.set_attribute("latency", 250).unwrap();
    /// assert_eq!(t, Toxic::Latency { latency: Duration::from_millis(250), jitter: Duration::ZERO });
    /// assert!(t.set_attribute("jitter", -1).is_err());
    /// assert!(t.set_attribute("rate", 1).is_err());
    /// ```
    pub fn set_attribute(&mut self, name: &str, value: i64) -> Result<(), ChaosError> {
        let toxic = self.type_name();
        let unknown = || ChaosError::UnknownAttribute {
            toxic,
            attribute: name.to_owned(),
        };
        let attribute: &'static str = self
            .attributes()
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| *n == name)
            .ok_or_else(unknown)?;
        let v = u64::try_from(value).map_err(|_| ChaosError::InvalidAttribute {
            toxic,
            attribute,
            reason: format!("{value} is negative"),
        })?;
        let ms = Duration::from_millis(v);
        match (self, attribute) {
            (Toxic::Latency { latency, .. }, "latency") => *latency = ms,
            (Toxic::Latency { jitter, .. }, "jitter") => *jitter = ms,
            (Toxic::Bandwidth { rate_kb_per_s }, _) => *rate_kb_per_s = v,
            (Toxic::SlowClose { delay }, _) => *delay = ms,
            (Toxic::Timeout { timeout } | Toxic::ResetPeer { timeout }, _) => *timeout = ms,
            (Toxic::Slicer { average_size, .. }, "average_size") => *average_size = size(v),
            (Toxic::Slicer { size_variation, .. }, "size_variation") => *size_variation = size(v),
            (Toxic::Slicer { delay, .. }, _) => *delay = Duration::from_micros(v),
            (Toxic::LimitData { bytes }, _) => *bytes = v,
            _ => return Err(unknown()),
        }
        Ok(())
    }

    /// Builds a toxic from its Toxiproxy type name and attributes, as the
    /// HTTP API receives them. Attributes not given are zero (as in
    /// Toxiproxy); the result is [validated](Self::validate).
    ///
    /// # Errors
    ///
    /// [`ChaosError::UnknownToxicType`], or what
    /// [`set_attribute`](Self::set_attribute) and
    /// [`validate`](Self::validate) return.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::{ChaosError, Toxic};
    ///
    /// let t = Toxic::from_attributes("timeout", [("timeout", 1500)]).unwrap();
    /// assert_eq!(t, Toxic::Timeout { timeout: Duration::from_millis(1500) });
    ///
    /// let err = Toxic::from_attributes("bandwidth", []).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid bandwidth attribute \"rate\": must be at least 1 KB/s");
    /// assert!(matches!(Toxic::from_attributes("lag", []), Err(ChaosError::UnknownToxicType(_))));
    /// ```
    pub fn from_attributes<'a>(
        type_name: &str,
        attributes: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<Toxic, ChaosError> {
        let z = Duration::ZERO;
        let mut t = match type_name {
            "latency" => Toxic::Latency {
                latency: z,
                jitter: z,
            },
            "bandwidth" => Toxic::Bandwidth { rate_kb_per_s: 0 },
            "slow_close" => Toxic::SlowClose { delay: z },
            "timeout" => Toxic::Timeout { timeout: z },
            "reset_peer" => Toxic::ResetPeer { timeout: z },
            "slicer" => Toxic::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: z,
            },
            "limit_data" => Toxic::LimitData { bytes: 0 },
            "half_open" => Toxic::HalfOpen,
            other => return Err(ChaosError::UnknownToxicType(other.to_owned())),
        };
        for (name, value) in attributes {
            t.set_attribute(name, value)?;
        }
        t.validate()?;
        Ok(t)
    }

    /// Checks that the proxy can apply this toxic: a bandwidth `rate` of
    /// at least 1, a slicer `average_size` of at least 1 and a
    /// `size_variation` below it. Durations and byte counts may be zero.
    ///
    /// # Errors
    ///
    /// [`ChaosError::InvalidAttribute`] naming the attribute and why.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::Toxic;
    ///
    /// let t = Toxic::Slicer { average_size: 10, size_variation: 10, delay: Duration::ZERO };
    /// assert_eq!(
    ///     t.validate().unwrap_err().to_string(),
    ///     "invalid slicer attribute \"size_variation\": must be less than average_size (10)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ChaosError> {
        let bad = |attribute, reason: String| ChaosError::InvalidAttribute {
            toxic: self.type_name(),
            attribute,
            reason,
        };
        match *self {
            Toxic::Bandwidth { rate_kb_per_s: 0 } => {
                Err(bad("rate", "must be at least 1 KB/s".to_owned()))
            }
            Toxic::Slicer {
                average_size: 0, ..
            } => Err(bad("average_size", "must be at least 1 byte".to_owned())),
            Toxic::Slicer {
                average_size,
                size_variation,
                ..
            } if size_variation >= average_size => Err(bad(
                "size_variation",
                format!("must be less than average_size ({average_size})"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the toxic drops data, so the connection cannot carry on
    /// correctly once it is removed.
    pub(super) fn silences(&self) -> bool {
        matches!(self, Toxic::Timeout { .. } | Toxic::HalfOpen)
    }
}

fn size(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A toxic as installed on a proxy: its name, what it does, which way, and
/// how likely it is to apply to a connection.
///
/// `toxicity` is the probability that the toxic applies to a given
/// connection, drawn for each connection when the connection opens or when
/// the toxic is added (and again when its toxicity changes); 1 means every
/// connection.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
///
/// let proxy = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
/// proxy.add_toxic("cut", Toxic::LimitData { bytes: 10 }, Direction::Downstream, 0.5).unwrap();
/// let info = proxy.toxic("cut").unwrap();
/// assert_eq!((info.name.as_str(), info.direction, info.toxicity), ("cut", Direction::Downstream, 0.5));
/// assert_eq!(info.toxic, Toxic::LimitData { bytes: 10 });
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToxicInfo {
    /// The toxic's name, unique on its proxy.
    pub name: String,
    /// What it does.
    pub toxic: Toxic,
    /// Which way it acts.
    pub direction: Direction,
    /// The probability, in `[0, 1]`, that it applies to a connection.
    pub toxicity: f32,
}

pub(super) fn check_toxicity(toxicity: f32) -> Result<(), ChaosError> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(())
    } else {
        Err(ChaosError::InvalidToxicity(toxicity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_for_every_type() {
        for ty in Toxic::TYPES {
            let mut t = Toxic::from_attributes(ty, [])
                .or_else(|_| Toxic::from_attributes(ty, [("rate", 1)]))
                .or_else(|_| {
                    Toxic::from_attributes(ty, [("average_size", 4), ("size_variation", 1)])
                })
                .unwrap();
            assert_eq!(t.type_name(), ty);
            for (name, _) in t.attributes() {
                let v = if name == "size_variation" { 3 } else { 7 };
                t.set_attribute(name, v).unwrap();
                assert_eq!(t.attribute(name), Some(v));
            }
            let again = Toxic::from_attributes(ty, t.attributes()).unwrap();
            assert_eq!(again, t);
        }
    }

    #[test]
    fn toxicity_must_be_a_probability() {
        for ok in [0.0, 0.25, 1.0] {
            assert!(check_toxicity(ok).is_ok());
        }
        for bad in [-0.0001, 1.0001, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(check_toxicity(bad).is_err(), "{bad}");
        }
    }
}
