//! The bundled DejaVu Sans font and its registration with plotters, so
//! charts render the same text on every machine without system font
//! libraries.

use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::style::FontStyle;

/// Font family of every text in a chart. Plotters writes this string as the
/// SVG `font-family` attribute and also looks the font up by it, so it names
/// DejaVu Sans first and a generic fallback for SVG viewers that lack it.
pub(super) const FAMILY: &str = "DejaVu Sans, sans-serif";

/// DejaVu Sans 2.37, whose licence is in `assets/fonts/LICENSE-DejaVu.txt`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font with plotters on the first call, and returns
/// whether that succeeded on every call. It fails only if the bundled file
/// is corrupt.
pub(super) fn ensure_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // "sans-serif" is the family plotters falls back to for any text
        // whose style names no family.
        [FAMILY, "sans-serif"].iter().all(|family| {
            plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS).is_ok()
        })
    })
}

/// Returns the bundled font parsed for drawing PNG text, or None when the
/// bundled file is corrupt.
pub(super) fn dejavu_sans() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(DEJAVU_SANS).ok())
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_font_registers() {
        assert!(ensure_registered());
        assert!(ensure_registered());
        assert!(dejavu_sans().is_some());
    }
}
