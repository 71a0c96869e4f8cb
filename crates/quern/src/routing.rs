//! Routing: which queue (and priority) a job goes to by its kind, and which queues a worker
//! serves by its capabilities.
//!
//! A [`Router`] is an ordered list of [`Route`]s. At enqueue the first route whose kind
//! pattern matches the job's kind decides its queue, for a job that did not choose one (its
//! queue is `default`), and its priority, for a job that did not choose one either (its
//! priority is the default, [`Priority::NORMAL`]). A job without a matching route keeps
//! what it has. A route may require worker capabilities (`gpu`, `vram_gb > 8`): a worker
//! started without queues of its own serves the queues of every route its capabilities
//! satisfy ([`Router::queues_for`]). Requirements never change where a job goes; they say
//! who may take it from there.
//!
//! Capabilities are `name` (a flag, the same as `name=true`) or `name=value`. A requirement
//! is `name` (the capability is present and not `false`), or `name OP value` with `OP` one
//! of `=`, `!=`, `>`, `>=`, `<`, `<=`; `>`/`<` compare numbers, `=`/`!=` compare numbers
//! when both sides are numbers and text otherwise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::{NewJob, Priority, queue_name_problem};
use crate::{Error, Result};

/// One rule: jobs whose kind matches `kind` go to `queue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A kind pattern: `*` matches any run of characters, `?` one character, anything else
    /// itself (`generate_*`, `thumbnail.?x`, `*`).
    pub kind: String,
    /// The queue matching jobs go to.
    pub queue: String,
    /// The priority matching jobs get when they did not choose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// What a worker must offer to serve `queue` when it picks its queues by route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
}

impl Route {
    /// Whether the route applies to jobs of `kind`.
    pub fn matches(&self, kind: &str) -> bool {
        glob(self.kind.as_bytes(), kind.as_bytes())
    }

    /// Whether a worker with `caps` satisfies every requirement.
    pub fn admits(&self, caps: &[Capability]) -> bool {
        self.requires.iter().all(|r| r.holds(caps))
    }
}

/// Ordered routes (the first match wins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// A router over `routes`, checked: every kind pattern non-empty, every queue a valid
    /// queue name. Errors name the route by position (`routes[2].queue: …`).
    pub fn new(routes: Vec<Route>) -> Result<Router> {
        for (i, r) in routes.iter().enumerate() {
            if r.kind.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "routes[{i}].kind: must not be empty (use \"*\" for every kind)"
                )));
            }
            if let Some(p) = queue_name_problem(&r.queue) {
                return Err(Error::InvalidArgument(format!("routes[{i}].queue: {p}")));
            }
        }
        Ok(Router { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The first route for `kind`.
    pub fn route(&self, kind: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(kind))
    }

    /// Routes a job that did not choose its queue (`queue_chosen == false`) or priority
    /// (`priority_chosen == false`); what the caller chose is kept.
    pub fn apply(&self, job: &mut NewJob, queue_chosen: bool, priority_chosen: bool) {
        let Some(r) = self.route(&job.kind) else {
            return;
        };
        if !queue_chosen {
            job.queue = r.queue.clone();
        }
        if let (false, Some(p)) = (priority_chosen, r.priority) {
            job.priority = p;
        }
    }

    /// Routes a job, taking a queue of `default` and the default priority as not chosen
    /// (what [`Client`](crate::Client) does for jobs it is given already built).
    pub fn apply_defaults(&self, job: &mut NewJob) {
        let queue_chosen = job.queue != crate::model::DEFAULT_QUEUE;
        let priority_chosen = job.priority != Priority::NORMAL;
        self.apply(job, queue_chosen, priority_chosen);
    }

    /// The queues a worker with `caps` serves when it picks them by route: each route's
    /// queue whose requirements `caps` satisfy, in route order, without repeats.
    pub fn queues_for(&self, caps: &[Capability]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.routes {
            if r.admits(caps) && !out.contains(&r.queue) {
                out.push(r.queue.clone());
            }
        }
        out
    }
}

/// `*` and `?` globbing over bytes (kinds are ASCII in practice; a multi-byte character is
/// matched by as many `?`s as it has bytes).
pub(crate) fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c == s[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// What a worker offers: `gpu` or `vram_gb=24`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    pub name: String,
    /// `true` for a bare flag.
    pub value: String,
}

