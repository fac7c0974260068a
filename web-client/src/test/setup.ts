// Runs before every test file: prices are formatted for one fixed locale, so expectations such as
// `Pay €12.50` hold whatever the machine's locale is (the app itself uses the browser's).
// TanStack Query tells its observers on a `setTimeout(0)` by default (to batch); here it tells
// them on a microtask, so `step()` (which lets promises settle inside act) sees query results and
// pushed cache writes, with or without fake timers.
import { notifyManager } from '@tanstack/react-query';
import { setMoneyLocale } from '../api/format';

setMoneyLocale('en-US');
notifyManager.setScheduler(queueMicrotask);
