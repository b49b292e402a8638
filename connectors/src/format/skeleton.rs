//! A plain line's skeleton, for [`JsonShape`](super::JsonShape): the line
//! with the contents of the strings that are the shape's holes cut out and
//! each run of digits outside strings cut to one `0`. Keys, brackets,
//! separators, spaces and literals are kept byte for byte.
//!
//! Why an equal skeleton is a match: let the shape's line have integers for
//! numbers, and a plain line (no backslash, control character or byte at or
//! above `0x80`) whose numbers start with no needless zero have the shape's
//! skeleton. Quotes are never cut, so both
//! lines have the same strings in the same order; the key strings are kept
//! whole, so they are the shape's; a hole string is cut, and its contents are
//! plain bytes without quotes, so it is a well-formed string. Outside strings,
//! the shape's line has digits only in its numbers, so the line's runs of
//! digits stand where the shape's numbers stand, each a well-formed integer
//! followed by what followed the shape's (not a `.` or an exponent, which the
//! shape's number would have taken in); everything else is kept, so it is the
//! shape's fixed text. That is what [`JsonShape::fill`](super::JsonShape::fill)
//! checks one value at a time; a line whose skeleton differs (a negative
//! number where the shape has a positive one, say) is left to it.
//!
//! Cutting takes a few vector instructions per 64 bytes with AVX-512 VBMI2
//! (byte compression) and BMI2 (`pdep`, which picks the hole strings' quotes
//! out of a line's quotes); elsewhere there is no skeleton.

use super::line_marks::MAX;

/// The skeleton of a shape's line, and which of its quotes (by their order
/// in the line, at most 64) open and close hole strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Skeleton {
    /// Bit `i`: the `i`th quote opens or closes a hole string.
    holes: u64,
    /// The skeleton, then 64 bytes of padding (for whole-vector loads).
    bytes: Vec<u8>,
    len: usize,
}

impl Skeleton {
    /// The skeleton of `line`, whose quotes `holes` picks (see
    /// [`Skeleton`]); `None` without the instructions, if `line` is not
    /// plain (see the module's documentation), has more
    /// than 64 quotes, or has a number that starts with a needless zero.
    pub(super) fn of(line: &[u8], holes: u64) -> Option<Skeleton> {
        #[cfg(target_arch = "x86_64")]
        if has_instructions() {
            // SAFETY: the processor has the instructions `of_vbmi2` enables.
            let mut bytes = unsafe { of_vbmi2(line, holes) }?;
            let len = bytes.len();
            bytes.resize(len + 64, 0);
            return Some(Skeleton { holes, bytes, len });
        }
        let _ = (line, holes);
        None
    }

    /// Whether `line` is plain (at most [`MAX`] bytes, at most 64 quotes)
    /// and has this skeleton, so that it matches the shape (see the
    /// module's documentation).
    #[inline]
    pub(super) fn matches(&self, line: &[u8]) -> bool {
        // A skeleton is only made where the processor has the instructions.
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as `of` made `self`, the processor has the instructions.
        return unsafe { matches_vbmi2(self, line) };
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = line;
            false
        }
    }
}

/// Whether this processor has what [`cut_vbmi2`] uses.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_instructions() -> bool {
    std::is_x86_feature_detected!("avx512vbmi2")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("pclmulqdq")
        && std::is_x86_feature_detected!("popcnt")
}

/// [`Skeleton::of`]'s bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,avx512vbmi2,bmi2,pclmulqdq,popcnt")]
unsafe fn of_vbmi2(line: &[u8], holes: u64) -> Option<Vec<u8>> {
    use std::arch::x86_64::_mm512_storeu_si512;
    let mut bytes = Vec::with_capacity(line.len());
    let whole = cut_vbmi2(line, holes, |kept, n| {
        let mut word = [0u8; 64];
        // SAFETY: the store writes the 64 bytes of `word`.
        unsafe { _mm512_storeu_si512(word.as_mut_ptr().cast(), kept) };
        bytes.extend_from_slice(&word[..n as usize]);
        true
    });
    whole.then_some(bytes)
}

