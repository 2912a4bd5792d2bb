// Follows a build's live log: each server-sent event is a line; at the end the page reloads
// to show the build's record and its whole log. Plain JavaScript: no build step, no library.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const log = document.querySelector("pre[data-events]");
  if (!log || !window.EventSource) return;
  const events = new EventSource(log.dataset.events);
  events.onmessage = (event) => {
    log.textContent += event.data + "\n";
    log.scrollTop = log.scrollHeight;
  };
  events.addEventListener("end", () => {
    events.close();
    log.dataset.ended = "true";
    window.location.reload();
  });
});
