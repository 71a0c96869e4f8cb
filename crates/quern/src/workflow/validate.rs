//! The checks that turn a parsed workflow into a [`WorkflowPlan`], or into every error it
//! has: ids, dependencies, cycles, templates, conditions and references. Errors name the task
//! and the line, found through the position-aware source tree (see `source.rs`). A workflow
//! without errors is handed, with what the checks parsed ([`TaskParts`]), to `build.rs`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::build::{TaskParts, build_plan};
use super::condition::Condition;
use super::dag::Dag;
use super::error::{ValidationError, ValidationErrorKind as K, ValidationErrors};
use super::plan::{ForEach, WorkflowPlan};
use super::reference::{PathSegment, RESERVED_ROOTS, RefTarget, Reference, format_path};
use super::source::Node;
use super::spec::{CompensateSpec, ForEachSpec, TaskSpec, WorkflowSpec};
use super::template::{Template, ValueTemplate};
use crate::model::validate_queue_name;

/// What is missing when checking a workflow some of whose parts did not parse.
pub(super) struct Partial {
    /// Tasks that did not parse (stand-ins with their id and dependencies only).
    pub placeholder: Vec<bool>,
    /// Whether the workflow-level fields parsed.
    pub header_ok: bool,
}

/// Finds lines for the parts of a task; every method answers `None` without a source.
struct Locator<'a> {
    root: Option<&'a Node>,
}

impl<'a> Locator<'a> {
    fn header(&self, names: &[&str]) -> Option<u32> {
        line(self.root?.get(names))
    }

    fn task(&self, i: usize) -> Option<&'a Node> {
        self.root?.get(&["tasks"])?.index(i)
    }

    fn task_line(&self, i: usize) -> Option<u32> {
        let t = self.task(i)?;
        line(t.get(&["id"])).or(t.pos.map(|p| p.line))
    }

    fn field(&self, i: usize, names: &[&str]) -> Option<&'a Node> {
        self.task(i)?.get(names)
    }

    /// The line of a task field, falling back to the task's own line.
    fn field_line(&self, i: usize, names: &[&str]) -> Option<u32> {
        line(self.field(i, names)).or(self.task_line(i))
    }

    fn at(&self, i: usize, names: &[&str], path: &[PathSegment]) -> Option<u32> {
        let base = self.field(i, names);
        line(base.and_then(|b| b.at(path)))
            .or(line(base))
            .or(self.task_line(i))
    }
}

fn line(n: Option<&Node>) -> Option<u32> {
    n.and_then(|n| n.pos).map(|p| p.line)
}

const PARAMS: &[&str] = &["params", "parameters"];
pub(super) const DEPENDS: &[&str] = &["depends_on", "dependencies"];

/// Where a reference appears, for messages and for what it may read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Site {
    Params,
    Condition,
    ForEach,
    Compensate,
}

struct Checker<'a> {
    loc: Locator<'a>,
    errors: Vec<ValidationError>,
}

impl Checker<'_> {
    fn push(&mut self, kind: K, task: Option<&str>, line: Option<u32>, message: String) {
        self.errors.push(ValidationError {
            kind,
            task: task.map(str::to_owned),
            line,
            message,
        });
    }
}

