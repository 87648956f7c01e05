"use strict";
// Sereno's page, live: takes over <main id="main"> from the server-rendered page, renders the
// view the URL names from the JSON API, and polls it every second so that a change shows
// without a reload. The server renders the same views for browsers without scripts; the CSS
// classes are shared. Everything is built with createElement and textContent: alert labels
// come from agents and are never parsed as HTML.

const POLL_MS = 1000;
const RULES_MS = 60000; // the rules change only on a reload
const SAID_MS = 5000; // an outcome stays in the status line this long before "Updated"
const HISTORY_HOURS = 6;
const STATES = ["firing", "no data", "pending"]; // in the order alerts are shown
const TOKEN_KEY = "sereno-token";
const NAME_KEY = "sereno-name";

// ---- building the DOM ----

// An element: attributes (`class`, `on…` handlers, `style` as an object of properties,
// booleans for boolean attributes), then children (strings become text, null is skipped).
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "style") {
      for (const [property, set] of Object.entries(value)) element.style.setProperty(property, set);
    } else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function pad(number) {
  return String(number).padStart(2, "0");
}

// Times are shown in UTC, as the server-rendered page shows them.
function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

function hourMinute(seconds) {
  return clock(seconds).slice(0, 5);
}

function isoDay(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

function when(seconds) {
  return h(
    "time",
    { datetime: new Date(seconds * 1000).toISOString() },
    `${isoDay(seconds)} ${clock(seconds)}`,
  );
}

function ago(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ]) {
    if (s >= size) return `${Math.floor(s / size)}${unit} ago`;
  }
  return `${s}s ago`;
}

function number(value) {
  if (value === null || value === undefined) return "";
  return String(Number(value.toPrecision(6)));
}

// Black or white, whichever has the higher WCAG contrast on the severity's colour.
function readableText(hex) {
  const linear = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  return (luminance + 0.05) ** 2 >= 0.0525 ? "#000000" : "#ffffff";
}

function sevStyle(severity) {
  const color = page.colors.get(severity);
  return color ? { "--sev": color, "--sev-text": readableText(color) } : null;
}

function sevBadge(severity) {
  return h("span", { class: "sev", style: sevStyle(severity) }, severity);
}

function mark(kind, text, title) {
  return h("span", { class: `mark mark-${kind}`, title: title || null }, text);
}

