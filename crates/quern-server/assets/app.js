// Quern dashboard: plain JavaScript, no build step, no network beyond this server.
// Pages are drawn from /v1 (the REST API, with the session cookie and the CSRF header) and
// /ui/api (the dashboard's own answers). Live: the SSE stream /v1/events when the server has
// it, else a poll every second; both pause while the tab is hidden.
'use strict';

const meta = (n) => (document.querySelector(`meta[name="${n}"]`) || {}).content || '';
const CSRF = meta('quern-csrf');
const ROLE = meta('quern-role');
const CAN_CHANGE = ROLE === 'operate' || ROLE === 'admin';
const STATES = ['scheduled', 'queued', 'blocked', 'running', 'succeeded', 'dead', 'cancelled', 'skipped'];

// ---------- helpers ----------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-Quern-CSRF': CSRF } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) { location.href = '/login'; throw new ApiError(401, 'logged out'); }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) {
    const msg = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, msg);
  }
  return data;
}
const get = (p) => api('GET', p);
const post = (p, b) => api('POST', p, b === undefined ? {} : b);

function ago(ms) {
  const d = Date.now() - ms;
  const a = Math.abs(d);
  const fmt = a < 1000 ? 'now'
    : a < 60e3 ? `${Math.round(a / 1e3)} s`
    : a < 3600e3 ? `${Math.round(a / 60e3)} min`
    : a < 86400e3 ? `${(a / 3600e3).toFixed(1)} h`
    : `${(a / 86400e3).toFixed(1)} d`;
  if (fmt === 'now') return 'now';
  return d >= 0 ? `${fmt} ago` : `in ${fmt}`;
}

// A time shown relative, with the absolute time in the title and the datetime attribute.
function when(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  const iso = new Date(ms).toISOString();
  return h('time', { datetime: iso, title: iso.replace('T', ' ').replace('Z', ' UTC') }, ago(ms));
}

function dur(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60e3) return `${(ms / 1e3).toFixed(1)} s`;
  if (ms < 3600e3) return `${Math.round(ms / 60e3)} min`;
  return `${(ms / 3600e3).toFixed(1)} h`;
}

// State as text, with colour as a second carrier.
const badge = (s) => h('span', { class: `st st-${s || 'unknown'}` }, s || 'pruned');

const link = (href, text) => h('a', { href }, text);
const jobLink = (id) => link(`#/jobs/${id}`, id.slice(0, 8) + '…' + id.slice(-4));
const qs = (o) => Object.entries(o).filter(([, v]) => v !== '' && v !== null && v !== undefined)
  .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

function table(caption, headers, rows, opts) {
  return h('div', { class: 'scroll' },
    h('table', opts || {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'None.')))));
}

function flash(msg, bad) {
  const el = document.getElementById('live');
  el.textContent = msg;
  el.className = bad ? 'live bad' : 'live';
}

// Runs an action, reports its outcome, and redraws the page.
async function act(label, fn) {
  try {
    const out = await fn();
    flash(`${label}: done${out && typeof out === 'string' ? ' — ' + out : ''}`);
  } catch (e) {
    flash(`${label}: ${e.message}`, true);
  }
  refresh();
}

const button = (text, onclick, extra) => h('button', Object.assign({ type: 'button', onclick }, extra || {}), text);

// ---------- pages ----------
// Each page: { title, nav, async draw(params) -> Node }. `draw` is called again on every live
// update; inputs the user is typing in are kept in `ui` so a redraw never loses them.

const ui = { jobsQuery: '', jobsCursor: [], selected: new Set(), dlq: { queue: '', kind: '', error: '' } };

