// The demo page's credentials (docs/security.md): with auth `none` nothing shows. When the
// server answers `unauthorized` (auth `api_key` or `jwt`), a token field appears; the token
// is kept in sessionStorage (this tab only, gone when it closes) and the client reads it
// before each connection (its `token` option is a function).

const KEY = 'streamer-demo-token';

/** @returns {string|null} the token of this tab, if one was given */
export function storedToken() {
  try {
    return sessionStorage.getItem(KEY) || null;
  } catch {
    return null; // storage disabled: no token kept
  }
}

/** @param {string|null} token null forgets it */
function storeToken(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled */
  }
}

/**
 * Wire the token form: `#token-form` (`#token`, `#token-note`, `#btn-token-forget`).
 * @param {(id: string) => HTMLElement} $
 * @param {() => void} reconnect called after the token changed (a new client connects)
 * @returns {{ask: (why: string) => void}} `ask` shows the field, `why` above it
 */
export function tokenPrompt($, reconnect) {
  const form = $('token-form');
  const input = /** @type {HTMLInputElement} */ ($('token'));
  const note = $('token-note');
  const forget = $('btn-token-forget');
  const show = (why) => {
    form.hidden = false;
    const has = Boolean(storedToken());
    note.textContent = why || (has ? 'A token is set for this tab.' : '');
    forget.hidden = !has;
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      note.textContent = 'Paste an API key (stk_…) or a JWT first.';
      return;
    }
    storeToken(token);
    input.value = '';
    show('');
    reconnect();
  });
  forget.addEventListener('click', () => {
    storeToken(null);
    show('Token forgotten.');
    reconnect();
  });
  if (storedToken()) show('');
  return {
    ask(why) {
      show(why);
      input.focus();
    },
  };
}
