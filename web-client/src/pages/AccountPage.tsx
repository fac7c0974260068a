// Account settings (`/account`): who I am (display name, e-mail, role) and a form to change the
// display name (`PATCH /api/users/me`). The header shows the new name as soon as the server took it.
import { useRef, useState, type FormEvent } from 'react';
import { checkDisplayName, displayNameOf, normalizeDisplayName, DISPLAY_NAME_MAX } from '../api/profile';
import { useSession, useSessionManager } from '../api/session-react';
import type { User } from '../api/types';
import { ErrorBanner, TextField, useFormErrors } from '../components/ui';
import { RequireSignIn } from './RequireSignIn';

const FIELDS = ['displayName'] as const;

export function AccountPage() {
  return (
    <section className="narrow">
      <h1 tabIndex={-1}>Account</h1>
      <RequireSignIn next="/account">
        <AccountView />
      </RequireSignIn>
    </section>
  );
}

function AccountView() {
  const { user } = useSession();
  if (!user) return null;
  return (
    <>
      <dl className="details" data-testid="account-details">
        <dt>Display name</dt>
        <dd data-testid="account-display-name">{displayNameOf(user)}</dd>
        <dt>E-mail</dt>
        <dd data-testid="account-email">{user.email}</dd>
      </dl>
      <DisplayNameForm user={user} />
    </>
  );
}

function DisplayNameForm({ user }: { user: User }) {
  const session = useSessionManager();
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, clearField, bannerRef } = useFormErrors(formRef);
  const [name, setName] = useState(() => displayNameOf(user));
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(null);
    const problem = checkDisplayName(name);
    if (problem) return showFields({ displayName: problem });
    clear();
    setBusy(true);
    try {
      const updated = await session.updateProfile({ displayName: normalizeDisplayName(name) });
      setName(displayNameOf(updated));
      setSaved(displayNameOf(updated));
    } catch (err) {
      show(err, FIELDS);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="display-name-heading" className="account-settings">
      <h2 id="display-name-heading">Change your display name</h2>
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="account-error" />
      {saved !== null && (
        <p className="banner banner-success" role="status" data-testid="account-saved">
          Saved. Buyers and sellers now see you as {saved}.
        </p>
      )}
      <form ref={formRef} onSubmit={onSubmit} noValidate data-testid="display-name-form" aria-busy={busy}>
        <TextField
          name="displayName"
          label="Display name"
          hint={`2 to ${DISPLAY_NAME_MAX} characters. Shown on your listings, sales and reviews.`}
          autoComplete="nickname"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setSaved(null);
            clearField('displayName');
          }}
          error={errors.fields.displayName}
          aria-required
          data-testid="display-name-input"
        />
        <button type="submit" className="primary" disabled={busy} data-testid="display-name-submit">
          {busy ? 'Saving…' : 'Save'}
        </button>
      </form>
    </section>
  );
}
