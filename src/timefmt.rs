//! RFC 3339 timestamps in UTC with microseconds
//! (`2026-12-02T17:10:11.123456Z`), as log lines and audit records write
//! them: the date and time of day are formatted once per second per
//! thread, the microseconds each time.

use std::{
    cell::RefCell,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// `t`, appended to `out`.
pub fn rfc3339_micros(t: SystemTime, out: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            text.clear();
            // `...T17:10:11Z`, without its `Z`.
            let full = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
                .to_string();
            text.push_str(full.trim_end_matches('Z'));
        }
        out.push_str(text);
    });
    let mut micros = [b'0'; 6];
    let mut n = since.subsec_micros();
    for d in micros.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push('.');
    out.extend(micros.iter().map(|&d| char::from(d)));
    out.push('Z');
}

/// Now, as a new string.
pub fn now() -> String {
    let mut out = String::with_capacity(27);
    rfc3339_micros(SystemTime::now(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_humantime_writes_it() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_micros(1_764_695_411_000_007),
            SystemTime::now(),
        ] {
            let mut ours = String::new();
            rfc3339_micros(t, &mut ours);
            assert_eq!(ours, humantime::format_rfc3339_micros(t).to_string());
            // The cached second again, another microsecond.
            let later = t + Duration::from_nanos(1_000);
            let mut again = String::new();
            rfc3339_micros(later, &mut again);
            assert_eq!(again, humantime::format_rfc3339_micros(later).to_string());
        }
    }
}
