//! `sylvan top ADDR`: a live terminal view of a process's admin endpoint
//! (`--admin`, or `sylvan::debug::admin::serve`): its hubs, and its green
//! threads sortable by time parked, state, name or id, filtered by name,
//! refreshed every second.
//!
//! Keys: `q` (or Esc, Ctrl-C) quits; `s` changes the sort; `/` starts a
//! name filter (Enter keeps it, Esc clears it); `r` refreshes now.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use serde_json::Value;

use crate::common::{parse_duration, usage};

/// Flags of `sylvan top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The admin endpoint, IP:PORT (what `--admin` printed).
    pub addr: String,
    /// Bearer token, if the endpoint requires one.
    #[arg(long)]
    pub token: Option<String>,
    /// Time between refreshes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// How the green threads are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Parked,
    State,
    Name,
    Id,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Parked => Sort::State,
            Sort::State => Sort::Name,
            Sort::Name => Sort::Id,
            Sort::Id => Sort::Parked,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Sort::Parked => "time parked",
            Sort::State => "state",
            Sort::Name => "name",
            Sort::Id => "id",
        }
    }
}

/// One green thread row.
#[derive(Debug, Clone)]
struct Green {
    hub: u64,
    id: u64,
    name: String,
    state: String,
    parked_for: Option<f64>,
    at: String,
    deadline: Option<f64>,
}

/// What the screen shows.
struct View {
    addr: SocketAddr,
    sort: Sort,
    filter: String,
    editing: bool,
    snap: Option<Value>,
    prev: Option<(Value, Instant)>,
    error: Option<String>,
    updated: Option<Instant>,
}

/// Runs the view until `q`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr: SocketAddr = args
        .addr
        .parse()
        .map_err(|_| usage(format!("ADDR {:?} is not an IP:PORT address", args.addr)))?;
    if args.interval.is_zero() {
        return Err(usage("--interval must be more than 0"));
    }
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let r = ui(&mut terminal, addr, args.token.as_deref(), args.interval);
    ratatui::restore();
    r.map(|()| ExitCode::SUCCESS)
}

fn ui(
    terminal: &mut ratatui::DefaultTerminal,
    addr: SocketAddr,
    token: Option<&str>,
    interval: Duration,
) -> anyhow::Result<()> {
    let mut v = View {
        addr,
        sort: Sort::Parked,
        filter: String::new(),
        editing: false,
        snap: None,
        prev: None,
        error: None,
        updated: None,
    };
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            match fetch(addr, token) {
                Ok(s) => {
                    if let Some(old) = v.snap.take() {
                        v.prev = Some((old, v.updated.unwrap_or_else(Instant::now)));
                    }
                    v.snap = Some(s);
                    v.error = None;
                    v.updated = Some(Instant::now());
                }
                Err(e) => v.error = Some(format!("{e:#}")),
            }
            next = Instant::now() + interval;
        }
        terminal.draw(|f| draw(f, &v))?;
        let wait = next.saturating_duration_since(Instant::now());
        if !event::poll(wait)? {
            continue;
        }
        let Event::Key(k) = event::read()? else {
            continue;
        };
        if k.kind != KeyEventKind::Press {
            continue;
        }
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Ok(());
        }
        if v.editing {
            match k.code {
                KeyCode::Enter => v.editing = false,
                KeyCode::Esc => {
                    v.editing = false;
                    v.filter.clear();
                }
                KeyCode::Backspace => {
                    v.filter.pop();
                }
                KeyCode::Char(c) => v.filter.push(c),
                _ => {}
            }
            continue;
        }
        match k.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
            KeyCode::Char('s') => v.sort = v.sort.next(),
            KeyCode::Char('/') => {
                v.editing = true;
                v.filter.clear();
            }
            KeyCode::Char('r') => next = Instant::now(),
            _ => {}
        }
    }
}

/// `GET /threads?format=json` from the admin endpoint.
fn fetch(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Value> {
    let mut c = sylvan::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        c,
        "GET /threads?format=json HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no HTTP response from the admin endpoint")?;
    let status = head.get(9..12).unwrap_or("");
    if status != "200" {
        anyhow::bail!(
            "the admin endpoint answered {}",
            head.lines().next().unwrap_or("")
        );
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    serde_json::from_str(&body).context("the admin endpoint's JSON")
}

/// Decodes a chunked body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn dur(s: Option<f64>) -> String {
    match s {
        None => String::new(),
        Some(s) if s >= 60.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) if s >= 1.0 => format!("{s:.2}s"),
        Some(s) if s >= 0.001 => format!("{}ms", (s * 1000.0) as u64),
        Some(s) => format!("{}µs", (s * 1e6) as u64),
    }
}

fn greens(snap: &Value) -> Vec<Green> {
    let mut out = Vec::new();
    for h in snap["hubs"].as_array().into_iter().flatten() {
        let hub = h["id"].as_u64().unwrap_or(0);
        for g in h["green_threads"].as_array().into_iter().flatten() {
            let root = g["root"].as_bool().unwrap_or(false);
            out.push(Green {
                hub,
                id: g["id"].as_u64().unwrap_or(0),
                name: if root {
                    format!("(root: {})", g["name"].as_str().unwrap_or(""))
                } else {
                    g["name"].as_str().unwrap_or("").to_string()
                },
                state: g["state"].as_str().unwrap_or("?").to_string(),
                parked_for: g["parked_for"].as_f64(),
                at: g["parked_at"].as_str().unwrap_or("").to_string(),
                deadline: g["deadline"].as_f64(),
            });
        }
    }
    out
}

