/* Campaign editor: the merge-tag picker inserts ((tag)) where the cursor was. No inline scripts (CSP). */
(function () {
  "use strict";
  var last = null;
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-merge-target]")) last = event.target;
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-merge-tag]");
    if (!button) return;
    event.preventDefault();
    var field = last || document.querySelector("[data-merge-target]");
    if (!field) return;
    var tag = "((" + button.dataset.mergeTag + "))";
    var start = field.selectionStart == null ? field.value.length : field.selectionStart;
    var end = field.selectionEnd == null ? start : field.selectionEnd;
    field.value = field.value.slice(0, start) + tag + field.value.slice(end);
    field.focus();
    field.setSelectionRange(start + tag.length, start + tag.length);
    field.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
