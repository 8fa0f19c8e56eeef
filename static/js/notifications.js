// The bell's unread count and a toast for each new notification, over /ws/notifications/.
// Message schema: notifications/consumers.py. Reconnects with backoff; each connect resyncs the count.
// Desktop notifications (the browser's Notification API) only once the person has allowed them from
// the visible "Turn on desktop notifications" control on the notifications page; never asked on load.
const badge = document.querySelector("[data-notifications-unread]");
const toasts = document.querySelector("[data-notifications-toasts]");
const desktopControl = document.querySelector("[data-desktop-notifications]");
// The toasts sit at the foot of the screen; inside the top bar (whose backdrop-filter makes it the
// box that position: fixed is measured against) they would be drawn above the top of the page.
if (toasts) document.body.append(toasts);

function desktopAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

function showDesktopControl() {
  if (!desktopControl || !("Notification" in window)) return;
  desktopControl.hidden = false;
  const state = Notification.permission;
  desktopControl.disabled = state !== "default";
  desktopControl.textContent = state === "granted"
    ? "Desktop notifications are on"
    : state === "denied" ? "Desktop notifications are blocked in this browser's site settings" : "Turn on desktop notifications";
}

desktopControl?.addEventListener("click", async () => {
  await Notification.requestPermission();
  showDesktopControl();
});
showDesktopControl();

function showDesktop(note) {
  // The page's own toast is enough while the page is in front; a desktop one is for when it isn't.
  if (!desktopAllowed() || document.visibilityState === "visible") return;
  const desktop = new Notification(note.title, { body: note.body || "", tag: `notification-${note.id}` });
  desktop.addEventListener("click", () => {
    window.focus();
    location.href = note.url || "/notifications/";
  });
}

function showCount(count) {
  if (!badge) return;
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.hidden = count === 0;
  badge.closest("a")?.setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
}

function showToast(note) {
  if (!toasts) return;
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.setAttribute("role", "status");
  const link = document.createElement("a");
  link.href = note.url || "/notifications/";
  const title = document.createElement("strong");
  title.textContent = note.title;
  link.append(title);
  if (note.body) {
    const body = document.createElement("div");
    body.className = "muted";
    body.textContent = note.body;
    link.append(body);
  }
  toast.append(link);
  toasts.append(toast);
  setTimeout(() => toast.remove(), 8000);
}

let delay = 1000;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/notifications/`);
  socket.addEventListener("open", () => { delay = 1000; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "unread") {
      showCount(message.count);
      badge.dataset.connected = "1"; // live from here on (tests wait for it)
    }
    if (message.type === "notification") {
      showCount(message.unread);
      showToast(message);
      showDesktop(message);
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) return; // signed out
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

if (badge) connect();
