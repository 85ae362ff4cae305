// OmniClaw dashboard (plain ES module, loaded by the desktop app).
//
// Talks to the desktop shell only through Tauri commands (`invoke`) and the
// `omniclaw://state` event the shell sends whenever anything changes; it
// never polls. Opened as a plain page (no `window.__TAURI__`) it renders an
// explanation instead of data.

const STATE_EVENT = "omniclaw://state";
const NAVIGATE_EVENT = "omniclaw://navigate";
const PAGES = ["gateways", "chat", "ports", "settings", "setup", "assistant"];
const CHAT_EVENT = "omniclaw://chat";

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

/** The words of a failed command: a message, or a step failure's message. */
function errText(error) {
  if (typeof error === "string") return error;
  if (error && typeof error.message === "string") return error.message;
  return String(error);
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
    const message = done && done(result);
    if (message) toast(message);
  } catch (error) {
    toast(errText(error), true);
  } finally {
    button.removeAttribute("aria-busy");
    // The next state event sets the real enabled state.
    button.disabled = false;
  }
}

function showPage(page) {
  if (!PAGES.includes(page)) page = "gateways";
  const was = document.body.dataset.page;
  for (const name of PAGES) {
    const tab = $(`tab-${name}`);
    const selected = name === page;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`page-${name}`).hidden = !selected;
  }
  document.body.dataset.page = page;
  if (page === "chat") chatEnter();
  else if (was === "chat") chatLeave();
  if (page === "gateways" && tauri) remoteLogsEnter();
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

/** Tells how a pairing decision went; a user not told is shown as a warning. */
function pairingDone(outcome) {
  const verb = outcome.approved ? "Approved" : "Denied";
  if (outcome.notTold) {
    toast(`${verb} ${outcome.who}, but they were not told: ${outcome.notTold}`, true);
    return null;
  }
  return `${verb} ${outcome.who}: they were told through the bot.`;
}

/** The card's "Pairing requests" section: who waits, with Approve and Deny. */
function pairingSection(g) {
  if (!g.pairing.length) return null;
  const decide = (request, approve) => (event) =>
    act(event.currentTarget, "decide_pairing", { name: g.name, code: request.code, approve }, pairingDone);
  return el(
    "section",
    { class: "pairing", "aria-labelledby": `pairing-title-${g.name}`, "data-testid": `pairing-${g.name}` },
    el("h3", { id: `pairing-title-${g.name}` }, `Pairing requests (${g.pairing.length})`),
    el(
      "ul",
      {},
      g.pairing.map((r) =>
        el(
          "li",
          { "data-testid": `pairing-${g.name}-${r.code}` },
          el(
            "span",
            { class: "who" },
            el("strong", {}, r.who),
            ` · user ${r.userId} · code `,
            el("code", {}, r.code),
            ` · ${r.ageMins ? `${r.ageMins} min ago` : "just now"}, expires in ${r.expiresInMins} min`,
          ),
          el(
            "span",
            { class: "decide" },
            el("button", { type: "button", "data-testid": `approve-${g.name}-${r.code}`, onclick: decide(r, true) }, "Approve"),
            el("button", { type: "button", class: "quiet", "data-testid": `deny-${g.name}-${r.code}`, onclick: decide(r, false) }, "Deny"),
          ),
        ),
      ),
    ),
  );
}

/** The answers an approval offers, as the gateway names them. */
const DECISIONS = [
  ["allow-once", "Allow once", ""],
  ["allow-always", "Always allow", "quiet"],
  ["deny", "Deny", "quiet"],
];

/** Commands an assistant waits to run: each with Allow once, Always allow and Deny. */
function approvalList(name, approvals, where) {
  if (!approvals.length) return null;
  const answer = (a, decision, label) => (event) =>
    act(event.currentTarget, "resolve_approval", { name, id: a.id, decision }, () => `${label}: ${a.command}`);
  return el(
    "section",
    { class: "approvals-list", role: "alert", "data-testid": `approvals-${where}-${name}` },
    el("h3", {}, approvals.length === 1 ? "A command waits for your approval" : `${approvals.length} commands wait for your approval`),
    el(
      "ul",
      {},
      approvals.map((a) =>
        el(
          "li",
          { "data-testid": `approval-${a.id}` },
          el("pre", { class: "command" }, a.command),
          el("p", { class: "hint" }, `in ${a.cwd || "the workspace"} · ${a.sessionKey} · ${a.expiresAtMs ? `denied by itself at ${new Date(a.expiresAtMs).toLocaleTimeString()} without an answer` : "no answer in time is a deny"}`),
          el(
            "span",
            { class: "decide" },
            DECISIONS.map(([decision, label, cls]) =>
              el("button", { type: "button", class: cls, "data-testid": `${decision}-${where}-${a.id}`, onclick: answer(a, decision, label) }, label),
            ),
          ),
        ),
      ),
    ),
  );
}

/** A running gateway's assistant: its model, today's spend against the cap, and the cap to raise. */
function assistantSection(g) {
  const a = g.assistant;
  if (!a) return null;
  const spend = a.spend;
  const setCap = (event) => {
    event.preventDefault();
    const input = event.currentTarget.querySelector("input");
    const usd = Number(input.value);
    act(event.currentTarget.querySelector("button"), "set_daily_cap", { name: g.name, usd }, (line) => line);
  };
  return el(
    "section",
    { class: `assistant level-${spend ? spend.level : "none"}`, "data-testid": `assistant-${g.name}` },
    el("h3", {}, "Assistant"),
    el("p", {}, a.model ? `Model ${a.model}` : "No model set up yet.", a.activeRuns ? ` · ${a.activeRuns} repl${a.activeRuns === 1 ? "y" : "ies"} being written` : ""),
    a.problem && el("p", { class: "error" }, a.problem),
    spend && el("p", { "data-testid": `spend-${g.name}` }, spend.label),
    spend && spend.cap !== null && el("progress", { max: "100", value: String(spend.percent), "aria-label": "Share of today's cap spent" }),
    spend && spend.level === "reached" && el("p", { class: "error" }, "The daily cap is reached: the assistant makes no model call until local midnight, unless you raise the cap."),
    el(
      "form",
      { class: "cap", onsubmit: setCap },
      el("label", { for: `cap-${g.name}` }, spend && spend.cap !== null ? "Daily cap (USD)" : "Set a daily cap (USD)"),
      el("input", { id: `cap-${g.name}`, type: "number", min: "0.01", step: "0.01", inputmode: "decimal", value: spend && spend.cap !== null ? String(spend.cap) : "", "data-testid": `cap-input-${g.name}` }),
      el("button", { type: "submit", "data-testid": `set-cap-${g.name}` }, spend && spend.cap !== null ? "Raise the cap" : "Set the cap"),
    ),
  );
}

