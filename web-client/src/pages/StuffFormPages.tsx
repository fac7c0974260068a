import { useEffect, useRef, useState, type FormEvent } from 'react';
import { pickNewer } from '../api/catalogue';
import { toApiError } from '../api/errors';
import { centsToInput, parsePriceToCents, STUFF_STATUS_LABEL } from '../api/format';
import { usePush, useSession, useSessionManager } from '../api/session-react';
import type { Stuff } from '../api/types';
import { ErrorBanner, Notice, TextAreaField, TextField, useFormErrors } from '../components/ui';
import { Link, navigate } from '../router/router';
import { RequireSignIn } from './RequireSignIn';

const FIELDS = ['title', 'priceCents', 'description'] as const;
export const TITLE_MAX = 120;
export const DESCRIPTION_MAX = 2000;

interface Values {
  title: string;
  price: string;
  description: string;
}

/** Client-side checks mirroring the contract's validation; the server has the last word. */
export function validateStuff(v: Values): { fields: Record<string, string>; priceCents: number | null } {
  const fields: Record<string, string> = {};
  const title = v.title.trim();
  if (!title) fields.title = 'Enter a title';
  else if (title.length > TITLE_MAX) fields.title = `Title must be at most ${TITLE_MAX} characters`;
  const priceCents = parsePriceToCents(v.price);
  if (priceCents === null) fields.priceCents = 'Enter a price like 12.50';
  else if (priceCents < 1 || priceCents > 100_000_000) fields.priceCents = 'Price must be between 0.01 € and 1000000.00 €';
  if (v.description.length > DESCRIPTION_MAX) fields.description = `Description must be at most ${DESCRIPTION_MAX} characters`;
  return { fields, priceCents };
}

function StuffForm({
  initial,
  submitLabel,
  onSubmit,
  testId,
}: {
  initial: Values;
  submitLabel: string;
  onSubmit: (v: { title: string; priceCents: number; description: string }) => Promise<void>;
  testId: string;
}) {
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, bannerRef } = useFormErrors(formRef);
  const [values, setValues] = useState<Values>(initial);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Values) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [k]: e.target.value }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { fields, priceCents } = validateStuff(values);
    if (Object.keys(fields).length || priceCents === null) return showFields(fields);
    clear();
    setBusy(true);
    try {
      await onSubmit({ title: values.title.trim(), priceCents, description: values.description });
    } catch (err) {
      show(err, FIELDS);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="form-error" />
      <form ref={formRef} onSubmit={submit} noValidate data-testid={testId} aria-busy={busy}>
        <TextField
          name="title"
          label="Title"
          value={values.title}
          onChange={set('title')}
          maxLength={TITLE_MAX}
          error={errors.fields.title}
          aria-required
          data-testid="title-input"
        />
        <TextField
          name="priceCents"
          label="Price (€)"
          hint="For example 12.50"
          inputMode="decimal"
          value={values.price}
          onChange={set('price')}
          error={errors.fields.priceCents}
          aria-required
          data-testid="price-input"
        />
        <TextAreaField
          name="description"
          label="Description (optional)"
          rows={5}
          value={values.description}
          onChange={set('description')}
          maxLength={DESCRIPTION_MAX}
          error={errors.fields.description}
          data-testid="description-input"
        />
        <button type="submit" className="primary" disabled={busy} data-testid="stuff-submit">
          {busy ? 'Saving…' : submitLabel}
        </button>
      </form>
    </>
  );
}

export function SellPage() {
  const session = useSessionManager();
  return (
    <section className="narrow">
      <h1 tabIndex={-1}>Sell stuff</h1>
      <RequireSignIn next="/sell">
        <StuffForm
          initial={{ title: '', price: '', description: '' }}
          submitLabel="Put it on sale"
          testId="sell-form"
          onSubmit={async (v) => {
            const { data } = await session.request('stuff:create', {
              title: v.title,
              priceCents: v.priceCents,
              ...(v.description ? { description: v.description } : {}),
            });
            navigate(`/stuff/${encodeURIComponent(data.id)}`);
          }}
        />
      </RequireSignIn>
    </section>
  );
}

export function EditStuffPage({ id }: { id: string }) {
  return (
    <section className="narrow">
      <h1 tabIndex={-1}>Edit stuff</h1>
      <RequireSignIn next={`/stuff/${id}/edit`}>
        <EditStuff id={id} />
      </RequireSignIn>
    </section>
  );
}

function EditStuff({ id }: { id: string }) {
  const session = useSessionManager();
  const { user, epoch } = useSession();
  // `base` is the version the form was filled from; `latest` is the newest we have heard of.
  const [base, setBase] = useState<Stuff | null>(null);
  const [latest, setLatest] = useState<Stuff | null>(null);
  const [loadError, setLoadError] = useState<string[]>([]);
  const [formKey, setFormKey] = useState(0);

  const load = () =>
    session
      .request('stuff:get', { id })
      .then(({ data }) => {
        setBase(data);
        setLatest(data);
        setFormKey((k) => k + 1);
        setLoadError([]);
      })
      .catch((e) => setLoadError(toApiError(e).errors.map((x) => x.message)));

  // Load once connected; later reconnects keep the form as typed (the stale notice covers changes).
  useEffect(() => {
    if (epoch === 0 || base) return;
    void load();
  }, [epoch, id]); // `load` and `base` are read fresh on each run

  usePush('stuff:updated', (s) => {
    if (s.id === id) setLatest((held) => pickNewer(held, s));
  });

  if (!base) {
    return loadError.length ? <ErrorBanner messages={loadError} /> : <p aria-live="polite">Loading…</p>;
  }
  if (user && base.sellerId !== user.id) {
    return <ErrorBanner messages={['You can only edit stuff you are selling.']} testId="edit-forbidden" />;
  }
  const changed = latest && latest.version > base.version;

  return (
    <>
      {changed && (
        <Notice testId="stale-notice">
          This stuff changed while you were editing (now {STUFF_STATUS_LABEL[latest.status].toLowerCase()}).{' '}
          <button type="button" className="link-button" onClick={() => void load()} data-testid="reload-latest">
            Load the latest version
          </button>{' '}
          before saving, or saving will be refused.
        </Notice>
      )}
      <StuffForm
        key={formKey}
        initial={{ title: base.title, price: centsToInput(base.priceCents), description: base.description ?? '' }}
        submitLabel="Save changes"
        testId="edit-form"
        onSubmit={async (v) => {
          const { data } = await session.request('stuff:update', {
            id,
            version: base.version,
            title: v.title,
            priceCents: v.priceCents,
            description: v.description,
          });
          navigate(`/stuff/${encodeURIComponent(data.id)}`);
        }}
      />
      <p>
        <Link to={`/stuff/${encodeURIComponent(id)}`}>Cancel</Link>
      </p>
    </>
  );
}
