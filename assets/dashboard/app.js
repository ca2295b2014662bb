// voxd dashboard: a client of voxd's JSON API (/api/v1) with the session cookie and its CSRF
// token, plus the dashboard's own /ui/api endpoints and the live view at /ui/events. No build
// step and no framework: views are functions of the route that build DOM nodes (text is always
// set as text, never parsed as HTML).

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const view = document.getElementById('view');

// ---- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    location.href = '/sign-in';
    throw new ApiError(401, { message: 'signed out' });
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

const get = path => api('GET', path);
const query = params => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

// ---- DOM helpers ----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const link = (href, text) => h('a', { href }, text);
const badge = text => (text ? h('span', { class: `badge ${String(text).split(' ')[0]}` }, text) : '');
const when = t => (t ? new Date(t).toLocaleString() : '');
const json = v => h('pre', {}, JSON.stringify(v, null, 2));

function table(rows, columns, rowAttrs = () => ({})) {
  if (!rows.length) return h('p', { class: 'muted' }, 'Nothing here yet.');
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', {}, label)))),
    h('tbody', {}, rows.map(r => h('tr', rowAttrs(r), columns.map(([, cell]) => h('td', {}, cell(r)))))));
}

function fields(pairs) {
  return h('dl', { class: 'fields' },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

let toastTimer;
function toast(message, bad = false) {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}

// Runs an action from a button or form; its error is shown, not thrown.
async function act(fn, done) {
  try {
    const out = await fn();
    if (done) toast(done);
    return out;
  } catch (e) {
    toast(e.message, true);
    return undefined;
  }
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// A listing with a "More" button that follows meta.next_cursor.
function paged(load, render) {
  const box = h('div');
  const more = h('button', { class: 'secondary', type: 'button' }, 'More');
  let cursor = null;
  const rows = [];
  async function next() {
    const page = await load(cursor);
    rows.push(...page.items);
    cursor = page.meta?.next_cursor || null;
    box.replaceChildren(render(rows), cursor ? more : '');
  }
  more.addEventListener('click', () => act(next));
  return { box, next };
}

// ---- live view ------------------------------------------------------------------------------

const liveHandlers = new Set();
const live = new EventSource('/ui/events');
live.addEventListener('call', e => {
  const event = JSON.parse(e.data);
  for (const f of liveHandlers) f(event);
});
function onCallEvent(f) { liveHandlers.add(f); }

// ---- views ----------------------------------------------------------------------------------

const PROGRESS = ['scheduled', 'queued', 'ringing', 'in_progress', 'ended', 'cancelled'];
const STATUSES = ['completed', 'failed', 'voicemail', 'rang-out', 'User rejected', 'User unavailable', 'cancelled'];
const PERSONAS = ['cooperative', 'unsure', 'busy', 'hostile', 'talkative', 'silent', 'interrupts', 'asks_questions', 'wrong_person', 'not_interested', 'hangs_up'];

async function scriptsById() {
  const r = await get('/api/v1/scripts?limit=200');
  return Object.fromEntries(r.scripts.map(s => [s.id, s]));
}

function callRow(c, scripts) {
  return [
    ['Call', c => link(`#/calls/${c.id}`, c.id.slice(-8))],
    ['To', c => c.to_number || (c.type === 'web' ? 'web call' : '')],
    ['Script', c => scripts[c.script_id]?.name || c.script_id.slice(-8)],
    ['Progress', c => badge(c.progress)],
    ['Status', c => badge(c.status)],
    ['Scheduled', c => when(c.scheduled_time)],
    ['Ended', c => when(c.ended_at)],
  ];
}

async function callsView(params) {
  const [scripts, numbers] = await Promise.all([scriptsById(), get('/api/v1/phone-numbers?limit=200')]);
  const filters = h('form', { class: 'inline', id: 'call-filters' },
    h('label', {}, 'Progress', h('select', { name: 'progress' }, h('option', { value: '' }, 'any'), PROGRESS.map(p => h('option', { value: p }, p)))),
    h('label', {}, 'Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map(s => h('option', { value: s }, s)))),
    h('label', {}, 'Script', h('select', { name: 'script_id' }, h('option', { value: '' }, 'any'), Object.values(scripts).map(s => h('option', { value: s.id }, s.name)))),
    h('label', {}, 'Created after', h('input', { name: 'created_after', type: 'date' })),
    h('label', {}, 'Contact id', h('input', { name: 'contact_id', value: params.get('contact_id') || '', size: 36 })),
    h('button', { type: 'submit' }, 'Filter'));
  const listing = h('div');
  let current = {};
  const columns = callRow(null, scripts);
  async function load() {
    const r = await get(`/api/v1/calls${query({ ...current, order: 'desc', limit: 50 })}`);
    listing.replaceChildren(table(r.calls, columns, c => ({ 'data-call': c.id })));
  }
  filters.addEventListener('submit', e => {
    e.preventDefault();
    current = formData(filters);
    act(load);
  });
  current = formData(filters);
  // Live: a call that changed is fetched again and its row replaced (a new call: the list).
  onCallEvent(async ev => {
    if (!document.body.contains(listing)) return;
    const row = listing.querySelector(`tr[data-call="${ev.call_id}"]`);
    if (!row) return load();
    const { call } = await get(`/api/v1/get-call/${ev.call_id}`);
    const fresh = h('tr', { 'data-call': call.id, class: 'flash' }, columns.map(([, cell]) => h('td', {}, cell(call))));
    row.replaceWith(fresh);
  });

  const place = h('form', { class: 'inline', id: 'place-call' },
    h('label', {}, 'Phone number', h('input', { name: 'phone_number', required: true, placeholder: '+61…' })),
    h('label', {}, 'First name', h('input', { name: 'first_name' })),
    h('label', {}, 'Script', h('select', { name: 'script_id', required: true }, Object.values(scripts).map(s => h('option', { value: s.id }, s.name)))),
    h('label', {}, 'From', h('select', { name: 'from_number', required: true }, numbers.phone_numbers.map(n => h('option', { value: n.phone_number }, n.phone_number)))),
    h('label', {}, 'When (empty: now)', h('input', { name: 'scheduled_time', type: 'datetime-local' })),
    h('button', { type: 'submit' }, 'Place call'));
  place.addEventListener('submit', e => {
    e.preventDefault();
    const f = formData(place);
    const body = {
      from_number: f.from_number,
      script_id: f.script_id,
      contact: { phone_number: f.phone_number, ...(f.first_name ? { first_name: f.first_name } : {}) },
    };
    if (f.scheduled_time) body.scheduled_time = new Date(f.scheduled_time).toISOString();
    act(async () => {
      const r = await api('POST', '/api/v1/create-phone-call', body);
      await load();
      return r;
    }, 'Call created');
  });
  view.replaceChildren(h('h1', {}, 'Calls'),
    h('details', { class: 'card' }, h('summary', {}, 'Place a call'), place),
    filters, listing);
  await load();
}

async function callView(id) {
  const render = async () => {
    const [{ call }, result, events] = await Promise.all([
      get(`/api/v1/get-call/${id}`),
      get(`/api/v1/get-call-result/${id}`),
      get(`/api/v1/calls/${id}/events`),
    ]);
    const r = result.call;
    const actions = h('div', { class: 'bar' });
    if (['scheduled', 'queued'].includes(call.progress)) {
      const at = h('input', { type: 'datetime-local', name: 'scheduled_time' });
      actions.append(
        h('button', { class: 'danger', type: 'button', onclick: () => act(() => api('POST', `/api/v1/cancel-call/${id}`), 'Call cancelled').then(render) }, 'Cancel call'),
        h('label', {}, 'New time', at),
        h('button', { class: 'secondary', type: 'button', onclick: () => act(() => api('PATCH', `/api/v1/reschedule-call/${id}`, { scheduled_time: new Date(at.value).toISOString() }), 'Call rescheduled').then(render) }, 'Reschedule'));
    }
    const recording = r.recording_url
      ? h('audio', { controls: true, preload: 'none', src: r.recording_url })
      : h('p', { class: 'muted', id: 'no-recording' }, call.type === 'web' || !r.simulated ? 'No recording for this call.' : 'No recording: this call was simulated.');
    const transcript = r.transcript.length
      ? h('div', { class: 'transcript', id: 'transcript' }, r.transcript.map(t => h('div', { class: `turn ${t.role}` },
        h('span', { class: 'muted' }, clock(t.start_ms)), h('span', { class: 'role' }, t.role), h('span', {}, t.text))))
      : h('p', { class: 'muted', id: 'transcript' }, r.available ? 'No words were said.' : 'No transcript yet.');
    const objectives = Array.isArray(r.objectives) ? table(r.objectives, [
      ['Objective', o => o.description || o.id], ['Achieved', o => o.achieved ? 'yes' : 'no'], ['Why', o => o.evidence || ''],
    ]) : h('p', { class: 'muted' }, 'None.');
    const data = r.structured_data && Object.keys(r.structured_data).length
      ? table(Object.entries(r.structured_data), [['Field', ([k]) => k], ['Value', ([, v]) => typeof v === 'object' ? JSON.stringify(v) : String(v)]])
      : h('p', { class: 'muted' }, 'None collected.');
    view.replaceChildren(
      h('h1', {}, `Call ${call.id.slice(-8)} `, badge(call.progress), ' ', badge(call.status)),
      actions,
      h('div', { class: 'card grid' }, fields([
        ['To', call.to_number], ['From', call.from_number], ['Type', call.type],
        ['Script', link(`#/scripts/${call.script_id}`, `${call.script_id.slice(-8)} (version ${call.script_version})`)],
        ['Contact', call.contact_id && link(`#/contacts/${call.contact_id}`, call.contact_id.slice(-8))],
        ['End reason', call.end_reason], ['Attempts', call.attempts], ['Scheduled', when(call.scheduled_time)],
        ['Started', when(call.started_at)], ['Ended', when(call.ended_at)], ['Duration', r.duration_seconds != null ? `${r.duration_seconds} s` : ''],
        ['Waiting for', call.waiting_for], ['Simulated', r.simulated == null ? '' : r.simulated ? 'yes' : 'no'],
      ])),
      h('h2', {}, 'Timeline'),
      table(events.events, [['At', e => when(e.at)], ['Attempt', e => e.attempt], ['Progress', e => badge(e.progress)], ['Status', e => badge(e.status)], ['Detail', e => e.detail ? JSON.stringify(e.detail) : '']]),
      h('h2', {}, 'Recording'), recording,
      h('h2', {}, 'Transcript'), transcript,
      h('h2', {}, 'Analysis'),
      h('div', { class: 'card' }, fields([['Summary', r.summary], ['Rating', r.rating], ['Success', r.success_evaluation], ['Analysed by', r.analysed_by]])),
      h('h2', {}, 'Objectives'), objectives,
      h('h2', {}, 'Collected data'), data);
  };
  onCallEvent(ev => { if (ev.call_id === id && location.hash === `#/calls/${id}`) act(render); });
  await render();
}

function clock(ms) {
  const s = Math.floor((ms || 0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

async function contactsView(params) {
  const search = h('form', { class: 'inline', id: 'contact-search' },
    h('label', {}, 'Search', h('input', { name: 'search', value: params.get('search') || '', placeholder: 'name, email or number' })),
    h('button', { type: 'submit' }, 'Search'));
  const columns = [
    ['Name', c => link(`#/contacts/${c.id}`, c.full_name || '(no name)')],
    ['Phone', c => c.phone_number], ['Email', c => c.email || ''], ['Company', c => c.company || ''], ['Created', c => when(c.created_at)],
  ];
  const list = paged(async cursor => {
    const r = await get(`/api/v1/contacts${query({ search: params.get('search'), cursor, limit: 50, order: 'desc' })}`);
    return { items: r.contacts, meta: r.meta };
  }, rows => table(rows, columns));
  search.addEventListener('submit', e => {
    e.preventDefault();
    location.hash = `#/contacts${query(formData(search))}`;
  });
  view.replaceChildren(h('h1', {}, 'Contacts'), search, list.box);
  await list.next();
}

async function contactView(id) {
  const [c, calls, scripts] = await Promise.all([
    get(`/api/v1/contacts/${id}`),
    get(`/api/v1/calls${query({ contact_id: id, order: 'desc', limit: 50 })}`),
    scriptsById(),
  ]);
  const k = c.contact;
  view.replaceChildren(
    h('h1', {}, k.full_name || k.phone_number),
    h('div', { class: 'card grid' }, fields([
      ['Phone', k.phone_number], ['Email', k.email], ['Title', k.title], ['Company', k.company], ['Address', k.address],
      ['Location', k.location], ['Time zone', k.timezone], ['Created', when(k.created_at)], ['Updated', when(k.updated_at)],
    ])),
    Object.keys(k.metadata || {}).length ? [h('h2', {}, 'Metadata'), json(k.metadata)] : '',
    h('h2', {}, 'Calls'), table(calls.calls, callRow(null, scripts)),
    h('h2', {}, 'Lists'), table(c.lists, [['List', l => link(`#/lists/${l.id}`, l.name)]]),
    h('h2', {}, 'Objects'), table(c.objects, [['Object', o => link(`#/objects/${o.id}`, o.id.slice(-8))], ['Type', o => o.name]]));
}

async function listsView() {
  const r = await get('/api/v1/lists?limit=200');
  view.replaceChildren(h('h1', {}, 'Lists'),
    table(r.lists, [['Name', l => link(`#/lists/${l.id}`, l.name)], ['Contacts', l => l.contact_count], ['Created', l => when(l.created_at)]]));
}

async function listView(id) {
  let list;
  const members = paged(async cursor => {
    const r = await get(`/api/v1/lists/${id}${query({ cursor, limit: 50 })}`);
    list = r.list;
    return { items: r.contacts, meta: r.meta };
  }, rows => table(rows, [['Name', c => link(`#/contacts/${c.id}`, c.full_name || '(no name)')], ['Phone', c => c.phone_number], ['Email', c => c.email || '']]));
  await members.next();
  view.replaceChildren(h('h1', {}, `List: ${list.name}`), h('p', { class: 'muted' }, `${list.contact_count} contacts`), members.box);
}

async function objectsView(params) {
  const filter = h('form', { class: 'inline' },
    h('label', {}, 'Type', h('input', { name: 'type_name', value: params.get('type_name') || '' })),
    h('button', { type: 'submit' }, 'Show'));
  filter.addEventListener('submit', e => { e.preventDefault(); location.hash = `#/objects${query(formData(filter))}`; });
  const list = paged(async cursor => {
    const r = await get(`/api/v1/objects${query({ type_name: params.get('type_name'), cursor, limit: 50, order: 'desc' })}`);
    return { items: r.objects, meta: r.meta };
  }, rows => table(rows, [
    ['Object', o => link(`#/objects/${o.id}`, o.upsert_value || o.id.slice(-8))], ['Type', o => link(`#/objects?type_name=${encodeURIComponent(o.type_name)}`, o.type_name)],
    ['Contacts', o => o.contacts.length], ['Updated', o => when(o.updated_at)],
  ]));
  view.replaceChildren(h('h1', {}, 'Objects'), filter, list.box);
  await list.next();
}

async function objectView(id) {
  const { object: o } = await get(`/api/v1/objects/${id}`);
  view.replaceChildren(h('h1', {}, `${o.type_name} ${o.upsert_value || o.id.slice(-8)}`),
    h('h2', {}, 'Data'), json(o.data),
    h('h2', {}, 'Contacts'), table(o.contacts, [['Contact', l => link(`#/contacts/${l.contact_id}`, l.contact_id.slice(-8))]]));
}

async function scriptsView() {
  const r = await get('/api/v1/scripts?limit=200');
  view.replaceChildren(h('h1', {}, 'Scripts'),
    table(r.scripts, [['Name', s => link(`#/scripts/${s.id}`, s.name)], ['Type', s => s.type], ['Version', s => s.version], ['Updated', s => when(s.updated_at)]]));
}

async function scriptView(id) {
  const [{ script }, source, versions] = await Promise.all([
    get(`/api/v1/scripts/${id}`),
    get(`/ui/api/scripts/${id}/yaml`),
    get(`/api/v1/scripts/${id}/versions?order=desc&limit=20`),
  ]);
  const editor = h('textarea', { class: 'code', id: 'script-yaml', spellcheck: 'false', 'aria-label': 'Script YAML' });
  editor.value = source.yaml;
  const problems = h('div', { id: 'script-problems' });
  function showProblems(list) {
    if (!list.length) { problems.replaceChildren(h('p', { class: 'muted' }, 'No problems.')); return; }
    problems.replaceChildren(h('ul', { class: 'problems' }, list.map(p => h('li', {},
      p.line ? h('a', { href: '#', onclick: e => { e.preventDefault(); selectLine(editor, p.line); } }, `line ${p.line}`) : '',
      p.line ? ': ' : '', `${p.at}: ${p.problem}`))));
  }
  async function check() {
    const r = await api('POST', '/ui/api/scripts/check', { yaml: editor.value });
    showProblems(r.problems);
    return r;
  }
  const save = async () => {
    const r = await check();
    if (!r.valid) throw new Error(`Not saved: ${r.problems.length} problem(s)`);
    const saved = await api('PUT', `/api/v1/scripts/${id}`, r.definition);
    toast(`Saved as version ${saved.script.version}`);
    return scriptView(id);
  };
  const persona = h('select', { name: 'persona', id: 'persona' }, PERSONAS.map(p => h('option', { value: p }, p)));
  const simulation = h('div', { id: 'simulation' });
  const simulate = async () => {
    const r = await api('POST', `/api/v1/scripts/${id}/test`, { cases: [{ name: `as ${persona.value}`, persona: persona.value }] });
    const c = r.cases[0];
    simulation.replaceChildren(h('div', { class: 'card' },
      fields([['Path', c.path.join(' → ')], ['Outcome', c.outcome], ['End reason', c.end_reason], ['Summary', c.summary]]),
      h('div', { class: 'transcript' }, c.transcript.map(t => h('div', { class: `turn ${t.role}` }, h('span', { class: 'muted' }, ''), h('span', { class: 'role' }, t.role), h('span', {}, t.text))))));
  };
  view.replaceChildren(
    h('h1', {}, `Script: ${script.name} `, h('span', { class: 'muted' }, `version ${script.version}`)),
    h('div', { class: 'bar' },
      h('button', { type: 'button', class: 'secondary', onclick: () => act(check) }, 'Check'),
      h('button', { type: 'button', id: 'save-script', onclick: () => act(save) }, 'Save'),
      h('a', { href: `/softphone?script_id=${id}`, target: '_blank', rel: 'noopener' }, 'Try it in the softphone')),
    editor, problems,
    h('h2', {}, 'Simulate'),
    h('div', { class: 'bar' }, h('label', {}, 'Persona', persona), h('button', { type: 'button', id: 'simulate', onclick: () => act(simulate) }, 'Simulate')),
    simulation,
    h('h2', {}, 'Versions'),
    table(versions.versions, [
      ['Version', v => v.version], ['Saved', v => when(v.created_at)],
      ['', v => v.version === script.version ? 'current' : h('button', { class: 'secondary', type: 'button', onclick: () => act(() => api('POST', `/api/v1/scripts/${id}/versions/${v.version}/restore`), 'Restored').then(() => scriptView(id)) }, 'Restore')],
    ]));
}

function selectLine(textarea, line) {
  const lines = textarea.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || '').length);
  const height = textarea.scrollHeight / Math.max(lines.length, 1);
  textarea.scrollTop = Math.max(0, (line - 5) * height);
}

async function automationsView() {
  const r = await get('/api/v1/automations?limit=200');
  view.replaceChildren(h('h1', {}, 'Automations'),
    table(r.automations, [['Name', a => link(`#/automations/${a.id}`, a.name)], ['Trigger', a => a.trigger.type], ['Enabled', a => badge(a.enabled ? 'active' : 'disabled')], ['Steps', a => a.steps.length]]));
}

async function automationView(id) {
  const [{ automation: a }, executions] = await Promise.all([
    get(`/api/v1/automations/${id}`),
    get(`/api/v1/executions${query({ automation_id: id, limit: 50, order: 'desc' })}`),
  ]);
  const toggle = a.enabled ? 'disable' : 'enable';
  view.replaceChildren(
    h('h1', {}, `Automation: ${a.name} `, badge(a.enabled ? 'active' : 'disabled')),
    h('div', { class: 'bar' }, h('button', { type: 'button', id: 'toggle-automation', onclick: () => act(() => api('POST', `/api/v1/automations/${id}/${toggle}`), `Automation ${toggle}d`).then(() => automationView(id)) }, a.enabled ? 'Disable' : 'Enable')),
    h('h2', {}, 'Definition'), json({ trigger: a.trigger, steps: a.steps }),
    h('h2', {}, 'Executions'),
    table(executions.executions, [
      ['Execution', x => link(`#/executions/${x.id}`, x.id.slice(-8))], ['Status', x => badge(x.status)], ['Trigger', x => x.trigger],
      ['Steps', x => `${x.steps_completed}/${x.steps_total}`], ['Error', x => x.error || ''], ['Created', x => when(x.created_at)],
    ]));
}

async function executionView(id) {
  const { execution: x } = await get(`/api/v1/executions/${id}`);
  const retryable = ['Dead Letter', 'Failed'].includes(x.status);
  view.replaceChildren(
    h('h1', {}, `Execution ${x.id.slice(-8)} `, badge(x.status)),
    h('div', { class: 'bar' },
      link(`#/automations/${x.automation_id}`, 'Automation'),
      retryable ? h('button', { type: 'button', id: 'retry-execution', onclick: () => act(() => api('POST', `/api/v1/executions/${id}/retry`), 'Retry queued').then(() => executionView(id)) }, 'Retry') : ''),
    h('div', { class: 'card grid' }, fields([['Trigger', x.trigger], ['Error', x.error], ['Created', when(x.created_at)], ['Finished', when(x.finished_at)], ['Duration', x.duration_ms != null ? `${x.duration_ms} ms` : '']])),
    h('h2', {}, 'Steps'),
    (x.steps || []).map(s => h('div', { class: 'card step' },
      h('strong', {}, s.name || s.key), ' ', h('span', { class: 'muted' }, s.step_type), ' ', badge(s.status), ' ', h('span', { class: 'muted small' }, `${s.attempts} attempt(s)`),
      s.error ? h('p', { class: 'error' }, s.error) : '',
      h('div', { class: 'grid' }, h('div', {}, h('div', { class: 'muted small' }, 'Input'), json(s.input ?? null)), h('div', {}, h('div', { class: 'muted small' }, 'Output'), json(s.output ?? null))))),
    h('h2', {}, 'Context'), json(x.context));
}

async function webhooksView() {
  const r = await get('/api/v1/webhook-endpoints?limit=200');
  view.replaceChildren(h('h1', {}, 'Webhook endpoints'),
    table(r.endpoints, [['URL', e => link(`#/webhooks/${e.id}`, e.url)], ['Events', e => e.events.join(', ')], ['Enabled', e => badge(e.enabled ? 'active' : 'disabled')]]));
}

async function webhookView(id) {
  const [{ endpoint: e }, deliveries] = await Promise.all([
    get(`/api/v1/webhook-endpoints/${id}`),
    get(`/api/v1/webhook-endpoints/${id}/deliveries${query({ limit: 50, order: 'desc' })}`),
  ]);
  const secret = h('div');
  const rotate = async () => {
    const r = await api('POST', `/api/v1/webhook-endpoints/${id}/rotate-secret`, {});
    secret.replaceChildren(h('p', {}, 'The new signing secret, shown only now:'), h('div', { class: 'secret', id: 'new-secret' }, r.secret));
  };
  view.replaceChildren(
    h('h1', {}, `Webhook: ${e.url}`),
    h('div', { class: 'card grid' }, fields([['Events', e.events.join(', ')], ['Description', e.description], ['Enabled', e.enabled ? 'yes' : 'no'], ['Previous secret valid until', when(e.previous_secret_valid_until)]])),
    h('div', { class: 'bar' }, h('button', { type: 'button', class: 'secondary', onclick: () => act(rotate) }, 'Rotate secret')), secret,
    h('h2', {}, 'Deliveries'),
    table(deliveries.deliveries, [
      ['Delivery', d => link(`#/deliveries/${d.id}`, d.id.slice(-8))], ['Event', d => d.event_type], ['Status', d => badge(d.status)],
      ['Attempts', d => d.attempts], ['Last', d => d.last_status_code ?? d.last_error ?? ''], ['Created', d => when(d.created_at)],
    ]));
}

async function deliveryView(id) {
  const { delivery: d } = await get(`/api/v1/webhook-deliveries/${id}`);
  view.replaceChildren(
    h('h1', {}, `Delivery ${d.id.slice(-8)} `, badge(d.status)),
    h('div', { class: 'bar' }, link(`#/webhooks/${d.endpoint_id}`, 'Endpoint'),
      h('button', { type: 'button', id: 'redeliver', onclick: () => act(() => api('POST', `/api/v1/webhook-deliveries/${id}/redeliver`), 'Redelivery queued').then(() => deliveryView(id)) }, 'Redeliver')),
    h('h2', {}, 'Tries'),
    table(d.tries || [], [['At', t => when(t.at)], ['Status code', t => t.status_code ?? ''], ['Error', t => t.error || ''], ['Duration', t => `${t.duration_ms} ms`]]),
    h('h2', {}, 'Payload'), json(d.payload));
}

async function campaignsView() {
  const r = await get('/api/v1/campaigns?limit=200&order=desc');
  view.replaceChildren(h('h1', {}, 'Campaigns'),
    table(r.campaigns, [
      ['Name', c => link(`#/campaigns/${c.id}`, c.name)], ['Status', c => badge(c.status)],
      ['Members', c => c.counts?.total ?? ''], ['Starts', c => when(c.scheduled_time)], ['Created', c => when(c.created_at)],
    ]));
}

async function campaignView(id) {
  const [{ campaign: c }, log, calls] = await Promise.all([
    get(`/api/v1/campaigns/${id}`),
    get(`/api/v1/campaigns/${id}/log?order=desc&limit=50`),
    get(`/api/v1/calls${query({ campaign_id: id, order: 'desc', limit: 50 })}`),
  ]);
  const scripts = await scriptsById();
  const action = (verb, label, done, cls = 'secondary') => h('button', { type: 'button', class: cls, id: `campaign-${verb}`, onclick: () => act(() => api('POST', `/api/v1/campaigns/${id}/${verb}`), done).then(() => campaignView(id)) }, label);
  const running = !['completed', 'cancelled'].includes(c.status);
  const n = c.counts || {};
  view.replaceChildren(
    h('h1', {}, `Campaign: ${c.name} `, badge(c.status)),
    h('div', { class: 'bar' },
      running && c.status !== 'paused' ? action('pause', 'Pause', 'Campaign paused') : '',
      c.status === 'paused' ? action('resume', 'Resume', 'Campaign resumed') : '',
      running ? action('cancel', 'Cancel campaign', 'Campaign cancelled', 'danger') : ''),
    h('div', { class: 'card grid' }, fields([
      ['Why', c.status_reason], ['List', link(`#/lists/${c.list_id}`, c.list_id.slice(-8))], ['Script', link(`#/scripts/${c.script_id}`, scripts[c.script_id]?.name || c.script_id.slice(-8))],
      ['From', c.from_numbers.join(', ')], ['Starts', when(c.scheduled_time)], ['At most at once', c.max_concurrent_calls], ['Per minute', c.calls_per_minute],
      ['Members', n.total], ['Waiting', n.pending], ['Suppressed', n.suppressed], ['Skipped', n.skipped], ['Scheduled', n.scheduled], ['In progress', n.in_progress],
      ['Ended', Object.entries(n.ended || {}).map(([k, v]) => `${k}: ${v}`).join(', ')],
    ])),
    h('h2', {}, 'Calls'), table(calls.calls, callRow(null, scripts)),
    h('h2', {}, 'Log'), table(log.log, [['At', e => when(e.at)], ['Kind', e => e.kind], ['Message', e => e.message]]));
}

async function doNotCallView() {
  const list = paged(async cursor => {
    const r = await get(`/api/v1/dnc${query({ cursor, limit: 100, order: 'desc' })}`);
    return { items: r.entries, meta: r.meta };
  }, rows => table(rows, [['Number', e => e.phone_number], ['Reason', e => e.reason || ''], ['Listed', e => when(e.created_at)],
    ['', e => h('button', { type: 'button', class: 'secondary', onclick: () => act(() => api('DELETE', `/api/v1/dnc/${encodeURIComponent(e.phone_number)}`), 'Removed from the list').then(doNotCallView) }, 'Remove')]]));
  const add = h('form', { class: 'inline', id: 'add-dnc' },
    h('label', {}, 'Number', h('input', { name: 'phone_number', required: true })),
    h('label', {}, 'Reason', h('input', { name: 'reason' })),
    h('button', { type: 'submit' }, 'Add to the list'));
  add.addEventListener('submit', e => {
    e.preventDefault();
    const f = formData(add);
    act(() => api('POST', '/api/v1/dnc', { phone_number: f.phone_number, ...(f.reason ? { reason: f.reason } : {}) }), 'Listed').then(doNotCallView);
  });
  view.replaceChildren(h('h1', {}, 'Do not call'), h('p', { class: 'muted' }, 'Numbers here are never dialled: calls to them are refused when made and ended before they ring.'), add, list.box);
  await list.next();
}

async function settingsView() {
  const [{ team }, numbers, keys, scripts] = await Promise.all([
    get('/ui/api/team'), get('/api/v1/phone-numbers?limit=200'), get('/ui/api/keys'), scriptsById(),
  ]);
  const w = team.calling_window || {};
  const windowForm = h('form', { class: 'inline', id: 'calling-window' },
    h('label', {}, 'Opens', h('input', { name: 'start', value: w.start || '', placeholder: '09:00' })),
    h('label', {}, 'Closes', h('input', { name: 'end', value: w.end || '', placeholder: '20:00' })),
    h('label', {}, 'Days', h('input', { name: 'days', value: (w.days || []).join(','), placeholder: 'mon,tue,wed,thu,fri' })),
    h('button', { type: 'submit' }, 'Save window'),
    h('button', { type: 'button', class: 'secondary', onclick: () => act(() => api('PATCH', '/ui/api/team', { calling_window: null }), 'Window removed').then(settingsView) }, 'Remove'));
  windowForm.addEventListener('submit', e => {
    e.preventDefault();
    const f = formData(windowForm);
    const calling_window = { start: f.start, end: f.end };
    if (f.days.trim()) calling_window.days = f.days.split(',').map(d => d.trim()).filter(Boolean);
    act(() => api('PATCH', '/ui/api/team', { calling_window }), 'Calling window saved').then(settingsView);
  });
  const recordings = h('input', { type: 'checkbox', checked: team.recordings, id: 'recordings',
    onchange: e => act(() => api('PATCH', '/ui/api/team', { recordings: e.target.checked }), 'Saved') });

  const addNumber = h('form', { class: 'inline', id: 'add-number' },
    h('label', {}, 'Number', h('input', { name: 'phone_number', required: true, placeholder: '+61…' })),
    h('label', {}, 'Inbound script', h('select', { name: 'inbound_script_id' }, h('option', { value: '' }, 'none'), Object.values(scripts).filter(s => s.type === 'inbound').map(s => h('option', { value: s.id }, s.name)))),
    h('button', { type: 'submit' }, 'Add number'));
  addNumber.addEventListener('submit', e => {
    e.preventDefault();
    const f = formData(addNumber);
    act(() => api('POST', '/api/v1/phone-numbers', { phone_number: f.phone_number, inbound_script_id: f.inbound_script_id || null }), 'Number added').then(settingsView);
  });

  const newKey = h('div', { id: 'new-key' });
  const keyForm = h('form', { class: 'inline', id: 'create-key' },
    h('label', {}, 'Label', h('input', { name: 'name', placeholder: 'CRM sync' })),
    h('button', { type: 'submit' }, 'Create key'));
  keyForm.addEventListener('submit', async e => {
    e.preventDefault();
    const r = await act(() => api('POST', '/ui/api/keys', formData(keyForm)));
    if (!r) return;
    await settingsView();
    document.getElementById('new-key').replaceChildren(
      h('p', {}, 'Your new API key. Copy it now: it is shown only this once.'),
      h('div', { class: 'secret', id: 'key-secret' }, r.secret));
  });

  view.replaceChildren(
    h('h1', {}, `Settings: ${team.name}`),
    h('div', { class: 'card grid' }, fields([['Region', team.region], ['Time zone', team.timezone], ['Requests per second', team.requests_per_second],
      ['Concurrent calls', team.max_concurrent_calls ?? 'server default'], ['Recording retention', team.recording_retention_days ? `${team.recording_retention_days} days` : 'kept'],
      ['Transcript retention', team.transcript_retention_days ? `${team.transcript_retention_days} days` : 'kept']])),
    h('p', { class: 'muted small' }, 'Limits and retention are set by the operator (voxd team).'),
    h('h2', {}, 'Calling window'), windowForm,
    h('label', { class: 'inline' }, h('span', {}, recordings, ' Record live calls')),
    h('h2', {}, 'Phone numbers'),
    table(numbers.phone_numbers, [['Number', n => n.phone_number], ['Inbound script', n => scripts[n.inbound_script_id]?.name || ''],
      ['', n => h('button', { type: 'button', class: 'secondary', onclick: () => act(() => api('DELETE', `/api/v1/phone-numbers/${n.id}`), 'Number removed').then(settingsView) }, 'Remove')]]),
    addNumber,
    h('h2', {}, 'API keys'),
    table(keys.keys, [['Key', k => h('code', {}, `${k.prefix}…`)], ['Label', k => k.name || ''], ['Created', k => when(k.created_at)], ['Last used', k => when(k.last_used_at) || 'never'],
      ['Status', k => badge(k.revoked_at ? 'revoked' : 'active')],
      ['', k => k.revoked_at ? '' : h('button', { type: 'button', class: 'danger', 'data-key': k.id, onclick: () => confirm('Revoke this key? Requests with it will fail.') && act(() => api('POST', `/ui/api/keys/${k.id}/revoke`), 'Key revoked').then(settingsView) }, 'Revoke')]],
      k => ({ 'data-key-row': k.id })),
    keyForm, newKey);
}

// ---- routing --------------------------------------------------------------------------------

const routes = [
  [/^calls$/, (m, p) => callsView(p)], [/^calls\/([\w-]+)$/, m => callView(m[1])],
  [/^contacts$/, (m, p) => contactsView(p)], [/^contacts\/([\w-]+)$/, m => contactView(m[1])],
  [/^lists$/, () => listsView()], [/^lists\/([\w-]+)$/, m => listView(m[1])],
  [/^objects$/, (m, p) => objectsView(p)], [/^objects\/([\w-]+)$/, m => objectView(m[1])],
  [/^scripts$/, () => scriptsView()], [/^scripts\/([\w-]+)$/, m => scriptView(m[1])],
  [/^automations$/, () => automationsView()], [/^automations\/([\w-]+)$/, m => automationView(m[1])],
  [/^executions\/([\w-]+)$/, m => executionView(m[1])],
  [/^webhooks$/, () => webhooksView()], [/^webhooks\/([\w-]+)$/, m => webhookView(m[1])],
  [/^deliveries\/([\w-]+)$/, m => deliveryView(m[1])],
  [/^campaigns$/, () => campaignsView()], [/^campaigns\/([\w-]+)$/, m => campaignView(m[1])],
  [/^dnc$/, () => doNotCallView()],
  [/^settings$/, () => settingsView()],
];

async function route() {
  liveHandlers.clear();
  const raw = location.hash.replace(/^#\/?/, '') || 'calls';
  const [path, q] = raw.split('?');
  const params = new URLSearchParams(q || '');
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', path.startsWith(a.getAttribute('href').slice(2)));
  }
  const found = routes.find(([re]) => re.test(path));
  view.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    if (!found) throw new Error(`No page at #/${path}`);
    await found[1](path.match(found[0]), params);
    document.body.dataset.view = path.split('/')[0];
  } catch (e) {
    view.replaceChildren(h('h1', {}, e.status === 404 ? 'Not found' : 'Something went wrong'), h('p', { class: 'error', id: 'view-error' }, e.message));
  }
}

window.addEventListener('hashchange', route);
route();