const STATE_TEXT = { stopped: "Stopped", starting: "Starting…", running: "Running", failed: "Failed" };

/** A running gateway that refused an edit: which keys, why, and "Roll back". */
function refusedSection(g) {
  const r = g.refused;
  if (!r) return null;
  return el(
    "section",
    { class: "refused", role: "alert", "data-testid": `refused-${g.name}` },
    el("p", {}, el("strong", {}, "Runs on its last good config: "), `the edit of ${r.keys.join(", ")} was refused.`),
    r.reason && el("pre", { class: "reason" }, r.reason),
    g.canRollBack
      ? el(
          "button",
          {
            type: "button",
            "data-testid": `roll-back-${g.name}`,
            onclick: (e) => act(e.currentTarget, "roll_back", { name: g.name }, (line) => line),
          },
          "Roll back",
        )
      : el("p", { class: "hint" }, "No last good config is saved yet: fix the keys above in the config file."),
  );
}

/** The keychain would not serve this profile's secrets: the private file, one click away. */
function keychainSection(g) {
  if (!g.keychainProblem || g.secrets !== "keychain") return null;
  return el(
    "section",
    { class: "notice warn", "data-testid": `keychain-${g.name}` },
    el("p", {}, "The keychain did not give out this profile's secrets: it is locked, has no default collection, or cannot be reached."),
    el(
      "button",
      {
        type: "button",
        "data-testid": `secrets-file-${g.name}`,
        onclick: (e) => act(e.currentTarget, "use_secrets_file", { name: g.name }, () => `Profile ${g.name} keeps its secrets in a private file now.`),
      },
      "Keep this profile's secrets in a private file",
    ),
  );
}

/** A folder no file manager opened: its path, to select or copy. */
function unopenedSection(g) {
  const u = g.unopened;
  if (!u) return null;
  const what = u.folder === "logs" ? "log folder" : "config folder";
  return el(
    "section",
    { class: "notice", "data-testid": `unopened-${g.name}` },
    el("p", {}, `No file manager opened the ${what} (${u.why}). It is here:`),
    el("input", { class: "path-field", readonly: true, value: u.path, "aria-label": `Path of the ${what}`, "data-testid": `unopened-path-${g.name}`, onfocus: (e) => e.currentTarget.select() }),
    el(
      "span",
      { class: "decide" },
      el("button", { type: "button", onclick: (e) => act(e.currentTarget, "copy_path", { path: u.path }, () => "Path copied.") }, "Copy path"),
      el("button", { type: "button", class: "quiet", onclick: (e) => act(e.currentTarget, "dismiss", { name: g.name, what: "folder" }) }, "Close"),
    ),
  );
}

/** What the CLI said when it installed or uninstalled the service. */
function serviceSection(g) {
  if (!g.serviceNotes.length) return null;
  return el(
    "section",
    { class: "notice", "data-testid": `service-notes-${g.name}` },
    el("pre", { class: "reason" }, g.serviceNotes.join("\n")),
    el("button", { type: "button", class: "quiet", onclick: (e) => act(e.currentTarget, "dismiss", { name: g.name, what: "service" }) }, "Close"),
  );
}

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
  // When no file manager opens it, the card shows the path (next state event).
  const folder = (which) => (e) => act(e.currentTarget, "open_folder", { name: g.name, folder: which });
  const folders = [
    el("button", { type: "button", class: "quiet", "data-testid": `open-logs-${g.name}`, onclick: folder("logs") }, "Open logs"),
    el("button", { type: "button", class: "quiet", "data-testid": `open-config-${g.name}`, onclick: folder("config") }, "Open config folder"),
    g.token &&
      el(
        "button",
        {
          type: "button",
          class: "quiet",
          "data-testid": `copy-token-${g.name}`,
          onclick: (e) => act(e.currentTarget, "copy_token", { name: g.name }, () => `Copied the gateway token of ${g.name} to the clipboard.`),
        },
        "Copy token",
      ),
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
      el("dt", {}, "Secrets"),
      el("dd", { "data-testid": `secrets-${g.name}` }, g.secrets),
      el("dt", {}, "Config"),
      el("dd", { class: "path" }, g.configPath),
    ),
    refusedSection(g),
    keychainSection(g),
    g.reason && !(g.keychainProblem && g.secrets === "keychain") && el("p", { class: "error", role: "alert" }, `Failed: ${g.reason}`),
    g.configProblem && el("p", { class: "error" }, g.configProblem),
    g.lastError && g.state !== "failed" && !g.refused && el("p", { class: "error", "data-testid": `last-error-${g.name}` }, `Last error: ${g.lastError}`),
    unopenedSection(g),
    serviceSection(g),
    g.conflicts.length > 0 && el("ul", { class: "conflict-list", "aria-label": "Conflicts" }, g.conflicts.map((c) => el("li", {}, c))),
    approvalList(g.name, g.approvals, "card"),
    assistantSection(g),
    g.noModel && el("p", {}, "No assistant yet. ", el("button", { type: "button", "data-testid": `set-up-assistant-${g.name}`, onclick: () => asOpen(g.name) }, "Set up assistant…")),
    pairingSection(g),
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
    el(
      "div",
      { class: "actions" },
      actions,
      g.chat && el("button", { type: "button", class: "quiet", "data-testid": `chat-${g.name}`, onclick: () => chatWith(g.name) }, "Chat"),
      folders,
    ),
  );
}

// ---- Remote gateways ---------------------------------------------------------
//
// Gateways on other machines (`omniclaw remote add`): the app keeps their
// SSH tunnels up and speaks the protocol to them; this page only shows
// what it says and asks for their log (`logs.tail`) through a command.

const REMOTE_STATE_TEXT = { connecting: "Connecting…", running: "Running", unreachable: "Unreachable" };
/** The log lines (or the error) of each remote whose log is open. */
const remoteLogs = new Map();
let lastState = null;