function table(caption, heads, rows, classes) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: classes || "data" },
      caption ? h("caption", {}, caption) : null,
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          heads.map((name) => h("th", { scope: "col" }, name)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function field(id, label, control) {
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function select(name, values, chosen, options) {
  const { multiple, blank } = options || {};
  const element = h("select", { name, multiple: !!multiple, size: multiple ? 4 : null });
  if (blank) element.append(h("option", { value: "" }, blank));
  for (const value of values) {
    element.append(h("option", { value, selected: chosen.includes(value) }, value));
  }
  return element;
}

function alertLink(id, text, attrs) {
  return h("a", { href: `/?view=alert&id=${encodeURIComponent(id)}`, ...attrs }, text);
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

// ---- talking to the API ----

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options) {
  const headers = { ...((options && options.headers) || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let answer;
  try {
    answer = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new ApiError(0, "the service does not answer");
  }
  if (answer.status === 401) {
    tokenDialog.ask();
    throw new ApiError(401, "an access token is needed");
  }
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) throw new ApiError(answer.status, (body && body.error) || answer.statusText);
  return body;
}

function post(path, body) {
  const options = { method: "POST" };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  return api(path, options);
}

// ---- the page's state: the view shown, the rules, the poll ----

const page = {
  main: null,
  status: null,
  view: null, // the view whose shell is shown
  shell: null, // that view's shell: { nodes, update(data) }, its live part rebuilt by update
  colors: new Map(),
  rules: null,
  rulesAt: 0,
  timer: null,
  generation: 0, // a poll answered after the view changed is dropped
  shown: "", // the data last rendered, to leave the DOM alone when nothing changed
  saidAt: 0, // when an outcome was last said in the status line
  pollFailed: false, // said once, not at every failed poll
};

// What is said in the live region is announced by screen readers: the routine "Updated"
// of each poll is shown but not announced, failures and outcomes are.
function setStatus(text, failed) {
  page.status.replaceChildren(text);
  page.status.classList.toggle("failed", !!failed);
  page.saidAt = Date.now();
}

function setUpdated() {
  page.status.replaceChildren(
    h("span", { "aria-hidden": "true" }, `Updated ${clock(Date.now() / 1000)}`),
  );
  page.status.classList.remove("failed");
}

async function rules() {
  if (!page.rules || Date.now() - page.rulesAt > RULES_MS) {
    page.rules = await api("/api/rules");
    page.rulesAt = Date.now();
    page.colors = new Map(
      page.rules.severities
        .filter((s) => /^#[0-9a-fA-F]{6}$/.test(s.color || ""))
        .map((s) => [s.name, s.color]),
    );
  }
  return page.rules;
}

function query() {
  const params = new URLSearchParams(location.search);
  const view = params.get("view") || "alerts";
  return { view, params };
}

function navigate(url) {
  history.pushState(null, "", url);
  refresh(true);
}

// Filters change the URL in place: going back leaves the view, not each click of a filter.
function replaceQuery(params) {
  history.replaceState(null, "", `/?${params.toString()}`);
  refresh(false);
}

async function refresh(viewChanged) {
  clearTimeout(page.timer);
  const generation = ++page.generation;
  const { view, params } = query();
  const controller = VIEWS[view];
  try {
    if (!controller) throw new ApiError(400, `no view is called ${view}`);
    const data = await controller.load(params);
    if (generation !== page.generation) return;
    if (viewChanged || page.view !== view) showShell(view, controller, params, data);
    const serialized = location.search + JSON.stringify(data); // filters change what is shown
    if (serialized !== page.shown) {
      page.shown = serialized;
      keepingFocus(() => page.shell.update(data));
    }
    if (page.pollFailed || Date.now() - page.saidAt > SAID_MS) setUpdated();
    page.pollFailed = false;
  } catch (error) {
    if (generation !== page.generation) return;
    if (!page.pollFailed)
      setStatus(`Update failed at ${clock(Date.now() / 1000)}: ${error.message}`, true);
    page.pollFailed = true;
    if (page.view !== view) showProblem(view, error);
  }
  if (generation === page.generation && !document.hidden) {
    page.timer = setTimeout(() => refresh(false), POLL_MS);
  }
}

function showShell(view, controller, params, data) {
  page.view = view;
  page.shown = "";
  page.shell = controller.shell(params, data);
  page.main.dataset.view = view;
  page.main.replaceChildren(...page.shell.nodes);
  for (const link of document.querySelectorAll("nav a")) {
    const current = new URL(link.href).searchParams.get("view") === view;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `Sereno: ${view}`;
}

function showProblem(view, error) {
  page.view = null;
  page.main.dataset.view = view;
  const text =
    error.status === 404 ? "Nothing is known of this." : `Cannot show this view: ${error.message}.`;
  page.main.replaceChildren(h("p", { class: "note error" }, text));
}

// The live part is rebuilt when its data changes: the focused control (by its data-key or
// id) and the open <details> (by data-key) are found again, so that a poll moves nobody.
function keepingFocus(render) {
  const focused = document.activeElement;
  const inside = focused && focused !== page.main && page.main.contains(focused);
  const summary = inside && focused.tagName === "SUMMARY";
  const keyed = summary ? focused.parentElement : focused;
  const focusKey = inside ? keyed.dataset.key || keyed.id || null : null;
  const wasOpen = new Map(
    [...page.main.querySelectorAll("details[data-key]")].map((details) => [
      details.dataset.key,
      details.open,
    ]),
  );
  render();
  for (const details of page.main.querySelectorAll("details[data-key]")) {
    if (wasOpen.has(details.dataset.key)) details.open = wasOpen.get(details.dataset.key);
  }
  const again = focusKey && (findKey(focusKey) || document.getElementById(focusKey));
  if (again) (summary ? again.querySelector("summary") : again).focus();
}

function findKey(key) {
  return [...document.querySelectorAll("[data-key]")].find((e) => e.dataset.key === key) || null;
}

// ---- dialogs ----

// A modal dialog built once: Escape closes it (the browser's own cancel), and focus goes
// back to the control that opened it, or to the one that replaced it in a later poll.
function makeDialog(title, id) {
  const heading = h("h2", { id: `${id}-title` }, title);
  const problem = h("p", { class: "problem", role: "alert" });
  const dialog = h("dialog", { id, "aria-labelledby": `${id}-title` });
  let openerKey = null;
  let opener = null;
  dialog.addEventListener("close", () => {
    const back = opener && opener.isConnected ? opener : openerKey && findKey(openerKey);
    (back || page.main).focus();
  });
  document.body.append(dialog);
  return {
    dialog,
    heading,
    problem,
    open(from) {
      opener = from || document.activeElement;
      openerKey = opener && opener.dataset ? opener.dataset.key : null;
      problem.textContent = "";
      dialog.showModal();
    },
    close() {
      dialog.close();
    },
  };
}

function buttons(submitLabel, onCancel) {
  return h(
    "div",
    { class: "buttons" },
    h("button", { type: "button", onclick: onCancel }, "Cancel"),
    h("button", { type: "submit", class: "primary" }, submitLabel),
  );
}

async function submitting(dialog, form, action) {
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await action();
    dialog.close();
    refresh(false);
  } catch (error) {
    dialog.problem.textContent = error.message;
  } finally {
    submit.disabled = false;
  }
}

const tokenDialog = (() => {
  const d = makeDialog("Access token", "token-dialog");
  const input = h("input", { type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { method: "dialog" },
    d.heading,
    h("p", {}, "This service needs an access token."),
    field("token-input", "Access token", input),
    d.problem,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Use token")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    d.close();
    refresh(true);
  });
  d.dialog.append(form);
  return {
    ask() {
      if (d.dialog.open) return;
      input.value = "";
      d.open();
      if (sessionStorage.getItem(TOKEN_KEY)) d.problem.textContent = "That token was refused.";
    },
  };
})();

function nameInput() {
  return h("input", {
    type: "text",
    required: true,
    autocomplete: "name",
    value: localStorage.getItem(NAME_KEY) || "",
  });
}

const ackDialog = (() => {
  const d = makeDialog("Acknowledge", "ack-dialog");
  const about = h("p");
  const by = nameInput();
  const comment = h("textarea", { rows: 2 });
  let alertId = null;
  const form = h(
    "form",
    {},
    d.heading,
    about,
    field("ack-by", "Your name", by),
    field("ack-comment", "Comment", comment),
    d.problem,
    buttons("Acknowledge", () => d.close()),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(NAME_KEY, by.value.trim());
    submitting(d, form, async () => {
      await post(`/api/alerts/${encodeURIComponent(alertId)}/ack`, {
        by: by.value.trim(),
        comment: comment.value.trim(),
      });
      setStatus(`Acknowledged at ${clock(Date.now() / 1000)}`);
    });
  });
  d.dialog.append(form);
  return {
    open(alert, from) {
      alertId = alert.id;
      about.textContent = `${alert.rule} on ${alert.server || alert.service}`;
      comment.value = "";
      d.open(from);
    },
  };
})();

// A matcher as the API reads it: the value in double quotes, with \ and " escaped.
function matcher(name, value) {
  return `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

const silenceDialog = (() => {
  const d = makeDialog("New silence", "silence-dialog");
  const matchers = h("div", { class: "matcher-fields" });
  const duration = h("input", {
    type: "text",
    value: "2h",
    required: true,
    pattern: "(\\d+h)?(\\d+m)?",
    "aria-describedby": "duration-hint",
  });
  const by = nameInput();
  const comment = h("textarea", { rows: 2, required: true });
  const addMatcher = (value) => {
    const n = matchers.children.length + 1;
    matchers.append(
      field(`matcher-${n}`, `Matcher ${n}`, h("input", { type: "text", value: value || "" })),
    );
  };
  const form = h(
    "form",
    { "aria-labelledby": "silence-dialog-title" },
    d.heading,
    matchers,
    h("button", { type: "button", onclick: () => addMatcher("") }, "Add a matcher"),
    field("silence-duration", "Duration", duration),
    h("p", { id: "duration-hint", class: "muted" }, "Such as 2h, 30m or 1h30m."),
    field("silence-by", "Your name", by),
    field("silence-comment", "Comment", comment),
    d.problem,
    buttons("Create silence", () => d.close()),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(NAME_KEY, by.value.trim());
    const written = [...matchers.querySelectorAll("input")]
      .map((i) => i.value.trim())
      .filter(Boolean);
    submitting(d, form, async () => {
      if (!written.length) throw new Error("a silence needs at least one matcher");
      await post("/api/silences", {
        matchers: written,
        created_by: by.value.trim(),
        comment: comment.value.trim(),
        duration: duration.value.trim(),
      });
      setStatus(`Silence created at ${clock(Date.now() / 1000)}`);
    });
  });
  d.dialog.append(form);
  return {
    // Prefilled with the alert's labels when made from an alert.
    open(alert, from) {
      matchers.replaceChildren();
      const labels = alert
        ? [
            ["rule", alert.rule],
            ["service", alert.service],
            ["server", alert.server],
          ]
        : [];
      for (const [name, value] of labels) if (value) addMatcher(matcher(name, value));
      if (!matchers.children.length) addMatcher("");
      duration.value = "2h";
      comment.value = "";
      d.open(from);
    },
  };
})();

// ---- the views: each loads its data, builds its shell once, and updates its live part ----

function liveShell(...nodes) {
  const live = h("div", { class: "live" });
  return { live, nodes: [...nodes, live] };
}

function alertActions(alert) {
  const label = `rule-${alert.id}`;
  return h(
    "td",
    { class: "actions" },
    alert.ack
      ? null
      : h(
          "button",
          {
            type: "button",
            "data-key": `ack-${alert.id}`,
            "aria-describedby": label,
            onclick: (event) => ackDialog.open(alert, event.currentTarget),
          },
          "Acknowledge",
        ),
    h(
      "button",
      {
        type: "button",
        "data-key": `silence-${alert.id}`,
        "aria-describedby": label,
        onclick: (event) => silenceDialog.open(alert, event.currentTarget),
      },
      "Silence",
    ),
  );
}

function isQuiet(alert) {
  return alert.silenced_by.length > 0 || !!alert.ack || alert.inhibited || alert.flapping;
}

function serversCount(alert) {
  const matched = (alert.matched_servers || []).length;
  const active = alert.active_servers ?? matched + (alert.unmatched_servers || []).length;
  return `${matched} of ${active} servers`;
}

function where(alert) {
  if (alert.server !== null) return alert.server;
  return h(
    "details",
    { class: "servers", "data-key": `servers-${alert.id}` },
    h("summary", {}, serversCount(alert)),
    h(
      "ul",
      {},
      (alert.matched_servers || []).map((s) => h("li", {}, s)),
    ),
  );
}

function alertMarks(alert) {
  const marks = [];
  if (alert.state === "no data" || alert.no_data_since !== null)
    marks.push(mark("no-data", "no data"));
  if (alert.silenced_by.length)
    marks.push(mark("silenced", "silenced", `by ${alert.silenced_by.join(", ")}`));
  if (alert.ack) marks.push(mark("acked", `acknowledged by ${alert.ack.by}`, alert.ack.comment));
  if (alert.inhibited) marks.push(mark("inhibited", "inhibited"));
  if (alert.flapping) marks.push(mark("flapping", "flapping"));
  if (alert.in_maintenance !== null)
    marks.push(mark("maintenance", "in maintenance", alert.in_maintenance));
  return marks;
}

function alertRow(alert) {
  return h(
    "tr",
    {
      class: `alert state-${alert.state.replace(" ", "-")}`,
      id: `alert-${alert.id}`,
      "data-alert-id": alert.id,
      "data-state": alert.state,
      style: sevStyle(alert.severity),
    },
    h("td", {}, sevBadge(alert.severity)),
    h("td", { class: "state" }, alert.state),
    h("td", {}, alertLink(alert.id, alert.rule, { id: `rule-${alert.id}` })),
    h("td", {}, alert.service),
    h("td", {}, where(alert)),
    h("td", {}, when(alert.since)),
    h("td", { class: "number" }, number(alert.value)),
    h("td", {}, alertMarks(alert)),
    alertActions(alert),
  );
}

const ALERT_HEADS = [
  "Severity",
  "State",
  "Rule",
  "Service",
  "Where",
  "Since (UTC)",
  "Value",
  "Marks",
  "Actions",
];

function alertFilters(params) {
  return {
    severity: params.getAll("severity"),
    service: params.getAll("service"),
    rule: params.getAll("rule"),
    state: params.getAll("state"),
    q: (params.get("q") || "").trim(),
  };
}

function matches(alert, filters) {
  const chosen = [
    ["severity", alert.severity],
    ["service", alert.service],
    ["rule", alert.rule],
    ["state", alert.state],
  ];
  if (chosen.some(([name, value]) => filters[name].length && !filters[name].includes(value)))
    return false;
  const labels = [alert.rule, alert.severity, alert.service, alert.server || ""]
    .join(" ")
    .toLowerCase();
  return labels.includes(filters.q.toLowerCase());
}

const knownServices = new Set(); // services seen this visit, so a filter's options stay put

const alertsView = {
  async load() {
    const [alerts, rulesAnswer] = await Promise.all([api("/alerts"), rules()]);
    return { alerts, rules: rulesAnswer };
  },
  shell(params, data) {
    const filters = alertFilters(params);
    for (const name of [...data.alerts.map((a) => a.service), ...filters.service]) {
      knownServices.add(name);
    }
    const service = select("service", [...knownServices].sort(), filters.service, {
      multiple: true,
    });
    const form = h(
      "form",
      {
        role: "search",
        "aria-label": "Filter alerts",
        method: "get",
        action: "/",
        class: "filters",
      },
      h("input", { type: "hidden", name: "view", value: "alerts" }),
      field(
        "f-severity",
        "Severity",
        select(
          "severity",
          data.rules.severities.map((s) => s.name),
          filters.severity,
          { multiple: true },
        ),
      ),
      field("f-service", "Service", service),
      field(
        "f-rule",
        "Rule",
        select(
          "rule",
          data.rules.rules.map((r) => r.name),
          filters.rule,
          { multiple: true },
        ),
      ),
      field("f-state", "State", select("state", STATES, filters.state, { multiple: true })),
      field("f-q", "Search", h("input", { type: "search", name: "q", value: filters.q })),
      h("button", { type: "submit", class: "no-script" }, "Filter"),
    );
    const applyForm = () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [name, value] of [...params]) if (!value) params.delete(name);
      replaceQuery(params);
    };
    form.addEventListener("change", applyForm);
    form.addEventListener("input", (event) => {
      if (event.target.type === "search") applyForm();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      applyForm();
    });
    const { live, nodes } = liveShell(h("h2", {}, "Open alerts"), form);
    return {
      nodes,
      update(current) {
        updateServiceOptions(service, current.alerts);
        live.replaceChildren(
          ...alertsListing(current.alerts, alertFilters(new URLSearchParams(location.search))),
        );
        document.title = alertsTitle(current.alerts);
      },
    };
  },
};

function updateServiceOptions(selectElement, alerts) {
  const chosen = [...selectElement.selectedOptions].map((o) => o.value);
  const before = knownServices.size;
  for (const name of [...alerts.map((a) => a.service), ...chosen]) knownServices.add(name);
  if (before === knownServices.size) return;
  selectElement.replaceChildren(
    ...[...knownServices]
      .sort()
      .map((value) => h("option", { value, selected: chosen.includes(value) }, value)),
  );
}

function alertsListing(alerts, filters) {
  if (!alerts.length) return [empty("No alert is open: none firing, pending or without data.")];
  const order = (a) => STATES.indexOf(a.state);
  const shown = alerts
    .filter((a) => matches(a, filters))
    .sort((a, b) => order(a) - order(b) || a.since - b.since);
  if (!shown.length) return [empty("No open alert matches these filters.")];
  const loud = shown.filter((a) => !isQuiet(a));
  const quiet = shown.filter(isQuiet);
  const nodes = [
    loud.length ? table("", ALERT_HEADS, loud.map(alertRow)) : empty("No loud alert."),
  ];
  if (quiet.length) {
    nodes.push(
      h(
        "details",
        { class: "quiet-alerts", "data-key": "quiet-alerts" },
        h("summary", {}, `Quiet alerts (${quiet.length})`),
        table("", ALERT_HEADS, quiet.map(alertRow)),
      ),
    );
  }
  return nodes;
}

function alertsTitle(alerts) {
  const count = (state) => alerts.filter((a) => a.state === state).length;
  const noData = count("no data");
  return `Sereno: ${count("firing")} firing, ${count("pending")} pending${noData ? `, ${noData} without data` : ""}`;
}

const fleetView = {
  async load(params) {
    const service = params.get("service");
    const path = service ? `/api/fleet?service=${encodeURIComponent(service)}` : "/api/fleet";
    return { fleet: await api(path) };
  },
  shell(params, data) {
    const chosen = params.get("service") || "";
    const services = data.fleet.services.map((s) => s.service);
    if (chosen && !services.includes(chosen)) services.push(chosen);
    const form = h(
      "form",
      {
        role: "search",
        "aria-label": "Filter fleet",
        method: "get",
        action: "/",
        class: "filters",
      },
      h("input", { type: "hidden", name: "view", value: "fleet" }),
      field("f-service", "Service", select("service", services.sort(), [chosen], { blank: "All" })),
      h("button", { type: "submit", class: "no-script" }, "Filter"),
    );
    const apply = (event) => {
      event.preventDefault();
      const params = new URLSearchParams({ view: "fleet" });
      const service = form.elements.service.value;
      if (service) params.set("service", service);
      replaceQuery(params);
    };
    form.addEventListener("change", apply);
    form.addEventListener("submit", apply);
    const { live, nodes } = liveShell(h("h2", {}, "Fleet"), form);
    return {
      nodes,
      update(current) {
        const fleet = current.fleet;
        live.replaceChildren(
          ...(fleet.services.length
            ? fleet.services.map((s) => serviceTable(s, latestTime(fleet)))
            : [empty("No server has reported yet.")]),
        );
      },
    };
  },
};

// What a report's age is counted to: the latest minute evaluated, or the latest report if it
// came after (events of the minute being gathered).
function latestTime(fleet) {
  if (fleet.evaluated_before === null) return null;
  const reports = fleet.services.flatMap((s) => s.servers.map((server) => server.last_report));
  return Math.max(fleet.evaluated_before, ...reports);
}

function serviceTable(reading, now) {
  const components = [
    ...new Set(reading.servers.flatMap((s) => s.components.map((c) => c.component))),
  ].sort();
  const rows = reading.servers.map((server) => {
    const latest = new Map(server.components.map((c) => [c.component, c]));
    const status = [
      server.quiet ? mark("quiet", "quiet") : null,
      server.active ? h("span", { class: "muted" }, "active") : mark("passive", "passive"),
    ];
    return h(
      "tr",
      { "data-server": server.server, class: server.quiet ? "quiet" : null },
      h("th", { scope: "row" }, server.server),
      h("td", {}, now === null ? "" : ago(now - server.last_report)),
      h("td", {}, status),
      components.map((name) => componentCell(latest.get(name))),
    );
  });
  return table(
    reading.service,
    ["Server", "Last report", "Status", ...components],
    rows,
    "data fleet",
  );
}

function componentCell(reading) {
  if (!reading) return h("td", { class: "number muted" }, "none");
  if (!reading.matched_by.length) return h("td", { class: "number" }, number(reading.value));
  const rules = reading.matched_by.join(", ");
  return h(
    "td",
    { class: "number matched", title: `matched by ${rules}` },
    number(reading.value),
    h("span", { class: "visually-hidden" }, ` (matched by ${rules})`),
  );
}

// A datetime-local input's value for a time, in UTC as the page shows times.
function localInput(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  const seconds = Date.parse(`${value}:00Z`) / 1000;
  return Number.isFinite(seconds) ? seconds : null;
}

// A bound of the period: until people change it, it follows the service's clock (the
// last hours), so it is left out of the URL.
function periodInput(name, seconds, params) {
  const input = h("input", {
    type: "datetime-local",
    name,
    value: localInput(seconds),
    "aria-describedby": "utc-note",
  });
  if (params.get(name)) input.dataset.chosen = "yes";
  input.addEventListener("change", () => {
    input.dataset.chosen = "yes";
  });
  return input;
}

function historyPeriod(params, now) {
  const asked = (name) => {
    const text = params.get(name);
    if (!text) return null;
    const seconds = /^-?\d+(\.\d+)?$/.test(text)
      ? Number(text)
      : Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : `${text}Z`) / 1000;
    return Number.isFinite(seconds) ? seconds : null;
  };
  const until = asked("until") ?? now;
  const since = asked("since") ?? until - HISTORY_HOURS * 3600;
  return since < until ? [since, until] : [until - HISTORY_HOURS * 3600, until];
}

const historyView = {
  async load(params) {
    const [status, rulesAnswer] = await Promise.all([api("/api/status"), rules()]);
    const now = status.evaluated_before ?? Date.now() / 1000;
    const [since, until] = historyPeriod(params, now);
    const asked = new URLSearchParams({
      since: String(since),
      until: String(until),
      limit: "1000",
    });
    for (const name of ["rule", "service", "severity"])
      if (params.get(name)) asked.set(name, params.get(name));
    const records = await api(`/alerts/history?${asked}`);
    return { records, rules: rulesAnswer, period: [since, until] };
  },
  shell(params, data) {
    const [since, until] = data.period;
    const form = h(
      "form",
      {
        role: "search",
        "aria-label": "Filter history",
        method: "get",
        action: "/",
        class: "filters",
      },
      h("input", { type: "hidden", name: "view", value: "history" }),
      field("f-since", "From", periodInput("since", since, params)),
      field("f-until", "To", periodInput("until", until, params)),
      field(
        "f-rule",
        "Rule",
        select(
          "rule",
          data.rules.rules.map((r) => r.name),
          [params.get("rule") || ""],
          { blank: "Any" },
        ),
      ),
      field(
        "f-service",
        "Service",
        h("input", { type: "text", name: "service", value: params.get("service") || "" }),
      ),
      field(
        "f-severity",
        "Severity",
        select(
          "severity",
          data.rules.severities.map((s) => s.name),
          [params.get("severity") || ""],
          { blank: "Any" },
        ),
      ),
      h("button", { type: "submit", class: "no-script" }, "Filter"),
      h("p", { id: "utc-note", class: "muted note-inline" }, "Times in UTC."),
    );
    const apply = (event) => {
      event.preventDefault();
      const next = new URLSearchParams({ view: "history" });
      for (const name of ["since", "until"]) {
        const input = form.elements[name];
        const seconds = fromLocalInput(input.value);
        if (input.dataset.chosen && seconds !== null) next.set(name, String(seconds));
      }
      for (const name of ["rule", "service", "severity"]) {
        const value = form.elements[name].value.trim();
        if (value) next.set(name, value);
      }
      replaceQuery(next);
    };
    form.addEventListener("change", apply);
    form.addEventListener("submit", apply);
    const { live, nodes } = liveShell(h("h2", {}, "History"), form);
    return { nodes, update: (current) => live.replaceChildren(...historyListing(current)) };
  },
};

function episodeSpan(record, until) {
  const start = record.fired ?? record.started;
  return [start, record.ended ?? until];
}

function describeEpisode(record) {
  const start = record.fired ?? record.started;
  const ended =
    record.ended !== null && record.ended !== undefined
      ? `resolved ${hourMinute(record.ended)}`
      : "still firing";
  return `${record.rule} on ${record.server || record.service}: fired ${hourMinute(start)}, ${ended}`;
}

function historyListing({ records, period }) {
  if (!records.length) return [empty("No alert fired in this period.")];
  const [since, until] = period;
  const share = (t) => Math.min(Math.max(((t - since) / (until - since)) * 100, 0), 100);
  const rows = records.map((record) => {
    const [start, end] = episodeSpan(record, until);
    const left = share(start);
    const label = describeEpisode(record);
    return h(
      "div",
      { class: "episode", "data-episode-id": record.id, style: sevStyle(record.severity) },
      h(
        "span",
        { class: "episode-label", title: `${record.rule} ${record.server || record.service}` },
        alertLink(record.id, record.rule),
        " ",
        h("span", { class: "episode-where" }, record.server || record.service),
      ),
      h(
        "span",
        { class: "track" },
        h("span", {
          class: "bar",
          role: "img",
          title: label,
          "aria-label": label,
          style: {
            left: `${left.toFixed(2)}%`,
            width: `${Math.max(share(end) - left, 0.5).toFixed(2)}%`,
          },
        }),
      ),
    );
  });
  const heads = [
    "Rule",
    "Severity",
    "Service",
    "Server",
    "Fired (UTC)",
    "Resolved (UTC)",
    "Peak",
    "Ended",
  ];
  const tableRows = records.map((record) =>
    h(
      "tr",
      {},
      h("td", {}, alertLink(record.id, record.rule)),
      h("td", {}, sevBadge(record.severity)),
      h("td", {}, record.service),
      h("td", {}, record.server || "most servers"),
      h("td", {}, when(record.fired ?? record.started)),
      h("td", {}, record.ended ? when(record.ended) : "still firing"),
      h("td", { class: "number" }, number(record.peak)),
      h("td", {}, record.ended_by || ""),
    ),
  );
  return [
    h(
      "section",
      { "aria-label": "Timeline", class: "timeline" },
      h("div", { class: "axis" }, h("span", {}, when(since)), h("span", {}, when(until))),
      rows,
    ),
    table("Episodes", heads, tableRows),
  ];
}

const alertView = {
  async load(params) {
    const id = params.get("id") || "";
    const [detail, rulesAnswer] = await Promise.all([
      api(`/api/alerts/${encodeURIComponent(id)}`),
      rules(),
    ]);
    return { detail, rules: rulesAnswer };
  },
  shell() {
    const { live, nodes } = liveShell();
    return { nodes, update: (current) => live.replaceChildren(...alertPage(current.detail)) };
  },
};

function alertPage(detail) {
  const alert = detail.alert;
  const episode = detail.episode;
  const about = alert || episode;
  const state = alert ? alert.state : "resolved";
  const since = alert ? alert.since : (episode.fired ?? episode.started);
  const where = about.server !== null ? about.server : alert ? serversCount(alert) : "most servers";
  const head = h(
    "div",
    {
      class: `alert-head state-${state.replace(" ", "-")}`,
      "data-alert-id": about.id,
      style: sevStyle(about.severity),
    },
    h(
      "p",
      {},
      sevBadge(about.severity),
      " ",
      h("span", { class: "state" }, state),
      ` on ${about.service}, ${where}, since `,
      when(since),
      `; value ${number(alert ? alert.value : episode.peak)} `,
      alert ? alertMarks(alert) : null,
    ),
    alert
      ? h(
          "p",
          {},
          h(
            "button",
            {
              type: "button",
              "data-key": "page-silence",
              onclick: (e) => silenceDialog.open(alert, e.currentTarget),
            },
            "Silence",
          ),
        )
      : null,
  );
  const sections = [
    section("Minutes", minutes(detail.minutes)),
    section("Notifications", notifications(detail.notifications)),
    section("Acknowledgement", acknowledgement(detail, alert)),
    section(
      "Silences",
      detail.silences.length
        ? h(
            "ul",
            {},
            detail.silences.map((s) =>
              h(
                "li",
                {},
                `${s.state}: `,
                h("code", {}, s.matchers.join(", ")),
                " until ",
                when(s.ends_at),
                `, by ${s.created_by}: ${s.comment}`,
              ),
            ),
          )
        : empty("No silence selects it."),
    ),
  ];
  const matched = alert ? alert.matched_servers : episode.last && episode.last.matched_servers;
  if (matched)
    sections.push(
      section(
        "Matched servers",
        h(
          "ul",
          { "aria-label": "Matched servers" },
          matched.map((s) => h("li", {}, s)),
        ),
      ),
    );
  document.title = `Sereno: ${about.rule}`;
  return [h("h2", {}, about.rule), head, ...sections];
}

function section(title, ...body) {
  return h("section", {}, h("h3", {}, title), body);
}

function minutes(rows) {
  if (!rows.length) return empty("No minute of it is kept.");
  return [
    sparkline(rows),
    table(
      "",
      ["Minute (UTC)", "Value", "Matched", "Severity", "State"],
      rows.map((row) =>
        h(
          "tr",
          {},
          h("td", {}, clock(row.minute)),
          h("td", { class: "number" }, number(row.value)),
          h("td", {}, row.matched ? "yes" : "no"),
          h("td", {}, row.severity),
          h("td", {}, row.state),
        ),
      ),
    ),
  ];
}

// The minutes' values as a line; a minute without a sample breaks it.
function sparkline(rows) {
  const width = 240;
  const height = 40;
  const values = rows.map((r) => r.value).filter((v) => v !== null);
  if (!values.length) return null;
  const low = Math.min(...values);
  const high = Math.max(...values);
  const spread = high - low;
  const step = width / Math.max(rows.length - 1, 1);
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  const label = `Values over ${rows.length} minutes, from ${number(low)} to ${number(high)}`;
  for (const [name, value] of Object.entries({
    class: "sparkline",
    role: "img",
    "aria-label": label,
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
  })) {
    svg.setAttribute(name, String(value));
  }
  let points = [];
  const draw = () => {
    if (!points.length) return;
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    points = [];
  };
  rows.forEach((row, index) => {
    if (row.value === null) return draw();
    const share = spread ? (row.value - low) / spread : 0.5; // a flat line in the middle
    const y = height - 2 - share * (height - 4);
    points.push(`${(index * step).toFixed(1)},${y.toFixed(1)}`);
  });
  draw();
  return svg;
}

function notifications(sent) {
  if (!sent.length) return empty("No notification was sent of it.");
  return table(
    "",
    ["Receiver", "At (UTC)", "Told", "Outcome", "Title", "Detail"],
    sent.map((n) =>
      h(
        "tr",
        {},
        h("td", {}, n.receiver),
        h("td", {}, when(n.at)),
        h("td", {}, n.change),
        h("td", { class: `outcome-${n.outcome}` }, n.outcome),
        h("td", {}, n.title),
        h("td", {}, n.detail),
      ),
    ),
  );
}

function acknowledgement(detail, alert) {
  const ack = detail.ack;
  if (!ack) {
    return [
      h("p", { class: "ack" }, "Nobody has acknowledged it."),
      alert
        ? h(
            "button",
            {
              type: "button",
              "data-key": "page-ack",
              onclick: (e) => ackDialog.open(alert, e.currentTarget),
            },
            "Acknowledge",
          )
        : null,
    ];
  }
  const undo = async () => {
    try {
      await api(`/api/alerts/${encodeURIComponent(ack.alert_id)}/ack`, { method: "DELETE" });
      setStatus(`Acknowledgement taken back at ${clock(Date.now() / 1000)}`);
      refresh(false);
    } catch (error) {
      setStatus(`Could not take the acknowledgement back: ${error.message}`, true);
    }
  };
  return [
    h(
      "p",
      { class: "ack" },
      `Acknowledged by ${ack.by} at `,
      when(ack.at),
      ` (at ${ack.severity})${ack.comment ? `: ${ack.comment}` : ""}`,
    ),
    alert
      ? h(
          "button",
          { type: "button", "data-key": "page-unack", onclick: undo },
          "Undo acknowledgement",
        )
      : null,
  ];
}

const silencesView = {
  async load() {
    const [silences, alerts] = await Promise.all([api("/api/silences"), api("/alerts")]);
    return { silences, alerts };
  },
  shell() {
    const create = h(
      "button",
      {
        type: "button",
        class: "primary",
        "data-key": "new-silence",
        onclick: (e) => silenceDialog.open(null, e.currentTarget),
      },
      "New silence",
    );
    const { live, nodes } = liveShell(h("h2", {}, "Silences"), create);
    return { nodes, update: (current) => live.replaceChildren(...silencesListing(current)) };
  },
};

const SILENCE_HEADS = [
  "Matchers",
  "Created by",
  "Comment",
  "Starts (UTC)",
  "Ends (UTC)",
  "Mutes now",
  "Actions",
];

function silencesListing({ silences, alerts }) {
  const rows = (list) =>
    table(
      "",
      SILENCE_HEADS,
      list.map((s) => silenceRow(s, alerts)),
    );
  const nodes = [
    section("Active", silences.active.length ? rows(silences.active) : empty("None.")),
    section("Pending", silences.pending.length ? rows(silences.pending) : empty("None.")),
  ];
  if (silences.expired.length) {
    nodes.push(
      h(
        "details",
        { "data-key": "expired" },
        h("summary", {}, `Expired (${silences.expired.length})`),
        rows(silences.expired),
      ),
    );
  }
  return nodes;
}

function silenceRow(silence, alerts) {
  const muted = alerts.filter((a) => a.silenced_by.includes(silence.id));
  const mutes = muted.length
    ? muted.flatMap((a, i) => [
        i ? ", " : null,
        alertLink(a.id, `${a.rule} on ${a.server || a.service}`),
      ])
    : h("span", { class: "muted" }, "nothing");
  const label = `silence-${silence.id}`;
  const actions =
    silence.state === "expired"
      ? null
      : [
          silence.state === "active"
            ? h(
                "button",
                {
                  type: "button",
                  "data-key": `extend-${silence.id}`,
                  "aria-describedby": label,
                  onclick: () => extend(silence),
                },
                "Extend",
              )
            : null,
          h(
            "button",
            {
              type: "button",
              "data-key": `expire-${silence.id}`,
              "aria-describedby": label,
              onclick: () => expire(silence),
            },
            "Expire",
          ),
        ];
  return h(
    "tr",
    { "data-silence-id": silence.id, "data-state": silence.state },
    h(
      "td",
      { id: label },
      h(
        "ul",
        { class: "matchers" },
        silence.matchers.map((m) => h("li", {}, h("code", {}, m))),
      ),
    ),
    h("td", {}, silence.created_by),
    h("td", {}, silence.comment),
    h("td", {}, when(silence.starts_at)),
    h("td", {}, when(silence.expired_at ?? silence.ends_at)),
    h("td", {}, mutes),
    h("td", { class: "actions" }, actions),
  );
}

// Extending is a new silence with the same matchers ending 2 h later, then the old one expired.
async function extend(silence) {
  try {
    await post("/api/silences", {
      matchers: silence.matchers,
      created_by: silence.created_by,
      comment: silence.comment,
      ends_at: silence.ends_at + 2 * 3600,
    });
    await api(`/api/silences/${encodeURIComponent(silence.id)}`, { method: "DELETE" });
    setStatus(`Silence extended by 2h at ${clock(Date.now() / 1000)}`);
  } catch (error) {
    setStatus(`Could not extend the silence: ${error.message}`, true);
  }
  refresh(false);
}

async function expire(silence) {
  try {
    await api(`/api/silences/${encodeURIComponent(silence.id)}`, { method: "DELETE" });
    setStatus(`Silence expired at ${clock(Date.now() / 1000)}`);
  } catch (error) {
    setStatus(`Could not expire the silence: ${error.message}`, true);
  }
  refresh(false);
}

const receiversView = {
  async load() {
    const [receivers, status] = await Promise.all([api("/api/receivers"), api("/api/status")]);
    return { receivers, status };
  },
  shell() {
    const { live, nodes } = liveShell(h("h2", {}, "Receivers"));
    return { nodes, update: (current) => live.replaceChildren(...receiversListing(current)) };
  },
};

const testOutcomes = new Map(); // a receiver's last test, kept across polls

function receiversListing({ receivers, status }) {
  const heads = [
    "Receiver",
    "Type",
    "Queued",
    "Sent",
    "Failed attempts",
    "Retried",
    "Dropped",
    "Last sent (UTC)",
    "Last error",
    "Test",
  ];
  const rows = receivers.map((r) =>
    h(
      "tr",
      { "data-receiver": r.name },
      h("th", { scope: "row", id: `receiver-${r.name}` }, r.name),
      h("td", {}, r.type),
      [r.queued, r.sent, r.failed, r.retried, r.dropped].map((n) =>
        h("td", { class: "number" }, n.toLocaleString("en")),
      ),
      h("td", {}, r.last_sent_at ? when(r.last_sent_at) : ""),
      h(
        "td",
        { class: "last-error" },
        r.last_error
          ? [r.last_error, r.last_error_at ? [" (", when(r.last_error_at), ")"] : null]
          : "",
      ),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            "data-key": `test-${r.name}`,
            "aria-describedby": `receiver-${r.name}`,
            onclick: (e) => sendTest(r.name, e.currentTarget),
          },
          "Send a test",
        ),
        testOutcomes.has(r.name) ? testOutcome(testOutcomes.get(r.name)) : null,
      ),
    ),
  );
  const counts = status.counts;
  const countRows = [
    ["events evaluated", counts.events_evaluated],
    ["late events", counts.late_events],
    ["events ahead of the fleet", counts.ahead_events],
    ["evaluation errors", counts.evaluation_errors],
    ["minutes evaluated", counts.windows_evaluated],
    ["condition errors", counts.condition_errors],
  ].map(([name, value]) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, name),
      h("td", { class: "number" }, value.toLocaleString("en")),
    ),
  );
  return [
    receivers.length
      ? table("", heads, rows)
      : empty("No receiver is told of alerts (see --config)."),
    section(
      "The service",
      h(
        "p",
        {},
        `Sereno ${status.version}, ${status.rules} rules from `,
        h("code", {}, status.source),
        status.evaluated_before
          ? [", every minute before ", when(status.evaluated_before), " evaluated"]
          : null,
        ".",
      ),
      h(
        "div",
        { class: "table-wrap" },
        h("table", { class: "data counts" }, h("tbody", {}, countRows)),
      ),
    ),
  ];
}

function testOutcome({ ok, text }) {
  return h("span", { class: `outcome outcome-${ok ? "sent" : "failed"}` }, text);
}

async function sendTest(name, button) {
  button.disabled = true;
  let outcome;
  try {
    const answer = await post(`/api/receivers/${encodeURIComponent(name)}/test`);
    outcome = { ok: answer.ok, text: answer.ok ? "test sent" : `test failed: ${answer.error}` };
  } catch (error) {
    outcome = { ok: false, text: `test failed: ${error.message}` };
  }
  testOutcomes.set(name, outcome);
  button.disabled = false;
  setStatus(`${name}: ${outcome.text}`, !outcome.ok);
  page.shown = ""; // the outcome is not in the API's data: render it
  refresh(false);
}

const VIEWS = {
  alerts: alertsView,
  fleet: fleetView,
  history: historyView,
  alert: alertView,
  silences: silencesView,
  receivers: receiversView,
};

// ---- start ----

// Links within the page change the view without a reload; others are left to the browser.
function onClick(event) {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname !== "/") return;
  if (url.hash && url.search === location.search) return; // "Skip to content"
  event.preventDefault();
  navigate(url.pathname + url.search);
  page.main.focus();
}

function start() {
  document.documentElement.classList.add("js");
  page.main = document.getElementById("main");
  page.status = document.getElementById("live-status");
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => refresh(true));
  // a tab nobody looks at is not polled; it catches up as soon as it is shown
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh(false);
  });
  if (document.body.dataset.tokensRequired === "true" && !sessionStorage.getItem(TOKEN_KEY)) {
    tokenDialog.ask();
    setStatus("An access token is needed.", true);
    return;
  }
  refresh(true);
}

start();
