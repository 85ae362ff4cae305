// OmniClaw dashboard (plain ES module, loaded by the desktop app).
//
// Talks to the desktop shell only through Tauri commands (`invoke`) and the
// `omniclaw://state` event the shell sends whenever anything changes; it
// never polls. Opened as a plain page (no `window.__TAURI__`) it renders an
// explanation instead of data.

const STATE_EVENT = "omniclaw://state";
const NAVIGATE_EVENT = "omniclaw://navigate";
const PAGES = ["gateways", "ports", "settings", "setup"];

const tauri = window.__TAURI__;
const $ = (id) => document.getElementById(id);

/** Creates an element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function call(command, args = {}) {
  if (!tauri) throw new Error("not running inside the OmniClaw app");
  return tauri.core.invoke(command, args);
}

function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), isError ? 10000 : 4000);
}

/** Runs a command from a button: disables it meanwhile, reports failures. */
async function act(button, command, args, done) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const result = await call(command, args);
    if (done) toast(done(result));
  } catch (error) {
    toast(String(error), true);
  } finally {
    button.removeAttribute("aria-busy");
    // The next state event sets the real enabled state.
    button.disabled = false;
  }
}

function showPage(page) {
  if (!PAGES.includes(page)) page = "gateways";
  for (const name of PAGES) {
    const tab = $(`tab-${name}`);
    const selected = name === page;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`page-${name}`).hidden = !selected;
  }
  document.body.dataset.page = page;
}

function setUpTabs() {
  const tabs = PAGES.map((p) => $(`tab-${p}`));
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => showPage(tab.dataset.page));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      showPage(next.dataset.page);
      next.focus();
      event.preventDefault();
    });
  });
}

const STATE_TEXT = { stopped: "Stopped", starting: "Starting…", running: "Running", failed: "Failed" };

function card(g) {
  const actions = g.actions.map((a) =>
    el(
      "button",
      {
        type: "button",
        "data-action": a.action,
        "data-testid": `${a.action}-${g.name}`,
        disabled: !a.enabled,
        title: a.reason || a.label,
        onclick: (event) =>
          act(event.currentTarget, "gateway_action", { name: g.name, action: a.action }, () => `${a.label}: ${g.name}`),
      },
      a.label,
    ),
  );
  const folders = [
    el("button", { type: "button", class: "quiet", onclick: (e) => act(e.currentTarget, "open_folder", { name: g.name, folder: "logs" }) }, "Open logs"),
    el("button", { type: "button", class: "quiet", onclick: (e) => act(e.currentTarget, "open_folder", { name: g.name, folder: "config" }) }, "Open config folder"),
  ];
  const owner = g.owner ? ` · ${g.owner}` : "";
  return el(
    "article",
    { class: `gateway state-${g.state}`, "data-testid": `card-${g.name}`, "data-state": g.state, "aria-labelledby": `title-${g.name}` },
    el(
      "header",
      {},
      el("h2", { id: `title-${g.name}` }, g.name),
      el("span", { class: `badge ${g.state}`, "data-testid": `state-${g.name}` }, STATE_TEXT[g.state] + owner),
    ),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Base port"),
      el("dd", {}, g.basePort ?? "none"),
      g.listening && [el("dt", {}, "Listening"), el("dd", {}, g.listening)],
      el("dt", {}, "Service"),
      el("dd", {}, g.serviceInstalled ? "installed" : "not installed"),
      el("dt", {}, "Config"),
      el("dd", { class: "path" }, g.configPath),
    ),
    g.reason && el("p", { class: "error", role: "alert" }, `Failed: ${g.reason}`),
    g.configProblem && el("p", { class: "error" }, g.configProblem),
    g.lastError && g.state !== "failed" && el("p", { class: "error" }, `Last error: ${g.lastError}`),
    g.conflicts.length > 0 && el("ul", { class: "conflict-list", "aria-label": "Conflicts" }, g.conflicts.map((c) => el("li", {}, c))),
    el(
      "details",
      { class: "ports-detail" },
      el("summary", {}, "Ports"),
      el("ul", {}, g.ports.map((p) => el("li", { class: p.conflict ? "conflict" : "" }, `${p.surface}: ${p.range} (${p.bind})`))),
    ),
    el(
      "details",
      { class: "log" },
      el("summary", {}, `Log (${g.log.length} lines)`),
      el("pre", { "data-testid": `log-${g.name}` }, g.log.length ? g.log.join("\n") : "Nothing logged yet."),
    ),
    el("div", { class: "actions" }, actions, folders),
  );
}

