//! Enough of PNG to read Chromium's screenshots back: 8-bit RGB or RGBA,
//! not interlaced, the zlib stream inflated with flate2 and the five
//! scanline filters undone. Tests then count the pixels of the colours a
//! page must show.

use std::io::Read;

/// A decoded image: width, height, and RGB triples row by row.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[u8; 3]>,
}

impl Image {
    /// Decode a PNG file; panics with the reason on anything else.
    pub fn read(path: &std::path::Path) -> Image {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let (mut at, mut header, mut idat) = (8, None, Vec::new());
        while at + 8 <= data.len() {
            let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            let kind = &data[at + 4..at + 8];
            let body = &data[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => header = Some(body.to_vec()),
                b"IDAT" => idat.extend_from_slice(body),
                b"IEND" => break,
                _ => {}
            }
            at += 12 + len;
        }
        let h = header.expect("an IHDR chunk");
        let width = u32::from_be_bytes(h[0..4].try_into().unwrap()) as usize;
        let height = u32::from_be_bytes(h[4..8].try_into().unwrap()) as usize;
        let (depth, color, interlace) = (h[8], h[9], h[12]);
        assert_eq!((depth, interlace), (8, 0), "only 8-bit, non-interlaced");
        let channels = match color {
            2 => 3,
            6 => 4,
            other => panic!("colour type {other} not supported"),
        };
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        let stride = width * channels;
        assert_eq!(raw.len(), height * (stride + 1), "image data size");
        let mut pixels = vec![0u8; height * stride];
        for y in 0..height {
            let filter = raw[y * (stride + 1)];
            let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for x in 0..stride {
                let a = if x >= channels {
                    pixels[y * stride + x - channels] as i16
                } else {
                    0
                };
                let b = if y > 0 {
                    pixels[(y - 1) * stride + x] as i16
                } else {
                    0
                };
                let c = if x >= channels && y > 0 {
                    pixels[(y - 1) * stride + x - channels] as i16
                } else {
                    0
                };
                let predicted = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => {
                        let p = a + b - c;
                        let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    f => panic!("filter {f}"),
                };
                pixels[y * stride + x] = line[x].wrapping_add(predicted as u8);
            }
        }
        let rgb = pixels
            .chunks_exact(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Image { width, height, rgb }
    }

    /// How many pixels have exactly the colour `#rrggbb`.
    pub fn count(&self, hex: &str) -> usize {
        let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
        let want = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        self.rgb.iter().filter(|p| **p == want).count()
    }
}
