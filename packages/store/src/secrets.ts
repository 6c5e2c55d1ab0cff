/**
 * Secrets in study locations: a PostgreSQL URL may carry a password (in its user part or as
 * `?password=` / `?sslpassword=`). Every message, page and record shows the location masked,
 * and output that may still quote one (a driver's error, a page built from a location) is
 * passed through `redactSecrets` with the secrets of the locations the command was given.
 */

/** Query parameters whose values are secrets. */
const SECRET_PARAM = /pass|secret|token/i;

/** The URL with its password and secret query parameters replaced by ***, fit to print. */
export function maskUrl(url: string): string {
  // a file path is shown as it is
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    const secret = [...u.searchParams.keys()].filter((k) => SECRET_PARAM.test(k));
    for (const k of new Set(secret)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@').replace(/([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*/gi, '$1***');
  }
}

const URLS = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/**
 * The secrets in the URLs of `texts` (passwords, secret query parameters), as written and
 * decoded, to redact wherever they could still appear. Values shorter than 4 characters are
 * left out (redacting them would mangle ordinary text); the masked location never shows them.
 */
export function urlSecrets(...texts: string[]): string[] {
  const out = new Set<string>();
  const add = (v: string) => {
    for (const x of [v, safeDecode(v), encodeURIComponent(safeDecode(v))]) if (x.length >= 4 && x !== '***') out.add(x);
  };
  for (const text of texts) {
    for (const m of text.match(URLS) ?? []) {
      try {
        const u = new URL(m);
        if (u.password) add(u.password);
        for (const [k, v] of u.searchParams) if (SECRET_PARAM.test(k)) add(v);
      } catch {
        const p = /\/\/[^:/@]*:([^@/]*)@/.exec(m);
        if (p?.[1]) add(p[1]);
      }
    }
  }
  // longest first, so a secret containing another is replaced whole
  return [...out].sort((a, b) => b.length - a.length);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `text` with every one of `secrets` replaced by ***. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