impl FromStr for Capability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (s.trim(), "true"),
        };
        check_name(name, s)?;
        if value.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "capability {s:?}: the value after '=' is empty"
            )));
        }
        Ok(Capability {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value == "true" {
            f.write_str(&self.name)
        } else {
            write!(f, "{}={}", self.name, self.value)
        }
    }
}

/// Parses a worker's capability list (`["gpu", "vram_gb=24"]`); a name given twice is
/// refused.
pub fn parse_capabilities<S: AsRef<str>>(items: &[S]) -> Result<Vec<Capability>> {
    let mut out: Vec<Capability> = Vec::new();
    for s in items {
        let c: Capability = s.as_ref().parse()?;
        if out.iter().any(|o| o.name == c.name) {
            return Err(Error::InvalidArgument(format!(
                "capability {:?} is given twice",
                c.name
            )));
        }
        out.push(c);
    }
    Ok(out)
}

fn check_name(name: &str, whole: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{whole:?}: a capability name is letters, digits, '_', '-' or '.'"
        )))
    }
}

/// A comparison in a requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// What a route asks of a worker: `gpu`, `gpu = true`, `vram_gb > 8`, `region != us`.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    pub name: String,
    /// `None` for a bare name: present and not `false`.
    pub test: Option<(Op, String)>,
}

impl Requirement {
    /// Whether `caps` satisfy it. A missing capability satisfies only `!=`.
    pub fn holds(&self, caps: &[Capability]) -> bool {
        let have = caps.iter().find(|c| c.name == self.name);
        let Some((op, want)) = &self.test else {
            return have.is_some_and(|c| c.value != "false");
        };
        let Some(have) = have else {
            return *op == Op::Ne;
        };
        let nums = (have.value.parse::<f64>(), want.parse::<f64>());
        match (op, nums) {
            (Op::Eq, (Ok(a), Ok(b))) => a == b,
            (Op::Ne, (Ok(a), Ok(b))) => a != b,
            (Op::Eq, _) => have.value == *want,
            (Op::Ne, _) => have.value != *want,
            (Op::Gt, (Ok(a), Ok(b))) => a > b,
            (Op::Ge, (Ok(a), Ok(b))) => a >= b,
            (Op::Lt, (Ok(a), Ok(b))) => a < b,
            (Op::Le, (Ok(a), Ok(b))) => a <= b,
            // An order test on a value that is not a number is not met.
            _ => false,
        }
    }
}

impl FromStr for Requirement {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        // Longest operators first, so `>=` is not read as `>` followed by `=…`.
        let ops = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("==", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ];
        let found = ops
            .iter()
            .filter_map(|(text, op)| t.find(text).map(|at| (at, *text, *op)))
            .min_by_key(|(at, text, _)| (*at, std::cmp::Reverse(text.len())));
        let Some((at, text, op)) = found else {
            check_name(t, s)?;
            return Ok(Requirement {
                name: t.to_string(),
                test: None,
            });
        };
        let name = t[..at].trim();
        let value = t[at + text.len()..].trim();
        check_name(name, s)?;
        if value.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "requirement {s:?}: nothing to compare with after {text:?}"
            )));
        }
        if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && value.parse::<f64>().is_err() {
            return Err(Error::InvalidArgument(format!(
                "requirement {s:?}: {text:?} compares numbers, and {value:?} is not one"
            )));
        }
        Ok(Requirement {
            name: name.to_string(),
            test: Some((op, value.to_string())),
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            None => f.write_str(&self.name),
            Some((op, v)) => write!(f, "{} {} {v}", self.name, op.text()),
        }
    }
}

