import { describe, expect, it } from 'vitest';
import { parseStudyLocation } from './open.js';
import { maskUrl, redactSecrets } from './secrets.js';

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

  it('redacts passwords by pattern wherever a URL or a connection string is quoted, and nothing else', () => {
    const leaked = 'cannot reach postgres://alice:S3c%40ret@h/db?sslpassword=K3y&schema=s (host=h password=hunter22 user=bob); also mysql://u:pw@x';
    expect(redactSecrets(leaked)).toBe('cannot reach postgres://alice:***@h/db?sslpassword=***&schema=s (host=h password=*** user=bob); also mysql://u:***@x');
    // text that merely contains a password's characters is left alone: numbers, the scheme, JSON
    const json = JSON.stringify({ points: [12024, 2024], location: 'postgres://postgres:***@localhost:5432/postgres?password=***' });
    expect(redactSecrets(json)).toBe(json);
    expect(JSON.parse(redactSecrets(JSON.stringify({ e: 'postgres://a:b@h/d?password=x"y' })))).toEqual({ e: 'postgres://a:***@h/d?password=***"y' });
    expect(redactSecrets('postgres://postgres@localhost/postgres')).toBe('postgres://postgres@localhost/postgres');
  });
});
