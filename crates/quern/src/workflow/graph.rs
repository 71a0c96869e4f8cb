//! Drawing a workflow: mermaid, Graphviz dot, or plain text with execution levels.
//!
//! Output is deterministic: tasks in topological order (ties by id), edges in the order of
//! their target task, then as `depends_on` lists them. A status per task (from a running
//! workflow) can be added to each node.

use std::fmt::Write as _;
use std::str::FromStr;

use super::plan::{PlannedTask, WorkflowPlan};
use crate::model::Trigger;

/// An output format for `quern workflow graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    /// A mermaid `flowchart` (renders on GitHub and in other Markdown viewers).
    Mermaid,
    /// Graphviz dot.
    Dot,
    /// Levels and tasks as plain text.
    Text,
}

impl FromStr for GraphFormat {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mermaid" => Ok(GraphFormat::Mermaid),
            "dot" | "graphviz" => Ok(GraphFormat::Dot),
            "text" | "txt" => Ok(GraphFormat::Text),
            _ => Err(crate::Error::InvalidArgument(format!(
                "{s:?} is not a graph format (use mermaid, dot or text)"
            ))),
        }
    }
}

/// Renders the plan.
pub fn render(plan: &WorkflowPlan, format: GraphFormat) -> String {
    render_with_status(plan, format, &|_| None)
}

/// Renders the plan with a status (such as `running` or `succeeded`) next to each task
/// that `status` knows.
pub fn render_with_status(
    plan: &WorkflowPlan,
    format: GraphFormat,
    status: &dyn Fn(&str) -> Option<String>,
) -> String {
    match format {
        GraphFormat::Mermaid => mermaid(plan, status),
        GraphFormat::Dot => dot(plan, status),
        GraphFormat::Text => text(plan, status),
    }
}

/// Short markers for what makes a task special.
fn markers(t: &PlannedTask) -> Vec<String> {
    let mut m = Vec::new();
    if t.for_each.is_some() {
        m.push("for_each".to_owned());
    }
    if t.condition.is_some() {
        m.push("when".to_owned());
    }
    if t.trigger != Trigger::AllSuccess {
        m.push(format!("trigger {}", t.trigger.as_str()));
    }
    if let Some(c) = &t.compensate {
        m.push(format!("compensate {}", c.kind));
    }
    m
}

/// Edges as (dependency position, task position).
fn edges(plan: &WorkflowPlan) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (k, t) in plan.tasks().iter().enumerate() {
        for dep in &t.depends_on {
            if let Some(d) = plan.position(dep) {
                out.push((d, k));
            }
        }
    }
    out
}

fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            _ => out.push(c),
        }
    }
    out
}

fn mermaid(plan: &WorkflowPlan, status: &dyn Fn(&str) -> Option<String>) -> String {
    let mut s = String::from("flowchart TD\n");
    let mut classes: Vec<(String, usize)> = Vec::new();
    for (k, t) in plan.tasks().iter().enumerate() {
        let mut label = format!(
            "{}<br/>{}",
            mermaid_escape(&t.id),
            mermaid_escape(&t.job.kind)
        );
        let m = markers(t);
        if !m.is_empty() {
            let _ = write!(label, "<br/><i>{}</i>", mermaid_escape(&m.join(", ")));
        }
        if let Some(st) = status(&t.id) {
            let _ = write!(label, "<br/><b>{}</b>", mermaid_escape(&st));
            classes.push((class_name(&st), k));
        }
        let _ = writeln!(s, "  n{k}[\"{label}\"]");
    }
    for (d, k) in edges(plan) {
        let _ = writeln!(s, "  n{d} --> n{k}");
    }
    if !classes.is_empty() {
        let mut names: Vec<&str> = classes.iter().map(|(c, _)| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let _ = writeln!(s, "  classDef {name} {}", state_style(name));
        }
        for (c, k) in &classes {
            let _ = writeln!(s, "  class n{k} {c}");
        }
    }
    s
}

/// A class name safe for mermaid from a status.
fn class_name(status: &str) -> String {
    let c: String = status
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("st_{c}")
}

