// Patrols: fill the phone's location before a post-sign check-in, scan a code with the camera (jsQR, as the
// till does), and keep the leader's rotating code fresh.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');

  document.querySelectorAll("form.presence").forEach(function (form) {
    var code = form.querySelector(".code-input");
    var video = form.querySelector("video.scanner");
    var stream = null;
    form.querySelectorAll("button.locate").forEach(function (button) {
      button.addEventListener("click", function (e) {
        if (form.dataset.located === "1" || !navigator.geolocation) { return; }
        e.preventDefault();
        navigator.geolocation.getCurrentPosition(function (pos) {
          form.latitude.value = pos.coords.latitude;
          form.longitude.value = pos.coords.longitude;
          form.accuracy_m.value = pos.coords.accuracy;
          form.dataset.located = "1";
          button.click();
        }, function () { form.dataset.located = "1"; button.click(); }, { enableHighAccuracy: true, timeout: 15000 });
      });
    });
    var scan = form.querySelector("button.scan");
    if (!scan || !video) { return; }
    function stop() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
      video.hidden = true;
    }
    function tick() {
      if (!stream) { return; }
      if (video.readyState === video.HAVE_ENOUGH_DATA) {
        var canvas = document.createElement("canvas");
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        var ctx = canvas.getContext("2d");
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
        var found = window.jsQR ? window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" }) : null;
        if (found && found.data) { code.value = found.data; stop(); return; }
      }
      requestAnimationFrame(tick);
    }
    scan.addEventListener("click", function () {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { code.focus(); return; }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
        stream = s; video.srcObject = s; video.hidden = false; video.play(); requestAnimationFrame(tick);
      }).catch(function () { code.focus(); });
    });
  });

  var leader = document.querySelector(".leader-code");
  if (leader) {
    // a fresh code every 8 s, and at once when a phone has used the one on screen (each code serves one
    // phone: members queueing at the post scan one after another); the page reloads then, so the members'
    // list shows who has just come
    var refresh = function () {
      fetch(leader.dataset.url, { method: "POST", credentials: "same-origin",
                                  headers: { "X-CSRF-Token": csrf ? csrf.content : "" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          document.getElementById("leader-qr").src = "data:image/png;base64," + data.qr_png;
          leader.dataset.jti = data.jti;
        }).catch(function () {});
    };
    setInterval(refresh, 8000);
    setInterval(function () {
      if (document.hidden || !leader.dataset.used) { return; }
      fetch(leader.dataset.used + "?jti=" + encodeURIComponent(leader.dataset.jti || ""), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && data.used) { window.location.reload(); } })
        .catch(function () {});
    }, 2500);
  }
})();
