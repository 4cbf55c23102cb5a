// A refused form (admin_ui/forms.py): its first wrong field gets the focus, so the sentence beside it is read
// with it and the person starts where the fix is. (The wallet does the same in wallet.js.)
(function () {
  "use strict";
  var wrong = document.querySelector("[data-first-error]");
  if (!wrong) { return; }
  var go = function () { wrong.focus(); wrong.scrollIntoView({ block: "center" }); };
  go();
  window.addEventListener("load", function () { setTimeout(go, 0); });
})();
