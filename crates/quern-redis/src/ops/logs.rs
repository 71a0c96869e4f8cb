//! Per-job logs: `job_log_append` (`lua/log_append.lua`) and `job_logs` (`lua/log_read.lua`).
//! A job's lines are the list `{q}:log:<id>` and its counters the hash `{q}:logh:<id>`, in
//! the job's queue slot; `prune.lua` deletes both with the job.

use quern::backend::{JobLogPage, JobLogsParams, LogAppendParams, LogLevel, LogLine};
use quern::{Error, Result};

use crate::backend::RedisBackend;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// `job_log_append`: one script call per slot group (one on a single node).
pub(crate) async fn append(b: &RedisBackend, p: LogAppendParams) -> Result<()> {
    let items: Vec<_> = p
        .items
        .into_iter()
        .filter(|i| !i.lines.is_empty())
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = items.iter().map(|i| i.job_id).collect();
    let queues = b.queues_of(&ids).await?;
    // Lines of jobs the index does not know are dropped, as the contract says.
    let known: Vec<usize> = (0..items.len()).filter(|i| queues[*i].is_some()).collect();
    let names: Vec<String> = known
        .iter()
        .map(|i| queues[*i].clone().unwrap_or_default())
        .collect();
    let now = b.now();
    for (q, members) in b.group_by_queue(&names) {
        let mut args = Args::default();
        args.n(i64::from(p.limits.max_lines))
            .n(i64::try_from(p.limits.max_bytes).unwrap_or(i64::MAX));
        for m in members {
            let item = &items[known[m]];
            args.s(&names[m])
                .s(&item.job_id.to_string())
                .n(item.lines.len() as i64);
            for l in &item.lines {
                args.n(l.at)
                    .n(l.level.as_i64())
                    .n(i64::from(l.attempt))
                    .s(&l.message);
            }
        }
        b.eval(&scripts::LOG_APPEND, Some(&q), now, &args, Ack::Primary)
            .await?;
    }
    Ok(())
}

/// `job_logs`: the index lookup, then one script that reads the counters and the range.
pub(crate) async fn read(b: &RedisBackend, p: JobLogsParams) -> Result<JobLogPage> {
    let Some(q) = b.queues_of(&[p.id]).await?.pop().flatten() else {
        return Err(Error::JobNotFound(p.id));
    };
    let mut args = Args::default();
    args.s(&q)
        .s(&p.id.to_string())
        .n(i64::try_from(p.after).unwrap_or(i64::MAX))
        .n(i64::try_from(p.limit).unwrap_or(i64::MAX));
    let out = reply::array(
        b.eval(&scripts::LOG_READ, Some(&q), b.now(), &args, Ack::Primary)
            .await?,
    )?;
    let mut it = out.into_iter();
    let Some(dropped) = it.next() else {
        return Err(Error::JobNotFound(p.id));
    };
    let dropped = reply::int(&dropped)? as u64;
    let lines = it
        .map(|v| parse_entry(&reply::bulk_string(v)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(JobLogPage { lines, dropped })
}

/// `seq at level attempt message`, as `log_append.lua` writes it.
fn parse_entry(e: &str) -> Result<LogLine> {
    let bad = || Error::Storage(format!("malformed log entry {e:?}"));
    let mut it = e.splitn(5, ' ');
    let mut num = || -> Result<i64> { it.next().and_then(|s| s.parse().ok()).ok_or_else(bad) };
    let seq = num()?;
    let at = num()?;
    let level = num()?;
    let attempt = num()?;
    let message = it.next().ok_or_else(bad)?.to_string();
    Ok(LogLine {
        seq: seq as u64,
        at,
        level: LogLevel::from_i64(level),
        attempt: attempt as u32,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_spaces_in_the_message() {
        let l = parse_entry("7 -5 3 2 a b  c").unwrap();
        assert_eq!(
            (l.seq, l.at, l.level, l.attempt, l.message.as_str()),
            (7, -5, LogLevel::Error, 2, "a b  c")
        );
        assert_eq!(parse_entry("1 2 1 1 ").unwrap().message, "");
        assert!(parse_entry("1 2 x").is_err());
    }
}
