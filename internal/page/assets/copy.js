// Copy buttons and the profile's choice, on pages that list calendar,
// contacts or JMAP URLs. The page works without this script: the URLs can
// be selected by hand and the choice is a form. It runs under a
// Content-Security-Policy that allows exactly this text (its SHA-256), so
// it attaches its handlers here; the page has no inline handler.
(function () {
  "use strict";
  // Each code[data-copy] gets a button that copies its text.
  document.querySelectorAll("code[data-copy]").forEach(function (code) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = code.getAttribute("data-copy");
    button.addEventListener("click", function () {
      var text = code.textContent;
      var done = function () {
        button.textContent = code.getAttribute("data-copied");
        setTimeout(function () { button.textContent = code.getAttribute("data-copy"); }, 2000);
      };
      // The asynchronous clipboard exists only on https pages (and on
      // localhost); elsewhere the text is selected and copied the old way.
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(code); });
        return;
      }
      select(code);
      try {
        if (document.execCommand("copy")) {
          done();
        }
      } catch (e) {
        // The text stays selected for the person to copy.
      }
    });
    code.parentNode.insertBefore(button, code.nextSibling);
    code.parentNode.insertBefore(document.createTextNode(" "), button);
  });

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // The QR code follows the profile's choice, so that a phone scanning it
  // gets the profile chosen on the computer.
  var qr = document.getElementById("qr");
  if (qr && qr.hasAttribute("data-dav-src")) {
    var mailOnly = qr.getAttribute("src");
    document.querySelectorAll("input[name=dav]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.checked) {
          qr.setAttribute("src", input.value === "1" ? qr.getAttribute("data-dav-src") : mailOnly);
        }
      });
    });
  }
})();
