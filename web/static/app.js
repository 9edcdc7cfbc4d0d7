// Draws the protocol's phase diagram with the vendored Mermaid (loaded from /static, no CDN).
// In a file of its own so that the Content-Security-Policy needs no inline script.
document.addEventListener("DOMContentLoaded", function () {
  if (window.mermaid) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
    window.mermaid.run({ querySelector: "pre.mermaid" });
  }
});
