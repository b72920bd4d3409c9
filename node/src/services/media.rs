//! Uploaded images: what can be learned from the bytes (type, size, BlurHash) before storing.

use image::{ImageReader, Limits};

use crate::error::{AppError, AppResult};

/// The longest side an image is shrunk to before its BlurHash is computed: the hash keeps
/// only the coarsest detail, and the cost grows with the pixel count.
const HASH_SIDE: u32 = 64;
/// Largest decoded image accepted (a small file can decode to gigabytes).
const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// The BlurHash of an image (4 × 4 components, as Mastodon sends). Decoding is CPU work; call
/// from a blocking thread.
pub fn blurhash(bytes: &[u8]) -> AppResult<String> {
    let unreadable =
        |e: &dyn std::fmt::Display| AppError::Invalid(format!("unreadable image: {e}"));
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| unreadable(&e))?;
    let small = image.thumbnail(HASH_SIDE, HASH_SIDE).to_rgb8();
    ferry_protocol::blurhash::encode(4, 4, small.width(), small.height(), small.as_raw())
        .map_err(|e| unreadable(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, pixel: [u8; 3]) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb(pixel));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn an_uploaded_png_gets_the_hash_of_its_pixels() {
        let hash = blurhash(&png(300, 200, [255, 0, 0])).unwrap();
        // 4×4 components ('U'), the colour red as DC ("TI:j").
        assert_eq!(&hash[..1], "U");
        assert_eq!(&hash[2..6], "TI:j");
        assert_eq!(hash.len(), 4 + 2 + 2 * 15);
    }

    #[test]
    fn bytes_that_are_no_image_are_refused() {
        assert!(matches!(blurhash(b"\x89PNG\r\n\x1a\nnot really"), Err(AppError::Invalid(_))));
    }
}
