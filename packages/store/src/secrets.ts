/**
 * Secrets in study locations: a PostgreSQL URL may carry a password (in its user part or as
 * `?password=` / `?sslpassword=`). Every message, page and record shows the location masked,
 * and output that may still quote one (a driver's error, a page built from a location) is
 * passed through `redactSecrets`, which masks every URL's password by pattern.
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

/**
 * `text` with every password a URL or a connection string in it carries replaced by ***: the
 * user part of any URL (`scheme://user:secret@`), and secret parameters (`password=`,
 * `sslpassword=`, `...token=` after `?`, `&`, `;` or a space). By pattern, never by searching for
 * a known password as a bare word (which would mangle text that happens to contain it: a
 * password "2024" in a table of numbers).
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"<>\\]*):([^\s@/'"<>\\]+)@/gi, (m, head: string, secret: string) => (secret === '***' ? m : `${head}:***@`))
    .replace(/([?&;\s]|^)([a-z_]*(?:pass|secret|token)[a-z_]*=)([^&\s'"<>;\\]+)/gim, (m, pre: string, key: string, value: string) => (value === '***' ? m : `${pre}${key}***`));
}