function chart(title, minutes, bucket) {
  // Sum per-minute rows into `bucket`-minute bars.
  const bars = [];
  for (let i = 0; i < minutes.length; i += bucket) {
    const part = minutes.slice(i, i + bucket);
    bars.push({
      at: part[0].at,
      ok: part.reduce((a, m) => a + m.succeeded, 0),
      bad: part.reduce((a, m) => a + m.failed, 0),
      dead: part.reduce((a, m) => a + (m.dead || 0), 0),
    });
  }
  const max = Math.max(1, ...bars.map((b) => b.ok + b.bad));
  const W = 600, H = 120, bw = W / Math.max(1, bars.length);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const ok = bars.reduce((a, b) => a + b.ok, 0), bad = bars.reduce((a, b) => a + b.bad, 0);
  const dead = bars.reduce((a, b) => a + b.dead, 0);
  svg.setAttribute('aria-label', `${title}: ${ok} succeeded, ${bad} failed attempts, ${dead} dead`);
  bars.forEach((b, i) => {
    const hOk = (b.ok / max) * H, hBad = (b.bad / max) * H;
    for (const [cls, y, hh, n] of [['ok', H - hOk, hOk, b.ok], ['bad', H - hOk - hBad, hBad, b.bad]]) {
      if (!n) continue;
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      r.setAttribute('x', i * bw); r.setAttribute('y', y);
      r.setAttribute('width', Math.max(bw - 0.5, 0.5)); r.setAttribute('height', hh);
      r.setAttribute('class', cls);
      const t = document.createElementNS('http://www.w3.org/2000/svg', 'title');
      t.textContent = `${new Date(b.at).toISOString()}: ${n} ${cls === 'ok' ? 'succeeded' : `failed (${b.dead} dead)`}`;
      r.append(t);
      svg.append(r);
    }
  });
  return h('figure', { class: 'card' },
    h('figcaption', {}, h('strong', {}, title), ' ',
      h('span', { class: 'legend ok' }, `${ok} succeeded`), ' ',
      h('span', { class: 'legend bad' }, `${bad} failed attempts (${dead} dead)`),
      ` · max ${max} per ${bucket === 1 ? 'minute' : bucket + ' minutes'} · counted by the store`),
    svg);
}

