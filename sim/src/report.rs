//! What a run reports: `summary.json` and the plots.

use std::path::Path;

use plotters::prelude::*;

use crate::crawler::CrawlerSummary;
use crate::model;
use crate::params::{Params, Topology};
use crate::world::{Counts, World};

/// `summary.json`. The first fields are fixed by issue 15 (other code reads them); the rest
/// say what was run and where the memory went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Honest nodes.
    pub nodes: u32,
    /// Protocol minutes.
    pub minutes: u32,
    /// The seed.
    pub seed: u64,
    /// FNV-1a over every frame sent and every dial, in the events' key order, as hex.
    pub trace_hash: String,
    /// Wall time of the simulation proper (setup included, output excluded).
    pub wall_seconds: f64,
    /// The process's peak resident set.
    pub peak_rss_bytes: u64,
    /// Entry i: at protocol minute i, the mean over live (sampled) honest nodes of the share
    /// of the other live honest nodes each knows.
    pub known_fraction: Vec<f64>,
    /// The same from `pex-scale.md` §3.2's model, where one applies (`static`, or churn).
    pub model_known_fraction: Option<Vec<f64>>,
    /// ut_pex frames the honest nodes sent.
    pub frames: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// The largest.
    pub max_frame_bytes: u64,
    /// Dials sent.
    pub dials: u64,
    /// Dials to the victim's IP.
    pub victim_dials: u64,
    /// Victim dials per forged message (0 without attackers).
    pub amplification: f64,
    /// `nodes × minutes / wall_seconds`.
    pub node_minutes_per_second: f64,
    /// Honest nodes whose known set was tracked.
    pub sampled_nodes: u32,
    /// Links open at the end.
    pub links: u64,
    /// Share of a node's connections replaced per minute (measured), the churn model's `r`.
    pub replaced_per_minute: f64,
    /// The churn model's fixed point, where it applies.
    pub model_steady_state: Option<f64>,
    /// Heap bytes at the end, as the counting allocator saw them.
    pub heap_bytes: u64,
    /// Threads the shards ran on.
    pub threads: u32,
    /// CPU seconds (user + system) of each of the process's threads, busiest first (from
    /// procfs; empty where there is none): on an idle machine the wall time is at least the
    /// first, and close to it when the shards' windows balance.
    pub thread_cpu_seconds: Vec<f64>,
    /// The most heap bytes live at any time of the run (the caller measures it); 0 if not
    /// measured.
    pub peak_heap_bytes: u64,
    /// Of those, the nodes' `Swarm`s (as `Swarm::heap_bytes` counts them).
    pub swarm_heap_bytes: u64,
    /// Of those, the nodes' `PeerBook`s: the heap freed by dropping them at the end (the
    /// caller measures it, [`World::release_books`]); 0 if not measured.
    pub book_heap_bytes: u64,
    /// Every counter of the run.
    pub counts: Counts,
    /// The parameters.
    pub params: Params,
    /// The `--crawler` node's curves, flattened in (absent without it).
    #[serde(flatten)]
    pub crawler: Option<CrawlerSummary>,
}

impl Summary {
    /// The summary of a finished `world`; `wall_seconds`, `peak_rss_bytes` and `heap_bytes`
    /// are the caller's measurements.
    pub fn of(world: &World, wall_seconds: f64, peak_rss_bytes: u64, heap_bytes: u64) -> Self {
        let p = world.params();
        let links = world.links_curve.last().copied().unwrap_or(0);
        let minutes = f64::from(p.minutes.max(1));
        let replaced = world.counts.disconnections as f64 / minutes / links.max(1) as f64;
        let (model, steady) = model_of(p, world, replaced);
        Summary {
            nodes: p.nodes,
            minutes: p.minutes,
            seed: p.seed,
            trace_hash: world.trace.hex(),
            wall_seconds,
            peak_rss_bytes,
            known_fraction: world.known_fraction.clone(),
            model_known_fraction: model,
            frames: world.counts.frames,
            bytes: world.counts.bytes,
            max_frame_bytes: world.counts.max_frame_bytes,
            dials: world.counts.dials,
            victim_dials: world.counts.victim_dials,
            amplification: if world.counts.attacker_messages == 0 {
                0.0
            } else {
                world.counts.victim_dials as f64 / world.counts.attacker_messages as f64
            },
            node_minutes_per_second: f64::from(p.nodes) * minutes / wall_seconds.max(1e-9),
            sampled_nodes: world.sampled_nodes(),
            links,
            replaced_per_minute: replaced,
            model_steady_state: steady,
            heap_bytes,
            swarm_heap_bytes: world.nodes().map(|n| n.swarm.heap_bytes() as u64).sum(),
            book_heap_bytes: 0,
            peak_heap_bytes: 0,
            threads: world.threads() as u32,
            thread_cpu_seconds: Vec::new(),
            counts: world.counts,
            params: p.clone(),
            crawler: world.crawler.as_ref().map(|c| c.summary()),
        }
    }
}

