//! Line plots, as PNG and SVG, with an embedded font.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// DejaVu Sans 2.37 (see `fonts/LICENSE`): plots need no system font.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// The family every text of a plot uses; the embedded font is registered
/// under it, and SVG viewers find a font of their own for it.
const FAMILY: &str = "sans-serif";

/// Plot size in pixels (the SVG's too).
const SIZE: (u32, u32) = (1024, 640);

/// Line colours, in series order (repeating).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One line of a plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub label: String,
    /// (x, y) points, joined in order; points with a non-finite coordinate
    /// are left out.
    pub points: Vec<(f64, f64)>,
}

/// Draws `series` as lines and writes `<path_stem>.png` and
/// `<path_stem>.svg` (1024×640), with the title, the axis labels as given
/// (put the units in them: "time (ms)") and a legend. Each file is written
/// whole or not at all: to a temporary file in the same directory, then
/// renamed. The x axis spans the data; the y axis starts at 0 when no y is
/// negative. Text is drawn with the embedded DejaVu Sans, so no system font
/// is needed. The same arguments give the same bytes.
pub fn line_plot(path_stem: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<(), String> {
    embedded_font()?;
    let plot = Plot { title, x_label, y_label, series, ranges: ranges(series) };

    let (width, height) = SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        plot.draw(root, true).map_err(|e| format!("drawing the PNG plot {title:?}: {e}"))?;
    }
    let png = encode_png(&pixels, width, height)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        plot.draw(root, false).map_err(|e| format!("drawing the SVG plot {title:?}: {e}"))?;
    }

    write_whole(&with_suffix(path_stem, ".png"), &png)?;
    write_whole(&with_suffix(path_stem, ".svg"), svg.as_bytes())
}

/// Registers the embedded font once.
fn embedded_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the embedded font cannot be read".to_string())
    }
}

struct Plot<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    ranges: ((f64, f64), (f64, f64)),
}

impl Plot<'_> {
    /// Draws the plot; `segments`: each line as separate segments (for the
    /// bitmap backend), else as one polyline.
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        segments: bool,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let ((x0, x1), (y0, y1)) = self.ranges;
        // 26 px fits about 70 characters across 1024 px; a longer title
        // gets a smaller font rather than running off both edges.
        let caption_size = (1800 / self.title.chars().count().max(1)).clamp(14, 26) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, (FAMILY, caption_size))
            .margin(20)
            .x_label_area_size(56)
            .y_label_area_size(88)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (i, series) in self.series.iter().enumerate() {
            let style = COLORS[i % COLORS.len()].stroke_width(2);
            let points: Vec<(f64, f64)> =
                series.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            let drawn = if segments {
                // One path per segment: plotters' bitmap backend strokes a
                // wide polyline with unclamped miter joins, which spike far
                // out of the chart on jagged data.
                let lines = points.windows(2).map(|w| PathElement::new(vec![w[0], w[1]], style));
                chart.draw_series(lines)?
            } else {
                chart.draw_series(LineSeries::new(points, style))?
            };
            drawn
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style.stroke_width(3)));
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FAMILY, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()
    }
}

/// A tick label: short, with no float noise (`0.3`, `4500`, `4.5e6`).
fn tick(v: f64) -> String {
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if v == 0.0 {
        "0".to_string()
    } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exponent}", trim(mantissa.to_string()))
    } else {
        trim(format!("{v:.3}"))
    }
}

/// The x range spans the finite data; the y range too, from 0 when no y is
/// negative, with 5% headroom. Empty or flat data gets a unit-wide range.
fn ranges(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let finite = || series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let span = |values: &mut dyn Iterator<Item = f64>| -> Option<(f64, f64)> {
        values.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    };
    let widen = |(lo, hi): (f64, f64)| if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
    let x = widen(span(&mut finite().map(|p| p.0)).unwrap_or((0.0, 1.0)));
    let (y_lo, y_hi) = span(&mut finite().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let y_lo = if y_lo >= 0.0 { 0.0 } else { y_lo };
    let (y_lo, y_hi) = widen((y_lo, y_hi));
    let headroom = (y_hi - y_lo) * 0.05;
    let y = (if y_lo < 0.0 { y_lo - headroom } else { y_lo }, y_hi + headroom);
    (x, y)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("encoding the PNG: {e}"))?;
    writer.write_image_data(rgb).map_err(|e| format!("encoding the PNG: {e}"))?;
    writer.finish().map_err(|e| format!("encoding the PNG: {e}"))?;
    Ok(out)
}

/// `stem` with `suffix` appended (`out/a.b` + `.png` → `out/a.b.png`).
fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file in
/// the same directory, then renamed over `path`.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&temp);
        format!("writing {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system's temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("swapsim-report-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample() -> Vec<Series> {
        vec![
            Series { label: "pre4".into(), points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.5), (3.0, f64::NAN)] },
            Series { label: "patched".into(), points: vec![(0.0, 0.5), (1.0, 0.75), (2.0, 1.25)] },
        ]
    }

    #[test]
    fn writes_png_and_svg() {
        let dir = temp_dir("plot");
        let stem = dir.join("swapoff.latency");
        line_plot(&stem, "swapoff latency", "seed", "latency (µs)", &sample()).unwrap();
        let png = fs::read(dir.join("swapoff.latency.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        let svg = fs::read_to_string(dir.join("swapoff.latency.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["swapoff latency", "latency (µs)", "seed", "pre4", "patched"] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        // No temporary file is left behind; only the two outputs.
        let mut names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, vec!["swapoff.latency.png", "swapoff.latency.svg"]);

        // Same input, same bytes.
        let again = dir.join("again");
        line_plot(&again, "swapoff latency", "seed", "latency (µs)", &sample()).unwrap();
        assert_eq!(fs::read(dir.join("again.png")).unwrap(), png);
        assert_eq!(fs::read_to_string(dir.join("again.svg")).unwrap(), svg);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_png_has_text_drawn_with_the_embedded_font() {
        // Title only versus no title: the title's pixels must differ.
        let dir = temp_dir("font");
        line_plot(&dir.join("a"), "", "", "", &[]).unwrap();
        line_plot(&dir.join("b"), "Title", "", "", &[]).unwrap();
        assert_ne!(fs::read(dir.join("a.png")).unwrap(), fs::read(dir.join("b.png")).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing() {
        let dir = temp_dir("missing");
        let err = line_plot(&dir.join("no/such/dir/x"), "t", "x", "y", &sample()).unwrap_err();
        assert!(err.contains("x.png"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tick_labels_are_short() {
        let ticks: Vec<String> =
            [0.0, 0.30000000000000004, 4500.0, 4_500_000.0, -2.5, 0.0001, 12.3456].map(tick).into();
        assert_eq!(ticks, ["0", "0.3", "4500", "4.5e6", "-2.5", "1e-4", "12.346"]);
    }

    #[test]
    fn ranges_fit_the_data() {
        assert_eq!(ranges(&[]), ((0.0, 1.0), (0.0, 1.05)));
        let flat = [Series { label: String::new(), points: vec![(2.0, 3.0)] }];
        assert_eq!(ranges(&flat), ((1.5, 2.5), (0.0, 3.15)));
        let negative = [Series { label: String::new(), points: vec![(0.0, -10.0), (4.0, 10.0)] }];
        assert_eq!(ranges(&negative), ((0.0, 4.0), (-11.0, 11.0)));
        assert_eq!(with_suffix(Path::new("out/a.b"), ".svg"), PathBuf::from("out/a.b.svg"));
    }
}
