//! The evaluation loop (leader only) and the read of every rule's state that
//! `GET /v1/alerts` answers with (any server).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quern::backend::AlertStatePutParams;
use quern::maintenance::{LeaderConfig, run_as_leader};
use quern::{Backend, Millis};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::episode::{Episode, NoticeKind, Phase, step};
use super::measure::{Reading, read_all};
use super::rule::AlertRule;
use super::webhook::{self, RetryPolicy};

/// The leader lease under which one server evaluates.
pub const LEASE: &str = "quern.alerts";

/// The JSON body POSTed to a webhook.
#[derive(Clone, Debug, Serialize)]
pub struct Notice<'a> {
    /// `<alert>/<episode>/<state>`: the same for every retry, so a receiver can drop
    /// duplicates.
    pub id: String,
    pub alert: &'a str,
    pub condition: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub episode: u64,
    /// When the condition started to hold (ms since the epoch).
    pub since: Option<Millis>,
    /// For a resolved notice: when it cleared.
    pub resolved_at: Option<Millis>,
    pub value: f64,
    pub threshold: f64,
    pub queue: Option<&'a str>,
    pub message: String,
    /// When this notice was made (ms; also the `X-Quern-Timestamp` header).
    pub sent_at: Millis,
}

/// Every server's alert task: takes part in the leader election and, while leader,
/// evaluates the rules.
#[derive(Debug)]
pub struct AlertService {
    task: tokio::task::JoinHandle<()>,
}

impl AlertService {
    /// Starts the service; it stops when `stop` is cancelled.
    pub fn start(
        backend: Arc<dyn Backend>,
        rules: Vec<AlertRule>,
        interval: Duration,
        stop: CancellationToken,
    ) -> AlertService {
        let holder = format!(
            "alerts-{}-{}",
            std::process::id(),
            quern::JobId::new().to_string().get(..8).unwrap_or("0")
        );
        let rules = Arc::new(rules);
        let task = tokio::spawn(async move {
            let client = match webhook::client() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(target: "quern_alerts", "alerts are off: {e}");
                    return;
                }
            };
            let lease = LeaderConfig {
                ttl: Duration::from_secs(3),
                ..LeaderConfig::new(LEASE, holder)
            };
            run_as_leader(Arc::clone(&backend), lease, stop, |term| {
                let backend = Arc::clone(&backend);
                let rules = Arc::clone(&rules);
                let client = client.clone();
                async move {
                    tracing::info!(target: "quern_alerts", rules = rules.len(), "evaluating alert rules");
                    while !term.is_cancelled() {
                        evaluate(&*backend, &rules, &client).await;
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => {}
                            _ = term.cancelled() => {}
                        }
                    }
                }
            })
            .await;
        });
        AlertService { task }
    }

    /// Waits for the service to stop (after its `stop` token was cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

fn stored_episodes(
    records: Vec<quern::backend::AlertStateRecord>,
) -> HashMap<String, (u64, Episode)> {
    records
        .into_iter()
        .map(|r| {
            let e = serde_json::from_str(&r.state).unwrap_or_default();
            (r.name, (r.version, e))
        })
        .collect()
}

