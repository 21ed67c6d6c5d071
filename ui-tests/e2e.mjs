// End-to-end test of the driftless web UI in headless Debian Chromium.
// Usage: DRIFTLESS_BIN=/path/to/driftless node ui-tests/e2e.mjs
// Builds nothing; needs git and /usr/bin/chromium (or CHROMIUM=...). Screenshots go to
// ui-artifacts/ at the repository root.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BIN = process.env.DRIFTLESS_BIN;
if (!BIN || !fs.existsSync(BIN)) {
  console.error('set DRIFTLESS_BIN to the driftless binary (e.g. target/debug/driftless)');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ARTIFACTS = path.join(ROOT, 'ui-artifacts');
fs.mkdirSync(ARTIFACTS, { recursive: true });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftless-ui-'));
const repo = path.join(tmp, 'repo');
const live = path.join(tmp, 'live');
const git = (...args) => execFileSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_SYSTEM: '/dev/null' } }).trim();
const write = (rel, text) => { fs.mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true }); fs.writeFileSync(path.join(repo, rel), text); };
function commit(subject) { git('add', '-A'); git('-c', 'user.name=Ada Lovelace', '-c', 'user.email=ada@example.com', 'commit', '-q', '-m', subject); return git('rev-parse', 'HEAD'); }
function token() {
  const out = execFileSync(BIN, ['token', 'new'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { token: out.match(/token:\s+(\S+)/)[1], sha: out.match(/sha256:\s+([0-9a-f]{64})/)[1] };
}
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}
async function until(what, probe, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

fs.mkdirSync(repo);
git('init', '-q', '-b', 'main');
write('site/index.html', '<h1>v1</h1>\n');
write('site/conf/app.ini', 'mode=one\n');
const first = commit('First page');
fs.mkdirSync(live);
const operator = token();
const viewer = token();
fs.writeFileSync(path.join(tmp, 'driftless.yaml'), `apps:
  - name: web
    source: { repo: ${repo}, ref: main, path: site, interval: 1s }
    target:
      files: { root: ${live} }
    sync: { auto: true, prune: true, selfHeal: true }
server:
  tokens:
    - { name: ops, role: operator, sha256: "${operator.sha}" }
    - { name: look, role: viewer, sha256: "${viewer.sha}" }
`);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const logs = [];
const server = spawn(BIN, ['serve', '--config', path.join(tmp, 'driftless.yaml'), '--state', path.join(tmp, 'state'), '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
server.stdout.on('data', (d) => logs.push(String(d)));
server.stderr.on('data', (d) => logs.push(String(d)));
await until('the server to answer', async () => (await fetch(base + '/healthz').catch(() => null))?.ok, 30000);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const row = () => page.locator('tr[data-app="web"]');
const T = { timeout: 20000 };

let passed = 0; let failed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); passed++; console.log(`ok   ${name} (${Date.now() - t0} ms)`); } catch (e) {
    failed++; console.log(`FAIL ${name}: ${e.message.split('\n').slice(0, 6).join('\n     ')}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'failure-' + name.replace(/\W+/g, '-') + '.png'), fullPage: true }).catch(() => {});
  }
}

try {
  await step('the page is served with a strict CSP', async () => {
    const res = await page.goto(base + '/');
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    await page.locator('#token').waitFor(T);
  });

  await step('a wrong token is refused with a message', async () => {
    await page.fill('#token', 'dl_not-a-token');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error', { hasText: 'invalid bearer token' }).waitFor(T);
    await page.screenshot({ path: path.join(ARTIFACTS, 'login-1280.png') });
  });

  await step('log in; the overview lists the app Synced/Healthy with its commit', async () => {
    await page.fill('#token', operator.token);
    await page.click('#login-form button[type=submit]');
    await row().locator('.subject', { hasText: 'First page' }).waitFor(T);
    await row().locator('.badge', { hasText: 'Synced' }).waitFor(T);
    await row().locator('.badge', { hasText: 'Healthy' }).waitFor(T);
    assert.match(await row().innerText(), new RegExp(first.slice(0, 7)));
    assert.match(await row().innerText(), /Ada Lovelace/);
    assert.equal(await page.locator('.count[data-count="Synced"] b').innerText(), '1');
    await page.locator('#live.on').waitFor(T);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('driftless.token')), operator.token);
    await page.screenshot({ path: path.join(ARTIFACTS, 'overview-1280.png'), fullPage: true });
  });

  await step('search and filter narrow the list', async () => {
    await page.fill('#search', 'no-such-app');
    await page.locator('#apps-body', { hasText: 'No app matches' }).waitFor(T);
    await page.fill('#search', 'ada');
    await row().waitFor(T);
    await page.selectOption('#filter', 'Failed');
    await page.locator('#apps-body', { hasText: 'No app matches' }).waitFor(T);
    await page.selectOption('#filter', 'all');
    await page.fill('#search', '');
    await row().waitFor(T);
  });

  await step('the keyboard reaches the app link and opens it', async () => {
    await page.locator('body').focus();
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    let found = false;
    for (let i = 0; i < 20 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('href') === '#/apps/web');
    }
    assert.ok(found, 'Tab never reached the app link');
    await page.keyboard.press('Enter');
    await page.locator('#object-tree').waitFor(T);
    await page.goBack();
    await row().waitFor(T);
  });

  await step('a pushed commit shows up without reload', async () => {
    await page.evaluate(() => { window.__noReload = true; });
    write('site/index.html', '<h1>v2</h1>\n');
    commit('Second page');
    await row().locator('.subject', { hasText: 'Second page' }).waitFor(T);
    assert.equal(await page.evaluate(() => window.__noReload), true);
  });

  await step('a live edit shows drift, then heals', async () => {
    fs.writeFileSync(path.join(live, 'index.html'), 'hacked\n');
    await page.locator('#events li[data-kind="drift-detected"]').first().waitFor(T);
    await page.locator('#events li[data-kind="drift-healed"]').first().waitFor(T);
    await until('the live file to heal', () => fs.readFileSync(path.join(live, 'index.html'), 'utf8') === '<h1>v2</h1>\n');
    assert.equal(await page.evaluate(() => window.__noReload), true);
  });

  await step('the app page shows the object tree, history and events', async () => {
    await row().locator('a').first().click();
    await page.locator('#object-tree').waitFor(T);
    const tree = await page.locator('#object-tree').innerText();
    assert.match(tree, /conf\//);
    assert.match(tree, /app\.ini/);
    assert.match(tree, /index\.html/);
    await until('two history rows', async () => (await page.locator('#history > li').count()) >= 2);
    assert.match(await page.locator('#history').innerText(), /First page/);
    assert.match(await page.locator('#app-events').innerText(), /drift-healed/);
    // Pressing a button by keyboard re-renders the page; the focus stays on that button.
    const renders = async () => Number(await page.evaluate(() => document.body.dataset.renders));
    const before = await renders();
    await page.locator('[data-key="act:refresh"]').focus();
    await page.keyboard.press('Enter');
    await page.locator('#toast', { hasText: 'Refresh: done' }).waitFor(T);
    await until('the page to re-render', async () => (await renders()) > before);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.key), 'act:refresh');
  });

  await step('the whole-app diff and a per-object diff open', async () => {
    await page.getByRole('button', { name: 'Show whole-app diff' }).click();
    await page.locator('#diff', { hasText: 'No difference' }).waitFor(T);
    await page.locator('#object-tree .obj-btn', { hasText: 'index.html' }).click();
    await page.locator('#diff', { hasText: 'This object matches Git' }).waitFor(T);
  });

  await step('suspend (confirmed), a live edit stays and its diff shows, resume heals', async () => {
    await page.click('button[data-act="suspend"]');
    await page.locator('#confirm[open]').waitFor(T);
    await page.click('#confirm-ok');
    await page.locator('.notice', { hasText: 'Suspended' }).waitFor(T);
    fs.writeFileSync(path.join(live, 'index.html'), '<h1>edited by hand</h1>\n');
    await page.locator('#object-tree li[data-object="index.html"] .badge', { hasText: 'OutOfSync' }).waitFor(T);
    await page.locator('#object-tree .obj-btn', { hasText: 'index.html' }).click();
    await page.locator('#diff .diff .del', { hasText: 'edited by hand' }).waitFor(T);
    await page.locator('#diff .diff .add', { hasText: 'v2' }).waitFor(T);
    await page.screenshot({ path: path.join(ARTIFACTS, 'app-1280.png'), fullPage: true });
    await page.click('button[data-act="resume"]');
    await until('the live file to heal after resume', () => fs.readFileSync(path.join(live, 'index.html'), 'utf8') === '<h1>v2</h1>\n');
    await page.locator('#object-tree li[data-object="index.html"] .badge', { hasText: 'Synced' }).waitFor(T);
  });

  await step('phone width screenshots', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'app-390.png'), fullPage: true });
    await page.goto(base + '/#/');
    await row().waitFor(T);
    await page.screenshot({ path: path.join(ARTIFACTS, 'overview-390.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the overview scrolls sideways by ${overflow}px at 390px`);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('roll back to the first revision through the confirm dialog', async () => {
    await page.goto(base + '/#/apps/web');
    await page.locator(`#history > li[data-revision="${first}"] button[data-act="rollback"]`).click();
    await page.locator('#confirm[open]').waitFor(T);
    assert.match(await page.locator('#confirm-text').innerText(), /First page/);
    await page.click('#confirm-ok');
    await page.locator('#pinned', { hasText: first.slice(0, 7) }).waitFor(T);
    await page.locator('#app-revision', { hasText: 'First page' }).waitFor(T);
    await until('the live file to be the first revision', () => fs.readFileSync(path.join(live, 'index.html'), 'utf8') === '<h1>v1</h1>\n');
  });

  await step('resume follows Git again', async () => {
    await page.click('button[data-act="resume"]');
    await page.locator('#app-revision', { hasText: 'Second page' }).waitFor(T);
    assert.equal(await page.locator('#pinned').count(), 0);
  });

  await step('a broken revision shows the error with its location', async () => {
    fs.symlinkSync('../../outside', path.join(repo, 'site', 'escape'));
    commit('Broken link');
    await page.locator('#app-error').waitFor(T);
    const text = await page.locator('#app-error').innerText();
    assert.match(text, /Where: site\/escape/);
    assert.match(text, /leaves/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'app-error-1280.png'), fullPage: true });
    await page.goto(base + '/#/');
    await row().locator('.badge', { hasText: /Failed|OutOfSync|Degraded/ }).first().waitFor(T);
    await row().locator('.error-text', { hasText: 'site/escape' }).waitFor(T);
    await page.screenshot({ path: path.join(ARTIFACTS, 'overview-error-1280.png'), fullPage: true });
  });

  await step('a viewer token gets disabled action buttons', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    await p.goto(base + '/#/apps/web');
    await p.fill('#token', viewer.token);
    await p.click('#login-form button[type=submit]');
    await p.locator('button[data-act="sync"]').waitFor(T);
    assert.equal(await p.locator('button[data-act="sync"]').isDisabled(), true);
    assert.match(await p.locator('#who').innerText(), /read-only/);
    await ctx.close();
  });

  await step('with no tokens configured the page asks for none', async () => {
    const dir = path.join(tmp, 'open');
    fs.mkdirSync(path.join(dir, 'live'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'driftless.yaml'), `apps:
  - name: open-app
    source: { repo: ${repo}, ref: ${first}, path: site, interval: 1s }
    target:
      files: { root: ${path.join(dir, 'live')} }
`);
    const openPort = await freePort();
    const openServer = spawn(BIN, ['serve', '--config', path.join(dir, 'driftless.yaml'), '--state', path.join(dir, 'state'), '--listen', `127.0.0.1:${openPort}`], { stdio: 'ignore' });
    try {
      await until('the open server to answer', async () => (await fetch(`http://127.0.0.1:${openPort}/healthz`).catch(() => null))?.ok, 30000);
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await ctx.newPage();
      await p.goto(`http://127.0.0.1:${openPort}/`);
      await p.locator('tr[data-app="open-app"] .subject', { hasText: 'First page' }).waitFor(T);
      assert.equal(await p.locator('#login').isHidden(), true);
      assert.match(await p.locator('#who').innerText(), /open API/);
      await ctx.close();
    } finally {
      openServer.kill('SIGTERM');
      await new Promise((r) => { openServer.on('exit', r); setTimeout(r, 5000); });
    }
  });

  await step('no script errors in the console', async () => {
    assert.deepEqual(consoleErrors, []);
  });
} finally {
  await browser.close().catch(() => {});
  server.kill('SIGTERM');
  await new Promise((r) => { server.on('exit', r); setTimeout(r, 5000); });
  if (failed) console.log('--- server log (tail) ---\n' + logs.join('').split('\n').slice(-30).join('\n'));
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
