// stage.js — one job: draw the Space's state (stage, hands, listeners) into the page.
//
// Every piece of user text goes in through textContent, never innerHTML, so names and
// titles are always shown as text.

const ROLE_LABEL = { host: "Host", cohost: "Co-host", speaker: "Speaker", listener: "Listener" };
const ROLE_RANK = { host: 0, cohost: 1, speaker: 2, listener: 3 };

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function avatar(person, size = "md") {
  const box = el("span", { class: `avatar avatar-${size}` });
  if (person.avatar_url) {
    box.append(el("img", { src: person.avatar_url, alt: "", loading: "lazy" }));
  } else {
    box.append(el("span", { class: "avatar-initial", "aria-hidden": "true" }, (person.name || "?").slice(0, 1).toUpperCase()));
  }
  return box;
}

export function sortStage(stage) {
  return [...stage].sort((a, b) => ROLE_RANK[a.role] - ROLE_RANK[b.role]);
}

// Static markup only (no user text), so building it from a string is safe.
const MIC_SVG = '<svg viewBox="0 0 24 24" width="14" height="14" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" aria-hidden="true"><rect x="9" y="2" width="6" height="12" rx="3"/><path d="M5 10v1a7 7 0 0 0 14 0v-1M12 18v4"/></svg>';
const MIC_OFF_SVG = '<svg viewBox="0 0 24 24" width="14" height="14" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" aria-hidden="true"><path d="M2 2l20 20M9 9v2a3 3 0 0 0 5.1 2.1M15 9.3V5a3 3 0 0 0-5.9-.8M19 10v1a7 7 0 0 1-.9 3.4M5 10v1a7 7 0 0 0 11.2 5.6M12 18v4"/></svg>';

function micIcon(muted) {
  const label = muted ? "Muted" : "Mic on";
  const badge = el("span", { class: `mic ${muted ? "mic-off" : "mic-on"}`, title: label, "aria-label": label, role: "img" });
  badge.innerHTML = muted ? MIC_OFF_SVG : MIC_SVG;
  return badge;
}

/** Stage grid: host, co-hosts, speakers. */
export function renderStage(root, state, { onPerson }) {
  const cards = sortStage(state.stage).map((p) =>
    el(
      "li",
      {
        class: `seat role-${p.role}${p.present === false ? " away" : ""}${p.user_id === state.me.user_id ? " me" : ""}`,
        dataset: { userId: p.user_id },
        "data-testid": `seat-${p.username}`,
      },
      el(
        "button",
        // Named by what it shows (name, role, the mic badge's "Muted" / "Mic on"), as axe asks.
        { class: "seat-button", type: "button", onclick: () => onPerson(p) },
        el("span", { class: "seat-avatar" }, avatar(p, "lg"), el("span", { class: "reaction-bubble", "aria-live": "polite" }), micIcon(p.muted)),
        el("span", { class: "seat-name" }, p.name),
        el("span", { class: "seat-role" }, el("span", { class: "visually-hidden" }, ", "), ROLE_LABEL[p.role]),
      ),
    ),
  );
  root.replaceChildren(...cards);
}

/** Raised hands, shown to the host and co-hosts with accept / dismiss buttons. */
export function renderHands(root, state, { canManage, onAccept, onDismiss }) {
  root.closest("[data-hands-panel]").hidden = !(canManage && state.hands.length);
  root.replaceChildren(
    ...state.hands.map((h) =>
      el(
        "li",
        { class: "hand-row", "data-testid": `hand-${h.username}` },
        avatar(h, "sm"),
        el("span", { class: "hand-name" }, "✋ ", h.name),
        el("button", { class: "btn btn-primary btn-sm", type: "button", onclick: () => onAccept(h), "data-testid": `accept-${h.username}` }, "Bring up"),
        el("button", { class: "btn btn-ghost btn-sm", type: "button", onclick: () => onDismiss(h) }, "Dismiss"),
      ),
    ),
  );
}

/** Listeners: the first ones by name, then a count. */
export function renderListeners(root, state, { onPerson }) {
  const handIds = new Set(state.hands.map((h) => h.user_id));
  const items = state.listeners.map((p) =>
    el(
      "li",
      { class: "listener", dataset: { userId: p.user_id }, "data-testid": `listener-${p.username}` },
      el(
        "button",
        { class: "seat-button", type: "button", onclick: () => onPerson(p) },
        el("span", { class: "seat-avatar" }, avatar(p, "md"), el("span", { class: "reaction-bubble" }), handIds.has(p.user_id) ? el("span", { class: "hand-flag", title: "Hand raised" }, "✋") : null),
        el("span", { class: "seat-name" }, p.name),
      ),
    ),
  );
  // Guests (listening without an account) are counted, never named.
  const guests = state.guest_count || 0;
  const more = state.listener_count - guests - state.listeners.length;
  if (more > 0) items.push(el("li", { class: "listener more" }, el("span", { class: "more-count" }, `+${more.toLocaleString()}`)));
  if (guests > 0) items.push(el("li", { class: "listener guests", "data-testid": "guest-count" }, `+ ${guests.toLocaleString()} ${guests === 1 ? "guest" : "guests"}`));
  if (!items.length) items.push(el("li", { class: "listeners-empty" }, "Nobody is listening yet. Share the link to bring people in."));
  root.replaceChildren(...items);
}

export function showReaction(userId, emoji) {
  for (const bubble of document.querySelectorAll(`[data-user-id="${Number(userId)}"] .reaction-bubble`)) {
    bubble.textContent = emoji;
    bubble.classList.remove("pop");
    void bubble.offsetWidth; // restart the animation
    bubble.classList.add("pop");
  }
}

export function setSpeaking(userId, on) {
  for (const seat of document.querySelectorAll(`.seat[data-user-id="${Number(userId)}"]`)) {
    seat.classList.toggle("speaking", on);
  }
}