function renderGateways(state) {
  const cards = $("cards");
  // Keep focus on the same button across re-renders (keyboard users).
  const focused = document.activeElement?.dataset?.testid;
  cards.replaceChildren(
    ...(state.gateways.length
      ? state.gateways.map(card)
      : [el("p", { class: "empty" }, "No gateways yet. Create one under “Rescue bot”, or run ", el("code", {}, "omniclaw --profile main setup"), ".")]),
  );
  if (focused) cards.querySelector(`[data-testid="${focused}"]`)?.focus();
}

function renderPorts(state) {
  const byInstance = new Map();
  $("port-rows").replaceChildren(
    ...state.portMap.map((row) => {
      const first = !byInstance.has(row.instance);
      byInstance.set(row.instance, true);
      return el(
        "tr",
        { class: [row.conflict ? "conflict" : "", first ? "first" : ""].join(" ").trim(), "data-conflict": String(row.conflict) },
        el("th", { scope: "row" }, first ? row.instance + (row.foreign ? " (OpenClaw)" : "") : ""),
        el("td", {}, row.surface),
        el("td", { class: "num" }, row.range),
        el("td", {}, row.bind),
        el("td", {}, el("code", {}, row.key)),
      );
    }),
  );
  // One box per clashing pair and kind; every overlap listed, each fix once.
  const groups = new Map();
  for (const c of state.conflicts) {
    const group = groups.get(c.label) || { label: c.label, texts: [], fixes: [], apply: null };
    group.texts.push(c.text);
    if (!group.fixes.includes(c.fix)) group.fixes.push(c.fix);
    group.apply = group.apply || c.apply;
    groups.set(c.label, group);
  }
  $("conflicts").replaceChildren(
    ...(groups.size
      ? [...groups.values()].map((g) =>
          el(
            "div",
            { class: "conflict-item", role: "group", "aria-label": g.label },
            el("strong", {}, `⚠ ${g.label}`),
            el("ul", {}, g.texts.map((t) => el("li", {}, t))),
            g.fixes.map((f) => el("p", { class: "hint" }, `Fix: ${f}`)),
            g.apply &&
              el(
                "button",
                {
                  type: "button",
                  "data-testid": `fix-${g.apply.profile}`,
                  onclick: (e) => act(e.currentTarget, "apply_fix", g.apply, () => `Set ${g.apply.key} of ${g.apply.profile} to ${g.apply.port}`),
                },
                `Apply: ${g.apply.profile} ${g.apply.key} = ${g.apply.port}`,
              ),
          ),
        )
      : [el("p", { class: "ok" }, "✓ No conflicts: every profile is isolated.")]),
  );
}

function renderSettings(state) {
  $("autostart").checked = state.settings.autostart;
  $("settings-file").textContent = state.settings.file;
  const marked = new Set(state.settings.startWithApp);
  $("start-with-app").replaceChildren(
    ...state.gateways.map((g) =>
      el(
        "label",
        { class: "check" },
        el("input", {
          type: "checkbox",
          "data-testid": `start-with-app-${g.name}`,
          checked: marked.has(g.name),
          onchange: (e) => act(e.currentTarget, "set_start_with_app", { name: g.name, on: e.currentTarget.checked }),
        }),
        g.name,
      ),
    ),
  );
}

function render(state) {
  const health = $("health");
  health.textContent = { ok: "All isolated", warning: "Needs attention", error: "A gateway failed" }[state.health];
  health.className = `health ${state.health}`;
  $("version").textContent = state.version;
  const problems = $("problems");
  problems.hidden = state.problems.length === 0;
  problems.replaceChildren(...state.problems.map((p) => el("p", {}, p)));
  renderGateways(state);
  renderPorts(state);
  renderSettings(state);
}

async function main() {
  setUpTabs();
  const page = new URLSearchParams(location.search).get("page") || location.hash.slice(1);
  showPage(page || "gateways");
  if (!tauri) {
    $("cards").replaceChildren(el("p", { class: "empty" }, "Open this page from the OmniClaw app to see your gateways."));
    return;
  }
  $("autostart").addEventListener("change", (e) => act(e.currentTarget, "set_autostart", { on: e.currentTarget.checked }));
  $("setup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.currentTarget.querySelector("button");
    const output = $("setup-output");
    button.disabled = true;
    try {
      output.textContent = await call("setup_profile", { name: $("setup-name").value });
      output.classList.remove("error");
    } catch (error) {
      output.textContent = String(error);
      output.classList.add("error");
    } finally {
      output.hidden = false;
      button.disabled = false;
    }
  });
  await tauri.event.listen(STATE_EVENT, (event) => render(event.payload));
  await tauri.event.listen(NAVIGATE_EVENT, (event) => showPage(event.payload));
  try {
    const asked = await call("initial_page");
    if (asked) showPage(asked);
    render(await call("dashboard"));
  } catch (error) {
    toast(String(error), true);
  }
}

main();
