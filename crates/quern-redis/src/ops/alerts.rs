//! Alert rule states (`{#}:alerts`, one hash: `v:<name>` the version, `s:<name>` the state,
//! written by compare-and-set in `alert_put.lua`) and the operator's delete of finished jobs
//! (`delete.lua`, per queue slot, checked everywhere before anything is deleted).

use std::collections::BTreeMap;

use quern::backend::{AlertStatePutParams, AlertStateRecord, JobDeleteParams, JobDeleteReport};
use quern::{Error, JobId, Result};

use super::store;
use crate::backend::RedisBackend;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

pub(crate) async fn alert_state_list(b: &RedisBackend) -> Result<Vec<AlertStateRecord>> {
    let all: BTreeMap<String, String> = b
        .query(redis::cmd("HGETALL").arg(b.gk("alerts")).clone())
        .await?;
    let mut out = Vec::new();
    for (field, state) in &all {
        let Some(name) = field.strip_prefix("s:") else {
            continue;
        };
        let version = all
            .get(&format!("v:{name}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push(AlertStateRecord {
            name: name.to_string(),
            version,
            state: state.clone(),
        });
    }
    Ok(out)
}

pub(crate) async fn alert_state_put(
    b: &RedisBackend,
    params: AlertStatePutParams,
) -> Result<Option<u64>> {
    let mut args = Args::default();
    args.s(&params.name)
        .n(params.expect as i64)
        .s(&params.state);
    let v = b
        .eval_key(&scripts::ALERT_PUT, &b.gk("alerts"), b.now(), &args)
        .await?;
    let v = reply::int(&v)?;
    Ok((v > 0).then_some(v as u64))
}

pub(crate) async fn job_delete(
    b: &RedisBackend,
    params: JobDeleteParams,
) -> Result<JobDeleteReport> {
    let mut ids: Vec<JobId> = Vec::with_capacity(params.ids.len());
    for id in params.ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(JobDeleteReport::default());
    }
    let queues = b.queues_of(&ids).await?;
    if let Some(i) = queues.iter().position(Option::is_none) {
        return Err(Error::JobNotFound(ids[i]));
    }
    let names: Vec<String> = queues.into_iter().map(Option::unwrap_or_default).collect();
    let now = b.now();
    let groups = b.group_by_queue(&names);
    // All or nothing: with several slot groups (Cluster), every group is checked before any
    // is changed. A dry run only checks.
    let phases: &[&str] = if params.dry_run {
        &["1"]
    } else if groups.len() > 1 {
        &["1", "0"]
    } else {
        &["0"]
    };
    let mut deleted = 0u64;
    for phase in phases {
        deleted = 0;
        for (q, members) in &groups {
            let mut args = Args::default();
            args.n(members.len() as i64).s(phase);
            for m in members {
                args.s(&names[*m]).s(&ids[*m].to_string());
            }
            let out = reply::array(
                b.eval(&scripts::DELETE, Some(q), now, &args, Ack::Replicas)
                    .await?,
            )?;
            match reply::int(&out[0])? {
                0 => deleted += reply::int(&out[1])? as u64,
                1 => {
                    let i = members[reply::int(&out[1])? as usize];
                    return Err(Error::InvalidTransition {
                        id: ids[i],
                        from: reply::state(&out[2])?,
                        action: "delete",
                    });
                }
                _ => {
                    let i = members[reply::int(&out[1])? as usize];
                    return Err(Error::JobNotFound(ids[i]));
                }
            }
        }
    }
    if !params.dry_run && b.cluster() {
        store::unindex(b, &ids).await;
    }
    Ok(JobDeleteReport { deleted })
}
