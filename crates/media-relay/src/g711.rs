//! ITU-T G.711 (11/88): µ-law and A-law, to and from 16-bit linear PCM.
//!
//! The decoders are 256-entry tables computed at compile time from the G.711 expansion
//! rules (Tables 1a/2a: segment and quantisation step → reconstructed value, scaled from
//! 14-bit (µ-law) or 13-bit (A-law) to 16-bit): µ-law reaches ±32124, A-law ±32256.
//! The encoders are the usual segment search (the algorithm of the Sun reference code).
//! `encode(decode(c)) == c` for every code except µ-law's negative zero 0x7F, which
//! comes back as 0xFF.

/// µ-law bias (G.711 Table 2a: 33 in 14-bit units, ×4 here).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law encodes, in 14-bit units (8159 + 33 = 8192 - 1).
const ULAW_CLIP: i32 = 8159;

const fn ulaw_decode(code: u8) -> i16 {
    // Codes are sent inverted (G.711 §3.2: "even bits inverted"… for µ-law, all bits).
    let u = !code;
    let mantissa = ((u & 0x0f) as i32) << 3;
    let segment = (u & 0x70) >> 4;
    let magnitude = ((mantissa + ULAW_BIAS) << segment) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode(code: u8) -> i16 {
    // Even bits are inverted on the line (G.711 §2.3: XOR 0x55).
    let a = code ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let segment = (a & 0x70) >> 4;
    t = match segment {
        0 => t + 8,
        _ => (t + 0x108) << (segment - 1),
    };
    // A-law's sign bit is 1 for positive values.
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Both decoder tables (a `const fn` cannot call through a function pointer).
const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw { alaw_decode(i as u8) } else { ulaw_decode(i as u8) };
        i += 1;
    }
    t
}

/// µ-law code → 16-bit linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = table(false);
/// A-law code → 16-bit linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = table(true);

/// Decodes one µ-law byte.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one A-law byte.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// The segment of `value` among the segment end points `ends`; 8 = beyond the last.
fn segment(value: i32, ends: &[i32; 8]) -> u8 {
    ends.iter().position(|&end| value <= end).map_or(8, |s| s as u8)
}

/// Encodes a 16-bit linear sample as µ-law (the low 2 bits are below µ-law's resolution).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
    let mut v = i32::from(sample) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7f
    } else {
        0xff
    };
    v = v.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(v, &ENDS);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let code = (seg << 4) | ((v >> (seg + 1)) & 0x0f) as u8;
    code ^ mask
}

/// Encodes a 16-bit linear sample as A-law (the low 3 bits are below A-law's resolution).
pub fn linear_to_alaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ENDS);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let step = if seg < 2 { (v >> 1) & 0x0f } else { (v >> seg) & 0x0f };
    ((seg << 4) | step as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // G.711 Table 2a, ×4 to 16 bits: code 0xFF/0x7F is zero, 0x80/0x00 the extremes
        // (±8031 in 14-bit units → ±32124).
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        // Segment 0 steps of 2 (14-bit): 0xFE = 2 → 8, 0xF0 = 30 → 120.
        assert_eq!(ulaw_to_linear(0xfe), 8);
        assert_eq!(ulaw_to_linear(0xf0), 120);
        // First step of segment 1: (33 << 1) - 33 = 33 (14-bit) → 132.
        assert_eq!(ulaw_to_linear(0xef), 132);
        assert_eq!(ulaw_to_linear(0x6f), -132);
        // Segment boundaries of Table 2a (14-bit decoder outputs 0, 33, 99, 231, 495,
        // 1023, 2079, 4191 at the first step of each segment, ×4).
        for (seg, want) in [0, 33, 99, 231, 495, 1023, 2079, 4191].into_iter().enumerate() {
            let code = !((seg as u8) << 4);
            assert_eq!(i32::from(ulaw_to_linear(code)), want * 4, "segment {seg}");
        }
    }

    #[test]
    fn alaw_known_values() {
        // G.711 Table 1a, ×8 to 16 bits: the smallest steps are ±1 (13-bit) → ±8.
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xd4), 24);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        // First step of each segment (13-bit decoder outputs 1, 33, 66, 132, 264, 528,
        // 1056, 2112; segments ≥ 1 are offset by half a step).
        for (seg, want) in [1, 33, 66, 132, 264, 528, 1056, 2112].into_iter().enumerate() {
            let code = ((seg as u8) << 4 | 0x80) ^ 0x55;
            assert_eq!(i32::from(alaw_to_linear(code)), want * 8, "segment {seg}");
        }
    }

    #[test]
    fn tables_are_odd_symmetric_and_monotonic() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_to_linear(c), -ulaw_to_linear(c ^ 0x80), "µ-law {c:#04x}");
            assert_eq!(alaw_to_linear(c), -alaw_to_linear(c ^ 0x80), "A-law {c:#04x}");
        }
        // Positive µ-law codes 0xFF down to 0x80 rise; A-law codes (de-inverted) rise.
        let ulaw: Vec<i16> = (0x80..=0xffu8).rev().map(ulaw_to_linear).collect();
        assert!(ulaw.windows(2).all(|w| w[0] < w[1]));
        let alaw: Vec<i16> = (0x80..=0xffu8).map(|c| alaw_to_linear(c ^ 0x55)).collect();
        assert!(alaw.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn encode_inverts_decode() {
        for c in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(c));
            assert_eq!(back, if c == 0x7f { 0xff } else { c }, "µ-law {c:#04x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
        }
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let v = i32::from(s);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            // Largest steps: µ-law 256 × 4 / 2 … 1024/2 in 16-bit; A-law 128 × 8 / 2.
            assert!((u - v).abs() <= 1024, "µ-law {s}: {u}");
            assert!((a - v).abs() <= 1024, "A-law {s}: {a}");
        }
    }
}
