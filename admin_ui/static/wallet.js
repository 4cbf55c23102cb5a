// The wallet app (docs/ui.md, "The wallet app"): tabs, the pay code (QR, barcode, short number, countdown, tap to
// enlarge with the screen kept awake), the balance shown on a tap, 支付成功 when a till takes a payment, the
// service worker, and offline codes signed on this phone with its own key (WebCrypto Ed25519, or ECDSA P-256 where
// the browser lacks Ed25519; the private key is not extractable and never leaves IndexedDB).
(function () {
  "use strict";
  var app = document.getElementById("app");
  if (!app) { return; }
  var shell = app.getAttribute("data-shell") === "1";
  var $ = function (id) { return document.getElementById(id); };
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var MARGIN = 10; // a new code this many seconds before the old one expires
  var DB = "goldbean-wallet", STORE = "keys"; // one record per user of this phone: "user:<id>"

  // --- 长辈模式 in the offline shell (pages get the class from the server) -----------------------------------
  if (shell) {
    var last = localStorage.getItem("gb.lastUser");
    var elder = (document.cookie.match(/(?:^|; )gb_elder=([^;]*)/) || [])[1] || "";
    if (last && elder.split(".").indexOf(last) >= 0) { document.documentElement.classList.add("elder"); }
  } else {
    localStorage.setItem("gb.lastUser", app.getAttribute("data-user"));
    // signing out on a shared phone: the offline shell no longer shows this person's code
    var out = $("sign-out");
    if (out) { out.addEventListener("click", function () { localStorage.removeItem("gb.lastUser"); }); }
  }

  // --- tabs -----------------------------------------------------------------------------------------------
  var tabs = document.querySelectorAll(".tabbar a[data-tab]");
  var stale = false; // the balance changed since this page was drawn: the other tabs are loaded afresh
  function showTab(name, push) {
    var section = $("tab-" + name);
    if (!section) { return false; }
    Array.prototype.forEach.call(document.querySelectorAll(".wallet-app > .tab"), function (s) { s.hidden = s !== section; });
    Array.prototype.forEach.call(tabs, function (a) {
      if (a.getAttribute("data-tab") === name) { a.setAttribute("aria-current", "page"); } else { a.removeAttribute("aria-current"); }
    });
    app.setAttribute("data-tab", name);
    if (push) { history.replaceState(null, "", name === "pay" ? app.getAttribute("data-page") : "?tab=" + name); }
    return true;
  }
  Array.prototype.forEach.call(tabs, function (a) {
    a.addEventListener("click", function (e) {
      if (stale && a.getAttribute("data-tab") !== "pay") { return; } // the link loads the tab with today's figures
      if (showTab(a.getAttribute("data-tab"), true)) { e.preventDefault(); window.scrollTo(0, 0); }
    });
  });

  // --- a refused form: its first wrong field gets the focus, the sentence beside it is read with it -------
  var wrong = document.querySelector("[data-first-error]");
  if (wrong) {
    var toWrong = function () { wrong.focus(); wrong.scrollIntoView({ block: "center" }); };
    toWrong();
    window.addEventListener("load", function () { setTimeout(toWrong, 0); }); // after the browser went to the #form
  }

  // --- the balance, hidden until tapped ---------------------------------------------------------------------
  var bal = $("balance"), balNum = $("balance-number"), balShow = $("balance-show");
  var fmt = new Intl.NumberFormat(document.documentElement.lang || "zh-CN");
  if (balShow) {
    balShow.addEventListener("click", function () {
      var shown = function (on) {
        balNum.hidden = !on; $("balance-unit").hidden = !on; balShow.hidden = on;
        balShow.setAttribute("aria-expanded", String(on));
      };
      shown(true);
      setTimeout(function () { shown(false); }, 15000); // hidden again before the phone is handed over
    });
  }
  function setBalance(n) {
    if (!bal) { return; }
    if (String(n) !== bal.getAttribute("data-value")) { stale = true; }
    bal.setAttribute("data-value", String(n));
    balNum.textContent = fmt.format(n);
  }

  // --- the code on screen -------------------------------------------------------------------------------------
  var img = $("qr"), canvas = $("qr-offline"), expiredBox = $("qr-expired"), countdown = $("countdown");
  var numberBox = $("number-box"), numberText = $("pay-number"), offlineNote = $("offline-note");
  var left = img ? (parseInt(img.getAttribute("data-expires-in"), 10) || 0) : 0;
  var mode = img && img.getAttribute("data-code") ? "online" : "none"; // online, offline or none (nothing valid)

  function groups(n) { return n.replace(/(\d{4})(?=\d)/g, "$1 "); }

  function drawBarcode(svg, number, height) {
    if (!svg || !window.JsBarcode || !number) { return; }
    try {
      window.JsBarcode(svg, number, { format: "CODE128C", displayValue: false, margin: 0, height: height, width: 2 });
    } catch (e) { /* the number stays readable */ }
  }

  function showNothing(text) {
    // an expired code is never left on screen
    mode = "none";
    if (img) { img.hidden = true; img.removeAttribute("src"); img.setAttribute("data-code", ""); }
    if (canvas) { canvas.hidden = true; canvas.removeAttribute("data-code"); }
    if (numberBox) { numberBox.hidden = true; }
    if (expiredBox) { expiredBox.hidden = false; if (text) { expiredBox.textContent = text; } }
    if (countdown) { countdown.parentNode.hidden = true; }
    closeZoom();
  }

  function showOnline(body) {
    mode = "online";
    img.src = "data:image/png;base64," + body.qr_png;
    img.setAttribute("data-code", body.code);
    img.hidden = false; canvas.hidden = true; expiredBox.hidden = true;
    offlineNote.hidden = true;
    numberBox.hidden = !body.number;
    numberText.textContent = groups(body.number || "");
    numberText.setAttribute("data-number", body.number || "");
    drawBarcode($("barcode"), body.number, 52);
    left = body.expires_in;
    countdown.textContent = String(Math.max(left - MARGIN, 0));
    countdown.parentNode.hidden = false;
    refreshZoom();
  }

  var busy = false;
  function refresh() {
    if (busy) { return; }
    if (shell || !navigator.onLine) { goOffline(); return; }
    busy = true;
    fetch(app.getAttribute("data-code-url"), {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) {
      if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (body) {
      if (body) { showOnline(body); }
    }).catch(function () {
      if (!navigator.onLine || left <= 0) { goOffline(); } else { left = Math.max(left, 3); }
    }).then(function () { busy = false; });
  }


  // --- tap to enlarge, with the screen kept awake ------------------------------------------------------------
  var zoom = $("zoom"), wakeLock = null;
  function refreshZoom() {
    if (!zoom || zoom.hidden) { return; }
    var holder = $("zoom-code");
    holder.textContent = "";
    if (mode === "online") {
      var big = document.createElement("img");
      big.src = img.src; big.alt = img.alt;
      holder.appendChild(big);
      drawBarcode($("zoom-barcode"), numberText.getAttribute("data-number"), 90);
      $("zoom-barcode").style.display = "";
      $("zoom-number").textContent = numberText.textContent;
    } else if (mode === "offline") {
      var copy = document.createElement("canvas");
      var modules = canvas.width / (parseInt(canvas.style.width, 10) || canvas.width); // device px per CSS px
      var scale = Math.max(1, Math.floor(Math.min(window.innerWidth * 0.92, window.innerHeight * 0.7) / (canvas.width / modules)));
      copy.width = canvas.width * scale; copy.height = canvas.height * scale;
      copy.style.width = (canvas.width / modules * scale) + "px"; copy.style.height = copy.style.width;
      var cctx = copy.getContext("2d");
      cctx.imageSmoothingEnabled = false;
      cctx.drawImage(canvas, 0, 0, copy.width, copy.height);
      copy.setAttribute("role", "img"); copy.setAttribute("aria-label", canvas.getAttribute("aria-label"));
      holder.appendChild(copy);
      $("zoom-barcode").style.display = "none";
      $("zoom-number").textContent = "";
    }
  }
  function openZoom() {
    if (!zoom || mode === "none") { return; }
    zoom.hidden = false;
    refreshZoom();
    $("zoom-close").focus();
    if (navigator.wakeLock && navigator.wakeLock.request) {
      navigator.wakeLock.request("screen").then(function (lock) {
        wakeLock = lock; $("zoom-awake").hidden = false;
      }).catch(function () { /* not granted: the code still shows */ });
    }
  }
  function closeZoom() {
    if (!zoom || zoom.hidden) { return; }
    zoom.hidden = true;
    if (wakeLock) { wakeLock.release().catch(function () {}); wakeLock = null; }
    $("zoom-awake").hidden = true;
    if ($("qr-zoom")) { $("qr-zoom").focus(); }
  }
  if ($("qr-zoom")) { $("qr-zoom").addEventListener("click", openZoom); }
  if ($("zoom-close")) { $("zoom-close").addEventListener("click", closeZoom); }
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeZoom(); closePaid(); } });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && zoom && !zoom.hidden && navigator.wakeLock && !wakeLock) {
      navigator.wakeLock.request("screen").then(function (lock) { wakeLock = lock; }).catch(function () {});
    }
  });

  // --- the phone's own key and its offline codes -----------------------------------------------------------------
  function idb(mode2, fn) {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var open = indexedDB.open(DB, 1);
      open.onupgradeneeded = function () { open.result.createObjectStore(STORE); };
      open.onerror = function () { reject(open.error); };
      open.onsuccess = function () {
        var tx = open.result.transaction(STORE, mode2);
        var req = fn(tx.objectStore(STORE));
        tx.oncomplete = function () { open.result.close(); resolve(req && req.result); };
        tx.onerror = function () { open.result.close(); reject(tx.error); };
      };
    });
  }
  function getRecord(user) { return idb("readonly", function (s) { return s.get("user:" + user); }); }
  function putRecord(user, rec) { return idb("readwrite", function (s) { return s.put(rec, "user:" + user); }); }

  function b64url(bytes) {
    var s = "", a = new Uint8Array(bytes);
    for (var i = 0; i < a.length; i++) { s += String.fromCharCode(a[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function b64json(obj) { return b64url(new TextEncoder().encode(JSON.stringify(obj))); }

  // Ed25519 where the browser has it, else ECDSA P-256 (ES256): both non-extractable
  function makeKeys() {
    return crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]).then(function (k) {
      return { keys: k, alg: "EdDSA" };
    }).catch(function () {
      return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]).then(function (k) {
        return { keys: k, alg: "ES256" };
      });
    });
  }

  function registerPhone(user) {
    var stateLine = $("device-state");
    return makeKeys().then(function (made) {
      return crypto.subtle.exportKey("jwk", made.keys.publicKey).then(function (jwk) {
        return fetch(app.getAttribute("data-devices-url"), {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", "Accept": "application/json" },
          body: JSON.stringify({ public_jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
                                 name: app.getAttribute("data-phone-name") })
        }).then(function (r) { return r.ok ? r.json() : null; }).then(function (device) {
          if (!device) { return null; }
          var rec = { privateKey: made.keys.privateKey, device: device, revoked: false,
                      offset: device.signing.server_time - Math.floor(Date.now() / 1000) };
          return putRecord(user, rec).then(function () { if (stateLine) { stateLine.textContent = ""; } return rec; });
        });
      });
    });
  }

  // on every online visit: a phone without a key gets one; a phone whose key was switched off stops using it
  function checkPhone() {
    var user = app.getAttribute("data-user");
    if (shell || !user || !window.crypto || !crypto.subtle) { return Promise.resolve(null); }
    var active = (app.getAttribute("data-kids") || "").split(" ");
    return getRecord(user).then(function (rec) {
      if (!rec) { return registerPhone(user); }
      if (active.indexOf(rec.device.kid) < 0) {
        rec.revoked = true;
        return putRecord(user, rec).then(function () { return rec; });
      }
      Array.prototype.forEach.call(document.querySelectorAll(".device[data-kid]"), function (li) {
        if (li.getAttribute("data-kid") === rec.device.kid) { li.querySelector(".this-phone").hidden = false; }
      });
      return rec;
    }).then(function (rec) { app.setAttribute("data-phone", rec && !rec.revoked ? "ready" : "none"); return rec; })
      .catch(function () { app.setAttribute("data-phone", "none"); return null; });
  }

  function signOffline(rec) {
    var s = rec.device.signing;
    var now = Math.floor(Date.now() / 1000) + (rec.offset || 0); // the server's clock, as last seen
    var jti = b64url(crypto.getRandomValues(new Uint8Array(16)));
    var input = b64json({ alg: rec.device.alg, typ: s.typ, kid: rec.device.kid }) + "." +
      b64json({ iss: s.iss, aud: s.aud, sub: s.sub, jti: jti, iat: now, exp: now + s.ttl_s });
    var algo = rec.device.alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
    return crypto.subtle.sign(algo, rec.privateKey, new TextEncoder().encode(input)).then(function (sig) {
      return { code: input + "." + b64url(sig), ttl: s.ttl_s };
    });
  }

  // whole CSS pixels per module (no blurred or uneven modules), at the screen's own pixel density
  function drawQr(code) {
    var qr = window.qrcode(0, "M");
    qr.addData(code, "Byte");
    qr.make();
    var count = qr.getModuleCount(), quiet = 4, total = count + 2 * quiet;
    var room = Math.min(window.innerWidth * 0.86, 300);
    var cssCell = Math.max(2, Math.floor(room / total)), dpr = Math.max(1, Math.round(window.devicePixelRatio || 1));
    var cell = cssCell * dpr, size = total * cell;
    canvas.width = size; canvas.height = size;
    canvas.style.width = (total * cssCell) + "px"; canvas.style.height = (total * cssCell) + "px";
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = "#000";
    for (var r = 0; r < count; r++) {
      for (var c = 0; c < count; c++) {
        if (qr.isDark(r, c)) { ctx.fillRect((c + quiet) * cell, (r + quiet) * cell, cell, cell); }
      }
    }
    canvas.setAttribute("data-code", code);
  }

  function offlineText(kind, rec) {
    var t = $("offline-text");
    var text = t.getAttribute("data-" + kind) || "";
    if (rec) {
      text = text.replace("@codes", rec.device.signing.daily_codes).replace("@beans", rec.device.signing.daily_beans);
    }
    t.textContent = text;
  }

  var drawing = false;
  function drawOffline() {
    if (drawing || !canvas) { return; }
    drawing = true;
    var user = shell ? localStorage.getItem("gb.lastUser") : app.getAttribute("data-user");
    var ready = user && window.crypto && crypto.subtle && window.qrcode ? getRecord(user) : Promise.resolve(null);
    ready.then(function (rec) {
      offlineNote.hidden = false;
      if (!rec || rec.revoked) {
        offlineText(rec ? "revoked" : "nokey", null);
        showNothing(offlineNote.querySelector("strong").textContent);
        return null;
      }
      return signOffline(rec).then(function (signed) {
        drawQr(signed.code);
        mode = "offline";
        offlineText("limits", rec);
        img.hidden = true; numberBox.hidden = true; expiredBox.hidden = true; canvas.hidden = false;
        left = signed.ttl;
        countdown.textContent = String(Math.max(left - MARGIN, 0));
        countdown.parentNode.hidden = false;
        refreshZoom();
      });
    }).catch(function () { showNothing(); }).then(function () { drawing = false; });
  }

  function goOffline() { if (mode !== "offline") { drawOffline(); } }
  window.addEventListener("offline", goOffline);
  window.addEventListener("online", function () {
    if (shell) { window.location.replace(app.getAttribute("data-page")); } else { refresh(); }
  });

  // --- the service worker: the app shell, so that the wallet opens offline -----------------------------------------
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(app.getAttribute("data-sw"), { scope: app.getAttribute("data-scope") }).then(function (reg) {
      if (!shell && reg.active) { reg.active.postMessage("refresh-shell"); }
    }).catch(function () { /* the page works without it */ });
  }
  var phoneReady = checkPhone();
  if (shell) {
    phoneReady.then(function () {
      // the shell answered because the network was gone; if it is back, the real page
      if (navigator.onLine) {
        fetch(app.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { if (r.ok && !r.redirected) { window.location.replace(app.getAttribute("data-page")); } else { drawOffline(); } })
          .catch(drawOffline);
      } else { drawOffline(); }
    });
  } else if (!navigator.onLine) {
    phoneReady.then(drawOffline);
  }

  // --- 支付成功: the event stream's payment event (radar.js), or polling every 5 s while visible --------------------
  var paid = $("paid"), seen = 0, audio = null;
  document.addEventListener("pointerdown", function () {
    // browsers let a page play sound only after a touch: get the audio ready on the first one
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { audio = null; }
    }
    if (audio && audio.state === "suspended") { audio.resume(); }
  });
  function chime() {
    if (navigator.vibrate) { try { navigator.vibrate([120, 60, 120]); } catch (e) { /* not allowed */ } }
    if (!audio || audio.state !== "running") { return; }
    [880, 1320].forEach(function (freq, i) {
      var osc = audio.createOscillator(), gain = audio.createGain(), t = audio.currentTime + i * 0.16;
      osc.frequency.value = freq; osc.connect(gain); gain.connect(audio.destination);
      gain.gain.setValueAtTime(0.0001, t); gain.gain.exponentialRampToValueAtTime(0.4, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.15);
      osc.start(t); osc.stop(t + 0.16);
    });
  }
  function closePaid() { if (paid && !paid.hidden) { paid.hidden = true; if ($("qr-zoom")) { $("qr-zoom").focus(); } } }
  if ($("paid-done")) { $("paid-done").addEventListener("click", closePaid); }

  function showPaid(p, available) {
    $("paid-shop").textContent = p.shop;
    $("paid-amount").textContent = "−" + fmt.format(p.amount) + " " + paid.getAttribute("data-unit");
    $("paid-left").textContent = p.status === "awaiting_confirmation" ? paid.getAttribute("data-waiting")
      : paid.getAttribute("data-left").replace("@", fmt.format(available));
    closeZoom();
    paid.hidden = false;
    $("paid-done").focus();
    chime();
  }

  var statusBusy = false;
  function checkStatus(announce) {
    if (!bal || statusBusy) { return; }
    statusBusy = true;
    fetch(app.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return (r.ok && !r.redirected) ? r.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        setBalance(body.available);
        var newest = body.recent[0];
        if (newest && newest.redemption_id > seen) {
          var fresh = seen > 0 || announce;
          seen = newest.redemption_id;
          if (fresh) {
            if (newest.status === "awaiting_confirmation") { window.location.reload(); return; }
            showPaid(newest, body.available);
            refresh(); // the code just used is spent: a new one at once
          }
        }
        if (body.awaiting.join(",") !== bal.getAttribute("data-awaiting")) { window.location.reload(); }
      })
      .catch(function () { /* next time */ })
      .then(function () { statusBusy = false; });
  }
  if (bal) {
    checkStatus(false); // what was paid before this page opened is not news
    document.addEventListener("gb:payment", function () { checkStatus(true); });
    // without the stream (no EventSource, or it gave up): ask every 5 s, only while the app is on screen
    setInterval(function () {
      var stream = window.goldbeanEvents;
      var streaming = stream && stream.readyState !== 2;
      if (!streaming && document.visibilityState === "visible") { checkStatus(true); }
    }, 5000);
  }

  // --- the countdown: a fresh code before this one expires; nothing left on screen once it has -----------------
  if (numberText && numberText.getAttribute("data-number")) { drawBarcode($("barcode"), numberText.getAttribute("data-number"), 52); }
  if (countdown) {
    setInterval(function () {
      left -= 1;
      countdown.textContent = String(Math.max(left - MARGIN, 0));
      if (left <= 0 && mode !== "none") { showNothing(); }
      if (left <= MARGIN) { if (mode === "offline") { drawOffline(); } else { refresh(); } }
    }, 1000);
    if (mode === "none") { refresh(); }
  }
})();
