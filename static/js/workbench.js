/* Workbench: keyboard shortcuts, the keyboard help and the print button.
 *
 * No inline script anywhere in the templates (a Content-Security-Policy will
 * forbid it). Elements opt in with data-shortcut="<key>": a button or link is
 * clicked, a field is focused. Keys do nothing while the user types in a
 * field; Escape leaves the field so that they work again.
 */
(function () {
  "use strict";

  function isTyping(element) {
    if (!element) return false;
    var tag = element.tagName;
    return element.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function shortcutTarget(key) {
    var candidates = document.querySelectorAll('[data-shortcut="' + key + '"]');
    for (var i = 0; i < candidates.length; i++) {
      var element = candidates[i];
      if (!element.disabled && !element.closest("[hidden]")) return element;
    }
    return null;
  }

  function helpPanel() {
    return document.getElementById("keyhelp");
  }

  function toggleHelp(show) {
    var panel = helpPanel();
    if (!panel) return;
    var open = typeof show === "boolean" ? show : panel.hidden;
    panel.hidden = !open;
    document.querySelectorAll("[data-keyhelp-toggle]").forEach(function (button) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    if (event.target.closest("[data-keyhelp-toggle]")) toggleHelp();
    if (event.target.closest("[data-print]")) window.print();
  });

  // Buttons that only work with JavaScript (e.g. Print) stay hidden without it.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-js-only]").forEach(function (element) {
      element.hidden = false;
    });
  });

  // After htmx swaps a form back with errors, put the focus on the first
  // field in error (the button that was pressed is gone with the old form).
  document.addEventListener("htmx:afterSwap", function (event) {
    var region = document.getElementById(event.detail.target.id) || document;
    var invalid = region.querySelector('[aria-invalid="true"]');
    var alert = region.querySelector('[role="alert"]');
    var target = invalid || alert;
    if (!target) return;
    if (!invalid) target.setAttribute("tabindex", "-1");
    target.focus();
  });

  // The lease on the case held: a countdown, and a warning before it runs
  // out (LEASE_WARN_SECONDS). Without JavaScript the page shows its end time.
  var LEASE_WARN_SECONDS = 120;

  function leaseTick() {
    document.querySelectorAll("[data-lease-expires]").forEach(function (element) {
      var left = Math.round((Date.parse(element.dataset.leaseExpires) - Date.now()) / 1000);
      var panel = element.closest("section") || document;
      var warning = panel.querySelector("[data-lease-warning]");
      element.hidden = false;
      if (left <= 0) {
        element.textContent = "(lease expired)";
      } else {
        var minutes = Math.floor(left / 60);
        var seconds = left % 60;
        element.textContent = "(" + minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " left)";
      }
      if (warning) warning.hidden = left > LEASE_WARN_SECONDS;
    });
  }
  leaseTick();
  window.setInterval(leaseTick, 1000);
  document.addEventListener("htmx:afterSwap", leaseTick);

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var active = document.activeElement;
    if (event.key === "Escape") {
      if (isTyping(active)) active.blur();
      toggleHelp(false);
      return;
    }
    if (isTyping(event.target) || isTyping(active)) return;
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    var target = shortcutTarget(event.key);
    if (!target) return;
    event.preventDefault();
    // A field inside a closed <details> (e.g. Rationale for escalating in
    // blind review) is opened first.
    var details = target.closest("details");
    if (details && !details.open) details.open = true;
    if (target.tagName === "BUTTON" || target.tagName === "A") {
      target.click();
    } else {
      target.focus();
      if (target.scrollIntoView) target.scrollIntoView({ block: "nearest" });
    }
  });
})();
