//! The WAV container the relay records into: RIFF (`WAVE`), one `fmt ` chunk of
//! 16-bit little-endian linear PCM (format tag 1, 16 bytes) and one `data` chunk —
//! the canonical 44-byte header every player and `sox` reads.
//!
//! ```text
//! offset  size  field
//!      0     4  "RIFF"
//!      4     4  36 + data bytes            (patched when the recording stops)
//!      8     4  "WAVE"
//!     12     4  "fmt "
//!     16     4  16
//!     20     2  1 (PCM)
//!     22     2  channels
//!     24     4  sample rate
//!     28     4  byte rate = rate × channels × 2
//!     32     2  block align = channels × 2
//!     34     2  16 (bits per sample)
//!     36     4  "data"
//!     40     4  data bytes                 (patched when the recording stops)
//!     44        samples
//! ```
//!
//! A recording is started with [`header`] of [`UNKNOWN_SIZE`] (the convention of
//! streaming writers for "up to the end of the file", which `sox` and `ffmpeg` honour
//! when a process dies before the sizes are patched) and the two sizes are overwritten
//! at [`RIFF_SIZE_OFFSET`] and [`DATA_SIZE_OFFSET`] when it stops.

/// Bytes before the first sample.
pub const HEADER_LEN: usize = 44;
/// Where the RIFF chunk size (36 + data bytes) is.
pub const RIFF_SIZE_OFFSET: u64 = 4;
/// Where the `data` chunk size is.
pub const DATA_SIZE_OFFSET: u64 = 40;
/// The placeholder data size of a recording in progress.
pub const UNKNOWN_SIZE: u32 = u32::MAX;
/// The most sample bytes a WAV file can hold: the RIFF size (36 + data) must fit in 32
/// bits. An even number, so no sample is cut in half (about 74 hours of 8 kHz mono).
pub const MAX_DATA_BYTES: u32 = (u32::MAX - 36) & !1;

/// The 44-byte header of a 16-bit PCM WAV file with `data_bytes` of samples
/// ([`UNKNOWN_SIZE`] for a recording in progress: both sizes are then that value).
pub fn header(sample_rate: u32, channels: u16, data_bytes: u32) -> [u8; HEADER_LEN] {
    let block_align = channels.saturating_mul(2);
    let riff_size = if data_bytes == UNKNOWN_SIZE { UNKNOWN_SIZE } else { data_bytes.saturating_add(36) };
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_size.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&sample_rate.saturating_mul(u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// The RIFF chunk size to patch in once `data_bytes` are written.
pub fn riff_size(data_bytes: u32) -> u32 {
    data_bytes.saturating_add(36)
}

/// What [`parse`] read from a WAV file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// The `fmt ` format tag (1 = PCM).
    pub format: u16,
    /// Channels.
    pub channels: u16,
    /// Samples per second.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// The RIFF chunk size (file length - 8 when complete).
    pub riff_size: u32,
    /// Where the `data` chunk's bytes start.
    pub data_offset: usize,
    /// The `data` chunk's size as the header says it.
    pub data_bytes: u32,
}

/// Reads a RIFF/WAVE header: walks the chunks (skipping any besides `fmt ` and `data`,
/// with RIFF's pad byte after odd-sized ones) up to the `data` chunk. `None` if it is
/// not a WAV file or `fmt ` is missing or short. For tests and tools; the relay only
/// writes.
pub fn parse(file: &[u8]) -> Option<WavInfo> {
    let u16_at = |at: usize| file.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |at: usize| file.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if file.get(0..4)? != b"RIFF" || file.get(8..12)? != b"WAVE" {
        return None;
    }
    let riff_size = u32_at(4)?;
    let mut at = 12;
    let mut fmt = None;
    loop {
        let id = file.get(at..at + 4)?;
        let size = u32_at(at + 4)?;
        let body = at + 8;
        if id == b"fmt " {
            if size < 16 {
                return None;
            }
            fmt = Some((u16_at(body)?, u16_at(body + 2)?, u32_at(body + 4)?, u16_at(body + 14)?));
        } else if id == b"data" {
            let (format, channels, sample_rate, bits_per_sample) = fmt?;
            return Some(WavInfo { format, channels, sample_rate, bits_per_sample, riff_size, data_offset: body, data_bytes: size });
        }
        let size = usize::try_from(size).ok()?;
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reads_back() {
        let h = header(8000, 1, 320);
        assert_eq!(
            parse(&h),
            Some(WavInfo {
                format: 1,
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                riff_size: 356,
                data_offset: 44,
                data_bytes: 320
            })
        );
        assert_eq!(&h[28..32], &16000u32.to_le_bytes(), "byte rate");
        assert_eq!(&h[32..34], &2u16.to_le_bytes(), "block align");
        let h = header(8000, 2, UNKNOWN_SIZE);
        let info = parse(&h).expect("parses");
        assert_eq!((info.riff_size, info.data_bytes, info.channels), (UNKNOWN_SIZE, UNKNOWN_SIZE, 2));
        assert_eq!(riff_size(320), 356);
        assert_eq!(MAX_DATA_BYTES % 2, 0);
        assert!(u64::from(MAX_DATA_BYTES) + 36 <= u64::from(u32::MAX));
    }

    #[test]
    fn parse_skips_other_chunks_and_refuses_garbage() {
        let h = header(8000, 1, 4);
        let mut f = h[..36].to_vec();
        f.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00"); // odd size, pad byte
        f.extend_from_slice(&h[36..]);
        let info = parse(&f).expect("parses");
        assert_eq!((info.data_offset, info.data_bytes), (56, 4));
        assert_eq!(parse(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(parse(b"RIFX"), None);
        assert_eq!(parse(&h[..40]), None);
        let mut no_fmt = h[..12].to_vec();
        no_fmt.extend_from_slice(&h[36..]);
        assert_eq!(parse(&no_fmt), None);
    }
}
