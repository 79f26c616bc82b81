// Live camera scanning of a cart QR code, where the browser allows a camera: a kiosk
// served from localhost is a secure context; a tablet on plain HTTP is not, and falls
// back to the handheld scanner, or on a staff tablet to the photo form (decoded on the
// server). A code read here opens /scan like the scanner's: over a cart holding items,
// the server asks the shopper to merge or replace.
(function () {
  "use strict";

  var box = document.querySelector("[data-qr-camera]");
  if (!box) {
    return;
  }
  var video = box.querySelector("video");
  var canvas = box.querySelector("canvas");
  var startButton = box.querySelector(".camera-start");
  var status = box.querySelector(".camera-status");
  var stream = null;
  var MAX_WIDTH = 800; // decode a smaller frame: enough for a QR code held up close

  var canUseCamera =
    window.isSecureContext &&
    navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === "function" &&
    typeof window.jsQR === "function";
  if (!canUseCamera) {
    return; // the photo form and the scanner remain
  }

  function say(text) {
    status.textContent = text || "";
  }

  function stop() {
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    canvas.width = 0; // no camera frame left behind
    canvas.height = 0;
  }

  function found(text) {
    stop();
    say("…");
    if (window.kioskScan && window.kioskScan.isCard(text)) {
      window.kioskScan.post(box.dataset.scanUrl, text); // a card never goes in a URL
      return;
    }
    window.location.assign(box.dataset.scanUrl + "?code=" + encodeURIComponent(text));
  }

  function tick() {
    if (!stream) {
      return;
    }
    if (video.readyState >= 2 && video.videoWidth) {
      var scale = Math.min(1, MAX_WIDTH / video.videoWidth);
      var w = Math.round(video.videoWidth * scale);
      var h = Math.round(video.videoHeight * scale);
      canvas.width = w;
      canvas.height = h;
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, w, h);
      var code = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, {
        inversionAttempts: "attemptBoth",
      });
      if (code && code.data) {
        found(code.data);
        return;
      }
    }
    window.requestAnimationFrame(tick);
  }

  function start() {
    startButton.hidden = true;
    say(box.dataset.starting || "");
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        return video.play();
      })
      .then(function () {
        say(box.dataset.looking || "");
        window.requestAnimationFrame(tick);
      })
      .catch(function () {
        stop();
        video.hidden = true;
        startButton.hidden = false;
        say(box.dataset.denied || "");
      });
  }

  startButton.addEventListener("click", start);
  window.addEventListener("pagehide", stop);
  document.addEventListener("kiosk:forget", stop); // the idle reset (kiosk.js)
  start(); // a kiosk's own camera: start at once; a refusal leaves the button
})();