async function remoteShowLogs(name, button) {
  if (button) button.disabled = true;
  try {
    remoteLogs.set(name, { lines: await call("remote_logs", { name }) });
  } catch (error) {
    remoteLogs.set(name, { error: errText(error) });
  } finally {
    if (button) button.disabled = false;
  }
  if (lastState) renderGateways(lastState);
}

/** The tray's "Logs…" of a remote opened this page: show that log. */
async function remoteLogsEnter() {
  let target = null;
  try {
    target = await call("remote_logs_target");
  } catch (_) {
    return;
  }
  if (target) await remoteShowLogs(target, null);
}

function remoteCard(r) {
  const log = remoteLogs.get(r.name);
  return el(
    "article",
    { class: `gateway remote state-${r.state}`, "data-testid": `remote-card-${r.name}`, "data-state": r.state, "aria-labelledby": `remote-title-${r.name}` },
    el(
      "header",
      {},
      el("h2", { id: `remote-title-${r.name}` }, r.name),
      el("span", { class: "badge remote", "data-testid": `remote-badge-${r.name}` }, "remote"),
      el("span", { class: `badge ${r.state}`, "data-testid": `remote-state-${r.name}`, title: r.status }, REMOTE_STATE_TEXT[r.state] || r.state),
    ),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, r.kind === "ssh" ? "SSH" : "URL"),
      el("dd", {}, r.target),
      r.localPort && [el("dt", {}, "Local port"), el("dd", {}, r.localPort)],
      el("dt", {}, "Version"),
      el("dd", { "data-testid": `remote-version-${r.name}` }, r.version ? `v${r.version}` : "unknown"),
      r.healthy !== null && [el("dt", {}, "Health"), el("dd", {}, r.healthy ? "healthy" : "unhealthy")],
      r.tunnel && [el("dt", {}, "Tunnel"), el("dd", { "data-testid": `remote-tunnel-${r.name}` }, r.tunnel)],
    ),
    r.reason && el("p", { class: "error", "data-testid": `remote-reason-${r.name}` }, r.reason),
    log &&
      el(
        "details",
        { class: "log", open: true },
        el("summary", {}, log.error ? "Log (not read)" : `Log (${log.lines.length} lines, from logs.tail)`),
        el("pre", { "data-testid": `remote-log-${r.name}`, class: log.error ? "error" : "" }, log.error || (log.lines.length ? log.lines.join("\n") : "Nothing logged yet.")),
      ),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "quiet", "data-testid": `remote-chat-${r.name}`, disabled: r.state !== "running", onclick: () => chatWith(r.name) }, "Chat"),
      el("button", { type: "button", class: "quiet", "data-testid": `remote-logs-${r.name}`, disabled: r.state !== "running", onclick: (e) => remoteShowLogs(r.name, e.currentTarget) }, log ? "Read log again" : "Logs"),
      el(
        "button",
        { type: "button", class: "quiet", "data-testid": `remote-test-${r.name}`, onclick: (e) => act(e.currentTarget, "remote_test", { name: r.name }, (summary) => `${r.name}: ${summary}`) },
        "Test connection",
      ),
    ),
  );
}

