//! Dates for the `Date` header (IMF-fixdate) and the access log (Common Log
//! Format), formatted at most once a second per OS thread.

use std::cell::RefCell;

/// `Sun, 06 Nov 1994 08:49:37 GMT`
pub(crate) const IMF_LEN: usize = 29;
/// `06/Nov/1994:08:49:37 +0000`
pub(crate) const CLF_LEN: usize = 26;
/// `Date: Sun, 06 Nov 1994 08:49:37 GMT` and CRLF
const FIELD_LEN: usize = IMF_LEN + 8;

struct Cache {
    /// The second the dates are for, in seconds since the Unix epoch
    /// (`u64::MAX` before the first use).
    secs: u64,
    /// The whole `Date` header field.
    field: [u8; FIELD_LEN],
    clf: [u8; CLF_LEN],
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { secs: u64::MAX, field: [0; FIELD_LEN], clf: [0; CLF_LEN] })
    };
}

/// Runs `f` with the dates of the current second, formatting them when the
/// second has changed. Within a second that is one read of the coarse
/// wall clock (the last timer tick's: at most a tick late, 1–10 ms by the
/// kernel's HZ, as nginx's per-loop cached time is, and a quarter of a
/// precise read's cost) and one comparison.
fn with_cache<R>(f: impl FnOnce(&Cache) -> R) -> R {
    let secs = crate::sys::time::realtime_coarse_secs();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        // (Also when the clock went back.)
        if c.secs != secs {
            c.secs = secs;
            c.field[..6].copy_from_slice(b"Date: ");
            c.field[6..6 + IMF_LEN].copy_from_slice(&imf_fixdate(secs));
            c.field[6 + IMF_LEN..].copy_from_slice(b"\r\n");
            c.clf = clf_date(secs);
        }
        f(&c)
    })
}

/// Runs `f` with the current `Date` header field, CRLF included (its value
/// an IMF-fixdate).
pub(crate) fn with_date_field<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    with_cache(|c| f(&c.field))
}

/// Runs `f` with the current date in Common Log Format.
pub(crate) fn with_clf_date<R>(f: impl FnOnce(&str) -> R) -> R {
    with_cache(|c| f(std::str::from_utf8(&c.clf).unwrap_or("-")))
}

const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

struct Civil {
    year: u64,
    month: usize, // 1..=12
    day: u64,
    weekday: usize, // 0 = Sunday
    hh: u64,
    mm: u64,
    ss: u64,
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01.
fn civil(secs: u64) -> Civil {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    Civil {
        year,
        month,
        day,
        weekday: ((days + 4) % 7) as usize,
        hh: rem / 3600,
        mm: rem % 3600 / 60,
        ss: rem % 60,
    }
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

fn four(out: &mut [u8], n: u64) {
    two(&mut out[..2], n / 100);
    two(&mut out[2..], n % 100);
}

pub(crate) fn imf_fixdate(secs: u64) -> [u8; IMF_LEN] {
    let c = civil(secs);
    let mut b = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    b[..3].copy_from_slice(DAYS[c.weekday]);
    two(&mut b[5..7], c.day);
    b[8..11].copy_from_slice(MONTHS[c.month - 1]);
    four(&mut b[12..16], c.year);
    two(&mut b[17..19], c.hh);
    two(&mut b[20..22], c.mm);
    two(&mut b[23..25], c.ss);
    b
}

pub(crate) fn clf_date(secs: u64) -> [u8; CLF_LEN] {
    let c = civil(secs);
    let mut b = *b"01/Jan/1970:00:00:00 +0000";
    two(&mut b[..2], c.day);
    b[3..6].copy_from_slice(MONTHS[c.month - 1]);
    four(&mut b[7..11], c.year);
    two(&mut b[12..14], c.hh);
    two(&mut b[15..17], c.mm);
    two(&mut b[18..20], c.ss);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &imf_fixdate(4_102_444_799),
            b"Thu, 31 Dec 2099 23:59:59 GMT"
        );
        assert_eq!(&clf_date(971_182_536), b"10/Oct/2000:12:55:36 +0000");
    }

    #[test]
    fn cached_date_is_well_formed() {
        with_date_field(|d| {
            assert_eq!(d.len(), FIELD_LEN);
            assert!(d.starts_with(b"Date: "));
            assert!(d.ends_with(b" GMT\r\n"));
        });
        with_clf_date(|d| assert!(d.ends_with("+0000")));
    }

    #[test]
    fn the_cached_date_is_the_wall_clock_second() {
        // The coarse clock lags a precise read by at most a tick, so the
        // date lies in the second before the first read or up to the
        // second of the last.
        let secs = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let before = secs();
        let field = with_date_field(<[u8]>::to_vec);
        let clf = with_clf_date(str::to_owned);
        let after = secs();
        let range = before.saturating_sub(1)..=after;
        assert!(
            range
                .clone()
                .any(|s| field[6..6 + IMF_LEN] == imf_fixdate(s)),
            "{:?} not in {range:?}",
            String::from_utf8_lossy(&field)
        );
        assert!(
            range.clone().any(|s| clf.as_bytes() == clf_date(s)),
            "{clf} not in {range:?}"
        );
    }
}