const pages = {
  overview: {
    title: 'Overview',
    async draw() {
      const o = await get('/ui/api/overview');
      const alive = o.workers.filter((w) => w.state === 'alive');
      const firing = (o.alerts.alerts || []).filter((a) => a.state === 'firing');
      const hour = o.minutes.slice(-60);
      return h('div', {},
        h('h1', {}, 'Overview'),
        h('section', { class: 'cards', 'aria-label': 'Jobs by state' },
          STATES.map((s) => h('div', { class: 'card stat' },
            h('div', { class: 'num' }, o.totals[s].toLocaleString()),
            h('div', {}, badge(s))))),
        h('section', { class: 'cards' },
          h('div', { class: 'card' }, h('h2', {}, 'Oldest waiting job'),
            o.oldest_queued_at ? h('p', {}, 'waiting since ', when(o.oldest_queued_at), ' in ',
              link(`#/jobs?q=${encodeURIComponent('queue:' + o.oldest_queue + ' state:queued')}`, o.oldest_queue))
              : h('p', { class: 'muted' }, 'Nothing is waiting.')),
          h('div', { class: 'card' }, h('h2', {}, 'Live workers'),
            h('p', {}, h('span', { class: 'num' }, alive.length), ` alive of ${o.workers.length} registered · `,
              `${alive.reduce((a, w) => a + w.running, 0)} of ${alive.reduce((a, w) => a + w.concurrency, 0)} slots busy`)),
          h('div', { class: 'card' }, h('h2', {}, 'Active alerts'),
            firing.length ? h('ul', {}, firing.map((a) => h('li', {}, h('span', { class: 'st st-dead' }, 'firing'), ' ',
              h('strong', {}, a.name), ` — ${a.message || a.condition}`)))
              : h('p', { class: 'muted' }, `None firing (${(o.alerts.alerts || []).length} rules).`))),
        h('section', { class: 'charts' },
          chart('Last hour, per minute', hour.length ? hour : [{ at: o.now, succeeded: 0, failed: 0 }], 1),
          chart('Last day, per 15 minutes', o.minutes.length ? o.minutes : [{ at: o.now, succeeded: 0, failed: 0 }], 15)),
        table('Queues', ['Queue', 'State', ...STATES],
          o.queues.map((q) => h('tr', {},
            h('th', { scope: 'row' }, link(`#/jobs?q=${encodeURIComponent('queue:' + q.name)}`, q.name)),
            h('td', {}, q.paused ? h('span', { class: 'st st-paused' }, 'paused') : 'active'),
            STATES.map((s) => h('td', { class: 'n' }, q.counts[s]))))));
    },
  },

  queues: {
    title: 'Queues',
    async draw() {
      const { queues } = await get('/v1/queues');
      const settings = await Promise.all(queues.map((q) =>
        get(`/v1/queues/${encodeURIComponent(q.name)}/settings`).catch(() => null)));
      const rows = queues.map((q, i) => {
        const st = settings[i] || {};
        const name = encodeURIComponent(q.name);
        return h('tr', {},
          h('th', { scope: 'row' }, link(`#/jobs?q=${encodeURIComponent('queue:' + q.name)}`, q.name)),
          h('td', {}, q.paused ? h('span', { class: 'st st-paused' }, 'paused') : 'active'),
          ['queued', 'scheduled', 'running', 'blocked', 'dead', 'succeeded'].map((s) => h('td', { class: 'n' }, q.counts[s])),
          h('td', {}, when(q.oldest_queued_at)),
          h('td', {}, st.concurrency ? `${st.running} / ${st.concurrency} running` : `${st.running ?? 0} running, no cap`),
          h('td', {}, st.rate ? `${st.rate.text} (${st.tokens === null || st.tokens === undefined ? '?' : st.tokens.toFixed(1)} tokens left)` : 'no limit'),
          CAN_CHANGE ? h('td', { class: 'actions' },
            q.paused
              ? button('Resume', () => act(`Resume ${q.name}`, () => post(`/v1/queues/${name}/resume`)), { 'data-key': `resume-${q.name}` })
              : button('Pause', () => act(`Pause ${q.name}`, () => post(`/v1/queues/${name}/pause`)), { 'data-key': `pause-${q.name}` }),
            button('Edit settings', () => editSettings(q.name, st), { 'data-key': `edit-${q.name}` })) : null);
      });
      const headers = ['Queue', 'State', 'Queued', 'Scheduled', 'Running', 'Blocked', 'Dead', 'Succeeded', 'Oldest waiting', 'Concurrency', 'Rate'];
      if (CAN_CHANGE) headers.push('Actions');
      return h('div', {}, h('h1', {}, 'Queues'), h('div', { id: 'settings-slot' }), table('Every queue', headers, rows));
    },
  },

  jobs: {
    title: 'Jobs',
    async draw(params) {
      if (params.q !== undefined && params.q !== ui.jobsQueryFromHash) {
        ui.jobsQuery = params.q; ui.jobsQueryFromHash = params.q; ui.jobsCursor = []; ui.selected.clear();
      }
      const cursor = ui.jobsCursor[ui.jobsCursor.length - 1] || '';
      const page = await get(`/ui/api/jobs?${qs({ q: ui.jobsQuery, cursor, limit: 50 })}`);
      const form = h('form', { class: 'search', role: 'search', onsubmit: (e) => {
        e.preventDefault();
        ui.jobsQuery = e.target.elements.q.value; ui.jobsCursor = []; ui.selected.clear();
        ui.jobsQueryFromHash = ui.jobsQuery;
        history.replaceState(null, '', `#/jobs?q=${encodeURIComponent(ui.jobsQuery)}`);
        refresh();
      } },
        h('label', { for: 'q' }, 'Search'),
        h('input', { id: 'q', name: 'q', type: 'search', value: ui.jobsQuery, size: 40,
          placeholder: 'queue:mail state:dead kind:send error:"timed out" text',
          'aria-describedby': 'q-help', oninput: (e) => { ui.jobsQuery = e.target.value; } }),
        h('button', { type: 'submit' }, 'Search'),
        h('p', { id: 'q-help', class: 'hint' }, 'Qualifiers: queue: kind: state: id: unique: error: group: payload.field:value (payload.customer.id:42) and free text (matches id, kind, queue, unique key, payload, errors). ',
          'queue:, kind: and state: are looked up in the store; group:, payload fields, unique:, error: and text are checked on at most 2,000 listed jobs per page (no store indexes groups for listing or payload fields), so narrow them with queue: or state:.'));
      const rows = page.jobs.map((j) => h('tr', {},
        CAN_CHANGE ? h('td', {}, h('input', { type: 'checkbox', 'aria-label': `Select job ${j.id}`, 'data-key': `sel-${j.id}`,
          checked: ui.selected.has(j.id), onchange: (e) => { e.target.checked ? ui.selected.add(j.id) : ui.selected.delete(j.id); } })) : null,
        h('td', {}, jobLink(j.id)),
        h('td', {}, j.kind), h('td', {}, j.queue), h('td', {}, badge(j.state)),
        h('td', { class: 'n' }, j.priority), h('td', { class: 'n' }, `${j.attempt}/${j.max_attempts}`),
        h('td', {}, when(j.created_at)),
        h('td', { class: 'err' }, j.errors.length ? j.errors[j.errors.length - 1].message : '')));
      const headers = ['Id', 'Kind', 'Queue', 'State', 'Priority', 'Attempt', 'Created', 'Last error'];
      if (CAN_CHANGE) headers.unshift('Select');
      const paging = h('nav', { class: 'paging', 'aria-label': 'Pages' },
        button('Newest', () => { ui.jobsCursor = []; refresh(); }, { disabled: !ui.jobsCursor.length }),
        button('Older', () => { ui.jobsCursor.push(page.next_cursor); refresh(); }, { disabled: !page.next_cursor }),
        h('span', { class: 'muted' }, `${page.jobs.length} shown` + (page.partial ? ` · stopped after reading ${page.scanned} jobs; "Older" goes on` : '')));
      return h('div', {}, h('h1', {}, 'Jobs'), form, CAN_CHANGE ? bulkBar() : null,
        table('Jobs, newest first', headers, rows, { id: 'jobs-table' }), paging);
    },
  },

  job: {
    title: 'Job',
    async draw(params) {
      const j = await get(`/v1/jobs/${params.id}`);
      let events = null;
      try { events = await get(`/v1/jobs/${params.id}/events`); } catch (e) { events = e.status === 404 ? null : { error: e.message }; }
      let logs;
      try { logs = await get(`/v1/jobs/${params.id}/logs?limit=1000`); } catch (e) { logs = { error: e.message }; }
      const actions = CAN_CHANGE ? h('div', { class: 'actions' },
        !['succeeded', 'dead', 'cancelled', 'skipped'].includes(j.state)
          ? button('Cancel', () => act('Cancel', () => post(`/v1/jobs/${j.id}/cancel`, { reason: 'cancelled from the dashboard' }))) : null,
        ['dead', 'cancelled', 'skipped'].includes(j.state) ? button('Retry', () => act('Retry', () => post(`/v1/jobs/${j.id}/retry`))) : null,
        ['scheduled', 'queued', 'blocked'].includes(j.state) ? h('span', {},
          h('label', { for: 'prio' }, 'Priority '),
          h('select', { id: 'prio', 'data-key': 'prio' }, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((p) => h('option', { value: p, selected: p === j.priority }, p))),
          ' ', button('Reprioritize', () => act('Reprioritize', () => post(`/v1/jobs/${j.id}/reprioritize`, { priority: Number(document.getElementById('prio').value) })))) : null) : null;
      const dl = (pairs) => h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      let evList;
      if (events === null) evList = h('p', { class: 'muted' }, 'This server keeps no event timeline (GET /v1/jobs/{id}/events is not available).');
      else if (events.error) evList = h('p', { class: 'bad' }, events.error);
      else evList = h('ol', { class: 'timeline' }, (events.events || []).map((e) =>
        h('li', {}, when(e.at), ' ', e.from ? `${e.from} → ` : '', badge(e.to), e.attempt ? ` attempt ${e.attempt}` : '', e.actor ? ` by ${e.actor}` : '')));
      return h('div', {},
        h('h1', {}, 'Job ', h('code', {}, j.id)), actions,
        dl([
          ['State', badge(j.state)], ['Kind', j.kind], ['Queue', link(`#/jobs?q=${encodeURIComponent('queue:' + j.queue)}`, j.queue)],
          ['Priority', j.priority], ['Attempt', `${j.attempt} of ${j.max_attempts}`], ['Retry policy', j.retry || 'default'],
          ['Created', when(j.created_at)], ['Runs at', when(j.run_at)], ['Started', when(j.started_at)], ['Finished', when(j.finished_at)],
          ['Lease', j.lease ? [h('code', {}, j.lease.worker_id), ' until ', when(j.lease.expires_at)] : 'none'],
          ['Unique key', j.unique_key || '—'],
          ['Depends on', j.depends_on.length ? h('ul', { class: 'plain' }, j.depends_on.map((d) => h('li', {}, jobLink(d)))) : 'nothing'],
          ['Workflow', j.workflow_id ? link(`#/workflows/${j.workflow_id}`, j.workflow_id) : '—'],
        ]),
        j.progress ? h('section', {}, h('h2', {}, 'Progress'),
          h('label', { for: 'progress' }, `${j.progress.percent.toFixed(0)} %${j.progress.message ? ' — ' + j.progress.message : ''}`), ' ',
          h('progress', { id: 'progress', max: 100, value: j.progress.percent })) : null,
        h('section', {}, h('h2', {}, 'Payload'), h('pre', { tabindex: 0 }, JSON.stringify(j.payload, null, 2))),
        h('section', {}, h('h2', {}, 'Result'), j.result === null || j.result === undefined ? h('p', { class: 'muted' }, 'No result stored.') : h('pre', { tabindex: 0 }, JSON.stringify(j.result, null, 2))),
        j.checkpoint !== undefined ? h('section', {}, h('h2', {}, 'Checkpoint'), h('pre', { tabindex: 0 }, JSON.stringify(j.checkpoint, null, 2))) : null,
        table('Attempts and errors', ['Attempt', 'When', 'Kind', 'Message'],
          j.errors.map((e) => h('tr', {}, h('td', { class: 'n' }, e.attempt), h('td', {}, when(e.at)), h('td', {}, e.kind), h('td', { class: 'err' }, e.message)))),
        h('section', {}, h('h2', {}, 'Events'), evList),
        logs.error ? h('section', {}, h('h2', {}, 'Log'), h('p', { class: 'bad' }, logs.error))
          : table(`Log${logs.dropped ? ` (${logs.dropped} oldest lines dropped by the caps)` : ''}`, ['Line', 'When', 'Level', 'Attempt', 'Message'],
            logs.lines.map((l) => h('tr', {}, h('td', { class: 'n' }, l.seq), h('td', {}, when(l.at)), h('td', {}, l.level), h('td', { class: 'n' }, l.attempt), h('td', {}, h('code', {}, l.message))))));
    },
  },

  dlq: {
    title: 'Dead letters',
    async draw() {
      const f = ui.dlq;
      const page = await get(`/v1/dlq?${qs({ queue: f.queue, kind: f.kind, limit: 100 })}`);
      const shown = f.error ? page.jobs.filter((j) => j.errors.some((e) => e.message.includes(f.error))) : page.jobs;
      const filter = { queue: f.queue || undefined, kind: f.kind || undefined, error: f.error || undefined };
      const input = (k, label) => [h('label', { for: `dlq-${k}` }, label),
        h('input', { id: `dlq-${k}`, value: f[k], 'data-key': `dlq-${k}`, oninput: (e) => { f[k] = e.target.value; } })];
      const form = h('form', { class: 'search', onsubmit: (e) => { e.preventDefault(); ui.selected.clear(); refresh(); } },
        input('queue', 'Queue'), input('kind', 'Kind'), input('error', 'Error contains'), h('button', { type: 'submit' }, 'Filter'));
      const byFilter = (what, path) => async () => {
        const dry = await post(path, Object.assign({ dry_run: true }, filter));
        if (!dry.count) return 'nothing matches';
        if (!confirm(`${what} ${dry.count} dead job(s) matching the filter?`)) return 'not confirmed';
        const done = await post(path, filter);
        return `${done.count} job(s)`;
      };
      const bySel = (path) => async () => {
        const ids = [...ui.selected];
        if (!ids.length) return 'nothing selected';
        const done = await post(path, { ids });
        ui.selected.clear();
        return `${done.count} job(s)`;
      };
      const actions = CAN_CHANGE ? h('div', { class: 'actions' },
        button('Replay selected', () => act('Replay', bySel('/v1/dlq/replay'))),
        button('Delete selected', () => act('Delete', bySel('/v1/dlq/delete'))),
        button('Replay all matching…', () => act('Replay', byFilter('Replay', '/v1/dlq/replay'))),
        button('Delete all matching…', () => act('Delete', byFilter('Delete', '/v1/dlq/delete')))) : null;
      const headers = ['Id', 'Kind', 'Queue', 'Attempts', 'Died', 'Last error'];
      if (CAN_CHANGE) headers.unshift('Select');
      return h('div', {}, h('h1', {}, 'Dead-letter queue'), form, actions,
        table('Dead jobs, newest first', headers, shown.map((j) => h('tr', {},
          CAN_CHANGE ? h('td', {}, h('input', { type: 'checkbox', 'aria-label': `Select job ${j.id}`, 'data-key': `sel-${j.id}`,
            checked: ui.selected.has(j.id), onchange: (e) => { e.target.checked ? ui.selected.add(j.id) : ui.selected.delete(j.id); } })) : null,
          h('td', {}, jobLink(j.id)), h('td', {}, j.kind), h('td', {}, j.queue), h('td', { class: 'n' }, j.attempt),
          h('td', {}, when(j.finished_at)), h('td', { class: 'err' }, j.errors.length ? j.errors[j.errors.length - 1].message : '')))));
    },
  },

  schedules: {
    title: 'Scheduled',
    async draw() {
      const [{ schedules }, scheduled] = await Promise.all([get('/v1/schedules'), get('/ui/api/jobs?q=state%3Ascheduled&limit=50')]);
      const cron = table('Cron schedules', ['Name', 'Cron', 'State', 'Job', 'Next run', 'Last run', 'Runs'].concat(CAN_CHANGE ? ['Actions'] : []),
        schedules.map((s) => {
          const n = encodeURIComponent(s.name);
          return h('tr', {},
            h('th', { scope: 'row' }, s.name), h('td', {}, h('code', {}, s.cron), s.tz && s.tz !== 'UTC' ? ` (${s.tz})` : ''),
            h('td', {}, s.paused ? h('span', { class: 'st st-paused' }, 'paused') : 'active'),
            h('td', {}, `${s.job.kind} → ${s.job.queue || 'default'}`),
            h('td', {}, when(s.next_run)), h('td', {}, s.last_job_id ? [when(s.last_tick), ' ', jobLink(s.last_job_id)] : when(s.last_tick)),
            h('td', { class: 'n' }, s.runs),
            CAN_CHANGE ? h('td', { class: 'actions' },
              button('Trigger now', () => act(`Trigger ${s.name}`, async () => (await post(`/v1/schedules/${n}/trigger`)).job_id)),
              s.paused ? button('Resume', () => act(`Resume ${s.name}`, () => post(`/v1/schedules/${n}/resume`)))
                : button('Pause', () => act(`Pause ${s.name}`, () => post(`/v1/schedules/${n}/pause`)))) : null);
        }));
      const jobs = table('Scheduled jobs (newest first)', ['Id', 'Kind', 'Queue', 'Runs at', 'Attempt'],
        scheduled.jobs.map((j) => h('tr', {}, h('td', {}, jobLink(j.id)), h('td', {}, j.kind), h('td', {}, j.queue),
          h('td', {}, when(j.run_at)), h('td', { class: 'n' }, `${j.attempt}/${j.max_attempts}`))));
      return h('div', {}, h('h1', {}, 'Scheduled and cron'), cron, jobs);
    },
  },

  workers: {
    title: 'Workers',
    async draw() {
      const { workers } = await get('/v1/workers');
      return h('div', {}, h('h1', {}, 'Workers'),
        table('Registered workers, most recently seen first', ['Id', 'State', 'Host', 'PID', 'Queues', 'Capabilities', 'Busy / concurrency', 'Heartbeat', 'Started'],
          workers.map((w) => h('tr', {},
            h('td', {}, h('code', {}, w.id)), h('td', {}, h('span', { class: `st st-${w.state}` }, w.state)),
            h('td', {}, w.hostname), h('td', { class: 'n' }, w.pid), h('td', {}, w.queues.join(', ') || 'all'),
            h('td', {}, w.capabilities.join(', ') || '—'), h('td', { class: 'n' }, `${w.running} / ${w.concurrency}`),
            h('td', {}, h('span', { title: new Date(w.last_seen_at).toISOString() }, `${dur(Math.max(0, Date.now() - w.last_seen_at))} ago`)),
            h('td', {}, when(w.started_at))))));
    },
  },

  workflows: {
    title: 'Workflows',
    async draw() {
      const { workflows } = await get('/v1/workflows?limit=100');
      return h('div', {}, h('h1', {}, 'Workflows'),
        table('Workflows, newest first', ['Id', 'Name', 'State', 'Jobs by state', 'Created', 'Finished'],
          workflows.map((w) => h('tr', {},
            h('td', {}, link(`#/workflows/${w.id}`, w.id)), h('td', {}, w.name), h('td', {}, badge(w.state)),
            h('td', {}, STATES.filter((s) => w.counts[s]).map((s) => `${w.counts[s]} ${s}`).join(', ') || '—'),
            h('td', {}, when(w.created_at)), h('td', {}, when(w.finished_at))))));
    },
  },

  workflow: {
    title: 'Workflow',
    async draw(params) {
      const v = await get(`/ui/api/workflows/${encodeURIComponent(params.id)}`);
      const w = v.workflow;
      const ended = ['succeeded', 'failed', 'cancelled'].includes(w.state);
      const actions = CAN_CHANGE ? h('div', { class: 'actions' },
        !ended ? button('Cancel workflow', () => act('Cancel workflow', () => post(`/v1/workflows/${encodeURIComponent(w.id)}/cancel`, {}))) : null,
        ended && w.state !== 'succeeded' ? button('Retry workflow', () => act('Retry workflow', () => post(`/v1/workflows/${encodeURIComponent(w.id)}/retry`))) : null) : null;
      return h('div', {}, h('h1', {}, `Workflow ${w.name}`),
        h('p', {}, badge(w.state), ` · ${w.phase} · created `, when(w.created_at), w.error ? h('span', { class: 'bad' }, ` · ${w.error}`) : ''),
        actions, dag(v),
        table('Tasks', ['Task', 'Kind', 'Level', 'State', 'Attempt', 'Job', 'Last error'],
          v.tasks.map((t) => h('tr', {}, h('th', { scope: 'row' }, t.id), h('td', {}, t.kind), h('td', { class: 'n' }, t.level),
            h('td', {}, badge(t.state)), h('td', { class: 'n' }, t.attempt), h('td', {}, t.job_id ? jobLink(t.job_id) : '—'),
            h('td', { class: 'err' }, t.last_error || '')))));
    },
  },
};

