//! Window assigners: which windows an event time belongs to.

use std::time::Duration;

use super::Window;
use crate::EventTime;

/// Assigns each event time to the windows that contain it.
pub trait WindowAssigner: Clone + 'static {
    /// Calls `out` once for each window containing `time`.
    fn assign(&self, time: EventTime, out: impl FnMut(Window));

    /// Whether a key's windows merge when they overlap (sessions).
    fn merging(&self) -> bool {
        false
    }
}

/// Session windows: a key's records closer than `gap` to each other form
/// one window `[first, last + gap)`; a record that bridges two sessions
/// merges them.
///
/// ```
/// use tidewater_operators::{SessionWindows, Window, WindowAssigner};
/// let mut windows = Vec::new();
/// SessionWindows::with_gap_millis(5_000).assign(12_000, |w| windows.push(w));
/// assert_eq!(windows, vec![Window { start: 12_000, end: 17_000 }]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SessionWindows {
    gap: u64,
}

impl SessionWindows {
    /// Sessions that close after `gap` without a record.
    pub fn with_gap(gap: Duration) -> Self {
        Self::with_gap_millis(gap.as_millis() as u64)
    }

    /// Sessions that close after `gap_ms` milliseconds without a record.
    ///
    /// # Panics
    /// If `gap_ms` is zero.
    pub fn with_gap_millis(gap_ms: u64) -> Self {
        assert!(gap_ms > 0, "session gap must be positive");
        SessionWindows { gap: gap_ms }
    }
}

impl WindowAssigner for SessionWindows {
    #[inline]
    fn assign(&self, time: EventTime, mut out: impl FnMut(Window)) {
        out(Window {
            start: time,
            end: time.saturating_add(self.gap),
        });
    }

    fn merging(&self) -> bool {
        true
    }
}

/// One window per key holding all of time: it fires only through a trigger
/// (count or processing time) and when the input ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The window every record belongs to.
    pub const WINDOW: Window = Window {
        start: 0,
        end: u64::MAX,
    };
}

impl WindowAssigner for GlobalWindows {
    fn assign(&self, _time: EventTime, mut out: impl FnMut(Window)) {
        out(Self::WINDOW);
    }
}

/// Fixed-size, non-overlapping windows aligned to the epoch plus an offset.
///
/// ```
/// use tidewater_operators::{TumblingWindows, Window, WindowAssigner};
/// let mut windows = Vec::new();
/// TumblingWindows::of_millis(10_000).assign(12_345, |w| windows.push(w));
/// assert_eq!(windows, vec![Window { start: 10_000, end: 20_000 }]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TumblingWindows {
    size: u64,
    offset: u64,
}

impl TumblingWindows {
    /// Windows of `size` aligned to the epoch.
    pub fn of(size: Duration) -> Self {
        Self::of_millis(size.as_millis() as u64)
    }

    /// Windows of `size_ms` milliseconds aligned to the epoch.
    ///
    /// # Panics
    /// If `size_ms` is zero.
    pub fn of_millis(size_ms: u64) -> Self {
        assert!(size_ms > 0, "window size must be positive");
        TumblingWindows {
            size: size_ms,
            offset: 0,
        }
    }

    /// Shifts the alignment by `offset_ms` (for example a time zone).
    pub fn with_offset(mut self, offset_ms: u64) -> Self {
        self.offset = offset_ms % self.size;
        self
    }

    /// The window size in ms.
    pub fn size_ms(&self) -> u64 {
        self.size
    }
}

impl WindowAssigner for TumblingWindows {
    #[inline]
    fn assign(&self, time: EventTime, mut out: impl FnMut(Window)) {
        let start = window_start(time, self.offset, self.size);
        out(Window {
            start: start.max(0) as u64,
            end: (start + self.size as i128) as u64,
        });
    }
}

/// Windows of `size` starting every `slide`; a record is in `size / slide` of them.
///
/// ```
/// use tidewater_operators::{SlidingWindows, WindowAssigner};
/// let mut ends = Vec::new();
/// SlidingWindows::of_millis(10_000, 2_000).assign(12_345, |w| ends.push(w.end));
/// ends.sort();
/// assert_eq!(ends, vec![14_000, 16_000, 18_000, 20_000, 22_000]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SlidingWindows {
    size: u64,
    slide: u64,
    offset: u64,
}

impl SlidingWindows {
    /// Windows of `size` every `slide`, aligned to the epoch.
    pub fn of(size: Duration, slide: Duration) -> Self {
        Self::of_millis(size.as_millis() as u64, slide.as_millis() as u64)
    }

    /// Windows of `size_ms` every `slide_ms` milliseconds.
    ///
    /// # Panics
    /// If either is zero.
    pub fn of_millis(size_ms: u64, slide_ms: u64) -> Self {
        assert!(
            size_ms > 0 && slide_ms > 0,
            "window size and slide must be positive"
        );
        SlidingWindows {
            size: size_ms,
            slide: slide_ms,
            offset: 0,
        }
    }

    /// Shifts the alignment by `offset_ms`.
    pub fn with_offset(mut self, offset_ms: u64) -> Self {
        self.offset = offset_ms % self.slide;
        self
    }
}

impl WindowAssigner for SlidingWindows {
    #[inline]
    fn assign(&self, time: EventTime, mut out: impl FnMut(Window)) {
        let mut start = window_start(time, self.offset, self.slide);
        let time = time as i128;
        while start > time - self.size as i128 {
            let end = start + self.size as i128;
            if end > 0 {
                out(Window {
                    start: start.max(0) as u64,
                    end: end as u64,
                });
            }
            start -= self.slide as i128;
        }
    }
}

/// The start of the window of length `size` (aligned to `offset`) holding `time`.
#[inline]
fn window_start(time: EventTime, offset: u64, size: u64) -> i128 {
    let (time, offset, size) = (time as i128, offset as i128, size as i128);
    time - (time - offset).rem_euclid(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Brute force: a window [s, s+size) with s = offset + k*slide holds t
        /// iff s <= t < s + size.
        #[test]
        fn sliding_matches_definition(t in 0u64..100_000, size in 1u64..5_000, slide in 1u64..5_000, offset in 0u64..5_000) {
            let assigner = SlidingWindows::of_millis(size, slide).with_offset(offset);
            let mut got = Vec::new();
            assigner.assign(t, |w| got.push(w.end));
            got.sort();
            let offset = (offset % slide) as i128;
            let mut want = Vec::new();
            let mut k = -(size as i128 / slide as i128) - 2;
            loop {
                let s = offset + k * slide as i128;
                if s > t as i128 { break; }
                if s <= t as i128 && (t as i128) < s + size as i128 && s + size as i128 > 0 {
                    want.push((s + size as i128) as u64);
                }
                k += 1;
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn tumbling_holds_its_time(t in 0u64..1_000_000, size in 1u64..50_000, offset in 0u64..50_000) {
            let mut got = Vec::new();
            TumblingWindows::of_millis(size).with_offset(offset).assign(t, |w| got.push(w));
            prop_assert_eq!(got.len(), 1);
            prop_assert!(got[0].start <= t && t < got[0].end);
            prop_assert_eq!((got[0].end as i128 - (offset % size) as i128).rem_euclid(size as i128), 0);
        }
    }
}
