//! The PNG chart: throughput, latency percentiles and idle memory, drawn with plotters'
//! bitmap backend. Text uses a TrueType font found on the machine (`BENCH_FONT`, else
//! DejaVu or Liberation Sans); without one the bars are drawn without any text.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::path::Path;

/// One group of bars (e.g. "relay @64") with one value per series.
#[derive(Debug, Clone)]
pub struct Group {
    /// Label under the group.
    pub name: String,
    /// One value per series, in series order.
    pub values: Vec<f64>,
}

/// A panel of grouped bars.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Y axis description.
    pub y_label: String,
    /// Names of the series (legend).
    pub series: Vec<String>,
    /// The groups.
    pub groups: Vec<Group>,
    /// A horizontal target line, if any, with its label.
    pub target: Option<(f64, String)>,
}

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a TrueType font for plotters; false when none is found.
fn register_font() -> bool {
    let from_env = std::env::var("BENCH_FONT").ok();
    let candidates = from_env
        .iter()
        .map(String::as_str)
        .chain(FONT_CANDIDATES.iter().copied());
    for path in candidates {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Draws the panels side by side into a PNG; returns whether text could be drawn.
pub fn draw(path: &Path, title: &str, panels: &[Panel]) -> anyhow::Result<bool> {
    let font = register_font();
    let width = 620 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let root = if font {
        root.titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        root
    };
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel, font).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(font)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    p: &Panel,
    font: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let k = p.series.len().max(1) + 1; // bars per group plus a gap
    let slots = (p.groups.len() * k).max(1) as u32;
    let max = p
        .groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .chain(p.target.iter().map(|t| t.0))
        .fold(0.0f64, f64::max);
    let top = if max > 0.0 { max * 1.2 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if font {
        builder
            .caption(&p.title, ("sans-serif", 17))
            .x_label_area_size(70)
            .y_label_area_size(70);
    }
    let mut chart = builder.build_cartesian_2d((0u32..slots).into_segmented(), 0f64..top)?;
    if font {
        let names: Vec<String> = p.groups.iter().map(|g| g.name.clone()).collect();
        let mid = (p.series.len().max(1) / 2) as u32;
        let kk = k as u32;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slots as usize)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if i % kk == mid => {
                    names.get((i / kk) as usize).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 12))
            .y_desc(p.y_label.as_str())
            .y_label_style(("sans-serif", 12))
            .draw()?;
    }
    for (s, series) in p.series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let bars = p.groups.iter().enumerate().map(move |(g, group)| {
            let x = (g * k + s) as u32;
            let v = group.values.get(s).copied().unwrap_or(0.0);
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(x), 0.0),
                    (SegmentValue::Exact(x + 1), v),
                ],
                color.filled(),
            );
            r.set_margin(0, 0, 2, 2);
            r
        });
        let drawn = chart.draw_series(bars)?;
        if font {
            drawn.label(series.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
            });
        }
        if font {
            let texts = p.groups.iter().enumerate().map(|(g, group)| {
                let x = (g * k + s) as u32;
                let v = group.values.get(s).copied().unwrap_or(0.0);
                let label = if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                };
                Text::new(
                    label,
                    (SegmentValue::Exact(x), v + top * 0.01),
                    ("sans-serif", 10).into_font(),
                )
            });
            chart.draw_series(texts)?;
        }
    }
    if let Some((y, label)) = &p.target {
        let line = LineSeries::new(
            [
                (SegmentValue::Exact(0), *y),
                (SegmentValue::Exact(slots), *y),
            ],
            RED.stroke_width(2),
        );
        let drawn = chart.draw_series(line)?;
        if font {
            drawn
                .label(label.as_str())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], RED.stroke_width(2)));
        }
    }
    if font {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}
