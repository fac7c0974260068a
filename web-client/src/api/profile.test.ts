import { describe, expect, it } from 'vitest';
import { checkDisplayName, DISPLAY_NAME_MESSAGE, displayNameOf, normalizeDisplayName } from './profile';

describe('display names', () => {
  it('are 2 to 40 characters after trimming, with the server message', () => {
    expect(DISPLAY_NAME_MESSAGE).toBe('Display name must be 2 to 40 characters');
    expect(checkDisplayName('Al')).toBeNull();
    expect(checkDisplayName('  A  ')).toBe(DISPLAY_NAME_MESSAGE);
    expect(checkDisplayName('   ')).toBe(DISPLAY_NAME_MESSAGE);
    expect(checkDisplayName('x'.repeat(40))).toBeNull();
    expect(checkDisplayName('x'.repeat(41))).toBe(DISPLAY_NAME_MESSAGE);
    // Characters, not UTF-16 units: 40 emoji are fine.
    expect(checkDisplayName('😀'.repeat(40))).toBeNull();
    expect(normalizeDisplayName('  Alice B. ')).toBe('Alice B.');
  });

  it('fall back to the e-mail’s local part when the server sends none (its default)', () => {
    expect(displayNameOf({ email: 'alice@example.edu', displayName: 'Alice' })).toBe('Alice');
    expect(displayNameOf({ email: 'alice@example.edu' })).toBe('alice');
    expect(displayNameOf({ email: 'alice@example.edu', displayName: '  ' })).toBe('alice');
    expect(displayNameOf({ email: 'odd' })).toBe('odd');
  });
});
