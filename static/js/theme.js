// The light/dark toggle in the top bar: switch at once and remember the choice in the `theme`
// cookie, which the server reads to set data-theme on <html> (so the next page never flashes).
// Without this module the same button posts to /theme/ and the page reloads.
const root = document.documentElement;
const button = document.getElementById("theme-toggle");
const system = window.matchMedia("(prefers-color-scheme: dark)");

function current() {
  return root.dataset.theme || (system.matches ? "dark" : "light");
}

function label() {
  const other = current() === "dark" ? "light" : "dark";
  button.value = other;
  button.setAttribute("aria-label", `Switch to ${other} theme`);
  button.title = `Switch to ${other} theme`;
}

if (button) {
  label();
  system.addEventListener("change", label);
  button.addEventListener("click", (event) => {
    event.preventDefault();
    const next = current() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    document.cookie = `theme=${next}; path=/; max-age=${365 * 24 * 3600}; SameSite=Lax`;
    label();
  });
}
