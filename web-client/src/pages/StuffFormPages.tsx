import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { COURSE_MESSAGE, parseCourse } from '../api/browse';
import { pickNewer } from '../api/catalogue';
import { toApiError } from '../api/errors';
import { MAX_FILE_BYTES, MAX_FILES, formatBytes } from '../api/files';
import { useCurrency } from '../api/config';
import {
  centsToInput,
  currencySymbol,
  formatCents,
  getCurrency,
  parsePriceToCents,
  priceExample,
  PRICE_MAX_CENTS,
  PRICE_MIN_CENTS,
  STUFF_STATUS_LABEL,
} from '../api/format';
import { putStuff, queryKeys } from '../api/queries';
import { useCoursesQuery } from '../api/queries-react';
import { usePush, useSession, useSessionManager } from '../api/session-react';
import type { Stuff } from '../api/types';
import { ErrorBanner, Notice, TextAreaField, TextField, useFormErrors } from '../components/ui';
import { CoverForm } from '../components/cover-form';
import { FileDropZone, UploadList, useUploadQueue } from '../components/uploads';
import { Link, useNavigate } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { RequireSignIn } from './RequireSignIn';

const FIELDS = ['title', 'priceCents', 'description', 'secretNote', 'course'] as const;
export const TITLE_MAX = 120;
export const DESCRIPTION_MAX = 2000;
export const SECRET_NOTE_MAX = 10_000;

interface Values {
  title: string;
  price: string;
  description: string;
  /** As typed; '' or left out for none. */
  course?: string;
  /** Only on the sell form: the private note buyers get after paying. */
  secretNote?: string;
}

export interface StuffFormResult {
  title: string;
  priceCents: number;
  description: string;
  secretNote: string;
  /** Normalized (`CS 101`), or '' for none. */
  course: string;
}

/** The range message, in the user's currency: "Price must be between €0.50 and €1,000,000.00". */
export function priceRangeMessage(currency: string = getCurrency()): string {
  return `Price must be between ${formatCents(PRICE_MIN_CENTS, currency)} and ${formatCents(PRICE_MAX_CENTS, currency)}`;
}

/**
 * Client-side checks mirroring the contract's validation; the server has the last word. The price
 * is read in `currency` (the server's): `12,50` is 1250 cents in eur, `1250` is 1250 in jpy.
 */
export function validateStuff(v: Values, currency: string = getCurrency()): { fields: Record<string, string>; priceCents: number | null } {
  const fields: Record<string, string> = {};
  const title = v.title.trim();
  if (!title) fields.title = 'Enter a title';
  else if (title.length > TITLE_MAX) fields.title = `Title must be at most ${TITLE_MAX} characters`;
  const priceCents = parsePriceToCents(v.price, currency);
  if (priceCents === null) fields.priceCents = `Enter a price like ${priceExample(currency)}`;
  else if (priceCents < PRICE_MIN_CENTS || priceCents > PRICE_MAX_CENTS) fields.priceCents = priceRangeMessage(currency);
  if (v.description.length > DESCRIPTION_MAX) fields.description = `Description must be at most ${DESCRIPTION_MAX} characters`;
  if ((v.secretNote ?? '').length > SECRET_NOTE_MAX) fields.secretNote = `Private note must be at most ${SECRET_NOTE_MAX} characters`;
  if (parseCourse(v.course ?? '') === null) fields.course = COURSE_MESSAGE;
  return { fields, priceCents };
}