function renderGateways(state) {
  lastState = state;
  const cards = $("cards");
  // Keep focus on the same button across re-renders (keyboard users).
  const focused = document.activeElement?.dataset?.testid;
  cards.replaceChildren(
    ...(state.gateways.length
      ? state.gateways.map(card)
      : [el("p", { class: "empty" }, "No gateways yet. ", el("button", { type: "button", "data-testid": "set-up-assistant", onclick: () => asOpen(null) }, "Set up assistant…"), " creates your main bot (so does ", el("code", {}, "omniclaw setup"), " in a terminal); “Rescue bot” creates a rescue gateway.")]),
    ...state.remotes.map(remoteCard),
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
  $("about").replaceChildren(...state.about.map((line) => el("li", {}, line)));
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
  health.textContent = { none: "No gateways yet", ok: "All isolated", warning: "Needs attention", error: "A gateway failed" }[state.health];
  health.className = `health ${state.health}`;
  $("version").textContent = state.version;
  const problems = $("problems");
  problems.hidden = state.problems.length === 0;
  problems.replaceChildren(...state.problems.map((p) => el("p", {}, p)));
  renderGateways(state);
  renderPorts(state);
  renderSettings(state);
  wzProfilesChanged(state);
  chatStateChanged(state);
}

/** Profiles set up, removed or moved elsewhere while the wizard is open: plan again. */
function wzProfilesChanged(state) {
  const now = JSON.stringify(state.portMap.map((r) => [r.instance, r.surface, r.range]));
  if (wz.profiles === null) {
    wz.profiles = now;
    return;
  }
  if (now === wz.profiles) return;
  wz.profiles = now;
  if (wz.finished || wz.busy) return;
  if (wz.step === 1) wzPlan();
  if (wz.step === 4) {
    // The targets list is built from the plan's other profiles.
    call("onboard_plan", { name: wzProfile(), port: wz.plan ? wz.plan.base : null })
      .then((plan) => {
        if (wz.step !== 4) return;
        wz.plan = plan;
        $("wz-targets").replaceChildren();
        wzRenderTargets();
      })
      .catch(() => {});
  }
}

// ---- Chat ---------------------------------------------------------------------
//
// The page asks the app for everything (`chat_*` commands) and never talks to
// a gateway itself. A reply arrives as data: Markdown already parsed by the
// app into a tree of known tags, built here with DOM calls, text as text
// nodes, so nothing a model writes becomes markup. Links open in the system
// browser through the app.

const chat = { gateway: null, key: null, live: new Map(), state: null, opening: 0, active: false, wanted: null };
const MD_TAGS = new Set(["p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "ul", "ol", "li", "em", "strong", "del", "a", "hr", "br", "table", "thead", "tr", "th", "td", "span"]);

/** One node of a rendered reply: a string is text; an element only of a known tag. */
function mdNode(n) {
  if (typeof n === "string") return document.createTextNode(n);
  if (!n || typeof n !== "object" || !MD_TAGS.has(n.tag)) return document.createTextNode("");
  const node = document.createElement(n.tag);
  if (n.tag === "a" && typeof n.href === "string") {
    // No href: the web view never navigates; the app opens the browser.
    const url = n.href;
    node.className = "link";
    node.tabIndex = 0;
    node.setAttribute("role", "link");
    node.title = url;
    const open = (event) => {
      event.preventDefault();
      call("open_link", { url }).catch((error) => toast(errText(error), true));
    };
    node.addEventListener("click", open);
    node.addEventListener("keydown", (event) => event.key === "Enter" && open(event));
  }
  if (n.tag === "ol" && Number.isInteger(n.start)) node.start = n.start;
  for (const child of n.c || []) node.append(mdNode(child));
  return node;
}

function entryNode(e) {
  switch (e.kind) {
    case "user":
      return el("div", { class: "msg user" }, el("p", {}, e.text));
    case "assistant":
      return el("div", { class: "msg assistant" }, e.body.map(mdNode));
    case "tool": {
      const status = e.running ? "running…" : e.result === null ? "no result" : e.isError ? "failed" : "done";
      return el(
        "details",
        { class: `tool ${e.isError ? "failed" : ""}`, "data-testid": `tool-${e.callId}` },
        el("summary", {}, el("code", {}, e.name || "tool"), ` · ${status}`),
        e.args && el("pre", { class: "args", "aria-label": "Arguments" }, e.args),
        e.result !== null && el("pre", { class: "result", "aria-label": "Result" }, e.result),
      );
    }
    case "note":
      return el("p", { class: e.error ? "note error" : "note" }, e.text);
    default:
      return null;
  }
}

function chatRunning() {
  return [...chat.live.values()].some((u) => u.state === "running");
}

function chatRenderLog(entries) {
  const log = $("chat-log");
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const live = [...chat.live.values()].map((u) =>
    el("div", { class: `run ${u.state}`, "data-testid": `run-${u.runId}`, "data-state": u.state }, u.entries.map(entryNode)),
  );
  log.replaceChildren(
    ...(entries.length || live.length ? entries.map(entryNode) : [el("p", { class: "hint" }, "No messages yet in this session.")]),
    ...live,
  );
  if (stick) log.scrollTop = log.scrollHeight;
  $("chat-stop").disabled = !chatRunning();
}

/** The gateways the chat can reach: running ones the app is connected to,
 * local first, then the remote ones. */
function chatGateways() {
  if (!chat.state) return [];
  const remotes = chat.state.remotes.filter((r) => r.state === "running").map((r) => ({ name: r.name, owner: "remote", approvals: [] }));
  return [...chat.state.gateways.filter((g) => g.chat), ...remotes];
}

function chatRenderApprovals() {
  const g = chat.state && chat.state.gateways.find((x) => x.name === chat.gateway);
  $("chat-approvals").replaceChildren(...[g ? approvalList(g.name, g.approvals, "chat") : null].filter(Boolean));
}

function chatFillGateways() {
  const select = $("chat-gateway");
  const gateways = chatGateways();
  const names = gateways.map((g) => g.name);
  if (select.dataset.names !== names.join(",")) {
    select.dataset.names = names.join(",");
    select.replaceChildren(...gateways.map((g) => el("option", { value: g.name }, `${g.name}${g.owner ? ` (${g.owner})` : ""}`)));
  }
  if (chat.gateway) select.value = chat.gateway;
  const empty = $("chat-empty");
  empty.hidden = names.length > 0;
  empty.textContent = "No gateway is running yet: start one on the Gateways page (or from the tray), then chat with its assistant here.";
  $("chat-form").hidden = names.length === 0;
}

/** Opens session `key` (the main one when null) of `gateway`. */
async function chatOpen(gateway, key) {
  const seq = ++chat.opening;
  chat.gateway = gateway;
  if (gateway === chat.wanted) chat.wanted = null;
  chatFillGateways();
  chatRenderApprovals();
  if (!gateway) {
    $("chat-log").replaceChildren();
    return;
  }
  try {
    const opened = await call("chat_open", { name: gateway, key });
    if (seq !== chat.opening) return;
    chat.key = opened.sessionKey;
    chat.live = new Map(opened.live.map((u) => [u.runId, u]));
    $("chat-model").textContent = opened.model ? `Model: ${opened.model}` : "No model set up for this gateway.";
    $("chat-session").replaceChildren(
      ...opened.sessions.map((s) => el("option", { value: s.key }, `${s.title}${s.messages ? ` (${s.messages})` : ""}`)),
    );
    $("chat-session").value = chat.key;
    chat.entries = opened.entries;
    chatRenderLog(opened.entries);
  } catch (error) {
    if (seq !== chat.opening) return;
    $("chat-log").replaceChildren(el("p", { class: "error" }, errText(error)));
  }
}

function chatUpdate(update) {
  if (update.gateway !== chat.gateway || update.sessionKey !== chat.key) return;
  chat.live.set(update.runId, update);
  chatRenderLog(chat.entries || []);
  // Ended: the stored transcript has it now.
  if (update.state !== "running") {
    chat.live.delete(update.runId);
    chatOpen(chat.gateway, chat.key);
  }
}

/** The page came to the chat: the tray's "Chat…" may name a gateway. */
async function chatEnter() {
  chat.active = true;
  let target = null;
  try {
    target = await call("chat_target");
  } catch (_) {
    // Not inside the app: the page says so elsewhere.
  }
  const names = chatGateways().map((g) => g.name);
  // A gateway asked for by name that the app has not reached yet (one
  // just set up, or run outside the app) opens as soon as it is listed
  // (see chatStateChanged); whatever opens first meanwhile.
  if (target) chat.wanted = null;
  const gateway = target && (names.includes(target) || !chat.state) ? target : names.includes(chat.gateway) ? chat.gateway : names[0] || null;
  await chatOpen(gateway, gateway === chat.gateway ? chat.key : null);
  $("chat-input").focus();
}

function chatLeave() {
  chat.active = false;
  call("chat_close").catch(() => {});
}

/** "Chat" on a card. */
function chatWith(name) {
  chat.gateway = name;
  chat.key = null;
  chat.wanted = name;
  showPage("chat");
}

function chatStateChanged(state) {
  chat.state = state;
  if (!chat.active) return;
  chatFillGateways();
  chatRenderApprovals();
  const names = chatGateways().map((g) => g.name);
  if (chat.gateway && !names.includes(chat.gateway)) {
    chat.gateway = null;
    chat.key = null;
    chat.live.clear();
    $("chat-log").replaceChildren();
  }
  if (chat.wanted && chat.wanted !== chat.gateway && names.includes(chat.wanted)) {
    chat.live.clear();
    chatOpen(chat.wanted, null);
  } else if (!chat.gateway && names.length) chatOpen(names[0], null);
}

async function chatSend(event) {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value;
  if (!text.trim() || !chat.gateway || !chat.key) return;
  const button = $("chat-send");
  button.disabled = true;
  try {
    const runId = await call("chat_send", { name: chat.gateway, key: chat.key, text });
    input.value = "";
    if (!chat.live.has(runId)) {
      chat.live.set(runId, { runId, state: "running", gateway: chat.gateway, sessionKey: chat.key, entries: [{ kind: "user", text }] });
      chatRenderLog(chat.entries || []);
    }
  } catch (error) {
    toast(errText(error), true);
  } finally {
    button.disabled = false;
  }
}

function setUpChat() {
  $("chat-form").addEventListener("submit", chatSend);
  $("chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) chatSend(event);
  });
  $("chat-gateway").addEventListener("change", (e) => chatOpen(e.currentTarget.value, null));
  $("chat-session").addEventListener("change", (e) => chatOpen(chat.gateway, e.currentTarget.value));
  $("chat-new").addEventListener("click", (e) =>
    act(e.currentTarget, "chat_new_session", { name: chat.gateway }, (key) => {
      chatOpen(chat.gateway, key);
      return "New session started.";
    }),
  );
  $("chat-stop").addEventListener("click", (e) =>
    act(e.currentTarget, "chat_abort", { name: chat.gateway, key: chat.key }, (aborted) => (aborted ? "Stopped." : "Nothing was running.")),
  );
}

// ---- Rescue bot wizard ------------------------------------------------------
//
// Five steps over the `onboard_*` commands. Nothing is written before
// "Finish"; the token never comes back from the shell once checked, and
// Cancel forgets every answer (the shell holds them in memory only).

const ONBOARD_EVENT = "omniclaw://onboarding";
const PAIR_WAIT_SECS = 300;
const wz = { step: 1, plan: null, bot: null, operator: null, waitTimer: null, busy: false, finished: false, planSeq: 0, checkSeq: 0, suggested: null, profiles: null, secretsFile: false };

function wzShowError(message) {
  const box = $("wz-error");
  box.textContent = message || "";
  box.hidden = !message;
  $("wz-use-file").hidden = true;
}

function wzProfile() {
  return $("wz-name").value.trim();
}

function wzPort() {
  const raw = $("wz-port").value.trim();
  return raw === "" ? null : Number(raw);
}

function wzGo(step) {
  wz.step = step;
  for (const fs of document.querySelectorAll("#wizard fieldset")) fs.hidden = Number(fs.dataset.step) !== step;
  for (const li of document.querySelectorAll("#wz-steps li")) {
    const n = Number(li.dataset.step);
    li.classList.toggle("done", n < step);
    if (n === step) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
  wzShowError("");
  $("wz-back").hidden = step === 1 || wz.finished;
  $("wz-next").textContent = step === 5 ? (wz.finished ? "Done" : "Finish") : "Next";
  wzUpdateNext();
  if (step === 3) wzWait();
  if (step === 4) wzRenderTargets();
  if (step === 5) wzRenderSummary();
  const first = document.querySelector(`#wizard fieldset[data-step="${step}"] input:not([type=hidden]), #wizard fieldset[data-step="${step}"] button`);
  if (first && !wz.finished) first.focus();
}

function wzUpdateNext() {
  const next = $("wz-next");
  let ok = !wz.busy;
  if (wz.step === 1) ok = ok && wz.plan !== null && wz.plan.conflicts.length === 0 && wz.plan.profile === wzProfile();
  if (wz.step === 3) ok = ok && wz.operator !== null;
  next.disabled = !ok;
  $("wz-cancel").disabled = wz.busy && wz.step === 5;
  // Going back from a token check abandons it; finishing cannot be left.
  $("wz-back").disabled = wz.busy && wz.step === 5;
}

/** Shows "Use the free port N" for the newest suggestion (the one suggestion the step makes). */
function wzOfferFree(port) {
  const free = $("wz-use-free");
  free.hidden = !port;
  if (port) free.textContent = `Use the free port ${port}`;
}

/** Step 1: plans the ports as the user types (newest answer wins). */
async function wzPlan() {
  const seq = ++wz.planSeq;
  const name = wzProfile();
  const box = $("wz-plan");
  wz.plan = null;
  wzUpdateNext();
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) {
    wzOfferFree(null);
    box.replaceChildren(el("p", { class: "error" }, "A profile name is 1–64 lowercase letters, digits, - or _, starting with a letter or digit."));
    return;
  }
  const port = wzPort();
  if (port !== null && !(Number.isInteger(port) && port >= 1024 && port <= 65535)) {
    box.replaceChildren(el("p", { class: "error" }, "A base port is a number from 1024 to 65535."));
    // A way out of a wrong entry: the free slot, planned without it.
    wzOfferFree(wz.suggested);
    if (wz.suggested === null) {
      try {
        const plain = await call("onboard_plan", { name, port: null });
        if (seq !== wz.planSeq) return;
        wz.suggested = plain.suggested;
        wzOfferFree(wz.suggested);
      } catch (_) {
        // The entry's own error is already shown.
      }
    }
    return;
  }
  let plan;
  try {
    plan = await call("onboard_plan", { name, port });
  } catch (error) {
    if (seq === wz.planSeq) box.replaceChildren(el("p", { class: "error" }, errText(error)));
    return;
  }
  if (seq !== wz.planSeq) return;
  wz.plan = plan;
  wz.suggested = plan.suggested ?? null;
  $("wz-port").placeholder = `auto (${plan.base})`;
  const offer = plan.conflicts.length > 0 && plan.suggested && plan.suggested !== plan.base ? plan.suggested : null;
  wzOfferFree(offer);
  // One suggestion: with a free port to offer, the conflicts are only named
  // and the button is the way out; without one, each says its own fix.
  const conflict = (c) => (offer ? c.text : `${c.text} — fix: ${c.fix}`);
  const parts = [
    el(
      "table",
      { class: "ports compact", "aria-label": "Ports of the new gateway" },
      el("tbody", {}, plan.rows.map((r) =>
        el("tr", { class: r.conflict ? "conflict" : "" },
          el("th", { scope: "row" }, r.surface),
          el("td", { class: "num" }, r.range),
          el("td", {}, r.conflict ? "taken" : "free"),
        ))),
    ),
    plan.conflicts.length
      ? el("ul", { class: "conflict-list", "aria-label": "Conflicts" }, plan.conflicts.map((c) => el("li", {}, conflict(c))))
      : el("p", { class: "ok" }, `✓ No conflicts: profile ${plan.profile} fits beside every other gateway and running program.`),
  ];
  if (plan.exists) parts.unshift(el("p", { class: "hint" }, `Profile ${plan.profile} exists: onboarding adds the bot to ${plan.configPath}.`));
  box.replaceChildren(...parts);
  wzUpdateNext();
}

async function wzCheckToken() {
  const token = $("wz-token").value.trim();
  const button = $("wz-check");
  const seq = ++wz.checkSeq;
  wzShowError("");
  $("wz-bot").hidden = true;
  wz.bot = null;
  if (!token) {
    wzShowError("Paste the token @BotFather gave you (it looks like 123456789:AA…).");
    return false;
  }
  wz.busy = true;
  wzUpdateNext();
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = "Checking…";
  try {
    const username = await call("onboard_check_token", { name: wzProfile(), token, apiRoot: $("wz-api-root").value.trim() || null });
    if (seq !== wz.checkSeq || wz.step !== 2) return false;
    wz.bot = username;
    $("wz-bot").textContent = `✓ The token belongs to @${username}.`;
    $("wz-bot").hidden = false;
    return true;
  } catch (error) {
    if (seq !== wz.checkSeq || wz.step !== 2) return false;
    wzShowError(errText(error));
    if (error && error.kind === "offline") {
      // The server field the message points at.
      $("wz-advanced").open = true;
      $("wz-api-root").focus();
    }
    return false;
  } finally {
    if (seq === wz.checkSeq) {
      wz.busy = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = "Check";
      wzUpdateNext();
    }
  }
}

function wzStopTimer() {
  clearInterval(wz.waitTimer);
  wz.waitTimer = null;
}

/** Step 3: waits for the operator's /start, showing the time waited. */
async function wzWait() {
  wz.operator = null;
  $("wz-who").hidden = true;
  wzUpdateNext();
  const started = Date.now();
  const bar = $("wz-wait-bar");
  const text = $("wz-wait");
  const tick = () => {
    const secs = Math.floor((Date.now() - started) / 1000);
    bar.value = Math.min(secs, PAIR_WAIT_SECS);
    text.textContent = `Waiting for your /start to @${wz.bot}… (${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}) Open Telegram, find @${wz.bot} and send /start.`;
  };
  wzStopTimer();
  tick();
  bar.hidden = false;
  wz.waitTimer = setInterval(tick, 1000);
  try {
    const who = await call("onboard_wait_operator");
    if (wz.step !== 3) return;
    if (who) {
      wz.pending = who;
      $("wz-who-text").textContent = `${who.who} (user id ${who.id}) wrote to @${wz.bot}. Is that you?`;
      $("wz-who").hidden = false;
      text.textContent = "Someone wrote to the bot.";
      $("wz-me").focus();
    } else {
      text.textContent = `Nobody wrote to @${wz.bot} within ${PAIR_WAIT_SECS / 60} minutes.`;
      $("wz-who-text").textContent = "Send /start to the bot, then wait again — or skip and approve yourself later with a pairing code.";
      $("wz-who").hidden = false;
    }
  } catch (error) {
    if (wz.step === 3 && !/cancelled/.test(String(error))) {
      text.textContent = "Waiting stopped.";
      wzShowError(String(error));
      $("wz-who").hidden = false;
    }
  } finally {
    wzStopTimer();
    bar.hidden = true;
  }
}

function wzRenderTargets() {
  const others = wz.plan ? wz.plan.others : [];
  const box = $("wz-targets");
  if (box.dataset.profile === wzProfile() && box.children.length) return;
  box.dataset.profile = wzProfile();
  box.replaceChildren(
    ...(others.length
      ? others.map((name) =>
          el("label", { class: "check" },
            el("input", { type: "checkbox", value: name, checked: true, "data-testid": `wz-target-${name}` }),
            name))
      : [el("p", { class: "hint" }, "No other profiles yet: the bot will look after every profile you add later.")]),
  );
}

/** The chosen targets: empty when all are chosen (every profile, also later ones). */
function wzTargets() {
  const boxes = [...document.querySelectorAll("#wz-targets input[type=checkbox]")];
  const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
  return chosen.length === boxes.length ? [] : chosen;
}

function wzRenderSummary() {
  const targets = wzTargets();
  $("wz-summary").replaceChildren(
    el("dl", { class: "facts" },
      el("dt", {}, "Profile"), el("dd", {}, wzProfile()),
      el("dt", {}, "Base port"), el("dd", {}, String(wz.plan ? wz.plan.base : "")),
      el("dt", {}, "Bot"), el("dd", {}, `@${wz.bot}`),
      el("dt", {}, "Operator"), el("dd", {}, wz.operator ? `${wz.operator.who} (${wz.operator.id})` : "pairs later with a code"),
      el("dt", {}, "Targets"), el("dd", {}, targets.length ? targets.join(", ") : "every other profile"),
    ),
  );
}

function wzStage(step, state, detail) {
  const li = document.querySelector(`#wz-progress li[data-stage="${step}"]`);
  if (!li) return;
  li.dataset.state = state;
  li.title = detail || "";
  let note = li.querySelector(".detail");
  if (!note) {
    note = el("span", { class: "detail" });
    li.append(note);
  }
  note.textContent = detail ? ` — ${detail}` : state === "running" ? " …" : "";
}

async function wzFinish() {
  wzShowError("");
  wz.busy = true;
  wzUpdateNext();
  for (const li of document.querySelectorAll("#wz-progress li")) {
    delete li.dataset.state;
    li.querySelector(".detail")?.remove();
  }
  $("wz-done").hidden = true;
  const args = {
    name: wzProfile(),
    port: wz.plan.base,
    allowFrom: wz.operator ? [wz.operator.id] : [],
    targets: wzTargets(),
    watchRollback: $("wz-rollback").checked,
    installService: $("wz-service").checked,
    startAtLogin: $("wz-login").checked,
    startWithApp: $("wz-with-app").checked && !$("wz-service").checked,
    secretsFile: wz.secretsFile,
  };
  try {
    const done = await call("onboard_finish", { args });
    wz.finished = true;
    $("wz-done").textContent = `✓ The rescue bot ${done.bot || ""} runs: profile ${done.profile} on port ${done.port}, token in the ${done.store}. Send /help to the bot to see what it can do.`;
    $("wz-done").hidden = false;
    wzGo(5);
  } catch (error) {
    if (error && error.kind === "keychain") {
      wzShowError(errText(error));
      $("wz-use-file").hidden = false;
      $("wz-use-file").focus();
    } else {
      wzShowError(`${errText(error)}\nFix it and press Finish again, or go back to choose another port.`);
    }
  } finally {
    wz.busy = false;
    wzUpdateNext();
  }
}

function wzReset() {
  wzStopTimer();
  Object.assign(wz, { plan: null, bot: null, operator: null, pending: null, finished: false, suggested: null, secretsFile: false });
  $("wz-token").value = "";
  $("wz-bot").hidden = true;
  $("wz-targets").replaceChildren();
  $("wz-done").hidden = true;
  for (const li of document.querySelectorAll("#wz-progress li")) {
    delete li.dataset.state;
    li.querySelector(".detail")?.remove();
  }
  wzGo(1);
  wzPlan();
}

async function wzNext() {
  if (wz.busy) return;
  switch (wz.step) {
    case 1:
      if (!$("wz-next").disabled) wzGo(2);
      break;
    case 2:
      if (wz.bot || (await wzCheckToken())) wzGo(3);
      break;
    case 3:
      if (wz.operator) wzGo(4);
      break;
    case 4:
      if (document.querySelectorAll("#wz-targets input[type=checkbox]").length && !document.querySelector("#wz-targets input:checked")) {
        wzShowError("Pick at least one gateway for the rescue bot to look after.");
        return;
      }
      wzGo(5);
      break;
    case 5:
      if (wz.finished) {
        wzReset();
        showPage("gateways");
      } else {
        await wzFinish();
      }
      break;
  }
}

function setUpWizard() {
  let debounce = null;
  const replan = () => {
    clearTimeout(debounce);
    wz.plan = null;
    $("wz-plan").replaceChildren(el("p", { class: "hint" }, "Checking the ports…"));
    wzUpdateNext();
    debounce = setTimeout(wzPlan, 200);
  };
  $("wz-name").addEventListener("input", () => {
    // Another profile, another bot: the checked token belonged to the old name.
    wz.bot = null;
    wz.suggested = null;
    $("wz-bot").hidden = true;
    $("wz-port").value = "";
    replan();
  });
  $("wz-port").addEventListener("input", replan);
  $("wz-use-free").addEventListener("click", () => {
    if (wz.suggested === null) return;
    $("wz-port").value = String(wz.suggested);
    wzPlan();
  });
  $("wz-use-file").addEventListener("click", async () => {
    wz.secretsFile = true;
    $("wz-use-file").hidden = true;
    await wzFinish();
  });
  $("wz-token").addEventListener("input", () => {
    wz.bot = null;
    $("wz-bot").hidden = true;
  });
  $("wz-token").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      wzCheckToken();
    }
  });
  $("wz-check").addEventListener("click", wzCheckToken);
  $("wz-me").addEventListener("click", () => {
    if (!wz.pending) return;
    wz.operator = wz.pending;
    wzGo(4);
  });
  $("wz-again").addEventListener("click", () => wzWait());
  $("wz-skip").addEventListener("click", () => {
    call("onboard_stop_wait").catch(() => {});
    wz.operator = null;
    wzStopTimer();
    wzGo(4);
  });
  $("wz-service").addEventListener("change", (e) => {
    $("wz-with-app").disabled = e.currentTarget.checked;
  });
  $("wizard").addEventListener("submit", (event) => {
    event.preventDefault();
    wzNext();
  });
  $("wz-back").addEventListener("click", () => {
    if (wz.busy && wz.step === 5) return;
    if (wz.step === 2 && wz.busy) {
      // The answer of the abandoned check is ignored (its sequence is old).
      wz.checkSeq++;
      wz.busy = false;
      const check = $("wz-check");
      check.disabled = false;
      check.removeAttribute("aria-busy");
      check.textContent = "Check";
    }
    if (wz.step === 3) call("onboard_stop_wait").catch(() => {});
    wzStopTimer();
    wzGo(Math.max(1, wz.step - 1));
  });
  $("wz-cancel").addEventListener("click", async () => {
    if (wz.busy && wz.step === 5) return;
    const finished = wz.finished;
    await call("onboard_cancel").catch(() => {});
    wzReset();
    toast(finished ? "Closed." : "Cancelled: nothing was written.");
  });
  tauri.event.listen(ONBOARD_EVENT, (event) => wzStage(event.payload.step, event.payload.state, event.payload.detail));
  wzGo(1);
  wzPlan();
}

