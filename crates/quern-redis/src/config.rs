//! Parsing the store URL: `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS) and
//! `redis+cluster://host:port[,host:port…]`, with Quern's own query options.

use std::time::Duration;

use quern::Error;

/// When writes that must survive a failover are acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// As durable as the server's AOF / RDB settings: acknowledged once the primary ran it.
    #[default]
    Default,
    /// Enqueue, complete and fail wait (`WAIT`) until `replicas` replicas have the write;
    /// a write that is not replicated within `wait_timeout` fails with `Unavailable`.
    Replicated,
}

/// Everything the backend needs to connect, parsed from a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// Connection URLs handed to the redis crate: one for a single node, the seed nodes for
    /// a cluster. Quern's own query options are removed.
    pub nodes: Vec<String>,
    /// True for `redis+cluster://`.
    pub cluster: bool,
    /// Every key starts with `<prefix>:` (query option `prefix`, default `quern`), so many
    /// applications can share one Redis.
    pub prefix: String,
    /// Query option `durability` = `default` | `replicated`.
    pub durability: Durability,
    /// Replicas `WAIT` waits for (query option `replicas`, default 1).
    pub replicas: u32,
    /// How long `WAIT` may take (query option `wait_timeout_ms`, default 5000).
    pub wait_timeout: Duration,
    /// How long a call keeps retrying while Redis is unreachable before it returns
    /// `Unavailable` (query option `retry_ms`, default 10000).
    pub retry_for: Duration,
    /// A memory budget in bytes (query option `max_memory`, `512MiB`, `2GB` or bytes): at or
    /// beyond it (Redis's `used_memory`) enqueue answers `Error::StoreFull` instead of
    /// Redis refusing writes at its own `maxmemory`.
    pub max_memory: Option<u64>,
    /// How old a `used_memory` sample may be before enqueue reads a new one (query option
    /// `memory_sample_ms`, default 250).
    pub memory_sample: Duration,
}

impl RedisConfig {
    /// Parses a store URL. Unknown query options are passed on to the redis crate (for
    /// example `protocol=resp3`).
    pub fn parse(url: &str) -> Result<RedisConfig, Error> {
        let bad = |why: &str| Error::InvalidArgument(format!("bad Redis URL {url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let (cluster, tls) = match scheme {
            "redis" => (false, false),
            "rediss" => (false, true),
            "redis+cluster" => (true, false),
            "rediss+cluster" => (true, true),
            _ => {
                return Err(bad(
                    "the scheme must be redis://, rediss://, redis+cluster:// or rediss+cluster://",
                ));
            }
        };
        if tls && !cfg!(feature = "tls") {
            return Err(bad(
                "this build has no TLS support (build quern-redis with the `tls` feature)",
            ));
        }
        let (authority_path, query) = match rest.split_once('?') {
            Some((a, q)) => (a, q),
            None => (rest, ""),
        };
        let mut cfg = RedisConfig {
            nodes: Vec::new(),
            cluster,
            prefix: "quern".into(),
            durability: Durability::Default,
            replicas: 1,
            wait_timeout: Duration::from_millis(5000),
            retry_for: Duration::from_millis(10_000),
            max_memory: None,
            memory_sample: Duration::from_millis(250),
        };
        let mut passthrough = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "prefix" => cfg.prefix = v.to_string(),
                "durability" => {
                    cfg.durability = match v {
                        "default" | "" => Durability::Default,
                        "replicated" => Durability::Replicated,
                        _ => return Err(bad("durability must be `default` or `replicated`")),
                    }
                }
                "replicas" => {
                    cfg.replicas = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("replicas must be a number >= 1"))?
                }
                "wait_timeout_ms" => {
                    cfg.wait_timeout = Duration::from_millis(
                        v.parse()
                            .map_err(|_| bad("wait_timeout_ms must be a number"))?,
                    )
                }
                "retry_ms" => {
                    cfg.retry_for = Duration::from_millis(
                        v.parse().map_err(|_| bad("retry_ms must be a number"))?,
                    )
                }
                "max_memory" => {
                    let n = quern::model::parse_bytes(v).map_err(|_| {
                        bad("max_memory must be a size such as 512MiB, 2GB or a number of bytes")
                    })?;
                    if n == 0 {
                        return Err(bad("max_memory must be above 0"));
                    }
                    cfg.max_memory = Some(n);
                }
                "memory_sample_ms" => {
                    cfg.memory_sample = Duration::from_millis(
                        v.parse()
                            .map_err(|_| bad("memory_sample_ms must be a number"))?,
                    )
                }
                _ => passthrough.push(pair),
            }
        }
        validate_prefix(&cfg.prefix).map_err(|e| bad(&e))?;
        let query = if passthrough.is_empty() {
            String::new()
        } else {
            format!("?{}", passthrough.join("&"))
        };
        let node_scheme = if tls { "rediss" } else { "redis" };
        if cluster {
            let (userinfo, hosts) = match authority_path.rsplit_once('@') {
                Some((u, h)) => (format!("{u}@"), h),
                None => (String::new(), authority_path),
            };
            let hosts = hosts.trim_end_matches('/');
            for h in hosts.split(',').filter(|h| !h.is_empty()) {
                if h.contains('/') {
                    return Err(bad("a cluster URL has no database number"));
                }
                cfg.nodes
                    .push(format!("{node_scheme}://{userinfo}{h}/{query}"));
            }
            if cfg.nodes.is_empty() {
                return Err(bad("no cluster node given"));
            }
        } else {
            if authority_path.is_empty() {
                return Err(bad("no host given"));
            }
            cfg.nodes
                .push(format!("{node_scheme}://{authority_path}{query}"));
        }
        Ok(cfg)
    }
}

/// A prefix is 1–64 characters of letters, digits and `_ . -`. No braces (the Cluster hash
/// tag) and no `:` (the separator), so one prefix's keys never look like another's.
fn validate_prefix(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 64
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {p:?} must be 1-64 characters of letters, digits, '_', '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_urls() {
        let c = RedisConfig::parse("redis://127.0.0.1:6379/2?prefix=app1").unwrap();
        assert_eq!(c.nodes, vec!["redis://127.0.0.1:6379/2".to_string()]);
        assert_eq!(c.prefix, "app1");
        assert!(!c.cluster);
        let c = RedisConfig::parse(
            "redis://u:p@h:1?durability=replicated&protocol=resp3&wait_timeout_ms=200",
        )
        .unwrap();
        assert_eq!(c.nodes, vec!["redis://u:p@h:1?protocol=resp3".to_string()]);
        assert_eq!(c.durability, Durability::Replicated);
        assert_eq!(c.wait_timeout, Duration::from_millis(200));
        assert_eq!(c.prefix, "quern");
    }

    #[test]
    fn cluster_urls() {
        let c = RedisConfig::parse("redis+cluster://a:1,b:2/?prefix=x").unwrap();
        assert!(c.cluster);
        assert_eq!(
            c.nodes,
            vec!["redis://a:1/".to_string(), "redis://b:2/".to_string()]
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for u in [
            "http://x",
            "redis://",
            "redis://h?prefix=",
            "redis://h?prefix=a{b}",
            "redis://h?prefix=a:b",
            "redis://h?durability=maybe",
            "redis+cluster://",
            "redis://h?replicas=0",
        ] {
            assert!(RedisConfig::parse(u).is_err(), "{u} should be refused");
        }
    }
}
