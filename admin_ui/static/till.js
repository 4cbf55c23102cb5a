// The till: read a QR with the device camera (jsQR from npm), or let a handheld scanner type into the
// code field; show the PIN pad for bean cards; a PIN pad that works with touch and keyboard.
(function () {
  "use strict";
  var code = document.getElementById("code");
  var amount = document.getElementById("amount");
  var pinBlock = document.getElementById("pin-block");
  var pin = document.getElementById("pin");
  var video = document.getElementById("camera");
  var canvas = document.getElementById("frame");
  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var status = document.getElementById("scan-status");
  var stream = null;

  function typOf(text) {
    try {
      var head = text.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      while (head.length % 4) { head += "="; }
      return JSON.parse(atob(head)).typ || "";
    } catch (e) { return ""; }
  }

  function codeChanged() {
    var isCard = typOf(code.value.trim()) === "gb-card+jwt";
    pinBlock.classList.toggle("hidden", !isCard);
  }

  function accept(text) {
    code.value = text;
    codeChanged();
    status.textContent = status.getAttribute("data-ok") || "✓";
    stopCamera();
    amount.focus();
  }

  function stopCamera() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.classList.add("hidden");
    stop.classList.add("hidden");
    start.classList.remove("hidden");
  }

  function tick() {
    if (!stream) { return; }
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR ? window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" }) : null;
      if (found && found.data) { accept(found.data); return; }
    }
    window.setTimeout(tick, 120);
  }

  if (start) {
    start.addEventListener("click", function () {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { code.focus(); return; }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          video.classList.remove("hidden");
          stop.classList.remove("hidden");
          start.classList.add("hidden");
          return video.play();
        })
        .then(tick)
        .catch(function () { code.focus(); });
    });
    stop.addEventListener("click", stopCamera);
  }

  code.addEventListener("input", codeChanged);
  code.addEventListener("keydown", function (e) {
    // a handheld scanner ends with Enter: go on to the amount instead of sending an empty sale
    if (e.key === "Enter") { e.preventDefault(); codeChanged(); (pinBlock.classList.contains("hidden") ? amount : pin).focus(); }
  });
  document.querySelectorAll(".pinpad button").forEach(function (b) {
    b.addEventListener("click", function () {
      var d = b.getAttribute("data-digit");
      if (d === "clear") { pin.value = ""; }
      else if (d === "back") { pin.value = pin.value.slice(0, -1); }
      else if (pin.value.length < 8) { pin.value += d; }
      pin.focus();
    });
  });
  codeChanged();
})();
