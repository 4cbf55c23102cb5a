// The till, like a payment counter: the camera stays on and reads code after code (jsQR from npm), or a
// handheld scanner types into the code field; each code is looked up first (masked name, available beans),
// the cashier taps a quick amount or types one and confirms; the sale goes through fetch, a 收款成功 screen
// shows (and, if switched on, says) what was received, and the till is ready for the next customer without
// the camera ever stopping. Without this script every step is a plain form (see admin_ui/till.py).
(function () {
  "use strict";
  var form = document.getElementById("sale");
  if (!form) { return; }
  document.documentElement.classList.add("js");
  var $ = function (id) { return document.getElementById(id); };
  var code = $("code"), amount = $("amount"), pin = $("pin"), pinBlock = $("pin-block");
  var video = $("camera"), canvas = $("frame"), start = $("camera-start"), stop = $("camera-stop");
  var status = $("scan-status"), errorBox = $("till-error"), confirmButton = $("redeem");
  var customer = $("customer"), paid = $("paid"), speak = $("speak");
  var stream = null, busy = false, previewed = "", ignored = {}, heldTimer = null;
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var confirmLabel = form.getAttribute("data-confirm-label") || "";
  var plainLabel = confirmButton.textContent;
  var store = { get: function (k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } },
                set: function (k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* private mode */ } } };

  // --- small helpers -----------------------------------------------------------------------------
  function typOf(text) {
    try {
      var head = text.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      while (head.length % 4) { head += "="; }
      return JSON.parse(atob(head)).typ || "";
    } catch (e) { return ""; }
  }
  function isCard() { return typOf(code.value.trim()) === "gb-card+jwt"; }
  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.classList.toggle("hidden", !text);
  }
  function say(text) {
    if (!speak || !speak.checked || !window.speechSynthesis || !text) { return; }
    try {
      window.speechSynthesis.cancel();
      var u = new window.SpeechSynthesisUtterance(text);
      u.lang = document.documentElement.lang === "en" ? "en-US" : "zh-CN";
      window.speechSynthesis.speak(u);
    } catch (e) { /* no voice: the screen says it */ }
  }
  function post(url, data) {
    return window.fetch(url, { method: "POST", body: data, credentials: "same-origin",
                               headers: { "Accept": "application/json", "X-CSRF-Token": csrf } })
      .then(function (r) { return r.json().then(function (body) { body.httpStatus = r.status; return body; }); });
  }

  // --- the amount and the confirm button ----------------------------------------------------------
  function itemsTotal() {
    var total = 0, any = false;
    form.querySelectorAll("input.qty").forEach(function (q) {
      var n = parseInt(q.value, 10);
      if (n > 0) { any = true; total += n * parseInt(q.getAttribute("data-price"), 10); }
    });
    return any ? total : null;
  }
  function refreshConfirm() {
    var items = itemsTotal();
    var n = items !== null ? items : parseInt(amount.value, 10);
    confirmButton.textContent = n > 0 && confirmLabel ? confirmLabel.replace("{n}", String(n)) : plainLabel;
    var beans = $("customer-beans");
    var have = beans ? parseInt(beans.getAttribute("data-value"), 10) : NaN;
    $("customer-short").classList.toggle("hidden", !(n > 0 && !isNaN(have) && n > have));
  }

  // --- who is paying ------------------------------------------------------------------------------
  function showCustomer(seen) {
    $("customer-name").textContent = seen.customer || "—";
    var beans = $("customer-beans");
    beans.textContent = seen.available === null ? "" : Number(seen.available).toLocaleString();
    beans.setAttribute("data-value", seen.available === null ? "" : String(seen.available));
    $("customer-wallet").classList.toggle("hidden", seen.pin_required);
    $("customer-card").classList.toggle("hidden", !seen.pin_required);
    pinBlock.classList.toggle("hidden", !seen.pin_required);
    form.classList.toggle("pin-mode", seen.pin_required);
    customer.classList.remove("hidden");
    refreshConfirm();
  }
  function clearCustomer() {
    customer.classList.add("hidden");
    $("customer-beans").setAttribute("data-value", "");
    pinBlock.classList.add("hidden");
    form.classList.remove("pin-mode");
    previewed = "";
  }
  function lookUp(text) {
    text = (text || "").trim();
    if (!text || text === previewed) { return; }
    previewed = text;
    code.value = text;
    showError("");
    status.textContent = form.getAttribute("data-scanned");
    var data = new FormData();
    data.append("merchant_id", form.querySelector("input[name=merchant_id]").value);
    data.append("code", text);
    post(form.getAttribute("data-preview"), data).then(function (seen) {
      if (code.value.trim() !== text) { return; }  // another code came meanwhile
      if (!seen.ok) {
        ignored[text] = Date.now();
        code.value = "";
        clearCustomer();
        status.textContent = "";
        showError(seen.error);
        return;
      }
      status.textContent = "";
      showCustomer(seen);
      amount.focus();
    }).catch(function () { previewed = ""; showError(form.getAttribute("data-offline")); });
  }

  // --- the camera, on from customer to customer ------------------------------------------------------
  function scanning() { return stream && !busy && paid.classList.contains("hidden") && !code.value.trim(); }
  function tick() {
    if (!stream) { return; }
    if (video.readyState >= 2 && video.videoWidth && (scanning() || !paid.classList.contains("hidden"))) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR ? window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" }) : null;
      if (found && found.data && !(ignored[found.data] && Date.now() - ignored[found.data] < 8000)) {
        if (!paid.classList.contains("hidden")) { nextCustomer(); }  // the next customer's code ends the last sale's screen
        lookUp(found.data);
      }
    }
    window.setTimeout(tick, 150);
  }
  function cameraOn() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { code.focus(); return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.classList.remove("hidden");
        stop.classList.remove("hidden");
        start.classList.add("hidden");
        status.textContent = form.getAttribute("data-ready");
        store.set("gb.till.camera", "on");
        return video.play();
      })
      .then(tick)
      .catch(function () { code.focus(); });
  }
  function cameraOff() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.classList.add("hidden");
    stop.classList.add("hidden");
    start.classList.remove("hidden");
    status.textContent = "";
    store.set("gb.till.camera", "off");
  }
  start.addEventListener("click", cameraOn);
  stop.addEventListener("click", cameraOff);

  // --- the sale -----------------------------------------------------------------------------------
  function resetSale(saleKey) {
    if (saleKey) { $("sale_key").value = saleKey; }
    code.value = "";
    amount.value = "";
    if (pin) { pin.value = ""; }
    form.querySelectorAll("input.qty").forEach(function (q) { q.value = ""; });
    clearCustomer();
    showError("");
    refreshConfirm();
  }
  function showPaid(body, state) {
    var box = paid;
    box.classList.toggle("waiting", state === "waiting");
    box.classList.toggle("declined", state === "declined");
    $("paid-title").textContent = box.getAttribute("data-" + state);
    $("paid-mark").textContent = state === "paid" ? "✓" : state === "waiting" ? "…" : "✕";
    $("paid-amount").textContent = Number(body.receipt.amount).toLocaleString();
    $("paid-customer").textContent = body.customer ? box.getAttribute("data-customer").replace("{name}", body.customer) : "";
    $("paid-sale").textContent = box.getAttribute("data-sale").replace("{id}", String(body.receipt.redemption_id));
    box.classList.remove("hidden");
    $("paid-next").focus();
    if (state === "paid") { say(body.spoken); }
  }
  function followHeld(body) {
    window.clearTimeout(heldTimer);
    heldTimer = window.setTimeout(function () {
      window.fetch(body.status_url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (now) {
          if (paid.classList.contains("hidden")) { return; }
          if (now.status === "completed") { showPaid(body, "paid"); }
          else if (now.status === "awaiting_confirmation") { followHeld(body); }
          else { showPaid(body, "declined"); }
        })
        .catch(function () { followHeld(body); });
    }, 2000);
  }
  function nextCustomer() {
    window.clearTimeout(heldTimer);
    paid.classList.add("hidden");
    code.focus();
  }
  $("paid-next").addEventListener("click", nextCustomer);
  paid.addEventListener("keydown", function (e) { if (e.key === "Escape") { nextCustomer(); } });

  form.addEventListener("submit", function (e) {
    if (e.submitter && e.submitter.id === "preview-button") { return; }
    e.preventDefault();
    if (busy) { return; }  // a double tap sends one sale (the sale key makes a resend safe anyway)
    busy = true;
    confirmButton.disabled = true;
    showError("");
    post(form.getAttribute("action"), new FormData(form)).then(function (body) {
      if (!body.ok) {
        showError(body.error);
        if (!body.keep_code) { resetSale(null); }
        else if (body.needs_pin) { pinBlock.classList.remove("hidden"); pin.value = ""; pin.focus(); }
        else { amount.select(); amount.focus(); }
        return;
      }
      ignored[code.value.trim()] = Date.now();
      document.getElementById("till-recent").innerHTML = body.recent_html;
      var held = body.receipt.status === "awaiting_confirmation";
      resetSale(body.sale_key);
      showPaid(body, held ? "waiting" : "paid");
      if (held) { followHeld(body); }
    }).catch(function () {
      showError(form.getAttribute("data-offline"));
    }).then(function () {
      busy = false;
      confirmButton.disabled = false;
    });
  });

  // --- the fields ---------------------------------------------------------------------------------
  code.addEventListener("keydown", function (e) {
    // a handheld scanner ends with Enter: look the customer up and go on to the amount
    if (e.key === "Enter") { e.preventDefault(); lookUp(code.value); amount.focus(); }
  });
  code.addEventListener("change", function () { lookUp(code.value); });
  code.addEventListener("input", function () {
    if (!code.value.trim()) { clearCustomer(); }
    pinBlock.classList.toggle("hidden", !isCard());
  });
  amount.addEventListener("input", refreshConfirm);
  amount.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") { return; }
    e.preventDefault();
    if (isCard() && !pin.value) { pin.focus(); return; }
    form.requestSubmit(confirmButton);
  });
  form.querySelectorAll("input.qty").forEach(function (q) { q.addEventListener("input", refreshConfirm); });
  var quick = $("quick");
  quick.classList.remove("hidden");
  quick.querySelectorAll("button").forEach(function (b) {
    b.addEventListener("click", function () {
      amount.value = b.getAttribute("data-amount");
      refreshConfirm();
      confirmButton.focus();
    });
  });
  $("next-customer").addEventListener("click", function (e) { e.preventDefault(); resetSale(null); code.focus(); });
  document.querySelectorAll(".pinpad button").forEach(function (b) {
    b.addEventListener("click", function () {
      var d = b.getAttribute("data-digit");
      if (d === "clear") { pin.value = ""; }
      else if (d === "back") { pin.value = pin.value.slice(0, -1); }
      else if (pin.value.length < 8) { pin.value += d; }
      pin.focus();
    });
  });
  pin.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); form.requestSubmit(confirmButton); }
  });

  // the spoken confirmation: on unless the cashier switched it off on this device
  if (speak) {
    $("speak-toggle").classList.remove("hidden");
    speak.checked = store.get("gb.till.speak") !== "off";
    speak.addEventListener("change", function () { store.set("gb.till.speak", speak.checked ? "on" : "off"); });
  }
  if (store.get("gb.till.camera") === "on") { cameraOn(); }
  if (code.value.trim() && customer.classList.contains("hidden")) { lookUp(code.value); }
  else if (code.value.trim()) { previewed = code.value.trim(); }
  refreshConfirm();
})();