// ---- Assistant wizard -------------------------------------------------------

// Over the `assistant_*` commands: the gateway, the provider (a running
// local Ollama is found by the app), its models fetched with the key, a test
// message, an optional Telegram bot, then one write at Finish. The model's
// reply is untrusted: shown with textContent only.
const as = { offers: [], tested: false, planTimer: 0, secretsFile: false };

function asShowError(message) {
  const box = $("as-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function asName() {
  return $("as-name").value.trim() || "default";
}

function asPort() {
  const raw = $("as-port").value.trim();
  return raw ? Number(raw) : null;
}

/** Opens the wizard, for gateway `name` (one without a model) or a new main bot. */
function asOpen(name) {
  if (name) $("as-name").value = name;
  showPage("assistant");
  asPlan();
}

async function asPlan() {
  const box = $("as-plan");
  try {
    const plan = await call("onboard_plan", { name: asName(), port: asPort() });
    const lines = [
      plan.exists
        ? `Profile ${plan.profile} exists: its config ${plan.configPath} gains the model.`
        : `New profile ${plan.profile} on base port ${plan.base}, config ${plan.configPath}.`,
      ...plan.conflicts.map((c) => `${c.text} — ${c.fix}`),
    ];
    box.replaceChildren(...lines.map((l, i) => el("p", { class: i && "error" }, l)));
    if (!plan.exists && !asPort() && plan.suggested) $("as-port").placeholder = `auto (${plan.base})`;
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, errText(error)));
  }
}