pub(super) fn check(
    spec: WorkflowSpec,
    root: Option<&Node>,
    partial: Option<&Partial>,
) -> Result<WorkflowPlan, ValidationErrors> {
    let is_placeholder = |i: usize| partial.is_some_and(|p| p.placeholder[i]);
    let mut c = Checker {
        loc: Locator { root },
        errors: Vec::new(),
    };
    if partial.is_none_or(|p| p.header_ok) {
        check_header(&mut c, &spec);
    }

    // Ids first: later checks look tasks up by id.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, t) in spec.tasks.iter().enumerate() {
        let line = c.loc.task_line(i);
        if let Some(problem) = id_problem(&t.id).filter(|_| !is_placeholder(i)) {
            c.push(K::InvalidId, Some(&t.id), line, problem);
        }
        match first.get(t.id.as_str()) {
            Some(&j) => {
                let msg = match c.loc.task_line(j) {
                    Some(l) => format!("task id `{}` is already used on line {l}", t.id),
                    None => format!("task id `{}` is used by more than one task", t.id),
                };
                c.push(K::DuplicateId, Some(&t.id), line, msg);
            }
            None => {
                first.insert(&t.id, i);
            }
        }
    }

    let parts: Vec<TaskParts> = spec
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if is_placeholder(i) {
                TaskParts::default()
            } else {
                check_task(&mut c, i, t)
            }
        })
        .collect();

    // The graph over the first task of each id, in file order.
    let uniq: Vec<usize> = (0..spec.tasks.len())
        .filter(|&i| first.get(spec.tasks[i].id.as_str()) == Some(&i))
        .collect();
    let dag_ix: HashMap<&str, usize> = uniq
        .iter()
        .enumerate()
        .map(|(d, &i)| (spec.tasks[i].id.as_str(), d))
        .collect();
    let mut dag = Dag::new(uniq.iter().map(|&i| spec.tasks[i].id.clone()).collect());
    for (i, t) in spec.tasks.iter().enumerate() {
        let me = (first.get(t.id.as_str()) == Some(&i)).then(|| dag_ix[t.id.as_str()]);
        // A set, not a scan of the earlier entries: a join may list 10,000 tasks.
        let mut listed: HashSet<&str> = HashSet::with_capacity(t.depends_on.len());
        for (k, dep) in t.depends_on.iter().enumerate() {
            let line = line(c.loc.field(i, DEPENDS).and_then(|n| n.index(k)))
                .or(c.loc.field_line(i, DEPENDS));
            if !listed.insert(dep.as_str()) {
                c.push(
                    K::InvalidValue,
                    Some(&t.id),
                    line,
                    format!("depends_on lists `{dep}` twice"),
                );
                continue;
            }
            match dag_ix.get(dep.as_str()) {
                Some(&d) => {
                    if let Some(me) = me {
                        dag.add_edge(d, me);
                    }
                }
                None => c.push(
                    K::UnknownDependency,
                    Some(&t.id),
                    line,
                    format!(
                        "depends on `{dep}`, which is not a task of this workflow{}",
                        suggest(dep, spec.tasks.iter().map(|t| t.id.as_str()))
                    ),
                ),
            }
        }
    }
    let order = match dag.topo_order() {
        Ok(order) => Some(order),
        Err(cycles) => {
            for cyc in cycles {
                let start = cyc[0];
                let line = c.loc.task_line(uniq[start]);
                let msg = format!("dependency cycle: {}", dag.format_cycle(&cyc));
                c.push(K::Cycle, Some(dag.id(start)), line, msg);
            }
            None
        }
    };

    // References need the graph: only upstream tasks may be read. Ancestors are well
    // defined even when there is a cycle, so these are reported alongside cycles.
    if partial.is_none() {
        for (d, &i) in uniq.iter().enumerate() {
            check_references(&mut c, &spec, &dag, &dag_ix, d, i, &parts[i]);
        }
    }

    let Some(order) = order.filter(|_| c.errors.is_empty()) else {
        return Err(ValidationErrors::sorted(c.errors));
    };
    let task_line = |i: usize| c.loc.task_line(i);
    Ok(build_plan(spec, parts, task_line, &dag, &uniq, &order))
}

fn check_header(c: &mut Checker<'_>, spec: &WorkflowSpec) {
    if spec.name.trim().is_empty() {
        let l = c.loc.header(&["name"]);
        c.push(
            K::InvalidValue,
            None,
            l,
            "the workflow name is empty".into(),
        );
    }
    if spec.tasks.is_empty() {
        let l = c.loc.header(&["tasks"]);
        c.push(
            K::InvalidValue,
            None,
            l,
            "a workflow needs at least one task".into(),
        );
    }
    if spec.max_parallel == Some(0) {
        let l = c.loc.header(&["max_parallel"]);
        c.push(
            K::InvalidValue,
            None,
            l,
            "max_parallel must be at least 1".into(),
        );
    }
    if let Some(q) = &spec.defaults.queue
        && let Err(e) = validate_queue_name(q)
    {
        let l = line(
            c.loc
                .root
                .and_then(|r| r.at(&[key("defaults"), key("queue")])),
        );
        c.push(K::InvalidValue, None, l, strip_prefix(e));
    }
    if spec.defaults.timeout.is_some_and(|t| t.is_zero()) {
        let l = line(
            c.loc
                .root
                .and_then(|r| r.at(&[key("defaults"), key("timeout")])),
        );
        c.push(
            K::InvalidValue,
            None,
            l,
            "defaults.timeout must be more than 0".into(),
        );
    }
}

fn key(s: &str) -> PathSegment {
    PathSegment::Key(s.to_owned())
}

fn strip_prefix(e: crate::Error) -> String {
    match e {
        crate::Error::InvalidArgument(m) => m,
        other => other.to_string(),
    }
}

