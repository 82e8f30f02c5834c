//! Line plots with their spread, as PNG and SVG, with an embedded font.
//!
//! A series is a line through one statistic per x (a median, a p99 over
//! merged samples), with, at each x, the range it summarises (a bar) and
//! the values it was computed from (hollow markers). An axis is
//! logarithmic when its values are positive and span a factor of 10 or
//! more; an axis of integers gets integer ticks (the data's own values when
//! there are few). Each series has its own colour, dash pattern and marker
//! shape, and is shifted a few pixels sideways, so lines that coincide stay
//! distinguishable. The legend sits beside the plot, never over the data.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// DejaVu Sans 2.37 (see `fonts/LICENSE`): plots need no system font.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// The family every text of a plot uses: the embedded font is registered
/// under it, so the PNG is drawn with it. The SVG names it, with
/// `sans-serif` as the viewer's fallback ([`SVG_FONT`]).
const FAMILY: &str = "DejaVu Sans";

/// The SVG's `font-family`: the embedded font's name, then the fallback.
pub const SVG_FONT: &str = "DejaVu Sans, sans-serif";

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

/// Dash patterns (dash, gap in pixels; no gap: solid), in series order.
const DASHES: [(u32, u32); 4] = [(1, 0), (12, 6), (3, 4), (20, 5)];

/// Marker shapes, in series order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}
const MARKERS: [Marker; 5] = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::Cross];

/// One line of a plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub label: String,
    /// The line: (x, statistic) points, joined in order; points with a
    /// non-finite coordinate are left out.
    pub points: Vec<(f64, f64)>,
    /// What each point summarises (any x, in any order; may be empty).
    pub spread: Vec<Spread>,
}

/// The values behind one point of a series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    pub x: f64,
    /// The range drawn as a bar (min–max, or quartiles).
    pub low: f64,
    pub high: f64,
    /// Each value (one per seed), drawn as a hollow marker.
    pub values: Vec<f64>,
}

/// What a plot shows.
#[derive(Clone, Copy, Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    /// Axis labels as given: put the units in them ("time (ms)").
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
    /// Lines of text under the legend (what the line, bars and markers are).
    pub notes: &'a [String],
}

/// Draws `chart` and writes `<path_stem>.png` and `<path_stem>.svg`
/// (1024×640). Each file is written whole or not at all: to a temporary
/// file in the same directory, then renamed. The same chart gives the same
/// bytes.
pub fn line_plot(path_stem: &Path, chart: &Chart) -> Result<(), String> {
    embedded_font()?;
    let title = chart.title;
    let layout = Layout::of(chart);
    let (width, height) = SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        layout.draw(chart, root).map_err(|e| format!("drawing the PNG plot {title:?}: {e}"))?;
    }
    let png = encode_png(&pixels, width, height)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        layout.draw(chart, root).map_err(|e| format!("drawing the SVG plot {title:?}: {e}"))?;
    }
    let svg = svg.replace(&format!("font-family=\"{FAMILY}\""), &format!("font-family=\"{SVG_FONT}\""));
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

/// One axis: its scale, its range and ticks in drawn units (log10 of the
/// value on a log axis), and whether its values are integers.
#[derive(Clone, Debug, PartialEq)]
struct Axis {
    log: bool,
    integer: bool,
    range: (f64, f64),
    ticks: Vec<f64>,
}

impl Axis {
    /// The axis for these values (finite ones only). `from_zero`: a linear
    /// axis of values that are all >= 0 starts at 0.
    fn fit(values: &[f64], from_zero: bool) -> Axis {
        let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if values.is_empty() {
            return Axis { log: false, integer: false, range: (0.0, 1.0), ticks: vec![0.0, 0.5, 1.0] };
        }
        let integer = values.iter().all(|v| v.fract() == 0.0);
        let log = lo > 0.0 && hi >= 10.0 * lo;
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = (b - a) * 0.05;
            let range = (a - pad, b + pad);
            let ticks = if integer && distinct.len() <= 12 {
                distinct.iter().map(|v| v.log10()).collect()
            } else {
                log_ticks(range)
            };
            return Axis { log, integer, range, ticks };
        }
        let lo = if from_zero && lo >= 0.0 { 0.0 } else { lo };
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
        let pad = (hi - lo) * 0.05;
        let range = (if from_zero && lo == 0.0 { 0.0 } else { lo - pad }, hi + pad);
        let ticks = if integer && distinct.len() <= 12 && !from_zero { distinct } else { linear_ticks(range, integer) };
        Axis { log, integer, range, ticks }
    }

    /// A value in drawn units.
    fn to_drawn(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    /// A tick label for a position in drawn units.
    fn label(&self, drawn: f64) -> String {
        let v = if self.log { 10f64.powf(drawn) } else { drawn };
        if self.integer || (self.log && (v - v.round()).abs() < 1e-6 * v.abs().max(1.0)) {
            tick(v.round())
        } else {
            tick(v)
        }
    }
}

