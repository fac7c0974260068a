import { useRef, useState, type FormEvent } from 'react';
import { useSession, useSessionManager } from '../api/session-react';
import { ErrorBanner, TextField, useFormErrors } from '../components/ui';
import { Link, useNavigate, useSearchParams } from 'react-router';

/** Only same-site paths are allowed as a `next` target after signing in. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

const FIELDS = ['email', 'password'] as const;

function AuthForm({ mode }: { mode: 'signin' | 'signup' }) {
  const session = useSessionManager();
  const { user } = useSession();
  const navigate = useNavigate();
  const next = safeNext(useSearchParams()[0].get('next'));
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, bannerRef } = useFormErrors(formRef);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const title = mode === 'signin' ? 'Sign in' : 'Sign up';

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (!email.trim()) local.email = 'Enter your e-mail';
    if (!password) local.password = 'Enter a password';
    else if (mode === 'signup' && (password.length < 8 || password.length > 128))
      local.password = 'Password must be between 8 and 128 characters';
    if (Object.keys(local).length) return showFields(local);
    clear();
    setBusy(true);
    try {
      const creds = { email: email.trim(), password };
      if (mode === 'signin') await session.signIn(creds);
      else await session.signUp(creds);
      navigate(next, { replace: true });
    } catch (err) {
      show(err, FIELDS);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="narrow">
      <h1 tabIndex={-1}>{title}</h1>
      {user && (
        <p data-testid="already-signed-in">
          You are signed in as {user.email}. Continuing signs you in as someone else.
        </p>
      )}
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="form-error" />
      <form ref={formRef} onSubmit={onSubmit} noValidate data-testid={`${mode}-form`} aria-busy={busy}>
        <TextField
          name="email"
          label="E-mail"
          type="email"
          autoComplete="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.fields.email}
          aria-required
        />
        <TextField
          name="password"
          label="Password"
          type="password"
          autoComplete={mode === 'signin' ? 'current-password' : 'new-password'}
          hint={mode === 'signup' ? '8 to 128 characters' : undefined}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errors.fields.password}
          aria-required
        />
        <button type="submit" className="primary" disabled={busy} data-testid={`${mode}-submit`}>
          {busy ? `${title}…` : title}
        </button>
      </form>
      <p>
        {mode === 'signin' ? (
          <>
            New here? <Link to={`/signup${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`}>Create an account</Link>
          </>
        ) : (
          <>
            Already have an account? <Link to={`/signin${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`}>Sign in</Link>
          </>
        )}
      </p>
    </section>
  );
}

export const SignInPage = () => <AuthForm mode="signin" />;
export const SignUpPage = () => <AuthForm mode="signup" />;
