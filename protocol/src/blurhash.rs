//! BlurHash (<https://blurha.sh>): the short string that attachments carry in `blurhash`, from
//! which clients paint a blurred placeholder before the image loads.
//!
//! The image is described by the first `x × y` terms of its 2-D cosine transform in linear
//! RGB: the average colour (DC) and the AC terms, quantised and written in base 83.

use std::f64::consts::PI;

const BASE83: &[u8; 83] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/// Why an image cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlurhashError {
    /// Components must be 1 to 9 in each direction.
    #[error("components must be 1 to 9 in each direction, not {0}×{1}")]
    Components(u32, u32),
    /// The pixel buffer does not hold `width × height` RGB pixels.
    #[error("{len} bytes is not {width}×{height} RGB pixels")]
    Size {
        /// Bytes given.
        len: usize,
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
}

/// Encodes `width × height` pixels of 8-bit RGB (3 bytes a pixel, rows top to bottom) with
/// `x × y` components. Mastodon uses 4 × 4; the cost is `x · y · width · height`, so callers
/// shrink large images first (a 64-pixel side loses nothing visible).
pub fn encode(
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<String, BlurhashError> {
    if !(1..=9).contains(&x) || !(1..=9).contains(&y) {
        return Err(BlurhashError::Components(x, y));
    }
    let pixels = width as usize * height as usize;
    if pixels == 0 || rgb.len() != pixels * 3 {
        return Err(BlurhashError::Size { len: rgb.len(), width, height });
    }
    // Linear values once per pixel, not once per pixel and component.
    let linear: Vec<f64> = rgb.iter().map(|&c| srgb_to_linear(c)).collect();
    let mut factors = Vec::with_capacity((x * y) as usize);
    for j in 0..y {
        for i in 0..x {
            factors.push(component(i, j, width, height, &linear));
        }
    }

    let mut hash = String::with_capacity(4 + 2 * factors.len() + 2);
    push_base83(&mut hash, (x - 1) + (y - 1) * 9, 1);
    let (dc, ac) = factors.split_first().expect("at least one component");
    let max_value = if ac.is_empty() {
        push_base83(&mut hash, 0, 1);
        1.0
    } else {
        let actual = ac.iter().flat_map(|f| f.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
        let quantised = (actual * 166.0 - 0.5).floor().clamp(0.0, 82.0);
        push_base83(&mut hash, quantised as u32, 1);
        (quantised + 1.0) / 166.0
    };
    let dc_value =
        (linear_to_srgb(dc[0]) << 16) | (linear_to_srgb(dc[1]) << 8) | linear_to_srgb(dc[2]);
    push_base83(&mut hash, dc_value, 4);
    for f in ac {
        let q = |v: f64| (sign_pow(v / max_value, 0.5) * 9.0 + 9.5).floor().clamp(0.0, 18.0) as u32;
        push_base83(&mut hash, q(f[0]) * 19 * 19 + q(f[1]) * 19 + q(f[2]), 2);
    }
    Ok(hash)
}

/// One term of the transform: the image weighted by `cos(πix/w)·cos(πjy/h)`, per channel.
fn component(i: u32, j: u32, width: u32, height: u32, linear: &[f64]) -> [f64; 3] {
    let normalisation = if i == 0 && j == 0 { 1.0 } else { 2.0 };
    let (w, h) = (f64::from(width), f64::from(height));
    let column: Vec<f64> =
        (0..width).map(|px| (PI * f64::from(i) * f64::from(px) / w).cos()).collect();
    let mut sum = [0.0; 3];
    for py in 0..height {
        let row = (PI * f64::from(j) * f64::from(py) / h).cos();
        let start = py as usize * width as usize * 3;
        for (px, basis_x) in column.iter().enumerate() {
            let basis = basis_x * row;
            let p = start + px * 3;
            sum[0] += basis * linear[p];
            sum[1] += basis * linear[p + 1];
            sum[2] += basis * linear[p + 2];
        }
    }
    let scale = normalisation / (w * h);
    [sum[0] * scale, sum[1] * scale, sum[2] * scale]
}

fn srgb_to_linear(c: u8) -> f64 {
    let v = f64::from(c) / 255.0;
    if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
}

fn linear_to_srgb(v: f64) -> u32 {
    let v = v.clamp(0.0, 1.0);
    let srgb = if v <= 0.003_130_8 { v * 12.92 } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 };
    (srgb * 255.0 + 0.5) as u32
}

fn sign_pow(v: f64, exp: f64) -> f64 {
    v.abs().powf(exp).copysign(v)
}

fn push_base83(out: &mut String, value: u32, digits: u32) {
    for d in (0..digits).rev() {
        let digit = (value / 83u32.pow(d)) % 83;
        out.push(BASE83[digit as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        rgb.repeat((width * height) as usize)
    }

    #[test]
    fn a_solid_colour_matches_the_reference_algorithm() {
        // Worked by hand from the reference encoder, which samples the cosines at x / width:
        // over 8 columns, Σ cos(πix/8) is 8 for i = 0, 1 for odd i and 0 for even i (6 rows
        // likewise), so solid red (linear 1, 0, 0) has AC terms L/4 at (1,0) and (3,0), L/3 at
        // (0,1), L/24 at (1,1) and (3,1), and 0 elsewhere.
        // 'L': 4×3 components; 's': quantised maximum 54 (⌊166/3 − 0.5⌋); "TI:j": DC 0xFF0000;
        // then each AC term as 19·19·r + 19·g + b in two base-83 digits ("fQ" is neutral).
        let hash = encode(4, 3, 8, 6, &solid(8, 6, [255, 0, 0])).unwrap();
        assert_eq!(hash, "LsTI:j]9fQ]9|csUfQsUfQfQfQfQ");
    }

    #[test]
    fn one_component_is_the_average_colour_only() {
        assert_eq!(encode(1, 1, 2, 2, &solid(2, 2, [0, 0, 0])).unwrap(), "000000");
        // 0xFFFFFF = 29·83³ + 28·83² + 30·83 + 10.
        assert_eq!(encode(1, 1, 2, 2, &solid(2, 2, [255, 255, 255])).unwrap(), "00TSUA");
    }

    #[test]
    fn a_left_to_right_gradient_differs_from_flat_grey_in_the_horizontal_terms() {
        let (w, h) = (16u32, 4u32);
        let mut rgb = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                let v = (x * 255 / (w - 1)) as u8;
                rgb.extend([v, v, v]);
            }
        }
        let gradient = encode(4, 3, w, h, &rgb).unwrap();
        let flat = encode(4, 3, w, h, &solid(w, h, [128, 128, 128])).unwrap();
        assert_eq!(gradient.len(), 4 + 2 + 2 * 11);
        assert_ne!(&gradient[6..8], &flat[6..8], "(1,0) term: {gradient} vs {flat}");
    }

    #[test]
    fn bad_sizes_and_component_counts_are_refused() {
        assert_eq!(encode(0, 3, 1, 1, &[0, 0, 0]), Err(BlurhashError::Components(0, 3)));
        assert_eq!(encode(4, 10, 1, 1, &[0, 0, 0]), Err(BlurhashError::Components(4, 10)));
        assert!(matches!(encode(4, 3, 2, 2, &[0; 11]), Err(BlurhashError::Size { .. })));
        assert!(matches!(encode(4, 3, 0, 0, &[]), Err(BlurhashError::Size { .. })));
    }
}
