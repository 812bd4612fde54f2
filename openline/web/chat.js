// The chat page: loads Web Chat, gets a token for a fresh conversation from /web/token, and shows the statuses.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("openline-config").textContent);
  var CONNECTION = ["uninitialized", "connecting", "online", "token expired", "failed to connect", "ended"];
  var STATE = ["unknown", "pending", "ok", "bad", "bad", "bad"];

  function byId(id) { return document.getElementById(id); }

  function setPill(id, label, text, state) {
    var pill = byId(id);
    pill.textContent = label + ": " + text;
    pill.setAttribute("data-state", state);
  }

  function problem(text, hint) {
    var box = byId("problem");
    box.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = text;
    box.appendChild(strong);
    if (hint) {
      var p = document.createElement("p");
      p.textContent = hint;
      box.appendChild(p);
    }
    box.hidden = false;
  }

  function chosenBot() {
    var wanted = new URLSearchParams(location.search).get("bot");
    for (var i = 0; i < config.bots.length; i++) {
      if (config.bots[i].id === wanted) return config.bots[i];
    }
    return config.bots[0];
  }

  function showBots(bot) {
    byId("bot-name").textContent = bot.name || bot.id;
    document.title = (bot.name || bot.id) + " · openline";
    if (config.bots.length < 2) return;
    var select = byId("bot-select");
    config.bots.forEach(function (b) {
      var option = document.createElement("option");
      option.value = b.id;
      option.textContent = b.name || b.id;
      option.selected = b.id === bot.id;
      select.appendChild(option);
    });
    select.hidden = false;
    select.addEventListener("change", function () {
      location.search = "?bot=" + encodeURIComponent(select.value);
    });
  }

  function watchService() {
    function check() {
      fetch("/healthz", { cache: "no-store" })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (r) {
          if (r.ok) setPill("service-status", "service", "ok", "ok");
          else setPill("service-status", "service", r.body.reason || "unavailable", "bad");
        })
        .catch(function () { setPill("service-status", "service", "unreachable", "bad"); });
    }
    check();
    setInterval(check, 10000);
  }

  function loadWebChat() {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      var timer = setTimeout(function () { reject(new Error("timed out")); }, 30000);
      script.src = config.webchatUrl;
      script.async = true;
      script.onload = function () {
        clearTimeout(timer);
        if (window.WebChat && window.WebChat.renderWebChat) resolve(window.WebChat);
        else reject(new Error("the script loaded but did not define window.WebChat"));
      };
      script.onerror = function () { clearTimeout(timer); reject(new Error("the request failed")); };
      document.head.appendChild(script);
    });
  }

  function getToken(bot) {
    return fetch("/web/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ bot: bot.id }),
      cache: "no-store"
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
        return body;
      });
    });
  }

  function start() {
    var bot = chosenBot();
    showBots(bot);
    watchService();
    loadWebChat().then(function (WebChat) {
      return getToken(bot).then(function (session) {
        var directLine = WebChat.createDirectLine({
          token: session.token,
          domain: location.origin + "/v3/directline",
          webSocket: true
        });
        directLine.connectionStatus$.subscribe(function (status) {
          setPill("connection-status", "connection", CONNECTION[status] || String(status), STATE[status] || "unknown");
          if (status === 3) problem("The conversation's token expired.", "Reload the page to start a new conversation.");
        });
        byId("webchat").setAttribute("data-conversation-id", session.conversationId);
        byId("webchat").setAttribute("data-user-id", session.user.id);
        WebChat.renderWebChat(
          {
            directLine: directLine,
            locale: navigator.language || "en-US",
            styleOptions: { botAvatarInitials: "B", userAvatarInitials: "You", hideUploadButton: false }
          },
          byId("webchat")
        );
        var box = byId("webchat").querySelector("input, textarea");
        if (box) box.focus();
      }, function (e) {
        setPill("connection-status", "connection", "no token", "bad");
        problem("Could not start a conversation: " + e.message);
      });
    }, function (e) {
      setPill("connection-status", "connection", "no Web Chat", "bad");
      problem(
        "Web Chat could not be loaded from " + config.webchatUrl + " (" + e.message + ").",
        config.webchatFromFile
          ? "The file given with --webchat-file could not be served or is not Web Chat's webchat.js."
          : "This machine or browser may have no internet access. Serve a local copy instead: " +
            "openline serve --webchat-file PATH/webchat.js (the file dist/webchat.js of the npm package " +
            "botframework-webchat), or point --webchat-url at a copy you host."
      );
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
