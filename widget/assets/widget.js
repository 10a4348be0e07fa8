/*! BotHero chat widget — served by the BotHero API at /widget.js. No dependencies.
 *
 * <script src="https://HOST/widget.js" data-bot-id="bot_…" data-key="pk_live_…" async></script>
 * Optional: data-user-id + data-user-hash (identity verification), data-mode="page" (the hosted chat page).
 * JavaScript API: BotHero.open(), BotHero.close(), BotHero.ask(text), BotHero.identify(userId, userHash).
 */
(function () {
  "use strict";
  if (window.BotHero && window.BotHero.version) return; // loaded twice: keep the first

  var VERSION = "1";
  var script =
    document.currentScript ||
    document.querySelector('script[src*="/widget.js"][data-bot-id]');
  if (!script) return;
  // The API lives wherever this script came from (its own src), so one snippet works on any host.
  var API = script.src.replace(/\/widget\.js(?:[?#].*)?$/, "");
  var BOT_ID = script.getAttribute("data-bot-id") || "";
  var KEY = script.getAttribute("data-key") || "";
  var PAGE_MODE = script.getAttribute("data-mode") === "page";
  var identity = {
    userId: script.getAttribute("data-user-id") || "",
    userHash: script.getAttribute("data-user-hash") || "",
  };

  // --- storage: the visitor id and the visitor's conversation with this bot ----------------------
  function store(name, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(name);
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (e) {
      return null; // storage blocked (private mode, sandboxed frame): the chat still works for this page view
    }
    return null;
  }
  function randomId() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    var out = "v_";
    for (var i = 0; i < bytes.length; i++) out += alphabet[bytes[i] & 63];
    return out;
  }
  var visitorId = store("bothero:visitor") || randomId();
  store("bothero:visitor", visitorId);
  function conversationKey() {
    return "bothero:conversation:" + BOT_ID + ":" + (identity.userId || "");
  }

  // --- talking to the API ------------------------------------------------------------------------
  function headers(json) {
    var h = { Authorization: "Bearer " + KEY, "X-BotHero-Visitor": visitorId };
    if (identity.userId) {
      h["X-BotHero-User-Id"] = identity.userId;
      h["X-BotHero-User-Hash"] = identity.userHash;
    }
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  function ApiError(code, message, retryAfter) {
    this.code = code;
    this.message = message;
    this.retryAfter = retryAfter;
  }

  // A fetch that failed without a response is either the network (offline) or the browser refusing
  // the answer because this website's origin is not allowed (CORS). A no-cors ping tells them apart.
  function networkError() {
    if (navigator.onLine === false) return Promise.resolve(new ApiError("offline"));
    return fetch(API + "/healthz", { mode: "no-cors", cache: "no-store" }).then(
      function () {
        return new ApiError("origin_not_allowed");
      },
      function () {
        return new ApiError("offline");
      }
    );
  }

  function request(method, path, body, signal) {
    return fetch(API + path, {
      method: method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      signal: signal,
    }).then(
      function (response) {
        if (response.ok) return response;
        return response.json().then(
          function (payload) {
            var error = (payload && payload.error) || {};
            throw new ApiError(error.code || "http_" + response.status, error.message, response.headers.get("Retry-After"));
          },
          function () {
            throw new ApiError("http_" + response.status);
          }
        );
      },
      function (failure) {
        if (failure && failure.name === "AbortError") throw new ApiError("aborted");
        return networkError().then(function (error) {
          throw error;
        });
      }
    );
  }

  function getJSON(path) {
    return request("GET", path).then(function (r) {
      return r.json();
    });
  }

  // Server-sent events from a fetch body: calls onEvent(name, data) for each frame.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function frame(text) {
      var name = "message";
      var data = [];
      text.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return; // a heartbeat comment
      var parsed;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (e) {
        parsed = data.join("\n");
      }
      onEvent(name, parsed);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) frame(buffer);
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  // --- messages a person can act on -------------------------------------------------------------
  function describe(error) {
    var wait = error.retryAfter ? " Please wait " + error.retryAfter + " seconds and try again." : " Please wait a moment.";
    switch (error.code) {
      case "offline":
        return "You appear to be offline. Check your connection and try again.";
      case "origin_not_allowed":
        return "This chat is not enabled on this website. (The site owner can allow this address in BotHero.)";
      case "visitor_rate_limited":
      case "address_rate_limited":
      case "rate_limit_exceeded":
        return "You are sending messages too quickly." + wait;
      case "monthly_quota_exceeded":
        return "This chat is not available right now. Please try again later.";
      case "message_too_long":
        return error.message || "That message is too long. Please shorten it.";
      case "identity_verification_required":
      case "invalid_user_hash":
        return "Please sign in to chat with us.";
      case "bot_not_found":
      case "bot_disabled":
        return "This chat is not available.";
      case "invalid_api_key":
      case "api_key_revoked":
      case "api_key_expired":
        return "This chat is not set up correctly (its key is not valid).";
      default:
        return (error.message || "Something went wrong.") + " Please try again.";
    }
  }

  // --- the element --------------------------------------------------------------------------------
  var CSS =
    ":host{all:initial;--bh-accent:#2563eb;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111827}" +
    "*{box-sizing:border-box;font:inherit}" +
    "button{cursor:pointer}" +
    ":focus-visible{outline:3px solid var(--bh-accent);outline-offset:2px}" +
    ".launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;border:0;border-radius:999px;padding:12px 18px;background:var(--bh-accent);color:#fff;font-weight:600;box-shadow:0 6px 20px rgba(0,0,0,.2)}" +
    ".left .launcher,.left .panel{right:auto;left:20px}" +
    ".launcher.unread::after{content:'';position:absolute;top:-2px;right:-2px;width:14px;height:14px;border-radius:50%;background:#dc2626;border:2px solid #fff}" +
    ".panel{position:fixed;bottom:84px;right:20px;z-index:2147483001;width:380px;height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.25);overflow:hidden}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--bh-accent);color:#fff}" +
    "header h2{flex:1;margin:0;font-size:16px;font-weight:600}" +
    ".person{border:1px solid rgba(255,255,255,.7);border-radius:999px;background:transparent;color:#fff;font-size:13px;padding:3px 10px}" +
    ".person[hidden]{display:none}" +
    ".close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;padding:2px 8px;border-radius:6px}" +
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f9fafb}" +
    ".msg{max-width:85%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".user{align-self:flex-end;background:var(--bh-accent);color:#fff}" +
    ".assistant{align-self:flex-start;background:#fff;border:1px solid #e5e7eb}" +
    ".agent{align-self:flex-start;background:#f0fdf4;border:1px solid #bbf7d0;background:color-mix(in srgb,var(--bh-accent) 9%,#fff);border-color:color-mix(in srgb,var(--bh-accent) 30%,#fff)}" +
    ".who{display:flex;align-items:center;gap:4px;margin-bottom:2px;font-size:12px;font-weight:600;color:#374151}" +
    ".notice{align-self:center;max-width:92%;margin:2px 0;padding:5px 12px;border-radius:12px;background:#eef0f3;color:#374151;font-size:13px;text-align:center}" +
    ".notice button{display:block;margin:6px auto 2px;border:0;border-radius:8px;padding:6px 12px;background:var(--bh-accent);color:#fff;font-weight:600}" +
    ".sources{margin:6px 0 0;padding:6px 0 0 18px;border-top:1px solid #e5e7eb;font-size:13px;color:#4b5563;white-space:normal}" +
    ".sources a{color:var(--bh-accent)}" +
    ".feedback{display:flex;gap:6px;margin-top:6px}" +
    ".feedback button{display:inline-flex;border:1px solid #d1d5db;background:#fff;color:#4b5563;border-radius:6px;padding:4px 8px}" +
    ".feedback button[aria-pressed=true]{background:var(--bh-accent);border-color:var(--bh-accent);color:#fff}" +
    ".alert{margin:0;padding:8px 14px;background:#fef2f2;color:#991b1b;font-size:14px;border-top:1px solid #fecaca}" +
    ".alert:empty{display:none}" +
    "form.compose{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;min-height:40px;max-height:120px;padding:9px 10px;border:1px solid #d1d5db;border-radius:10px;color:#111827}" +
    ".send{border:0;border-radius:10px;padding:0 14px;background:var(--bh-accent);color:#fff;font-weight:600}" +
    ".send:disabled{opacity:.5;cursor:default}" +
    "textarea:disabled{background:#f3f4f6;cursor:not-allowed}" +
    "form.lead{display:grid;gap:6px;padding:10px 12px;background:#fff;border:1px solid #e5e7eb;border-radius:12px;align-self:stretch}" +
    "form.lead p{margin:0;font-weight:600}" +
    "form.lead input{padding:7px 9px;border:1px solid #d1d5db;border-radius:8px}" +
    "form.lead button{justify-self:start;border:0;border-radius:8px;padding:6px 12px;background:var(--bh-accent);color:#fff}" +
    ".page .panel{inset:0;width:100%;height:100%;border-radius:0;box-shadow:none}" +
    "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0}.open .launcher{display:none}}";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        node.setAttribute(name, attrs[name]);
      });
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Icons as SVG paths (Feather icons, MIT): no emoji font needed, and they take the button's colour.
  var THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
  var THUMB_DOWN = "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";
  var PERSON = "M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2M16 7a4 4 0 1 1-8 0 4 4 0 0 1 8 0z";
  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }

  function safeLink(url) {
    return /^https?:\/\//i.test(url || "");
  }

  function BotHeroChat() {
    return Reflect.construct(HTMLElement, [], BotHeroChat);
  }
  BotHeroChat.prototype = Object.create(HTMLElement.prototype);
  BotHeroChat.prototype.constructor = BotHeroChat;
  Object.setPrototypeOf(BotHeroChat, HTMLElement);

  BotHeroChat.prototype.connectedCallback = function () {
    if (this.shadowRoot) return;
    var root = this.attachShadow({ mode: "open" });
    var self = this;
    root.appendChild(el("style", null, CSS));
    var frame = el("div", { class: "frame" + (PAGE_MODE ? " page" : "") });
    this.frame = frame;
    this.launcher = el("button", { type: "button", class: "launcher", "aria-label": "Open chat", "aria-expanded": "false" }, "Chat with us");
    this.panel = el("section", { class: "panel", role: "dialog", "aria-label": "Chat" });
    this.panel.hidden = true;
    var header = el("header");
    this.heading = el("h2", null, "Chat");
    this.closeButton = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "×");
    // Shown when the bot hands conversations to a person (its public settings say so) and the bot has this one.
    this.personButton = el("button", { type: "button", class: "person" }, "Talk to a person");
    this.personButton.hidden = true;
    header.appendChild(this.heading);
    header.appendChild(this.personButton);
    if (!PAGE_MODE) header.appendChild(this.closeButton);
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    this.alert = el("p", { class: "alert", role: "alert" });
    var compose = el("form", { class: "compose" });
    this.input = el("textarea", { "aria-label": "Message", rows: "1", placeholder: "Type your message…", maxlength: "4000" });
    this.sendButton = el("button", { type: "submit", class: "send", "aria-label": "Send" }, "Send");
    compose.appendChild(this.input);
    compose.appendChild(this.sendButton);
    this.panel.appendChild(header);
    this.panel.appendChild(this.log);
    this.panel.appendChild(this.alert);
    this.panel.appendChild(compose);
    if (!PAGE_MODE) frame.appendChild(this.launcher);
    frame.appendChild(this.panel);
    root.appendChild(frame);

    this.launcher.addEventListener("click", function () {
      self.isOpen() ? self.close() : self.open();
    });
    this.closeButton.addEventListener("click", function () {
      self.close();
    });
    this.personButton.addEventListener("click", function () {
      self.send("I'd like to talk to a person.", { handoff: true });
    });
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !PAGE_MODE) {
        event.preventDefault();
        self.close();
      }
    });
    // Any use of the open chat counts as activity (see shouldFollow).
    this.panel.addEventListener("keydown", function () {
      self.active();
    });
    this.panel.addEventListener("pointerdown", function () {
      self.active();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && self.status !== "handoff") self.stopFollowing();
      else self.follow();
    });
    this.input.addEventListener("keydown", function (event) {
      // Enter sends; Shift+Enter is a new line (and Enter while composing an IME word is the IME's).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        self.send(self.input.value);
      }
    });
    compose.addEventListener("submit", function (event) {
      event.preventDefault();
      self.send(self.input.value);
    });
    this.busy = false;
    this.lastActive = Date.now();
    this.bot = null;
    this.leadOffered = false;
    this.resetConversation();
    this.loading = this.load();
    if (PAGE_MODE) this.open();
  };

  BotHeroChat.prototype.isOpen = function () {
    return !this.panel.hidden;
  };

  BotHeroChat.prototype.showError = function (error) {
    this.alert.textContent = error ? describe(error) : "";
  };

  // The bot's public settings, then (for a returning visitor) the conversation so far.
  BotHeroChat.prototype.load = function () {
    var self = this;
    return getJSON("/v1/bots/" + encodeURIComponent(BOT_ID) + "/public")
      .then(function (bot) {
        self.bot = bot;
        self.applyTheme(bot.widget || {});
        self.heading.textContent = bot.name;
        self.showPersonButton();
        if (bot.welcome_message) self.addMessage("assistant", bot.welcome_message, { welcome: true });
        return self.restore();
      })
      .then(
        function () {
          self.ready = true;
        },
        function (error) {
          self.failed = error;
          self.showError(error);
        }
      );
  };

  BotHeroChat.prototype.applyTheme = function (widget) {
    if (/^#[0-9a-fA-F]{6}$/.test(widget.color || "")) this.frame.style.setProperty("--bh-accent", widget.color);
    this.frame.classList.toggle("left", widget.position === "left");
    if (widget.launcher_text) this.launcher.textContent = widget.launcher_text;
  };

  BotHeroChat.prototype.restore = function () {
    var self = this;
    var conversationId = store(conversationKey());
    if (!conversationId) return Promise.resolve();
    this.conversationId = conversationId;
    return getJSON("/v1/conversations/" + encodeURIComponent(conversationId) + "/messages?order=asc&limit=100").then(
      function (page) {
        // Whether a person may have it: a handoff notice or an agent's message since the bot last answered,
        // or a message still unanswered. The stream's first event then says where it stands.
        var withPerson = false;
        (page.data || []).forEach(function (message) {
          if (message.role === "agent" || message.model === "handoff") withPerson = true;
          else if (message.role === "assistant") withPerson = false;
          if (message.role === "assistant" && message.status === "failed") return;
          self.addMessage(message.role, message.content, message);
        });
        var messages = page.data || [];
        self.follow(withPerson || (messages.length && messages[messages.length - 1].role === "user"));
      },
      function (error) {
        if (error.code !== "conversation_not_found") throw error;
        self.conversationId = null; // deleted by the site owner, or another visitor's: start afresh
        store(conversationKey(), null);
      }
    );
  };

  BotHeroChat.prototype.open = function () {
    this.panel.hidden = false;
    this.markUnread(false);
    this.frame.classList.add("open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.input.focus();
    this.active();
    this.dispatchEvent(new CustomEvent("bothero:open", { bubbles: true, composed: true }));
  };

  BotHeroChat.prototype.close = function () {
    if (PAGE_MODE) return;
    this.panel.hidden = true;
    this.frame.classList.remove("open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.focus();
    if (this.status !== "handoff") this.stopFollowing();
    this.dispatchEvent(new CustomEvent("bothero:close", { bubbles: true, composed: true }));
  };

  // One message bubble; an assistant's gets its sources and thumbs once it is complete.
  BotHeroChat.prototype.addMessage = function (role, text, details) {
    var bubble = el("div", { class: "msg " + role });
    if (details && details.id) this.shown[details.id] = true;
    if (role === "agent") {
      // A person of the business, not the bot: labelled, and styled apart from the bot's answers.
      var who = el("div", { class: "who" });
      who.appendChild(icon(PERSON));
      who.appendChild(document.createTextNode("Team"));
      bubble.appendChild(who);
    }
    var body = el("div", { class: "text" }, text || "");
    bubble.appendChild(body);
    this.log.appendChild(bubble);
    bubble.textNode = body;
    if (role === "assistant" && details && !details.welcome) this.finishMessage(bubble, details);
    this.log.scrollTop = this.log.scrollHeight;
    return bubble;
  };

  BotHeroChat.prototype.addSources = function (bubble, sources) {
    if (!sources || !sources.length || bubble.querySelector(".sources")) return;
    var list = el("ul", { class: "sources", "aria-label": "Sources" });
    var seen = {};
    sources.forEach(function (source) {
      var title = source.title || source.document_id;
      if (seen[title]) return;
      seen[title] = true;
      var item = el("li");
      if (safeLink(source.url || source.title)) {
        var link = el("a", { href: source.url || source.title, target: "_blank", rel: "noopener noreferrer" }, title);
        item.appendChild(link);
      } else {
        item.textContent = title;
      }
      if (source.snippet) item.title = source.snippet;
      list.appendChild(item);
    });
    bubble.appendChild(list);
  };

  BotHeroChat.prototype.finishMessage = function (bubble, message) {
    var self = this;
    this.addSources(bubble, message.sources);
    // The handoff notice is the bot's set words, not an answer to rate.
    if (!message.id || message.model === "handoff" || bubble.querySelector(".feedback")) return;
    var current = message.feedback && message.feedback.rating;
    var row = el("div", { class: "feedback", role: "group", "aria-label": "Was this helpful?" });
    [
      ["up", "Helpful", THUMB_UP],
      ["down", "Not helpful", THUMB_DOWN],
    ].forEach(function (choice) {
      var button = el("button", { type: "button", "aria-label": choice[1], "aria-pressed": String(current === choice[0]) });
      button.appendChild(icon(choice[2]));
      button.addEventListener("click", function () {
        var pressed = button.getAttribute("aria-pressed") === "true";
        var rating = pressed ? null : choice[0];
        request(
          "POST",
          "/v1/conversations/" + encodeURIComponent(self.conversationId) + "/messages/" + encodeURIComponent(message.id) + "/feedback",
          { rating: rating }
        ).then(
          function () {
            row.querySelectorAll("button").forEach(function (other) {
              other.setAttribute("aria-pressed", String(other === button && rating !== null));
            });
            self.showError(null);
          },
          function (error) {
            self.showError(error);
          }
        );
      });
      row.appendChild(button);
    });
    bubble.appendChild(row);
  };

  BotHeroChat.prototype.offerLeadForm = function () {
    var capture = this.bot && this.bot.lead_capture;
    if (!capture || !capture.enabled || this.leadOffered || !this.conversationId) return;
    this.leadOffered = true;
    var self = this;
    var labels = { name: "Name", email: "Email", phone: "Phone" };
    var form = el("form", { class: "lead", "aria-label": "Leave your contact details" });
    form.appendChild(el("p", null, "Leave your details and we'll get back to you."));
    (capture.fields || ["name", "email", "phone"]).forEach(function (field) {
      var input = el("input", {
        name: field,
        "aria-label": labels[field],
        placeholder: labels[field],
        type: field === "email" ? "email" : field === "phone" ? "tel" : "text",
        autocomplete: field === "phone" ? "tel" : field,
      });
      form.appendChild(input);
    });
    var submit = el("button", { type: "submit" }, "Send details");
    form.appendChild(submit);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      form.querySelectorAll("input").forEach(function (input) {
        if (input.value.trim()) body[input.name] = input.value.trim();
      });
      submit.disabled = true;
      request("POST", "/v1/conversations/" + encodeURIComponent(self.conversationId) + "/leads", body).then(
        function () {
          form.replaceWith(el("div", { class: "msg assistant" }, "Thanks! We'll be in touch."));
          self.showError(null);
        },
        function (error) {
          submit.disabled = false;
          self.showError(error);
        }
      );
    });
    this.log.appendChild(form);
    this.log.scrollTop = this.log.scrollHeight;
  };

  BotHeroChat.prototype.send = function (text, extra) {
    var self = this;
    text = (text || "").trim();
    if (!text || this.busy) return Promise.resolve();
    if (!this.isOpen()) this.open();
    if (this.status === "closed") this.startNewConversation(); // BotHero.ask() after the end: a new one
    this.busy = true;
    this.sendButton.disabled = true;
    this.showError(null);
    return this.loading.then(function () {
      if (self.failed) {
        // The settings could not be loaded: try again now (the network may be back).
        self.failed = null;
        self.loading = self.load();
        return self.loading.then(function () {
          if (self.failed) return done();
          return self.stream(text, extra).then(done);
        });
      }
      return self.stream(text, extra).then(done);
    });
    function done() {
      self.busy = false;
      self.sendButton.disabled = self.status === "closed";
    }
  };

  BotHeroChat.prototype.stream = function (text, extra) {
    var self = this;
    var mine = this.addMessage("user", text);
    this.input.value = "";
    var bubble = this.addMessage("assistant", "");
    bubble.setAttribute("aria-busy", "true");
    var answer = "";
    var handedOff = false;
    var body = { bot_id: BOT_ID, message: text, stream: true };
    if (this.conversationId) body.conversation_id = this.conversationId;
    if (extra && extra.handoff) body.handoff = true;
    return request("POST", "/v1/chat/completions", body)
      .then(function (response) {
        return readEvents(response, function (name, data) {
          if (name === "message.start") {
            self.conversationId = data.conversation_id;
            store(conversationKey(), data.conversation_id);
            self.follow(); // a new conversation: an agent may take it over
          } else if (name === "chat.handoff") {
            // A person has the conversation: the message is theirs to answer, and the bot says nothing.
            bubble.remove();
            handedOff = true;
            self.conversationId = data.conversation_id;
            store(conversationKey(), data.conversation_id);
            self.setStatus(data.conversation_status);
          } else if (name === "message.delta") {
            answer += data.delta;
            bubble.textNode.textContent = answer;
            self.log.scrollTop = self.log.scrollHeight;
          } else if (name === "message.completed") {
            bubble.textNode.textContent = data.content;
            self.finishMessage(bubble, data);
            self.log.scrollTop = self.log.scrollHeight; // its sources and thumbs in view too
            self.shown[data.id] = true;
            if (data.conversation_status) self.setStatus(data.conversation_status);
            self.dispatchEvent(new CustomEvent("bothero:answer", { bubbles: true, composed: true, detail: data }));
          } else if (name === "error") {
            throw new ApiError((data.error || {}).code, (data.error || {}).message);
          }
        });
      })
      .then(
        function () {
          bubble.removeAttribute("aria-busy");
          if (!handedOff) self.offerLeadForm();
        },
        function (error) {
          bubble.removeAttribute("aria-busy");
          if (!answer) bubble.remove();
          self.input.value = self.input.value || text; // give the text back, to send again
          if (error instanceof ApiError && error.code === "conversation_closed") {
            mine.remove(); // not stored: the text is back in the box, for a new conversation
            self.setStatus("closed");
            return;
          }
          self.showError(error instanceof ApiError ? error : new ApiError("offline"));
        }
      );
  };

  // --- a person answering (human handoff) ---------------------------------------------------------
  BotHeroChat.prototype.resetConversation = function () {
    this.stopFollowing();
    this.status = "bot";
    this.shown = {};
    this.followFailures = 0;
  };

  BotHeroChat.prototype.notice = function (text) {
    var note = el("div", { class: "notice" }, text);
    this.log.appendChild(note);
    this.log.scrollTop = this.log.scrollHeight;
    return note;
  };

  // Where the conversation stands: `bot`, `handoff` (a person answers: follow the conversation live) or
  // `closed` (no more messages: the box is disabled, and a new conversation can be started).
  BotHeroChat.prototype.setStatus = function (status) {
    var self = this;
    var before = this.status;
    if (!status || status === before) {
      if (status === "handoff") this.follow();
      return;
    }
    this.status = status;
    this.showPersonButton();
    if (status === "handoff") {
      this.notice("You're connected to our team. A person will reply here.");
      this.follow();
    } else if (status === "bot") {
      if (!this.shouldFollow()) this.stopFollowing();
      if (before === "handoff") this.notice("You're chatting with the assistant again.");
    } else if (status === "closed") {
      this.stopFollowing();
      var note = this.notice("This conversation has ended.");
      var again = el("button", { type: "button" }, "Start a new conversation");
      again.addEventListener("click", function () {
        self.startNewConversation();
        self.input.focus();
      });
      note.appendChild(again);
      this.log.scrollTop = this.log.scrollHeight;
      this.input.disabled = true;
      this.sendButton.disabled = true;
      this.input.setAttribute("placeholder", "This conversation has ended");
    }
  };

  BotHeroChat.prototype.showPersonButton = function () {
    this.personButton.hidden = !(this.bot && this.bot.handoff && this.bot.handoff.enabled && this.status === "bot");
  };

  BotHeroChat.prototype.startNewConversation = function () {
    this.resetConversation();
    this.showPersonButton();
    this.conversationId = null;
    store(conversationKey(), null);
    this.leadOffered = false;
    this.log.textContent = "";
    if (this.bot && this.bot.welcome_message) this.addMessage("assistant", this.bot.welcome_message, { welcome: true });
    this.input.disabled = false;
    this.sendButton.disabled = this.busy;
    this.input.setAttribute("placeholder", "Type your message…");
    this.showError(null);
  };

  BotHeroChat.prototype.stopFollowing = function () {
    if (this.following) this.following.abort();
    this.following = null;
    clearTimeout(this.reconnectTimer);
  };

  BotHeroChat.prototype.active = function () {
    this.lastActive = Date.now();
    this.follow(); // nothing when it already does, or should not
  };

  // Whether to follow the conversation live: while a person has it, and while the bot has it as long as the
  // chat is open on a visible page and was used in the last IDLE_MINUTES (an agent may take it over at any
  // time). A closed or hidden chat, or an idle one, holds no stream (the server caps them per visitor).
  var IDLE_MINUTES = 15;
  BotHeroChat.prototype.shouldFollow = function () {
    if (!this.conversationId || this.status === "closed") return false;
    if (this.status === "handoff") return true;
    return this.isOpen() && !document.hidden && Date.now() - this.lastActive < IDLE_MINUTES * 60000;
  };

  // Follow the conversation's events (agents' replies, handed over, resumed, closed) while shouldFollow() (or
  // once when `always`, for a reloaded conversation a person may have). The server ends each stream after a
  // few minutes, and the network may drop it: then it is opened again, and the history fills in what came
  // in between. fetch() rather than EventSource, which cannot send headers.
  BotHeroChat.prototype.follow = function (always) {
    var self = this;
    if (this.following || !this.conversationId || !(always || this.shouldFollow())) return;
    var controller = new AbortController();
    var conversationId = this.conversationId;
    var path = "/v1/conversations/" + encodeURIComponent(conversationId);
    this.following = controller;
    clearTimeout(this.reconnectTimer);
    request("GET", path + "/events", undefined, controller.signal)
      .then(function (response) {
        return readEvents(response, function (name, data) {
          if (name === "ready") {
            self.followFailures = 0;
            self.catchUp(path);
            self.setStatus(data.status);
          } else if (name === "message.created") {
            self.showAgentMessage(data);
          } else if (name.indexOf("conversation.") === 0) {
            self.setStatus(data.status);
          }
        });
      })
      .then(
        function () {
          return 0.5; // the server ended the stream (its longest life): open the next one
        },
        function (error) {
          if (error && error.code === "conversation_not_found") return null;
          self.followFailures += 1;
          var wait = Math.min(30, Math.pow(2, self.followFailures));
          return Math.max(wait, Number(error && error.retryAfter) || 0);
        }
      )
      .then(function (delay) {
        if (self.following !== controller) return; // stopped, or another conversation since
        self.following = null;
        if (delay === null || !self.shouldFollow() || self.conversationId !== conversationId) return;
        self.reconnectTimer = setTimeout(function () {
          self.follow();
        }, delay * 1000);
      });
  };

  // Agents' messages the visitor has not seen (sent while the stream was being opened again).
  BotHeroChat.prototype.catchUp = function (path) {
    var self = this;
    getJSON(path + "/messages?order=desc&limit=20").then(
      function (page) {
        (page.data || []).reverse().forEach(function (message) {
          self.showAgentMessage(message);
        });
      },
      function () {
        return null; // the stream goes on; the next reconnection tries again
      }
    );
  };

  // A person replied while the chat was closed: a dot on the launcher, and its label says so.
  BotHeroChat.prototype.markUnread = function (unread) {
    this.launcher.classList.toggle("unread", unread);
    this.launcher.setAttribute("aria-label", unread ? "Open chat (new message)" : "Open chat");
  };

  BotHeroChat.prototype.showAgentMessage = function (message) {
    if (message.role !== "agent" || this.shown[message.id]) return;
    this.addMessage("agent", message.content, message);
    if (!this.isOpen()) this.markUnread(true);
    this.dispatchEvent(new CustomEvent("bothero:agent-message", { bubbles: true, composed: true, detail: message }));
  };

  if (!window.customElements.get("bothero-chat")) window.customElements.define("bothero-chat", BotHeroChat);

  var widget = document.querySelector("bothero-chat") || document.createElement("bothero-chat");
  if (!widget.isConnected) (document.body || document.documentElement).appendChild(widget);

  window.BotHero = {
    version: VERSION,
    open: function () {
      widget.open();
    },
    close: function () {
      widget.close();
    },
    ask: function (text) {
      return widget.send(text);
    },
    // Identify a signed-in user (user_hash computed by your server); their own conversation continues.
    identify: function (userId, userHash) {
      identity = { userId: String(userId || ""), userHash: String(userHash || "") };
      widget.resetConversation();
      widget.input.disabled = false;
      widget.conversationId = store(conversationKey());
      widget.log.textContent = "";
      widget.leadOffered = false;
      widget.loading = widget.load();
      return widget.loading;
    },
    element: widget,
  };
  document.dispatchEvent(new CustomEvent("bothero:ready"));
})();
