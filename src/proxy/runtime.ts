// Envoy's runtime: layered key/value overrides (static layers from the bootstrap, disk layers, and
// the admin layer set through /runtime_modify). Features read their runtime keys with a default;
// a missing or malformed value yields the default, never an error.

export interface RuntimeLayerView {
  readonly name: string;
  readonly values: Readonly<Record<string, string>>;
}

export interface FractionalPercentValue {
  readonly numerator: number;
  /** HUNDRED, TEN_THOUSAND or MILLION. */
  readonly denominator: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

export function denominatorValue(d: string): number {
  return DENOMINATORS[d as keyof typeof DENOMINATORS] ?? 100;
}

export class Runtime {
  readonly #layers: RuntimeLayerView[];
  #admin: Record<string, string> = {};
  /** Merged view, later layers win. */
  #merged = new Map<string, string>();

  constructor(layers: readonly RuntimeLayerView[] = [], admin: Readonly<Record<string, string>> = {}) {
    this.#layers = [...layers];
    this.#admin = { ...admin };
    this.#rebuild();
  }

  #rebuild(): void {
    const m = new Map<string, string>();
    for (const l of this.#layers) for (const [k, v] of Object.entries(l.values)) m.set(k, v);
    for (const [k, v] of Object.entries(this.#admin)) {
      if (v === '') m.delete(k);
      else m.set(k, v);
    }
    this.#merged = m;
  }

  /** Admin layer changes (`/runtime_modify`): an empty value removes the key from that layer. */
  setAdmin(values: Readonly<Record<string, string>>): void {
    for (const [k, v] of Object.entries(values)) {
      if (v === '') delete this.#admin[k];
      else this.#admin[k] = v;
    }
    this.#rebuild();
  }

  adminValues(): Record<string, string> {
    return { ...this.#admin };
  }

  layers(): RuntimeLayerView[] {
    return [...this.#layers, { name: 'admin', values: { ...this.#admin } }];
  }

  entries(): ReadonlyMap<string, string> {
    return this.#merged;
  }

  get(key: string): string | undefined {
    return this.#merged.get(key);
  }

  getInteger(key: string, fallback: number): number {
    const v = this.#merged.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : fallback;
  }

  getDouble(key: string, fallback: number): number {
    const v = this.#merged.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    return Number.isFinite(n) ? n : fallback;
  }

  getBoolean(key: string, fallback: boolean): boolean {
    const v = this.#merged.get(key);
    return v === 'true' ? true : v === 'false' ? false : fallback;
  }

  /**
   * Envoy's `featureEnabled(key, FractionalPercent)`: the key may hold an integer percentage
   * (out of 100) or the default's denominator applies; one random draw per call.
   */
  featureEnabled(key: string | undefined, dflt: FractionalPercentValue, random: number = Math.random()): boolean {
    const { numerator, denominator } = this.fractionalPercent(key, dflt);
    const d = denominatorValue(denominator);
    return Math.floor(random * d) < Math.min(numerator, d);
  }

  fractionalPercent(key: string | undefined, dflt: FractionalPercentValue): FractionalPercentValue {
    if (!key) return dflt;
    const v = this.#merged.get(key);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (Number.isFinite(n) && n >= 0) return { numerator: Math.floor(n), denominator: 'HUNDRED' };
    return dflt;
  }
}
