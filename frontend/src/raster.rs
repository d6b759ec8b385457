//! A small software rasterizer for the message layer: messages are set as pixels in one buffer
//! that the canvas receives in a single `putImageData` per frame.
//!
//! Why not the canvas's own paths: Chromium records path drawing and rasterizes it later, off
//! the script's clock; without a GPU, five thousand anti-aliased circles cost tens of
//! milliseconds there each frame. Setting a few dozen pixels per message in WebAssembly and
//! handing over one image costs a few.

/// A colour as red, green, blue, alpha.
pub type Rgba = [u8; 4];

/// A pixel buffer, row by row, four bytes a pixel, as `ImageData` wants it.
#[derive(Clone, Debug, Default)]
pub struct Raster {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// A message's shape.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Requests and responses.
    Circle,
    /// Events.
    Diamond,
    /// Acks.
    Square,
    /// A dropped message.
    Cross,
}

impl Raster {
    /// Makes the buffer `width` × `height` and transparent. Keeps its memory when the size
    /// stays the same.
    pub fn reset(&mut self, width: u32, height: u32) {
        let len = width as usize * height as usize * 4;
        if (self.width, self.height) != (width, height) {
            self.width = width;
            self.height = height;
            self.pixels = vec![0; len];
        } else {
            self.pixels.fill(0);
        }
    }

    /// The width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, for `ImageData`.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at `(x, y)`, transparent outside.
    pub fn pixel(&self, x: u32, y: u32) -> Rgba {
        if x >= self.width || y >= self.height {
            return [0; 4];
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Draws `shape` of radius `r` pixels centred on `(cx, cy)`, clipped to the buffer.
    pub fn draw(&mut self, shape: Shape, cx: f64, cy: f64, r: f64, color: Rgba) {
        if !(cx.is_finite() && cy.is_finite() && r > 0.0) {
            return;
        }
        let x_lo = (cx - r).floor().max(0.0) as i64;
        let y_lo = (cy - r).floor().max(0.0) as i64;
        let x_hi = ((cx + r).ceil() as i64).min(i64::from(self.width) - 1);
        let y_hi = ((cy + r).ceil() as i64).min(i64::from(self.height) - 1);
        let width = self.width as usize;
        for y in y_lo..=y_hi {
            let dy = y as f64 + 0.5 - cy;
            for x in x_lo..=x_hi {
                let dx = x as f64 + 0.5 - cx;
                let inside = match shape {
                    Shape::Circle => dx * dx + dy * dy <= r * r,
                    Shape::Diamond => dx.abs() + dy.abs() <= r,
                    Shape::Square => dx.abs() <= r * 0.8 && dy.abs() <= r * 0.8,
                    Shape::Cross => (dx.abs() - dy.abs()).abs() <= r * 0.3,
                };
                if inside {
                    let i = (y as usize * width + x as usize) * 4;
                    self.pixels[i..i + 4].copy_from_slice(&color);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgba = [255, 0, 0, 255];

    fn count(raster: &Raster, color: Rgba) -> usize {
        raster
            .pixels()
            .chunks(4)
            .filter(|p| *p == color.as_slice())
            .count()
    }

    #[test]
    fn shapes_cover_about_their_area() {
        let check = |shape: Shape, expected_area: f64| {
            let mut raster = Raster::default();
            raster.reset(40, 40);
            raster.draw(shape, 20.0, 20.0, 10.0, RED);
            let area = count(&raster, RED) as f64;
            assert!(
                (area - expected_area).abs() / expected_area < 0.15,
                "{shape:?}: {area} pixels, about {expected_area} expected"
            );
            assert_eq!(raster.pixel(20, 20), RED, "{shape:?} covers its centre");
            assert_eq!(raster.pixel(1, 1), [0; 4], "{shape:?} leaves the corner");
        };
        check(Shape::Circle, std::f64::consts::PI * 100.0);
        check(Shape::Diamond, 200.0);
        check(Shape::Square, 256.0);
    }

    #[test]
    fn drawing_is_clipped_and_reset_clears() {
        let mut raster = Raster::default();
        raster.reset(10, 8);
        raster.draw(Shape::Circle, -2.0, 3.0, 4.0, RED);
        raster.draw(Shape::Square, 9.5, 7.5, 5.0, RED);
        raster.draw(Shape::Circle, f64::NAN, 3.0, 4.0, RED);
        assert!(count(&raster, RED) > 0);
        assert_eq!(raster.pixels().len(), 10 * 8 * 4);
        assert_eq!(raster.pixel(99, 99), [0; 4]);
        raster.reset(10, 8);
        assert_eq!(count(&raster, RED), 0);
        raster.reset(3, 2);
        assert_eq!(
            (raster.width(), raster.height(), raster.pixels().len()),
            (3, 2, 24)
        );
    }
}