fn draw(f: &mut ratatui::Frame<'_>, v: &View) {
    let [head, hubs, threads, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(
            v.snap
                .as_ref()
                .and_then(|s| s["hubs"].as_array())
                .map_or(1, |h| h.len() as u16)
                + 3,
        ),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let mut title = format!("sylvan top — {}", v.addr);
    if let Some(s) = &v.snap {
        title.push_str(&format!(
            " — pid {} — {} hub(s) — tpool {} thread(s), {} busy, {} queued — {} open fds",
            s["pid"],
            s["hubs"].as_array().map_or(0, Vec::len),
            s["tpool"]["threads"],
            s["tpool"]["busy"],
            s["tpool"]["queued"],
            s["descriptors"].as_array().map_or(0, Vec::len)
        ));
    }
    let status = match (&v.error, v.updated) {
        (Some(e), _) => format!("error: {e} (retrying)"),
        (None, Some(t)) => format!("updated {:.1}s ago", t.elapsed().as_secs_f64()),
        (None, None) => "connecting…".to_string(),
    };
    let filter = if v.editing {
        format!("filter: {}▏", v.filter)
    } else if v.filter.is_empty() {
        "filter: (none)".to_string()
    } else {
        format!("filter: {}", v.filter)
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::styled(title, Style::new().add_modifier(Modifier::BOLD)),
            Line::raw(format!("sort: {} — {filter} — {status}", v.sort.label())),
        ]),
        head,
    );

    let bold = Style::new().add_modifier(Modifier::BOLD);
    let hub_rows: Vec<Row<'_>> = v
        .snap
        .as_ref()
        .and_then(|s| s["hubs"].as_array())
        .into_iter()
        .flatten()
        .map(|h| {
            let count = |st: &str| {
                h["green_threads"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|g| g["state"] == st && g["root"] != true)
                    .count()
                    .to_string()
            };
            let sw = h["counters"]["switches"].as_u64().unwrap_or(0);
            let rate = v
                .prev
                .as_ref()
                .and_then(|(p, at)| {
                    let old = p["hubs"].as_array()?.iter().find(|o| o["id"] == h["id"])?;
                    let d = sw.saturating_sub(old["counters"]["switches"].as_u64()?);
                    let secs = v.updated?.duration_since(*at).as_secs_f64();
                    (secs > 0.0).then(|| format!("{:.0}", d as f64 / secs))
                })
                .unwrap_or_default();
            Row::new(vec![
                h["id"].to_string(),
                h["thread"].as_str().unwrap_or("").to_string(),
                count("running"),
                count("ready"),
                count("parked"),
                count("finished"),
                dur(h["lag_now"].as_f64().filter(|&s| s > 0.0)),
                h["timers"].to_string(),
                h["io_sources"].to_string(),
                rate,
                h["counters"]["spawned"].to_string(),
                h["counters"]["panicked"].to_string(),
                h["counters"]["watchdog_warnings"].to_string(),
            ])
        })
        .collect();
    let hub_table = Table::new(
        hub_rows,
        [
            Constraint::Length(4),
            Constraint::Length(18),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec![
            "hub",
            "thread",
            "running",
            "ready",
            "parked",
            "unjoined",
            "lag now",
            "timers",
            "I/O",
            "switches/s",
            "spawned",
            "panicked",
            "watchdog",
        ])
        .style(bold),
    )
    .block(Block::new().borders(Borders::TOP).title(" hubs "));
    f.render_widget(hub_table, hubs);

    let mut list = v.snap.as_ref().map(greens).unwrap_or_default();
    if !v.filter.is_empty() {
        let needle = v.filter.to_lowercase();
        list.retain(|g| g.name.to_lowercase().contains(&needle));
    }
    let rank = |s: &str| match s {
        "running" => 0,
        "ready" => 1,
        "parked" => 2,
        _ => 3,
    };
    match v.sort {
        Sort::Parked => list.sort_by(|a, b| {
            b.parked_for
                .unwrap_or(-1.0)
                .total_cmp(&a.parked_for.unwrap_or(-1.0))
                .then(a.id.cmp(&b.id))
        }),
        Sort::State => {
            list.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then(a.id.cmp(&b.id)))
        }
        Sort::Name => list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        Sort::Id => list.sort_by_key(|g| (g.hub, g.id)),
    }
    let total = list.len();
    let rows: Vec<Row<'_>> = list
        .into_iter()
        .map(|g| {
            let color = match g.state.as_str() {
                "running" => Color::Green,
                "ready" => Color::Yellow,
                "finished" => Color::DarkGray,
                _ => Color::Reset,
            };
            Row::new(vec![
                Cell::from(g.hub.to_string()),
                Cell::from(g.id.to_string()),
                Cell::from(g.name),
                Cell::from(g.state).style(Style::new().fg(color)),
                Cell::from(dur(g.parked_for)),
                Cell::from(dur(g.deadline)),
                Cell::from(g.at),
            ])
        })
        .collect();
    let thread_table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(22),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Min(20),
        ],
    )
    .header(
        Row::new(vec![
            "hub",
            "id",
            "name",
            "state",
            "parked",
            "deadline",
            "parked at",
        ])
        .style(bold),
    )
    .block(
        Block::new()
            .borders(Borders::TOP)
            .title(format!(" green threads ({total}) ")),
    );
    f.render_widget(thread_table, threads);
    f.render_widget(
        Paragraph::new("q quit   s sort   / filter by name   r refresh"),
        foot,
    );
}
