// START_TIME / EMIT_TIME rendering: Envoy's default (ISO 8601, ms, UTC) and strftime-style
// formats with Envoy's extras (%s, %f, %1f..%9f, absl's %E#S/%E*S). Never fails: unknown
// specifiers are copied through, as absl::FormatTime does.

/** Formats one timestamp (ms since epoch). Compiled once per format string. */
export type TimeFormat = (ms: number) => string;

function pad(n: number, w = 2, c = '0'): string {
  return String(n).padStart(w, c);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const DAYS_LONG = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTHS_LONG = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** `2024-01-02T03:04:05.678Z`: Envoy's default START_TIME. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Fractional seconds with `digits` digits (ms precision; finer digits are zeros). */
function fraction(ms: number, digits: number): string {
  const frac = pad(((ms % 1000) + 1000) % 1000, 3) + '000000';
  return frac.slice(0, digits);
}

type Piece = string | ((d: Date, ms: number) => string);

function dayOfYear(d: Date): number {
  return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

const SPECIFIERS: Record<string, (d: Date, ms: number) => string> = {
  Y: (d) => String(d.getUTCFullYear()),
  C: (d) => pad(Math.floor(d.getUTCFullYear() / 100)),
  y: (d) => pad(d.getUTCFullYear() % 100),
  m: (d) => pad(d.getUTCMonth() + 1),
  d: (d) => pad(d.getUTCDate()),
  e: (d) => pad(d.getUTCDate(), 2, ' '),
  H: (d) => pad(d.getUTCHours()),
  I: (d) => pad(((d.getUTCHours() + 11) % 12) + 1),
  M: (d) => pad(d.getUTCMinutes()),
  S: (d) => pad(d.getUTCSeconds()),
  p: (d) => (d.getUTCHours() < 12 ? 'AM' : 'PM'),
  j: (d) => pad(dayOfYear(d), 3),
  a: (d) => DAYS[d.getUTCDay()]!,
  A: (d) => DAYS_LONG[d.getUTCDay()]!,
  b: (d) => MONTHS[d.getUTCMonth()]!,
  h: (d) => MONTHS[d.getUTCMonth()]!,
  B: (d) => MONTHS_LONG[d.getUTCMonth()]!,
  u: (d) => String(d.getUTCDay() || 7),
  w: (d) => String(d.getUTCDay()),
  z: () => '+0000',
  Z: () => 'UTC',
  s: (_d, ms) => String(Math.floor(ms / 1000)),
  f: (_d, ms) => fraction(ms, 9),
  T: (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
  R: (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`,
  F: (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
  D: (d) => `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCFullYear() % 100)}`,
  n: () => '\n',
  t: () => '\t',
  '%': () => '%',
};

/** Compiles a strftime-style format (UTC). An empty format means Envoy's default. */
export function compileTimeFormat(format: string | undefined): TimeFormat {
  if (!format) return isoTime;
  const pieces: Piece[] = [];
  let lit = '';
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== '%' || i + 1 >= format.length) {
      lit += c;
      i++;
      continue;
    }
    const rest = format.slice(i + 1);
    // %1f..%9f: fractional seconds with N digits.
    let m = /^([1-9])f/.exec(rest);
    if (m) {
      const digits = Number(m[1]);
      pieces.push(lit, (_d, ms) => fraction(ms, digits));
      lit = '';
      i += 1 + m[0].length;
      continue;
    }
    // absl: %E#S seconds with # fractional digits, %E*S seconds with full fraction.
    m = /^E([0-9]|\*)S/.exec(rest);
    if (m) {
      const digits = m[1] === '*' ? 9 : Number(m[1]);
      pieces.push(lit, (d, ms) => (digits === 0 ? pad(d.getUTCSeconds()) : `${pad(d.getUTCSeconds())}.${fraction(ms, digits)}`));
      lit = '';
      i += 1 + m[0].length;
      continue;
    }
    const spec = SPECIFIERS[rest[0]!];
    if (spec) {
      pieces.push(lit, spec);
      lit = '';
    } else {
      lit += '%' + rest[0]!;
    }
    i += 2;
  }
  pieces.push(lit);
  const compact = pieces.filter((p) => p !== '');
  // Formatting is per second at most for most formats; remember the last one.
  let lastMs = NaN;
  let last = '';
  return (ms: number): string => {
    if (ms === lastMs) return last;
    const d = new Date(ms);
    let out = '';
    for (const p of compact) out += typeof p === 'string' ? p : p(d, ms);
    lastMs = ms;
    last = out;
    return out;
  };
}
