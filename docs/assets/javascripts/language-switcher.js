/* The language switcher keeps the reader's place: its links to the same page in the other
   languages get the #section being read. Heading ids are the same in every language
   (tests/test_docs_parity.py), so the section exists on the other page too.

   The section is the address's own #fragment until the reader scrolls away from it, then
   the one the table of contents marks as current (Material's md-nav__link--active). The
   links are updated before they are followed, and whenever the section changes, so that
   hovering or copying one shows the address it leads to. No request, no dependency. */
(function () {
  "use strict";

  var LINKS = "a.md-select__link[hreflang]";
  var ACTIVE = ".md-nav--secondary .md-nav__link--active[href^='#']";

  // Whether the reader has scrolled since the page opened at its #fragment (or since the
  // last #fragment link): wheel, touch and keys scroll; layout changes do not count.
  var moved = false;
  function readerMoved() {
    moved = true;
  }

  function currentSection() {
    var hash = window.location.hash;
    if (hash && !moved) return hash;
    // The table of contents shown at this width (the sidebar on a desktop, the drawer's
    // on a phone); the hidden one may lag behind.
    var active = document.querySelectorAll(ACTIVE);
    for (var i = 0; i < active.length; i++) {
      if (active[i].getClientRects().length > 0) return active[i].getAttribute("href");
    }
    return active.length > 0 ? active[0].getAttribute("href") : hash;
  }

  function update() {
    var hash = currentSection();
    var links = document.querySelectorAll(LINKS);
    for (var i = 0; i < links.length; i++) {
      var href = links[i].getAttribute("href").split("#")[0];
      links[i].setAttribute("href", hash ? href + hash : href);
    }
  }

  var pending = false;
  function updateSoon() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      update();
    });
  }

  function onSwitcher(event) {
    if (event.target instanceof Element && event.target.closest(LINKS)) update();
  }

  ["wheel", "touchmove", "keydown"].forEach(function (type) {
    window.addEventListener(type, readerMoved, { passive: true });
  });
  document.addEventListener("DOMContentLoaded", update);
  window.addEventListener("hashchange", function () {
    moved = false;
    update();
  });
  window.addEventListener("scroll", updateSoon, { passive: true });
  // Capture phase: the link's address is set before the browser follows it.
  document.addEventListener("click", onSwitcher, true);
  document.addEventListener("pointerdown", onSwitcher, true);
  document.addEventListener("focusin", onSwitcher, true);
})();
