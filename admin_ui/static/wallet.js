// The wallet's payment QR: count down and fetch a fresh code (POST, session + CSRF header) before it expires.
(function () {
  "use strict";
  // the balance and payments waiting for confirmation: poll, update the number, reload when a payment waits
  var bal = document.getElementById("balance");
  var num = document.getElementById("balance-number");
  if (bal && num) {
    var fmt = new Intl.NumberFormat(document.documentElement.lang || "zh-CN");
    setInterval(function () {
      fetch(bal.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return (r.ok && !r.redirected) ? r.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          if (String(body.available) !== bal.getAttribute("data-value")) {
            bal.setAttribute("data-value", String(body.available));
            num.textContent = fmt.format(body.available);
          }
          if (body.awaiting.join(",") !== bal.getAttribute("data-awaiting")) { window.location.reload(); }
        })
        .catch(function () { /* try again at the next tick */ });
    }, 4000);
  }
})();

(function () {
  "use strict";
  var img = document.getElementById("qr");
  var out = document.getElementById("countdown");
  if (!img || !out) { return; }
  var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var left = parseInt(img.getAttribute("data-expires-in"), 10) || 60;
  var margin = 10; // refresh this many seconds before expiry
  var busy = false;

  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(img.getAttribute("data-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": token, "Accept": "application/json" }
    }).then(function (r) {
      if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (body) {
      if (!body) { return; }
      img.src = "data:image/png;base64," + body.qr_png;
      img.setAttribute("data-code", body.code);
      left = body.expires_in;
      out.textContent = String(Math.max(left - margin, 0));
    }).catch(function () {
      left = Math.max(left, 3); // try again in a moment
    }).then(function () { busy = false; });
  }

  setInterval(function () {
    left -= 1;
    out.textContent = String(Math.max(left - margin, 0));
    if (left <= margin) { refresh(); }
  }, 1000);
})();
