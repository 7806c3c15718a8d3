// The agent page: one EventSource for everything live, fetch() for the actions.
// Every value from the server is put in with textContent (never as HTML).
"use strict";

const T = JSON.parse(document.getElementById("texts").textContent);
const CSRF = document.querySelector('meta[name="csrf"]').content;
const LANG = document.documentElement.lang;
const $ = (id) => document.getElementById(id);
let state = { pop: null, wrapups: {}, phase: "idle", presence: null, reasons: [], skew: 0, lastCall: null };

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function label(labels, code) {
  return (labels && (labels[LANG] || labels["en-US"])) || code;
}

function say(text, bad) {
  const message = $("message");
  message.textContent = text;
  message.className = bad ? "error" : "";
}

async function post(path, fields) {
  const body = new URLSearchParams(fields);
  body.set("csrf", CSRF);
  const response = await fetch(path, { method: "POST", body, headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" });
  let answer = {};
  try { answer = await response.json(); } catch (e) { answer = { ok: false, error: String(response.status) }; }
  if (response.status === 401) window.location = "/login";
  return answer;
}

// --- presence ----------------------------------------------------------------------------------

function showPresence(view) {
  state.presence = view;
  if (!view) { $("presence").textContent = "?"; return; }
  let text = T[view.presence] || view.presence;
  if (view.presence === "paused" && view.pause_reason) {
    const reason = state.reasons.find((r) => r.code === view.pause_reason);
    text += " (" + (reason ? label(reason.label, reason.code) : view.pause_reason) + ")";
  }
  $("presence").textContent = text;
  $("presence").dataset.presence = view.presence;
  $("presence").dataset.reason = view.pause_reason || "";
}

function showReasons(reasons) {
  state.reasons = reasons;
  const select = $("pause-reason");
  select.replaceChildren(...reasons.map((r) => { const o = el("option", label(r.label, r.code)); o.value = r.code; return o; }));
}

// --- the pop -------------------------------------------------------------------------------------

function showPhase(phase) {
  state.phase = phase;
  $("phase").textContent = phase === "idle" ? "" : "· " + (T[phase] || phase);
  $("pop-phase").textContent = T[phase] || "";
}

function showPop(pop) {
  state.pop = pop;
  if (!pop) { $("pop").hidden = true; return; }
  state.lastCall = pop.call_id;
  $("pop").hidden = false;
  $("pop").dataset.callId = pop.call_id;
  $("pop-caller").textContent = pop.caller;
  $("pop-language").textContent = pop.language;
  $("pop-hotline").textContent = pop.hotline;
  $("pop-queue").textContent = pop.queue;
  const badge = $("pop-customer");
  badge.textContent = T[pop.customer] || pop.customer;
  badge.className = "badge " + pop.customer;
  $("pop-why").replaceChildren(...pop.why.map((w) => el("li", w)));
  const crm = $("pop-crm");
  crm.hidden = !pop.crm_url;
  if (pop.crm_url) crm.href = pop.crm_url;
  $("pop-path").replaceChildren(...pop.path.map((step) => {
    let text = step.node + (step.kind ? " (" + step.kind + ")" : "");
    if (step.keys.length) text += ": " + step.keys.join(", ");
    if (step.notes.length) text += " — " + step.notes.join("; ");
    return el("li", text);
  }));
  $("pop-answers").tBodies[0].replaceChildren(...pop.answers.map(([name, value]) => {
    const row = el("tr"); row.append(el("th", name), el("td", value)); return row;
  }));
  const history = $("pop-history").tBodies[0];
  history.replaceChildren(...pop.history.map((h) => {
    const row = el("tr");
    const scores = h.scores.map(([q, v]) => q + " " + v).join(", ");
    row.append(el("td", h.ended_at.slice(0, 16).replace("T", " ")), el("td", h.queue || ""), el("td", h.agent_id || ""),
      el("td", h.disposition || ""), el("td", h.wrap_code || ""), el("td", scores));
    return row;
  }));
  if (!pop.history.length) { const row = el("tr"); const cell = el("td", T.no_history); cell.colSpan = 6; row.append(cell); history.append(row); }
  $("pop-items").replaceChildren(...pop.open_items.map((i) =>
    el("li", i.category + " · " + (T[i.urgency] || i.urgency) + " · " + i.deadline.slice(0, 16).replace("T", " ") + " · " + i.reasons.join("; "),
      i.overdue ? "overdue" : "")));
  enableFeedback(pop.call_id);
}

function tick() {
  const now = Date.now() / 1000 + state.skew;
  if (state.pop && (state.phase === "ringing" || state.phase === "on_call")) {
    $("pop-waited").textContent = Math.max(0, Math.round(Math.min(now, state.pop.answered_at || now) - state.pop.enqueued_at)) + " s";
  }
  for (const [callId, wrap] of Object.entries(state.wrapups)) {
    const left = Math.max(0, Math.round(wrap.deadline - now));
    const node = document.querySelector(`[data-wrap="${CSS.escape(callId)}"] .left`);
    if (node) node.textContent = left + " s " + T.left;
  }
}

// --- wrap-up ---------------------------------------------------------------------------------------

function leaves(nodes, prefix, labels) {
  const out = [];
  for (const node of nodes) {
    const path = prefix ? prefix + "/" + node.code : node.code;
    const text = labels.concat([label(node.label, node.code)]);
    if (node.children && node.children.length) out.push(...leaves(node.children, path, text));
    else out.push([path, text.join(" › ")]);
  }
  return out;
}

function showWrapup(wrap) {
  state.wrapups[wrap.call_id] = wrap;
  const box = el("form");
  box.dataset.wrap = wrap.call_id;
  box.className = "wrapup";
  box.append(el("h2", T.wrapup_title + " · " + wrap.queue), el("p", "", "left"));
  const select = el("select"); select.name = "code"; select.required = true;
  const none = el("option", T.pick_code); none.value = ""; select.append(none);
  for (const [path, text] of leaves(wrap.codes, "", [])) { const o = el("option", text); o.value = path; select.append(o); }
  const note = el("textarea"); note.name = "note"; note.maxLength = 2000;
  const code = el("label", T.code + " "); code.append(select);
  const noteLabel = el("label", T.note + " "); noteLabel.append(note);
  const save = el("button", T.save); save.type = "submit";
  box.append(code, noteLabel, save);
  box.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await post("/agent/wrapup", { call_id: wrap.call_id, code: select.value, note: note.value });
    if (answer.ok) { say(T.saved); removeWrapup(wrap.call_id); }
    else say(answer.error === "too_late" ? T.too_late : (answer.error + " " + (answer.detail || "")), true);
  });
  const old = document.querySelector(`[data-wrap="${CSS.escape(wrap.call_id)}"]`);
  if (old) old.replaceWith(box); else $("wrapups").append(box);
  enableFeedback(wrap.call_id);
  tick();
}

