//! Calendar fields of an event time (UTC), as the Nexmark queries use them.

/// `yyyy-MM-dd` of `ms` since the epoch (proleptic Gregorian, UTC).
pub fn day(ms: u64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The hour of the day (0-23, UTC) of `ms` since the epoch.
pub fn hour(ms: u64) -> u64 {
    ms / 3_600_000 % 24
}

#[cfg(test)]
mod tests {
    #[test]
    fn days() {
        assert_eq!(super::day(0), "1970-01-01");
        assert_eq!(super::day(1_767_225_600_000), "2026-01-01");
        assert_eq!(super::day(951_782_400_000), "2000-02-29");
        assert_eq!(super::hour(1_767_225_600_000 + 19 * 3_600_000 + 1), 19);
    }
}