/// One evaluation: read every rule, store each transition by compare-and-set, and send the
/// notices of the transitions this server stored.
async fn evaluate(backend: &dyn Backend, rules: &[AlertRule], client: &reqwest::Client) {
    let now = quern::clock::system_now_ms();
    let stored = match backend.alert_state_list().await {
        Ok(r) => stored_episodes(r),
        Err(e) => {
            tracing::warn!(target: "quern_alerts", error = %e, "cannot read the alert states; skipping this evaluation");
            return;
        }
    };
    let readings = read_all(backend, rules, now).await;
    for (rule, reading) in rules.iter().zip(readings) {
        let reading = match reading {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "quern_alerts", alert = %rule.name, error = %e, "cannot read the alert's condition");
                continue;
            }
        };
        let (version, prev) = stored.get(&rule.name).cloned().unwrap_or_default();
        let hold = rule.hold.unwrap_or_default().as_millis() as i64;
        let breached = rule.breached(reading.value);
        let Some((next, notice)) = step(&prev, breached, reading.value, now, hold) else {
            continue;
        };
        let text = match serde_json::to_string(&next) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(target: "quern_alerts", alert = %rule.name, error = %e, "cannot encode the alert state");
                continue;
            }
        };
        let put = backend
            .alert_state_put(AlertStatePutParams {
                name: rule.name.clone(),
                expect: version,
                state: text,
            })
            .await;
        match put {
            Ok(Some(_)) => {}
            Ok(None) => {
                // Another server stored a transition first: it announces it.
                tracing::debug!(target: "quern_alerts", alert = %rule.name, "alert state changed under us; leaving it to the other server");
                continue;
            }
            Err(e) => {
                tracing::warn!(target: "quern_alerts", alert = %rule.name, error = %e, "cannot store the alert state");
                continue;
            }
        }
        if let Some(kind) = notice {
            announce(rule, &next, kind, &reading, now, client);
        }
    }
}

/// Logs the transition and sends its notice (in its own task).
fn announce(
    rule: &AlertRule,
    ep: &Episode,
    kind: NoticeKind,
    reading: &Reading,
    now: Millis,
    client: &reqwest::Client,
) {
    let since = match kind {
        NoticeKind::Firing => ep.since,
        NoticeKind::Resolved => None,
    };
    match kind {
        NoticeKind::Firing => tracing::warn!(
            target: "quern_alerts",
            alert = %rule.name,
            condition = rule.condition.as_str(),
            episode = ep.episode,
            value = reading.value,
            threshold = rule.threshold(),
            "alert firing: {}",
            reading.message
        ),
        NoticeKind::Resolved => tracing::info!(
            target: "quern_alerts",
            alert = %rule.name,
            condition = rule.condition.as_str(),
            episode = ep.episode,
            value = reading.value,
            threshold = rule.threshold(),
            "alert resolved: {}",
            reading.message
        ),
    }
    let (Some(url), Some(secret)) = (rule.webhook.clone(), rule.secret.clone()) else {
        return;
    };
    let notice = Notice {
        id: format!("{}/{}/{}", rule.name, ep.episode, kind.as_str()),
        alert: &rule.name,
        condition: rule.condition.as_str(),
        state: kind.as_str(),
        episode: ep.episode,
        since: since.or(ep.since),
        resolved_at: (kind == NoticeKind::Resolved).then_some(now),
        value: reading.value,
        threshold: rule.threshold(),
        queue: rule.queue.as_deref(),
        message: reading.message.clone(),
        sent_at: now,
    };
    let body = match serde_json::to_string(&notice) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(target: "quern_alerts", alert = %rule.name, error = %e, "cannot encode the notice");
            return;
        }
    };
    let client = client.clone();
    let name = rule.name.clone();
    tokio::spawn(async move {
        webhook::deliver(
            &client,
            &url,
            &secret,
            now,
            body,
            &RetryPolicy::default(),
            &name,
        )
        .await;
    });
}

/// One rule as `GET /v1/alerts` shows it: the stored episode with a fresh reading.
#[derive(Clone, Debug)]
pub struct RuleView {
    pub rule: AlertRule,
    pub episode: Episode,
    pub reading: Result<Reading, String>,
}

/// Every rule's stored state and current reading (any server answers the same).
pub async fn view(backend: &dyn Backend, rules: &[AlertRule]) -> quern::Result<Vec<RuleView>> {
    let now = quern::clock::system_now_ms();
    let stored = stored_episodes(backend.alert_state_list().await?);
    let readings = read_all(backend, rules, now).await;
    Ok(rules
        .iter()
        .zip(readings)
        .map(|(rule, reading)| RuleView {
            episode: stored
                .get(&rule.name)
                .map(|(_, e)| e.clone())
                .unwrap_or_default(),
            rule: rule.clone(),
            reading,
        })
        .collect())
}

impl RuleView {
    pub fn firing(&self) -> bool {
        self.episode.phase == Phase::Firing
    }
}