function asProvider() {
  const picked = document.querySelector("input[name=as-provider]:checked");
  return as.offers.find((o) => o.kind === (picked && picked.value));
}

function asPickProvider() {
  const offer = asProvider();
  if (!offer) return;
  $("as-base-url").value = offer.baseUrl || "";
  $("as-base-url").placeholder = offer.baseUrl ? "" : "http://127.0.0.1:8000/v1";
  $("as-key-hint").replaceChildren(
    offer.keyRequired ? "required" : "optional for a local server",
    offer.keyPage ? ` · keys at ${offer.keyPage}` : "",
  );
  asForgetModels();
}

function asForgetModels() {
  $("as-model").replaceChildren();
  $("as-model-step").disabled = true;
  $("as-reply").hidden = true;
  as.tested = false;
  asUpdateFinish();
}

function asUpdateFinish() {
  $("as-finish").disabled = !as.tested;
}

async function asProviders() {
  const box = $("as-providers");
  box.replaceChildren(el("p", { class: "hint" }, "Looking for a local Ollama…"));
  try {
    const found = await call("assistant_providers");
    as.offers = found.offers;
    box.replaceChildren(
      ...found.offers.map((o) =>
        el(
          "label",
          { class: "check" },
          el("input", { type: "radio", name: "as-provider", value: o.kind, "data-testid": `as-provider-${o.kind}`, checked: o.kind === found.suggested, onchange: asPickProvider }),
          ` ${o.label}`,
          o.running ? el("span", { class: "ok" }, ` — runs on this machine (${o.running.length} model${o.running.length === 1 ? "" : "s"})`) : "",
        ),
      ),
    );
    asPickProvider();
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, errText(error)));
  }
}

