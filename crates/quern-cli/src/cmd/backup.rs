//! `quern backup`, `quern backup verify`, `quern restore` and `quern migrate`.
//!
//! Reading a store out uses the ordinary reads (`queue_list`, `job_list` paged by id,
//! `workflow_list`, `schedule_list` and `schedule_runs`), so it runs while workers do; writing
//! one back uses `Backend::store_import`, which stores each record as it was read (a job that
//! was running arrives `queued` with its attempt counted, see `quern::backend::import_image`).
//! The archive format is `crate::archive`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use quern::backend::{
    ImportMode, ImportParams, ImportReport, JobFilter, ListParams, QueueImport, ScheduleImport,
    ScheduleRunsParams, WorkflowListParams,
};
use quern::model::{ScheduleRun, WorkflowRecord};
use quern::{Backend, Job, JobId};

use crate::archive::read::read;
use crate::archive::record::Record;
use crate::archive::write::ArchiveWriter;
use crate::archive::{Header, Manifest};
use crate::cli::{BackupArgs, BackupCmd, MigrateArgs, RestoreArgs};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::store::{self, Open};

/// Jobs (and workflow records) read per page.
const PAGE: usize = 1000;
/// Jobs sent per `store_import` call.
const IMPORT_BATCH: usize = 500;

fn archive_err(path: &Path, e: String) -> CliError {
    CliError::failed("bad_archive", format!("{}: {e}", path.display()))
}

pub async fn backup(ctx: &Ctx, a: BackupArgs) -> CliResult<u8> {
    if let Some(BackupCmd::Verify { file }) = a.verify {
        return verify(ctx, &file);
    }
    let file = a.file.expect("clap requires FILE");
    if a.sqlite {
        return super::sqlite_copy::run(ctx, &file, a.keep).await;
    }
    let url = ctx.settings.store_url().to_string();
    let b = ctx.open(Open::Existing).await?;
    let mut w =
        ArchiveWriter::create(&file, Header::new(&url)).map_err(|e| CliError::failed("io", e))?;
    snapshot(b.as_ref(), |r| {
        w.push(&r).map_err(|e| CliError::failed("io", e))
    })
    .await?;
    let m = w.finish().map_err(|e| CliError::failed("io", e))?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let json = serde_json::json!({ "file": file, "bytes": bytes, "manifest": m });
    ctx.out.emit(&json, || {
        out!(
            "backup: {} → {} ({bytes} bytes)",
            summary(&m),
            file.display()
        );
    });
    Ok(0)
}

fn summary(m: &Manifest) -> String {
    let c = &m.counts;
    format!(
        "{} queues, {} jobs, {} workflows, {} schedules ({} runs)",
        c.queues, c.jobs, c.workflows, c.schedules, c.schedule_runs
    )
}

fn verify(ctx: &Ctx, file: &Path) -> CliResult<u8> {
    let (_, m) = read(file, |_| Ok(())).map_err(|e| archive_err(file, e))?;
    let json = serde_json::json!({ "ok": true, "file": file, "manifest": m });
    ctx.out.emit(&json, || {
        out!(
            "ok: {} from {} at {} (quern {}, format {})",
            summary(&m),
            m.header.source,
            m.header.created_at,
            m.header.quern_version,
            m.header.format_version
        );
    });
    Ok(0)
}

pub async fn restore(ctx: &Ctx, a: RestoreArgs) -> CliResult<u8> {
    let mut records = Vec::new();
    let (header, _) = read(&a.file, |r| {
        records.push(r);
        Ok(())
    })
    .map_err(|e| archive_err(&a.file, e))?;
    let target = ctx.open(Open::Create).await?;
    if !a.merge {
        ensure_empty(target.as_ref(), ctx.settings.store_url()).await?;
    }
    let report = load(target, records, a.merge).await?;
    print_report(ctx, "restored", &report, Some(&header.source));
    Ok(0)
}

pub async fn migrate(ctx: &Ctx, a: MigrateArgs) -> CliResult<u8> {
    if a.from == a.to {
        return Err(CliError::usage(
            "usage",
            "--from and --to name the same store",
        ));
    }
    let source = store::open_store(&a.from, Open::Existing, ctx.store_options()).await?;
    let target = store::open_store(&a.to, Open::Create, ctx.store_options()).await?;
    if !a.merge {
        ensure_empty(target.as_ref(), &a.to).await?;
    }
    let mut records = Vec::new();
    snapshot(source.as_ref(), |r| {
        records.push(r);
        Ok(())
    })
    .await?;
    let report = load(target, records, a.merge).await?;
    print_report(ctx, "migrated", &report, Some(&store::redact(&a.from)));
    Ok(0)
}