/// [`Skeleton::matches`]: each word's kept bytes compared as they are cut.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,avx512vbmi2,bmi2,pclmulqdq,popcnt")]
#[inline]
unsafe fn matches_vbmi2(skeleton: &Skeleton, line: &[u8]) -> bool {
    use std::arch::x86_64::{_mm512_loadu_si512, _mm512_mask_cmpeq_epi8_mask};
    let mut at = 0;
    let same = cut_vbmi2(line, skeleton.holes, |kept, n| {
        let n = n as usize;
        if at + n > skeleton.len {
            return false;
        }
        // SAFETY: `bytes` has 64 bytes of padding past `len >= at`.
        let want = unsafe { _mm512_loadu_si512(skeleton.bytes.as_ptr().add(at).cast()) };
        let need = match n {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        at += n;
        _mm512_mask_cmpeq_epi8_mask(need, kept, want) == need
    });
    same && at == skeleton.len
}

/// Cuts `line` word by word, handing `kept` each word's kept bytes (in the
/// low lanes of a vector) and their number: true if the line is plain, at
/// most [`MAX`] bytes long and with at most 64 quotes, its numbers start with
/// no needless zero, and `kept` takes every word. One pass: a word is
/// classified, its strings found (with what carries over from the word
/// before) and it is cut before the next is loaded.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,avx512vbmi2,bmi2,pclmulqdq,popcnt")]
#[inline]
unsafe fn cut_vbmi2(
    line: &[u8],
    holes: u64,
    mut kept: impl FnMut(std::arch::x86_64::__m512i, u32) -> bool,
) -> bool {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_cmplt_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
        _mm512_mask_blend_epi8, _mm512_mask_loadu_epi8, _mm512_maskz_compress_epi8,
        _mm512_set1_epi8, _mm512_sub_epi8, _pdep_u64,
    };
    if line.len() > MAX {
        return false;
    }
    let splat = |b: u8| _mm512_set1_epi8(b as i8);
    // Carried from word to word: quotes so far, whether inside a string and
    // a hole string (all ones or none), whether the last byte was a digit,
    // and whether it was a zero that began a number.
    let (mut ordinal, mut in_string, mut in_hole) = (0u32, 0u64, 0u64);
    let (mut digit_before, mut zero_began) = (0u64, 0u64);
    for at in (0..line.len()).step_by(64) {
        let (v, valid) = match line.len() - at {
            // SAFETY: the load reads 64 bytes of `line`.
            64.. => (
                unsafe { _mm512_loadu_si512(line.as_ptr().add(at).cast()) },
                !0,
            ),
            n => {
                let valid = (1u64 << n) - 1;
                // SAFETY: the masked load reads only the `n` bytes left;
                // the rest are spaces.
                let v = unsafe {
                    _mm512_mask_loadu_epi8(splat(b' '), valid, line.as_ptr().add(at).cast())
                };
                (v, valid)
            }
        };
        // Signed: bytes at or above 0x80 are negative, so below 0x20 too.
        let closer =
            _mm512_cmpeq_epi8_mask(v, splat(b'\\')) | _mm512_cmplt_epi8_mask(v, splat(0x20));
        if closer != 0 {
            return false;
        }
        let quotes = _mm512_cmpeq_epi8_mask(v, splat(b'"'));
        let count = quotes.count_ones();
        if ordinal + count > 64 {
            return false;
        }
        let hole_quotes = _pdep_u64(holes.checked_shr(ordinal).unwrap_or(0), quotes);
        ordinal += count;
        // Bit i of a prefix XOR: an odd number of quotes at or before byte
        // i; the carry says whether the word began inside a string.
        let inside = prefix_xor(quotes) ^ in_string;
        in_string = ((inside as i64) >> 63) as u64;
        let in_hole_string = prefix_xor(hole_quotes) ^ in_hole;
        in_hole = ((in_hole_string as i64) >> 63) as u64;
        let digits = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, splat(b'0')), splat(10));
        let d = digits & !inside & valid;
        let after_digit = d << 1 | digit_before;
        digit_before = d >> 63;
        // A number's first digit is a zero and a digit follows it.
        let zero_begins = _mm512_cmpeq_epi8_mask(v, splat(b'0')) & d & !after_digit;
        if d & (zero_begins << 1 | zero_began) != 0 {
            return false;
        }
        zero_began = zero_begins >> 63;
        let keep = valid & !(in_hole_string & !hole_quotes) & !(d & after_digit);
        let v = _mm512_mask_blend_epi8(d, v, splat(b'0'));
        if !kept(_mm512_maskz_compress_epi8(keep, v), keep.count_ones()) {
            return false;
        }
    }
    true
}

/// Bit `i`: the XOR of bits `0..=i` of `x` (a carry-less multiplication by
/// all ones).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn prefix_xor(x: u64) -> u64 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
    };
    _mm_cvtsi128_si64(_mm_clmulepi64_si128(
        _mm_set_epi64x(0, x as i64),
        _mm_set1_epi8(-1),
        0,
    )) as u64
}
