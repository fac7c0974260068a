import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { putCoupon } from '../api/queries';
import { errorMessages, useCouponsQuery } from '../api/queries-react';
import { useCurrency } from '../api/config';
import { toApiError } from '../api/errors';
import { formatCents, formatTime } from '../api/format';
import { useSession, useSessionManager } from '../api/session-react';
import type { Coupon, Payment } from '../api/types';
import { ErrorBanner, TextField, useFormErrors } from '../components/ui';
import { RequireSignIn } from './RequireSignIn';

const FIELDS = ['percentOff', 'maxRedemptions', 'expiresAt'] as const;

/** `datetime-local` value (local time, no zone) → RFC 3339 in UTC. */
export function localInputToIso(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function validateCoupon(v: { percentOff: string; maxRedemptions: string; expiresAt: string }, nowMs = Date.now()) {
  const fields: Record<string, string> = {};
  const percentOff = Number(v.percentOff);
  if (!/^\d+$/.test(v.percentOff.trim()) || percentOff < 1 || percentOff > 100)
    fields.percentOff = 'Enter a whole number from 1 to 100';
  let maxRedemptions: number | undefined;
  if (v.maxRedemptions.trim()) {
    maxRedemptions = Number(v.maxRedemptions);
    if (!/^\d+$/.test(v.maxRedemptions.trim()) || maxRedemptions < 1) fields.maxRedemptions = 'Enter a whole number of at least 1';
  }
  let expiresAt: string | undefined;
  if (v.expiresAt) {
    const iso = localInputToIso(v.expiresAt);
    if (!iso) fields.expiresAt = 'Enter a valid date and time';
    else if (Date.parse(iso) <= nowMs) fields.expiresAt = 'Choose a time in the future';
    else expiresAt = iso;
  }
  return { fields, payload: { percentOff, ...(maxRedemptions ? { maxRedemptions } : {}), ...(expiresAt ? { expiresAt } : {}) } };
}

export function AdminPage() {
  return (
    <section>
      <h1 tabIndex={-1}>Admin</h1>
      <RequireSignIn next="/admin" admin>
        <RefundOrder />
        <Coupons />
      </RequireSignIn>
    </section>
  );
}

export const ORDER_ID_REQUIRED = 'Enter the order number';

/**
 * "Refund an order": the order number (the buyer copies it from their order page), Refund, then a
 * confirmation step, then `payment:refund {orderId}`. The server's refusals (no such order, not
 * paid) show on the field; a refund that went through says how much went back and when.
 */
function RefundOrder() {
  const session = useSessionManager();
  const currency = useCurrency();
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, clearField, bannerRef } = useFormErrors(formRef);
  const [orderId, setOrderId] = useState('');
  /** The order number waiting for "Yes, refund" (null: not asking). */
  const [asking, setAsking] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [refunded, setRefunded] = useState<Payment | null>(null);
  const confirmButtonRef = useRef<HTMLButtonElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (asking) confirmButtonRef.current?.focus();
  }, [asking]);

  const askFirst = (e: FormEvent) => {
    e.preventDefault();
    const id = orderId.trim();
    setRefunded(null);
    if (!id) {
      setAsking(null);
      showFields({ orderId: ORDER_ID_REQUIRED });
      return;
    }
    clear();
    setAsking(id);
  };

  const keep = () => {
    setAsking(null);
    inputRef.current?.focus();
  };

  const refund = async () => {
    if (!asking) return;
    const id = asking;
    setBusy(true);
    try {
      const { data } = await session.request('payment:refund', { orderId: id });
      setAsking(null);
      setRefunded(data);
      setOrderId('');
      clear();
      inputRef.current?.focus();
    } catch (err) {
      setAsking(null);
      const e = toApiError(err);
      // About this order (none, not paid, not refundable): the field says it. Anything else
      // (signed out, not an admin any more, the gateway did not answer) goes to the banner.
      if (e.status === 400 || e.status === 404 || e.status === 409 || e.status === 402) {
        showFields({ orderId: e.errors.map((x) => x.message).join(' ') });
      } else {
        show(e, ['orderId']);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="refund-heading" className="admin-section narrow">
      <h2 id="refund-heading">Refund an order</h2>
      <p className="muted">
        The money goes back to the buyer through the payment gateway, their downloads stop and the stuff is for sale again.
      </p>
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="refund-error" />
      {refunded && (
        <p className="banner banner-success" role="status" data-testid="refund-success">
          Refunded order <code>{refunded.orderId}</code>: {formatCents(refunded.amountCents, refunded.currency || currency)} went
          back to the buyer{refunded.refundedAt ? ` (${formatTime(refunded.refundedAt)})` : ''}.
        </p>
      )}
      <form ref={formRef} onSubmit={askFirst} noValidate data-testid="refund-form" className="narrow" aria-busy={busy}>
        <TextField
          ref={inputRef}
          name="orderId"
          label="Order number"
          hint="The buyer finds it on their order page (Copy)."
          autoComplete="off"
          spellCheck={false}
          value={orderId}
          onChange={(e) => {
            setOrderId(e.target.value);
            clearField('orderId');
            setAsking(null);
          }}
          readOnly={busy}
          error={errors.fields.orderId}
          data-testid="refund-order-input"
        />
        {asking ? (
          <div className="confirm-box" role="group" aria-labelledby="refund-question" data-testid="refund-confirmation">
            <p id="refund-question">
              Refund order <code>{asking}</code>? This cannot be undone.
            </p>
            <div className="actions">
              <button
                ref={confirmButtonRef}
                type="button"
                className="danger"
                onClick={refund}
                disabled={busy}
                data-testid="refund-confirm"
              >
                {busy ? 'Refunding…' : 'Yes, refund'}
              </button>
              <button type="button" onClick={keep} disabled={busy} data-testid="refund-keep">
                Don’t refund
              </button>
            </div>
          </div>
        ) : (
          <button type="submit" data-testid="refund-button">
            Refund…
          </button>
        )}
      </form>
    </section>
  );
}

function Coupons() {
  const session = useSessionManager();
  const client = useQueryClient();
  const { user } = useSession();
  const couponsQuery = useCouponsQuery();
  const coupons = couponsQuery.data ?? null;
  const listError = errorMessages(couponsQuery.error);
  const [created, setCreated] = useState<Coupon | null>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, bannerRef } = useFormErrors(formRef);
  const [values, setValues] = useState({ percentOff: '', maxRedemptions: '', expiresAt: '' });
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { fields, payload } = validateCoupon(values);
    if (Object.keys(fields).length) return showFields(fields);
    clear();
    setBusy(true);
    try {
      const { data } = await session.request('coupon:create', payload);
      setCreated(data);
      if (user) putCoupon(client, data, user.id);
      setValues({ percentOff: '', maxRedemptions: '', expiresAt: '' });
    } catch (err) {
      show(err, FIELDS);
    } finally {
      setBusy(false);
    }
  };

  const set = (k: keyof typeof values) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [k]: e.target.value }));

  return (
    <>
      <h2>Create a coupon</h2>
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="form-error" />
      {created && (
        <p className="banner banner-success" role="status">
          Created coupon <code data-testid="created-coupon-code">{created.code}</code> ({created.percentOff}% off).
        </p>
      )}
      <form ref={formRef} onSubmit={submit} noValidate data-testid="coupon-form" className="narrow" aria-busy={busy}>
        <TextField
          name="percentOff"
          label="Percent off"
          hint="1 to 100; 100 makes the stuff free"
          inputMode="numeric"
          value={values.percentOff}
          onChange={set('percentOff')}
          error={errors.fields.percentOff}
          aria-required
          data-testid="percent-off-input"
        />
        <TextField
          name="maxRedemptions"
          label="Maximum redemptions (optional)"
          inputMode="numeric"
          value={values.maxRedemptions}
          onChange={set('maxRedemptions')}
          error={errors.fields.maxRedemptions}
          data-testid="max-redemptions-input"
        />
        <TextField
          name="expiresAt"
          label="Expires at (optional, your local time)"
          type="datetime-local"
          value={values.expiresAt}
          onChange={set('expiresAt')}
          error={errors.fields.expiresAt}
          data-testid="coupon-expires-input"
        />
        <button type="submit" className="primary" disabled={busy} data-testid="create-coupon-button">
          {busy ? 'Creating…' : 'Create coupon'}
        </button>
      </form>

      <h2>All coupons</h2>
      <ErrorBanner messages={listError} testId="coupon-list-error" />
      {coupons === null ? (
        listError.length ? null : <p aria-live="polite">Loading…</p>
      ) : coupons.length === 0 ? (
        <p data-testid="coupons-empty">No coupons yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="coupon-list">
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Off</th>
                <th scope="col">Redeemed</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {coupons.map((c) => (
                <tr key={c.code} data-testid={`coupon-row-${c.code}`}>
                  <td>
                    <code>{c.code}</code>
                  </td>
                  <td>{c.percentOff}%</td>
                  <td>
                    {c.redemptions}
                    {c.maxRedemptions != null ? ` of ${c.maxRedemptions}` : ''}
                  </td>
                  <td>{c.expiresAt ? formatTime(c.expiresAt) : 'Never'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
