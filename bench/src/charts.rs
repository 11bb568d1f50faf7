//! PNG charts of a run, drawn with `plotters`: throughput, latency
//! percentiles, connection scaling and route scaling.
//!
//! Text is rendered with a system TrueType font (DejaVu Sans, from Debian's
//! `fonts-dejavu-core`) loaded at run time, so the crate needs no C font
//! library to build. Without such a font no chart is drawn and the report
//! says so.

use crate::error::BenchError;
use crate::openloop::PERCENTILES;
use crate::results::Results;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// Fonts tried, first found wins.
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const COLORS: [RGBColor; 5] = [
    RGBColor(120, 120, 120),
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One named series of y values at the chart's x positions.
type Series = (String, Vec<f64>);

/// Draws every chart the results have data for; returns the file names.
///
/// # Errors
///
/// When no font is found or a chart cannot be drawn or written.
pub fn draw(r: &Results, out: &Path) -> Result<Vec<String>, BenchError> {
    font()?;
    let mut files = Vec::new();
    if let Some(t) = &r.throughput {
        let bodies: Vec<String> = crate::scenarios::throughput::BODIES
            .iter()
            .map(|b| b.0.to_string())
            .collect();
        let mut series: Vec<Series> = Vec::new();
        for row in &t.rows {
            match series.iter_mut().find(|s| s.0 == row.target.name()) {
                Some(s) => s.1.push(row.median),
                None => series.push((row.target.name().into(), vec![row.median])),
            }
        }
        let title = format!("Throughput, {} connections (median rps)", t.connections);
        files.push(chart(
            out,
            "throughput.png",
            &title,
            &bodies,
            "requests per second",
            &series,
            true,
        )?);
    }
    if let Some(l) = &r.latency {
        let labels: Vec<String> = PERCENTILES.iter().map(|p| format!("p{p}")).collect();
        let series: Vec<Series> = l
            .rows
            .iter()
            .map(|row| {
                (
                    row.target.name().into(),
                    PERCENTILES.iter().map(|&p| row.at(p)).collect(),
                )
            })
            .collect();
        let title = format!("Latency at {:.0} rps, open loop", l.rate);
        files.push(chart(
            out,
            "latency.png",
            &title,
            &labels,
            "latency µs",
            &series,
            false,
        )?);
    }
    if let Some(s) = &r.scaling {
        let labels: Vec<String> = s
            .curves
            .first()
            .map(|c| c.points.iter().map(|p| p.0.to_string()).collect())
            .unwrap_or_default();
        let series: Vec<Series> = s
            .curves
            .iter()
            .map(|c| {
                (
                    c.target.name().into(),
                    c.points.iter().map(|p| p.1).collect(),
                )
            })
            .collect();
        files.push(chart(
            out,
            "scaling.png",
            "Connection scaling (median rps)",
            &labels,
            "requests per second",
            &series,
            false,
        )?);
    }
    if let Some(rt) = &r.routes {
        let labels: Vec<String> = rt.memory.iter().map(|m| m.0.to_string()).collect();
        let series = vec![(
            "tollgate data plane".to_string(),
            rt.memory.iter().map(|m| m.1 as f64 / 1e6).collect(),
        )];
        files.push(chart(
            out,
            "routes.png",
            "Data-plane memory by HTTPRoute count",
            &labels,
            "resident MB",
            &series,
            false,
        )?);
    }
    Ok(files)
}

fn font() -> Result<(), BenchError> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let ok = *LOADED.get_or_init(|| {
        FONTS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    });
    if ok {
        Ok(())
    } else {
        Err(BenchError::Chart {
            chart: "charts".into(),
            detail: format!("no font found at {FONTS:?}"),
        })
    }
}

/// A chart with categorical x positions: grouped bars when `bars`, else lines.
fn chart(
    out: &Path,
    file: &str,
    title: &str,
    labels: &[String],
    y_label: &str,
    series: &[Series],
    bars: bool,
) -> Result<String, BenchError> {
    let path = out.join(file);
    let err = |e: &dyn std::fmt::Display| BenchError::Chart {
        chart: file.into(),
        detail: e.to_string(),
    };
    let root = BitMapBackend::new(&path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let top = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let n = labels.len().max(1) as f64;
    let mut ctx = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)
        .map_err(|e| err(&e))?;
    let names = labels.to_vec();
    ctx.configure_mesh()
        .x_labels(labels.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .disable_x_mesh()
        .draw()
        .map_err(|e| err(&e))?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let legend = color.filled();
        if bars {
            let offset = -0.4 + width * k as f64;
            let rects = values.iter().enumerate().map(|(i, v)| {
                let x = i as f64 + offset;
                Rectangle::new([(x, 0.0), (x + width * 0.95, *v)], color.filled())
            });
            ctx.draw_series(rects)
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], legend));
        } else {
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, *v))
                .collect();
            ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], legend));
            ctx.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(file.to_string())
}