impl Serialize for Requirement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;

    fn route(kind: &str, queue: &str, requires: &[&str]) -> Route {
        Route {
            kind: kind.into(),
            queue: queue.into(),
            priority: None,
            requires: requires.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    /// The distributed-worker seed's router.
    fn seed() -> Router {
        let mut priority = route("priority_task", "priority", &[]);
        priority.priority = Some(Priority::new(1).unwrap());
        Router::new(vec![
            route("generate_image", "gpu.generation", &["gpu", "vram_gb > 8"]),
            route("run_upscaling", "gpu.processing", &["gpu"]),
            route("generate_thumbnail", "cpu.thumbnail", &[]),
            priority,
            route("*", "cpu.analysis", &[]),
        ])
        .unwrap()
    }

    fn routed(r: &Router, kind: &str) -> (String, Priority) {
        let mut j = NewJob::new(kind, Payload::null());
        r.apply_defaults(&mut j);
        (j.queue, j.priority)
    }

    #[test]
    fn the_seed_router_sends_each_kind_to_its_queue() {
        let r = seed();
        let normal = Priority::NORMAL;
        assert_eq!(
            routed(&r, "generate_image"),
            ("gpu.generation".into(), normal)
        );
        assert_eq!(
            routed(&r, "run_upscaling"),
            ("gpu.processing".into(), normal)
        );
        assert_eq!(
            routed(&r, "generate_thumbnail"),
            ("cpu.thumbnail".into(), normal)
        );
        assert_eq!(
            routed(&r, "summarize_text"),
            ("cpu.analysis".into(), normal)
        );
        assert_eq!(
            routed(&r, "priority_task"),
            ("priority".into(), Priority::new(1).unwrap())
        );
    }

    #[test]
    fn a_chosen_queue_or_priority_is_kept() {
        let r = seed();
        let mut j = NewJob::new("priority_task", Payload::null())
            .queue("mine")
            .priority(Priority::new(8).unwrap());
        r.apply_defaults(&mut j);
        assert_eq!((j.queue.as_str(), j.priority.get()), ("mine", 8));
        let mut j = NewJob::new("priority_task", Payload::null());
        r.apply(&mut j, false, true);
        assert_eq!(
            (j.queue.as_str(), j.priority),
            ("priority", Priority::NORMAL)
        );
    }

    #[test]
    fn workers_serve_the_queues_their_capabilities_satisfy() {
        let r = seed();
        let caps = |s: &[&str]| parse_capabilities(s).unwrap();
        assert_eq!(
            r.queues_for(&caps(&["gpu", "vram_gb=24"])),
            [
                "gpu.generation",
                "gpu.processing",
                "cpu.thumbnail",
                "priority",
                "cpu.analysis"
            ]
        );
        assert_eq!(
            r.queues_for(&caps(&["gpu", "vram_gb=8"])),
            [
                "gpu.processing",
                "cpu.thumbnail",
                "priority",
                "cpu.analysis"
            ]
        );
        assert_eq!(
            r.queues_for(&caps(&[])),
            ["cpu.thumbnail", "priority", "cpu.analysis"]
        );
        assert_eq!(
            r.queues_for(&caps(&["gpu=false", "vram_gb=80"])),
            ["cpu.thumbnail", "priority", "cpu.analysis"]
        );
    }

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("generate.*", "generate.image", true),
            ("generate.*", "generate", false),
            ("thumb?", "thumbs", true),
            ("thumb?", "thumb", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*.done", "x.y.done", true),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
        }
    }

    #[test]
    fn requirements_parse_and_compare() {
        let caps = parse_capabilities(&["gpu", "vram_gb=24", "region=eu"]).unwrap();
        for (req, want) in [
            ("gpu", true),
            ("gpu = true", true),
            ("gpu == true", true),
            ("vram_gb > 8", true),
            ("vram_gb>=24", true),
            ("vram_gb < 24", false),
            ("vram_gb <= 24.0", true),
            ("vram_gb = 24.0", true),
            ("region = eu", true),
            ("region != eu", false),
            ("tpu", false),
            ("tpu != yes", true),
            ("tpu > 1", false),
        ] {
            let r: Requirement = req.parse().unwrap();
            assert_eq!(r.holds(&caps), want, "{req}");
        }
        assert_eq!(
            "vram_gb>=8".parse::<Requirement>().unwrap().to_string(),
            "vram_gb >= 8"
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let err = |r: std::result::Result<Requirement, Error>| r.unwrap_err().to_string();
        assert!(err("vram_gb > lots".parse()).contains("compares numbers"));
        assert!(err("vram_gb >".parse()).contains("nothing to compare"));
        assert!(err("> 8".parse()).contains("capability name"));
        assert!(err("a b".parse()).contains("capability name"));
        let e = parse_capabilities(&["gpu", "gpu=false"]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(parse_capabilities(&["vram_gb="]).is_err());
        let e = Router::new(vec![route("x", "bad queue", &[])]).unwrap_err();
        assert!(e.to_string().contains("routes[0].queue"), "{e}");
        let e = Router::new(vec![route("", "q", &[])]).unwrap_err();
        assert!(e.to_string().contains("routes[0].kind"), "{e}");
    }
}