// The DAG: one column per level, left to right; each task a box coloured by state and
// labelled with its state in words; skipped tasks greyed; edges as curves.
function dag(v) {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, val);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const levels = [];
  for (const t of v.tasks) (levels[t.level] = levels[t.level] || []).push(t);
  const BW = 150, BH = 46, GX = 60, GY = 18;
  const pos = {};
  levels.forEach((col, x) => col.forEach((t, y) => { pos[t.id] = { x: 10 + x * (BW + GX), y: 10 + y * (BH + GY) }; }));
  const W = 20 + levels.length * (BW + GX) - GX, H = 20 + Math.max(1, ...levels.map((c) => c.length)) * (BH + GY) - GY;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'dag', role: 'img',
    'aria-label': `Workflow graph: ${v.tasks.map((t) => `${t.id} ${t.state || 'pruned'}`).join(', ')}` });
  for (const [from, to] of v.edges) {
    const a = pos[from], b = pos[to];
    if (!a || !b) continue;
    const x1 = a.x + BW, y1 = a.y + BH / 2, x2 = b.x, y2 = b.y + BH / 2, mx = (x1 + x2) / 2;
    svg.append(el('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: 'edge' }));
  }
  for (const t of v.tasks) {
    const p = pos[t.id];
    const g = el('g', { class: `task task-${t.state || 'unknown'}`, 'data-task': t.id, 'data-state': t.state || 'unknown' });
    g.append(el('title', {}, `${t.id} (${t.kind}): ${t.state || 'pruned'}${t.last_error ? ' — ' + t.last_error : ''}`));
    g.append(el('rect', { x: p.x, y: p.y, width: BW, height: BH, rx: 6 }));
    g.append(el('text', { x: p.x + 8, y: p.y + 19, class: 'name' }, t.id.length > 18 ? t.id.slice(0, 17) + '…' : t.id));
    g.append(el('text', { x: p.x + 8, y: p.y + 36, class: 'state' }, (t.state || 'pruned') + (t.instances ? ` ×${t.instances}` : '')));
    if (t.job_id) {
      const a = el('a', { href: `#/jobs/${t.job_id}` });
      a.append(g);
      svg.append(a);
    } else svg.append(g);
  }
  return h('figure', { class: 'card scroll' }, h('figcaption', {}, 'Graph (levels left to right)'), svg);
}

function bulkBar() {
  const sel = h('select', { id: 'bulk-action', 'data-key': 'bulk-action' },
    h('option', { value: 'cancel' }, 'Cancel'), h('option', { value: 'retry' }, 'Retry'),
    h('option', { value: 'delete' }, 'Delete'), h('option', { value: 'reprioritize' }, 'Reprioritize'));
  const prio = h('input', { id: 'bulk-priority', type: 'number', min: 0, max: 9, value: 5, size: 2, 'data-key': 'bulk-priority' });
  const run = (all) => act('Bulk action', async () => {
    const body = { action: sel.value, priority: sel.value === 'reprioritize' ? Number(prio.value) : undefined };
    if (all) body.q = ui.jobsQuery; else body.ids = [...ui.selected];
    if (!all && !body.ids.length) return 'nothing selected';
    const dry = await post('/ui/api/jobs/bulk', Object.assign({ dry_run: true }, body));
    if (!dry.eligible) return `none of the ${dry.matched} matching job(s) can be changed this way`;
    const scope = all ? `every job matching “${ui.jobsQuery || '(all)'}”` : 'the selected jobs';
    if (!confirm(`${sel.value} ${dry.eligible} of ${dry.matched} job(s) — ${scope}${dry.capped ? ' (capped at the first 10000)' : ''}?`)) return 'not confirmed';
    const done = await post('/ui/api/jobs/bulk', body);
    ui.selected.clear();
    return `${done.done} of ${done.eligible} changed${done.error ? '; first failure: ' + done.error : ''}`;
  });
  return h('div', { class: 'actions bulk', role: 'group', 'aria-label': 'Bulk actions' },
    h('label', { for: 'bulk-action' }, 'Action'), sel,
    h('label', { for: 'bulk-priority' }, 'Priority'), prio,
    button('Apply to selected', () => run(false)),
    button('Apply to all matching…', () => run(true)));
}

function editSettings(queue, st) {
  const slot = document.getElementById('settings-slot');
  const conc = h('input', { id: 'set-conc', type: 'number', min: 1, value: st.concurrency || '' });
  const rate = h('input', { id: 'set-rate', value: st.rate ? st.rate.text.split(' ')[0] : '', placeholder: '20/s, 600/m or empty' });
  const form = h('form', { class: 'card', 'aria-label': `Settings of ${queue}`, onsubmit: (e) => {
    e.preventDefault();
    const body = { concurrency: conc.value ? Number(conc.value) : null, rate: rate.value.trim() || null };
    ui.editing = null;
    act(`Settings of ${queue}`, () => api('PATCH', `/v1/queues/${encodeURIComponent(queue)}/settings`, body));
  } },
    h('h2', {}, `Settings of ${queue}`),
    h('label', { for: 'set-conc' }, 'Concurrency cap (empty: none)'), conc,
    h('label', { for: 'set-rate' }, 'Rate limit (empty: none)'), rate,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'),
      button('Close', () => { ui.editing = null; slot.replaceChildren(); })));
  ui.editing = form;
  slot.replaceChildren(form);
  conc.focus();
}