function StuffForm({
  initial,
  submitLabel,
  onSubmit,
  testId,
  withSecretNote = false,
  children,
}: {
  initial: Values;
  submitLabel: string;
  onSubmit: (v: StuffFormResult) => Promise<void>;
  testId: string;
  /** Shows the "Private note for buyers" field. */
  withSecretNote?: boolean;
  /** More of the form, before the submit button (the file drop zone). */
  children?: ReactNode;
}) {
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, bannerRef } = useFormErrors(formRef);
  const currency = useCurrency();
  const [values, setValues] = useState<Values>(initial);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Values) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [k]: e.target.value }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { fields, priceCents } = validateStuff(values, currency);
    if (Object.keys(fields).length || priceCents === null) return showFields(fields);
    clear();
    setBusy(true);
    try {
      await onSubmit({
        title: values.title.trim(),
        priceCents,
        description: values.description,
        secretNote: values.secretNote ?? '',
        course: parseCourse(values.course ?? '') ?? '',
      });
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
          label={`Price (${currencySymbol(currency)})`}
          hint={`For example ${priceExample(currency)}; at least ${formatCents(PRICE_MIN_CENTS, currency)}`}
          inputMode="decimal"
          value={values.price}
          onChange={set('price')}
          error={errors.fields.priceCents}
          aria-required
          data-testid="price-input"
        />
        <CourseField value={values.course ?? ''} onChange={set('course')} error={errors.fields.course} />
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
        {withSecretNote && (
          <TextAreaField
            name="secretNote"
            label="Private note for buyers (optional)"
            hint="Only buyers see it, after paying: a licence key, a link, instructions."
            rows={4}
            value={values.secretNote ?? ''}
            onChange={set('secretNote')}
            maxLength={SECRET_NOTE_MAX}
            error={errors.fields.secretNote}
            data-testid="secret-note-input"
          />
        )}
        {children}
        <button type="submit" className="primary" disabled={busy} data-testid="stuff-submit">
          {busy ? 'Saving…' : submitLabel}
        </button>
      </form>
    </>
  );
}

const COURSE_OPTIONS_ID = 'course-options';

/**
 * The optional course, with the catalogue's courses as suggestions (a datalist; `stuff:courses`,
 * the most listed first).
 */
function CourseField({ value, onChange, error }: { value: string; onChange: (e: { target: { value: string } }) => void; error?: string }) {
  const { data: courses = [] } = useCoursesQuery();
  return (
    <>
      <TextField
        name="course"
        label="Course (optional)"
        hint="The course it is for, for example CS 101: buyers can browse by course."
        placeholder="CS 101"
        list={COURSE_OPTIONS_ID}
        autoComplete="off"
        value={value}
        onChange={onChange}
        error={error}
        data-testid="course-input"
      />
      <datalist id={COURSE_OPTIONS_ID} data-testid="course-options">
        {courses.map((c) => (
          <option key={c.course} value={c.course} />
        ))}
      </datalist>
    </>
  );
}

export function SellPage() {
  return (
    <section className="narrow">
      <h1 tabIndex={-1}>Sell stuff</h1>
      <RequireSignIn next="/sell">
        <Sell />
      </RequireSignIn>
    </section>
  );
}

export const FILES_HINT = `Up to ${MAX_FILES} files, ${formatBytes(MAX_FILE_BYTES)} each: notes, slides, code. Drop them here or choose them.`;

/**
 * The sell form with a private note and files. The stuff is created first; then each file is
 * uploaded with its own progress bar. When every file made it (or was cancelled), the stuff page
 * opens; otherwise the failures stay on screen with a link to the stuff page, where files can be
 * added again.
 */
