import { describe, expect, it } from 'vitest';
import { parseStudyLocation } from './open.js';
import { maskUrl, redactSecrets, urlSecrets } from './secrets.js';

describe('secrets in study locations', () => {
  it('masks the password in the user part and in secret query parameters', () => {
    expect(maskUrl('postgres://u:p%40ss@h:5432/d?schema=s')).toBe('postgres://u:***@h:5432/d?schema=s');
    expect(maskUrl('postgres://alice@h/db?password=S3cret&schema=x')).toBe('postgres://alice@h/db?password=***&schema=x');
    expect(maskUrl('postgres://alice@h/db?sslpassword=K3yPass&sslmode=require')).toBe('postgres://alice@h/db?sslpassword=***&sslmode=require');
    expect(maskUrl('postgres://alice@h/db?schema=x&PassWord=a&password=b')).not.toMatch(/=a|=b/);
    // not a URL the parser takes: masked all the same
    expect(maskUrl('postgres://alice:S3cret@[bad/db?password=Other1')).toBe('postgres://alice:***@[bad/db?password=***');
    expect(parseStudyLocation('postgresql://alice:S3cret@h/db?password=Other1').display).not.toMatch(/S3cret|Other1/);
    // nothing to mask; a file path is not a URL
    expect(maskUrl('runs/a b:c@d.sqlite')).toBe('runs/a b:c@d.sqlite');
    expect(maskUrl('postgres://alice@h/db?schema=x')).toBe('postgres://alice@h/db?schema=x');
  });

  it('finds every secret a text of locations holds, as written and decoded, and redacts each', () => {
    const secrets = urlSecrets('postgres://alice:S3c%40ret@h/db?sslpassword=K3y%2Fpass', 'run --study postgres://bob:hunter22@x/y now', 'no url here');
    expect(secrets).toEqual(expect.arrayContaining(['S3c%40ret', 'S3c@ret', 'K3y/pass', 'K3y%2Fpass', 'hunter22']));
    const leaked = 'cannot reach postgres://alice:S3c@ret@h (password S3c%40ret, key K3y/pass, hunter22)';
    expect(redactSecrets(leaked, secrets)).toBe('cannot reach postgres://alice:***@h (password ***, key ***, hunter22)'.replace('hunter22', '***'));
    // too short to redact in free text without mangling it (the masked location never shows it)
    expect(urlSecrets('postgres://a:xy@h/db')).toEqual([]);
  });
});