/// A linear coordinate (in drawn units) whose ticks are the given ones.
struct Ticked {
    range: (f64, f64),
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (from, to): (i32, i32)) -> i32 {
        let (lo, hi) = self.range;
        let fraction = (value - lo) / (hi - lo);
        from + (fraction * f64::from(to - from)).round() as i32
    }

    /// The ticks for the labels and the bold grid lines; no light ones.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.0..self.range.1
    }
}

/// Ticks 1, 2, 5 × 10^k inside `range` (log10 units); only the powers of
/// ten when that gives too many.
fn log_ticks((a, b): (f64, f64)) -> Vec<f64> {
    let decades = (a.floor() as i32)..=(b.ceil() as i32);
    let inside = |mantissas: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|k| mantissas.iter().map(move |m| (m * 10f64.powi(k)).log10()))
            .filter(|t| *t >= a && *t <= b)
            .collect()
    };
    let fine = inside(&[1.0, 2.0, 5.0]);
    if fine.len() <= 12 {
        fine
    } else {
        inside(&[1.0])
    }
}

/// About six ticks at a round step (1, 2 or 5 × 10^k; at least 1 for
/// integers) inside `range`.
fn linear_ticks((lo, hi): (f64, f64), integer: bool) -> Vec<f64> {
    let raw = (hi - lo) / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    if integer {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Where things go: the axes, and how far each series is shifted sideways
/// (in drawn x units per pixel).
struct Layout {
    x: Axis,
    y: Axis,
    legend_width: u32,
}

impl Layout {
    fn of(chart: &Chart) -> Layout {
        let xs: Vec<f64> = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0).chain(s.spread.iter().map(|p| p.x)))
            .collect();
        let ys: Vec<f64> = chart
            .series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.spread.iter().flat_map(|p| [p.low, p.high].into_iter().chain(p.values.iter().copied())))
            })
            .collect();
        let mut x = Axis::fit(&xs, false);
        // Room at the sides for the sideways shifts and the markers.
        let span = x.range.1 - x.range.0;
        x.range = (x.range.0 - span * 0.03, x.range.1 + span * 0.03);
        let y = Axis::fit(&ys, true);
        let longest = chart
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .chain(chart.notes.iter().map(|n| n.chars().count() * 4 / 5))
            .max()
            .unwrap_or(0);
        let legend_width = (60 + 8 * longest as u32).clamp(150, 360);
        Layout { x, y, legend_width }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        chart: &Chart,
        root: DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        // 26 px fits about 70 characters across 1024 px; a longer title
        // gets a smaller font rather than running off both edges.
        let caption_size = (1800 / chart.title.chars().count().max(1)).clamp(14, 26) as u32;
        // The lines and markers are drawn on `root` itself, in the backend's
        // pixels (what `backend_coord` gives); the areas below the title
        // are offset from it.
        let below_title = root.titled(chart.title, (FAMILY, caption_size))?;
        let (plot_area, legend_area) = below_title.split_horizontally(SIZE.0 - self.legend_width);
        let (x, y) = (&self.x, &self.y);
        let mut cartesian =
            ChartBuilder::on(&plot_area).margin(16).x_label_area_size(56).y_label_area_size(88).build_cartesian_2d(
                Ticked { range: x.range, ticks: x.ticks.clone() },
                Ticked { range: y.range, ticks: y.ticks.clone() },
            )?;
        let x_desc = if x.log { format!("{} (log scale)", chart.x_label) } else { chart.x_label.to_string() };
        let y_desc = if y.log { format!("{} (log scale)", chart.y_label) } else { chart.y_label.to_string() };
        cartesian
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| x.label(*v))
            .y_label_formatter(&|v| y.label(*v))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 17))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        // Pixel positions; each series shifted sideways by its own offset.
        let n = chart.series.len();
        for (i, series) in chart.series.iter().enumerate() {
            let style = Style::of(i);
            let shift = (i as f64 - (n as f64 - 1.0) / 2.0) * 4.0;
            let at = |px: f64, py: f64| -> Option<(i32, i32)> {
                if !(px.is_finite() && py.is_finite()) || (x.log && px <= 0.0) || (y.log && py <= 0.0) {
                    return None;
                }
                let (bx, by) = cartesian.backend_coord(&(x.to_drawn(px), y.to_drawn(py)));
                Some((bx + shift.round() as i32, by))
            };
            let color = style.color;
            for spread in &series.spread {
                if let (Some(lo), Some(hi)) = (at(spread.x, spread.low), at(spread.x, spread.high)) {
                    let thin = color.mix(0.6).stroke_width(1);
                    root.draw(&PathElement::new(vec![lo, hi], thin))?;
                    for end in [lo, hi] {
                        root.draw(&PathElement::new(vec![(end.0 - 4, end.1), (end.0 + 4, end.1)], thin))?;
                    }
                }
                for value in &spread.values {
                    if let Some(p) = at(spread.x, *value) {
                        style.marker(&root, p, 4, false)?;
                    }
                }
            }
            let line: Vec<(i32, i32)> = series.points.iter().filter_map(|&(px, py)| at(px, py)).collect();
            style.line(&root, &line)?;
            for &p in &line {
                style.marker(&root, p, 5, true)?;
            }
        }
        self.legend(chart, &legend_area)?;
        root.present()
    }

    /// The legend and the notes, in their own area beside the plot.
    fn legend<DB: DrawingBackend>(
        &self,
        chart: &Chart,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let mut row = 24;
        for (i, series) in chart.series.iter().enumerate() {
            let style = Style::of(i);
            style.line(area, &[(4, row), (44, row)])?;
            style.marker(area, (24, row), 5, true)?;
            area.draw(&Text::new(series.label.as_str(), (52, row - 8), (FAMILY, 15)))?;
            row += 24;
        }
        row += 12;
        for note in chart.notes {
            area.draw(&Text::new(note.as_str(), (4, row - 8), (FAMILY, 12).into_font().color(&RGBColor(80, 80, 80))))?;
            row += 17;
        }
        Ok(())
    }
}

