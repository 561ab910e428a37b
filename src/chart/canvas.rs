//! The PNG drawing surface: plotters' bitmap backend with text rasterized
//! here. Plotters 0.3.7 draws ab_glyph text with every glyph at its rounded
//! down pen position and without its left side bearing, which spaces
//! letters unevenly ("rate limited" reads "ratelimited"). This surface
//! places each glyph at its exact position, kerning included, and leaves
//! every other shape to plotters.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use plotters::backend::{BitMapBackend, RGBPixel};
use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

type BitMap<'a> = BitMapBackend<'a, RGBPixel>;
type Error<'a> = DrawingErrorKind<<BitMap<'a> as DrawingBackend>::ErrorType>;

pub(super) struct Canvas<'a> {
    bitmap: BitMap<'a>,
    font: &'static FontRef<'static>,
}

impl<'a> Canvas<'a> {
    pub(super) fn new(bitmap: BitMap<'a>, font: &'static FontRef<'static>) -> Self {
        Self { bitmap, font }
    }
}

/// Returns each glyph of `text` with its pen position in pixels from the
/// start of the line, and the advance width of the whole line.
fn lay_out<F: Font>(font: &impl ScaleFont<F>, text: &str) -> (Vec<(GlyphId, f32)>, f32) {
    let mut pen = 0.0;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            pen += font.kern(previous, id);
        }
        glyphs.push((id, pen));
        pen += font.h_advance(id);
        previous = Some(id);
    }
    (glyphs, pen)
}

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMap<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.bitmap.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.bitmap.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.bitmap.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.bitmap.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.bitmap.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.bitmap.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.bitmap.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.bitmap.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.bitmap.fill_polygon(vertices, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        source: &[u8],
    ) -> Result<(), Error<'a>> {
        self.bitmap.blit_bitmap(pos, size, source)
    }

    /// Draws `text` with its anchor at `pos`. The text box is the advance
    /// width by the font's ascent-to-descent height, so centred digits and
    /// lowercase letters sit on the anchor.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font = self.font.as_scaled(PxScale::from(style.size() as f32));
        let (glyphs, width) = lay_out(&font, text);
        let anchor = style.anchor();
        let left = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let top = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -font.height() / 2.0,
            VPos::Bottom => -font.height(),
        };

        // Coverage is collected first because the rasterizer's callback
        // cannot return the backend's errors.
        let mut coverage = Vec::new();
        for (id, pen) in glyphs {
            let glyph =
                id.with_scale_and_position(font.scale(), point(left + pen, top + font.ascent()));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, c| coverage.push((x0 + x as i32, y0 + y as i32, c)));
        }

        let transform = style.transform();
        for (x, y, c) in coverage {
            let alpha = color.alpha * f64::from(c.clamp(0.0, 1.0));
            if alpha <= 0.0 {
                continue;
            }
            let (x, y) = transform.transform(x, y);
            let pixel = BackendColor {
                alpha,
                rgb: color.rgb,
            };
            self.bitmap.draw_pixel((pos.0 + x, pos.1 + y), pixel)?;
        }
        Ok(())
    }
}
