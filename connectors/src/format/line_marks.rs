//! Classifying a short line's bytes many at a time, for
//! [`JsonShape`](super::JsonShape): [`LineMarks`] holds where the line's
//! quotes and its bytes other than digits are, one bit a byte, once it is
//! known that no byte needs a closer look (a backslash, a control
//! character, a byte of a multi-byte character). In such a line a string's
//! contents run to the next quote and a number's digits to the next byte
//! that is not one, each found by a bit search instead of a scan.

/// The longest line classified, in bytes.
pub(super) const MAX: usize = 1024;

const WORDS: usize = MAX / 64;

/// Where a line's quotes and non-digits are (see the module's documentation).
pub(super) struct LineMarks {
    /// Bit `i % 64` of word `i / 64`: byte `i` is a quote.
    quotes: [u64; WORDS],
    /// The same for bytes that are not ASCII digits; every position past
    /// the line's end is one.
    others: [u64; WORDS],
}

impl LineMarks {
    /// The marks of `line`, if it is at most [`MAX`] bytes and has no
    /// backslash, control character or byte at or above `0x80` (and the
    /// processor is an x86-64 one).
    #[inline(always)]
    pub(super) fn of(line: &[u8]) -> Option<LineMarks> {
        if line.len() > MAX {
            return None;
        }
        classify(line)
    }

    /// The first quote at or after `pos` (`usize::MAX` if none).
    #[inline(always)]
    pub(super) fn quote_at(&self, pos: usize) -> usize {
        next(&self.quotes, pos)
    }

    /// The first byte at or after `pos` that is not a digit (the line's
    /// length or more if the digits run to its end).
    #[inline(always)]
    pub(super) fn other(&self, pos: usize) -> usize {
        next(&self.others, pos)
    }
}

/// The first set bit at or after `pos` in `words` (`usize::MAX` if none).
#[inline(always)]
fn next(words: &[u64; WORDS], pos: usize) -> usize {
    let mut i = pos / 64;
    let Some(&first) = words.get(i) else {
        return usize::MAX;
    };
    let mut word = first & (!0u64 << (pos % 64));
    loop {
        if word != 0 {
            return i * 64 + word.trailing_zeros() as usize;
        }
        i += 1;
        match words.get(i) {
            Some(&w) => word = w,
            None => return usize::MAX,
        }
    }
}

/// The marks of one 64-byte block: its quotes, its bytes that are not
/// digits, its bytes to look at closer (backslashes, bytes below `0x20` or
/// at or above `0x80`).
#[cfg(target_arch = "x86_64")]
type BlockMarks = (u64, u64, u64);

/// Classifies `line` a 64-byte block at a time with the widest vectors the
/// processor has (AVX-512BW, AVX2, or SSE2, which every x86-64 processor
/// has), the last block padded with spaces: neither quotes nor digits nor
/// bytes to look at closer.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify(line: &[u8]) -> Option<LineMarks> {
    if std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the processor has AVX-512BW.
        unsafe { classify_avx512(line) }
    } else if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2.
        unsafe { classify_avx2(line) }
    } else {
        classify_with(line, |block| {
            // SAFETY: SSE2 is part of x86-64.
            unsafe { block_sse2(block) }
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
unsafe fn classify_avx512(line: &[u8]) -> Option<LineMarks> {
    classify_with(line, |block| {
        // SAFETY: this function runs only where the processor has AVX-512BW.
        unsafe { block_avx512(block) }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn classify_avx2(line: &[u8]) -> Option<LineMarks> {
    classify_with(line, |block| {
        // SAFETY: this function runs only where the processor has AVX2.
        unsafe { block_avx2(block) }
    })
}

/// The marks of `line`, block by block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify_with(line: &[u8], block: impl Fn(&[u8; 64]) -> BlockMarks) -> Option<LineMarks> {
    let mut marks = LineMarks {
        quotes: [0; WORDS],
        others: [!0; WORDS],
    };
    let mut closer = 0;
    let blocks = line.chunks_exact(64);
    let rest = blocks.remainder();
    let mut words = marks.quotes.iter_mut().zip(marks.others.iter_mut());
    for (bytes, (quotes, others)) in blocks.zip(&mut words) {
        let (q, o, c) = block(bytes.try_into().expect("64 bytes"));
        (*quotes, *others, closer) = (q, o, closer | c);
    }
    if !rest.is_empty() {
        let (q, o, c) = match line.len().checked_sub(64) {
            // The line's last 64 bytes, of which the rest is the last
            // `rest.len()`: their marks shifted down, the bits past the end
            // as for spaces (copying the rest into a padded block stalled
            // the block's loads on the copy's stores).
            Some(start) => {
                let (q, o, c) = block(line[start..].try_into().expect("64 bytes"));
                let shift = 64 - rest.len();
                (q >> shift, o >> shift | !0 << rest.len(), c >> shift)
            }
            None => {
                let mut tail = [b' '; 64];
                tail[..rest.len()].copy_from_slice(rest);
                block(&tail)
            }
        };
        if let Some((quotes, others)) = words.next() {
            (*quotes, *others, closer) = (q, o, closer | c);
        }
    }
    (closer == 0).then_some(marks)
}

/// A block with AVX-512BW: one vector, each comparison a mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
#[inline]
unsafe fn block_avx512(block: &[u8; 64]) -> BlockMarks {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_cmplt_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
        _mm512_set1_epi8, _mm512_sub_epi8,
    };
    // SAFETY: the unaligned load reads the 64 bytes of `block`.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    let quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8));
    let backslash = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8));
    // Signed: bytes at or above 0x80 are negative, so below 0x20 too.
    let low = _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8(0x20));
    let digit = _mm512_cmplt_epu8_mask(
        _mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8)),
        _mm512_set1_epi8(10),
    );
    (quote, !digit, backslash | low)
}