function removeWrapup(callId) {
  delete state.wrapups[callId];
  const node = document.querySelector(`[data-wrap="${CSS.escape(callId)}"]`);
  if (node) node.remove();
}

// --- frontline feedback -----------------------------------------------------------------------------

function enableFeedback(callId) {
  state.lastCall = callId;
  $("feedback-call").value = callId;
  $("feedback").querySelector("button").disabled = false;
}

$("feedback").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData($("feedback"));
  const answer = await post("/agent/feedback", Object.fromEntries(form.entries()));
  if (answer.ok) { say(T.sent.replace("{item}", answer.item).replace("{owner}", answer.owner)); $("feedback").reset(); $("feedback-call").value = state.lastCall; }
  else say(answer.error + " " + (answer.detail || ""), true);
});

// --- presence buttons ------------------------------------------------------------------------------

async function presence(op, reason) {
  const answer = await post("/agent/presence", reason ? { op, reason } : { op });
  if (answer.ok) showPresence(answer.presence); else say(answer.detail || answer.error, true);
}

$("go-ready").addEventListener("click", () => {
  const p = state.presence && state.presence.presence;
  presence(p === "logged_out" ? "login" : "unpause");
});
$("go-pause").addEventListener("click", () => presence("pause", $("pause-reason").value));
$("go-logout").addEventListener("click", () => presence("logout"));

// --- the stream ------------------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/agent/events");
  source.addEventListener("open", () => { $("link").hidden = true; });
  source.addEventListener("error", () => { $("link").hidden = false; });
  source.addEventListener("state", (e) => {
    const s = JSON.parse(e.data);
    state.skew = s.now - Date.now() / 1000;
    showReasons(s.pause_reasons);
    showPresence(s.presence);
    showPhase(s.phase);
    showPop(s.pop);
    for (const id of Object.keys(state.wrapups)) removeWrapup(id);
    for (const wrap of s.wrapups) showWrapup(wrap);
    document.body.dataset.ready = "1";
  });
  source.addEventListener("presence", (e) => showPresence(JSON.parse(e.data)));
  source.addEventListener("pop", (e) => { showPhase("ringing"); showPop(JSON.parse(e.data)); tick(); });
  source.addEventListener("offer_over", (e) => {
    const over = JSON.parse(e.data);
    if (state.pop && state.pop.call_id === over.call_id) { showPop(null); showPhase("idle"); say(T.missed, true); }
  });
  source.addEventListener("connected", (e) => {
    const c = JSON.parse(e.data);
    if (state.pop && state.pop.call_id === c.call_id) state.pop.answered_at = c.at;
    showPhase("on_call");
  });
  source.addEventListener("ended", () => showPhase("wrap_up"));
  source.addEventListener("wrapup", (e) => { showPhase("wrap_up"); showWrapup(JSON.parse(e.data)); });
  source.addEventListener("wrapup_done", (e) => {
    const done = JSON.parse(e.data);
    removeWrapup(done.call_id);
    if (state.pop && state.pop.call_id === done.call_id) { showPop(null); showPhase("idle"); }
  });
}

connect();
setInterval(tick, 1000);