/// Why a task id is not allowed, if it is not.
fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the task id is empty".into());
    }
    if id.len() > 128 {
        return Some("a task id has at most 128 characters".into());
    }
    let mut chars = id.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Some(format!(
            "task id `{id}` must start with a letter or `_` and hold only letters, digits, `_` and `-`"
        ));
    }
    if RESERVED_ROOTS.contains(&id) {
        return Some(format!(
            "`{id}` is reserved in templates and cannot be a task id"
        ));
    }
    None
}

/// ` (did you mean `x`?)` when a known name is close to `name`.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match best {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks one task's own fields and parses its templates and conditions.
fn check_task(c: &mut Checker<'_>, i: usize, t: &TaskSpec) -> TaskParts {
    let id = t.id.as_str();
    if t.kind.trim().is_empty() || t.kind.len() > 255 {
        let l = c.loc.field_line(i, &["kind", "method"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            "kind must be 1-255 characters".into(),
        );
    }
    if let Some(q) = &t.queue
        && let Err(e) = validate_queue_name(q)
    {
        let l = c.loc.field_line(i, &["queue"]);
        c.push(K::InvalidValue, Some(id), l, strip_prefix(e));
    }
    if t.timeout.is_some_and(|d| d.is_zero()) {
        let l = c.loc.field_line(i, &["timeout"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            "timeout must be more than 0".into(),
        );
    }
    let params = parse_params(c, i, id, &t.params, PARAMS, "params");

    // Conditions: `when`, or every entry of `conditions`.
    if t.when.is_some() && !t.conditions.is_empty() {
        let l = c.loc.field_line(i, &["conditions"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            "use either `when` or `conditions`, not both".into(),
        );
    }
    let mut conditions = Vec::new();
    let sources: Vec<(&str, Option<u32>, String)> = match &t.when {
        Some(w) => vec![(w.as_str(), c.loc.field_line(i, &["when"]), "when".into())],
        None => t
            .conditions
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let l = line(c.loc.field(i, &["conditions"]).and_then(|n| n.index(k)))
                    .or(c.loc.field_line(i, &["conditions"]));
                (s.as_str(), l, format!("conditions[{k}]"))
            })
            .collect(),
    };
    for (src, l, what) in sources {
        match Condition::parse(src) {
            Ok(cond) => conditions.push((cond, l)),
            Err(e) => c.push(
                K::Condition,
                Some(id),
                l,
                format!("{what}: malformed condition `{src}`: {e}"),
            ),
        }
    }

    let for_each = match &t.for_each {
        None => None,
        Some(ForEachSpec::Items(items)) => Some(ForEach::Items(items.clone())),
        Some(ForEachSpec::Reference(s)) => {
            let l = c.loc.field_line(i, &["for_each"]);
            match Template::parse(s) {
                Err(e) => {
                    c.push(
                        K::Template,
                        Some(id),
                        l,
                        format!("for_each: malformed template `{s}`: {e}"),
                    );
                    None
                }
                Ok(tpl) => match tpl.whole_reference() {
                    Some(r)
                        if matches!(
                            r.target,
                            RefTarget::TaskResult { .. } | RefTarget::Variable { .. }
                        ) =>
                    {
                        Some(ForEach::Reference(r.clone()))
                    }
                    _ => {
                        c.push(
                            K::Template,
                            Some(id),
                            l,
                            format!(
                                "for_each: `{s}` must be a single reference to a list, such as ${{split.result.chunks}} or ${{workflow.variables.files}}"
                            ),
                        );
                        None
                    }
                },
            }
        }
    };

    let compensate_params = t
        .compensate
        .as_ref()
        .map(|comp| check_compensate(c, i, id, comp));
    TaskParts {
        params,
        conditions,
        for_each,
        compensate_params,
    }
}

fn check_compensate(
    c: &mut Checker<'_>,
    i: usize,
    id: &str,
    comp: &CompensateSpec,
) -> ValueTemplate {
    let base = c.loc.field(i, &["compensate"]);
    let sub_line = |names: &[&str]| line(base.and_then(|b| b.get(names))).or(line(base));
    if comp.kind.trim().is_empty() || comp.kind.len() > 255 {
        let l = sub_line(&["kind", "method"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            "compensate.kind must be 1-255 characters".into(),
        );
    }
    if let Some(q) = &comp.queue
        && let Err(e) = validate_queue_name(q)
    {
        let l = sub_line(&["queue"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            format!("compensate: {}", strip_prefix(e)),
        );
    }
    if comp.timeout.is_some_and(|d| d.is_zero()) {
        let l = sub_line(&["timeout"]);
        c.push(
            K::InvalidValue,
            Some(id),
            l,
            "compensate.timeout must be more than 0".into(),
        );
    }
    match ValueTemplate::parse(&comp.params) {
        Ok(t) => t,
        Err(errs) => {
            let params = base.and_then(|b| b.get(PARAMS));
            for e in errs {
                let l = line(params.and_then(|p| p.at(&e.path)))
                    .or(line(params))
                    .or(line(base));
                c.push(
                    K::Template,
                    Some(id),
                    l,
                    format!(
                        "compensate.params{}: malformed template: {}",
                        format_path(&e.path),
                        e.error
                    ),
                );
            }
            ValueTemplate::Literal(Value::Null)
        }
    }
}

fn parse_params(
    c: &mut Checker<'_>,
    i: usize,
    id: &str,
    v: &Value,
    names: &[&str],
    what: &str,
) -> ValueTemplate {
    match ValueTemplate::parse(v) {
        Ok(t) => t,
        Err(errs) => {
            for e in errs {
                let l = c.loc.at(i, names, &e.path);
                c.push(
                    K::Template,
                    Some(id),
                    l,
                    format!(
                        "{what}{}: malformed template: {}",
                        format_path(&e.path),
                        e.error
                    ),
                );
            }
            ValueTemplate::Literal(Value::Null)
        }
    }
}

/// Checks that every reference of task `i` (graph index `d`) reads something that exists
/// and, for task results, something upstream.
fn check_references(
    c: &mut Checker<'_>,
    spec: &WorkflowSpec,
    dag: &Dag,
    dag_ix: &HashMap<&str, usize>,
    d: usize,
    i: usize,
    parts: &TaskParts,
) {
    let t = &spec.tasks[i];
    let ancestors = dag.ancestors(d);
    let mut refs: Vec<(Site, String, Option<u32>, &Reference)> = Vec::new();
    for (path, r) in parts.params.references() {
        let l = c.loc.at(i, PARAMS, &path);
        refs.push((Site::Params, format!("params{}", format_path(&path)), l, r));
    }
    for (cond, l) in &parts.conditions {
        for r in cond.references() {
            refs.push((Site::Condition, "when".into(), *l, r));
        }
    }
    if let Some(ForEach::Reference(r)) = &parts.for_each {
        let l = c.loc.field_line(i, &["for_each"]);
        refs.push((Site::ForEach, "for_each".into(), l, r));
    }
    if let Some(cp) = &parts.compensate_params {
        let base = c.loc.field(i, &["compensate"]);
        for (path, r) in cp.references() {
            let params = base.and_then(|b| b.get(PARAMS));
            let l = line(params.and_then(|p| p.at(&path)))
                .or(line(params))
                .or(line(base))
                .or(c.loc.task_line(i));
            refs.push((
                Site::Compensate,
                format!("compensate.params{}", format_path(&path)),
                l,
                r,
            ));
        }
    }
    for (site, what, l, r) in refs {
        let problem = match &r.target {
            RefTarget::TaskResult { task, .. } | RefTarget::TaskMetadata { task, .. } => {
                match dag_ix.get(task.as_str()) {
                    None => Some((
                        K::UnknownReference,
                        format!(
                            "{r} reads task `{task}`, which is not a task of this workflow{}",
                            suggest(task, spec.tasks.iter().map(|t| t.id.as_str()))
                        ),
                    )),
                    Some(&u) if u == d && site == Site::Compensate => None,
                    Some(&u) if u == d => Some((
                        K::NotUpstream,
                        format!(
                            "{r} reads the task's own result, which only its compensate step can do"
                        ),
                    )),
                    Some(&u) if !ancestors[u] => Some((
                        K::NotUpstream,
                        format!(
                            "{r} reads task `{task}`, which is not upstream of `{}` (add it to depends_on)",
                            t.id
                        ),
                    )),
                    Some(_) => None,
                }
            }
            RefTarget::Variable { name, .. } if !spec.variables.contains_key(name) => {
                let declared: Vec<&str> = spec.variables.keys().map(String::as_str).collect();
                Some((
                    K::UnknownReference,
                    format!(
                        "{r} reads variable `{name}`, which `variables` does not declare{}",
                        if declared.is_empty() {
                            String::new()
                        } else {
                            format!(" (declared: {})", declared.join(", "))
                        }
                    ),
                ))
            }
            RefTarget::Item { .. } | RefTarget::Index
                if site == Site::ForEach || t.for_each.is_none() =>
            {
                Some((
                    K::UnknownReference,
                    format!("{r} is only available inside a task with for_each"),
                ))
            }
            _ => None,
        };
        if let Some((kind, msg)) = problem {
            c.push(kind, Some(&t.id), l, format!("{what}: {msg}"));
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
