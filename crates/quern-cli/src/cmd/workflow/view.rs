//! The live view of a followed workflow, on stderr.
//!
//! On a terminal: one line per execution level with each task and a mark for its state,
//! then a progress bar over all of the workflow's jobs (tasks, `for_each` instances,
//! compensations), redrawn in place. Elsewhere (a pipe, a CI log): one line per task state
//! change, with the time since the run started. With `--json` nothing is drawn.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use quern::JobState;
use quern::workflow::{WorkflowPlan, WorkflowStatus};

use super::inspect::counts_text;

/// A short mark for a task's state.
fn mark(state: Option<JobState>) -> &'static str {
    match state {
        None => "?",
        Some(JobState::Scheduled | JobState::Queued | JobState::Blocked) => "·",
        Some(JobState::Running) => "▶",
        Some(JobState::Succeeded) => "✓",
        Some(JobState::Dead) => "✗",
        Some(JobState::Cancelled) => "⊘",
        Some(JobState::Skipped) => "↷",
    }
}

struct Live {
    /// Owns the shared drawing of the lines below.
    _multi: MultiProgress,
    levels: Vec<ProgressBar>,
    bar: ProgressBar,
}

/// See the module docs.
pub struct View {
    levels: Vec<Vec<String>>,
    live: Option<Live>,
    /// Print state changes as lines (not a terminal, not JSON).
    lines: bool,
    last: HashMap<String, Option<JobState>>,
    started: Instant,
}

impl View {
    /// A view of the workflow `id` with `plan`; `enabled` is false with `--json`.
    pub fn new(plan: &WorkflowPlan, id: &str, enabled: bool) -> View {
        let levels: Vec<Vec<String>> = plan
            .levels()
            .into_iter()
            .map(|l| l.into_iter().map(str::to_owned).collect())
            .collect();
        let terminal = enabled && std::io::stderr().is_terminal();
        let live = terminal.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(ProgressStyle::with_template("{msg}").expect("template"));
            header.set_message(format!("workflow {} ({id})", plan.name()));
            let line_style = ProgressStyle::with_template("  {msg}").expect("template");
            let bars: Vec<ProgressBar> = levels
                .iter()
                .map(|_| {
                    let pb = multi.add(ProgressBar::new_spinner());
                    pb.set_style(line_style.clone());
                    pb
                })
                .collect();
            let bar = multi.add(ProgressBar::new(1));
            bar.set_style(
                ProgressStyle::with_template(
                    "  [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} jobs  {msg}",
                )
                .expect("template")
                .progress_chars("█▉▊▋▌▍▎▏ "),
            );
            Live {
                _multi: multi,
                levels: {
                    let mut v = vec![header];
                    v.extend(bars);
                    v
                },
                bar,
            }
        });
        View {
            levels,
            live,
            lines: enabled && !terminal,
            last: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Shows the latest status.
    pub fn update(&mut self, st: &WorkflowStatus) {
        if let Some(live) = &self.live {
            for (l, ids) in self.levels.iter().enumerate() {
                let tasks: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        let t = st.task(id);
                        let state = t.and_then(|t| t.state);
                        match t.and_then(|t| t.instances) {
                            Some(n) => format!("{} {id} ({n})", mark(state)),
                            None => format!("{} {id}", mark(state)),
                        }
                    })
                    .collect();
                live.levels[l + 1].set_message(format!("level {l}  {}", tasks.join("  ")));
            }
            let c = &st.counts;
            let done = c.succeeded + c.dead + c.cancelled + c.skipped;
            live.bar.set_length(c.total().max(1));
            live.bar.set_position(done);
            live.bar
                .set_message(format!("{} · {}", st.record.state, counts_text(c)));
        }
        if self.lines {
            for t in &st.tasks {
                let before = self.last.insert(t.id.clone(), t.state);
                if before == Some(t.state) || t.state.is_none() {
                    continue;
                }
                let state = t.state.map(|s| s.to_string()).unwrap_or_default();
                let note = match (t.state, &t.last_error) {
                    (Some(JobState::Dead | JobState::Skipped | JobState::Cancelled), Some(e)) => {
                        format!(": {e}")
                    }
                    _ => String::new(),
                };
                crate::log::say!(
                    "[{:>6.2}s] level {} task {}: {state}{note}",
                    self.started.elapsed().as_secs_f64(),
                    t.level,
                    t.id
                );
            }
            for c in &st.compensations {
                let key = format!("{}\u{0}{}", c.job_id, c.task);
                if self.last.insert(key, c.state) == Some(c.state) || c.state.is_none() {
                    continue;
                }
                let which = match c.index {
                    Some(i) => format!("{} (instance {i})", c.task),
                    None => c.task.clone(),
                };
                crate::log::say!(
                    "[{:>6.2}s] compensation of {which}: {}",
                    self.started.elapsed().as_secs_f64(),
                    c.state.map(|s| s.to_string()).unwrap_or_default()
                );
            }
        }
    }

    /// Leaves the last drawing on screen.
    pub fn finish(&mut self) {
        if let Some(live) = self.live.take() {
            for pb in &live.levels {
                pb.finish();
            }
            live.bar.finish();
        }
    }
}