/// The model curve: `static` without churn has K₁; churn has the rate equation with the
/// measured replacement share and mean degree; a dialled overlay without churn has none.
fn model_of(p: &Params, world: &World, replaced: f64) -> (Option<Vec<f64>>, Option<f64>) {
    let n = f64::from(p.nodes);
    let c0 = f64::from(ut_pex::MAX_PEERS_PER_MESSAGE as u32);
    let churn = p.session_minutes > 0.0;
    if p.topology == Topology::Static && !churn {
        let d = f64::from(p.degree);
        return (Some(model::static_curve(n, d, c0, p.minutes)), None);
    }
    if !churn {
        return (None, None);
    }
    let links = world.links_curve.last().copied().unwrap_or(0) as f64;
    let d = 2.0 * links / n.max(1.0);
    let a = model::learning_rate(n, d, c0, replaced);
    let f0 = world.known_fraction.first().copied().unwrap_or(0.0);
    let curve = model::churn_curve(f0, a, p.session_minutes, p.minutes);
    (Some(curve), Some(model::steady_state(a, p.session_minutes)))
}

/// `convergence.svg`: known fraction per protocol minute, simulated and modelled.
pub fn plot_convergence(summary: &Summary, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut series = vec![("simulation", summary.known_fraction.clone(), BLUE)];
    if let Some(model) = &summary.model_known_fraction {
        series.push(("model (pex-scale.md §3.2)", model.clone(), RED));
    }
    let top = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().copied())
        .fold(0.0f64, f64::max);
    let caption = format!(
        "PEX: share of the swarm known, {} nodes, degree {}",
        summary.nodes, summary.params.degree
    );
    let curves: Vec<_> = series
        .into_iter()
        .map(|(name, v, c)| (name.to_string(), v, c))
        .collect();
    line_plot(
        path,
        &caption,
        "known fraction",
        (top * 1.1).max(0.01),
        &curves,
    )
}

/// `crawler.svg`: what the `--crawler` node knows, is connected to and sees in its partners'
/// lists, against what the mean node knows, per protocol minute.
pub fn plot_crawler(summary: &Summary, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let Some(c) = &summary.crawler else {
        return Ok(());
    };
    let curves = [
        (
            "crawler knows".to_string(),
            c.crawler_known_fraction.clone(),
            BLUE,
        ),
        (
            "crawler connected".to_string(),
            c.crawler_connected_fraction.clone(),
            RED,
        ),
        (
            "observer coverage".to_string(),
            c.observer_coverage.clone(),
            GREEN,
        ),
        (
            "mean node knows".to_string(),
            summary.known_fraction.clone(),
            BLACK,
        ),
    ];
    let caption = format!(
        "PEX crawler, {} nodes, {:.0} % unreachable",
        summary.nodes,
        100.0 * summary.params.unreachable
    );
    line_plot(path, &caption, "share of live nodes", 1.05, &curves)
}

/// `attack.svg`: the victim's dials, cumulative, per protocol minute.
pub fn plot_attack(world: &World, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let curve: Vec<f64> = world.victim_curve.iter().map(|&v| v as f64).collect();
    let top = curve.iter().copied().fold(1.0f64, f64::max);
    let caption = format!(
        "Dials to the victim, {} attackers, policy {:?}",
        world.params().attackers,
        world.params().policy
    );
    let curves = [("victim dials (cumulative)".to_string(), curve, RED)];
    line_plot(path, &caption, "dials", top * 1.1, &curves)
}

fn line_plot(
    path: &Path,
    caption: &str,
    y_label: &str,
    y_max: f64,
    curves: &[(String, Vec<f64>, RGBColor)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = curves
        .iter()
        .map(|(_, v, _)| v.len())
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max as f64, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("protocol minute")
        .y_desc(y_label)
        .draw()?;
    for (name, values, color) in curves {
        let color = *color;
        let points = values.iter().enumerate().map(|(i, &v)| (i as f64, v));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
