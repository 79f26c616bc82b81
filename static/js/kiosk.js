// Kiosk behaviour that needs the browser: barcode-scanner bursts and the idle reset.
// No inline script anywhere (strict CSP): everything is wired from data attributes.
(function () {
  "use strict";

  var body = document.body;

  // --- Barcode scanner -------------------------------------------------------
  // A scanner "types" its code much faster than any person, then presses Enter.
  // Keys closer together than SCAN_GAP_MS form a burst; a burst of at least
  // SCAN_MIN_CHARS followed by Enter is a scan, wherever the focus is.
  var SCAN_GAP_MS = 50;
  var SCAN_MIN_CHARS = 6;
  var burst = "";
  var lastKeyAt = 0;

  function openScan(code) {
    var status = document.getElementById("scan-status");
    if (status) {
      status.textContent = "… " + code;
      status.classList.add("is-on");
    }
    var url = (body.dataset.scanUrl || "/scan") + "?code=" + encodeURIComponent(code);
    window.location.assign(url);
  }

  document.addEventListener(
    "keydown",
    function (event) {
      var now = performance.now();
      if (event.key === "Enter") {
        var isScan = burst.length >= SCAN_MIN_CHARS && now - lastKeyAt < SCAN_GAP_MS * 2;
        var code = burst;
        burst = "";
        if (isScan) {
          event.preventDefault();
          event.stopPropagation();
          openScan(code);
        }
        return;
      }
      if (event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      burst = now - lastKeyAt > SCAN_GAP_MS ? event.key : burst + event.key;
      lastKeyAt = now;
    },
    true
  );

  // --- Idle reset ------------------------------------------------------------
  // Untouched for data-idle-seconds: ask "still there?" for data-countdown-seconds,
  // then post the reset form, which clears the shopper's session server-side.
  var idleSeconds = parseInt(body.dataset.idleSeconds || "0", 10);
  var countdownSeconds = parseInt(body.dataset.countdownSeconds || "10", 10);
  var overlay = document.getElementById("idle");
  var countEl = document.getElementById("idle-count");
  var resetForm = document.getElementById("idle-reset");
  var stayButton = document.getElementById("idle-stay");
  var idleTimer = null;
  var tickTimer = null;
  var remaining = 0;

  function hideOverlay() {
    if (tickTimer) {
      clearInterval(tickTimer);
      tickTimer = null;
    }
    if (overlay) {
      overlay.hidden = true;
    }
  }

  function tick() {
    remaining -= 1;
    if (countEl) {
      countEl.textContent = String(Math.max(remaining, 0));
    }
    if (remaining <= 0) {
      clearInterval(tickTimer);
      tickTimer = null;
      if (resetForm) {
        resetForm.submit();
      }
    }
  }

  function showOverlay() {
    remaining = countdownSeconds;
    if (countEl) {
      countEl.textContent = String(remaining);
    }
    overlay.hidden = false;
    if (stayButton) {
      stayButton.focus();
    }
    tickTimer = setInterval(tick, 1000);
  }

  function activity() {
    if (tickTimer) {
      return; // while the question is shown, only the buttons answer it
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(showOverlay, idleSeconds * 1000);
  }

  if (idleSeconds > 0 && overlay) {
    ["pointerdown", "keydown", "touchstart", "wheel", "scroll"].forEach(function (name) {
      window.addEventListener(name, activity, { passive: true, capture: true });
    });
    if (stayButton) {
      stayButton.addEventListener("click", function () {
        hideOverlay();
        activity();
      });
    }
    activity();
  }
})();
