// The inspector: lists recent conversations (polled) and shows one transcript live over /admin/.../live.
// Everything users and bots sent is shown as text (textContent), never as HTML.
(function () {
  "use strict";

  var entries = {};      // id -> entry, for the conversation on screen
  var current = null;    // the conversation id on screen
  var socket = null;
  var shown = null;      // the summary of the conversation on screen, from its snapshot

  function byId(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function time(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  function problem(text) {
    var box = byId("problem");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function api(path) {
    return fetch(path, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) { location.reload(); throw new Error("signed out"); }
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
        return body;
      });
    });
  }

  // -- conversations -----------------------------------------------------------------------------

  function renderConversations(list) {
    var body = byId("conversations").tBodies[0];
    body.textContent = "";
    byId("no-conversations").hidden = list.length > 0;
    list.forEach(function (c) {
      var row = el("tr");
      row.setAttribute("data-conversation-id", c.id);
      if (c.id === current) row.className = "selected";
      var link = el("a", "mono", c.id);
      link.href = "#" + encodeURIComponent(c.id);
      var first = el("td"); first.appendChild(link); row.appendChild(first);
      row.appendChild(el("td", "", c.bot.name || c.bot.id));
      row.appendChild(el("td", "mono", c.users.map(function (u) { return u.name ? u.name + " (" + u.id + ")" : u.id; }).join(", ")));
      row.appendChild(el("td", "num", c.activityCount));
      row.appendChild(el("td", "", time(c.lastActivityAt)));
      body.appendChild(row);
    });
  }

  function refreshConversations() {
    api("/admin/conversations?limit=100").then(function (body) {
      problem("");
      renderConversations(body.conversations);
    }, function (e) { problem("Could not list conversations: " + e.message); });
  }

  // -- one transcript ----------------------------------------------------------------------------

  function list(value) { return Array.isArray(value) ? value : []; }

  function label(value, fallback) {
    return typeof value === "string" || typeof value === "number" ? String(value) : fallback;
  }

  // what users and bots send is not trusted to have the documented shape: nothing here may throw on it
  function summary(activity) {
    if (!activity || typeof activity !== "object") return "";
    var parts = [];
    if (activity.text) parts.push(label(activity.text, ""));
    list(activity.attachments).forEach(function (a) {
      parts.push("[" + label(a && (a.name || a.contentType), "attachment") + "]");
    });
    list(activity.membersAdded).forEach(function (m) { parts.push("+ " + label(m && (m.name || m.id), "?")); });
    list(activity.membersRemoved).forEach(function (m) { parts.push("- " + label(m && (m.name || m.id), "?")); });
    if (activity.name) parts.push(label(activity.name, ""));
    return parts.join(" ");
  }

  function deliveryBadge(entry) {
    var d = entry.delivery;
    if (entry.direction !== "toBot") return el("span", "delivery muted", "");
    if (!d || d.state === "pending") {
      var again = d && d.attempts > 1 ? " (attempt " + d.attempts + ")" : "";
      var pending = el("span", "delivery pending", "delivering…" + again);
      pending.setAttribute("data-status", "pending");
      return pending;
    }
    var attempts = d.attempts > 1 ? " · attempt " + d.attempts : "";
    var text = d.error
      ? (d.status ? d.status + " " : "") + d.error + " · " + d.durationMs + " ms" + attempts + (d.detail ? " · " + d.detail : "")
      : d.status + " · " + d.durationMs + " ms" + attempts;
    var badge = el("span", "delivery " + (d.error ? "bad" : "ok"), text);
    badge.setAttribute("data-status", d.error ? "error" : String(d.status));
    badge.title = "the bot's answer at " + d.at;
    return badge;
  }

  function renderEntry(entry) {
    var item = el("li", "entry " + entry.direction + (entry.deleted ? " deleted" : "") + (entry.stored ? "" : " unstored"));
    item.setAttribute("data-id", entry.id);
    item.setAttribute("data-direction", entry.direction);
    item.setAttribute("data-type", entry.type || "");
    var line = el("div", "line");
    line.appendChild(el("span", "time", time(entry.timestamp)));
    // conversationUpdates are the service's own news for the bot; everything else to the bot came from a client
    var from = entry.type === "conversationUpdate" ? "openline" : "client";
    line.appendChild(el("span", "direction", entry.direction === "toBot" ? from + " → bot" : "bot → client"));
    line.appendChild(el("span", "type", entry.type + (entry.stored ? "" : " (not stored)") + (entry.deleted ? " (deleted)" : "")));
    line.appendChild(el("span", "text", summary(entry.activity)));
    line.appendChild(deliveryBadge(entry));
    item.appendChild(line);
    var details = el("details");
    details.appendChild(el("summary", "muted", "JSON · " + entry.id));
    details.appendChild(el("pre", "json", JSON.stringify(entry.activity, null, 2)));
    if (entry.delivery) details.appendChild(el("pre", "json", "delivery: " + JSON.stringify(entry.delivery, null, 2)));
    item.appendChild(details);
    return item;
  }

  function sortedEntries() {
    return Object.keys(entries).map(function (k) { return entries[k]; }).sort(function (a, b) {
      var ta = a.timestamp || "", tb = b.timestamp || "";
      if (ta !== tb) return ta < tb ? -1 : 1;
      // as the server orders them: on the same millisecond, stored entries (in sequence) before unstored ones
      if ((a.seq === null) !== (b.seq === null)) return a.seq === null ? 1 : -1;
      return (a.seq || 0) - (b.seq || 0);
    });
  }

  function renderTranscript() {
    var list = byId("entries");
    var open = {};
    Array.prototype.forEach.call(list.querySelectorAll("details[open]"), function (d) { open[d.parentNode.getAttribute("data-id")] = true; });
    list.textContent = "";
    sortedEntries().forEach(function (entry) {
      var item;
      try {
        item = renderEntry(entry);
      } catch (e) {  // an entry of an unexpected shape: show its JSON, keep the rest of the transcript
        item = el("li", "entry", "");
        item.setAttribute("data-id", String(entry.id));
        item.appendChild(el("pre", "json", JSON.stringify(entry, null, 2)));
      }
      if (open[entry.id]) item.querySelector("details").open = true;
      list.appendChild(item);
    });
  }

  function apply(change) {
    if (change.op === "snapshot") {
      entries = {};
      change.entries.forEach(function (e) { entries[e.id] = e; });
      shown = change.conversation;
      shown.truncated = change.truncated;
    } else if (change.op === "entry") {
      var old = entries[change.entry.id];
      var next = change.entry;
      if (old && !next.delivery) next.delivery = old.delivery;
      entries[next.id] = next;
    } else if (change.op === "delivery") {
      if (entries[change.id]) entries[change.id].delivery = change.delivery;
    } else if (change.op === "delete") {
      if (entries[change.id]) entries[change.id].deleted = true;
    } else if (change.op === "gone") {
      shown = null;
      if (socket) { socket.onclose = null; }  // expired: nothing to reconnect to
      setLive("gone", "bad");
      byId("transcript-info").textContent = change.message;
    }
    renderTranscript();
    if (shown) {
      var stored = sortedEntries().filter(function (e) { return e.stored && !e.deleted; }).length;
      byId("transcript-info").textContent = shown.id + " · bot " + (shown.bot.name || shown.bot.id) + " · " + stored +
        " stored activities" + (shown.truncated ? " (the latest shown)" : "");
    }
  }

  function setLive(text, state) {
    var pill = byId("live-status");
    pill.textContent = text;
    pill.setAttribute("data-state", state);
  }

  function watch(id) {
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    current = id;
    entries = {};
    shown = null;
    renderTranscript();
    Array.prototype.forEach.call(document.querySelectorAll("#conversations tr[data-conversation-id]"), function (row) {
      row.className = row.getAttribute("data-conversation-id") === id ? "selected" : "";
    });
    if (!id) { setLive("not watching", "unknown"); return; }
    byId("transcript-info").textContent = id;
    setLive("connecting…", "pending");
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(scheme + "//" + location.host + "/admin/conversations/" + encodeURIComponent(id) + "/live");
    socket = ws;
    ws.onopen = function () { setLive("live", "ok"); };
    ws.onmessage = function (message) { apply(JSON.parse(message.data)); };
    ws.onclose = function () {
      if (socket !== ws) return;
      setLive("disconnected, retrying…", "bad");
      setTimeout(function () { if (socket === ws && current === id) watch(id); }, 2000);
    };
  }

  function fromHash() {
    var id = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (id !== current) watch(id || null);
  }

  function start() {
    api("/admin/status").then(function (s) {
      byId("service-info").textContent = "openline " + s.version + " · bots: " + s.bots.map(function (b) {
        return (b.name || b.id) + " at " + b.endpoint;
      }).join(", ");
    }, function (e) { problem("Could not read the service's status: " + e.message); });
    refreshConversations();
    setInterval(refreshConversations, 3000);
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
