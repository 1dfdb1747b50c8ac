// Shared workstations: warn before the server ends an idle session, then leave the page for the
// login page so no patient data stays on screen. The server enforces the timeout on its own
// (backoffice.middleware.SessionSecurityMiddleware); this script only makes it visible.
//
// - <body data-session-*> carries the limits and the seconds left when the page was rendered;
//   responses carry X-Session-Remaining, which htmx responses keep in sync.
// - GET /session/status/ reports the time left without counting as activity (another tab may
//   have kept the session alive); POST /session/keepalive/ counts as activity.
// - A click or key press counts as activity: at most one keepalive a minute tells the server.
// - htmx requests that a real click or key press triggered carry X-User-Activity: 1; background
//   refreshes (hx-trigger="every 15s") don't, so they never keep an unattended screen open.
(function () {
  "use strict";
  var body = document.body;
  var data = body.dataset;
  var dialogEl = document.getElementById("session-timeout");
  if (!data.sessionIdleSeconds || !dialogEl || !window.bootstrap || !window.fetch) {
    return;
  }

  var WARNING_MS = Number(data.sessionWarningSeconds) * 1000;
  var ACTIVITY_PING_MS = 60 * 1000;
  var countdownEls = dialogEl.querySelectorAll("[data-session-countdown]");
  var stayButton = dialogEl.querySelector("[data-session-stay]");
  var modal = new window.bootstrap.Modal(dialogEl, { backdrop: "static", keyboard: false });
  var originalTitle = document.title;

  var deadline = Date.now() + Number(data.sessionRemainingSeconds) * 1000;
  // "idle" (activity can postpone it) or "absolute" (the session's fixed lifetime; nothing can).
  var limit = data.sessionLimit || "idle";
  var checkTimer = null;
  var ticker = null;
  var warning = false;
  var leaving = false;
  var lastPing = Date.now();
  var pingTimer = null;
  var focusBeforeWarning = null;

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function describe(seconds) {
    if (seconds >= 60 && seconds % 60 === 0) {
      var minutes = seconds / 60;
      return minutes + (minutes === 1 ? " minute" : " minutes");
    }
    return seconds + (seconds === 1 ? " second" : " seconds");
  }

  function leave() {
    if (leaving) {
      return;
    }
    leaving = true;
    clearTimeout(checkTimer);
    clearTimeout(pingTimer);
    clearInterval(ticker);
    // Hide the page at once; the navigation may take a moment on a slow network.
    Array.prototype.forEach.call(body.children, function (el) {
      el.hidden = true;
    });
    window.location.replace(data.sessionExpiredUrl);
  }

  // Ask the server; a redirect (to the login page) or an error means the session is over. The
  // redirect is not followed: the login page it leads to would show, and use up, the message
  // saying why the user was signed out, before the browser itself gets there.
  function request(method, url) {
    var headers = { Accept: "application/json" };
    if (method === "POST") {
      headers["X-CSRFToken"] = csrfToken();
    }
    return fetch(url, { method: method, headers: headers, credentials: "same-origin", redirect: "manual" }).then(
      function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") === -1) {
          throw new Error("session over");
        }
        return response.json();
      }
    );
  }

  function sync(seconds, newLimit) {
    if (leaving || typeof seconds !== "number" || isNaN(seconds)) {
      return;
    }
    if (newLimit === "idle" || newLimit === "absolute") {
      limit = newLimit;
      showLimit();
    }
    if (seconds <= 0) {
      leave();
      return;
    }
    deadline = Date.now() + seconds * 1000;
    clearTimeout(checkTimer);
    if (seconds * 1000 > WARNING_MS) {
      if (warning) {
        hideWarning();
      }
      checkTimer = setTimeout(check, deadline - WARNING_MS - Date.now());
    } else {
      if (!warning) {
        showWarning();
      }
      // A little after the deadline, so the server has certainly ended the session.
      checkTimer = setTimeout(check, deadline - Date.now() + 500);
    }
  }

  function check() {
    request("GET", data.sessionStatusUrl).then(
      function (json) {
        sync(json.remaining, json.limit);
      },
      function () {
        leave();
      }
    );
  }

  function keepAlive() {
    lastPing = Date.now();
    clearTimeout(pingTimer);
    pingTimer = null;
    return request("POST", data.sessionKeepaliveUrl).then(
      function (json) {
        sync(json.remaining, json.limit);
      },
      function () {
        leave();
      }
    );
  }

  function updateCountdown() {
    var text = describe(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
    Array.prototype.forEach.call(countdownEls, function (el) {
      el.textContent = text;
    });
  }

  // Near the end of the session's lifetime, staying signed in is not on offer.
  function showLimit() {
    Array.prototype.forEach.call(dialogEl.querySelectorAll("[data-session-limit]"), function (el) {
      el.hidden = el.getAttribute("data-session-limit") !== limit;
    });
    stayButton.hidden = limit === "absolute";
  }

  function showWarning() {
    warning = true;
    focusBeforeWarning = document.activeElement;
    updateCountdown();
    ticker = setInterval(updateCountdown, 1000);
    document.title = "Signing out soon · " + originalTitle;
    modal.show();
  }

  function hideWarning() {
    warning = false;
    clearInterval(ticker);
    document.title = originalTitle;
    modal.hide();
  }

  dialogEl.addEventListener("shown.bs.modal", function () {
    // Bootstrap marks every modal role="dialog"; this one demands a response.
    dialogEl.setAttribute("role", "alertdialog");
    if (stayButton.hidden) {
      dialogEl.querySelector("button").focus();
    } else {
      stayButton.focus();
    }
  });
  dialogEl.addEventListener("hidden.bs.modal", function () {
    if (focusBeforeWarning && typeof focusBeforeWarning.focus === "function") {
      focusBeforeWarning.focus();
    }
  });
  stayButton.addEventListener("click", keepAlive);
  dialogEl.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && limit === "idle") {
      event.preventDefault();
      keepAlive();
    }
  });

  // Work on the page (typing a note, ticking boxes) may send nothing to the server for minutes.
  function noteActivity() {
    if (warning || leaving) {
      return;
    }
    var wait = lastPing + ACTIVITY_PING_MS - Date.now();
    if (wait <= 0) {
      keepAlive();
    } else if (pingTimer === null) {
      pingTimer = setTimeout(keepAlive, wait);
    }
  }
  document.addEventListener("keydown", noteActivity, { passive: true });
  document.addEventListener("click", noteActivity, { passive: true });

  document.addEventListener("htmx:configRequest", function (event) {
    var trigger = event.detail.triggeringEvent;
    if (trigger && trigger.isTrusted) {
      event.detail.headers["X-User-Activity"] = "1";
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var header = xhr && xhr.getResponseHeader("X-Session-Remaining");
    if (header !== null && header !== undefined && header !== "") {
      sync(Number(header));
    }
  });

  showLimit();
  sync(Number(data.sessionRemainingSeconds));
})();
