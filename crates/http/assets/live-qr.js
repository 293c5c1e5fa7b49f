// The family's card: swaps the PDF's QR for the app's rotating code and renews it before it
// expires, with a countdown. Without this script the card shows the PDF's QR, which stays valid.
(function () {
  "use strict";
  var img = document.getElementById("qr");
  var note = document.getElementById("qr-note");
  if (!img || !note || !window.fetch) { return; }
  var staticSrc = img.getAttribute("src");
  var expires = 0;
  var renewAt = 5;
  var timer = null;

  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
  }

  function tick() {
    var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    note.textContent = "Динамический код: обновится через " + left + " с.";
    if (left <= renewAt) { renew(); }
  }

  // Back to the PDF's QR (it stays valid while the certificate is).
  function fallBack(text) {
    img.src = staticSrc;
    img.removeAttribute("data-kind");
    note.textContent = text;
  }

  function renew() {
    stop();
    fetch("/me/live-qr.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status >= 400 && r.status < 500) {
          // Signed out, or the certificate may no longer be shown: no retry.
          fallBack("Динамический код недоступен. Обновите страницу.");
          return null;
        }
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (live) {
        if (!live) { return; }
        img.src = live.image;
        img.setAttribute("data-kind", "live");
        // The lifetime, counted on this device's clock (a phone's clock may be off); renewed
        // 5 s before it ends (a fifth of it for short lifetimes), so never in a loop.
        var seconds = Math.max(1, live.seconds);
        expires = Date.now() + seconds * 1000;
        renewAt = Math.min(5, Math.max(1, Math.floor(seconds / 5)));
        tick();
        timer = setInterval(tick, 1000);
      })
      .catch(function () {
        fallBack("Не удалось обновить динамический код. Показан код из PDF: он тоже действует.");
        setTimeout(renew, 15000);
      });
  }

  renew();
})();
