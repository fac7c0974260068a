// Runs before every test file: prices are formatted for one fixed locale, so expectations such as
// `Pay €12.50` hold whatever the machine's locale is (the app itself uses the browser's).
import { setMoneyLocale } from '../api/format';

setMoneyLocale('en-US');
