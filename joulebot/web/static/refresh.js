// Polls the boxes' rows every 5 s and swaps them in; the page works without it (reload).
(function () {
  var box = document.getElementById("boxes");
  if (!box) return;
  setInterval(function () {
    fetch(box.dataset.refresh, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () { /* keep the last rows; the next poll tries again */ });
  }, 5000);
})();
