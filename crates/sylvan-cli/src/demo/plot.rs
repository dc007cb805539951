//! `--plot FILE.svg`: throughput and p99 latency over time, faults shaded.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::report::Report;

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the report's timeline to `path`.
pub fn draw(r: &Report, path: &Path) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(300);
    let t_max = r.timeline.last().map_or(1.0, |p| p.t).max(1.0);
    let rps_max = r.timeline.iter().map(|p| p.rps).fold(1.0, f64::max) * 1.15;
    let mut chart = shaded(
        &top,
        r,
        t_max,
        rps_max,
        "sylvan demo: requests/s and errors (faults shaded)",
        "per second",
    )?;
    chart.draw_series(LineSeries::new(
        r.timeline.iter().map(|p| (p.t, p.rps)),
        &BLUE,
    ))?;
    chart.draw_series(LineSeries::new(
        r.timeline.iter().map(|p| (p.t, p.errors as f64)),
        &RED,
    ))?;
    let lat_max = r.timeline.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.15;
    let mut chart = shaded(&bottom, r, t_max, lat_max, "p99 latency (ms)", "ms")?;
    chart.draw_series(LineSeries::new(
        r.timeline.iter().map(|p| (p.t, p.p99_ms)),
        &GREEN,
    ))?;
    root.present()?;
    Ok(())
}

/// A chart with every fault's interval shaded and labelled.
fn shaded<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    r: &Report,
    t_max: f64,
    y_max: f64,
    title: &str,
    y: &str,
) -> Result<Chart<'a, 'b>, Box<dyn Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("seconds").y_desc(y).draw()?;
    for (i, f) in r.faults.iter().enumerate() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(f.start_s, 0.0), (f.end_s, y_max)],
            RGBColor(255, 200, 120).mix(0.35).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            f.name.to_string(),
            // Alternate heights so neighbouring labels don't overlap.
            (f.start_s, y_max * if i % 2 == 0 { 0.95 } else { 0.87 }),
            ("sans-serif", 11),
        )))?;
    }
    Ok(chart)
}
