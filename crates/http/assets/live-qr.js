// The family's card: swaps the PDF's QR for the app's rotating code and renews it before it
// expires, with a countdown. Without this script the card shows the PDF's QR, which stays valid.
(function () {
  "use strict";
  var img = document.getElementById("qr");
  var note = document.getElementById("qr-note");
  if (!img || !note || !window.fetch) { return; }
  var expires = 0;
  var timer = null;

  function tick() {
    var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    note.textContent = "Динамический код: обновится через " + left + " с.";
    if (left <= 5) { renew(); }
  }

  function renew() {
    if (timer) { clearInterval(timer); timer = null; }
    fetch("/me/live-qr.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (live) {
        img.src = live.image;
        img.setAttribute("data-kind", "live");
        // The lifetime, counted on this device's clock (a phone's clock may be off).
        expires = Date.now() + live.seconds * 1000;
        tick();
        timer = setInterval(tick, 1000);
      })
      .catch(function () {
        note.textContent = "Не удалось обновить динамический код. Показан код из PDF: он тоже действует.";
        setTimeout(renew, 15000);
      });
  }

  renew();
})();