async function asFetch() {
  const offer = asProvider();
  if (!offer) return asShowError("Choose a provider first.");
  asShowError("");
  asForgetModels();
  const button = $("as-fetch");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const models = await call("assistant_models", {
      name: asName(),
      kind: offer.kind,
      baseUrl: $("as-base-url").value.trim() || null,
      key: $("as-key").value.trim() || null,
    });
    $("as-model").replaceChildren(
      ...models.map((m) => el("option", { value: m.id }, m.id, m.price ? ` (${m.price})` : "")),
    );
    $("as-model-step").disabled = false;
  } catch (error) {
    asShowError(errText(error));
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }
}

async function asTest() {
  asShowError("");
  as.tested = false;
  asUpdateFinish();
  const button = $("as-test");
  const box = $("as-reply");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const reply = await call("assistant_test", { model: $("as-model").value });
    const text = el("blockquote", { "data-testid": "as-reply-text" });
    // Untrusted text: never parsed as HTML.
    text.textContent = reply.text;
    box.replaceChildren(
      el("p", {}, `${reply.model} answered in ${(reply.elapsedMs / 1000).toFixed(1)} s:`),
      text,
      el("p", { class: "hint", "data-testid": "as-cost" }, `${reply.inputTokens} tokens in, ${reply.outputTokens} out · cost ${reply.cost}`),
    );
    box.hidden = false;
    as.tested = true;
  } catch (error) {
    box.hidden = true;
    asShowError(errText(error));
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
    asUpdateFinish();
  }
}

