//! A small SVG line chart for the examples that plot what they measured:
//! one or more panels stacked over a shared x axis, each with its own
//! y scale. No dependencies; the output opens in any browser.

use std::fmt::Write as _;

/// One line on a panel.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) colour: &'static str,
    pub(crate) dashed: bool,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One plot area with its own y axis.
pub(crate) struct Panel {
    pub(crate) y_label: String,
    pub(crate) series: Vec<Series>,
}

/// The whole figure.
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) x_label: String,
    /// Labelled ticks on the x axis; empty for none.
    pub(crate) x_ticks: Vec<(f64, String)>,
    pub(crate) panels: Vec<Panel>,
}

const WIDTH: f64 = 680.0;
const PANEL_HEIGHT: f64 = 260.0;
const PAD: f64 = 56.0;

impl Chart {
    /// The chart as an SVG document.
    pub(crate) fn to_svg(&self) -> String {
        let points = || {
            self.panels
                .iter()
                .flat_map(|p| &p.series)
                .flat_map(|s| &s.points)
        };
        let x_min = points().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let x_span = if x_max > x_min { x_max - x_min } else { 1.0 };
        let x = |v: f64| PAD + (v - x_min) / x_span * (WIDTH - 2.0 * PAD);
        let height = 40.0 + PANEL_HEIGHT * self.panels.len() as f64 + 30.0;

        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{PAD}" y="24" font-size="14">{}</text>"#,
            escape(&self.title)
        );
        for (index, panel) in self.panels.iter().enumerate() {
            let top = 40.0 + PANEL_HEIGHT * index as f64;
            let bottom = top + PANEL_HEIGHT - 40.0;
            let y_max = panel
                .series
                .iter()
                .flat_map(|s| &s.points)
                .map(|p| p.1)
                .fold(0.0, f64::max)
                .max(1e-9)
                * 1.1;
            let y = |v: f64| bottom - v / y_max * (bottom - top);
            let _ = writeln!(
                out,
                r#"<path d="M{PAD},{top} V{bottom} H{}" fill="none" stroke="black"/>"#,
                WIDTH - PAD
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text><text x="{}" y="{bottom}" text-anchor="end">0</text>"#,
                PAD - 4.0,
                y(y_max / 1.1) + 4.0,
                number(y_max / 1.1),
                PAD - 4.0,
            );
            let middle = (top + bottom) / 2.0;
            let _ = writeln!(
                out,
                r#"<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle">{}</text>"#,
                escape(&panel.y_label)
            );
            for (rank, series) in panel.series.iter().enumerate() {
                let path: Vec<String> = series
                    .points
                    .iter()
                    .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
                    .collect();
                let dash = if series.dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                    series.colour,
                    path.join(" ")
                );
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" fill="{}" text-anchor="end">{}</text>"#,
                    WIDTH - PAD,
                    top + 12.0 + 16.0 * rank as f64,
                    series.colour,
                    escape(&series.name)
                );
            }
            if index + 1 == self.panels.len() {
                for (tick, label) in &self.x_ticks {
                    let _ = writeln!(
                        out,
                        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                        x(*tick),
                        bottom + 16.0,
                        escape(label)
                    );
                }
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    WIDTH / 2.0,
                    bottom + 34.0,
                    escape(&self.x_label)
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
