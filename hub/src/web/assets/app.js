// Switchyard web UI: the only script. Turns action buttons and forms into
// calls to the hub's /api/v1 routes (the same the CLI uses, with the
// session cookie and its CSRF token), shows timestamps relative, and applies
// the live events of /events to the page. No build step, no dependencies.
"use strict";

(function () {
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.content : "";
  };
  const csrf = meta("csrf-token");

  // ---- messages -----------------------------------------------------------
  function flash(text, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = kind || "";
  }

  // ---- timestamps ---------------------------------------------------------
  function relative(date) {
    const s = Math.round((Date.now() - date.getTime()) / 1000);
    const abs = Math.abs(s);
    const units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
    for (const [size, unit] of units) {
      if (abs >= size || size === 1) {
        const n = Math.floor(abs / size);
        return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
      }
    }
    return date.toISOString();
  }
  function refreshTimes() {
    for (const el of document.querySelectorAll("time[datetime]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = relative(d);
    }
  }

  // ---- the API ------------------------------------------------------------
  async function call(method, path, body) {
    const headers = { "X-CSRF-Token": csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const why = data && data.error ? data.error : `HTTP ${response.status}`;
      throw new Error(why);
    }
    return data;
  }

  function pairs(text) {
    const out = {};
    for (const part of (text || "").split(",")) {
      const p = part.trim();
      if (!p) continue;
      const at = p.indexOf("=");
      if (at < 0) out[p] = ""; else out[p.slice(0, at).trim()] = p.slice(at + 1).trim();
    }
    return out;
  }

  // A modal <dialog> asks before every change. It takes focus (on Cancel,
  // the harmless choice), keeps Tab inside, Escape cancels, and focus goes
  // back to the control that opened it. Unlike window.confirm it is part of
  // the page, so it can be styled and driven by keyboard in every browser.
  function ask(question, yesLabel) {
    return new Promise((resolve) => {
      const opener = document.activeElement;
      const dialog = document.createElement("dialog");
      dialog.className = "confirm";
      dialog.setAttribute("aria-labelledby", "confirm-question");
      const text = document.createElement("p");
      text.id = "confirm-question";
      text.textContent = question;
      const form = document.createElement("form");
      form.method = "dialog";
      const no = document.createElement("button");
      no.type = "submit";
      no.value = "no";
      no.textContent = "Cancel";
      const yes = document.createElement("button");
      yes.type = "submit";
      yes.value = "yes";
      yes.className = "primary";
      yes.textContent = yesLabel;
      form.append(no, yes);
      dialog.append(text, form);
      dialog.returnValue = "";
      dialog.addEventListener("close", () => {
        const confirmed = dialog.returnValue === "yes";
        dialog.remove();
        if (opener && typeof opener.focus === "function") opener.focus();
        resolve(confirmed);
      });
      document.body.append(dialog);
      dialog.showModal();
      no.focus();
    });
  }

  async function onAction(button) {
    const label = button.textContent.trim();
    if (!(await ask(button.dataset.confirm || "Are you sure?", label))) return;
    button.disabled = true;
    try {
      const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      await call(button.dataset.method, button.dataset.path, body);
      flash("Done: " + button.textContent.trim() + ". Reloading…", "ok");
      setTimeout(() => window.location.reload(), 400);
    } catch (e) {
      flash("Refused: " + e.message, "bad");
      button.disabled = false;
    }
  }

  async function onForm(form) {
    const submit = form.querySelector("button[type=submit]");
    const label = submit ? submit.textContent.trim() : "Confirm";
    if (!(await ask(form.dataset.confirm || "Are you sure?", label))) return;
    const data = new FormData(form);
    let body;
    if (form.dataset.kind === "register") {
      body = { name: String(data.get("name") || "").trim(), labels: pairs(data.get("labels")) };
    } else if (form.dataset.kind === "labels") {
      body = {
        set: pairs(data.get("set")),
        remove: String(data.get("remove") || "").split(",").map((s) => s.trim()).filter(Boolean),
      };
    } else {
      body = Object.fromEntries(data.entries());
    }
    try {
      const answer = await call(form.dataset.method, form.dataset.path, body);
      if (form.dataset.kind === "register" && answer && answer.join_command) {
        const out = document.getElementById("join-command");
        out.textContent = answer.join_command;
        out.hidden = false;
        flash("Cluster registered. Run this join command on the cluster; it is shown only once.", "ok");
        form.reset();
      } else {
        flash("Done. Reloading…", "ok");
        setTimeout(() => window.location.reload(), 400);
      }
    } catch (e) {
      flash("Refused: " + e.message, "bad");
    }
  }

  // ---- live events --------------------------------------------------------
  const BADGE = {
    Synced: "ok", Healthy: "ok", connected: "ok",
    OutOfSync: "warn", Progressing: "warn", Missing: "warn", Suspended: "warn", pending: "warn",
    Degraded: "bad", Failed: "bad", disconnected: "bad",
  };
  function setBadge(cell, word) {
    if (!cell) return;
    const span = document.createElement("span");
    span.className = "badge " + (BADGE[word] || "none");
    span.textContent = word;
    cell.replaceChildren(span);
  }
  function setCommit(cell, id) {
    if (!cell) return;
    const code = document.createElement("code");
    code.title = id;
    code.textContent = id.slice(0, 10);
    cell.replaceChildren(code);
  }
  const esc = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : s);

  function onClusterEvent(ev) {
    const d = JSON.parse(ev.data);
    const word = d.connected ? "connected" : "disconnected";
    for (const row of document.querySelectorAll(`[data-cluster="${esc(d.cluster)}"]`)) {
      setBadge(row.querySelector(".conn"), word);
    }
    const up = document.getElementById("count-connected");
    const down = document.getElementById("count-disconnected");
    if (up && down) {
      const delta = d.connected ? 1 : -1;
      up.textContent = String(Math.max(0, Number(up.textContent) + delta));
      down.textContent = String(Math.max(0, Number(down.textContent) - delta));
    }
  }
  function onStatusEvent(ev) {
    const d = JSON.parse(ev.data);
    const sel = `tr[data-app="${esc(d.app)}"][data-cluster="${esc(d.cluster)}"]`;
    for (const row of document.querySelectorAll(sel)) {
      setBadge(row.querySelector(".sync"), d.sync);
      setBadge(row.querySelector(".health"), d.health);
      setCommit(row.querySelector(".applied"), d.commit);
      row.classList.add("changed");
    }
  }
  function onAppEvent(ev) {
    const d = JSON.parse(ev.data);
    if (window.location.pathname === "/apps/" + d.app) {
      flash(`App ${d.app} changed (new deployment). Reload for its history.`, "ok");
    }
  }

  function live() {
    const indicator = document.getElementById("live");
    if (!indicator || !window.EventSource) return;
    const source = new EventSource("/events");
    source.onopen = () => { indicator.textContent = "live"; indicator.className = "live on"; };
    source.onerror = () => { indicator.textContent = "live: reconnecting"; indicator.className = "live off"; };
    source.addEventListener("cluster", onClusterEvent);
    source.addEventListener("app_status", onStatusEvent);
    source.addEventListener("app", onAppEvent);
    source.addEventListener("resync", (ev) => {
      source.close();
      if (ev.data === "session ended") window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      else window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    refreshTimes();
    setInterval(refreshTimes, 30000);
    document.addEventListener("click", (e) => {
      const button = e.target.closest("button.action");
      if (button) { e.preventDefault(); onAction(button); }
    });
    document.addEventListener("submit", (e) => {
      const form = e.target.closest("form.api-form");
      if (form) { e.preventDefault(); onForm(form); }
    });
    live();
  });
})();