fn state_style(class: &str) -> &'static str {
    match class.trim_start_matches("st_") {
        "succeeded" | "compensated" => "fill:#d4f7d4,stroke:#2e7d32",
        "running" => "fill:#d6e9ff,stroke:#1565c0",
        "dead" | "failed" => "fill:#ffd6d6,stroke:#c62828",
        "skipped" | "cancelled" => "fill:#eeeeee,stroke:#757575",
        _ => "fill:#fff8d6,stroke:#9e9d24",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(plan: &WorkflowPlan, status: &dyn Fn(&str) -> Option<String>) -> String {
    let mut s = format!("digraph \"{}\" {{\n", dot_escape(plan.name()));
    s.push_str("  rankdir=TB;\n  node [shape=box, style=rounded];\n");
    for t in plan.tasks() {
        let mut label = format!("{}\\n{}", dot_escape(&t.id), dot_escape(&t.job.kind));
        let m = markers(t);
        if !m.is_empty() {
            let _ = write!(label, "\\n[{}]", dot_escape(&m.join(", ")));
        }
        if let Some(st) = status(&t.id) {
            let _ = write!(label, "\\n{}", dot_escape(&st));
        }
        let _ = writeln!(s, "  \"{}\" [label=\"{label}\"];", dot_escape(&t.id));
    }
    for (d, k) in edges(plan) {
        let _ = writeln!(
            s,
            "  \"{}\" -> \"{}\";",
            dot_escape(&plan.tasks()[d].id),
            dot_escape(&plan.tasks()[k].id)
        );
    }
    for level in plan.levels() {
        if level.len() > 1 {
            let names: Vec<String> = level
                .iter()
                .map(|id| format!("\"{}\";", dot_escape(id)))
                .collect();
            let _ = writeln!(s, "  {{ rank=same; {} }}", names.join(" "));
        }
    }
    s.push_str("}\n");
    s
}

fn text(plan: &WorkflowPlan, status: &dyn Fn(&str) -> Option<String>) -> String {
    let levels = plan.levels();
    let n = plan.tasks().len();
    let mut s = format!(
        "workflow {}: {n} task{}, {} level{}\n",
        plan.name(),
        if n == 1 { "" } else { "s" },
        levels.len(),
        if levels.len() == 1 { "" } else { "s" }
    );
    for (l, ids) in levels.iter().enumerate() {
        let _ = writeln!(s, "level {l}: {}", ids.join(", "));
    }
    s.push('\n');
    for t in plan.tasks() {
        let _ = write!(s, "{} ({})", t.id, t.job.kind);
        if !t.depends_on.is_empty() {
            let _ = write!(s, " <- {}", t.depends_on.join(", "));
        }
        let m = markers(t);
        if !m.is_empty() {
            let _ = write!(s, " [{}]", m.join("; "));
        }
        if let Some(st) = status(&t.id) {
            let _ = write!(s, ": {st}");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::SourceFormat;

    const ETL: &str = r#"
name: etl
tasks:
  - {id: fetch_data, kind: shell}
  - {id: validate_data, kind: shell, depends_on: [fetch_data]}
  - {id: clean_data, kind: shell, depends_on: [validate_data]}
  - {id: generate_report, kind: shell, depends_on: [validate_data], when: "true"}
  - {id: process_data, kind: shell, depends_on: [clean_data]}
  - {id: final_output, kind: shell, depends_on: [process_data, generate_report], trigger: all_done}
"#;

    fn plan() -> WorkflowPlan {
        WorkflowPlan::load(ETL, SourceFormat::Yaml, &[]).unwrap()
    }

    #[test]
    fn text_shows_levels() {
        let want = "\
workflow etl: 6 tasks, 5 levels
level 0: fetch_data
level 1: validate_data
level 2: clean_data, generate_report
level 3: process_data
level 4: final_output

fetch_data (shell)
validate_data (shell) <- fetch_data
clean_data (shell) <- validate_data
generate_report (shell) <- validate_data [when]
process_data (shell) <- clean_data
final_output (shell) <- process_data, generate_report [trigger all_done]
";
        assert_eq!(render(&plan(), GraphFormat::Text), want);
    }

    #[test]
    fn mermaid_is_deterministic() {
        let want = "\
flowchart TD
  n0[\"fetch_data<br/>shell\"]
  n1[\"validate_data<br/>shell\"]
  n2[\"clean_data<br/>shell\"]
  n3[\"generate_report<br/>shell<br/><i>when</i>\"]
  n4[\"process_data<br/>shell\"]
  n5[\"final_output<br/>shell<br/><i>trigger all_done</i>\"]
  n0 --> n1
  n1 --> n2
  n1 --> n3
  n2 --> n4
  n4 --> n5
  n3 --> n5
";
        assert_eq!(render(&plan(), GraphFormat::Mermaid), want);
        assert_eq!(render(&plan(), GraphFormat::Mermaid), want);
    }

    #[test]
    fn dot_groups_levels() {
        let out = render(&plan(), GraphFormat::Dot);
        assert!(out.starts_with("digraph \"etl\" {\n"), "{out}");
        assert!(
            out.contains("  \"fetch_data\" -> \"validate_data\";\n"),
            "{out}"
        );
        assert!(
            out.contains("  { rank=same; \"clean_data\"; \"generate_report\"; }\n"),
            "{out}"
        );
        assert!(out.ends_with("}\n"));
        assert_eq!(out.matches(" -> ").count(), 6);
    }

    #[test]
    fn statuses_are_shown() {
        let st = |id: &str| (id == "fetch_data").then(|| "succeeded".to_owned());
        let m = render_with_status(&plan(), GraphFormat::Mermaid, &st);
        assert!(
            m.contains("n0[\"fetch_data<br/>shell<br/><b>succeeded</b>\"]"),
            "{m}"
        );
        assert!(
            m.contains(
                "  classDef st_succeeded fill:#d4f7d4,stroke:#2e7d32\n  class n0 st_succeeded\n"
            ),
            "{m}"
        );
        let t = render_with_status(&plan(), GraphFormat::Text, &st);
        assert!(t.contains("fetch_data (shell): succeeded\n"), "{t}");
        let d = render_with_status(&plan(), GraphFormat::Dot, &st);
        assert!(
            d.contains("label=\"fetch_data\\nshell\\nsucceeded\""),
            "{d}"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!(
            "Mermaid".parse::<GraphFormat>().unwrap(),
            GraphFormat::Mermaid
        );
        assert_eq!("dot".parse::<GraphFormat>().unwrap(), GraphFormat::Dot);
        assert_eq!("text".parse::<GraphFormat>().unwrap(), GraphFormat::Text);
        assert!("svg".parse::<GraphFormat>().is_err());
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(mermaid_escape("a\"<b>#"), "a#quot;#lt;b#gt;#35;");
        assert_eq!(dot_escape("a\"b\\"), "a\\\"b\\\\");
    }
}
