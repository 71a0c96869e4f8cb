// Browser test of the dashboard, run by crates/quern-cli/tests/it/dashboard.rs against a
// running `quern serve` (SQLite or Redis). Drives Debian's Chromium through playwright-core
// (never a downloaded browser). Exits non-zero, with the reason on stderr, on any failure.
//
// Env: QUERN_URL, ADMIN_TOKEN, READ_TOKEN, CHROMIUM (default /usr/bin/chromium),
//      SHOTS (a directory: save screenshots of every page at 1280 and 390 px there).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const BASE = process.env.QUERN_URL;
const ADMIN = process.env.ADMIN_TOKEN;
const READ = process.env.READ_TOKEN;
const SHOTS = process.env.SHOTS || '';
if (!BASE || !ADMIN || !READ) throw new Error('QUERN_URL, ADMIN_TOKEN and READ_TOKEN are needed');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function call(method, path, body, token = ADMIN) {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function until(what, ms, fn) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- data: jobs in two queues, a dead job, a workflow with tasks in several states ----
for (let i = 0; i < 3; i++) await call('POST', '/v1/jobs', { kind: 'send.mail', queue: 'mail', payload: { to: `user${i}@example.com` } });
await call('POST', '/v1/jobs', { kind: 'build.report', queue: 'reports', payload: { month: '2026-11' }, delay_ms: 3600000 });
const worker = (await call('POST', '/v1/workers', { id: 'browser-test-worker', queues: ['doomed', 'wf'], hostname: 'test-host', pid: 4242, concurrency: 4 })).id || 'browser-test-worker';
const dead = (await call('POST', '/v1/jobs', { kind: 'explode', queue: 'doomed', payload: { n: 1 }, max_attempts: 1 })).id;
const leased = await call('POST', '/v1/lease', { worker_id: worker, queues: ['doomed'], max: 1 });
check(leased.jobs.length === 1 && leased.jobs[0].id === dead, 'the doomed job is leased');
await call('POST', `/v1/jobs/${dead}/fail`, { token: leased.jobs[0].token, error: 'boom: the disk is on fire', retryable: false });
check((await call('GET', `/v1/jobs/${dead}`)).state === 'dead', 'the doomed job is dead');

const WF = `name: pipeline
tasks:
  - id: fetch
    kind: wf.fetch
    queue: wf
  - id: parse
    kind: wf.parse
    queue: wf
    depends_on: [fetch]
  - id: store
    kind: wf.store
    queue: wf
    depends_on: [fetch]
  - id: publish
    kind: wf.publish
    queue: wf
    depends_on: [parse]
`;
const wf = (await call('POST', '/v1/workflows', { source: WF })).id;
{
  const a = await call('POST', '/v1/lease', { worker_id: worker, queues: ['wf'], max: 1 });
  check(a.jobs.length === 1 && a.jobs[0].kind === 'wf.fetch', 'the first task is leased');
  await call('POST', `/v1/jobs/${a.jobs[0].id}/complete`, { token: a.jobs[0].token, result: { rows: 3 } });
  const b = await call('POST', '/v1/lease', { worker_id: worker, queues: ['wf'], max: 10 });
  const parse = b.jobs.find((j) => j.kind === 'wf.parse');
  check(parse, 'the parse task is leased');
  for (const j of b.jobs) {
    if (j === parse) await call('POST', `/v1/jobs/${j.id}/fail`, { token: j.token, error: 'parse error at line 3', retryable: false });
    else await call('POST', `/v1/jobs/${j.id}/release`, { token: j.token });
  }
}
const wfStatus = await call('GET', `/v1/workflows/${wf}/status`);
const taskStates = Object.fromEntries(wfStatus.tasks.map((t) => [t.id, t.state]));
check(taskStates.fetch === 'succeeded' && taskStates.parse === 'dead', `workflow task states ${JSON.stringify(taskStates)}`);

// ---- the browser ----
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const problems = [];
// Network 404s of optional routes (the SSE stream, a job's event timeline on a server without
// them) are how the page discovers they are absent: they are not script errors.
const optional = (url) => /\/v1\/events$|\/v1\/jobs\/[^/]+\/events$/.test(url || '');

async function session(token) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (optional(m.location().url)) return;
    problems.push(`console error: ${m.text()} at ${m.location().url}`);
  });
  await page.goto(`${BASE}/`);
  check(page.url().endsWith('/login'), 'a visitor without a session is sent to /login');
  await page.fill('#token', 'wrong-token');
  await page.click('button[type=submit]');
  check(await page.locator('.error[role=alert]').isVisible(), 'a wrong token is refused with a message');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('#nav a');
  // The refused login above answered 401, as it should; only what follows counts.
  problems.length = 0;
  return { context, page };
}