function Sell() {
  const session = useSessionManager();
  const navigate = useNavigate();
  const client = useQueryClient();
  const { user } = useSession();
  const [created, setCreated] = useState<Stuff | null>(null);
  const [finished, setFinished] = useState(false);
  const createdRef = useRef<Stuff | null>(null);
  const queue = useUploadQueue({
    onIdle: (items) => {
      const stuff = createdRef.current;
      if (!stuff) return;
      if (items.some((i) => i.state === 'failed')) setFinished(true);
      else navigate(`/stuff/${encodeURIComponent(stuff.id)}`);
    },
  });
  const stuffPath = created ? `/stuff/${encodeURIComponent(created.id)}` : '';

  if (created) {
    const failed = queue.items.filter((i) => i.state === 'failed').length;
    return (
      <div data-testid="sell-uploading" data-finished={finished ? 'true' : 'false'}>
        <p className="banner banner-success" role="status">
          <strong>{created.title}</strong> is on sale.{' '}
          {finished ? '' : 'Uploading your files…'}
        </p>
        <UploadList queue={queue} label="Files being uploaded" />
        {finished && (
          <p role="alert" className="banner banner-error" data-testid="sell-upload-failures">
            {failed === 1 ? '1 file was not uploaded.' : `${failed} files were not uploaded.`} You can add files on the stuff page.
          </p>
        )}
        <p>
          <Link to={stuffPath} className={finished ? 'button primary' : 'tap-link'} data-testid="go-to-stuff">
            {finished ? 'Go to the stuff page' : 'Skip to the stuff page'}
          </Link>
        </p>
      </div>
    );
  }

  const room = Math.max(0, MAX_FILES - queue.pendingAdds);
  return (
    <StuffForm
      initial={{ title: '', price: '', description: '', secretNote: '', course: '' }}
      submitLabel="Put it on sale"
      testId="sell-form"
      withSecretNote
      onSubmit={async (v) => {
        const { data } = await session.request('stuff:create', {
          title: v.title,
          priceCents: v.priceCents,
          ...(v.description ? { description: v.description } : {}),
          ...(v.secretNote.trim() ? { secretNote: v.secretNote } : {}),
          ...(v.course ? { course: v.course } : {}),
        });
        createdRef.current = data;
        // My listings shows it next time (the `stuff:created` push normally brings it too).
        if (user) void client.invalidateQueries({ queryKey: queryKeys.mine(user.id) });
        setCreated(data);
        if (queue.active > 0) queue.start(data.id);
        else if (queue.items.some((i) => i.state === 'failed')) setFinished(true);
        else navigate(`/stuff/${encodeURIComponent(data.id)}`);
      }}
    >
      <fieldset className="field files-fieldset">
        <legend>Files for buyers (optional)</legend>
        <FileDropZone id="field-file" label="Choose files" hint={FILES_HINT} onFiles={(files) => queue.add(files, { room })} />
        <UploadList queue={queue} started={false} label="Chosen files" />
        <p className="muted small">
          Buyers get the files and the private note after paying. Without either, nobody can buy it yet: you can add them later on
          the stuff page.
        </p>
      </fieldset>
    </StuffForm>
  );
}

/** True when two versions of a stuff agree on everything the edit form shows or its save checks. */
function sameEditable(a: Stuff, b: Stuff): boolean {
  return (
    a.title === b.title &&
    a.priceCents === b.priceCents &&
    (a.description ?? '') === (b.description ?? '') &&
    (a.course ?? '') === (b.course ?? '') &&
    a.status === b.status
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
  const navigate = useNavigate();
  const client = useQueryClient();
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
    if (s.id !== id) return;
    setLatest((held) => pickNewer(held, s));
    // A newer version that changed nothing the form edits (a new cover, files, the note) becomes
    // the base at once, keeping what was typed: saving would otherwise be refused as stale.
    if (base && s.version > base.version && sameEditable(base, s)) setBase(s);
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
        initial={{ title: base.title, price: centsToInput(base.priceCents), description: base.description ?? '', course: base.course ?? '' }}
        submitLabel="Save changes"
        testId="edit-form"
        onSubmit={async (v) => {
          const { data } = await session.request('stuff:update', {
            id,
            version: base.version,
            title: v.title,
            priceCents: v.priceCents,
            description: v.description,
            // Only when changed ('' removes it), so an edit never touches what it did not change.
            ...(v.course !== (base.course ?? '') ? { course: v.course } : {}),
          });
          putStuff(client, data, user?.id ?? null);
          navigate(`/stuff/${encodeURIComponent(data.id)}`);
        }}
      />
      <p>
        <Link to={`/stuff/${encodeURIComponent(id)}`} className="tap-link">
          Cancel
        </Link>
      </p>
      <CoverForm
        stuffId={id}
        title={base.title}
        coverUrl={(latest ?? base).coverUrl}
        onUploaded={() => void client.invalidateQueries({ queryKey: queryKeys.stuff(id) })}
      />
    </>
  );
}