// ---------- routing, drawing, live updates ----------

function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'overview';
  const [path, query] = hash.split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  const parts = path.split('/');
  if (parts[0] === 'jobs' && parts[1]) return { page: 'job', params: { id: parts[1] } };
  if (parts[0] === 'workflows' && parts[1]) return { page: 'workflow', params: { id: decodeURIComponent(parts[1]) } };
  return { page: pages[parts[0]] ? parts[0] : 'overview', params };
}

const NAV = [['overview', 'Overview'], ['queues', 'Queues'], ['jobs', 'Jobs'], ['dlq', 'Dead letters'],
  ['schedules', 'Scheduled'], ['workers', 'Workers'], ['workflows', 'Workflows']];

function drawNav(current) {
  const top = { job: 'jobs', workflow: 'workflows' }[current] || current;
  document.getElementById('nav').replaceChildren(...NAV.map(([id, label]) =>
    h('a', { href: `#/${id}`, 'aria-current': id === top ? 'page' : null }, label)));
}

let drawing = false, again = false, lastPage = null;

// Redraws the current page; keeps focus on the element with the same data-key.
async function refresh() {
  if (drawing) { again = true; return; }
  drawing = true;
  try {
    const hash = location.hash;
    const { page, params } = route();
    const main = document.getElementById('main');
    const key = document.activeElement && document.activeElement.getAttribute && document.activeElement.getAttribute('data-key');
    const focusInMain = main.contains(document.activeElement);
    let node;
    try {
      node = await pages[page].draw(params);
    } catch (e) {
      node = h('div', {}, h('h1', {}, pages[page].title), h('p', { class: 'bad', role: 'alert' }, e.message));
    }
    if (page === 'queues' && ui.editing) {
      const slot = node.querySelector('#settings-slot');
      if (slot) slot.append(ui.editing);
    }
    main.replaceChildren(node);
    if (page !== lastPage) {
      document.title = `${pages[page].title} · Quern`;
      drawNav(page);
      lastPage = page;
      main.focus();
    } else if (focusInMain && key) {
      const el = main.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (el) el.focus();
    }
    document.body.dataset.updated = String(Date.now());
    // Which route this draw was for (tests wait for it: a hash change draws asynchronously).
    document.body.dataset.drawn = hash;
  } finally {
    drawing = false;
    if (again) { again = false; refresh(); }
  }
}

