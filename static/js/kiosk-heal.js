// The self-healing screen: a heartbeat for the screen's watchdog, and a reload of the
// page when the server comes back after an outage, a restart or an upgrade.
// No inline script anywhere (strict CSP): loaded from base.html like kiosk.js.
(function () {
  "use strict";

  var body = document.body;
  var BEAT_URL = "/kiosk/heartbeat";
  // Alive and rendering: the watchdog restarts the browser at ~45 s. 5 s unless the
  // server says otherwise (KIOSK_HEARTBEAT_SECONDS: tests beat faster).
  var BEAT_MS = (parseFloat(body.dataset.heartbeatSeconds) || 5) * 1000;
  var DOWN_MS = Math.min(2000, BEAT_MS); // while the server is away, look for it more often
  var TIMEOUT_MS = 4000; // a beat with no answer by then counts as a failure
  var STAFF_QUIET_MS = 60000; // a staff page with no idle reset: untouched this long

  var boot = null; // the server's boot id this page was served by (first answer)
  var failed = false; // a beat failed since the last answer
  var stale = false; // the server came back: reload as soon as nobody is mid-action
  var lastActivity = Date.now();

  // Exposed for the screen's tests and for a person at the devtools: never read by
  // the server.
  window.kioskHeal = {
    loadedAt: Date.now(),
    beats: 0,
    failures: 0,
    stale: function () {
      return stale;
    },
  };

  ["pointerdown", "keydown", "touchstart", "wheel", "scroll", "input"].forEach(function (name) {
    window.addEventListener(
      name,
      function () {
        lastActivity = Date.now();
      },
      { passive: true, capture: true }
    );
  });

  // Idle: nobody is mid-action. On a shopper's page (data-idle-seconds > 0) the page is
  // left alone: its own idle reset ("still there?", then the reset form) loads a fresh
  // page from the new server once the shopper has gone. With no shopper (the attract
  // screen: 0) the page reloads at once; a staff page, with no idle reset, once nobody
  // has touched it for a minute.
  function idle() {
    var overlay = document.getElementById("idle");
    if (overlay && !overlay.hidden) {
      return false;
    }
    if (body.classList.contains("staff")) {
      return Date.now() - lastActivity >= STAFF_QUIET_MS;
    }
    return (parseInt(body.dataset.idleSeconds || "0", 10) || 0) <= 0;
  }

  function reloadWhenIdle() {
    if (stale && idle()) {
      // A GET of the same address: never "resubmit the form?" for a page that came
      // from a POST (they redirect, so the address is a GET one).
      window.location.replace(window.location.href);
      return;
    }
  }

  function answered(data) {
    window.kioskHeal.beats += 1;
    var serverBoot = data && typeof data.boot === "string" ? data.boot : null;
    if (boot === null) {
      boot = serverBoot;
    }
    // Back after a failure, or a new server process (restarted between two beats).
    if (failed || (serverBoot !== null && serverBoot !== boot)) {
      stale = true;
    }
    failed = false;
  }

  function beat() {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller
      ? setTimeout(function () {
          controller.abort();
        }, TIMEOUT_MS)
      : null;
    var done = false;
    function next(ok) {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(timer);
      if (!ok) {
        failed = true;
        window.kioskHeal.failures += 1;
      }
      reloadWhenIdle();
      setTimeout(beat, failed ? DOWN_MS : BEAT_MS);
    }
    try {
      fetch(BEAT_URL, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          if (!response.ok) {
            // A server that answers, but not this (an error page, a proxy): wait on.
            throw new Error("heartbeat " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          answered(data);
          next(true);
        })
        .catch(function () {
          next(false);
        });
    } catch (e) {
      next(false);
    }
  }

  // The stale page waits for the shopper to leave: look again every second.
  setInterval(reloadWhenIdle, 1000);
  beat();
})();
