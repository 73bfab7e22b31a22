/* The workspace's page script (no inline script anywhere: CSP-friendly).
 * - Stores the browser's time zone in a cookie, so the server shows times in it.
 * - Copy buttons: <button class="ws-copy" data-copy="#element">. */
(function () {
  "use strict";
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("ws_tz=" + zone) === -1) {
      document.cookie = "ws_tz=" + zone + "; path=/admin/; SameSite=Lax; max-age=31536000";
    }
  } catch (e) { /* no Intl: times stay in UTC */ }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".ws-copy") : null;
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for the user */ }
    }
  });
})();