async function open(page, hash) {
  await page.goto(`${BASE}/#/${hash}`);
  // Wait for the draw of this route itself: the previous page's heading is still there while
  // the new page draws, and the new draw moves the focus to <main> when it lands.
  await page.waitForFunction((want) => document.body.dataset.drawn === new URL(want).hash && document.querySelector('main h1'),
    `${BASE}/#/${hash}`);
  const bad = await page.locator('main [role=alert]').count();
  check(bad === 0, `#/${hash} renders without an error`);
}

// Usability on one open page, at 1280 px and at 390 px: every form control has a label, every
// state badge carries its state in words (colour is only a second cue), every time shown
// relative has its absolute time in a title, and at 390 px the page does not scroll sideways
// (wide tables scroll inside their own box).
async function usable(page, hash) {
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(100);
    const r = await page.evaluate(() => {
      const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
        .map((e) => e.outerHTML.slice(0, 80));
      const mute = [...document.querySelectorAll('main .st')].filter((e) => !e.textContent.trim()).length;
      const times = [...document.querySelectorAll('main time')];
      const untitled = times.filter((t) => !/\d{4}-\d\d-\d\d \d\d:\d\d/.test(t.title || '')).length;
      return { unlabelled, mute, times: times.length, untitled, wide: document.documentElement.scrollWidth - window.innerWidth };
    });
    if (r.unlabelled.length || r.mute || r.untitled || (width === 390 && r.wide > 1)) {
      throw new Error(`#/${hash} at ${width} px: unlabelled ${JSON.stringify(r.unlabelled)}, ${r.mute} badges without text, ${r.untitled} of ${r.times} times without an absolute title, ${r.wide} px wider than the screen`);
    }
  }
  check(true, `#/${hash}: labelled controls, states in words, absolute times, no sideways scroll at 390 px`);
}

async function shoot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${SHOTS}/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