// Live updates: SSE when /v1/events answers, else a poll every second. Hidden tabs pause.
const live = { source: null, timer: null, pending: null, mode: 'starting' };

function soon() {
  if (live.pending) return;
  live.pending = setTimeout(() => { live.pending = null; if (!document.hidden) refresh(); }, 200);
}

function startPolling() {
  live.mode = 'polling';
  document.body.dataset.live = 'polling';
  if (!live.timer) live.timer = setInterval(() => { if (!document.hidden) refresh(); }, 1000);
}

function startLive() {
  if (live.source || live.timer) return;
  if (!window.EventSource) { startPolling(); return; }
  let opened = false;
  const es = new EventSource('/v1/events');
  live.source = es;
  es.onopen = () => {
    opened = true; live.mode = 'sse'; document.body.dataset.live = 'sse';
    // Besides job events, workers and rates change on their own: a slow poll covers them.
    if (!live.timer) live.timer = setInterval(() => { if (!document.hidden) refresh(); }, 5000);
  };
  es.addEventListener('job', soon);
  es.onerror = () => {
    if (!opened) { es.close(); live.source = null; startPolling(); }
  };
}

function stopLive() {
  if (live.source) { live.source.close(); live.source = null; }
  if (live.timer) { clearInterval(live.timer); live.timer = null; }
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) stopLive();
  else { refresh(); startLive(); }
});
window.addEventListener('hashchange', () => { ui.selected.clear(); refresh(); });
refresh();
startLive();