/// A block with AVX2: two vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block_avx2(block: &[u8; 64]) -> BlockMarks {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let half = |at: usize| {
        // SAFETY: the unaligned load reads 32 of the 64 bytes of `block`.
        let v = unsafe { _mm256_loadu_si256(block[at..at + 32].as_ptr().cast::<__m256i>()) };
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
        let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        // Signed: bytes at or above 0x80 are negative, so below 0x20 too.
        let low = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
        let digit = _mm256_and_si256(
            _mm256_cmpgt_epi8(v, _mm256_set1_epi8(b'0' as i8 - 1)),
            _mm256_cmpgt_epi8(_mm256_set1_epi8(b'9' as i8 + 1), v),
        );
        let mask = |m| _mm256_movemask_epi8(m) as u32 as u64;
        (
            mask(quote),
            !mask(digit) & 0xffff_ffff,
            mask(_mm256_or_si256(backslash, low)),
        )
    };
    let ((q0, o0, c0), (q1, o1, c1)) = (half(0), half(32));
    (q0 | q1 << 32, o0 | o1 << 32, c0 | c1 << 32)
}

/// A block with SSE2: four vectors.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block_sse2(block: &[u8; 64]) -> BlockMarks {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut quotes, mut others, mut closer) = (0, 0, 0);
    for (i, bytes) in block.chunks_exact(16).enumerate() {
        // SAFETY: the unaligned load reads 16 of the 64 bytes of `block`.
        let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) };
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Signed: bytes at or above 0x80 are negative, so below 0x20 too.
        let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let digit = _mm_and_si128(
            _mm_cmpgt_epi8(v, _mm_set1_epi8(b'0' as i8 - 1)),
            _mm_cmplt_epi8(v, _mm_set1_epi8(b'9' as i8 + 1)),
        );
        let mask = |m| _mm_movemask_epi8(m) as u32 as u64;
        quotes |= mask(quote) << (16 * i);
        others |= (!mask(digit) & 0xffff) << (16 * i);
        closer |= mask(_mm_or_si128(backslash, low)) << (16 * i);
    }
    (quotes, others, closer)
}

/// Elsewhere no line is classified, and shapes match value by value.
#[cfg(not(target_arch = "x86_64"))]
fn classify(_line: &[u8]) -> Option<LineMarks> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[cfg(target_arch = "x86_64")]
    proptest! {
        /// The wider blocks mark what SSE2 marks, where the processor has them.
        #[test]
        fn every_width_marks_alike(bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'"'), 0x30..0x3au8, 0x20..0x7fu8], 64)) {
            let block: &[u8; 64] = bytes.as_slice().try_into().unwrap();
            // SAFETY: each function is called only where the processor has its instructions.
            let sse2 = unsafe { block_sse2(block) };
            let want = |f: fn(u8) -> bool| (0..64).filter(|&i| f(block[i])).fold(0u64, |m, i| m | 1 << i);
            prop_assert_eq!(sse2, (want(|b| b == b'"'), want(|b| !b.is_ascii_digit()), want(|b| b == b'\\' || !(0x20..0x80).contains(&b))));
            if std::is_x86_feature_detected!("avx2") {
                prop_assert_eq!(unsafe { block_avx2(block) }, sse2);
            }
            if std::is_x86_feature_detected!("avx512bw") {
                prop_assert_eq!(unsafe { block_avx512(block) }, sse2);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn marks_are_the_quotes_and_non_digits() {
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 100, 127, 128, 129, 300, MAX] {
            let line: Vec<u8> = (0..len).map(|i| b"ab\"0123 9x"[i % 10]).collect();
            let marks = LineMarks::of(&line).expect("plain");
            for pos in 0..len + 2 {
                let quote = (pos..len).find(|&i| line[i] == b'"');
                let other = (pos..len).find(|&i| !line[i].is_ascii_digit());
                assert_eq!(
                    marks.quote_at(pos),
                    quote.unwrap_or(usize::MAX),
                    "{len} {pos}"
                );
                let got = marks.other(pos);
                match other {
                    Some(at) => assert_eq!(got, at, "{len} {pos}"),
                    None => assert!(got >= len, "{len} {pos}"),
                }
            }
        }
        assert!(LineMarks::of(&[b'a'; MAX + 1]).is_none());
        for odd in [b'\\', 0, 0x1f, 0x80, 0xc3, 0xff] {
            for at in [0, 15, 16, 40, 250, 256, 299] {
                let mut line = vec![b'a'; 300];
                line[at] = odd;
                assert!(LineMarks::of(&line).is_none(), "{odd} at {at}");
            }
        }
    }
}