fn print_report(ctx: &Ctx, verb: &str, r: &ImportReport, from: Option<&str>) {
    let json = serde_json::json!({
        "queues": r.queues, "jobs": r.jobs, "workflows": r.workflows,
        "schedules": r.schedules, "skipped": r.skipped, "from": from,
    });
    ctx.out.emit(&json, || {
        out!(
            "{verb}: {} jobs, {} workflows, {} schedules, {} new queues; skipped {} already there",
            r.jobs,
            r.workflows,
            r.schedules,
            r.queues,
            r.skipped.len()
        );
        for s in &r.skipped {
            let what = serde_json::to_value(s.item)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            out!("skipped {what} {}", s.id);
        }
    });
}

/// Reads every record of `b`, in archive order: queues, jobs (newest first), workflow
/// records, schedules with their history.
pub async fn snapshot(
    b: &dyn Backend,
    mut each: impl FnMut(Record) -> CliResult<()>,
) -> CliResult<()> {
    let limits = b.capabilities().queue_limits;
    for q in b.queue_list().await? {
        let settings = match limits {
            true => b.queue_get((&q.name).into()).await?.settings,
            false => Default::default(),
        };
        each(Record::Queue(Box::new(QueueImport {
            name: q.name,
            paused: q.paused,
            settings,
        })))?;
    }
    let mut before: Option<JobId> = None;
    loop {
        let page = b
            .job_list(ListParams {
                filter: JobFilter::default(),
                limit: PAGE,
                before,
            })
            .await?;
        for j in page.jobs {
            each(Record::Job(Box::new(j)))?;
        }
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let caps = b.capabilities();
    if caps.workflows {
        let mut before: Option<String> = None;
        loop {
            let page = b
                .workflow_list(WorkflowListParams {
                    state: None,
                    limit: PAGE,
                    before,
                })
                .await?;
            for w in page.workflows {
                each(Record::Workflow(Box::new(w)))?;
            }
            match page.next {
                Some(n) => before = Some(n),
                None => break,
            }
        }
    }
    if caps.schedules {
        for s in b.schedule_list().await? {
            let runs = b
                .schedule_runs(ScheduleRunsParams {
                    name: s.spec.name.clone(),
                    limit: ScheduleRun::HISTORY,
                })
                .await?;
            each(Record::Schedule(Box::new(ScheduleImport {
                schedule: s,
                runs,
            })))?;
        }
    }
    Ok(())
}

/// Refuses a store that holds anything: a restore or migrate goes into an empty store
/// unless told to merge.
async fn ensure_empty(b: &dyn Backend, url: &str) -> CliResult<()> {
    let jobs = b
        .job_list(ListParams {
            filter: JobFilter::default(),
            limit: 1,
            before: None,
        })
        .await?;
    let caps = b.capabilities();
    let workflows = if caps.workflows {
        b.workflow_list(WorkflowListParams {
            state: None,
            limit: 1,
            before: None,
        })
        .await?
        .workflows
        .len()
    } else {
        0
    };
    let schedules = if caps.schedules {
        b.schedule_list().await?.len()
    } else {
        0
    };
    let queues = b.queue_list().await?.len();
    if !jobs.jobs.is_empty() || workflows + schedules + queues > 0 {
        return Err(CliError::failed(
            "store_not_empty",
            format!(
                "{} is not empty ({queues} queues{}{}{}); restore into an empty store, or pass --merge to add only what is not there (nothing is overwritten)",
                store::redact(url),
                if jobs.jobs.is_empty() { "" } else { ", jobs" },
                if workflows > 0 { ", workflows" } else { "" },
                if schedules > 0 { ", schedules" } else { "" },
            ),
        ));
    }
    Ok(())
}

/// Writes records into `target` (checked empty by the caller unless merging): queues, then jobs with every dependency before its
/// dependents, in batches, then workflow records, then schedules.
async fn load(
    target: Arc<dyn Backend>,
    records: Vec<Record>,
    merge: bool,
) -> CliResult<ImportReport> {
    let mode = if merge {
        ImportMode::SkipExisting
    } else {
        ImportMode::Refuse
    };
    let (mut queues, mut jobs, mut workflows, mut schedules) = (
        Vec::new(),
        Vec::new(),
        Vec::<WorkflowRecord>::new(),
        Vec::new(),
    );
    for r in records {
        match r {
            Record::Queue(q) => queues.push(*q),
            Record::Job(j) => jobs.push(*j),
            Record::Workflow(w) => workflows.push(*w),
            Record::Schedule(s) => schedules.push(*s),
        }
    }
    let caps = target.capabilities();
    if !workflows.is_empty() && !caps.workflows {
        return Err(CliError::failed(
            "unsupported",
            format!("the {} store does not keep workflows", caps.name),
        ));
    }
    if !schedules.is_empty() && !caps.schedules {
        return Err(CliError::failed(
            "unsupported",
            format!("the {} store does not keep schedules", caps.name),
        ));
    }
    let limited: Vec<(String, quern::model::QueueSettings)> = queues
        .iter()
        .filter(|q| q.settings != Default::default())
        .map(|q| (q.name.clone(), q.settings.clone()))
        .collect();
    let mut report = target
        .store_import(ImportParams {
            mode,
            queues,
            ..Default::default()
        })
        .await?;
    // Queue limits go through `queue_update` (which checks them), and only onto a queue that
    // has none: an import never overwrites what is stored.
    for (name, settings) in limited {
        if !caps.queue_limits {
            return Err(CliError::failed(
                "unsupported",
                format!("the {} store has no queue limits", caps.name),
            ));
        }
        if target.queue_get((&name).into()).await?.settings == Default::default() {
            target
                .queue_update(quern::backend::QueueUpdateParams {
                    queue: name,
                    concurrency: Some(settings.concurrency),
                    rate: Some(settings.rate),
                    weight: Some(settings.weight),
                    order: Some(settings.order),
                    aging: Some(settings.aging),
                    retention: settings
                        .retention
                        .iter()
                        .map(|(st, k)| (*st, Some(*k)))
                        .collect(),
                    retry: Some(settings.retry.clone()),
                    group_concurrency: Some(settings.group_concurrency),
                    kinds: settings
                        .kinds
                        .iter()
                        .map(|(p, l)| (p.clone(), Some(*l)))
                        .collect(),
                    group_rate: Some(settings.group_rate),
                })
                .await?;
        }
    }
    let ordered = dependencies_first(jobs);
    for chunk in ordered.chunks(IMPORT_BATCH) {
        let r = target
            .store_import(ImportParams {
                mode,
                jobs: chunk.to_vec(),
                ..Default::default()
            })
            .await?;
        report.add(r);
    }
    let r = target
        .store_import(ImportParams {
            mode,
            workflows,
            schedules,
            ..Default::default()
        })
        .await?;
    report.add(r);
    Ok(report)
}

/// The jobs ordered so that every dependency in the set comes before its dependents (an
/// import needs a blocked job's dependencies stored first), otherwise by queue and id, so
/// consecutive jobs share a queue (one script call per run of them on Redis).
pub fn dependencies_first(jobs: Vec<Job>) -> Vec<Job> {
    let index: HashMap<JobId, usize> = jobs.iter().enumerate().map(|(i, j)| (j.id, i)).collect();
    let mut waiting = vec![0usize; jobs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, j) in jobs.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for d in &j.depends_on {
            if let Some(&di) = index.get(d)
                && di != i
                && seen.insert(di)
            {
                waiting[i] += 1;
                dependents[di].push(i);
            }
        }
    }
    let key = |i: usize| (jobs[i].queue.clone(), jobs[i].id, i);
    let mut ready: BTreeSet<(String, JobId, usize)> = (0..jobs.len())
        .filter(|i| waiting[*i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(jobs.len());
    while let Some(k) = ready.pop_first() {
        let i = k.2;
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(key(d));
            }
        }
    }
    // A cycle cannot be stored by any backend; if an archive holds one, its jobs go last
    // and the import names the job it cannot store.
    let placed: BTreeSet<usize> = order.iter().copied().collect();
    order.extend((0..jobs.len()).filter(|i| !placed.contains(i)));
    let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each job once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quern::{JobState, NewJob};

    #[test]
    fn dependencies_come_first() {
        let mk = |q: &str| {
            Job::from_new(
                NewJob::new("k", Default::default()).queue(q),
                JobState::Queued,
                1,
            )
        };
        let (a, mut b, mut c) = (mk("z"), mk("a"), mk("a"));
        b.depends_on = vec![a.id];
        c.depends_on = vec![b.id, a.id, JobId::new()];
        let ids = [c.id, b.id, a.id];
        let out: Vec<JobId> = dependencies_first(vec![c, b, a])
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(out, vec![ids[2], ids[1], ids[0]]);
    }
}
