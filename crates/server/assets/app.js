// driftless web UI: vanilla JS, no dependencies. Talks to /api/v1 only.
'use strict';
(function () {
  const TOKEN_KEY = 'driftless.token';
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    open: false,          // the API needs no token
    canAct: true,         // operator or admin (learned by a probe, or from a 403)
    apps: [],
    events: [],           // newest first, all apps
    filter: 'all',
    search: '',
    route: null,
    app: null, history: [], appEvents: [], plan: null, selected: null, diffOpen: false,
    streamAbort: null, lastEventId: null, refreshTimer: null, live: false,
  };

  // ---------- small DOM helpers (text nodes only: data is never parsed as HTML) ----------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const short = (rev) => (rev ? rev.slice(0, 7) : '—');

  function ago(ms) {
    if (!ms) return '—';
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  const when = (ms) => h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString() }, ago(ms));

  // Status badges carry an icon and a word, never colour alone.
  const SYNC = { Synced: ['ok', '✓'], OutOfSync: ['warn', '≠'], Failed: ['bad', '✕'], Unknown: ['info', '?'] };
  const HEALTH = { Healthy: ['ok', '♥'], Progressing: ['info', '◐'], Degraded: ['bad', '✕'], Missing: ['bad', '∅'], Suspended: ['info', '‖'], Unknown: ['info', '?'] };
  const RESULT = { succeeded: ['ok', '✓'], failed: ['bad', '✕'], running: ['info', '◐'], cancelled: ['info', '–'] };
  function badge(map, value, prefix) {
    const [tone, icon] = map[value] || ['info', '•'];
    return h('span', { class: 'badge ' + tone, title: (prefix ? prefix + ': ' : '') + value }, h('span', { 'aria-hidden': 'true' }, icon), value);
  }

  // Re-rendering must not steal the keyboard focus or close what the user opened.
  function keepState(render) {
    const active = document.activeElement;
    const focusKey = active && active.dataset ? active.dataset.key : null;
    const open = new Set([...document.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
    render();
    document.querySelectorAll('details[data-key]').forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
    if (focusKey) {
      const again = [...document.querySelectorAll('[data-key]')].find((el) => el.dataset.key === focusKey);
      if (again && again !== document.activeElement) again.focus({ preventScroll: true });
    }
  }

  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // ---------- API ----------
  function headers(extra) {
    const hd = Object.assign({ Accept: 'application/json' }, extra || {});
    if (state.token) hd.Authorization = 'Bearer ' + state.token;
    return hd;
  }
  async function api(method, path, body) {
    // Every POST carries the JSON type or the request header: the server refuses
    // state-changing calls without one (a foreign page cannot send them).
    const extra = method === 'GET' ? {} : { 'X-Driftless-Request': '1' };
    if (body !== undefined) extra['Content-Type'] = 'application/json';
    const init = { method, headers: headers(extra) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res;
    try { res = await fetch(path, init); } catch (e) { return { status: 0, body: { detail: 'the server does not answer (' + e.message + ')' } }; }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
    if (res.status === 401) showLogin(data && data.detail);
    if (res.status === 403 && method === 'POST') { state.canAct = false; applyRole(); }
    return { status: res.status, body: data };
  }
  const explain = (r) => (r.body && (r.body.detail || r.body.error)) || ('HTTP ' + r.status);

  // ---------- login ----------
  function showLogin(message) {
    stopStream();
    $('live').className = 'live';
    $('live').textContent = '';
    $('view').replaceChildren();
    $('login').hidden = false;
    $('logout').hidden = true;
    $('who').textContent = '';
    $('login-error').textContent = state.token && message ? message : '';
    $('token').focus();
  }
  async function login(ev) {
    ev.preventDefault();
    state.token = $('token').value.trim();
    const r = await api('GET', '/api/v1/apps');
    if (r.status === 200) {
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $('token').value = '';
      $('login').hidden = true;
      await start(r.body);
    } else if (r.status !== 401) {
      $('login-error').textContent = explain(r);
    }
  }
  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    showLogin('');
  }

  async function probeRole() {
    if (state.open) { state.canAct = true; return; }
    // A harmless call an operator may make: a rollback of no app with an empty body is
    // refused by the role check (403) before anything else looks at it.
    const res = await fetch('/api/v1/apps/-/rollback', { method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: '{}' }).catch(() => null);
    state.canAct = !!res && res.status !== 403 && res.status !== 401;
  }
  function applyRole() {
    $('who').textContent = state.open ? 'open API (no token needed)' : (state.canAct ? 'signed in · can sync' : 'signed in · read-only');
    document.querySelectorAll('[data-act]').forEach((b) => {
      b.disabled = !state.canAct;
      b.title = state.canAct ? '' : 'Your token is read-only (viewer)';
    });
  }

  // ---------- live events (SSE over fetch, so that the token travels in a header) ----------
  function stopStream() {
    if (state.streamAbort) state.streamAbort.abort();
    state.streamAbort = null;
    setLive(false);
  }
  function setLive(on) {
    state.live = on;
    const el = $('live');
    el.className = 'live ' + (on ? 'on' : 'off');
    el.textContent = on ? 'live' : 'reconnecting…';
  }
  async function stream() {
    const ctl = new AbortController();
    state.streamAbort = ctl;
    const hd = headers({ Accept: 'text/event-stream' });
    if (state.lastEventId) hd['Last-Event-ID'] = state.lastEventId;
    try {
      const res = await fetch('/api/v1/events', { headers: hd, signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401) { showLogin('the token was refused'); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let id = null; const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (id) state.lastEventId = id;
          if (data.length) {
            try { onEvent(JSON.parse(data.join('\n'))); } catch (_) { /* not JSON: ignore */ }
          }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (state.streamAbort !== ctl) return;
    setLive(false);
    setTimeout(() => { if (state.streamAbort === ctl) stream(); }, 2000);
  }
  function onEvent(ev) {
    if (!state.events.some((e) => e.id === ev.id)) {
      state.events.unshift(ev);
      state.events.length = Math.min(state.events.length, 200);
    }
    if (state.app && ev.app === state.app.name && !state.appEvents.some((e) => e.id === ev.id)) state.appEvents.unshift(ev);
    scheduleRefresh();
  }
  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refresh, 150);
  }

  // ---------- routing ----------
  function parseRoute() {
    const m = location.hash.match(/^#\/apps\/([^/]+)/);
    return m ? { page: 'app', name: decodeURIComponent(m[1]) } : { page: 'overview' };
  }
  async function navigate() {
    state.route = parseRoute();
    state.app = null; state.plan = null; state.selected = null; state.diffOpen = false;
    if (state.route.page === 'app') await loadApp(true); else await loadOverview(true);
    $('main').focus({ preventScroll: true });
  }
  async function refresh() {
    if (!state.route) return;
    if (state.route.page === 'app') await loadApp(false); else await loadOverview(false);
  }

  // ---------- overview ----------
  async function loadOverview(first) {
    const [apps, events] = await Promise.all([api('GET', '/api/v1/apps'), first ? api('GET', '/api/v1/events?limit=20') : null]);
    if (apps.status !== 200) { if (apps.status !== 401) renderFailure(apps); return; }
    state.apps = apps.body;
    if (events && events.status === 200) state.events = events.body;
    keepState(() => renderOverview(first));
  }
  function matches(app) {
    const f = state.filter;
    if (f === 'drifted' && !app.drifted.length) return false;
    if (f === 'suspended' && !app.suspended) return false;
    if (['Synced', 'OutOfSync', 'Failed'].includes(f) && app.syncStatus !== f) return false;
    if (['Degraded', 'Progressing'].includes(f) && app.health !== f) return false;
    const q = state.search.toLowerCase();
    if (!q) return true;
    const hay = [app.name, app.source.repo, app.target, app.revision, app.commit && app.commit.subject, app.commit && app.commit.author].join(' ').toLowerCase();
    return hay.includes(q);
  }
  function renderOverview(first) {
    const view = $('view');
    if (first || !$('apps-body')) {
      const search = h('input', { type: 'search', id: 'search', placeholder: 'Search name, repo, commit, author…', 'aria-label': 'Search apps', value: state.search, oninput: (e) => { state.search = e.target.value; renderOverview(false); } });
      const filter = h('select', { id: 'filter', 'aria-label': 'Filter by status', onchange: (e) => { state.filter = e.target.value; renderOverview(false); } },
        [['all', 'All apps'], ['Synced', 'Synced'], ['OutOfSync', 'Out of sync'], ['Failed', 'Failed'], ['Degraded', 'Degraded'], ['Progressing', 'Progressing'], ['drifted', 'Drifted'], ['suspended', 'Suspended']]
          .map(([v, t]) => h('option', { value: v, selected: state.filter === v }, t)));
      view.replaceChildren(
        h('h1', {}, 'Applications'),
        h('div', { class: 'counts', id: 'counts', 'aria-label': 'Apps by status' }),
        h('div', { class: 'tools' }, search, filter),
        h('div', { class: 'table-wrap' }, h('table', { class: 'apps' },
          h('thead', {}, h('tr', {}, ['App', 'Sync', 'Health', 'Revision', 'Last sync', 'Drift'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', { id: 'apps-body' }))),
        h('section', { class: 'panel', 'aria-labelledby': 'ev-title' }, h('h2', { id: 'ev-title' }, 'Recent events'), h('ul', { class: 'events', id: 'events' })));
    }
    const counts = {};
    const bump = (k) => { counts[k] = (counts[k] || 0) + 1; };
    for (const a of state.apps) { bump(a.syncStatus); bump('h:' + a.health); if (a.drifted.length) bump('drifted'); if (a.suspended) bump('suspended'); }
    const tiles = [['Apps', state.apps.length], ['Synced', counts.Synced || 0], ['Out of sync', counts.OutOfSync || 0], ['Failed', counts.Failed || 0],
      ['Degraded', counts['h:Degraded'] || 0], ['Drifted', counts.drifted || 0], ['Suspended', counts.suspended || 0]];
    $('counts').replaceChildren(...tiles.map(([label, n]) => h('div', { class: 'count', 'data-count': label }, h('b', {}, n), h('span', {}, label))));
    const rows = state.apps.filter(matches).map((a) => {
      const c = a.commit;
      const last = a.lastSync;
      return h('tr', { 'data-app': a.name },
        h('td', { 'data-label': 'App' }, h('a', { href: '#/apps/' + encodeURIComponent(a.name), 'data-key': 'app:' + a.name }, h('strong', {}, a.name)), h('div', { class: 'muted small clip' }, a.target)),
        h('td', { 'data-label': 'Sync' }, h('div', { class: 'badges' }, badge(SYNC, a.syncStatus, 'Sync'), a.suspended ? h('span', { class: 'badge info' }, '‖ Suspended') : null, a.pinnedRevision ? h('span', { class: 'badge warn' }, '⚑ Pinned') : null),
          a.error ? h('div', { class: 'error-text small clip', title: a.error }, a.error.split('\n').filter(Boolean).slice(-1)[0]) : null),
        h('td', { 'data-label': 'Health' }, badge(HEALTH, a.health, 'Health')),
        h('td', { 'data-label': 'Revision' }, h('code', { title: a.revision || '' }, short(a.revision)), ' ', c ? h('span', { class: 'subject' }, c.subject) : h('span', { class: 'muted' }, a.revision ? '' : 'no revision yet'),
          c ? h('div', { class: 'muted small' }, c.author) : null),
        h('td', { 'data-label': 'Last sync' }, last ? h('span', {}, badge(RESULT, last.result), ' ', last.finishedAt ? when(last.finishedAt) : 'running', h('div', { class: 'muted small' }, last.trigger)) : h('span', { class: 'muted' }, 'never')),
        h('td', { 'data-label': 'Drift' }, a.drifted.length ? h('span', { class: 'drift' }, '⚠ ' + a.drifted.length + ' drifted') : h('span', { class: 'muted' }, 'none')));
    });
    $('apps-body').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, state.apps.length ? 'No app matches.' : 'No apps configured.'))]));
    $('events').replaceChildren(...eventItems(state.events.slice(0, 20), true));
  }
  function eventItems(events, withApp) {
    if (!events.length) return [h('li', { class: 'muted' }, 'No events yet.')];
    return events.map((e) => {
      const tone = e.severity === 'error' || /failed/.test(e.kind) ? 'bad' : e.severity === 'warning' ? 'warn' : /succeeded|healed/.test(e.kind) ? 'ok' : 'info';
      return h('li', { 'data-kind': e.kind },
        h('span', { class: 'muted small' }, when(e.at)),
        h('span', {}, h('span', { class: 'badge ' + tone }, e.kind), ' ', withApp ? h('a', { href: '#/apps/' + encodeURIComponent(e.app) }, e.app) : null, withApp ? ': ' : '', e.message));
    });
  }
  function renderFailure(r) {
    $('view').replaceChildren(h('div', { class: 'alert', role: 'alert' }, h('strong', {}, 'Could not load: '), explain(r)), h('p', {}, h('a', { href: '#/' }, '← All applications')));
  }

  // ---------- app page ----------
  async function loadApp(first) {
    const name = state.route.name;
    const enc = encodeURIComponent(name);
    const [app, hist, evs] = await Promise.all([api('GET', '/api/v1/apps/' + enc), api('GET', '/api/v1/apps/' + enc + '/history?limit=50'), api('GET', '/api/v1/events?app=' + enc + '&limit=30')]);
    if (app.status !== 200) { if (app.status !== 401) renderFailure(app); return; }
    state.app = app.body;
    state.history = hist.status === 200 ? hist.body : [];
    if (evs.status === 200) state.appEvents = evs.body;
    if (state.diffOpen) await loadDiff();
    keepState(() => renderApp(first));
  }
  async function loadDiff() {
    const r = await api('GET', '/api/v1/apps/' + encodeURIComponent(state.route.name) + '/diff');
    state.plan = r.status === 200 ? r.body : { error: explain(r) };
  }
  const objKey = (id) => [id.group, id.kind, id.namespace || '', id.name].join('/');
  const objLabel = (id) => (id.kind === 'File' ? id.name : id.kind + ' ' + (id.namespace ? id.namespace + '/' : '') + id.name);

  async function act(what, body, confirmText) {
    if (confirmText && !(await confirmDialog(confirmText))) return;
    const r = await api('POST', '/api/v1/apps/' + encodeURIComponent(state.app.name) + '/' + what, body);
    if (r.status >= 200 && r.status < 300) toast(what[0].toUpperCase() + what.slice(1) + ': done');
    else if (r.status === 403) toast('Not allowed: your token is read-only.');
    else toast(what + ' failed: ' + explain(r));
    await loadApp(false);
  }
  function confirmDialog(text) {
    const d = $('confirm');
    $('confirm-title').textContent = 'Please confirm';
    $('confirm-text').textContent = text;
    return new Promise((resolve) => {
      d.returnValue = 'cancel';
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
      $('confirm-ok').focus();
    });
  }

  function renderApp() {
    const a = state.app;
    const c = a.commit;
    const view = $('view');
    const actions = h('div', { class: 'actions' },
      h('button', { type: 'button', 'data-act': 'sync', 'data-key': 'act:sync', onclick: () => act('sync') }, '⟳ Sync'),
      h('button', { type: 'button', class: 'secondary', 'data-act': 'refresh', 'data-key': 'act:refresh', onclick: () => act('refresh') }, 'Refresh'),
      a.suspended || a.pinnedRevision
        ? h('button', { type: 'button', class: 'secondary', 'data-act': 'resume', 'data-key': 'act:toggle', onclick: () => act('resume') }, a.pinnedRevision ? '▶ Resume (follow Git)' : '▶ Resume')
        : h('button', { type: 'button', class: 'secondary', 'data-act': 'suspend', 'data-key': 'act:toggle', onclick: () => act('suspend', undefined, 'Suspend ' + a.name + '? Automatic syncs and self-heal stop until you resume.') }, '‖ Suspend'));
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Source'), h('dd', {}, h('code', {}, a.source.repo), ' @ ', h('code', {}, a.source.ref || 'main'), a.source.path ? [' · ', h('code', {}, a.source.path)] : null),
      h('dt', {}, 'Target'), h('dd', {}, h('code', {}, a.target)),
      h('dt', {}, 'Revision'), h('dd', { id: 'app-revision' }, h('code', { title: a.revision || '' }, short(a.revision)), ' ', c ? [h('span', { class: 'subject' }, c.subject), h('span', { class: 'muted' }, ' — ' + c.author + ', '), when(c.time * 1000)] : ''),
      h('dt', {}, 'Applied'), h('dd', {}, h('code', { title: a.appliedRevision || '' }, short(a.appliedRevision)), a.lastSync ? [' · last sync ', badge(RESULT, a.lastSync.result), ' ', a.lastSync.finishedAt ? when(a.lastSync.finishedAt) : 'running', ' (' + a.lastSync.trigger + ')'] : ''),
      h('dt', {}, 'Policy'), h('dd', {}, ['auto', 'prune', 'selfHeal'].map((k) => (a.syncPolicy[k] ? '✓ ' : '✕ ') + k).join(' · ')),
      h('dt', {}, 'Checked'), h('dd', {}, a.lastCheckedAt ? when(a.lastCheckedAt) : '—'));
    const notices = [];
    if (a.error) {
      // file:line:col when the renderer knows it, else the path a message line starts with.
      const loc = a.error.match(/([^\s:'"`]+:\d+:\d+)/) || a.error.match(/(?:^|\n)([\w.@/-]+\/[\w.@-]+|[\w@-]+\.[\w]+): /);
      notices.push(h('div', { class: 'alert', role: 'alert', id: 'app-error' }, h('strong', {}, '✕ This app has a problem'), loc ? h('div', {}, 'Where: ', h('code', {}, loc[1])) : null, h('pre', {}, a.error)));
    }
    if (a.pinnedRevision) notices.push(h('div', { class: 'notice', id: 'pinned' }, '⚑ Pinned to ', h('code', { title: a.pinnedRevision }, short(a.pinnedRevision)), ' by a rollback. Automatic syncs pause until you resume.'));
    else if (a.suspended) notices.push(h('div', { class: 'notice' }, '‖ Suspended: no automatic sync and no self-heal until you resume.'));
    if (a.drifted.length) notices.push(h('div', { class: 'notice', id: 'drifted' }, '⚠ Live state moved away from Git: ', a.drifted.map(objLabel).join(', ')));

    view.replaceChildren(
      h('p', {}, h('a', { href: '#/' }, '← All applications')),
      h('section', { class: 'panel' },
        h('div', { class: 'app-head' }, h('div', {}, h('h1', {}, a.name), h('div', { class: 'badges' }, badge(SYNC, a.syncStatus, 'Sync'), badge(HEALTH, a.health, 'Health'))), actions),
        facts),
      ...notices,
      h('div', { class: 'grid2' },
        h('section', { class: 'panel', 'aria-labelledby': 'obj-title' }, h('h2', { id: 'obj-title' }, 'Objects (' + a.objects.length + ')'), objectTree(a)),
        h('section', { class: 'panel', 'aria-labelledby': 'diff-title' }, h('h2', { id: 'diff-title' }, 'Diff'), diffPanel())),
      h('div', { class: 'grid2' },
        h('section', { class: 'panel', 'aria-labelledby': 'hist-title' }, h('h2', { id: 'hist-title' }, 'History'), historyList()),
        h('section', { class: 'panel', 'aria-labelledby': 'aev-title' }, h('h2', { id: 'aev-title' }, 'Events'), h('ul', { class: 'events', id: 'app-events' }, eventItems(state.appEvents.slice(0, 30), false)))));
    applyRole();
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  }

  function objectTree(a) {
    if (!a.objects.length) return h('p', { class: 'muted' }, 'No objects.');
    const drifted = new Set(a.drifted.map(objKey));
    const leaf = (o, label) => h('li', { 'data-object': o.id.name },
      h('div', { class: 'node' },
        h('button', { type: 'button', class: 'obj-btn', 'data-key': 'obj:' + objKey(o.id), 'aria-pressed': state.selected === objKey(o.id) ? 'true' : 'false', onclick: () => selectObject(o.id) }, label),
        badge(SYNC, o.status, 'Sync'), badge(HEALTH, o.health, 'Health'),
        drifted.has(objKey(o.id)) ? h('span', { class: 'drift' }, '⚠ drifted') : null,
        o.message ? h('span', { class: 'muted small' }, o.message) : null));
    // Files: a folder tree. Everything else: Namespace → kind → object.
    const root = { dirs: new Map(), items: [] };
    for (const o of a.objects) {
      let parts; let label;
      if (o.id.kind === 'File') { parts = o.id.name.split('/'); label = parts.pop(); }
      else { parts = ['Namespace ' + (o.id.namespace || '(cluster-scoped)'), o.id.kind]; label = o.id.name; }
      let node = root;
      for (const p of parts) {
        if (!node.dirs.has(p)) node.dirs.set(p, { dirs: new Map(), items: [], label: o.id.kind === 'File' ? p + '/' : p });
        node = node.dirs.get(p);
      }
      node.items.push([o, label]);
    }
    const build = (node) => h('ul', {},
      [...node.dirs.entries()].sort((x, y) => x[0].localeCompare(y[0])).map(([name, sub]) =>
        h('li', {}, h('div', { class: 'node folder' }, h('span', { 'aria-hidden': 'true' }, '▾ '), sub.label), build(sub))),
      node.items.sort((x, y) => x[1].localeCompare(y[1])).map(([o, label]) => leaf(o, label)));
    const tree = build(root);
    tree.className = 'tree';
    tree.id = 'object-tree';
    return tree;
  }
  async function selectObject(id) {
    state.selected = objKey(id);
    state.diffOpen = true;
    await loadDiff();
    keepState(renderApp);
  }
  function diffPanel() {
    const wrap = h('div', { id: 'diff' });
    const btns = h('div', { class: 'tools' },
      h('button', { type: 'button', class: 'secondary', 'data-key': 'diff:all', onclick: async () => { state.selected = null; state.diffOpen = true; await loadDiff(); keepState(renderApp); } }, 'Show whole-app diff'),
      state.selected ? h('span', { class: 'muted small' }, 'Showing one object — ', h('button', { type: 'button', class: 'secondary', onclick: () => { state.selected = null; keepState(renderApp); } }, 'show all')) : null);
    wrap.append(btns);
    if (!state.diffOpen) { wrap.append(h('p', { class: 'muted' }, 'Pick an object, or show what a sync would change now.')); return wrap; }
    const plan = state.plan;
    if (!plan) return wrap;
    if (plan.error) { wrap.append(h('div', { class: 'alert' }, plan.error)); return wrap; }
    let tasks = plan.tasks || [];
    if (state.selected) tasks = tasks.filter((t) => objKey(t.id) === state.selected);
    const changed = tasks.filter((t) => t.op !== 'unchanged');
    if (!changed.length) wrap.append(h('p', {}, h('span', { class: 'badge ok' }, '✓ No difference'), ' ', state.selected ? 'This object matches Git at ' : 'Live matches Git at ', h('code', {}, short(plan.revision)), '.'));
    for (const t of changed) {
      wrap.append(h('div', { class: 'small' }, h('span', { class: 'badge warn' }, t.op), ' ', h('code', {}, objLabel(t.id))));
      if (t.diff) wrap.append(diffView(t.diff));
    }
    return wrap;
  }
  function diffView(text) {
    const pre = h('pre', { class: 'diff', tabindex: '0', 'aria-label': 'Unified diff' });
    for (const line of text.replace(/\n$/, '').split('\n')) {
      let cls = '';
      if (line.startsWith('+++') || line.startsWith('---')) cls = 'file';
      else if (line.startsWith('@@')) cls = 'hunk';
      else if (line.startsWith('+')) cls = 'add';
      else if (line.startsWith('-')) cls = 'del';
      pre.append(h('span', { class: cls }, line));
    }
    return pre;
  }
  function historyList() {
    if (!state.history.length) return h('p', { class: 'muted' }, 'No syncs yet.');
    return h('ol', { class: 'timeline', id: 'history' }, state.history.map((r) => {
      const counts = r.changes || {};
      const total = ['created', 'configured', 'unchanged', 'deleted', 'skipped', 'failed'].reduce((n, k) => n + (counts[k] || 0), 0);
      const current = state.app.appliedRevision === r.revision;
      return h('li', { class: r.result, 'data-revision': r.revision },
        h('div', { class: 'tl-head' }, badge(RESULT, r.result), h('code', { title: r.revision }, short(r.revision)), h('strong', {}, r.commit ? r.commit.subject : ''),
          h('span', { class: 'muted small' }, (r.commit ? r.commit.author + ' · ' : '') + r.trigger + (r.requestedBy ? ' by ' + r.requestedBy : '') + ' · '), when(r.finishedAt || r.startedAt)),
        r.error ? h('div', { class: 'error-text small' }, r.error) : null,
        r.commit && r.commit.message && r.commit.message.trim() !== r.commit.subject
          ? h('details', { 'data-key': 'msg:' + r.id }, h('summary', { class: 'small' }, 'commit message'), h('pre', { class: 'small msg' }, r.commit.message.trim())) : null,
        total ? changeDetails(r, total) : null,
        h('div', {}, h('button', { type: 'button', class: 'secondary', 'data-act': 'rollback', 'data-key': 'rb:' + r.id, 'aria-label': 'Roll back to ' + short(r.revision),
          onclick: () => act('rollback', { revision: r.revision }, 'Roll ' + state.app.name + ' back to ' + short(r.revision) + (r.commit ? ' (“' + r.commit.subject + '”)' : '') + '? Automatic syncs pause until you resume.') },
        current ? '↺ Re-apply this revision' : '↺ Roll back to this')));
    }));
  }

  // The list has counts; the change set itself is fetched when the user opens it.
  const changeSets = new Map();
  function changeDetails(r, total) {
    const list = h('ul', { class: 'changes' });
    const fill = () => {
      const cs = changeSets.get(r.id);
      if (cs) list.replaceChildren(...cs.map((ch) => h('li', {}, ch.action + ' ', h('code', {}, objLabel(ch.id)))));
    };
    fill();
    const d = h('details', { 'data-key': 'cs:' + r.id }, h('summary', { class: 'small' }, total + ' change' + (total === 1 ? '' : 's')), list);
    d.addEventListener('toggle', async () => {
      if (!d.open || changeSets.has(r.id)) return;
      list.replaceChildren(h('li', { class: 'muted' }, 'loading…'));
      const res = await api('GET', '/api/v1/apps/' + encodeURIComponent(state.app.name) + '/history/' + r.id);
      if (res.status === 200) { changeSets.set(r.id, (res.body.changeSet && res.body.changeSet.changes) || []); fill(); }
      else list.replaceChildren(h('li', { class: 'error-text' }, explain(res)));
    });
    return d;
  }

  // ---------- start ----------
  async function start(apps) {
    $('login').hidden = true;
    $('logout').hidden = state.open;
    await probeRole();
    applyRole();
    if (apps) state.apps = apps;
    stopStream();
    stream();
    await navigate();
  }
  async function boot() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    window.addEventListener('hashchange', navigate);
    // Poll while the stream is down; otherwise refresh every 30 s so relative times stay true.
    let ticks = 0;
    setInterval(() => {
      ticks += 1;
      if (state.route && $('login').hidden && (!state.live || ticks % 3 === 0)) refresh();
    }, 10000);
    const hadToken = !!state.token;
    const r = await api('GET', '/api/v1/apps');
    if (r.status === 200) { state.open = !hadToken && !state.token; await start(r.body); }
    else if (r.status !== 401) renderFailure(r);
  }
  document.addEventListener('DOMContentLoaded', boot);
})();