const admin = await session(ADMIN);
{
  const p = admin.page;
  const PAGES = [['overview', 'overview'], ['queues', 'queues'], ['jobs', 'jobs'], [`jobs/${dead}`, 'job'], ['dlq', 'dlq'],
    ['schedules', 'schedules'], ['workers', 'workers'], ['workflows', 'workflows'], [`workflows/${wf}`, 'workflow']];
  for (const [hash, name] of PAGES) {
    await open(p, hash);
    await usable(p, hash);
    await shoot(p, name);
  }
  check(problems.length === 0, `no console errors on any page (${problems.join('; ')})`);

  // The job page shows the job's log (GET /v1/jobs/{id}/logs): the doomed job wrote none.
  await open(p, `jobs/${dead}`);
  check(await p.locator('caption', { hasText: /^Log/ }).count() === 1, 'the job page has its log table');

  // Keyboard: the skip link is the first thing Tab reaches from the top of the page, and it
  // takes the focus when tabbed to.
  await open(p, 'overview');
  check(await p.evaluate(() => document.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')?.classList.contains('skip')),
    'the skip link is the first focusable element');
  await p.focus('a.skip');
  check(await p.evaluate(() => document.activeElement?.classList.contains('skip')), 'the skip link takes the focus');

  // The overview's charts show the store's per-minute rollups: one task succeeded, two jobs
  // failed to dead (the doomed job and the parse task) in this test.
  await open(p, 'overview');
  const caption = await p.locator('figure.card figcaption').first().textContent();
  const stats = await call('GET', '/v1/stats/minutes?minutes=60');
  const sum = (f) => stats.minutes.reduce((a, m) => a + m[f], 0);
  check(sum('succeeded') === 1 && sum('failed') === 2 && sum('dead') === 2, `the store's rollups: ${sum('succeeded')}/${sum('failed')}/${sum('dead')}`);
  check(caption.includes('1 succeeded') && caption.includes('2 failed attempts (2 dead)'), `the hour chart says so: ${caption}`);
  check(await p.locator('svg.chart rect').count() > 0, 'the hour chart draws bars');

  // Search by a payload field and by group (checked on the listed jobs).
  await open(p, 'jobs');
  await p.fill('#q', 'payload.to:user1@example.com');
  await p.press('#q', 'Enter');
  await until('the payload search answered', 3000, async () =>
    (await p.locator('main tbody tr').count()) === 1 && (await p.locator('main').textContent()).includes('send.mail'));
  check(true, 'payload.to: finds the one job with that field');
  await p.fill('#q', 'group:nobody');
  await p.press('#q', 'Enter');
  await until('the group search answered', 3000, async () => !(await p.locator('main').textContent()).includes('send.mail'));
  check(true, 'group: with no such group finds nothing');
  await p.fill('#q', '');
  await p.press('#q', 'Enter');

  // The page reports how it gets updates.
  const mode = await p.evaluate(() => document.body.dataset.live);
  // This server has GET /v1/events, so the page must be on the stream, not the fallback.
  check(mode === 'sse', `live updates by ${mode} (the server streams events)`);

  // A job enqueued through the API appears on the open jobs page without reload, within 2 s.
  await open(p, 'jobs');
  const marker = await p.evaluate(() => { window.__marker = 1; return 1; });
  const t0 = Date.now();
  const liveId = (await call('POST', '/v1/jobs', { kind: 'arrives.live', queue: 'mail', payload: {} })).id;
  await p.waitForSelector(`a[href="#/jobs/${liveId}"]`, { timeout: 2000 });
  check(await p.evaluate(() => window.__marker) === marker, `the new job appeared in ${Date.now() - t0} ms without a reload`);

  // Pausing a queue in the UI pauses it in the store.
  await open(p, 'queues');
  await p.click('button[data-key="pause-mail"]');
  await until('queue mail paused in the store', 3000, async () =>
    (await call('GET', '/v1/queues/mail')).paused === true);
  check(true, 'pausing a queue in the UI paused it in the store');
  await p.waitForSelector('button[data-key="resume-mail"]');

  // Replaying a dead job from the UI queues it.
  await open(p, 'dlq');
  await p.check(`input[data-key="sel-${dead}"]`);
  await p.click('text=Replay selected');
  await until('the dead job queued again', 3000, async () =>
    (await call('GET', `/v1/jobs/${dead}`)).state === 'queued');
  check(true, 'replaying a dead job from the UI queued it');

  // The DAG: each task drawn with its state in words and the colour of that state.
  await open(p, `workflows/${wf}`);
  const drawn = await p.evaluate(() => [...document.querySelectorAll('svg.dag g.task')].map((g) => ({
    id: g.dataset.task, state: g.dataset.state, text: g.querySelector('text.state').textContent,
    fill: getComputedStyle(g.querySelector('rect')).fill,
  })));
  const now = Object.fromEntries((await call('GET', `/v1/workflows/${wf}/status`)).tasks.map((t) => [t.id, t.state]));
  const FILL = { succeeded: 'rgb(200, 230, 201)', dead: 'rgb(255, 205, 210)', queued: 'rgb(225, 217, 255)',
    running: 'rgb(187, 222, 251)', cancelled: 'rgb(236, 239, 241)', skipped: 'rgb(238, 238, 238)',
    blocked: 'rgb(255, 240, 214)', scheduled: 'rgb(255, 240, 214)' };
  check(drawn.length === 4, 'the DAG draws four tasks');
  for (const d of drawn) {
    check(d.state === now[d.id] && d.text.startsWith(d.state), `task ${d.id} is labelled ${d.state}`);
    check(d.fill === FILL[d.state], `task ${d.id} (${d.state}) is filled ${d.fill}`);
  }
  check(await p.locator('svg.dag path.edge').count() === 3, 'the DAG draws three edges');

  // A change without the CSRF header is refused even for an admin session.
  const noCsrf = await p.evaluate(async () => (await fetch('/v1/queues/mail/resume', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
  check(noCsrf === 403, `an admin session's POST without the CSRF token gets ${noCsrf}`);
}

// A read session sees no action buttons, and its forged POSTs are refused.
problems.length = 0;
const reader = await session(READ);
{
  const p = reader.page;
  for (const hash of ['queues', 'jobs', `jobs/${dead}`, 'dlq', 'schedules', `workflows/${wf}`]) {
    await open(p, hash);
    const n = await p.evaluate(() => document.querySelectorAll('main .actions button, main input[type=checkbox]').length);
    check(n === 0, `a read session sees no action buttons on #/${hash}`);
  }
  check(problems.length === 0, `no console errors for the read session (${problems.join('; ')})`);
  const forged = await p.evaluate(async () => {
    const csrf = document.querySelector('meta[name="quern-csrf"]').content;
    const h = { 'Content-Type': 'application/json', 'X-Quern-CSRF': csrf };
    const a = await fetch('/v1/queues/mail/resume', { method: 'POST', headers: h, body: '{}' });
    const b = await fetch('/ui/api/jobs/bulk', { method: 'POST', headers: h, body: JSON.stringify({ action: 'cancel', q: '' }) });
    return [a.status, b.status];
  });
  check(forged[0] === 403 && forged[1] === 403, `a read session's forged POSTs are refused (${forged})`);
  check((await call('GET', '/v1/queues/mail')).paused === true, 'the forged resume changed nothing');
}

// Log out ends the session.
await admin.page.goto(`${BASE}/#/overview`);
await admin.page.click('text=Log out');
await admin.page.waitForURL(/\/login$/);
const after = await admin.page.evaluate(async () => (await fetch('/ui/api/overview')).status);
check(after === 401, `after logging out the API answers ${after}`);

await browser.close();
console.log('all browser checks passed');
