// Times and days of messages, in the browser's time zone. Pure.

const pad = (n) => String(n).padStart(2, '0');

export function hhmm(d) {
  return pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// dayKey identifies the local calendar day of d.
export function dayKey(d) {
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
}

// dayLabel is "Today", "Yesterday" or the date, relative to now.
export function dayLabel(d, now = new Date(), locale = undefined) {
  if (dayKey(d) === dayKey(now)) return 'Today';
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (dayKey(d) === dayKey(y)) return 'Yesterday';
  const opts = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(locale, opts);
}
