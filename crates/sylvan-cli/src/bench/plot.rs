//! `--plot FILE.svg`: throughput (top) and p50/p99 latency (bottom) over
//! time, with plotters' SVG backend (no fonts or bitmaps needed).

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

/// Draws `r`'s timeline to `path`.
pub fn draw(r: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(300);
    let t_max = r.timeline.last().map_or(1.0, |p| p.t).max(1e-3);

    let rps_max = r
        .timeline
        .iter()
        .map(|p| p.rps)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("sylvan bench {} {}: requests/s", r.mode, r.target),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..rps_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("req/s")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            r.timeline.iter().map(|p| (p.t, p.rps)),
            &BLUE,
        ))?
        .label("requests/s")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    if r.timeline.iter().any(|p| p.errors > 0) {
        let width = r.timeline.first().map_or(1.0, |p| p.t);
        chart
            .draw_series(LineSeries::new(
                r.timeline.iter().map(|p| (p.t, p.errors as f64 / width)),
                &RED,
            ))?
            .label("errors/s")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let lat_max = r
        .timeline
        .iter()
        .map(|p| p.p99_us)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("latency (µs)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..lat_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("µs")
        .draw()?;
    let live = || r.timeline.iter().filter(|p| p.requests > 0);
    chart
        .draw_series(LineSeries::new(live().map(|p| (p.t, p.p50_us)), &GREEN))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
    chart
        .draw_series(LineSeries::new(live().map(|p| (p.t, p.p99_us)), &MAGENTA))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MAGENTA));
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