async function asCheck() {
  asShowError("");
  const bot = $("as-bot");
  bot.hidden = true;
  try {
    const username = await call("onboard_check_token", { name: asName(), token: $("as-token").value, apiRoot: $("as-api-root").value.trim() || null });
    bot.textContent = `@${username} will answer on Telegram (chats pair with a code).`;
    bot.hidden = false;
  } catch (error) {
    asShowError(errText(error));
  }
}

async function asFinish(event) {
  event.preventDefault();
  asShowError("");
  const button = $("as-finish");
  const done = $("as-done");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  done.textContent = "Writing the profile and starting its gateway…";
  done.hidden = false;
  try {
    const r = await call("assistant_finish", { name: asName(), port: asPort(), secretsFile: as.secretsFile, operators: $("as-operators").value });
    done.textContent = `${r.profile} runs on port ${r.port} with ${r.model}${r.bot ? `, ${r.bot} polls` : ""}; its secrets are in the ${r.store.replace(/^the /, "")}.`;
    $("as-chat").hidden = false;
    as.tested = false;
    // Written: the bot and its operators belong to that profile now.
    $("as-operators").value = "";
    as.secretsFile = false;
  } catch (error) {
    done.hidden = true;
    asShowError(errText(error));
    if (error && error.kind === "keychain") {
      $("as-use-file").hidden = false;
      $("as-use-file").focus();
    }
  } finally {
    button.removeAttribute("aria-busy");
    asUpdateFinish();
  }
}

async function asCancel() {
  await call("assistant_cancel").catch(() => {});
  as.secretsFile = false;
  $("as-use-file").hidden = true;
  $("as-key").value = "";
  $("as-token").value = "";
  $("as-operators").value = "";
  $("as-bot").hidden = true;
  $("as-done").hidden = true;
  $("as-chat").hidden = true;
  asShowError("");
  asForgetModels();
}

function setUpAssistant() {
  const replan = () => {
    clearTimeout(as.planTimer);
    as.planTimer = setTimeout(asPlan, 250);
  };
  $("as-name").addEventListener("input", () => {
    asForgetModels();
    replan();
  });
  $("as-port").addEventListener("input", replan);
  $("as-base-url").addEventListener("input", asForgetModels);
  $("as-key").addEventListener("input", asForgetModels);
  $("as-model").addEventListener("change", () => {
    as.tested = false;
    $("as-reply").hidden = true;
    asUpdateFinish();
  });
  $("as-fetch").addEventListener("click", asFetch);
  $("as-test").addEventListener("click", asTest);
  $("as-check").addEventListener("click", asCheck);
  $("as-cancel").addEventListener("click", asCancel);
  // The keychain refused the secrets: the profile's private file, then Finish again.
  $("as-use-file").addEventListener("click", async (event) => {
    as.secretsFile = true;
    $("as-use-file").hidden = true;
    await asFinish(event);
  });
  $("as-chat").addEventListener("click", () => chatWith(asName()));
  $("as-form").addEventListener("submit", asFinish);
  asProviders();
  asPlan();
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
  setUpWizard();
  setUpAssistant();
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
  setUpChat();
  await tauri.event.listen(STATE_EVENT, (event) => render(event.payload));
  await tauri.event.listen(CHAT_EVENT, (event) => chatUpdate(event.payload));
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