/// How series `i` is drawn.
struct Style {
    color: RGBColor,
    dash: (u32, u32),
    marker: Marker,
}

impl Style {
    fn of(i: usize) -> Style {
        Style { color: COLORS[i % COLORS.len()], dash: DASHES[i % DASHES.len()], marker: MARKERS[i % MARKERS.len()] }
    }

    /// The line through `points` (pixels), in this series' dash pattern.
    fn line<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        points: &[(i32, i32)],
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let stroke = self.color.stroke_width(2);
        for w in points.windows(2) {
            // One element per segment: plotters' bitmap backend strokes a
            // wide polyline with unclamped miter joins, which spike far out
            // of the chart on jagged data.
            if self.dash.1 == 0 {
                area.draw(&PathElement::new(vec![w[0], w[1]], stroke))?;
            } else {
                area.draw(&DashedPathElement::new(vec![w[0], w[1]], self.dash.0 as i32, self.dash.1 as i32, stroke))?;
            }
        }
        Ok(())
    }

    /// This series' marker at `p` (pixels), `r` pixels across from the
    /// centre; filled for the statistic, hollow for a single value.
    fn marker<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (cx, cy): (i32, i32),
        r: i32,
        filled: bool,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let style = if filled { self.color.filled() } else { self.color.stroke_width(1) };
        let outline = |points: Vec<(i32, i32)>| -> Vec<(i32, i32)> {
            let mut closed = points.clone();
            closed.push(points[0]);
            closed
        };
        let polygon = |points: Vec<(i32, i32)>| -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
            if filled {
                area.draw(&Polygon::new(points, style))
            } else {
                area.draw(&PathElement::new(outline(points), style))
            }
        };
        match self.marker {
            Marker::Circle => area.draw(&Circle::new((cx, cy), r, style)),
            Marker::Square => polygon(vec![(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]),
            Marker::Triangle => polygon(vec![(cx, cy - r - 1), (cx + r + 1, cy + r), (cx - r - 1, cy + r)]),
            Marker::Diamond => polygon(vec![(cx, cy - r - 1), (cx + r + 1, cy), (cx, cy + r + 1), (cx - r - 1, cy)]),
            Marker::Cross => {
                let wide = self.color.stroke_width(if filled { 3 } else { 1 });
                area.draw(&PathElement::new(vec![(cx - r, cy - r), (cx + r, cy + r)], wide))?;
                area.draw(&PathElement::new(vec![(cx - r, cy + r), (cx + r, cy - r)], wide))
            }
        }
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
        let spread = |x: f64, values: &[f64]| Spread {
            x,
            low: values.iter().copied().fold(f64::INFINITY, f64::min),
            high: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values: values.to_vec(),
        };
        vec![
            Series {
                label: "pre4".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.5), (3.0, f64::NAN)],
                spread: vec![spread(0.0, &[0.8, 1.2]), spread(1.0, &[2.0, 4.0])],
            },
            Series { label: "patched".into(), points: vec![(0.0, 0.5), (1.0, 0.75), (2.0, 1.25)], spread: vec![] },
        ]
    }

    fn chart<'a>(title: &'a str, series: &'a [Series], notes: &'a [String]) -> Chart<'a> {
        Chart { title, x_label: "seed", y_label: "latency (µs)", series, notes }
    }

    #[test]
    fn writes_png_and_svg() {
        let dir = temp_dir("plot");
        let stem = dir.join("swapoff.latency");
        let (series, notes) = (sample(), vec!["line: the median".to_string()]);
        line_plot(&stem, &chart("swapoff latency", &series, &notes)).unwrap();
        let png = fs::read(dir.join("swapoff.latency.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        let svg = fs::read_to_string(dir.join("swapoff.latency.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["swapoff latency", "latency (µs)", "seed", "pre4", "patched", "line: the median"] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        // No temporary file is left behind; only the two outputs.
        let mut names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, vec!["swapoff.latency.png", "swapoff.latency.svg"]);

        // Same input, same bytes.
        let again = dir.join("again");
        line_plot(&again, &chart("swapoff latency", &series, &notes)).unwrap();
        assert_eq!(fs::read(dir.join("again.png")).unwrap(), png);
        assert_eq!(fs::read_to_string(dir.join("again.svg")).unwrap(), svg);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_svg_names_the_embedded_font_with_a_fallback() {
        // docs/sweep.md says so: the PNG is drawn with the embedded DejaVu
        // Sans; every text of the SVG names it, then sans-serif.
        let dir = temp_dir("svgfont");
        line_plot(&dir.join("p"), &chart("t", &sample(), &[])).unwrap();
        let svg = fs::read_to_string(dir.join("p.svg")).unwrap();
        let families: Vec<&str> = svg.split("font-family=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
        assert!(families.len() > 5, "{svg}");
        assert!(families.iter().all(|f| *f == SVG_FONT), "{families:?}");
        let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sweep.md")).unwrap();
        assert!(doc.contains(&format!("`font-family=\"{SVG_FONT}\"`")), "docs/sweep.md must say what the SVG names");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_png_has_text_drawn_with_the_embedded_font() {
        // Title only versus no title: the title's pixels must differ.
        let dir = temp_dir("font");
        line_plot(&dir.join("a"), &chart("", &[], &[])).unwrap();
        line_plot(&dir.join("b"), &chart("Title", &[], &[])).unwrap();
        assert_ne!(fs::read(dir.join("a.png")).unwrap(), fs::read(dir.join("b.png")).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing() {
        let dir = temp_dir("missing");
        let err = line_plot(&dir.join("no/such/dir/x"), &chart("t", &sample(), &[])).unwrap_err();
        assert!(err.contains("x.png"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tick_labels_are_short() {
        let ticks: Vec<String> =
            [0.0, 0.30000000000000004, 4500.0, 4_500_000.0, -2.5, 0.0001, 12.3456].map(tick).into();
        assert_eq!(ticks, ["0", "0.3", "4500", "4.5e6", "-2.5", "1e-4", "12.346"]);
        assert_eq!(with_suffix(Path::new("out/a.b"), ".svg"), PathBuf::from("out/a.b.svg"));
    }

    #[test]
    fn values_that_span_decades_get_a_log_axis_with_round_ticks() {
        // The algorithms sweep: 5.1's 8 ms lies flat beside pre4's 16 s on
        // a linear axis.
        let y = Axis::fit(&[8.45, 33.2, 132.0, 331.2, 16540.6], true);
        assert!(y.log);
        let labels: Vec<String> = y.ticks.iter().map(|t| y.label(*t)).collect();
        assert_eq!(labels, ["10", "20", "50", "100", "200", "500", "1000", "2000", "5000", "10000", "20000"]);
        assert!(y.range.0 < 8.45f64.log10() && y.range.1 > 16540.6f64.log10());
        // Less than a factor of 10, or a zero: linear, from 0.
        let linear = Axis::fit(&[2.1, 9.0], true);
        assert!(!linear.log && linear.range.0 == 0.0, "{linear:?}");
        assert!(!Axis::fit(&[0.0, 20.0, 2000.0], true).log);
    }

    #[test]
    fn integer_parameters_get_integer_ticks() {
        // Few integer values: the values themselves (linear or log).
        let pages = Axis::fit(&[256.0, 1024.0, 2048.0, 4096.0], false);
        assert!(pages.log);
        let labels: Vec<String> = pages.ticks.iter().map(|t| pages.label(*t)).collect();
        assert_eq!(labels, ["256", "1024", "2048", "4096"]);
        let few = Axis::fit(&[1.0, 2.0, 3.0], false);
        assert_eq!(few.ticks, [1.0, 2.0, 3.0]);
        // Many: round steps of at least 1, never 2.5.
        let many: Vec<f64> = (11..=50).map(f64::from).collect();
        let axis = Axis::fit(&many, false);
        assert!(!axis.log);
        assert!(axis.ticks.iter().all(|t| t.fract() == 0.0), "{:?}", axis.ticks);
        let small = Axis::fit(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 0.0], false);
        assert!(small.ticks.iter().all(|t| t.fract() == 0.0), "{:?}", small.ticks);
    }

    /// The PNG's RGB pixels.
    fn pixels(file: &Path) -> Vec<u8> {
        let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(file).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        buf
    }

    #[test]
    fn a_point_is_drawn_at_its_tick() {
        // (10, 10) on linear axes with a tick at 10: the filled marker
        // (radius 5) is centred on the grid line of y = 10, not offset by
        // the title above the plot.
        let dir = temp_dir("at");
        let series = [Series { label: "s".into(), points: vec![(0.0, 0.0), (10.0, 10.0)], spread: vec![] }];
        line_plot(&dir.join("p"), &chart("A title that takes room", &series, &[])).unwrap();
        let buf = pixels(&dir.join("p.png"));
        let (w, h) = (SIZE.0 as usize, SIZE.1 as usize);
        let at = |x: usize, y: usize| -> [u8; 3] { buf[(y * w + x) * 3..][..3].try_into().unwrap() };
        let RGBColor(r, g, b) = COLORS[0];
        let plot_width = (SIZE.0 - Layout::of(&chart("", &series, &[])).legend_width) as usize;
        let blue: Vec<(usize, usize)> =
            (0..h).flat_map(|y| (0..plot_width).map(move |x| (x, y))).filter(|&(x, y)| at(x, y) == [r, g, b]).collect();
        let top = blue.iter().map(|p| p.1).min().unwrap();
        let right = blue.iter().map(|p| p.0).max().unwrap();
        // The grid line of y = 10: the topmost grey row in the column just
        // left of the marker.
        let column = right - 12;
        let grid = (0..h).find(|&y| at(column, y) == [225, 225, 225]).expect("a grid line");
        assert!((top + 5).abs_diff(grid) <= 1, "marker top {top}, grid line of y = 10 at {grid}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_series_has_its_own_dash_and_marker() {
        let styles: Vec<((u32, u32), Marker)> = (0..4).map(|i| (Style::of(i).dash, Style::of(i).marker)).collect();
        for (i, a) in styles.iter().enumerate() {
            for b in &styles[i + 1..] {
                assert!(a.0 != b.0 && a.1 != b.1, "{styles:?}");
            }
        }
    }

    #[test]
    fn the_legend_is_beside_the_data_not_over_it() {
        // Two plots of the same data, one with a long legend: the data's
        // pixels (the plot area) are the same; only the area beside it and
        // the axis scale differ, so the legend covers no data. Checked on
        // the layout: the plot area ends where the legend begins.
        let series = sample();
        let layout = Layout::of(&chart("t", &series, &[]));
        assert!(layout.legend_width >= 150 && layout.legend_width < SIZE.0 / 2);
        let long = vec![Series { label: "x".repeat(40), ..series[0].clone() }];
        assert!(Layout::of(&chart("t", &long, &[])).legend_width > layout.legend_width);
        // And in the picture: nothing but white right of the plot area in
        // the rows below the legend's entries and notes.
        let dir = temp_dir("legend");
        line_plot(&dir.join("l"), &chart("t", &series, &[])).unwrap();
        let buf = pixels(&dir.join("l.png"));
        let left = (SIZE.0 - layout.legend_width) as usize;
        let white = (200..SIZE.1 as usize)
            .all(|y| (left..SIZE.0 as usize).all(|x| buf[(y * SIZE.0 as usize + x) * 3..][..3] == [255, 255, 255]));
        assert!(white, "the legend area has something below its entries");
        fs::remove_dir_all(&dir).unwrap();
    }
}
